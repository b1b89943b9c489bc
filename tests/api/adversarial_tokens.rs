//! Adversarial tokens, beyond the forgeries of `tokens.rs`: algorithm confusion with a
//! correct HMAC, key-injection headers, missing and mistyped claims, non-UTF-8 and
//! malformed tokens, type confusion on `logout`, replay after logout, and the tokens of a
//! deleted account. Each case asserts the exact code, then that the server still answers.
//!
//! The HMAC cases run with the legacy `JWT_ALGORITHM=HS256`, whose secret they need: the
//! mirror of "HS/RS confusion" is a token that claims RS256/ES256/... but carries a valid
//! HMAC made with the access secret. The confusion the other way (HS256 signed with our
//! public key) is in `keys/`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::backend_tests;
use crate::helpers::*;
use crate::tokens::{
    assert_accepted, assert_refused, claims_of, encode_part, live_claims, sign_right,
};

/// A JWT with exactly `header`, the raw (already encoded) payload, and an HMAC-SHA-256
/// signature made with `secret`, whatever the header claims.
fn hmac_signed(header: &Value, payload: &str, secret: &[u8]) -> String {
    let signing_input = format!("{}.{payload}", encode_part(header));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

const ATTACKER_KEY: &[u8] = b"attacker-key-0123456789abcdef0123456789";

async fn tokens_claiming_another_algorithm_are_refused_even_with_the_right_hmac(backend: Backend) {
    let app = spawn_app_with(backend, legacy_hs256).await;
    let (tokens, claims) = live_claims(&app).await;
    let payload = encode_part(&claims);
    let secret = ACCESS_SECRET.as_bytes();

    // The control: the same construction with the real header is accepted.
    let control = hmac_signed(&json!({"alg": "HS256", "typ": "JWT"}), &payload, secret);
    assert_accepted(&app, &control, &tokens).await;

    for alg in [
        "RS256", "RS512", "ES256", "PS256", "EdDSA", "hs256", "HS256 ", "", "none", "HS1",
    ] {
        let forged = hmac_signed(&json!({"alg": alg, "typ": "JWT"}), &payload, secret);
        assert_refused(&app, &forged).await;
    }
    // An algorithm that is not a string at all.
    for alg in [json!(null), json!(256), json!(["HS256"])] {
        let forged = hmac_signed(&json!({"alg": alg}), &payload, secret);
        assert_refused(&app, &forged).await;
    }
    app.assert_still_healthy().await;
}

async fn key_injection_headers_cannot_choose_the_key(backend: Backend) {
    let app = spawn_app_with(backend, legacy_hs256).await;
    let (tokens, claims) = live_claims(&app).await;
    let payload = encode_part(&claims);

    // Headers that would fetch or embed a key: ignored (keys come only from our ring).
    let injected = [
        json!({"alg": "HS256", "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(ATTACKER_KEY)}}),
        json!({"alg": "HS256", "jku": "http://attacker.example/jwks.json"}),
        json!({"alg": "HS256", "x5u": "http://attacker.example/cert.pem"}),
    ];
    for header in &injected {
        // Signed with the attacker's key, or with nothing (an empty key).
        assert_refused(&app, &hmac_signed(header, &payload, ATTACKER_KEY)).await;
        assert_refused(&app, &hmac_signed(header, &payload, b"")).await;
        // The headers are ignored: with the real key the token is simply valid.
        assert_accepted(
            &app,
            &hmac_signed(header, &payload, ACCESS_SECRET.as_bytes()),
            &tokens,
        )
        .await;
    }
    // A `kid` is looked up among our keys only, as an exact string: one that names none
    // is refused whatever signs the token, the real secret included.
    let kids = [
        json!({"alg": "HS256", "kid": "../../../../dev/null"}),
        json!({"alg": "HS256", "kid": "' UNION SELECT 'attacker-key' --"}),
        json!({"alg": "HS256", "kid": "refresh"}),
    ];
    for header in &kids {
        assert_refused(&app, &hmac_signed(header, &payload, ATTACKER_KEY)).await;
        assert_refused(&app, &hmac_signed(header, &payload, b"")).await;
        assert_refused(
            &app,
            &hmac_signed(header, &payload, ACCESS_SECRET.as_bytes()),
        )
        .await;
    }
    app.assert_still_healthy().await;
}

async fn tokens_missing_a_subject_token_id_or_issue_time_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, claims) = live_claims(&app).await;

    for claim in ["sub", "jti", "iat"] {
        let mut forged = claims.clone();
        forged.as_object_mut().unwrap().remove(claim);
        assert_refused(&app, &sign_right(&app, &forged)).await;
    }
    // Only an empty object.
    assert_refused(&app, &sign_right(&app, &json!({}))).await;
    app.assert_still_healthy().await;
}

async fn claims_of_the_wrong_type_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, claims) = live_claims(&app).await;

    let mistyped = [
        ("sub", json!(12345)),
        ("sub", json!("not-a-uuid")),
        ("sub", json!(null)),
        ("sid", json!("' OR 1=1 --")),
        ("sid", json!({"$ne": null})),
        ("jti", json!(["x"])),
        ("exp", json!(claims["exp"].to_string())),
        ("exp", json!(1e300)),
        ("exp", json!(-1)),
        ("iat", json!("now")),
        ("iss", json!(["auth-server"])),
        ("aud", json!(["auth-server"])),
        ("typ", json!(["access"])),
        ("typ", json!("ACCESS")),
    ];
    for (claim, value) in mistyped {
        let mut forged = claims.clone();
        forged[claim] = value.clone();
        let r = app.me(Some(&sign_right(&app, &forged))).await;
        assert_eq!(r.code(), Some("UNAUTHENTICATED"), "{claim} = {value}");
    }
    app.assert_still_healthy().await;
}

async fn non_utf8_and_malformed_tokens_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, legacy_hs256).await;
    let (tokens, claims) = live_claims(&app).await;
    let secret = ACCESS_SECRET.as_bytes();
    let header = json!({"alg": "HS256", "typ": "JWT"});

    // A correctly signed token whose payload is not UTF-8 (or not JSON) after decoding.
    let mut not_utf8 = b"\xff\xfe".to_vec();
    not_utf8.extend(serde_json::to_vec(&claims).unwrap());
    for payload in [
        not_utf8,
        b"\xc3\x28".to_vec(),
        b"not json".to_vec(),
        Vec::new(),
    ] {
        let forged = hmac_signed(&header, &URL_SAFE_NO_PAD.encode(&payload), secret);
        assert_refused(&app, &forged).await;
    }
    // A header that is not UTF-8.
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(b"\xff{\"alg\":\"HS256\"}"),
        encode_part(&claims)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    assert_refused(&app, &format!("{signing_input}.{sig}")).await;

    // Wrong shapes of an otherwise valid token.
    let parts: Vec<&str> = tokens.access.split('.').collect();
    for shape in [
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[2]),
        format!("{}..{}", parts[0], parts[2]),
        "..".to_owned(),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        tokens.access.to_uppercase(),
    ] {
        assert_refused(&app, &shape).await;
    }

    // Raw bytes that are not UTF-8 in the Authorization header itself.
    let mut raw = b"Bearer ".to_vec();
    raw.extend_from_slice(tokens.access.as_bytes());
    raw.extend_from_slice(b"\xff\xfe");
    let r = app
        .send(
            app.client
                .post(app.url("/graphql"))
                .header(
                    "authorization",
                    HeaderValue::from_bytes(&raw).expect("opaque bytes"),
                )
                .json(&json!({"query": "{ me { id } }"})),
        )
        .await;
    r.expect_only_error("UNAUTHENTICATED");

    assert!(app.me_ok(&tokens.access).await);
    app.assert_still_healthy().await;
}

async fn tokens_confused_on_logout_are_refused_both_ways(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.register_ok("ada@example.com").await;

    // The access token as the refresh token, with no bearer.
    app.logout(None, Some(&tokens.access), false)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    app.logout(None, Some(&tokens.access), true)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    // The refresh token as the bearer, with no refresh token.
    app.logout(Some(&tokens.refresh), None, false)
        .await
        .expect_only_error("UNAUTHENTICATED");
    app.logout(Some(&tokens.refresh), None, true)
        .await
        .expect_only_error("UNAUTHENTICATED");

    // Nothing was logged out.
    assert!(app.me_ok(&tokens.access).await);
    app.refresh(&tokens.refresh).await.expect_success();
    app.assert_still_healthy().await;
}

async fn tokens_replayed_after_logout_revive_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.register_ok("ada@example.com").await;
    let other = Tokens::from_payload(
        app.login_email("ada@example.com", PASSWORD)
            .await
            .data("login"),
    );
    // Rotate once, then log the session out with the successor.
    let successor = Tokens::from_payload(app.refresh(&first.refresh).await.data("refreshToken"));
    app.logout(Some(&successor.access), None, false)
        .await
        .expect_success();

    // Inside the grace window the spent token would return its successor; not any more.
    app.refresh(&first.refresh)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    app.refresh(&successor.refresh)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    for access in [&first.access, &successor.access] {
        app.me(Some(access))
            .await
            .expect_only_error("UNAUTHENTICATED");
        app.logout(Some(access), None, false)
            .await
            .expect_only_error("UNAUTHENTICATED");
    }
    app.logout(None, Some(&successor.refresh), false)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    // A fresh token for the dead session, even signed with the real key, is refused.
    assert_refused(&app, &sign_right(&app, &claims_of(&successor))).await;

    // The other session lives until everything is logged out, then its tokens die too.
    assert!(app.me_ok(&other.access).await);
    app.logout(Some(&other.access), None, true)
        .await
        .expect_success();
    app.me(Some(&other.access))
        .await
        .expect_only_error("UNAUTHENTICATED");
    app.refresh(&other.refresh)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    app.assert_still_healthy().await;
}

async fn the_tokens_of_a_deleted_account_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let rotated = Tokens::from_payload(app.refresh(&ada.refresh).await.data("refreshToken"));
    let grace = app.register_ok("grace@example.com").await;

    // An operator deletes the account (there is no "disabled" state: deletion is how an
    // account is closed, and its sessions and refresh tokens go with it).
    let db = sea_orm::Database::connect(&app.database_url)
        .await
        .expect("connect");
    let id = uuid::Uuid::parse_str(&ada.user_id).expect("a UUID");
    let deleted = {
        use sea_orm::EntityTrait;
        auth_server::entity::user::Entity::delete_by_id(id)
            .exec(&db)
            .await
            .expect("delete")
    };
    assert_eq!(deleted.rows_affected, 1);
    db.close().await.ok();

    for refresh in [&ada.refresh, &rotated.refresh] {
        app.refresh(refresh)
            .await
            .expect_only_error("INVALID_REFRESH_TOKEN");
        app.logout(None, Some(refresh), true)
            .await
            .expect_only_error("INVALID_REFRESH_TOKEN");
    }
    for access in [&ada.access, &rotated.access] {
        app.me(Some(access))
            .await
            .expect_only_error("UNAUTHENTICATED");
        app.logout(Some(access), None, true)
            .await
            .expect_only_error("UNAUTHENTICATED");
    }
    assert_refused(&app, &sign_right(&app, &claims_of(&rotated))).await;
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");

    // The address is free again, for a new account that the old tokens cannot reach.
    let again = app.register_ok("ada@example.com").await;
    assert_ne!(again.user_id, ada.user_id);
    app.refresh(&rotated.refresh)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    assert!(app.me_ok(&grace.access).await, "another account was harmed");
    app.assert_still_healthy().await;
}

backend_tests!(
    tokens_claiming_another_algorithm_are_refused_even_with_the_right_hmac,
    key_injection_headers_cannot_choose_the_key,
    tokens_missing_a_subject_token_id_or_issue_time_are_refused,
    claims_of_the_wrong_type_are_refused,
    non_utf8_and_malformed_tokens_are_refused,
    tokens_confused_on_logout_are_refused_both_ways,
    tokens_replayed_after_logout_revive_nothing,
    the_tokens_of_a_deleted_account_are_refused,
);
