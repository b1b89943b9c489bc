//! A refresh token's rotation, below the API: the three ways the store commits one (the
//! SQLite group writer, PostgreSQL's single statement, MySQL's transaction, the last two on
//! one pooled connection with the read) give the same outcome and leave the same rows, for
//! a rotation that wins, one that lost the race, and one whose session was revoked
//! meanwhile; both for a chain moving on and for a token issued before chains starting
//! one.

use std::time::Duration;

use auth_server::auth::Client;
use auth_server::clock::SystemClock;
use auth_server::store::{Decide, FoundRefresh, Rotated, Rotation, Step, Store};
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

/// The chain generation stored under `hash` (`None` for a token issued before chains).
async fn generation(db: &DatabaseConnection, hash: &str) -> Option<i64> {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        format!("SELECT generation FROM refresh_tokens WHERE token_hash = '{hash}'"),
    ))
    .await
    .expect("select")
    .expect("the row")
    .try_get_by_index(0)
    .expect("an integer or NULL")
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

fn rotation(token: Uuid, session: Uuid, step: Step, agent: &str) -> Rotation {
    let at = SystemClock.now();
    Rotation {
        token,
        session,
        step,
        at,
        expires_at: at + chrono::Duration::days(1),
        client: Client::new("127.0.0.9".parse().expect("an address"), Some(agent)),
    }
}

fn upgrade(chain_hash: &str) -> Step {
    Step::Upgrade {
        chain_hash: chain_hash.to_owned(),
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
    let chain: String = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT token_hash FROM refresh_tokens",
        ))
        .await
        .expect("select")
        .expect("the registration's chain")
        .try_get_by_index(0)
        .expect("text");
    let (row, session) = token_row(&db, &chain).await;
    assert_eq!(generation(&db, &chain).await, Some(0));

    // It wins: the chain moves on in place, the session is refreshed.
    let done = rotate(
        &store,
        &chain,
        rotation(row, session, Step::Advance { from: 0 }, "agent-one"),
    )
    .await;
    assert_eq!(done, Rotated::Done, "the first rotation should win");
    assert_eq!(generation(&db, &chain).await, Some(1));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM refresh_tokens").await, 1);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM refresh_tokens WHERE rotated_at IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(last_user_agent(&db).await.as_deref(), Some("agent-one"));

    // Generation 0 again: it lost the race, and nothing is written.
    let lost = rotate(
        &store,
        &chain,
        rotation(row, session, Step::Advance { from: 0 }, "agent-two"),
    )
    .await;
    assert_eq!(lost, Rotated::AlreadySpent);
    assert_eq!(generation(&db, &chain).await, Some(1));
    assert_eq!(last_user_agent(&db).await.as_deref(), Some("agent-one"));

    // A token issued before chains, of the same session: its rotation spends it and
    // starts a chain at generation 0.
    let at = SystemClock.now();
    store
        .refresh_tokens()
        .insert(
            session,
            "legacy-one".to_owned(),
            None,
            at,
            at + chrono::Duration::days(1),
        )
        .await
        .expect("a token of the kind issued before chains");
    let (legacy, _) = token_row(&db, "legacy-one").await;
    let done = rotate(
        &store,
        "legacy-one",
        rotation(legacy, session, upgrade("chain-two"), "agent-three"),
    )
    .await;
    assert_eq!(done, Rotated::Done);
    assert_eq!(generation(&db, "legacy-one").await, None);
    assert_eq!(generation(&db, "chain-two").await, Some(0));
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM refresh_tokens WHERE spent_at IS NOT NULL"
        )
        .await,
        1,
        "the old token is spent"
    );
    assert_eq!(last_user_agent(&db).await.as_deref(), Some("agent-three"));
    // Again: lost, and no second chain.
    let lost = rotate(
        &store,
        "legacy-one",
        rotation(legacy, session, upgrade("chain-three"), "agent-four"),
    )
    .await;
    assert_eq!(lost, Rotated::AlreadySpent);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = 'chain-three'"
        )
        .await,
        0
    );
    assert_eq!(last_user_agent(&db).await.as_deref(), Some("agent-three"));

    // The session is revoked between the read and the write: no chain started, no refresh.
    store
        .refresh_tokens()
        .insert(
            session,
            "legacy-two".to_owned(),
            None,
            at,
            at + chrono::Duration::days(1),
        )
        .await
        .expect("another");
    let (legacy_two, _) = token_row(&db, "legacy-two").await;
    db.execute_unprepared("UPDATE sessions SET revoked_at = created_at")
        .await
        .expect("revoke");
    let gone = rotate(
        &store,
        "legacy-two",
        rotation(legacy_two, session, upgrade("chain-four"), "agent-five"),
    )
    .await;
    assert_eq!(gone, Rotated::SessionGone);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = 'chain-four'"
        )
        .await,
        0
    );
    // A chain of the revoked session: refused as well, the session untouched. (On
    // PostgreSQL the chain itself may have moved on: its one statement is not rolled
    // back, and a revoked session's tokens are refused whatever their generation.)
    let (chain_two, _) = token_row(&db, "chain-two").await;
    let gone = rotate(
        &store,
        "chain-two",
        rotation(chain_two, session, Step::Advance { from: 0 }, "agent-six"),
    )
    .await;
    assert_eq!(gone, Rotated::SessionGone);
    assert_eq!(last_user_agent(&db).await.as_deref(), Some("agent-three"));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM refresh_tokens").await, 4);
}

backend_tests!(rotations_have_the_same_outcomes_on_every_backend);
