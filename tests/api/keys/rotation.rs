//! Rotation of keys stored in the database (`KEY_ENCRYPTION_KEY`), with the real
//! `auth-server keys` commands on the test's database and a server on a clock the test
//! moves. The commands run on the wall clock; the server's clock is brought to the
//! instants they recorded (`keys list --json`), never behind where it already stands.

use std::time::Duration;

use auth_server::auth::tokens::signing::admin;
use chrono::SubsecRound;
use jsonwebtoken::Algorithm;
use serde_json::Value;

use super::{
    entry, instant, jwks, keys_command, kid_of, listed, published_kids, store_of, stored_keys,
    verify_outside,
};
use crate::backend_tests;
use crate::helpers::*;

fn sorted(mut kids: Vec<String>) -> Vec<String> {
    kids.sort_unstable();
    kids
}

/// Logs `ada@example.com` in (a new session) and returns the tokens.
async fn login(app: &TestApp) -> Tokens {
    Tokens::from_payload(
        app.login_email("ada@example.com", PASSWORD)
            .await
            .data("login"),
    )
}

/// The state `keys list` gives `kid` at the server's clock (the same rule as the command,
/// at an instant the command's wall clock has not reached).
async fn state_at_server_time(
    app: &TestApp,
    now: chrono::DateTime<chrono::Utc>,
    kid: &str,
) -> String {
    let store = store_of(app).await;
    let keys = admin::list(&store, &app.settings.tokens, now)
        .await
        .expect("keys list");
    keys.iter()
        .find(|k| k.kid == kid)
        .unwrap_or_else(|| panic!("no key {kid} in {keys:?}"))
        .state
        .to_owned()
}

async fn keys_rotate_publishes_the_new_key_before_it_signs_and_keeps_the_old_one_until_its_tokens_expire(
    backend: Backend,
) {
    let (app, clock) = spawn_app_with_clock(backend, stored_keys).await;
    let lead = chrono::Duration::from_std(app.settings.tokens.rotation_lead()).unwrap();
    let lifetime = app.settings.tokens.token_lifetime();
    assert_eq!(
        lead,
        chrono::Duration::minutes(6),
        "1 m reload + 5 m max-age"
    );
    let old = published_kids(&app).await;
    assert_eq!(old.len(), 1, "a development start made one key: {old:?}");
    let old = old[0].clone();
    let a1 = app.register_ok("ada@example.com").await;
    assert_eq!(kid_of(&a1.access), old);

    // `keys rotate` prints the new kid on its first line.
    let rotated = keys_command(&app, &["rotate"]).await.ok();
    let new = rotated.first_line().to_owned();
    assert_eq!(new.len(), 43, "a SHA-256 thumbprint in base64url: {new:?}");
    assert_ne!(new, old);

    // Published at once (this instance re-reads the table now rather than in a minute)...
    app.auth.reload_signing_keys().await.expect("reload");
    assert_eq!(
        sorted(published_kids(&app).await),
        sorted(vec![old.clone(), new.clone()])
    );
    // ...before it signs anything.
    assert_eq!(kid_of(&login(&app).await.access), old);

    let list = listed(&app).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let (old_entry, new_entry) = (entry(&list, &old), entry(&list, &new));
    assert_eq!(old_entry["state"], "signing");
    assert_eq!(new_entry["state"], "pending");
    assert_eq!(new_entry["algorithm"], "ES256");
    let rotated_at = instant(new_entry, "created_at");
    let activates_at = instant(new_entry, "activates_at");
    assert_eq!(
        activates_at - rotated_at,
        lead,
        "signs after the rotation lead"
    );
    assert_eq!(
        instant(old_entry, "published_until"),
        activates_at + lifetime,
        "the old key stays published for the life of its last token"
    );
    assert_eq!(new_entry["published_until"], Value::Null);
    assert_eq!(new_entry["retired_at"], Value::Null);

    // The server's clock reaches the rotation, then runs to just before the hand-over.
    assert!(rotated_at >= clock.now(), "the server's clock is not ahead");
    clock.set(rotated_at);
    clock.advance(app.settings.tokens.rotation_lead() - Duration::from_millis(1));
    let last_of_old = login(&app).await;
    assert_eq!(
        kid_of(&last_of_old.access),
        old,
        "the old key signs until the lead"
    );
    clock.advance(Duration::from_millis(1));
    let first_of_new = login(&app).await;
    assert_eq!(
        kid_of(&first_of_new.access),
        new,
        "the new key signs after the lead"
    );
    assert_eq!(
        state_at_server_time(&app, clock.now(), &old).await,
        "published"
    );
    assert_eq!(
        state_at_server_time(&app, clock.now(), &new).await,
        "signing"
    );

    // Tokens of both keys pass `me`, and verify from the outside against the JWKS.
    let document = jwks(&app).await;
    for tokens in [&a1, &last_of_old, &first_of_new] {
        assert!(
            app.me_ok(&tokens.access).await,
            "{}",
            kid_of(&tokens.access)
        );
        verify_outside(&document, &tokens.access, Algorithm::ES256);
    }

    // The old key stays published until the last token it signed has expired...
    let published_until = activates_at + lifetime;
    clock.set(published_until - chrono::Duration::seconds(1));
    assert_eq!(
        sorted(published_kids(&app).await),
        sorted(vec![old.clone(), new.clone()])
    );
    assert!(
        app.me_ok(&last_of_old.access).await,
        "the old key's last token still verifies"
    );
    // ...and not a moment longer.
    clock.set(published_until);
    app.auth.reload_signing_keys().await.expect("reload");
    assert_eq!(published_kids(&app).await, vec![new.clone()]);
    assert_eq!(
        state_at_server_time(&app, clock.now(), &old).await,
        "expired"
    );
    clock.advance(Duration::from_secs(1));
    assert!(!app.me_ok(&last_of_old.access).await);
    let fresh = login(&app).await;
    assert_eq!(kid_of(&fresh.access), new);
    assert!(app.me_ok(&fresh.access).await);
}

async fn keys_retire_refuses_the_key_that_signs_and_names_keys_rotate(backend: Backend) {
    let app = spawn_app_with(backend, stored_keys).await;
    let old = published_kids(&app).await.remove(0);
    let tokens = app.register_ok("ada@example.com").await;

    keys_command(&app, &["retire", &old])
        .await
        .refused_with(&[&old, "keys rotate"]);
    // Still refused with a rotation pending: the new key cannot sign before its turn.
    let new = keys_command(&app, &["rotate"])
        .await
        .ok()
        .first_line()
        .to_owned();
    keys_command(&app, &["retire", &old])
        .await
        .refused_with(&["keys rotate"]);
    // An unknown kid is named as such.
    keys_command(&app, &["retire", "no-such-kid"])
        .await
        .refused_with(&["no-such-kid"]);

    let list = listed(&app).await;
    assert_eq!(entry(&list, &old)["state"], "signing");
    assert_eq!(entry(&list, &old)["retired_at"], Value::Null);
    assert_eq!(entry(&list, &new)["state"], "pending");
    app.auth.reload_signing_keys().await.expect("reload");
    assert!(published_kids(&app).await.contains(&old));
    assert!(app.me_ok(&tokens.access).await);
    assert_eq!(kid_of(&login(&app).await.access), old);
}

async fn keys_retire_cancels_a_pending_key_which_leaves_the_jwks_and_never_signs(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, stored_keys).await;
    let old = published_kids(&app).await.remove(0);
    app.register_ok("ada@example.com").await;

    let new = keys_command(&app, &["rotate"])
        .await
        .ok()
        .first_line()
        .to_owned();
    app.auth.reload_signing_keys().await.expect("reload");
    assert_eq!(
        sorted(published_kids(&app).await),
        sorted(vec![old.clone(), new.clone()])
    );

    let retired = keys_command(&app, &["retire", &new]).await.ok();
    assert!(
        retired.stdout.contains(&new),
        "retire names the key: {}",
        retired.stdout
    );
    let list = listed(&app).await;
    let cancelled = entry(&list, &new);
    assert_eq!(cancelled["state"], "retired", "{cancelled}");
    let retired_at = instant(cancelled, "retired_at");
    let activates_at = instant(cancelled, "activates_at");
    assert_eq!(
        instant(cancelled, "published_until"),
        retired_at,
        "withdrawn at once: it signed nothing"
    );
    assert_eq!(entry(&list, &old)["state"], "signing");
    assert_eq!(entry(&list, &old)["published_until"], Value::Null);

    // At the instant of the retirement the server withdraws it.
    assert!(retired_at >= clock.now());
    clock.set(retired_at);
    app.auth.reload_signing_keys().await.expect("reload");
    assert_eq!(published_kids(&app).await, vec![old.clone()]);
    // Past the turn it would have had, the old key still signs.
    clock.set(activates_at + chrono::Duration::minutes(1));
    app.auth.reload_signing_keys().await.expect("reload");
    let tokens = login(&app).await;
    assert_eq!(kid_of(&tokens.access), old);
    assert!(app.me_ok(&tokens.access).await);
    assert_eq!(published_kids(&app).await, vec![old.clone()]);
    // A second retire is refused.
    keys_command(&app, &["retire", &new])
        .await
        .refused_with(&["already retired"]);
}

async fn a_rotation_to_another_jwt_algorithm_keeps_the_old_tokens_and_signs_with_the_new_one(
    backend: Backend,
) {
    let (app, clock) = spawn_app_with_clock(backend, stored_keys).await;
    let before = app.register_ok("ada@example.com").await;
    assert_eq!(super::header_of(&before.access)["alg"], "ES256");

    // The operator sets JWT_ALGORITHM=EdDSA and rotates.
    let mut eddsa = app.settings.tokens.clone();
    eddsa.algorithm = auth_server::auth::tokens::signing::SigningAlgorithm::EdDsa;
    let store = store_of(&app).await;
    let rotated = admin::rotate(&store, &eddsa, clock.now())
        .await
        .expect("rotate");
    assert_eq!(rotated.key.algorithm, "EdDSA");
    app.auth.reload_signing_keys().await.expect("reload");
    clock.advance(app.settings.tokens.rotation_lead());

    let after = login(&app).await;
    assert_eq!(super::header_of(&after.access)["alg"], "EdDSA");
    assert_eq!(kid_of(&after.access), rotated.key.kid);
    let document = jwks(&app).await;
    let kinds: Vec<(&str, &str)> = document["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| (k["kty"].as_str().unwrap(), k["alg"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds.len(), 2, "{document}");
    assert!(kinds.contains(&("EC", "ES256")), "{document}");
    assert!(kinds.contains(&("OKP", "EdDSA")), "{document}");
    let discovery: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256", "EdDSA"])
    );
    for (tokens, algorithm) in [(&before, Algorithm::ES256), (&after, Algorithm::EdDSA)] {
        assert!(app.me_ok(&tokens.access).await);
        verify_outside(&document, &tokens.access, algorithm);
    }
    // An EdDSA header on a token of the ES256 key is refused (the key fixes the algorithm).
    let mut header = super::header_of(&before.access);
    header["alg"] = Value::String("EdDSA".to_owned());
    let (_, rest) = before.access.split_once('.').expect("a JWT");
    let relabelled = format!("{}.{rest}", crate::tokens::encode_part(&header));
    assert!(!app.me_ok(&relabelled).await);
}

async fn logout_takes_effect_at_once_for_es256_tokens_in_our_own_guard(backend: Backend) {
    let app = spawn_app_with(backend, stored_keys).await;
    let tokens = app.register_ok("ada@example.com").await;
    assert_eq!(super::header_of(&tokens.access)["alg"], "ES256");
    // Verified (and remembered) once.
    assert!(app.me_ok(&tokens.access).await);
    assert!(app.me_ok(&tokens.access).await);

    app.logout(Some(&tokens.access), Some(&tokens.refresh), false)
        .await
        .expect_success();
    let r = app.me(Some(&tokens.access)).await;
    r.expect_only_error("UNAUTHENTICATED");
    // A third party holding only the JWKS still sees a valid signature until `exp`: that
    // is why the access TTL must stay short (SECURITY.md).
    verify_outside(&jwks(&app).await, &tokens.access, Algorithm::ES256);
}

/// A key left the ring at its last signing instant + TTL + 5 s, while the server accepts a
/// token until the whole second after `exp` + 5 s has passed: for up to a second the last
/// token of a replaced key was accepted when remembered and refused when not, and accepted
/// while its key was no longer in the JWKS. Fixed by publishing a second longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_token_of_a_replaced_key_expires_no_later_than_its_key_leaves_the_jwks() {
    let (app, clock) = spawn_app_with_clock(Backend::Sqlite, stored_keys).await;
    app.register_ok("ada@example.com").await;
    // Rotate at half past a second: the hand-over is then half a second after the whole
    // second its last token's `exp` counts from.
    let half_past = clock.now().trunc_subsecs(0) + chrono::Duration::milliseconds(1500);
    clock.set(half_past);
    let store = store_of(&app).await;
    let rotated = admin::rotate(&store, &app.settings.tokens, clock.now())
        .await
        .expect("rotate");
    let published_until = rotated
        .replaces
        .and_then(|k| k.published_until)
        .expect("the old key is replaced");
    app.auth.reload_signing_keys().await.expect("reload");
    // The last token the old key signs, remembered by the server, and its twin (the same
    // claims but `jti`, signed by the same key), never seen before.
    clock.set(rotated.key.activates_at - chrono::Duration::milliseconds(1));
    let old = app
        .auth
        .signing_keys()
        .signer(clock.now())
        .expect("the old key signs");
    let last = login(&app).await;
    assert!(app.me_ok(&last.access).await);
    let mut claims = crate::tokens::part_of(&last.access, 1);
    claims["jti"] = Value::String(uuid::Uuid::new_v4().to_string());
    let twin = jsonwebtoken::encode(&old.header, &claims, &old.encoding).expect("signs");

    clock.set(published_until);
    let remembered = app.me_ok(&last.access).await;
    let fresh = app.me_ok(&twin).await;
    assert_eq!(
        remembered, fresh,
        "the same token at the same instant: accepted when remembered, not otherwise"
    );
    if remembered {
        assert!(
            published_kids(&app).await.contains(&old.kid),
            "a token is accepted while its key is no longer published"
        );
    }
}

/// An emergency: the operator deletes a key's row by hand. Once the instances have
/// re-read the table, its tokens are refused, including one already verified and
/// remembered (the cache of verified tokens is keyed to the keys it verified under).
async fn a_key_deleted_from_the_table_admits_none_of_its_tokens_after_the_reload(backend: Backend) {
    use sea_orm::EntityTrait;
    let (app, clock) = spawn_app_with_clock(backend, stored_keys).await;
    let old = app.register_ok("ada@example.com").await;
    assert!(app.me_ok(&old.access).await, "verified, and remembered");
    let store = store_of(&app).await;
    admin::rotate(&store, &app.settings.tokens, clock.now())
        .await
        .expect("rotate");
    app.auth.reload_signing_keys().await.expect("reload");
    clock.advance(app.settings.tokens.rotation_lead());
    let new = login(&app).await;
    assert_ne!(kid_of(&new.access), kid_of(&old.access));
    assert!(
        app.me_ok(&old.access).await,
        "the old key is still published"
    );

    let db = auth_server::db::connect(&app.settings.database)
        .await
        .expect("the test database answers");
    auth_server::entity::signing_key::Entity::delete_by_id(kid_of(&old.access))
        .exec(&db)
        .await
        .expect("delete the old key's row");
    app.auth.reload_signing_keys().await.expect("reload");

    app.me(Some(&old.access))
        .await
        .expect_only_error("UNAUTHENTICATED");
    assert!(
        app.me_ok(&new.access).await,
        "the new key's tokens still work"
    );
    let published: Vec<Value> = jwks(&app).await["keys"].as_array().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert_eq!(
        published[0]["kid"].as_str(),
        Some(kid_of(&new.access).as_str())
    );
}

backend_tests!(
    a_key_deleted_from_the_table_admits_none_of_its_tokens_after_the_reload,
    keys_rotate_publishes_the_new_key_before_it_signs_and_keeps_the_old_one_until_its_tokens_expire,
    keys_retire_refuses_the_key_that_signs_and_names_keys_rotate,
    keys_retire_cancels_a_pending_key_which_leaves_the_jwks_and_never_signs,
    a_rotation_to_another_jwt_algorithm_keeps_the_old_tokens_and_signs_with_the_new_one,
    logout_takes_effect_at_once_for_es256_tokens_in_our_own_guard,
);
