//! Login with a second factor: the password check ends in a challenge instead of tokens
//! (`MFA_REQUIRED` with a ticket), and `verifyMfa` spends the ticket and a code for the
//! session `login` would have opened.
//!
//! A ticket is single-use, lives [`TICKET_TTL`], is stored only as a keyed hash (so any
//! instance can finish the login) and is bound to its account and to the password hash
//! its check passed against: after a change of password it is refused. Every failure of
//! a ticket (malformed, unknown, expired, spent, of another purpose) is `INVALID_TOKEN`;
//! every failure of a code is `INVALID_MFA_CODE`, and leaves the ticket usable. Each code
//! tried counts against the account's second-factor budget (`RATE_LIMIT_MFA_PER_ACCOUNT`).
//!
//! ```text
//!   verifyMfa(ticket, code)
//!     ticket malformed / unknown / expired / password changed ─► INVALID_TOKEN
//!     budget spent ────────────────────────────────────────────► RATE_LIMITED
//!     6 digits matching step s (±1), s > last used step ─┐
//!     an unused recovery code of the account ────────────┤
//!     anything else ─────────────────────────────────────┼─────► INVALID_MFA_CODE
//!                                                         ▼
//!     one transaction: delete the ticket (lost: INVALID_TOKEN), move last_used_step to s
//!     or delete the recovery code (lost: INVALID_MFA_CODE), open the session (amr).
//! ```

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::events::{Client, Event, EventKind};
use super::mailing::abort;
use super::tokens::Amr;
use super::tokens::mfa::{MfaKeys, normalize_recovery_code, recovery_code_hash};
use super::totp::matching_step;
use super::{AuthService, Issued};
use crate::error::{AuthError, MfaChallenge};
use crate::store::{NewMfaTicket, SecondFactors};

/// How long a ticket from `login` can be spent.
pub const TICKET_TTL: chrono::Duration = chrono::Duration::minutes(5);

/// What the code given to `verifyMfa` turned out to be.
enum Code {
    /// A TOTP code of this time step.
    Totp(i64),
    /// A recovery code, by its stored hash.
    Recovery(String),
}

impl AuthService {
    /// The challenge for `user`, whose password check passed against `password_hash`, if
    /// the account has an enabled second factor: a ticket is stored through `factors`
    /// (the pool, or the caller's write).
    pub(super) async fn mfa_challenge<C: ConnectionTrait>(
        &self,
        factors: &SecondFactors<'_, C>,
        user: Uuid,
        password_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<MfaChallenge>, AuthError> {
        let factor = factors.totp_of(user).await?;
        if factor.is_none_or(|f| f.enabled_at.is_none()) {
            return Ok(None);
        }
        let mut methods = vec!["totp"];
        if factors.recovery_codes_left(user).await? > 0 {
            methods.push("recovery_code");
        }
        let token = self.keys.mfa.new_ticket();
        factors
            .insert_ticket(NewMfaTicket {
                user_id: user,
                token_hash: self.keys.mfa.ticket_hash(&token),
                password_digest: self.keys.mfa.password_digest(password_hash),
                created_at: at,
                expires_at: at + TICKET_TTL,
            })
            .await?;
        Ok(Some(MfaChallenge { token, methods }))
    }

    /// Spends `ticket` with `code` (a TOTP code or a recovery code) and opens the session
    /// the login was for.
    pub async fn verify_mfa(
        &self,
        ticket: &str,
        code: &str,
        client: &Client,
    ) -> Result<Issued, AuthError> {
        let result = self.check_mfa(ticket, code, client).await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(AuthError::InvalidToken) => "invalid_mfa_token",
            Err(AuthError::InvalidMfaCode) => "invalid_mfa_code",
            Err(AuthError::RateLimited { .. }) => "rate_limited",
            Err(_) => "error",
        };
        metrics::counter!("auth_logins_total", "outcome" => outcome).increment(1);
        result
    }

    /// [`verify_mfa`](Self::verify_mfa), uncounted.
    async fn check_mfa(&self, raw: &str, code: &str, client: &Client) -> Result<Issued, AuthError> {
        if !MfaKeys::is_ticket_shaped(raw) {
            return Err(AuthError::InvalidToken);
        }
        let at = self.now();
        let factors = self.store.second_factors();
        let ticket = factors
            .find_ticket(self.keys.mfa.ticket_hash(raw), at)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let user = ticket.user_id;
        self.count_mfa_attempt(user, client).await?;
        let credentials = self.store.users().credentials_by_id(user).await?;
        let bound = credentials.is_some_and(|c| {
            self.keys.mfa.password_digest(&c.password_hash) == ticket.password_digest
        });
        if !bound {
            // The password changed since the login: the check it records is void.
            return Err(AuthError::InvalidToken);
        }
        let Some(judged) = self.judge_code(user, code, at).await? else {
            self.mfa_failure(user, client, "invalid_code").await;
            return Err(AuthError::InvalidMfaCode);
        };
        let write = self.store.begin_write().await?;
        // The first statement writes, so SQLite takes its write lock at once.
        if !write.second_factors().consume_ticket(ticket.id, at).await? {
            return abort(write, AuthError::InvalidToken).await;
        }
        let (won, amr, method) = match &judged {
            Code::Totp(step) => (
                write.second_factors().use_step(user, *step).await?,
                Amr::PasswordOtp,
                "totp",
            ),
            Code::Recovery(hash) => (
                write
                    .second_factors()
                    .use_recovery_code(user, hash.clone())
                    .await?,
                Amr::PasswordRecoveryCode,
                "recovery_code",
            ),
        };
        if !won {
            // A code of this step (or a later one) was accepted already, or the recovery
            // code was used: the ticket stays for another code.
            write.rollback().await?;
            self.mfa_failure(user, client, "code_used").await;
            return Err(AuthError::InvalidMfaCode);
        }
        let Some(account) = write.users().by_id(user).await? else {
            return abort(write, AuthError::InvalidToken).await;
        };
        let issued = self.open_session(&write, account, at, client, amr).await?;
        let event = Event::success(EventKind::Login, client)
            .user(user)
            .session(issued.session_id)
            .detail(method);
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        Ok(issued)
    }

    /// What `code` is for `user` at `at`, if it can be right: a TOTP code matching a step
    /// near `at` that is not used yet, or a recovery code's shape (whether it is one of
    /// the user's is for the delete that spends it).
    async fn judge_code(
        &self,
        user: Uuid,
        code: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Code>, AuthError> {
        let trimmed = code.trim();
        if trimmed.len() == super::totp::DIGITS && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            let factor = self.store.second_factors().totp_of(user).await?;
            let Some(factor) = factor.filter(|f| f.enabled_at.is_some()) else {
                return Ok(None);
            };
            let secret = self
                .keys
                .mfa
                .open_secret(user, &factor.secret_sealed)
                .map_err(AuthError::internal)?;
            let fresh = matching_step(&secret, trimmed, at)
                .filter(|step| factor.last_used_step.is_none_or(|last| *step > last));
            return Ok(fresh.map(Code::Totp));
        }
        Ok(normalize_recovery_code(code).map(|c| Code::Recovery(recovery_code_hash(user, &c))))
    }

    /// Records a refused code for `user`.
    async fn mfa_failure(&self, user: Uuid, client: &Client, why: &str) {
        let event = Event::failure(EventKind::MfaCode, client)
            .user(user)
            .detail(why);
        self.record_alone(event).await;
    }
}
