//! GraphQL object and input types. Built from service values, never from database rows.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};

use crate::auth::{Account, AuthService, Issued, PasskeyChallenge, PasskeyInfo, SessionInfo};
use crate::entity::security_event;
use crate::error::AuthError;

// It repeats `auth::Account`'s fields on purpose: the schema is a contract of its own, so a
// field added to the service reaches clients only when added here. (Not a doc comment: that
// would become the type's description in the schema.)
/// A registered account.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct User {
    #[graphql(skip)]
    pub account_id: uuid::Uuid,
    pub id: ID,
    /// Normalised: trimmed and lower-case.
    pub email: String,
    /// As chosen at registration, if any.
    pub username: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Whether the address has been proven (`verifyEmail`, or a password reset).
    pub email_verified: bool,
}

impl From<Account> for User {
    fn from(a: Account) -> Self {
        Self {
            account_id: a.id,
            id: ID(a.id.to_string()),
            email: a.email,
            username: a.username,
            created_at: a.created_at,
            updated_at: a.updated_at,
            email_verified: a.email_verified_at.is_some(),
        }
    }
}

#[ComplexObject]
impl User {
    /// Whether a second factor (TOTP) is on: `login` then answers `MFA_REQUIRED`.
    async fn mfa_enabled(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(auth(ctx)?.mfa_enabled(self.account_id).await?)
    }
}

/// A new TOTP secret, pending until `confirmTotp`: show it once, as a QR code of
/// `otpauthUri` or as text.
#[derive(SimpleObject)]
pub struct TotpEnrollment {
    /// Base32 (RFC 4648, no padding), for typing into an authenticator app.
    pub secret: String,
    /// `otpauth://totp/...`: the Key URI authenticator apps read from a QR code (SHA-1,
    /// 6 digits, 30 s).
    pub otpauth_uri: String,
    /// `otpauthUri` as a QR code: an SVG document (a square `viewBox` in module units, black
    /// on white with the quiet zone), to show for the app to scan; size it with CSS.
    pub qr_code_svg: String,
}

impl From<crate::auth::TotpEnrollment> for TotpEnrollment {
    fn from(e: crate::auth::TotpEnrollment) -> Self {
        Self {
            secret: e.secret,
            otpauth_uri: e.otpauth_uri,
            qr_code_svg: e.qr_code_svg,
        }
    }
}

/// A token pair and the account it belongs to.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// Spend with `refreshToken` for a new pair; single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i32,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i32,
    pub user: User,
}

impl From<Issued> for AuthPayload {
    fn from(i: Issued) -> Self {
        Self {
            access_token: i.access_token,
            refresh_token: i.refresh_token.into_string(),
            token_type: "Bearer".to_owned(),
            // Config refuses lifetimes beyond i32 seconds.
            expires_in: i.expires_in.try_into().unwrap_or(i32::MAX),
            refresh_expires_in: i.refresh_expires_in.try_into().unwrap_or(i32::MAX),
            user: i.account.into(),
        }
    }
}

/// One of the caller's live sessions: a device or browser signed in.
#[derive(SimpleObject)]
pub struct Session {
    /// Give it to `revokeSession` to sign that device out.
    pub id: ID,
    /// Whether this is the session of the access token asking.
    pub current: bool,
    pub created_at: DateTime<Utc>,
    /// The last refresh (or the sign-in); `me` does not move it.
    pub last_used_at: DateTime<Utc>,
    /// When it ends unless refreshed.
    pub expires_at: DateTime<Utc>,
    /// The user agent at the last refresh (or the sign-in), cut to 256 characters.
    pub user_agent: Option<String>,
    /// The client address at the last refresh (or the sign-in).
    pub ip: Option<String>,
    /// The user agent that signed in.
    pub opened_user_agent: Option<String>,
    /// The client address that signed in.
    pub opened_ip: Option<String>,
}

impl From<SessionInfo> for Session {
    fn from(s: SessionInfo) -> Self {
        Self {
            id: ID(s.id.to_string()),
            current: s.current,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            user_agent: s.user_agent,
            ip: s.ip,
            opened_user_agent: s.opened_user_agent,
            opened_ip: s.opened_ip,
        }
    }
}

/// Something that happened to the account: a sign-in, a failed one, a logout, a changed
/// password, a refresh token replayed, a rate limit hit, ...
#[derive(SimpleObject)]
pub struct SecurityEvent {
    pub id: ID,
    /// `register`, `login`, `refresh_reuse`, `logout`, `logout_all`, `session_revoked`,
    /// `password_check`, `password_changed`, `password_reset`, `email_verified`,
    /// `email_changed`, `account_deleted`, `rate_limited`, `totp_enrolled`,
    /// `totp_enabled`, `totp_disabled`, `mfa_code`, `passkey_added`, `passkey_removed`
    /// (a passkey login or signup is a `login` or `register` with the detail `passkey`).
    pub kind: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session it concerns, if any.
    pub session_id: Option<ID>,
    /// A short qualifier: why a login failed, which limit refused, ...
    pub detail: Option<String>,
}

impl From<security_event::Model> for SecurityEvent {
    fn from(e: security_event::Model) -> Self {
        Self {
            id: ID(e.id.to_string()),
            kind: e.kind,
            outcome: e.outcome,
            at: e.at,
            ip: e.ip,
            user_agent: e.user_agent,
            session_id: e.session_id.map(|s| ID(s.to_string())),
            detail: e.detail,
        }
    }
}

#[derive(InputObject)]
pub struct RegisterInput {
    pub email: String,
    /// 8 characters to 72 bytes.
    pub password: String,
    /// Optional; 3 to 32 letters, digits, `_`, `.`, `-`.
    pub username: Option<String>,
}

/// Exactly one of `email` or `username`.
#[derive(InputObject)]
pub struct LoginInput {
    pub email: Option<String>,
    pub username: Option<String>,
    pub password: String,
}

/// The auth service the schema was built with; missing, it is a fault of the server.
pub fn auth<'a>(ctx: &Context<'a>) -> Result<&'a AuthService, AuthError> {
    auth_arc(ctx).map(Arc::as_ref)
}

/// As [`auth`], shared, for work that outlives the request.
pub fn auth_arc<'a>(ctx: &Context<'a>) -> Result<&'a Arc<AuthService>, AuthError> {
    ctx.data_opt::<Arc<AuthService>>()
        .ok_or_else(|| AuthError::internal_msg("auth service missing"))
}

/// A begun passkey ceremony: give `options` to the browser and `challengeId` back to the
/// matching `finish…` mutation, within 5 minutes, once.
#[derive(SimpleObject)]
#[graphql(name = "PasskeyChallenge")]
pub struct PasskeyChallengeObject {
    /// Single-use; finishes only the ceremony it began.
    pub challenge_id: String,
    /// JSON, `{"publicKey": {…}}`: the options for `navigator.credentials.create()`
    /// (registration, signup) or `navigator.credentials.get()` (login), with binary values
    /// in base64url, as `PublicKeyCredential.parseCreationOptionsFromJSON` and
    /// `parseRequestOptionsFromJSON` read the `publicKey` member.
    pub options: String,
}

impl From<PasskeyChallenge> for PasskeyChallengeObject {
    fn from(c: PasskeyChallenge) -> Self {
        Self {
            challenge_id: c.challenge_id,
            options: c.options,
        }
    }
}

/// One of the caller's passkeys.
#[derive(SimpleObject)]
pub struct Passkey {
    /// Give it to `removePasskey`.
    pub id: ID,
    /// The name given at registration (`"Passkey"` if none).
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// The last login with it; `null` until the first.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<PasskeyInfo> for Passkey {
    fn from(p: PasskeyInfo) -> Self {
        Self {
            id: ID(p.id.to_string()),
            name: p.name,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}
