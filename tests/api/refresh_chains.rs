//! Refresh-token chains (`auth::tokens::refresh`): a session's tokens are the generations
//! of one stored row, so rotation adds no rows, a replay of any earlier generation is
//! still recognised, a forged generation is refused without touching the session, and a
//! token issued before chains goes on working and moves its session onto a chain.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::backend_tests;
use crate::helpers::{
    Backend, TestApp, Tokens, spawn_app, spawn_app_with_clock, store_pre_chain_refresh_tokens,
};

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("count")
        .expect("a row")
        .try_get_by_index(0)
        .expect("an integer")
}

async fn refreshed(app: &TestApp, token: &str) -> Tokens {
    let r = app.refresh(token).await;
    assert!(r.body["errors"].is_null(), "refresh failed: {}", r.body);
    Tokens::from_payload(r.data("refreshToken"))
}

/// `token` with its generation (bytes 16..24 of the decoded token) replaced, its MAC kept.
fn with_generation(token: &str, generation: u64) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(token).expect("base64url");
    assert_eq!(bytes.len(), 56, "a chain token");
    bytes[16..24].copy_from_slice(&generation.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn rotations_move_one_row_on_and_a_replay_of_any_earlier_generation_revokes(
    backend: Backend,
) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let first = app.register_ok("chain-replay@example.com").await;
    assert_eq!(first.refresh.len(), 75, "{}", first.refresh);
    let mut tokens = vec![first];
    for _ in 0..4 {
        let next = refreshed(&app, &tokens.last().unwrap().refresh).await;
        tokens.push(next);
    }
    let db = Database::connect(&app.database_url).await.expect("connect");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM refresh_tokens").await,
        1,
        "four rotations added rows"
    );
    assert_eq!(
        count(&db, "SELECT MAX(generation) FROM refresh_tokens").await,
        4
    );
    // Past the grace window, generation 1 (three rotations old) comes back.
    clock.advance(Duration::from_secs(11));
    app.refresh(&tokens[1].refresh)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");
    let live = tokens.last().unwrap();
    app.refresh(&live.refresh)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");
    app.me(Some(&live.access))
        .await
        .expect_error("UNAUTHENTICATED");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL"
        )
        .await,
        1
    );
}

async fn a_forged_generation_is_invalid_and_leaves_the_session_alone(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let first = app.register_ok("chain-forged@example.com").await;
    let second = refreshed(&app, &first.refresh).await;
    clock.advance(Duration::from_secs(11));
    let forged = [
        // A spent generation under the live one's MAC: would be a replay if it were real.
        with_generation(&second.refresh, 0),
        // Generations the chain never reached.
        with_generation(&second.refresh, 2),
        with_generation(&second.refresh, 1 << 40),
        // Beyond what the database counts.
        with_generation(&second.refresh, u64::MAX),
        // The right shape, made up.
        URL_SAFE_NO_PAD.encode([7u8; 56]),
    ];
    for token in &forged {
        assert_eq!(token.len(), 75);
        let r = app.refresh(token).await;
        assert_eq!(
            r.code(),
            Some("INVALID_REFRESH_TOKEN"),
            "{token}: {}",
            r.body
        );
        let r = app.logout(None, Some(token), false).await;
        assert_eq!(
            r.code(),
            Some("INVALID_REFRESH_TOKEN"),
            "{token}: {}",
            r.body
        );
    }
    // None of it revoked anything: the live generation still works.
    assert!(app.me_ok(&second.access).await);
    let third = refreshed(&app, &second.refresh).await;
    assert!(app.me_ok(&third.access).await);
}

async fn logout_with_an_earlier_generation_after_the_grace_window_revokes(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let first = app.register_ok("chain-logout@example.com").await;
    let second = refreshed(&app, &first.refresh).await;
    let third = refreshed(&app, &second.refresh).await;
    clock.advance(Duration::from_secs(11));
    let r = app.logout(None, Some(&first.refresh), false).await;
    assert_eq!(r.code(), Some("INVALID_REFRESH_TOKEN"), "{}", r.body);
    app.me(Some(&third.access))
        .await
        .expect_error("UNAUTHENTICATED");
}

/// A token of the kind issued before chains for the app's only session.
async fn legacy_token(app: &TestApp, db: &DatabaseConnection) -> String {
    let mut tokens = store_pre_chain_refresh_tokens(&app.settings, db, &app.database_url).await;
    assert_eq!(tokens.len(), 1, "one session");
    tokens.remove(0)
}

async fn a_token_issued_before_chains_refreshes_onto_a_chain(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    app.register_ok("chain-upgrade@example.com").await;
    let db = Database::connect(&app.database_url).await.expect("connect");
    let legacy = legacy_token(&app, &db).await;
    assert_eq!(legacy.len(), 43);

    let next = refreshed(&app, &legacy).await;
    assert_eq!(next.refresh.len(), 75, "the successor is a chain's");
    assert!(app.me_ok(&next.access).await);
    // A retry inside the grace window gets the same successor.
    let again = refreshed(&app, &legacy).await;
    assert_eq!(again.refresh, next.refresh);
    // The chain goes on like any other.
    let after = refreshed(&app, &next.refresh).await;
    assert!(app.me_ok(&after.access).await);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM refresh_tokens WHERE generation = 1"
        )
        .await,
        1
    );
    // Past the grace window, the old token is a replay: the session goes.
    clock.advance(Duration::from_secs(11));
    app.refresh(&legacy)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");
    app.me(Some(&after.access))
        .await
        .expect_error("UNAUTHENTICATED");
    app.refresh(&after.refresh)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");
}

async fn a_live_token_issued_before_chains_logs_its_session_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let issued = app.register_ok("chain-legacy-logout@example.com").await;
    let db = Database::connect(&app.database_url).await.expect("connect");
    let legacy = legacy_token(&app, &db).await;
    let r = app.logout(None, Some(&legacy), false).await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    app.me(Some(&issued.access))
        .await
        .expect_error("UNAUTHENTICATED");
}

backend_tests!(
    rotations_move_one_row_on_and_a_replay_of_any_earlier_generation_revokes,
    a_forged_generation_is_invalid_and_leaves_the_session_alone,
    logout_with_an_earlier_generation_after_the_grace_window_revokes,
    a_token_issued_before_chains_refreshes_onto_a_chain,
    a_live_token_issued_before_chains_logs_its_session_out,
);
