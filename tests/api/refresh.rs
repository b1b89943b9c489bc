//! `refreshToken`: rotation, the reuse grace window, reuse detection, malformed and
//! expired tokens, and concurrent refreshes of one token.

use std::collections::HashSet;
use std::time::Duration;

use futures::future::join_all;

use crate::backend_tests;
use crate::helpers::{Backend, PASSWORD, Tokens, spawn_app, spawn_app_with_clock};

/// Opens a second session for an account registered with `register_ok`.
async fn second_session(app: &crate::helpers::TestApp, email: &str) -> Tokens {
    let r = app.login_email(email, PASSWORD).await;
    Tokens::from_payload(r.data("login"))
}

async fn a_refresh_returns_a_new_pair_whose_access_token_works_on_me(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.register_ok("rotate@example.com").await;

    let r = app.refresh(&first.refresh).await;
    assert_eq!(r.status, 200);
    assert!(r.body["errors"].is_null(), "unexpected errors: {}", r.body);
    let payload = r.data("refreshToken");
    let next = Tokens::from_payload(payload);
    assert_ne!(next.refresh, first.refresh, "the refresh token must rotate");
    assert_ne!(next.access, first.access, "a new access token is minted");
    assert_eq!(next.user_id, first.user_id);
    assert_eq!(payload["tokenType"], "Bearer");
    assert_eq!(payload["expiresIn"], 15 * 60);
    assert_eq!(payload["refreshExpiresIn"], 7 * 24 * 3600);
    assert_eq!(payload["user"]["email"], "rotate@example.com");

    let me = app.me(Some(&next.access)).await;
    assert!(me.body["errors"].is_null(), "me failed: {}", me.body);
    assert_eq!(me.data("me")["id"], first.user_id.as_str());
    assert_eq!(me.data("me")["email"], "rotate@example.com");
}

async fn the_spent_token_presented_again_inside_the_grace_window_returns_the_same_successor(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let first = app.register_ok("grace@example.com").await;

    let one = Tokens::from_payload(app.refresh(&first.refresh).await.data("refreshToken"));
    let two = Tokens::from_payload(app.refresh(&first.refresh).await.data("refreshToken"));
    assert_eq!(
        two.refresh, one.refresh,
        "a retry inside the grace window must get the same successor"
    );
    assert_eq!(two.user_id, first.user_id);

    // The session was not revoked: every access token of it still works, and so does the
    // successor, exactly once more.
    assert!(
        app.me_ok(&first.access).await,
        "the session was revoked by a retry"
    );
    assert!(
        app.me_ok(&one.access).await,
        "the session was revoked by a retry"
    );
    assert!(
        app.me_ok(&two.access).await,
        "the re-issued access token does not work"
    );
    let three = Tokens::from_payload(app.refresh(&one.refresh).await.data("refreshToken"));
    assert_ne!(three.refresh, one.refresh);
    assert!(app.me_ok(&three.access).await);
}

async fn a_token_two_rotations_old_inside_the_grace_window_fails_without_revoking_the_session(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let first = app.register_ok("two-old@example.com").await;
    let one = Tokens::from_payload(app.refresh(&first.refresh).await.data("refreshToken"));
    let two = Tokens::from_payload(app.refresh(&one.refresh).await.data("refreshToken"));

    // Its successor has itself been spent, so there is nothing to hand back.
    app.refresh(&first.refresh)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");

    // Inside the grace window a repeat never revokes the session.
    assert!(
        app.me_ok(&two.access).await,
        "a retry inside the grace window revoked the session"
    );
    let three = app.refresh(&two.refresh).await;
    assert!(
        three.body["errors"].is_null(),
        "the live token no longer works: {}",
        three.body
    );
}

async fn a_spent_refresh_token_presented_after_the_grace_window_revokes_the_session(
    backend: Backend,
) {
    let (app, clock) =
        spawn_app_with_clock(backend, |s| s.tokens.reuse_grace = Duration::ZERO).await;
    let first = app.register_ok("reuse@example.com").await;
    let other = second_session(&app, "reuse@example.com").await;

    let next = Tokens::from_payload(app.refresh(&first.refresh).await.data("refreshToken"));
    assert!(app.me_ok(&next.access).await);
    clock.advance(Duration::from_millis(1100));

    // The thief (or the victim) presents the spent token again.
    app.refresh(&first.refresh)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");

    // The whole session is gone: its newest refresh token and every access token of it.
    app.refresh(&next.refresh)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");
    app.me(Some(&next.access))
        .await
        .expect_error("UNAUTHENTICATED");
    app.me(Some(&first.access))
        .await
        .expect_error("UNAUTHENTICATED");

    // Another session of the same user is untouched.
    assert!(
        app.me_ok(&other.access).await,
        "reuse revoked another session of the user"
    );
    let r = app.refresh(&other.refresh).await;
    assert!(
        r.body["errors"].is_null(),
        "the other session's refresh failed: {}",
        r.body
    );
    assert!(
        app.me_ok(&Tokens::from_payload(r.data("refreshToken")).access)
            .await
    );
}

async fn an_unknown_refresh_token_is_invalid(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("unknown@example.com").await;
    // The shape the server issued before chains (43 base64url characters), never issued;
    // a chain's shape never issued is `refresh_chains`' case.
    let unknown = "A".repeat(21) + "_" + &"b".repeat(20) + "-";
    assert_eq!(unknown.len(), 43);
    let r = app.refresh(&unknown).await;
    assert_eq!(r.status, 200);
    r.expect_error("INVALID_REFRESH_TOKEN");
    assert!(
        r.body["data"].is_null(),
        "no payload on failure: {}",
        r.body
    );
}

async fn malformed_refresh_tokens_are_invalid(backend: Backend) {
    let app = spawn_app(backend).await;
    let issued = app.register_ok("malformed@example.com").await;
    let with_dot = format!("{}.", &issued.refresh[..74]);
    assert_eq!(with_dot.len(), issued.refresh.len());
    let huge = "a".repeat(10 * 1024);
    let with_space = format!(" {}", issued.refresh);
    for bad in [
        "",
        "abc",
        with_dot.as_str(),
        huge.as_str(),
        with_space.as_str(),
    ] {
        let r = app.refresh(bad).await;
        assert_eq!(r.status, 200, "for {:.60}", bad);
        assert_eq!(
            r.code(),
            Some("INVALID_REFRESH_TOKEN"),
            "for {:.60}: {}",
            bad,
            r.body
        );
    }
    // None of that harmed the real session.
    assert!(app.me_ok(&issued.access).await);
}

async fn an_access_token_is_not_accepted_as_a_refresh_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let issued = app.register_ok("confused@example.com").await;
    app.refresh(&issued.access)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");
    // And the session is untouched.
    assert!(app.me_ok(&issued.access).await);
    let r = app.refresh(&issued.refresh).await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
}

async fn an_expired_refresh_token_is_invalid(backend: Backend) {
    let (app, clock) =
        spawn_app_with_clock(backend, |s| s.tokens.refresh_ttl = Duration::from_secs(1)).await;
    let issued = app.register_ok("expired@example.com").await;
    clock.advance(Duration::from_secs(2));
    app.refresh(&issued.refresh)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");
}

async fn a_rotated_refresh_token_gets_a_full_lifetime_of_its_own(backend: Backend) {
    let (app, clock) =
        spawn_app_with_clock(backend, |s| s.tokens.refresh_ttl = Duration::from_secs(3)).await;
    let issued = app.register_ok("sliding@example.com").await;
    clock.advance(Duration::from_secs(2));
    let r = app.refresh(&issued.refresh).await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert_eq!(r.data("refreshToken")["refreshExpiresIn"], 3);
    let next = Tokens::from_payload(r.data("refreshToken"));
    // Past the first token's lifetime, inside the successor's.
    clock.advance(Duration::from_secs(2));
    let r = app.refresh(&next.refresh).await;
    assert!(
        r.body["errors"].is_null(),
        "the successor expired with its predecessor: {}",
        r.body
    );
    assert!(
        app.me_ok(&Tokens::from_payload(r.data("refreshToken")).access)
            .await
    );
}

async fn concurrent_refreshes_of_one_token_never_yield_two_live_successors(backend: Backend) {
    let app = spawn_app(backend).await;
    let issued = app.register_ok("race@example.com").await;

    let results = join_all((0..20).map(|_| app.refresh(&issued.refresh))).await;

    let mut successors = HashSet::new();
    let mut successes = 0;
    for r in &results {
        assert_eq!(r.status, 200, "{}", r.body);
        match r.code() {
            None => {
                successes += 1;
                successors.insert(
                    r.data("refreshToken")["refreshToken"]
                        .as_str()
                        .expect("refreshToken")
                        .to_owned(),
                );
            }
            Some("INVALID_REFRESH_TOKEN") => {}
            Some(other) => panic!("a concurrent refresh failed with {other}: {}", r.body),
        }
    }
    assert!(successes >= 1, "no refresh succeeded: {results:?}");
    assert_eq!(
        successors.len(),
        1,
        "concurrent refreshes yielded {} distinct successors",
        successors.len()
    );
    let successor = successors.into_iter().next().expect("one successor");
    assert_ne!(successor, issued.refresh);

    // Exactly one live refresh token: the successor rotates once more, and the original
    // token can no longer produce anything new.
    let next = app.refresh(&successor).await;
    assert!(
        next.body["errors"].is_null(),
        "the successor does not work: {}",
        next.body
    );
    let next = Tokens::from_payload(next.data("refreshToken"));
    assert!(app.me_ok(&next.access).await);
    let again = app.refresh(&issued.refresh).await;
    assert_eq!(
        again.code(),
        Some("INVALID_REFRESH_TOKEN"),
        "{}",
        again.body
    );
    // The session survived the race.
    assert!(
        app.me_ok(&next.access).await,
        "the race revoked the session"
    );
}

async fn a_chain_of_five_rotations_keeps_working(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut current = app.register_ok("chain@example.com").await;
    let mut seen = HashSet::from([current.refresh.clone()]);
    for step in 1..=5 {
        let r = app.refresh(&current.refresh).await;
        assert!(
            r.body["errors"].is_null(),
            "rotation {step} failed: {}",
            r.body
        );
        let next = Tokens::from_payload(r.data("refreshToken"));
        assert!(
            seen.insert(next.refresh.clone()),
            "rotation {step} repeated a token"
        );
        assert_eq!(next.user_id, current.user_id);
        assert!(
            app.me_ok(&next.access).await,
            "access token of rotation {step} fails"
        );
        current = next;
    }
}

backend_tests!(
    a_refresh_returns_a_new_pair_whose_access_token_works_on_me,
    the_spent_token_presented_again_inside_the_grace_window_returns_the_same_successor,
    a_token_two_rotations_old_inside_the_grace_window_fails_without_revoking_the_session,
    a_spent_refresh_token_presented_after_the_grace_window_revokes_the_session,
    an_unknown_refresh_token_is_invalid,
    malformed_refresh_tokens_are_invalid,
    an_access_token_is_not_accepted_as_a_refresh_token,
    an_expired_refresh_token_is_invalid,
    a_rotated_refresh_token_gets_a_full_lifetime_of_its_own,
    concurrent_refreshes_of_one_token_never_yield_two_live_successors,
    a_chain_of_five_rotations_keeps_working,
);
