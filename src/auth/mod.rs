//! The auth service: accounts, sessions and tokens. Knows nothing of GraphQL or HTTP.

mod passwords;
mod rate_limit;
mod sqlite_read;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QuerySelect, RelationTrait, SqlErr,
    TransactionTrait,
};
use uuid::Uuid;

pub use passwords::PasswordHasher;
pub use rate_limit::RateLimits;
use sqlite_read::SqliteReader;
use tokens::{RefreshToken, TokenKeys};

use crate::config::Settings;
use crate::domain::{Email, InvalidInput, Password, Username};
use crate::entity::{refresh_token, session, user};
use crate::error::AuthError;
use crate::storage::DatabaseFile;

/// An account as the rest of the server sees it: no password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub username: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<user::Model> for Account {
    fn from(m: user::Model) -> Self {
        Self {
            id: m.id,
            email: m.email,
            username: m.username,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Who is calling: the holder of a valid access token of a live session.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account: Account,
    pub session_id: Uuid,
}

/// A freshly issued token pair and the account it belongs to.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: RefreshToken,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
    pub account: Account,
}

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

/// Everything the auth service needs, built once from settings.
pub struct AuthService {
    db: DatabaseConnection,
    keys: TokenKeys,
    passwords: PasswordHasher,
    limits: RateLimits,
    access_ttl: chrono::Duration,
    refresh_ttl: chrono::Duration,
    reuse_grace: chrono::Duration,
    /// The guard's read without the pool's thread hand-offs, on an SQLite file.
    sqlite_reader: Option<SqliteReader>,
    /// Whether a failed inline read has been logged (once is enough).
    sqlite_reader_failed: AtomicBool,
    /// The SQLite file opened at start: a write is refused, not acknowledged, once the file
    /// at its path is another one (or none).
    database_file: Option<Arc<DatabaseFile>>,
}

/// The current instant at the precision every backend stores (microseconds).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl AuthService {
    pub fn new(db: DatabaseConnection, settings: &Settings) -> Self {
        use secrecy::ExposeSecret;
        Self {
            sqlite_reader: SqliteReader::for_url(settings.database.url.expose_secret()),
            sqlite_reader_failed: AtomicBool::new(false),
            database_file: DatabaseFile::for_url(settings.database.url.expose_secret())
                .map(Arc::new),
            db,
            keys: TokenKeys::new(&settings.tokens),
            passwords: PasswordHasher::new(&settings.passwords),
            limits: RateLimits::new(&settings.rate_limits),
            access_ttl: chrono_duration(settings.tokens.access_ttl),
            refresh_ttl: chrono_duration(settings.tokens.refresh_ttl),
            reuse_grace: chrono_duration(settings.tokens.reuse_grace),
        }
    }

    pub fn passwords(&self) -> &PasswordHasher {
        &self.passwords
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// The SQLite file this service writes to, for `/health` to watch too.
    pub fn database_file(&self) -> Option<Arc<DatabaseFile>> {
        self.database_file.clone()
    }

    /// Refuses a write while the SQLite file at the configured path is not the one opened
    /// (deleted or replaced): it would go into an unlinked file that no restart finds.
    fn ensure_file(&self) -> Result<(), AuthError> {
        match &self.database_file {
            Some(file) => file.check().map_err(AuthError::internal),
            None => Ok(()),
        }
    }

    /// Begins a write transaction, if the database file is still ours.
    async fn begin_write(&self) -> Result<DatabaseTransaction, AuthError> {
        self.ensure_file()?;
        Ok(self.db.begin().await?)
    }

    /// Commits, and succeeds only if the commit did and the file is still ours: a write is
    /// acknowledged only once it is in the file that the next start opens.
    async fn commit_write(&self, txn: DatabaseTransaction) -> Result<(), AuthError> {
        txn.commit().await?;
        self.ensure_file()
    }

    /// Deletes what can never be used again: expired refresh tokens, and sessions that
    /// expired or were revoked more than `keep` ago (their tokens go with them). Spent
    /// tokens of live sessions stay, so a replay is still recognised as reuse.
    pub async fn purge_dead_sessions(&self, keep: chrono::Duration) -> Result<u64, AuthError> {
        self.ensure_file()?;
        let at = now();
        let tokens = refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::ExpiresAt.lt(at))
            .exec(&self.db)
            .await?;
        let cutoff = at - keep;
        let sessions = session::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(session::Column::ExpiresAt.lt(cutoff))
                    .add(session::Column::RevokedAt.lt(cutoff)),
            )
            .exec(&self.db)
            .await?;
        Ok(tokens.rows_affected + sessions.rows_affected)
    }

    /// Counts a registration attempt from `ip` (before the input is even looked at).
    pub fn count_register_attempt(&self, ip: IpAddr) -> Result<(), AuthError> {
        self.limits.register_from(ip)
    }

    /// Counts a login attempt from `ip` (before the input is even looked at).
    pub fn count_login_attempt(&self, ip: IpAddr) -> Result<(), AuthError> {
        self.limits.login_from(ip)
    }

    /// Creates an account and opens its first session.
    pub async fn register(
        &self,
        email: Email,
        password: Password,
        username: Option<Username>,
    ) -> Result<Issued, AuthError> {
        self.ensure_available(&email, username.as_ref()).await?;
        let password_hash = self.passwords.hash(&password).await?;
        let at = now();
        let account = Account {
            id: Uuid::new_v4(),
            email: email.as_str().to_owned(),
            username: username.as_ref().map(|u| u.as_str().to_owned()),
            created_at: at,
            updated_at: at,
        };
        let row = user::ActiveModel {
            id: Set(account.id),
            email: Set(account.email.clone()),
            email_skeleton: Set(Some(email.skeleton_key())),
            username: Set(account.username.clone()),
            username_normalized: Set(username.as_ref().map(Username::normalized)),
            password_hash: Set(password_hash),
            created_at: Set(at),
            updated_at: Set(at),
        };
        let txn = self.begin_write().await?;
        if let Err(e) = user::Entity::insert(row).exec_without_returning(&txn).await {
            txn.rollback().await?;
            if is_unique_violation(&e) {
                // Lost a race with another registration: say which value was taken.
                self.ensure_available(&email, username.as_ref()).await?;
            }
            return Err(e.into());
        }
        let issued = self.open_session(&txn, account, at).await?;
        self.commit_write(txn).await?;
        Ok(issued)
    }

    /// Checks the password and opens a session. Unknown accounts cost the same work.
    pub async fn login(
        &self,
        identifier: LoginIdentifier,
        password: &str,
    ) -> Result<Issued, AuthError> {
        let query = user::Entity::find();
        let query = match &identifier {
            LoginIdentifier::Email(e) => query.filter(user::Column::Email.eq(e.as_str())),
            LoginIdentifier::Username(u) => {
                query.filter(user::Column::UsernameNormalized.eq(u.normalized()))
            }
        };
        let found = query.one(&self.db).await?;
        let bucket = match &found {
            Some(u) => u.id.to_string(),
            None => identifier.unknown_bucket(),
        };
        self.limits.login_as(&bucket)?;
        let matched = self
            .passwords
            .verify(password, found.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        let Some(found) = found.filter(|_| matched) else {
            return Err(AuthError::InvalidCredentials);
        };
        if self.passwords.needs_rehash(&found.password_hash) {
            self.upgrade_password_hash(&found, password).await;
        }
        let at = now();
        let txn = self.begin_write().await?;
        let issued = self.open_session(&txn, found.into(), at).await?;
        self.commit_write(txn).await?;
        Ok(issued)
    }

    /// Replaces `user`'s outdated password hash (see [`PasswordHasher::needs_rehash`]) by
    /// one of `password`, which has just verified against it. Never fails the login: a
    /// rehash shed by the busy pool or an update that fails is logged, and the next login
    /// tries again. The update applies only if the stored hash is still the one verified,
    /// so it cannot undo a password change made in between.
    async fn upgrade_password_hash(&self, user: &user::Model, password: &str) {
        let fresh = match self.passwords.rehash(password).await {
            Ok(fresh) => fresh,
            Err(error) => {
                tracing::warn!(user_id = %user.id, %error,
                    "outdated password hash not upgraded; the next login tries again");
                return;
            }
        };
        let updated = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(fresh))
            .filter(user::Column::Id.eq(user.id))
            .filter(user::Column::PasswordHash.eq(user.password_hash.as_str()))
            .exec(&self.db)
            .await;
        match updated {
            Ok(_) => tracing::info!(user_id = %user.id, "password hash upgraded"),
            Err(error) => tracing::warn!(user_id = %user.id, %error,
                "outdated password hash not stored; the next login tries again"),
        }
    }

    /// Spends `presented` and returns a new pair. A spent token presented again after the
    /// grace window revokes its whole session.
    pub async fn refresh(&self, presented: &str) -> Result<Issued, AuthError> {
        let token = RefreshToken::parse(presented).ok_or(AuthError::InvalidRefreshToken)?;
        let at = now();
        let (row, session) = self.find_refresh(&token).await?;
        if !session_is_live(&session, at) {
            return Err(AuthError::InvalidRefreshToken);
        }
        let spent_at = match row.spent_at {
            None if row.expires_at <= at => return Err(AuthError::InvalidRefreshToken),
            None => match self.rotate(&token, &row, at).await? {
                Some(issued) => return Ok(issued),
                // Another request spent it a moment ago: treat it like a retry.
                None => at,
            },
            Some(spent_at) => spent_at,
        };
        if at - spent_at <= self.reuse_grace {
            self.reissue_successor(&token, &session, at).await
        } else {
            self.revoke_for_reuse(session.id).await?;
            Err(AuthError::InvalidRefreshToken)
        }
    }

    /// Revokes the caller's session (found by bearer, by refresh token, or both), or with
    /// `all_sessions` every session of its user.
    pub async fn logout(
        &self,
        principal: Option<&Principal>,
        refresh: Option<&str>,
        all_sessions: bool,
    ) -> Result<(), AuthError> {
        let mut sessions: Vec<(Uuid, Uuid)> = Vec::new();
        if let Some(p) = principal {
            sessions.push((p.session_id, p.account.id));
        }
        if let Some(raw) = refresh {
            match self.session_of_refresh(raw).await {
                Ok(session) => sessions.push((session.id, session.user_id)),
                // With a valid bearer the caller's session is known; a stale refresh token
                // (typically that session's, already rotated) must not block the logout.
                Err(AuthError::InvalidRefreshToken) if principal.is_some() => {}
                Err(e) => return Err(e),
            }
        }
        if sessions.is_empty() {
            return Err(AuthError::Unauthenticated);
        }
        let at = now();
        let filter = if all_sessions {
            session::Column::UserId.is_in(sessions.iter().map(|(_, user)| *user))
        } else {
            session::Column::Id.is_in(sessions.iter().map(|(id, _)| *id))
        };
        self.ensure_file()?;
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(at))
            .filter(filter)
            .filter(session::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        self.ensure_file()
    }

    /// The live session a refresh token proves, for logout. A spent token outside the
    /// grace window is reuse, and revokes its session as `refresh` would.
    async fn session_of_refresh(&self, raw: &str) -> Result<session::Model, AuthError> {
        let token = RefreshToken::parse(raw).ok_or(AuthError::InvalidRefreshToken)?;
        let at = now();
        let (row, session) = self.find_refresh(&token).await?;
        if !session_is_live(&session, at) {
            return Err(AuthError::InvalidRefreshToken);
        }
        match row.spent_at {
            None if row.expires_at > at => Ok(session),
            None => Err(AuthError::InvalidRefreshToken),
            Some(spent_at) if at - spent_at <= self.reuse_grace => Ok(session),
            Some(_) => {
                self.revoke_for_reuse(session.id).await?;
                Err(AuthError::InvalidRefreshToken)
            }
        }
    }

    /// Resolves a bearer token to its caller; refused unless its session is live right now.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        let claims = self.keys.verify_access(bearer).map_err(|e| {
            tracing::debug!(error = %e, "access token refused");
            AuthError::Unauthenticated
        })?;
        let at = now();
        // By the session's primary key alone (see `sqlite_read::LIVE_ACCOUNT` for why the
        // user is compared here rather than in SQL).
        let account = match self.read_inline(claims.sid, at) {
            Some(found) => found,
            None => live_account(claims.sid, at)
                .one(&self.db)
                .await?
                .map(Account::from),
        };
        let account = account.filter(|a| a.id == claims.sub);
        Ok(Principal {
            account: account.ok_or(AuthError::Unauthenticated)?,
            session_id: claims.sid,
        })
    }

    /// The guard's read on the calling thread (SQLite files only); `None` when there is no
    /// such reader or it failed, and the pool must answer.
    fn read_inline(&self, session: Uuid, at: DateTime<Utc>) -> Option<Option<Account>> {
        let reader = self.sqlite_reader.as_ref()?;
        match reader.live_account(session, at) {
            Ok(found) => Some(found),
            Err(error) => {
                if !self.sqlite_reader_failed.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, path = %reader.path().display(),
                        "inline SQLite read failed; using the pool (logged once)");
                } else {
                    tracing::debug!(%error, "inline SQLite read failed; using the pool");
                }
                None
            }
        }
    }

    /// Refuses an email that another account has or one that looks like it (same
    /// skeleton key), and a username another account has (case-insensitively).
    async fn ensure_available(
        &self,
        email: &Email,
        username: Option<&Username>,
    ) -> Result<(), AuthError> {
        let taken = Condition::any()
            .add(user::Column::Email.eq(email.as_str()))
            .add(user::Column::EmailSkeleton.eq(email.skeleton_key()));
        if self.any_user(taken).await? {
            return Err(AuthError::EmailTaken);
        }
        if let Some(username) = username {
            let normalized = user::Column::UsernameNormalized.eq(username.normalized());
            if self.any_user(normalized).await? {
                return Err(AuthError::UsernameTaken);
            }
        }
        Ok(())
    }

    /// Whether a user matches `condition` (reads only the id).
    async fn any_user(
        &self,
        condition: impl sea_orm::sea_query::IntoCondition,
    ) -> Result<bool, DbErr> {
        let found = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(condition)
            .into_tuple::<Uuid>()
            .one(&self.db)
            .await?;
        Ok(found.is_some())
    }

    /// Inserts a session and its first refresh token, and mints the pair.
    async fn open_session(
        &self,
        db: &impl ConnectionTrait,
        account: Account,
        at: DateTime<Utc>,
    ) -> Result<Issued, AuthError> {
        let session_id = Uuid::new_v4();
        let expires_at = at + self.refresh_ttl;
        session::Entity::insert(session::ActiveModel {
            id: Set(session_id),
            user_id: Set(account.id),
            created_at: Set(at),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
        })
        .exec_without_returning(db)
        .await?;
        let refresh = self.keys.new_refresh();
        self.store_refresh(db, session_id, &refresh, at, expires_at)
            .await?;
        self.issue(account, session_id, refresh, at)
    }

    async fn store_refresh(
        &self,
        db: &impl ConnectionTrait,
        session_id: Uuid,
        token: &RefreshToken,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        refresh_token::Entity::insert(refresh_token::ActiveModel {
            id: Set(Uuid::new_v4()),
            session_id: Set(session_id),
            token_hash: Set(self.keys.hash(token)),
            created_at: Set(at),
            expires_at: Set(expires_at),
            spent_at: Set(None),
        })
        .exec_without_returning(db)
        .await
        .map(|_| ())
    }

    fn issue(
        &self,
        account: Account,
        session_id: Uuid,
        refresh_token: RefreshToken,
        at: DateTime<Utc>,
    ) -> Result<Issued, AuthError> {
        let access_token = self
            .keys
            .mint_access(account.id, session_id, at)
            .map_err(AuthError::internal)?;
        Ok(Issued {
            access_token,
            refresh_token,
            expires_in: self.access_ttl.num_seconds(),
            refresh_expires_in: self.refresh_ttl.num_seconds(),
            account,
        })
    }

    /// The stored token and its session; unknown tokens are `INVALID_REFRESH_TOKEN`.
    async fn find_refresh(
        &self,
        token: &RefreshToken,
    ) -> Result<(refresh_token::Model, session::Model), AuthError> {
        let found = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(self.keys.hash(token)))
            .find_also_related(session::Entity)
            .one(&self.db)
            .await?;
        match found {
            Some((row, Some(session))) => Ok((row, session)),
            _ => Err(AuthError::InvalidRefreshToken),
        }
    }

    /// Spends `row` with one conditional update and stores its successor, in one
    /// transaction. `None` if another request spent it first.
    async fn rotate(
        &self,
        token: &RefreshToken,
        row: &refresh_token::Model,
        at: DateTime<Utc>,
    ) -> Result<Option<Issued>, AuthError> {
        // The first statement writes, so SQLite takes the write lock (waiting if need be)
        // instead of failing a read transaction's upgrade.
        let txn = self.begin_write().await?;
        let spent = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::SpentAt, Expr::value(at))
            .filter(refresh_token::Column::Id.eq(row.id))
            .filter(refresh_token::Column::SpentAt.is_null())
            .exec(&txn)
            .await?;
        if spent.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(None);
        }
        let expires_at = at + self.refresh_ttl;
        let extended = session::Entity::update_many()
            .col_expr(session::Column::ExpiresAt, Expr::value(expires_at))
            .filter(session::Column::Id.eq(row.session_id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        if extended.rows_affected != 1 {
            // Revoked between our read and our write.
            txn.rollback().await?;
            return Err(AuthError::InvalidRefreshToken);
        }
        let successor = self.keys.successor(token);
        self.store_refresh(&txn, row.session_id, &successor, at, expires_at)
            .await?;
        let account = self.account_of_session(&txn, row.session_id).await?;
        self.commit_write(txn).await?;
        self.issue(account, row.session_id, successor, at).map(Some)
    }

    /// Inside the grace window: hand back the successor that the first refresh stored,
    /// if it is still the session's live token.
    async fn reissue_successor(
        &self,
        token: &RefreshToken,
        session: &session::Model,
        at: DateTime<Utc>,
    ) -> Result<Issued, AuthError> {
        let successor = self.keys.successor(token);
        let live = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(self.keys.hash(&successor)))
            .filter(refresh_token::Column::SpentAt.is_null())
            .filter(refresh_token::Column::ExpiresAt.gt(at))
            .one(&self.db)
            .await?
            .is_some();
        if !live {
            return Err(AuthError::InvalidRefreshToken);
        }
        let account = self.account_of_session(&self.db, session.id).await?;
        self.issue(account, session.id, successor, at)
    }

    async fn revoke_for_reuse(&self, session_id: Uuid) -> Result<(), AuthError> {
        tracing::warn!(%session_id, "spent refresh token presented again; session revoked");
        self.ensure_file()?;
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now()))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        self.ensure_file()
    }

    async fn account_of_session(
        &self,
        db: &impl ConnectionTrait,
        session_id: Uuid,
    ) -> Result<Account, AuthError> {
        user::Entity::find()
            .join(sea_orm::JoinType::InnerJoin, user::Relation::Session.def())
            .filter(session::Column::Id.eq(session_id))
            .one(db)
            .await?
            .map(Account::from)
            .ok_or(AuthError::InvalidRefreshToken)
    }
}

fn session_is_live(session: &session::Model, at: DateTime<Utc>) -> bool {
    session.revoked_at.is_none() && session.expires_at > at
}

/// The account of session `sid` if it is live at `at` (the guard's query on the pool).
fn live_account(sid: Uuid, at: DateTime<Utc>) -> sea_orm::Select<user::Entity> {
    user::Entity::find()
        .join(sea_orm::JoinType::InnerJoin, user::Relation::Session.def())
        .filter(session::Column::Id.eq(sid))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(at))
}

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    /// An auth service on a migrated database at `url`, bcrypt at its cheapest.
    async fn service(url: &str) -> AuthService {
        let mut settings = Settings::defaults();
        settings.database.url = SecretString::from(url.to_owned());
        settings.passwords.bcrypt_cost = 4;
        settings.rate_limits.login_per_account = 0;
        let db = crate::db::connect(&settings.database).await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        AuthService::new(db, &settings)
    }

    async fn register(auth: &AuthService, email: &str, username: Option<&str>) -> Principal {
        let issued = auth
            .register(
                Email::parse(email).unwrap(),
                Password::parse("a long enough password").unwrap(),
                username.map(|u| Username::parse(u).unwrap()),
            )
            .await
            .unwrap();
        auth.authenticate(&issued.access_token).await.unwrap()
    }

    /// The pool's answer to the guard's question, bypassing the inline read.
    async fn pool_read(auth: &AuthService, p: &Principal) -> Option<Account> {
        live_account(p.session_id, now())
            .one(&auth.db)
            .await
            .unwrap()
            .map(Account::from)
    }

    #[tokio::test]
    async fn the_inline_sqlite_read_answers_exactly_as_the_pool_does() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/auth.db?mode=rwc", dir.path().display());
        let auth = service(&url).await;
        assert!(
            auth.sqlite_reader.is_some(),
            "a file database gets the inline read"
        );

        let alice = register(&auth, "alice@example.com", Some("alice")).await;
        let bob = register(&auth, "bob@example.com", None).await;
        for p in [&alice, &bob] {
            let inline = auth.read_inline(p.session_id, now());
            assert_eq!(inline, Some(pool_read(&auth, p).await), "live session");
            assert_eq!(inline, Some(Some(p.account.clone())));
        }
        // A token naming one user and another user's session is refused.
        let crossed = auth
            .keys
            .mint_access(alice.account.id, bob.session_id, Utc::now())
            .unwrap();
        assert!(matches!(
            auth.authenticate(&crossed).await,
            Err(AuthError::Unauthenticated)
        ));
        // A session that has expired by then, a revoked session: not live, for either.
        let later = now() + auth.refresh_ttl + chrono::Duration::seconds(1);
        assert_eq!(auth.read_inline(alice.session_id, later), Some(None));
        auth.logout(Some(&alice), None, false).await.unwrap();
        assert_eq!(auth.read_inline(alice.session_id, now()), Some(None));
        assert_eq!(pool_read(&auth, &alice).await, None);
        assert!(!auth.sqlite_reader_failed.load(Ordering::Relaxed));
    }

    /// Both guard queries find the session by its primary key. Given the user id as well,
    /// SQLite, with statistics saying accounts have one session each (as `ANALYZE` finds on
    /// most databases), chose `idx_sessions_user_id` and walked every session of the user.
    #[tokio::test]
    async fn the_guard_queries_look_the_session_up_by_its_primary_key() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/auth.db?mode=rwc", dir.path().display());
        let auth = service(&url).await;
        let last = register(&auth, "last@example.com", None).await;
        auth.db
            .execute_unprepared(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
                 INSERT INTO users (id, email, password_hash, created_at, updated_at) \
                 SELECT randomblob(16), 'user' || i || '@example.com', 'x', 't', 't' FROM n; \
                 INSERT INTO sessions (id, user_id, created_at, expires_at) \
                 SELECT randomblob(16), id, '0', '0' FROM users WHERE password_hash = 'x'; \
                 ANALYZE;",
            )
            .await
            .unwrap();
        // A fresh connection reads the statistics when it opens: plans are deterministic.
        let conn = rusqlite::Connection::open(dir.path().join("auth.db")).unwrap();
        let plan_of = |sql: &str| -> Vec<String> {
            let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            // Parameters bound to NULL: the plan does not depend on their values.
            let nulls = std::iter::repeat_n(rusqlite::types::Null, statement.parameter_count());
            let rows = statement
                .query_map(rusqlite::params_from_iter(nulls), |row| {
                    row.get::<_, String>(3)
                })
                .unwrap();
            rows.map(Result::unwrap).collect()
        };
        let by_primary_key = |plan: &[String]| {
            plan.iter()
                .any(|l| l.contains("sqlite_autoindex_sessions_1"))
                && !plan.iter().any(|l| l.contains("idx_sessions_user_id"))
        };
        // The hazard is real on these statistics: the former query, naming both ids.
        let former = plan_of(
            "SELECT users.* FROM users INNER JOIN sessions ON users.id = sessions.user_id \
             WHERE users.id = ? AND sessions.id = ? AND sessions.revoked_at IS NULL \
             AND sessions.expires_at > ? LIMIT 1",
        );
        assert!(!by_primary_key(&former), "former: {former:?}");
        let inline = plan_of(sqlite_read::LIVE_ACCOUNT);
        assert!(by_primary_key(&inline), "inline: {inline:?}");
        let pool_sql = {
            use sea_orm::QueryTrait;
            live_account(last.session_id, now())
                .build(sea_orm::DatabaseBackend::Sqlite)
                .sql
        };
        let pool = plan_of(&pool_sql);
        assert!(by_primary_key(&pool), "pool: {pool_sql}: {pool:?}");

        // With these statistics, SQLite's STAT4 estimate from the bound session id would
        // make every new id re-prepare the inline reader's statement; it must not.
        let reader = SqliteReader::for_url(&url).unwrap();
        let ids: Vec<Vec<u8>> = conn
            .prepare("SELECT id FROM sessions LIMIT 20")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut found = 0;
        for id in &ids {
            let id = Uuid::from_slice(id).unwrap();
            found += reader.live_account(id, now()).unwrap().is_some() as usize;
        }
        assert_eq!(found, 0, "the seeded sessions expired at '0'");
        assert!(
            reader
                .live_account(last.session_id, now())
                .unwrap()
                .is_some()
        );
        assert_eq!(reader.reprepares(), 0);
    }

    #[tokio::test]
    async fn in_memory_and_server_databases_have_no_inline_read() {
        assert!(SqliteReader::for_url("sqlite::memory:").is_none());
        assert!(SqliteReader::for_url("sqlite://x.db?mode=memory").is_none());
        assert!(SqliteReader::for_url("postgres://localhost/auth").is_none());
        assert!(SqliteReader::for_url("sqlite:///no/such/dir/auth.db").is_none());
        let auth = service("sqlite::memory:").await;
        assert!(auth.sqlite_reader.is_none());
        // The pool answers instead.
        let carol = register(&auth, "carol@example.com", None).await;
        assert_eq!(carol.account.email, "carol@example.com");
    }
}
