//! TOTP, the authenticator apps' second factor: enrolment (`enrollTotp`, `confirmTotp`),
//! removal (`disableTotp`), and the judgement of a code.
//!
//! RFC 6238 with the apps' defaults (HMAC-SHA-1, 6 digits, 30-second steps), through
//! totp-rs. A code of the step before or after the current one is accepted too (clocks
//! drift; a code typed as it changes). Each step is accepted once per account: the
//! factor's `last_used_step` is moved forward by a conditional update, so a code (or an
//! older one) is refused on every instance once used, and of two concurrent uses exactly
//! one wins.
//!
//! ```text
//!            enrollTotp                confirmTotp(code)           disableTotp(password)
//!   none ──────────────────► pending ─────────────────► enabled ──────────────────────► none
//!                            │    ▲   (10 recovery codes)  │
//!                            └────┘ enrollTotp: a new      └─ enrollTotp, confirmTotp:
//!                                   secret replaces it        MFA_ALREADY_ENABLED
//! ```

mod qr;

pub use qr::svg as qr_code_svg;

use chrono::{DateTime, Utc};
use rand::RngCore;
use totp_rs::{Algorithm, Builder, Totp};
use uuid::Uuid;

use super::events::{Client, Event, EventKind};
use super::mailing::abort;
use super::tokens::mfa::{new_recovery_codes, normalize_recovery_code, recovery_code_hash};
use super::{AuthService, Principal};
use crate::error::AuthError;
use crate::store::is_unique_violation;

/// Seconds per time step.
pub const STEP_SECS: u64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Bytes of a secret: 160 bits, as RFC 4226 recommends for HMAC-SHA-1.
const SECRET_BYTES: usize = 20;
/// Recovery codes handed out by `confirmTotp`.
pub const RECOVERY_CODES: usize = 10;

/// A new secret and how an authenticator app takes it.
#[derive(Debug, Clone)]
pub struct TotpEnrollment {
    /// Base32 (RFC 4648, no padding), for typing into an app.
    pub secret: String,
    /// `otpauth://totp/{issuer}:{email}?secret=…&issuer=…`, for a QR code.
    pub otpauth_uri: String,
    /// That URI's QR code, as SVG.
    pub qr_code_svg: String,
}

/// The totp-rs generator of `secret`, with the apps' defaults and a skew of one step.
fn generator(secret: &[u8], issuer: Option<String>, account: String) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_step_duration(STEP_SECS)
        .with_skew(1)
        .with_secret(secret.to_vec())
        .with_issuer(issuer)
        .with_account_name(account)
        .build()
        .ok()
}

/// The time step `code` is the code of for `secret`, among the steps of `at` and the ones
/// just before and after it; `None` if it is none of them (or is not 6 digits).
pub fn matching_step(secret: &[u8], code: &str, at: DateTime<Utc>) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let time = u64::try_from(at.timestamp()).ok()?;
    let totp = generator(secret, None, String::new())?;
    totp.check(code, time)
        .and_then(|step| i64::try_from(step).ok())
}

/// The code of `secret` at `at` (for tests and tools; the server never needs one).
pub fn code_at(secret: &[u8], at: DateTime<Utc>) -> Option<String> {
    let time = u64::try_from(at.timestamp()).ok()?;
    Some(
        generator(secret, None, String::new())?
            .generate(time)
            .to_string(),
    )
}

/// The code at `at` of a secret given as `enrollTotp` shows it (base32), as an
/// authenticator app computes it; for tests and tools.
pub fn code_of_base32(secret: &str, at: DateTime<Utc>) -> Option<String> {
    let secret = totp_rs::Secret::try_from_base32(secret).ok()?;
    code_at(secret.as_bytes(), at)
}

/// A label part without the `:` the otpauth format separates issuer and account with.
fn label_part(raw: &str) -> String {
    // An issuer that is a URL is known by its host.
    let host = url::Url::parse(raw)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    host.unwrap_or_else(|| raw.to_owned()).replace(':', "_")
}

impl AuthService {
    /// Starts (or restarts) the caller's enrolment: a new secret, pending until
    /// `confirmTotp` proves an app has it. Refused while TOTP is enabled.
    pub async fn enroll_totp(
        &self,
        caller: &Principal,
        client: &Client,
    ) -> Result<TotpEnrollment, AuthError> {
        let user = caller.account.id;
        let mut secret = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut secret);
        let totp = generator(
            &secret,
            Some(label_part(self.keys.mfa.issuer())),
            label_part(&caller.account.email),
        )
        .ok_or_else(|| AuthError::internal_msg("TOTP parameters refused"))?;
        let otpauth_uri = totp.to_url().map_err(AuthError::internal)?;
        let qr_code_svg = qr::svg(&otpauth_uri)
            .ok_or_else(|| AuthError::internal_msg("the otpauth URI does not fit a QR code"))?;
        let enrollment = TotpEnrollment {
            secret: totp.secret().to_base32(),
            otpauth_uri,
            qr_code_svg,
        };
        let at = self.now();
        let write = self.store.begin_write().await?;
        let factors = write.second_factors();
        // The first statement writes, so SQLite takes its write lock at once (a read
        // first could not be upgraded once another write had committed).
        factors.delete_pending_totp(user).await?;
        if factors.totp_of(user).await?.is_some() {
            return abort(write, AuthError::MfaAlreadyEnabled).await;
        }
        let sealed = self.keys.mfa.seal_secret(user, &secret);
        if let Err(e) = factors.put_pending_totp(user, sealed, at).await {
            write.rollback().await?;
            // Another request enabled (or enrolled) it meanwhile.
            return Err(if is_unique_violation(&e) {
                AuthError::MfaAlreadyEnabled
            } else {
                e.into()
            });
        }
        let event = Event::success(EventKind::TotpEnrolled, client)
            .user(user)
            .session(caller.session_id);
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        Ok(enrollment)
    }

    /// Activates the caller's pending factor with a code of its secret, and returns 10
    /// new recovery codes (stored hashed only; any older ones stop working). The code's
    /// step counts as used.
    pub async fn confirm_totp(
        &self,
        caller: &Principal,
        code: &str,
        client: &Client,
    ) -> Result<Vec<String>, AuthError> {
        let user = caller.account.id;
        self.count_mfa_attempt(user, client).await?;
        let factor = self.store.second_factors().totp_of(user).await?;
        let Some(factor) = factor else {
            return Err(AuthError::InvalidMfaCode);
        };
        if factor.enabled_at.is_some() {
            return Err(AuthError::MfaAlreadyEnabled);
        }
        let secret = self
            .keys
            .mfa
            .open_secret(user, &factor.secret_sealed)
            .map_err(AuthError::internal)?;
        let at = self.now();
        let Some(step) = matching_step(&secret, code, at) else {
            let event = Event::failure(EventKind::TotpEnabled, client)
                .user(user)
                .detail("invalid_code");
            self.record_alone(event).await;
            return Err(AuthError::InvalidMfaCode);
        };
        let codes = new_recovery_codes(RECOVERY_CODES);
        let hashes = codes
            .iter()
            .filter_map(|c| normalize_recovery_code(c))
            .map(|c| recovery_code_hash(user, &c))
            .collect();
        let write = self.store.begin_write().await?;
        let factors = write.second_factors();
        // Replaced by a new enrolment, or enabled by another request, meanwhile.
        if !factors.enable_totp(user, step, at).await? {
            return abort(write, AuthError::InvalidMfaCode).await;
        }
        factors.replace_recovery_codes(user, hashes, at).await?;
        let event = Event::success(EventKind::TotpEnabled, client)
            .user(user)
            .session(caller.session_id);
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        tracing::info!(user_id = %user, "TOTP enabled");
        Ok(codes)
    }

    /// Removes the caller's factor (pending or enabled), recovery codes and pending MFA
    /// tickets after checking `password`; when a factor was enabled, every other session
    /// of the user is revoked too. `false` if there was no enabled factor.
    pub async fn disable_totp(
        &self,
        caller: &Principal,
        password: &str,
        client: &Client,
    ) -> Result<bool, AuthError> {
        let user = caller.account.id;
        let session = caller.session_id;
        self.check_password(user, password, client).await?;
        let at = self.now();
        let write = self.store.begin_write().await?;
        let removed = write.second_factors().delete_all_of(user).await?;
        if removed {
            write
                .sessions()
                .revoke_all_of_except(user, session, at)
                .await?;
            let event = Event::success(EventKind::TotpDisabled, client)
                .user(user)
                .session(session);
            self.record(&write, event, at).await?;
        }
        self.store.commit_write(write).await?;
        if removed {
            tracing::info!(user_id = %user, "TOTP disabled; other sessions revoked");
        }
        Ok(removed)
    }

    /// Whether `user` has an enabled second factor (`User.mfaEnabled`).
    pub async fn mfa_enabled(&self, user: Uuid) -> Result<bool, AuthError> {
        let factor = self.store.second_factors().totp_of(user).await?;
        Ok(factor.is_some_and(|f| f.enabled_at.is_some()))
    }

    /// Counts one code tried for `user` against the second-factor budget.
    pub(super) async fn count_mfa_attempt(
        &self,
        user: Uuid,
        client: &Client,
    ) -> Result<(), AuthError> {
        let bucket = user.to_string();
        if let Err(refused) = self.limits.mfa_as(&bucket).await {
            self.record_trip("mfa_account", &bucket, Some(user), client)
                .await;
            return Err(refused);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"12345678901234567890";

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn the_rfc_6238_sha1_vectors_hold() {
        // RFC 6238 appendix B, SHA-1, the last 6 of its 8 digits.
        assert_eq!(code_at(SECRET, at(59)).unwrap(), "287082");
        assert_eq!(code_at(SECRET, at(1_111_111_109)).unwrap(), "081804");
        assert_eq!(code_at(SECRET, at(1_234_567_890)).unwrap(), "005924");
    }

    #[test]
    fn a_code_matches_its_step_and_the_steps_next_to_it_only() {
        let now = at(1_700_000_000);
        let step = 1_700_000_000 / 30;
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = code_at(SECRET, now + chrono::Duration::seconds(30 * offset)).unwrap();
            let matched = matching_step(SECRET, &code, now);
            assert_eq!(matched.is_some(), accepted, "offset {offset}");
            if accepted {
                assert_eq!(matched, Some(step + offset));
            }
        }
    }

    #[test]
    fn anything_but_six_digits_is_no_code() {
        let now = at(1_700_000_000);
        let code = code_at(SECRET, now).unwrap();
        assert!(matching_step(SECRET, &format!(" {code} "), now).is_some());
        for junk in ["", "12345", "1234567", "+12345", "12345a", "１２３４５６"] {
            assert_eq!(matching_step(SECRET, junk, now), None, "{junk}");
        }
    }

    #[test]
    fn labels_lose_their_colons_and_url_issuers_become_hosts() {
        assert_eq!(label_part("auth-server"), "auth-server");
        assert_eq!(label_part("https://auth.example.com/"), "auth.example.com");
        assert_eq!(label_part("a:b"), "a_b");
    }
}
