//! `revokeSession(id)`: `true` when it ended one of the caller's live sessions (whose
//! access token then fails at once, and whose refresh token is refused), `false` for any
//! other well-formed id, alike; a malformed id is `BAD_USER_INPUT` on `id`.

use std::time::Duration;

use serde_json::json;

use super::{ids, sid};
use crate::backend_tests;
use crate::helpers::*;

async fn revoke_session_ends_another_of_the_callers_sessions_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let laptop = app.register_from("Laptop/1", "ada@example.com").await;
    let stolen = app.login_ok_from("Stolen/1", "ada@example.com").await;
    assert!(app.me_ok(&stolen.access).await);

    assert!(
        app.revoke_session(&laptop.access, &sid(&stolen.access))
            .await
    );
    assert!(
        !app.me_ok(&stolen.access).await,
        "the revoked session's access token fails on its next request"
    );
    app.me(Some(&stolen.access))
        .await
        .expect_only_error("UNAUTHENTICATED");
    app.refresh(&stolen.refresh)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    assert!(
        app.me_ok(&laptop.access).await,
        "the caller's own session keeps working"
    );
    assert_eq!(
        ids(&app.sessions_ok(&laptop.access).await),
        [sid(&laptop.access)]
    );
    // The laptop's refresh token still rotates.
    app.refresh(&laptop.refresh).await.expect_success();
}

async fn revoke_session_is_false_for_an_unknown_a_foreign_and_an_already_revoked_session(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let ada = app.register_from("Ada/1", "ada@example.com").await;
    let ada_old = app.login_ok_from("Ada/2", "ada@example.com").await;
    let bob = app.register_from("Bob/1", "bob@example.com").await;

    let unknown = uuid::Uuid::new_v4().to_string();
    assert!(!app.revoke_session(&ada.access, &unknown).await, "unknown");

    let bobs = sid(&bob.access);
    assert!(
        !app.revoke_session(&ada.access, &bobs).await,
        "another user's"
    );
    assert!(
        !app.revoke_session(&ada.access, &bobs.to_uppercase()).await,
        "another user's, spelled in capitals"
    );
    assert!(app.me_ok(&bob.access).await, "bob's session stays live");
    assert_eq!(ids(&app.sessions_ok(&bob.access).await), [bobs]);
    let bob_rotated = app.refresh(&bob.refresh).await;
    bob_rotated.expect_success();

    assert!(app.revoke_session(&ada.access, &sid(&ada_old.access)).await);
    assert!(
        !app.revoke_session(&ada.access, &sid(&ada_old.access)).await,
        "already revoked"
    );
    // A logged-out session is as revoked as a revoked one.
    let ada_gone = app.login_ok_from("Ada/3", "ada@example.com").await;
    app.logout(Some(&ada_gone.access), None, false)
        .await
        .expect_success();
    assert!(
        !app.revoke_session(&ada.access, &sid(&ada_gone.access))
            .await
    );

    // Only the one true answer left a `session_revoked` event, and bob sees none.
    let revoked: Vec<_> = app
        .events_ok(&ada.access)
        .await
        .into_iter()
        .filter(|e| e["kind"] == json!("session_revoked"))
        .collect();
    assert_eq!(revoked.len(), 1, "{revoked:#?}");
    assert_eq!(revoked[0]["sessionId"], json!(sid(&ada_old.access)));
    let bob_events = app.events_ok(&bob.access).await;
    assert!(
        bob_events
            .iter()
            .all(|e| e["kind"] != json!("session_revoked")),
        "{bob_events:#?}"
    );
}

async fn revoke_session_is_false_for_the_callers_expired_session(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |s| {
        s.tokens.refresh_ttl = Duration::from_secs(3600);
    })
    .await;
    let old = app.register_ok("ada@example.com").await;
    clock.advance(Duration::from_secs(59 * 60));
    let caller = app.login_ok_from("Caller/1", "ada@example.com").await;
    clock.advance(Duration::from_secs(2 * 60));
    assert!(
        !app.revoke_session(&caller.access, &sid(&old.access)).await,
        "an expired session is not live"
    );
    let events = app.events_ok(&caller.access).await;
    assert!(
        events.iter().all(|e| e["kind"] != json!("session_revoked")),
        "{events:#?}"
    );
}

async fn revoking_one_session_twice_at_once_answers_true_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let target = app.login_ok_from("Target/1", "ada@example.com").await;
    let id = sid(&target.access);
    let answers =
        futures::future::join_all((0..4).map(|_| app.revoke_session(&ada.access, &id))).await;
    assert_eq!(
        answers.iter().filter(|revoked| **revoked).count(),
        1,
        "{answers:?}"
    );
    let events = app.events_ok(&ada.access).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == json!("session_revoked"))
            .count(),
        1,
        "{events:#?}"
    );
}

async fn revoke_session_refuses_a_malformed_id_as_bad_input_on_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let uuid = sid(&ada.access);
    for bad in [
        "nope".to_owned(),
        String::new(),
        " ".to_owned(),
        "12345".to_owned(),
        format!("{uuid}x"),
        format!("{uuid}' OR '1'='1"),
        "x".repeat(10_000),
    ] {
        let r = app
            .gql(
                "mutation($id: ID!) { revokeSession(id: $id) }",
                json!({"id": bad}),
                Some(&ada.access),
            )
            .await;
        r.expect_bad_input("id");
    }
    // An integer is a valid ID literal, and no session's id.
    let r = app
        .gql(
            "mutation { revokeSession(id: 42) }",
            json!({}),
            Some(&ada.access),
        )
        .await;
    r.expect_bad_input("id");
    assert!(app.me_ok(&ada.access).await, "nothing was revoked");
}

async fn revoking_ones_own_current_session_is_a_logout(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let other = app.login_ok_from("Other/1", "ada@example.com").await;
    assert!(app.revoke_session(&ada.access, &sid(&ada.access)).await);
    app.me(Some(&ada.access))
        .await
        .expect_only_error("UNAUTHENTICATED");
    app.refresh(&ada.refresh)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    assert!(app.me_ok(&other.access).await, "the other session stays");
}

async fn revoke_session_without_a_valid_access_token_is_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    for bearer in [None, Some("junk"), Some(ada.refresh.as_str())] {
        let r = app
            .gql(
                "mutation($id: ID!) { revokeSession(id: $id) }",
                json!({"id": sid(&ada.access)}),
                bearer,
            )
            .await;
        r.expect_only_error("UNAUTHENTICATED");
    }
    assert!(app.me_ok(&ada.access).await);
}

backend_tests!(
    revoke_session_ends_another_of_the_callers_sessions_at_once,
    revoke_session_is_false_for_an_unknown_a_foreign_and_an_already_revoked_session,
    revoke_session_is_false_for_the_callers_expired_session,
    revoking_one_session_twice_at_once_answers_true_once,
    revoke_session_refuses_a_malformed_id_as_bad_input_on_id,
    revoking_ones_own_current_session_is_a_logout,
    revoke_session_without_a_valid_access_token_is_unauthenticated,
);
