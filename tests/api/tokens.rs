//! Forged and invalid access tokens against `me`. Every forgery starts from claims that
//! work when signed properly (the control in each test), then changes one thing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;

/// The decoded JSON of one part (0 = header, 1 = payload) of a JWT.
pub(crate) fn part_of(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("a JWT has three parts");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

pub(crate) fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("serialises"))
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims as the server mints them for the session of `tokens`, freshly dated.
pub(crate) fn claims_of(tokens: &Tokens) -> Value {
    let real = part_of(&tokens.access, 1);
    let iat = now();
    json!({
        "sub": real["sub"],
        "sid": real["sid"],
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": iat,
        "exp": iat + 600,
        "iss": "auth-server",
        "aud": "auth-server",
        "typ": "access",
    })
}

pub(crate) fn sign(alg: Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signs")
}

/// Signed as `app` signs: with its current signing key, named in `kid`.
pub(crate) fn sign_right(app: &TestApp, claims: &Value) -> String {
    let signer = app
        .auth
        .signing_keys()
        .signer(chrono::Utc::now())
        .expect("the server has a signing key");
    jsonwebtoken::encode(&signer.header, claims, &signer.encoding).expect("signs")
}

/// Registers an account and returns its tokens and claims that work when signed right.
pub(crate) async fn live_claims(app: &TestApp) -> (Tokens, Value) {
    let tokens = app.register_ok("ada@example.com").await;
    let claims = claims_of(&tokens);
    assert_accepted(app, &sign_right(app, &claims), &tokens).await;
    (tokens, claims)
}

pub(crate) async fn assert_accepted(app: &TestApp, token: &str, tokens: &Tokens) {
    let r = app.me(Some(token)).await;
    r.expect_success();
    assert_eq!(r.data("me")["id"].as_str(), Some(tokens.user_id.as_str()));
}

pub(crate) async fn assert_refused(app: &TestApp, token: &str) {
    let r = app.me(Some(token)).await;
    let error = r.expect_only_error("UNAUTHENTICATED");
    assert_eq!(error["path"], json!(["me"]));
}

async fn a_token_forged_with_the_right_key_and_a_live_session_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.register_ok("ada@example.com").await;

    let forged = sign_right(&app, &claims_of(&tokens));

    assert_accepted(&app, &forged, &tokens).await;
}

async fn an_issued_access_token_carries_the_contract_claims(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = now();
    let tokens = app.register_ok("ada@example.com").await;

    let header = part_of(&tokens.access, 0);
    let claims = part_of(&tokens.access, 1);

    assert_eq!(header["alg"], "ES256");
    assert!(
        header["kid"].as_str().is_some_and(|k| k.len() == 43),
        "a kid (an RFC 7638 thumbprint) in {header}"
    );
    assert_eq!(claims["sub"].as_str(), Some(tokens.user_id.as_str()));
    uuid::Uuid::parse_str(claims["sid"].as_str().expect("sid")).expect("sid is a UUID");
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "jti in {claims}"
    );
    let iat = claims["iat"].as_i64().expect("iat");
    assert!((before - 5..=now() + 5).contains(&iat), "iat {iat}");
    assert_eq!(claims["exp"].as_i64(), Some(iat + 900));
    assert_eq!(claims["iss"], "auth-server");
    assert_eq!(claims["aud"], "auth-server");
    assert_eq!(claims["typ"], "access");
}

async fn an_issued_access_token_stops_working_once_it_expires(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |s| {
        s.tokens.access_ttl = std::time::Duration::from_secs(1);
    })
    .await;
    let r = app.register("ada@example.com", PASSWORD, None).await;
    assert_eq!(r.data("register")["expiresIn"], 1);
    let tokens = Tokens::from_payload(r.data("register"));
    assert!(app.me_ok(&tokens.access).await);

    // The lifetime plus a few seconds of clock-skew leeway.
    clock.advance(std::time::Duration::from_secs(8));

    assert_refused(&app, &tokens.access).await;
}

async fn an_unsigned_token_with_alg_none_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, claims) = live_claims(&app).await;
    let payload = encode_part(&claims);

    for alg in ["none", "None", "NONE"] {
        let header = encode_part(&json!({"alg": alg, "typ": "JWT"}));
        assert_refused(&app, &format!("{header}.{payload}.")).await;
    }
}

async fn a_token_signed_with_another_key_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, claims) = live_claims(&app).await;

    let forged = sign(
        Algorithm::HS256,
        "another-secret-0123456789abcdef0123456789abcdef",
        &claims,
    );

    assert_refused(&app, &forged).await;
    // The refresh secret is another key too.
    assert_refused(&app, &sign(Algorithm::HS256, REFRESH_SECRET, &claims)).await;
}

/// With the legacy HS256 secret, the algorithm is still pinned.
async fn a_token_signed_with_hs512_and_the_right_key_is_refused(backend: Backend) {
    let app = spawn_app_with(backend, legacy_hs256).await;
    let (_, claims) = live_claims(&app).await;

    let forged = sign(Algorithm::HS512, ACCESS_SECRET, &claims);

    assert_refused(&app, &forged).await;
}

/// With the legacy HS256 secret, the algorithm is still pinned.
async fn a_token_signed_with_hs384_and_the_right_key_is_refused(backend: Backend) {
    let app = spawn_app_with(backend, legacy_hs256).await;
    let (_, claims) = live_claims(&app).await;

    let forged = sign(Algorithm::HS384, ACCESS_SECRET, &claims);

    assert_refused(&app, &forged).await;
}

async fn an_expired_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, mut claims) = live_claims(&app).await;

    claims["iat"] = json!(now() - 7200);
    claims["exp"] = json!(now() - 3600);

    assert_refused(&app, &sign_right(&app, &claims)).await;
}

async fn a_token_without_an_expiry_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, mut claims) = live_claims(&app).await;

    claims.as_object_mut().unwrap().remove("exp");

    assert_refused(&app, &sign_right(&app, &claims)).await;
}

async fn a_token_not_valid_before_a_future_time_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, mut claims) = live_claims(&app).await;

    claims["nbf"] = json!(now() + 3600);

    assert_refused(&app, &sign_right(&app, &claims)).await;
}

async fn a_token_from_another_issuer_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, mut claims) = live_claims(&app).await;

    claims["iss"] = json!("someone-else");

    assert_refused(&app, &sign_right(&app, &claims)).await;
    claims.as_object_mut().unwrap().remove("iss");
    assert_refused(&app, &sign_right(&app, &claims)).await;
}

async fn a_token_for_another_audience_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, mut claims) = live_claims(&app).await;

    claims["aud"] = json!("someone-else");

    assert_refused(&app, &sign_right(&app, &claims)).await;
    claims.as_object_mut().unwrap().remove("aud");
    assert_refused(&app, &sign_right(&app, &claims)).await;
}

async fn a_token_without_a_session_id_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, mut claims) = live_claims(&app).await;

    claims.as_object_mut().unwrap().remove("sid");

    assert_refused(&app, &sign_right(&app, &claims)).await;
}

async fn a_token_without_a_type_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, mut claims) = live_claims(&app).await;

    claims.as_object_mut().unwrap().remove("typ");

    assert_refused(&app, &sign_right(&app, &claims)).await;
}

async fn a_token_typed_refresh_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, mut claims) = live_claims(&app).await;

    claims["typ"] = json!("refresh");

    assert_refused(&app, &sign_right(&app, &claims)).await;
}

async fn a_token_with_a_tampered_payload_and_the_original_signature_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tokens, _) = live_claims(&app).await;
    let parts: Vec<&str> = tokens.access.split('.').collect();
    let mut claims = part_of(&tokens.access, 1);

    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 365 * 24 * 3600);
    let tampered = format!("{}.{}.{}", parts[0], encode_part(&claims), parts[2]);

    assert_refused(&app, &tampered).await;
    assert!(app.me_ok(&tokens.access).await, "the original still works");
}

async fn a_refresh_token_presented_as_a_bearer_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tokens, _) = live_claims(&app).await;

    assert_refused(&app, &tokens.refresh).await;
    // Still a live refresh token: refusing it as a bearer did not depend on it being dead.
    app.refresh(&tokens.refresh).await.expect_success();
}

async fn a_token_longer_than_ten_kilobytes_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, mut claims) = live_claims(&app).await;

    claims["pad"] = json!("x".repeat(10 * 1024));
    let long = sign_right(&app, &claims);
    assert!(long.len() > 10 * 1024);

    assert_refused(&app, &long).await;
    assert_refused(&app, &"a".repeat(16 * 1024)).await;
}

async fn a_token_for_a_session_that_does_not_exist_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, mut claims) = live_claims(&app).await;

    claims["sid"] = json!(uuid::Uuid::new_v4().to_string());

    assert_refused(&app, &sign_right(&app, &claims)).await;
}

async fn a_token_whose_subject_is_not_the_sessions_user_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, mut claims) = live_claims(&app).await;
    let grace = app.register_ok("grace@example.com").await;
    assert!(app.me_ok(&grace.access).await);

    claims["sub"] = json!(grace.user_id);
    assert_refused(&app, &sign_right(&app, &claims)).await;
    claims["sub"] = json!(uuid::Uuid::new_v4().to_string());
    assert_refused(&app, &sign_right(&app, &claims)).await;
}

backend_tests!(
    a_token_forged_with_the_right_key_and_a_live_session_is_accepted,
    an_issued_access_token_carries_the_contract_claims,
    an_issued_access_token_stops_working_once_it_expires,
    an_unsigned_token_with_alg_none_is_refused,
    a_token_signed_with_another_key_is_refused,
    a_token_signed_with_hs512_and_the_right_key_is_refused,
    a_token_signed_with_hs384_and_the_right_key_is_refused,
    an_expired_token_is_refused,
    a_token_without_an_expiry_is_refused,
    a_token_not_valid_before_a_future_time_is_refused,
    a_token_from_another_issuer_is_refused,
    a_token_for_another_audience_is_refused,
    a_token_without_a_session_id_is_refused,
    a_token_without_a_type_is_refused,
    a_token_typed_refresh_is_refused,
    a_token_with_a_tampered_payload_and_the_original_signature_is_refused,
    a_refresh_token_presented_as_a_bearer_token_is_refused,
    a_token_longer_than_ten_kilobytes_is_refused,
    a_token_for_a_session_that_does_not_exist_is_refused,
    a_token_whose_subject_is_not_the_sessions_user_is_refused,
);
