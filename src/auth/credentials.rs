//! What a signed-in user does with the password: change it, or delete the account. Both
//! ask for the password again, counted against the account's login budget, so a stolen
//! access token alone can neither lock the owner out nor guess the password faster.

use uuid::Uuid;

use super::events::{Client, Event, EventKind};
use super::mailing::abort;
use super::tokens::{Amr, Purpose};
use super::{AuthService, Issued, Principal};
use crate::domain::Password;
use crate::error::AuthError;
use crate::store::Credentials;

impl AuthService {
    /// Checks `password` against account `user`, counted as a login attempt on it.
    pub(super) async fn check_password(
        &self,
        user: Uuid,
        password: &str,
        client: &Client,
    ) -> Result<Credentials, AuthError> {
        let bucket = user.to_string();
        if let Err(refused) = self.limits.login_as(&bucket).await {
            self.record_trip("login_account", &bucket, Some(user), client)
                .await;
            return Err(refused);
        }
        let found = self.store.users().credentials_by_id(user).await?;
        let matched = self
            .passwords
            .verify(password, found.as_ref().map(|c| c.password_hash.as_str()))
            .await?;
        match found.filter(|_| matched) {
            Some(found) => Ok(found),
            None => {
                let event = Event::failure(EventKind::PasswordCheck, client).user(user);
                self.record_alone(event).await;
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// Replaces the caller's password. Every other session of the user is revoked; the
    /// caller's stays (its access token keeps working) with a fresh refresh token, and its
    /// older refresh tokens stop working. Pending reset and email-change tokens die too.
    pub async fn change_password(
        &self,
        caller: &Principal,
        current: &str,
        new: Password,
        client: &Client,
    ) -> Result<Issued, AuthError> {
        let user = caller.account.id;
        let session = caller.session_id;
        self.check_password(user, current, client).await?;
        let hash = self.passwords.hash(&new).await?;
        let at = self.now();
        let write = self.store.begin_write().await?;
        write.users().set_password_hash(user, hash, at).await?;
        write
            .sessions()
            .revoke_all_of_except(user, session, at)
            .await?;
        // Revoked meanwhile (a logout or a reset raced this): no fresh pair for it.
        if !write
            .sessions()
            .extend(session, at + self.refresh_ttl)
            .await?
        {
            return abort(write, AuthError::Unauthenticated).await;
        }
        write.refresh_tokens().delete_of_session(session).await?;
        let refresh = self.keys.new_refresh();
        write
            .refresh_tokens()
            .insert(
                session,
                self.keys.hash(&refresh),
                refresh.generation(),
                at,
                at + self.refresh_ttl,
            )
            .await?;
        // A pending reset or change of address may be the work of whoever knew the old
        // password: the new one ends them.
        for purpose in [Purpose::ResetPassword, Purpose::ChangeEmail] {
            write
                .email_tokens()
                .delete_of(user, purpose.as_str())
                .await?;
        }
        let Some(account) = write.users().by_id(user).await? else {
            return abort(write, AuthError::Unauthenticated).await;
        };
        // The session goes on as it was authenticated.
        let amr = write.sessions().amr_of(session).await?.flatten();
        let amr = Amr::from_stored(amr.as_deref());
        let issued = self.issue(account, session, refresh, amr, at)?;
        let event = Event::success(EventKind::PasswordChanged, client)
            .user(user)
            .session(session);
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        tracing::info!(user_id = %user, "password changed; other sessions revoked");
        Ok(issued)
    }

    /// Deletes the caller's account: its sessions, refresh tokens and mailed tokens go
    /// with it (foreign keys), its pending mails are deleted here. Its access tokens fail
    /// on their next use, since no session is left for them.
    pub async fn delete_account(
        &self,
        caller: &Principal,
        password: &str,
        client: &Client,
    ) -> Result<(), AuthError> {
        let user = caller.account.id;
        self.check_password(user, password, client).await?;
        let at = self.now();
        let write = self.store.begin_write().await?;
        if !write.users().delete(user).await? {
            return abort(write, AuthError::Unauthenticated).await;
        }
        // After the account's row: see `Outbox::delete_of_user`.
        write.outbox().delete_of_user(user).await?;
        // Kept (no foreign key) until the retention ends, for the operator.
        let event = Event::success(EventKind::AccountDeleted, client)
            .user(user)
            .session(caller.session_id);
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        tracing::info!(user_id = %user, "account deleted");
        Ok(())
    }
}
