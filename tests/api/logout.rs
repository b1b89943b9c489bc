//! `logout`: by bearer, by refresh token, every session, and the failures.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{Backend, PASSWORD, TestApp, Tokens, spawn_app};

async fn login(app: &TestApp, email: &str) -> Tokens {
    let r = app.login_email(email, PASSWORD).await;
    Tokens::from_payload(r.data("login"))
}

/// `access` re-signed with `app`'s key, its `iat`/`exp` moved by `shift` seconds.
fn shifted_access_token(app: &TestApp, access: &str, shift: i64) -> String {
    let payload = access.split('.').nth(1).expect("a JWT has a payload");
    let bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    let mut claims: Value = serde_json::from_slice(&bytes).expect("JSON claims");
    for field in ["iat", "exp"] {
        let v = claims[field].as_i64().expect("numeric claim");
        claims[field] = Value::from(v + shift);
    }
    crate::tokens::sign_right(app, &claims)
}

/// Asserts `logout` answered `true` with no error.
fn assert_logged_out(r: &crate::helpers::Gql) {
    assert_eq!(r.status, 200);
    assert!(r.body["errors"].is_null(), "logout failed: {}", r.body);
    assert_eq!(r.body["data"]["logout"], true, "{}", r.body);
}

async fn logout_by_bearer_revokes_only_that_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let one = app.register_ok("bearer@example.com").await;
    let two = login(&app, "bearer@example.com").await;

    assert_logged_out(&app.logout(Some(&one.access), None, false).await);

    app.me(Some(&one.access))
        .await
        .expect_error("UNAUTHENTICATED");
    app.refresh(&one.refresh)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");

    assert!(app.me_ok(&two.access).await, "logout ended another session");
    let r = app.refresh(&two.refresh).await;
    assert!(
        r.body["errors"].is_null(),
        "the other session cannot refresh: {}",
        r.body
    );
}

async fn logout_of_all_sessions_revokes_every_session_of_the_user_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let one = app.register_ok("all@example.com").await;
    let two = login(&app, "all@example.com").await;
    let three = login(&app, "all@example.com").await;
    let stranger = app.register_ok("stranger@example.com").await;

    assert_logged_out(&app.logout(Some(&two.access), None, true).await);

    for (name, s) in [("one", &one), ("two", &two), ("three", &three)] {
        let me = app.me(Some(&s.access)).await;
        assert_eq!(
            me.code(),
            Some("UNAUTHENTICATED"),
            "session {name}: {}",
            me.body
        );
        let r = app.refresh(&s.refresh).await;
        assert_eq!(
            r.code(),
            Some("INVALID_REFRESH_TOKEN"),
            "session {name}: {}",
            r.body
        );
    }

    assert!(
        app.me_ok(&stranger.access).await,
        "another user was logged out"
    );
    let r = app.refresh(&stranger.refresh).await;
    assert!(
        r.body["errors"].is_null(),
        "another user cannot refresh: {}",
        r.body
    );
}

async fn logout_of_all_sessions_by_refresh_token_alone_revokes_every_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let one = app.register_ok("all-refresh@example.com").await;
    let two = login(&app, "all-refresh@example.com").await;
    let stranger = app.register_ok("stranger2@example.com").await;

    assert_logged_out(&app.logout(None, Some(&one.refresh), true).await);

    for s in [&one, &two] {
        app.me(Some(&s.access))
            .await
            .expect_error("UNAUTHENTICATED");
        app.refresh(&s.refresh)
            .await
            .expect_error("INVALID_REFRESH_TOKEN");
    }
    assert!(
        app.me_ok(&stranger.access).await,
        "another user was logged out"
    );
}

async fn a_refresh_token_alone_logs_its_session_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let one = app.register_ok("by-refresh@example.com").await;
    let two = login(&app, "by-refresh@example.com").await;

    assert_logged_out(&app.logout(None, Some(&one.refresh), false).await);

    app.me(Some(&one.access))
        .await
        .expect_error("UNAUTHENTICATED");
    app.refresh(&one.refresh)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");
    assert!(app.me_ok(&two.access).await, "logout ended another session");
}

async fn an_expired_access_token_with_the_refresh_token_logs_the_session_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let issued = app.register_ok("expired-bearer@example.com").await;
    let other = login(&app, "expired-bearer@example.com").await;

    // The same session's token, re-signed: an hour in the past (beyond any leeway), and
    // unchanged (proving the re-signing itself is accepted).
    let expired = shifted_access_token(&app, &issued.access, -3600);
    let current = shifted_access_token(&app, &issued.access, 0);
    app.me(Some(&expired)).await.expect_error("UNAUTHENTICATED");
    assert!(
        app.me_ok(&current).await,
        "a re-signed token should be accepted"
    );

    assert_logged_out(
        &app.logout(Some(&expired), Some(&issued.refresh), false)
            .await,
    );

    app.me(Some(&issued.access))
        .await
        .expect_error("UNAUTHENTICATED");
    app.me(Some(&current)).await.expect_error("UNAUTHENTICATED");
    app.refresh(&issued.refresh)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");
    assert!(
        app.me_ok(&other.access).await,
        "logout ended another session"
    );
}

async fn logout_with_neither_bearer_nor_refresh_token_is_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    let issued = app.register_ok("neither@example.com").await;
    let r = app.logout(None, None, false).await;
    assert_eq!(r.status, 200);
    r.expect_error("UNAUTHENTICATED");
    assert!(r.body["data"].is_null(), "{}", r.body);
    app.logout(None, None, true)
        .await
        .expect_error("UNAUTHENTICATED");
    // An invalid bearer token is no better than none.
    app.logout(Some("not-a-jwt"), None, false)
        .await
        .expect_error("UNAUTHENTICATED");
    assert!(app.me_ok(&issued.access).await);
}

async fn logout_with_an_unknown_refresh_token_is_an_invalid_refresh_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let issued = app.register_ok("unknown-refresh@example.com").await;
    let unknown = "Z".repeat(43);
    app.logout(None, Some(&unknown), false)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");
    app.logout(None, Some("garbage"), false)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");
    assert!(
        app.me_ok(&issued.access).await,
        "a failed logout ended a session"
    );
}

async fn logging_out_twice_with_the_same_bearer_is_unauthenticated_the_second_time(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let issued = app.register_ok("twice@example.com").await;
    assert_logged_out(&app.logout(Some(&issued.access), None, false).await);
    app.logout(Some(&issued.access), None, false)
        .await
        .expect_error("UNAUTHENTICATED");
}

async fn a_valid_bearer_logs_out_even_with_a_stale_refresh_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.register_ok("stale@example.com").await;
    // Rotate, so the first refresh token is spent; the first access token stays valid.
    let rotated = Tokens::from_payload(app.refresh(&first.refresh).await.data("refreshToken"));
    let r = app
        .logout(Some(&first.access), Some("A".repeat(43).as_str()), false)
        .await;
    assert_logged_out(&r);
    assert!(
        !app.me_ok(&first.access).await,
        "the bearer's session is revoked"
    );
    app.refresh(&rotated.refresh)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");
}

backend_tests!(
    a_valid_bearer_logs_out_even_with_a_stale_refresh_token,
    logout_by_bearer_revokes_only_that_session,
    logout_of_all_sessions_revokes_every_session_of_the_user_only,
    logout_of_all_sessions_by_refresh_token_alone_revokes_every_session,
    a_refresh_token_alone_logs_its_session_out,
    an_expired_access_token_with_the_refresh_token_logs_the_session_out,
    logout_with_neither_bearer_nor_refresh_token_is_unauthenticated,
    logout_with_an_unknown_refresh_token_is_an_invalid_refresh_token,
    logging_out_twice_with_the_same_bearer_is_unauthenticated_the_second_time,
);
