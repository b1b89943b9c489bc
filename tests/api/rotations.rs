//! A refresh token's rotation, below the API: the three ways the store commits one (the
//! SQLite group writer, PostgreSQL's single statement, MySQL's transaction, the last two on
//! one pooled connection with the read) give the same outcome and leave the same rows, for
//! a rotation that wins, one that lost the race, and one whose session was revoked
//! meanwhile.

use std::time::Duration;

use auth_server::auth::Client;
use auth_server::clock::SystemClock;
use auth_server::store::{Decide, FoundRefresh, Rotated, Rotation, Store};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use uuid::Uuid;

use crate::backend_tests;
use crate::helpers::*;

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("count")
        .expect("a row")
        .try_get_by_index(0)
        .expect("an integer")
}

/// The id and session of the refresh token stored under `hash`.
async fn token_row(db: &DatabaseConnection, hash: &str) -> (Uuid, Uuid) {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT id, session_id FROM refresh_tokens WHERE token_hash = '{hash}'"),
        ))
        .await
        .expect("select")
        .expect("the token's row");
    (
        row.try_get_by_index(0).expect("id"),
        row.try_get_by_index(1).expect("session id"),
    )
}

/// The session's last user agent.
async fn last_user_agent(db: &DatabaseConnection) -> Option<String> {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT last_user_agent FROM sessions",
    ))
    .await
    .expect("select")
    .expect("the session")
    .try_get_by_index(0)
    .expect("text")
}

fn rotation(token: Uuid, session: Uuid, successor: &str, agent: &str) -> Rotation {
    let at = SystemClock.now();
    Rotation {
        token,
        session,
        successor_hash: successor.to_owned(),
        at,
        expires_at: at + chrono::Duration::days(1),
        client: Client::new("127.0.0.9".parse().expect("an address"), Some(agent)),
    }
}

/// Refreshes the token under `hash` with a judgement that asks for `rotation` whatever it
/// finds (as a request that lost a race had judged before the winner committed); what the
/// store read must be that token, and the answer is what the rotation did.
async fn rotate(store: &Store, hash: &str, rotation: Rotation) -> Rotated {
    let token = rotation.token;
    let decide: Decide = Box::new(move |_: &FoundRefresh| Some(rotation));
    let refreshed = store
        .find_and_rotate(hash.to_owned(), decide)
        .await
        .expect("refresh")
        .expect("the token is found");
    assert_eq!(refreshed.found.token.id, token);
    refreshed.rotated.expect("a rotation was asked for")
}

async fn rotations_have_the_same_outcomes_on_every_backend(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("rotating@example.com").await;
    let db = Database::connect(&app.database_url).await.expect("connect");
    // A store of its own on the server's database, committing as the server's does.
    let store = Store::new(db.clone(), &app.database_url)
        .with_group_commit(Duration::from_secs(5))
        .await;
    let first: String = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT token_hash FROM refresh_tokens",
        ))
        .await
        .expect("select")
        .expect("the registration's token")
        .try_get_by_index(0)
        .expect("text");
    let (token, session) = token_row(&db, &first).await;

    // It wins: the token is spent, the successor stored, the session refreshed.
    let done = rotate(
        &store,
        &first,
        rotation(token, session, "successor-one", "agent-one"),
    )
    .await;
    assert_eq!(done, Rotated::Done, "the first rotation should win");
    let (second, of_session) = token_row(&db, "successor-one").await;
    assert_eq!(of_session, session);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM refresh_tokens WHERE spent_at IS NULL"
        )
        .await,
        1,
        "only the successor is live"
    );
    assert_eq!(last_user_agent(&db).await.as_deref(), Some("agent-one"));

    // The same token again: it lost the race, and nothing is written.
    let lost = rotate(
        &store,
        &first,
        rotation(token, session, "successor-two", "agent-two"),
    )
    .await;
    assert_eq!(lost, Rotated::AlreadySpent);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = 'successor-two'"
        )
        .await,
        0
    );
    assert_eq!(last_user_agent(&db).await.as_deref(), Some("agent-one"));

    // The session is revoked between the read and the write: no successor, no refresh.
    db.execute_unprepared("UPDATE sessions SET revoked_at = created_at")
        .await
        .expect("revoke");
    let gone = rotate(
        &store,
        "successor-one",
        rotation(second, session, "successor-three", "agent-three"),
    )
    .await;
    assert_eq!(gone, Rotated::SessionGone);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = 'successor-three'"
        )
        .await,
        0
    );
    assert_eq!(last_user_agent(&db).await.as_deref(), Some("agent-one"));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM refresh_tokens").await, 2);
}

backend_tests!(rotations_have_the_same_outcomes_on_every_backend);
