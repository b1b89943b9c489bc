//! Accounts: registration and login (with the upgrade of an outdated password hash).

use uuid::Uuid;

use super::events::{Client, Event, EventKind};
use super::tokens::{Amr, Purpose};
use super::{Account, AuthService, Issued};
use crate::domain::{Email, InvalidInput, Password, Username};
use crate::error::AuthError;
use crate::store::{Credentials, NewUser, is_unique_violation};

/// How a login names its account: exactly one of email or username.
#[derive(Debug, Clone)]
pub enum LoginIdentifier {
    Email(Email),
    Username(Username),
}

impl LoginIdentifier {
    /// Both or neither is an error on the `email` field, as the contract says.
    pub fn parse(email: Option<&str>, username: Option<&str>) -> Result<Self, InvalidInput> {
        match (email, username) {
            (Some(e), None) => Email::parse(e).map(Self::Email),
            (None, Some(u)) => Username::parse(u)
                // Login never reveals the policy in detail: any bad username is just bad input.
                .map(Self::Username),
            _ => Err(InvalidInput::new(
                "email",
                "give exactly one of email or username",
            )),
        }
    }

    /// The rate-limit bucket of an identifier that names no account.
    fn unknown_bucket(&self) -> String {
        match self {
            Self::Email(e) => format!("email:{}", e.as_str()),
            Self::Username(u) => format!("username:{}", u.normalized()),
        }
    }
}

impl AuthService {
    /// Creates an account, mails a verification token to its address and opens its first
    /// session. When verification is required, it opens none: the account exists, the
    /// mail is queued, and the answer is `EmailNotVerified`.
    pub async fn register(
        &self,
        email: Email,
        password: Password,
        username: Option<Username>,
        client: &Client,
    ) -> Result<Issued, AuthError> {
        self.ensure_available(&email, username.as_ref()).await?;
        let password_hash = self.passwords.hash(&password).await?;
        let at = self.now();
        let account = Account {
            id: Uuid::new_v4(),
            email: email.as_str().to_owned(),
            username: username.as_ref().map(|u| u.as_str().to_owned()),
            created_at: at,
            updated_at: at,
            email_verified_at: None,
        };
        let new = NewUser {
            account: &account,
            email_skeleton: email.skeleton_key(),
            username_normalized: username.as_ref().map(Username::normalized),
            password_hash,
        };
        let write = self.store.begin_write().await?;
        if let Err(e) = write.users().insert(new).await {
            write.rollback().await?;
            if is_unique_violation(&e) {
                // Lost a race with another registration: say which value was taken.
                self.ensure_available(&email, username.as_ref()).await?;
            }
            return Err(e.into());
        }
        self.mail_token(&write, &account, Purpose::VerifyEmail, email.as_str(), at)
            .await?;
        let user = account.id;
        if self.require_verification {
            let event = Event::success(EventKind::Register, client).user(user);
            self.record(&write, event, at).await?;
            self.store.commit_write(write).await?;
            self.mail_queued();
            return Err(AuthError::EmailNotVerified);
        }
        let issued = self
            .open_session(&write, account, at, client, Amr::Password)
            .await?;
        let event = Event::success(EventKind::Register, client)
            .user(user)
            .session(issued.session_id);
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        self.mail_queued();
        Ok(issued)
    }

    /// Checks the password and opens a session. Unknown accounts cost the same work. An
    /// account with a second factor gets no session but `MfaRequired`, with a ticket for
    /// `verifyMfa`.
    /// When verification is required and the address is not verified yet, the right
    /// password gets `EmailNotVerified` and a fresh verification mail (within the mail
    /// budgets of `ip` and the address): the way back for a user whose link expired.
    pub async fn login(
        &self,
        identifier: LoginIdentifier,
        password: &str,
        client: &Client,
    ) -> Result<Issued, AuthError> {
        let result = self.check_and_open(identifier, password, client).await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(AuthError::InvalidCredentials) => "invalid_credentials",
            Err(AuthError::EmailNotVerified) => "email_not_verified",
            Err(AuthError::MfaRequired(_)) => "mfa_required",
            Err(AuthError::RateLimited { .. }) => "rate_limited",
            Err(_) => "error",
        };
        metrics::counter!("auth_logins_total", "outcome" => outcome).increment(1);
        result
    }

    /// [`login`](Self::login), uncounted.
    async fn check_and_open(
        &self,
        identifier: LoginIdentifier,
        password: &str,
        client: &Client,
    ) -> Result<Issued, AuthError> {
        let users = self.store.users();
        let found = match &identifier {
            LoginIdentifier::Email(e) => users.credentials_by_email(e.as_str()).await?,
            LoginIdentifier::Username(u) => users.credentials_by_username(&u.normalized()).await?,
        };
        let bucket = match &found {
            Some(c) => c.account.id.to_string(),
            None => identifier.unknown_bucket(),
        };
        let user = found.as_ref().map(|c| c.account.id);
        if let Err(refused) = self.limits.login_as(&bucket).await {
            self.record_trip("login_account", &bucket, user, client)
                .await;
            return Err(refused);
        }
        let matched = self
            .passwords
            .verify(password, found.as_ref().map(|c| c.password_hash.as_str()))
            .await?;
        let Some(found) = found.filter(|_| matched) else {
            let mut event = Event::failure(EventKind::Login, client).detail("invalid_credentials");
            if let Some(user) = user {
                event = event.user(user);
            }
            self.record_alone(event).await;
            return Err(AuthError::InvalidCredentials);
        };
        // Only after the password: an unverified address is no oracle to a guesser.
        if self.require_verification && found.account.email_verified_at.is_none() {
            let event = Event::failure(EventKind::Login, client)
                .user(found.account.id)
                .detail("email_not_verified");
            self.record_alone(event).await;
            if let Some(ip) = client.ip {
                self.remail_verification(&found.account, ip).await;
            }
            return Err(AuthError::EmailNotVerified);
        }
        let mut password_hash = found.password_hash.clone();
        if self.passwords.needs_rehash(&found.password_hash)
            && let Some(fresh) = self.upgrade_password_hash(&found, password).await
        {
            password_hash = fresh;
        }
        let at = self.now();
        // Only after the password, too: whether an account has a second factor is
        // nobody else's business.
        self.store.ensure_file()?;
        let challenge = self
            .mfa_challenge(
                &self.store.second_factors(),
                found.account.id,
                &password_hash,
                at,
            )
            .await?;
        if let Some(challenge) = challenge {
            self.store.ensure_file()?;
            return Err(AuthError::MfaRequired(challenge));
        }
        let write = self.store.begin_write().await?;
        let issued = self
            .open_session(&write, found.account, at, client, Amr::Password)
            .await?;
        let event = Event::success(EventKind::Login, client)
            .user(issued.account.id)
            .session(issued.session_id);
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        Ok(issued)
    }

    /// Mails `account` a fresh verification link if the mail budgets allow; never fails
    /// the login it is part of.
    async fn remail_verification(&self, account: &Account, ip: std::net::IpAddr) {
        if self.limits.mail(ip, &account.email).await.is_err() {
            return;
        }
        let at = self.now();
        let mailed = async {
            let write = self.store.begin_write().await?;
            self.mail_token(&write, account, Purpose::VerifyEmail, &account.email, at)
                .await?;
            self.store.commit_write(write).await
        };
        match mailed.await {
            Ok(()) => self.mail_queued(),
            Err(error) => tracing::warn!(user_id = %account.id, %error,
                "verification mail not queued at login"),
        }
    }

    /// Replaces `user`'s outdated password hash (see [`PasswordHasher::needs_rehash`]) by
    /// one of `password`, which has just verified against it. Never fails the login: a
    /// rehash shed by the busy pool or an update that fails is logged, and the next login
    /// tries again. The update applies only if the stored hash is still the one verified,
    /// so it cannot undo a password change made in between. The new hash, once stored.
    ///
    /// [`PasswordHasher::needs_rehash`]: super::PasswordHasher::needs_rehash
    async fn upgrade_password_hash(&self, user: &Credentials, password: &str) -> Option<String> {
        let id = user.account.id;
        let fresh = match self.passwords.rehash(password).await {
            Ok(fresh) => fresh,
            Err(error) => {
                tracing::warn!(user_id = %id, %error,
                    "outdated password hash not upgraded; the next login tries again");
                return None;
            }
        };
        let updated = self
            .store
            .users()
            .replace_password_hash(id, &user.password_hash, fresh.clone())
            .await;
        match updated {
            Ok(()) => {
                tracing::info!(user_id = %id, "password hash upgraded");
                Some(fresh)
            }
            Err(error) => {
                tracing::warn!(user_id = %id, %error,
                    "outdated password hash not stored; the next login tries again");
                None
            }
        }
    }

    /// Refuses an email that another account has or one that looks like it (same
    /// skeleton key), and a username another account has (case-insensitively).
    pub(super) async fn ensure_available(
        &self,
        email: &Email,
        username: Option<&Username>,
    ) -> Result<(), AuthError> {
        let users = self.store.users();
        if users
            .email_taken(email.as_str(), &email.skeleton_key())
            .await?
        {
            return Err(AuthError::EmailTaken);
        }
        if let Some(username) = username
            && users.username_taken(&username.normalized()).await?
        {
            return Err(AuthError::UsernameTaken);
        }
        Ok(())
    }
}
