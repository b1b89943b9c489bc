//! Passkeys (WebAuthn): adding one to an account, logging in with one, listing and
//! removing them, and opening an account with a passkey alone. The ceremonies are
//! webauthn-rs's; this file keeps their state and turns their outcome into sessions.
//!
//! Every ceremony is a begin and a finish. The begin stores webauthn-rs's state in
//! `passkey_challenges` under the keyed hash of a random id, and hands the client the id
//! and the options for `navigator.credentials.create` / `.get` (JSON). The finish spends
//! the id (one conditional delete: of two finishes exactly one goes on, on any instance),
//! whatever the credential then turns out to be, so a challenge is answered once.
//!
//! Passkeys are discoverable credentials with user verification: registration asks the
//! authenticator to keep the credential (resident key) and to verify the user (PIN,
//! biometric), so a login needs no address: the authenticator names the account (its
//! user handle is the account id) and the credential, which must be that account's.
//! A passkey login is both factors at once (`amr` `hwk mfa`): an account with TOTP is not
//! asked for a code.
//!
//! ```text
//!   finishPasskeyLogin(challengeId, credential)
//!     credential not JSON of a PublicKeyCredential ──────────────► BAD_USER_INPUT
//!     id malformed / unknown / expired / spent / other purpose ──► INVALID_TOKEN
//!     no such credential, of another account, bad signature,
//!     another origin, no user verification, counter went back ──► INVALID_PASSKEY
//!     one transaction: the credential's new counter (conditional on the state verified
//!     against: a racing login with the same counter loses), the session, the event.
//! ```

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Webauthn, WebauthnBuilder,
};

use super::events::{Client, Event, EventKind};
use super::mailing::abort;
use super::passwords::NO_PASSWORD;
use super::tokens::{Amr, Purpose};
use super::{Account, AuthService, Issued, Principal};
use crate::config::PasskeySettings;
use crate::domain::{Email, InvalidInput, Username};
use crate::error::AuthError;
use crate::store::{NewPasskey, NewPasskeyChallenge, NewUser, is_unique_violation};

/// How long a ceremony may take between its begin and its finish (the options ask the
/// browser for the same).
pub const CHALLENGE_TTL: chrono::Duration = chrono::Duration::minutes(5);
/// Registrations one account may have begun and not finished; a new one drops the oldest.
pub const MAX_PENDING_REGISTRATIONS: u64 = 5;
/// Passkeys one account may hold.
pub const MAX_PASSKEYS: u64 = 20;
/// The longest name a passkey may have, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// The name of a passkey registered without one.
const DEFAULT_NAME: &str = "Passkey";

/// The purposes a challenge is stored for.
const REGISTER: &str = "register";
const LOGIN: &str = "login";
const SIGNUP: &str = "signup";

/// A begun ceremony: the id `finish…` takes back, and the options (JSON) for the
/// browser's `navigator.credentials.create` or `.get`, `{"publicKey": {…}}`.
#[derive(Debug, Clone)]
pub struct PasskeyChallenge {
    pub challenge_id: String,
    pub options: String,
}

/// A passkey as its owner sees it.
#[derive(Debug, Clone)]
pub struct PasskeyInfo {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The relying party, built from settings; `None` when passkeys are off.
pub fn relying_party(settings: Option<&PasskeySettings>) -> Option<Webauthn> {
    let settings = settings?;
    let (first, rest) = settings.origins.split_first()?;
    let mut builder = WebauthnBuilder::new(&settings.rp_id, first)
        .ok()?
        .rp_name(&settings.rp_name)
        .timeout(CHALLENGE_TTL.to_std().ok()?);
    for origin in rest {
        builder = builder.append_allowed_origin(origin);
    }
    match builder.build() {
        Ok(webauthn) => Some(webauthn),
        Err(e) => {
            tracing::error!(error = %e, "the WebAuthn settings were refused; passkeys are off");
            None
        }
    }
}

impl AuthService {
    fn webauthn(&self) -> Result<&Webauthn, AuthError> {
        self.webauthn.as_deref().ok_or(AuthError::PasskeysOff)
    }

    /// Begins adding a passkey to the caller's account; credentials it has already are
    /// excluded (an authenticator holding one refuses to make another). Beyond
    /// [`MAX_PENDING_REGISTRATIONS`] pending for the account, the oldest is dropped.
    pub async fn begin_passkey_registration(
        &self,
        caller: &Principal,
    ) -> Result<PasskeyChallenge, AuthError> {
        let webauthn = self.webauthn()?;
        let user = caller.account.id;
        let existing = self.store.passkeys().of_user(user).await?;
        if existing.len() as u64 >= MAX_PASSKEYS {
            return Err(InvalidInput::new(
                "passkey",
                format!("an account holds at most {MAX_PASSKEYS} passkeys; remove one first"),
            )
            .into());
        }
        let exclude = existing
            .iter()
            .filter_map(|row| serde_json::from_str::<Passkey>(&row.credential).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let name = &caller.account.email;
        let display = caller.account.username.as_deref().unwrap_or(name);
        let (options, state) = webauthn
            .start_passkey_registration(user, name, display, Some(exclude))
            .map_err(AuthError::internal)?;
        self.store_challenge(REGISTER, Some(user), None, None, &state, &options)
            .await
    }

    /// Finishes adding a passkey: the credential the browser made for the challenge.
    pub async fn finish_passkey_registration(
        &self,
        caller: &Principal,
        challenge_id: &str,
        credential: &str,
        name: Option<&str>,
        client: &Client,
    ) -> Result<PasskeyInfo, AuthError> {
        let webauthn = self.webauthn()?;
        let name = passkey_name(name)?;
        let credential: RegisterPublicKeyCredential = parse_credential(credential)?;
        let at = self.now();
        let user = caller.account.id;
        let challenge = self.spend_challenge(challenge_id, REGISTER, at).await?;
        if challenge.user_id != Some(user) {
            return Err(AuthError::InvalidToken);
        }
        let state: PasskeyRegistration = open_state(&challenge.state)?;
        let passkey = webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| refused("registration", e))?;
        let info = PasskeyInfo {
            id: Uuid::now_v7(),
            name,
            created_at: at,
            last_used_at: None,
        };
        let write = self.store.begin_write().await?;
        // Before the count: two finishes must not both see room for one more (and on
        // SQLite the first statement writes, taking the write lock at once).
        write.passkeys().lock_owner(user).await?;
        if write.passkeys().count_of_user(user).await? >= MAX_PASSKEYS {
            return abort(write, AuthError::InvalidPasskey).await;
        }
        if let Err(e) = write
            .passkeys()
            .insert(new_passkey(&info, user, &passkey)?)
            .await
        {
            write.rollback().await?;
            // Registered before, to this account or another: webauthn-rs asks every
            // server to refuse a credential id twice.
            return Err(if is_unique_violation(&e) {
                AuthError::InvalidPasskey
            } else {
                e.into()
            });
        }
        let event = Event::success(EventKind::PasskeyAdded, client)
            .user(user)
            .detail(&info.name);
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        Ok(info)
    }

    /// Begins a login with a passkey: no account named, the authenticator will choose.
    pub async fn begin_passkey_login(&self) -> Result<PasskeyChallenge, AuthError> {
        let webauthn = self.webauthn()?;
        let (mut options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(AuthError::internal)?;
        // webauthn-rs asks for conditional mediation (the autofill prompt); a client that
        // wants it sets it itself, the default is the plain modal prompt.
        options.mediation = None;
        self.store_challenge(LOGIN, None, None, None, &state, &options)
            .await
    }

    /// Finishes a login with a passkey and opens the session. Counted like a login.
    pub async fn finish_passkey_login(
        &self,
        challenge_id: &str,
        credential: &str,
        client: &Client,
    ) -> Result<Issued, AuthError> {
        let result = self
            .check_passkey_login(challenge_id, credential, client)
            .await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(AuthError::InvalidPasskey) => "invalid_passkey",
            Err(AuthError::InvalidToken) => "invalid_passkey_challenge",
            Err(AuthError::EmailNotVerified) => "email_not_verified",
            Err(_) => "error",
        };
        metrics::counter!("auth_logins_total", "outcome" => outcome).increment(1);
        result
    }

    /// [`finish_passkey_login`](Self::finish_passkey_login), uncounted.
    async fn check_passkey_login(
        &self,
        challenge_id: &str,
        credential: &str,
        client: &Client,
    ) -> Result<Issued, AuthError> {
        let webauthn = self.webauthn()?;
        let credential: PublicKeyCredential = parse_credential(credential)?;
        let at = self.now();
        let challenge = self.spend_challenge(challenge_id, LOGIN, at).await?;
        let state: DiscoverableAuthentication = open_state(&challenge.state)?;
        let (user, credential_id) = webauthn
            .identify_discoverable_authentication(&credential)
            .map_err(|e| refused("login", e))?;
        let Some(row) = self
            .store
            .passkeys()
            .by_credential(&credential_hash(credential_id))
            .await?
            .filter(|row| row.user_id == user)
        else {
            self.passkey_failure(None, client, "unknown_credential")
                .await;
            return Err(AuthError::InvalidPasskey);
        };
        let mut passkey: Passkey = open_state(&row.credential)?;
        let verified =
            match webauthn.finish_discoverable_authentication_v2(&credential, state, &passkey) {
                Ok(verified) => verified,
                Err(e) => {
                    let _ = refused("login", e);
                    self.passkey_failure(Some(user), client, "verification_failed")
                        .await;
                    return Err(AuthError::InvalidPasskey);
                }
            };
        passkey.update_credential(&verified);
        let updated = serde_json::to_string(&passkey).map_err(AuthError::internal)?;
        let write = self.store.begin_write().await?;
        // The first statement writes, so SQLite takes its write lock at once.
        if !write
            .passkeys()
            .record_use(row.id, &row.credential, updated, at)
            .await?
        {
            // Another login verified against the same state first (the same counter
            // twice), or the passkey was removed meanwhile.
            write.rollback().await?;
            self.passkey_failure(Some(user), client, "raced").await;
            return Err(AuthError::InvalidPasskey);
        }
        let Some(account) = write.users().by_id(user).await? else {
            return abort(write, AuthError::InvalidPasskey).await;
        };
        if self.require_verification && account.email_verified_at.is_none() {
            return abort(write, AuthError::EmailNotVerified).await;
        }
        let issued = self
            .open_session(&write, account, at, client, Amr::Passkey)
            .await?;
        let event = Event::success(EventKind::Login, client)
            .user(user)
            .session(issued.session_id)
            .detail("passkey");
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        Ok(issued)
    }

    /// The caller's passkeys, oldest first.
    pub async fn passkeys(&self, caller: &Principal) -> Result<Vec<PasskeyInfo>, AuthError> {
        let rows = self.store.passkeys().of_user(caller.account.id).await?;
        Ok(rows
            .into_iter()
            .map(|row| PasskeyInfo {
                id: row.id,
                name: row.name,
                created_at: row.created_at,
                last_used_at: row.last_used_at,
            })
            .collect())
    }

    /// Removes the caller's passkey `id`; `false` if they have none by that id. The last
    /// passkey of an account without a password stays (it is the only way in, besides a
    /// password reset): `BAD_USER_INPUT`.
    pub async fn remove_passkey(
        &self,
        caller: &Principal,
        id: &str,
        client: &Client,
    ) -> Result<bool, AuthError> {
        let Ok(id) = Uuid::parse_str(id.trim()) else {
            return Ok(false);
        };
        let user = caller.account.id;
        let at = self.now();
        let write = self.store.begin_write().await?;
        if !write.passkeys().delete(user, id).await? {
            write.rollback().await?;
            return Ok(false);
        }
        // Before the count, so two removals do not both count the other's passkey as left;
        // after the delete, so a login holding this passkey's row and then waiting for the
        // account's (MySQL's foreign-key check of its session) does not deadlock with us.
        write.passkeys().lock_owner(user).await?;
        let passwordless = write
            .users()
            .credentials_by_id(user)
            .await?
            .is_some_and(|c| c.password_hash == NO_PASSWORD);
        if passwordless && write.passkeys().count_of_user(user).await? == 0 {
            return abort(
                write,
                InvalidInput::new(
                    "id",
                    "this is the account's only way to log in: set a password first \
                     (requestPasswordReset) or add another passkey",
                )
                .into(),
            )
            .await;
        }
        let event = Event::success(EventKind::PasskeyRemoved, client).user(user);
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        Ok(true)
    }

    /// Begins opening an account with a passkey alone: the address and username are
    /// checked as `register` checks them (and counted against its per-IP budget), the
    /// account is created by the finish.
    pub async fn begin_passkey_signup(
        &self,
        email: Email,
        username: Option<Username>,
    ) -> Result<PasskeyChallenge, AuthError> {
        let webauthn = self.webauthn()?;
        self.ensure_available(&email, username.as_ref()).await?;
        let user = Uuid::new_v4();
        let display = username.as_ref().map_or(email.as_str(), Username::as_str);
        let (options, state) = webauthn
            .start_passkey_registration(user, email.as_str(), display, None)
            .map_err(AuthError::internal)?;
        self.store_challenge(
            SIGNUP,
            Some(user),
            Some(email.as_str().to_owned()),
            username.as_ref().map(|u| u.as_str().to_owned()),
            &state,
            &options,
        )
        .await
    }

    /// Finishes a signup: creates the account (no password), its passkey and, unless the
    /// address must be verified first, its first session. A verification mail goes out as
    /// for `register`.
    pub async fn finish_passkey_signup(
        &self,
        challenge_id: &str,
        credential: &str,
        client: &Client,
    ) -> Result<Issued, AuthError> {
        let webauthn = self.webauthn()?;
        let credential: RegisterPublicKeyCredential = parse_credential(credential)?;
        let at = self.now();
        let challenge = self.spend_challenge(challenge_id, SIGNUP, at).await?;
        let (Some(user), Some(email)) = (challenge.user_id, challenge.email.as_deref()) else {
            return Err(AuthError::internal_msg(
                "a signup challenge without its account",
            ));
        };
        let email = Email::parse(email)?;
        let username = challenge
            .username
            .as_deref()
            .map(Username::parse)
            .transpose()?;
        let state: PasskeyRegistration = open_state(&challenge.state)?;
        let passkey = webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| refused("signup", e))?;
        let account = Account {
            id: user,
            email: email.as_str().to_owned(),
            username: username.as_ref().map(|u| u.as_str().to_owned()),
            created_at: at,
            updated_at: at,
            email_verified_at: None,
        };
        let info = PasskeyInfo {
            id: Uuid::now_v7(),
            name: DEFAULT_NAME.to_owned(),
            created_at: at,
            last_used_at: None,
        };
        let write = self.store.begin_write().await?;
        let new = NewUser {
            account: &account,
            email_skeleton: email.skeleton_key(),
            username_normalized: username.as_ref().map(Username::normalized),
            password_hash: NO_PASSWORD.to_owned(),
        };
        if let Err(e) = write.users().insert(new).await {
            write.rollback().await?;
            if is_unique_violation(&e) {
                // Taken since the begin: say which.
                self.ensure_available(&email, username.as_ref()).await?;
            }
            return Err(e.into());
        }
        if let Err(e) = write
            .passkeys()
            .insert(new_passkey(&info, user, &passkey)?)
            .await
        {
            write.rollback().await?;
            return Err(if is_unique_violation(&e) {
                AuthError::InvalidPasskey
            } else {
                e.into()
            });
        }
        self.mail_token(&write, &account, Purpose::VerifyEmail, email.as_str(), at)
            .await?;
        if self.require_verification {
            let event = Event::success(EventKind::Register, client)
                .user(user)
                .detail("passkey");
            self.record(&write, event, at).await?;
            self.store.commit_write(write).await?;
            self.mail_queued();
            return Err(AuthError::EmailNotVerified);
        }
        let issued = self
            .open_session(&write, account, at, client, Amr::Passkey)
            .await?;
        let event = Event::success(EventKind::Register, client)
            .user(user)
            .session(issued.session_id)
            .detail("passkey");
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        self.mail_queued();
        Ok(issued)
    }

    /// Stores a begun ceremony and makes what the client gets.
    async fn store_challenge<S: serde::Serialize, O: serde::Serialize>(
        &self,
        purpose: &'static str,
        user: Option<Uuid>,
        email: Option<String>,
        username: Option<String>,
        state: &S,
        options: &O,
    ) -> Result<PasskeyChallenge, AuthError> {
        let mut options = serde_json::to_value(options).map_err(AuthError::internal)?;
        if purpose != LOGIN {
            require_discoverable(&mut options);
        }
        let challenge_id = self.keys.mfa.new_ticket();
        let at = self.now();
        self.store.ensure_file()?;
        if let (REGISTER, Some(user)) = (purpose, user) {
            // A session cannot pile up pending registrations: the oldest make room.
            self.store
                .passkeys()
                .keep_newest_challenges(user, REGISTER, MAX_PENDING_REGISTRATIONS - 1)
                .await?;
        }
        self.store
            .passkeys()
            .insert_challenge(NewPasskeyChallenge {
                token_hash: self.keys.mfa.passkey_challenge_hash(&challenge_id),
                purpose,
                user_id: user,
                email,
                username,
                state: serde_json::to_string(state).map_err(AuthError::internal)?,
                created_at: at,
                expires_at: at + CHALLENGE_TTL,
            })
            .await?;
        self.store.ensure_file()?;
        Ok(PasskeyChallenge {
            challenge_id,
            options: options.to_string(),
        })
    }

    /// The live challenge `raw` names for `purpose`, spent: whatever comes next, it is not
    /// answered twice.
    async fn spend_challenge(
        &self,
        raw: &str,
        purpose: &str,
        at: DateTime<Utc>,
    ) -> Result<crate::entity::passkey_challenge::Model, AuthError> {
        if !super::tokens::MfaKeys::is_ticket_shaped(raw) {
            return Err(AuthError::InvalidToken);
        }
        let passkeys = self.store.passkeys();
        let challenge = passkeys
            .find_challenge(self.keys.mfa.passkey_challenge_hash(raw), purpose, at)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        self.store.ensure_file()?;
        if !passkeys.consume_challenge(challenge.id, at).await? {
            return Err(AuthError::InvalidToken);
        }
        self.store.ensure_file()?;
        Ok(challenge)
    }

    /// Records a refused passkey login.
    async fn passkey_failure(&self, user: Option<Uuid>, client: &Client, why: &str) {
        let mut event = Event::failure(EventKind::Login, client).detail(why);
        if let Some(user) = user {
            event = event.user(user);
        }
        self.record_alone(event).await;
    }
}

/// webauthn-rs's registration options asking for a discoverable credential: without one
/// the authenticator could not name the account at login.
fn require_discoverable(options: &mut Value) {
    if let Some(public_key) = options.get_mut("publicKey").and_then(Value::as_object_mut) {
        public_key.insert(
            "authenticatorSelection".to_owned(),
            serde_json::json!({
                "residentKey": "required",
                "requireResidentKey": true,
                "userVerification": "required",
            }),
        );
    }
}

/// The credential JSON a browser made, as webauthn-rs reads it.
fn parse_credential<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, AuthError> {
    serde_json::from_str(raw).map_err(|e| {
        InvalidInput::new(
            "credential",
            format!("not the JSON of a WebAuthn credential (PublicKeyCredential.toJSON()): {e}"),
        )
        .into()
    })
}

/// A state or passkey this server stored, read back.
fn open_state<T: serde::de::DeserializeOwned>(stored: &str) -> Result<T, AuthError> {
    serde_json::from_str(stored).map_err(AuthError::internal)
}

/// A ceremony webauthn-rs refused: the reason is for the log, the client learns only that.
fn refused(ceremony: &str, error: webauthn_rs::prelude::WebauthnError) -> AuthError {
    tracing::info!(ceremony, error = %error, "passkey refused");
    AuthError::InvalidPasskey
}

/// The name given, trimmed, or the default: one line of at most [`MAX_NAME_CHARS`].
fn passkey_name(raw: Option<&str>) -> Result<String, AuthError> {
    let name = raw.map(str::trim).filter(|n| !n.is_empty());
    let Some(name) = name else {
        return Ok(DEFAULT_NAME.to_owned());
    };
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(InvalidInput::new(
            "name",
            format!("a passkey's name is one line of at most {MAX_NAME_CHARS} characters"),
        )
        .into());
    }
    Ok(name.to_owned())
}

/// What the database keeps of a credential id: hex of its SHA-256.
fn credential_hash(credential_id: &[u8]) -> String {
    crate::hex::lower(&Sha256::digest(credential_id))
}

fn new_passkey(info: &PasskeyInfo, user: Uuid, passkey: &Passkey) -> Result<NewPasskey, AuthError> {
    Ok(NewPasskey {
        id: info.id,
        user_id: user,
        credential_hash: credential_hash(passkey.cred_id().as_ref()),
        name: info.name.clone(),
        credential: serde_json::to_string(passkey).map_err(AuthError::internal)?,
        created_at: info.created_at,
    })
}
