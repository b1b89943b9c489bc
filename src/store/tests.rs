//! The guard's read: the inline SQLite reader against the pool, and their query plans.

use std::sync::atomic::Ordering;

use chrono::Utc;
use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use uuid::Uuid;

use super::sessions::{LIVE_ACCOUNT, SqliteReader, pool_live_account_query};
use super::users::{AccountRow, account};
use crate::auth::{Account, AuthService, Principal};
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::domain::{Email, Password, Username};
use crate::error::AuthError;

fn now() -> chrono::DateTime<Utc> {
    SystemClock.now()
}

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
            &crate::auth::Client::default(),
        )
        .await
        .unwrap();
    auth.authenticate(&issued.access_token).await.unwrap()
}

/// The pool's answer to the guard's question, bypassing the inline read.
async fn pool_read(auth: &AuthService, p: &Principal) -> Option<Account> {
    pool_live_account_query(p.session_id, now())
        .into_tuple::<AccountRow>()
        .one(&auth.store().db)
        .await
        .unwrap()
        .map(account)
}

#[tokio::test]
async fn the_inline_sqlite_read_answers_exactly_as_the_pool_does() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/auth.db?mode=rwc", dir.path().display());
    let auth = service(&url).await;
    let inline = auth
        .store()
        .inline
        .as_ref()
        .expect("a file database gets the inline read");

    let alice = register(&auth, "alice@example.com", Some("alice")).await;
    let bob = register(&auth, "bob@example.com", None).await;
    for p in [&alice, &bob] {
        let read = inline.live_account(p.session_id, now());
        assert_eq!(read, Some(pool_read(&auth, p).await), "live session");
        assert_eq!(read, Some(Some(p.account.clone())));
    }
    // A token naming one user and another user's session is refused.
    let crossed = auth
        .keys()
        .mint_access(alice.account.id, bob.session_id, Utc::now())
        .unwrap();
    assert!(matches!(
        auth.authenticate(&crossed).await,
        Err(AuthError::Unauthenticated)
    ));
    // A session that has expired by then, a revoked session: not live, for either.
    let refresh_ttl = chrono::Duration::from_std(Settings::defaults().tokens.refresh_ttl).unwrap();
    let later = now() + refresh_ttl + chrono::Duration::seconds(1);
    assert_eq!(inline.live_account(alice.session_id, later), Some(None));
    auth.logout(Some(&alice), None, false, &crate::auth::Client::default())
        .await
        .unwrap();
    assert_eq!(inline.live_account(alice.session_id, now()), Some(None));
    assert_eq!(pool_read(&auth, &alice).await, None);
    assert!(!inline.failed.load(Ordering::Relaxed));
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
    auth.store()
        .db
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
    let inline = plan_of(&LIVE_ACCOUNT);
    assert!(by_primary_key(&inline), "inline: {inline:?}");
    let pool_sql = {
        use sea_orm::QueryTrait;
        pool_live_account_query(last.session_id, now())
            .build(sea_orm::DatabaseBackend::Sqlite)
            .sql
    };
    let pool = plan_of(&pool_sql);
    assert!(by_primary_key(&pool), "pool: {pool_sql}: {pool:?}");

    // With these statistics, SQLite's STAT4 estimate from the bound session id would
    // make every new id re-prepare the inline reader's statement; it must not.
    let reader = SqliteReader::for_url(&url).unwrap();
    let ids: Vec<Vec<u8>> = conn
        // The seeded ones only: `last`'s live session is among any 20 by id once in ~100.
        .prepare("SELECT id FROM sessions WHERE expires_at = '0' LIMIT 20")
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
    assert!(auth.store().inline.is_none());
    // The pool answers instead.
    let carol = register(&auth, "carol@example.com", None).await;
    assert_eq!(carol.account.email, "carol@example.com");
}
