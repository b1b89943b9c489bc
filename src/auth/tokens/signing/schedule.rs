//! When each stored key signs and how long it stays published, derived from its row alone:
//! one rule for the ring every instance builds and for `auth-server keys list`.
//!
//! - A key is published from the moment its row exists.
//! - It signs from `activates_at` until the first of: its `retired_at`, or the
//!   `activates_at` of a newer key that did sign (one retired before its turn did not).
//!   So the newest key whose turn has come signs, and retiring a key never brings an
//!   older one back.
//! - Once it stops signing it stays published until the last token it signed has expired:
//!   that instant plus the access-token lifetime and the verification leeway. A key retired
//!   before it ever signed is withdrawn at once.

use chrono::{DateTime, Utc};

use super::material::SigningAlgorithm;

/// What the schedule needs of a row.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    pub created_at: DateTime<Utc>,
    pub activates_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// A key's life as the schedule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub kid: String,
    pub activates_at: DateTime<Utc>,
    /// When it stops (or stopped) signing; `None` while nothing is set to replace it.
    pub stops_signing: Option<DateTime<Utc>>,
    /// When it leaves the JWKS; `None` while it signs or may yet sign.
    pub published_until: Option<DateTime<Utc>>,
    pub retired: bool,
}

/// Where a key stands at one instant (`keys list`'s STATE column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not yet signing.
    Pending,
    /// The key new tokens are signed with.
    Signing,
    /// No longer signs; published until the tokens it signed have expired.
    Published,
    /// Replaced by a rotation, and no token it signed is still valid.
    Expired,
    /// Withdrawn by `keys retire`, and no token it signed is still valid.
    Retired,
}

impl KeyState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Signing => "signing",
            Self::Published => "published",
            Self::Expired => "expired",
            Self::Retired => "retired",
        }
    }
}

impl Timeline {
    /// The key's state at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> KeyState {
        let stopped = self.stops_signing.is_some_and(|t| t <= now);
        if !stopped && now < self.activates_at {
            KeyState::Pending
        } else if !stopped {
            KeyState::Signing
        } else if self.published_until.is_some_and(|t| now < t) {
            KeyState::Published
        } else if self.retired {
            KeyState::Retired
        } else {
            KeyState::Expired
        }
    }

    /// Whether it is in the JWKS (and verifies tokens) at `now`.
    pub fn published(&self, now: DateTime<Utc>) -> bool {
        self.published_until.is_none_or(|t| now < t)
    }

    /// Whether it signs now or may sign later (its private half is needed).
    pub fn may_sign(&self, now: DateTime<Utc>) -> bool {
        self.stops_signing.is_none_or(|t| now < t)
    }
}

/// The timelines of `rows`, given how long an access token lives (with the leeway).
pub fn timelines(rows: &[KeyRow], token_lifetime: chrono::Duration) -> Vec<Timeline> {
    rows.iter()
        .map(|row| {
            // The first activation of a newer key that signed ends this one's turn.
            let superseded = rows
                .iter()
                .filter(|other| other.kid != row.kid)
                .filter(|other| other.retired_at.is_none_or(|r| r > other.activates_at))
                .filter(|other| (other.activates_at, &other.kid) > (row.activates_at, &row.kid))
                .map(|other| other.activates_at)
                .min();
            let stops_signing = match (row.retired_at, superseded) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let published_until = stops_signing.map(|stop| {
                if stop <= row.activates_at {
                    stop // it never signed anything
                } else {
                    stop + token_lifetime
                }
            });
            Timeline {
                kid: row.kid.clone(),
                activates_at: row.activates_at,
                stops_signing,
                published_until,
                retired: row.retired_at.is_some(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap()
    }

    fn row(kid: &str, created: i64, activates: i64, retired: Option<i64>) -> KeyRow {
        KeyRow {
            kid: kid.into(),
            algorithm: SigningAlgorithm::Es256,
            created_at: at(created),
            activates_at: at(activates),
            retired_at: retired.map(at),
        }
    }

    const LIFETIME: chrono::Duration = chrono::Duration::minutes(15);

    #[test]
    fn a_rotation_hands_over_at_the_new_keys_activation() {
        let rows = [row("a", 0, 0, None), row("b", 100, 106, None)];
        let t = timelines(&rows, LIFETIME);
        assert_eq!(t[0].state(at(105)), KeyState::Signing);
        assert_eq!(t[1].state(at(105)), KeyState::Pending);
        assert!(t[1].published(at(100)), "published before it signs");
        assert_eq!(t[0].state(at(106)), KeyState::Published);
        assert_eq!(t[1].state(at(106)), KeyState::Signing);
        assert_eq!(t[0].published_until, Some(at(121)));
        assert!(t[0].published(at(120)));
        assert_eq!(t[0].state(at(121)), KeyState::Expired);
        assert!(!t[0].published(at(121)));
        assert!(t[1].published(at(10_000)));
    }

    #[test]
    fn a_retired_pending_key_is_withdrawn_and_the_old_one_keeps_signing() {
        let rows = [row("a", 0, 0, None), row("b", 100, 106, Some(103))];
        let t = timelines(&rows, LIFETIME);
        assert_eq!(t[0].stops_signing, None);
        assert_eq!(t[0].state(at(200)), KeyState::Signing);
        assert_eq!(t[1].state(at(103)), KeyState::Retired);
        assert!(!t[1].published(at(103)));
        assert!(t[1].published(at(102)));
    }

    #[test]
    fn a_retired_signer_stays_published_for_its_tokens_lifetime() {
        let rows = [row("a", 0, 0, Some(50)), row("b", 10, 20, None)];
        let t = timelines(&rows, LIFETIME);
        // "a" already stopped at b's activation (20), before it was retired (50).
        assert_eq!(t[0].stops_signing, Some(at(20)));
        assert_eq!(t[0].published_until, Some(at(35)));
        assert_eq!(t[0].state(at(40)), KeyState::Retired);
    }

    #[test]
    fn retiring_the_newest_key_does_not_bring_an_older_one_back() {
        let rows = [row("a", 0, 0, None), row("b", 10, 20, Some(50))];
        let t = timelines(&rows, LIFETIME);
        assert_eq!(t[0].stops_signing, Some(at(20)));
        assert_eq!(t[0].state(at(60)), KeyState::Expired);
        assert_eq!(t[1].state(at(60)), KeyState::Published);
    }
}
