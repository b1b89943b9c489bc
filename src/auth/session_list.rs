//! What a signed-in user can see of their account's activity: their live sessions (and
//! revoking one), and their security events a page at a time.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::events::{Client, Event, EventKind};
use super::{AuthService, Principal};
use crate::domain::InvalidInput;
use crate::entity::security_event;
use crate::error::AuthError;
use crate::store::EventCursor;

/// The most sessions `sessions` lists (the newest); `logout(allSessions: true)` ends them
/// all however many there are.
pub const MAX_LISTED_SESSIONS: u64 = 100;
/// The bounds of `securityEvents(first:)`.
pub const MAX_PAGE: i32 = 100;

/// One live session, as its user sees it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: Uuid,
    /// The session of the access token asking.
    pub current: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Seen at the last refresh, else at the opening.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Seen when the session was opened.
    pub opened_ip: Option<String>,
    pub opened_user_agent: Option<String>,
}

/// A page of security events, newest first.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// Each with its cursor.
    pub events: Vec<(String, security_event::Model)>,
    pub has_next_page: bool,
    /// Whether a cursor was given (events precede this page).
    pub has_previous_page: bool,
}

impl AuthService {
    /// The caller's live sessions, newest first (at most [`MAX_LISTED_SESSIONS`]).
    pub async fn sessions(&self, caller: &Principal) -> Result<Vec<SessionInfo>, AuthError> {
        let rows = self
            .store
            .sessions()
            .live_of(caller.account.id, self.now(), MAX_LISTED_SESSIONS)
            .await?;
        Ok(rows
            .into_iter()
            .map(|s| SessionInfo {
                id: s.id,
                current: s.id == caller.session_id,
                created_at: s.created_at,
                last_used_at: s.last_used_at.unwrap_or(s.created_at),
                expires_at: s.expires_at,
                ip: s.last_ip.or_else(|| s.created_ip.clone()),
                user_agent: s.last_user_agent.or_else(|| s.created_user_agent.clone()),
                opened_ip: s.created_ip,
                opened_user_agent: s.created_user_agent,
            })
            .collect())
    }

    /// Revokes one of the caller's live sessions (the caller's own included): `true` if
    /// it did, `false` for any other id (unknown, another user's, already revoked), alike.
    pub async fn revoke_session(
        &self,
        caller: &Principal,
        id: &str,
        client: &Client,
    ) -> Result<bool, AuthError> {
        let id = Uuid::try_parse(id.trim())
            .map_err(|_| InvalidInput::new("id", "not a session id (a UUID)"))?;
        let at = self.now();
        let write = self.store.begin_write().await?;
        if !write
            .sessions()
            .revoke_of(id, caller.account.id, at)
            .await?
        {
            write.rollback().await?;
            return Ok(false);
        }
        let event = Event::success(EventKind::SessionRevoked, client)
            .user(caller.account.id)
            .session(id)
            .detail(if id == caller.session_id {
                "current"
            } else {
                "other"
            });
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        Ok(true)
    }

    /// A page of the caller's security events, newest first: `first` of them (1 to
    /// [`MAX_PAGE`]) after the cursor `after`.
    pub async fn security_events(
        &self,
        caller: &Principal,
        first: i32,
        after: Option<&str>,
    ) -> Result<EventPage, AuthError> {
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(
                InvalidInput::new("first", format!("must be between 1 and {MAX_PAGE}")).into(),
            );
        }
        let cursor = after.map(decode_cursor).transpose()?;
        let limit = u64::try_from(first).unwrap_or(1);
        let mut rows = self
            .store
            .security_events()
            .page(caller.account.id, cursor, limit + 1)
            .await?;
        let has_next_page = rows.len() as u64 > limit;
        rows.truncate(first as usize);
        Ok(EventPage {
            events: rows
                .into_iter()
                .map(|row| (encode_cursor(row.at, row.id), row))
                .collect(),
            has_next_page,
            has_previous_page: cursor.is_some(),
        })
    }

    /// Deletes security events older than the retention; how many.
    pub async fn purge_security_events(&self) -> Result<u64, AuthError> {
        let Some(cutoff) = self.now().checked_sub_signed(self.events_retention) else {
            return Ok(0);
        };
        self.store.ensure_file()?;
        let deleted = self.store.security_events().delete_before(cutoff).await?;
        self.store.ensure_file()?;
        Ok(deleted)
    }
}

/// Cursors are opaque to clients: `v1:<microseconds>:<event id>`, in unpadded base64url.
fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    use base64::Engine;
    let raw = format!("v1:{}:{}", at.timestamp_micros(), id.simple());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(cursor: &str) -> Result<EventCursor, AuthError> {
    use base64::Engine;
    let malformed = || InvalidInput::new("after", "not a cursor of securityEvents");
    // A real cursor is about 60 characters; anything much longer is not one.
    if cursor.len() > 128 {
        return Err(malformed().into());
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| malformed())?;
    let raw = std::str::from_utf8(&raw).map_err(|_| malformed())?;
    let mut parts = raw.split(':');
    let (Some("v1"), Some(micros), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed().into());
    };
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(malformed)?;
    let id = Uuid::try_parse(id).map_err(|_| malformed())?;
    Ok(EventCursor { at, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips() {
        let at = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        let cursor = decode_cursor(&encode_cursor(at, id)).unwrap();
        assert_eq!(cursor, EventCursor { at, id });
    }

    #[test]
    fn malformed_cursors_are_bad_input_on_after() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        for bad in [
            String::new(),
            "not base64!".to_owned(),
            b64("v2:1:00000000000000000000000000000000"),
            b64("v1:x:00000000000000000000000000000000"),
            b64("v1:1:nope"),
            b64("v1:1:00000000000000000000000000000000:extra"),
            b64(&format!("v1:{}:00000000000000000000000000000000", i64::MAX)),
            "A".repeat(10_000),
        ] {
            match decode_cursor(&bad) {
                Err(AuthError::BadUserInput(e)) => assert_eq!(e.field, "after", "{bad}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
