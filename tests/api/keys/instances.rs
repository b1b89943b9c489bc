//! Two instances on one database with the same `KEY_ENCRYPTION_KEY`, as a deployment runs
//! them: a rotation made anywhere reaches both within `SIGNING_KEYS_RELOAD`, without a
//! restart, and a token minted by one verifies on the other.

use std::time::Duration;

use auth_server::Collaborators;
use auth_server::auth::tokens::signing::admin;
use auth_server::clock::ManualClock;

use super::{kid_of, published_kids, store_of, stored_keys, wait_for_kids};
use crate::backend_tests;
use crate::helpers::*;

/// How often each instance re-reads the key table here.
const RELOAD: Duration = Duration::from_millis(200);
/// How long an instance may take to show a rotation: the reload period many times over,
/// for a loaded machine (the polling stops as soon as it shows).
const PICK_UP_BOUND: Duration = Duration::from_secs(10);

/// Two servers on one database, stored keys, reloading every [`RELOAD`], on one clock.
async fn two_instances(backend: Backend) -> (TestApp, TestApp, ManualClock) {
    let (first, clock) = spawn_app_with_clock(backend, |s| {
        stored_keys(s);
        s.tokens.keys_reload = RELOAD;
    })
    .await;
    let second = spawn_instance_of(
        &first,
        |_| {},
        Collaborators {
            clock: clock.clone().into(),
        },
    )
    .await;
    (first, second, clock)
}

async fn login(app: &TestApp) -> Tokens {
    Tokens::from_payload(
        app.login_email("ada@example.com", PASSWORD)
            .await
            .data("login"),
    )
}

async fn two_instances_on_one_database_pick_up_a_rotation_without_a_restart(backend: Backend) {
    let (first, second, clock) = two_instances(backend).await;
    let old = published_kids(&first).await;
    assert_eq!(old.len(), 1, "{old:?}");
    assert_eq!(
        published_kids(&second).await,
        old,
        "the second instance took the stored key rather than making its own"
    );
    let old = old[0].clone();
    first.register_ok("ada@example.com").await;

    // Rotated by a third party (the `keys rotate` code) on the shared database.
    let store = store_of(&first).await;
    let rotated = admin::rotate(&store, &first.settings.tokens, clock.now())
        .await
        .expect("rotate");
    let new = rotated.key.kid.clone();
    assert_eq!(rotated.replaces.map(|k| k.kid), Some(old.clone()));

    for (name, app) in [("second", &second), ("first", &first)] {
        assert!(
            wait_for_kids(app, PICK_UP_BOUND, |kids| kids.contains(&new)).await,
            "the {name} instance did not publish {new} within {PICK_UP_BOUND:?}"
        );
        assert!(published_kids(app).await.contains(&old));
        // Published, not yet signing.
        assert_eq!(kid_of(&login(app).await.access), old, "{name}");
    }

    // After the rotation lead both sign with the new key.
    clock.advance(first.settings.tokens.rotation_lead());
    for app in [&first, &second] {
        let tokens = login(app).await;
        assert_eq!(kid_of(&tokens.access), new);
        assert!(app.me_ok(&tokens.access).await);
    }
}

async fn a_token_minted_by_one_instance_verifies_on_the_other(backend: Backend) {
    let (first, second, clock) = two_instances(backend).await;
    let from_first = first.register_ok("ada@example.com").await;
    let from_second = login(&second).await;
    assert_eq!(kid_of(&from_first.access), kid_of(&from_second.access));
    assert!(second.me_ok(&from_first.access).await);
    assert!(first.me_ok(&from_second.access).await);

    // Across a rotation: the new key's tokens, and the old key's, on both.
    let store = store_of(&first).await;
    let new = admin::rotate(&store, &first.settings.tokens, clock.now())
        .await
        .expect("rotate")
        .key
        .kid;
    for app in [&first, &second] {
        assert!(
            wait_for_kids(app, PICK_UP_BOUND, |kids| kids.contains(&new)).await,
            "{new} was not published within {PICK_UP_BOUND:?}"
        );
    }
    clock.advance(first.settings.tokens.rotation_lead());
    let after = login(&first).await;
    assert_eq!(kid_of(&after.access), new);
    assert!(first.me_ok(&after.access).await);
    assert!(second.me_ok(&after.access).await);
    assert!(second.me_ok(&from_first.access).await);
    assert!(first.me_ok(&from_second.access).await);

    // Logging out on one instance ends the session on the other at once, though each had
    // verified (and remembered) the token.
    second
        .logout(Some(&after.access), Some(&after.refresh), false)
        .await
        .expect_success();
    assert!(!first.me_ok(&after.access).await);
    assert!(!second.me_ok(&after.access).await);
}

backend_tests!(
    two_instances_on_one_database_pick_up_a_rotation_without_a_restart,
    a_token_minted_by_one_instance_verifies_on_the_other,
);
