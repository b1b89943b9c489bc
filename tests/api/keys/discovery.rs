//! `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`: what they
//! publish, how long they may be cached, and that the tokens the server issues verify from
//! the outside against them, for each algorithm `JWT_ALGORITHM` offers.

use std::time::Duration;

use auth_server::auth::tokens::signing::SigningAlgorithm;
use auth_server::config::KeySource;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{PRIVATE_PARAMETERS, jwks, kid_of, kids, stored_keys_of, verify_outside};
use crate::backend_tests;
use crate::helpers::*;
use crate::tokens::part_of;

/// A base64url member of a JWK, decoded.
fn decoded(key: &Value, member: &str) -> Vec<u8> {
    let raw = key[member]
        .as_str()
        .unwrap_or_else(|| panic!("no {member} in {key}"));
    URL_SAFE_NO_PAD
        .decode(raw)
        .unwrap_or_else(|e| panic!("{member} of {key} is not base64url: {e}"))
}

/// Asserts `key` is a public signing JWK with exactly `members` (besides `kid`, `alg` and
/// `use`), of type `kty` for `alg`, and no private parameter.
fn assert_public_jwk(key: &Value, kty: &str, alg: &str, members: &[&str]) {
    assert_eq!(key["kty"], kty, "{key}");
    assert_eq!(key["alg"], alg, "{key}");
    assert_eq!(key["use"], "sig", "{key}");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()), "{key}");
    for private in PRIVATE_PARAMETERS {
        assert!(
            key.get(private).is_none(),
            "the JWKS publishes the private parameter {private:?}: {key}"
        );
    }
    let mut expected: Vec<&str> = members.to_vec();
    expected.extend(["kty", "kid", "alg", "use"]);
    expected.sort_unstable();
    let mut actual: Vec<&str> = key
        .as_object()
        .expect("a JWK is an object")
        .keys()
        .map(String::as_str)
        .collect();
    actual.sort_unstable();
    assert_eq!(actual, expected, "the members of {key}");
}

/// The RFC 7638 SHA-256 thumbprint of a JWK, from its required members (`required`, in
/// lexicographic order as the RFC asks).
fn thumbprint(key: &Value, required: &[&str]) -> String {
    let members: Vec<String> = required
        .iter()
        .map(|m| {
            let value = key[*m]
                .as_str()
                .unwrap_or_else(|| panic!("no {m} in {key}"));
            format!("\"{m}\":\"{value}\"")
        })
        .collect();
    let canonical = format!("{{{}}}", members.join(","));
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// `GET path` on `app` with an optional `Host` header: status, `Cache-Control`, body.
async fn get(app: &TestApp, path: &str, host: Option<&str>) -> (StatusCode, Option<String>, Value) {
    let mut request = app.client.get(app.url(path));
    if let Some(host) = host {
        request = request.header("host", host);
    }
    let r = app.send(request).await;
    let cache_control = r
        .headers
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (r.status, cache_control, r.body)
}

async fn the_jwks_publishes_the_signing_key_as_a_public_p256_jwk(backend: Backend) {
    let app = spawn_app(backend).await;

    let resp = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("the JWKS answers");
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(
        resp.headers()["cache-control"],
        "public, max-age=300",
        "JWKS_MAX_AGE defaults to 5 minutes"
    );
    let document: Value = resp.json().await.expect("JSON");

    let keys = document["keys"].as_array().expect("a keys array");
    assert_eq!(keys.len(), 1, "{document}");
    let key = &keys[0];
    assert_public_jwk(key, "EC", "ES256", &["crv", "x", "y"]);
    assert_eq!(key["crv"], "P-256");
    assert_eq!(decoded(key, "x").len(), 32, "x of a P-256 point");
    assert_eq!(decoded(key, "y").len(), 32, "y of a P-256 point");
    // The kid is the key's RFC 7638 thumbprint, computed here from the published members.
    assert_eq!(key["kid"], thumbprint(key, &["crv", "kty", "x", "y"]));
    // And it is the key that signs.
    let signer = app
        .auth
        .signing_keys()
        .signer(chrono::Utc::now())
        .expect("a key signs");
    assert_eq!(key["kid"], signer.kid.as_str());
}

async fn the_jwks_and_discovery_may_be_cached_for_jwks_max_age(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.tokens.jwks_max_age = Duration::from_secs(42)).await;
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
    ] {
        let (status, cache_control, body) = get(&app, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(
            cache_control.as_deref(),
            Some("public, max-age=42"),
            "{path}"
        );
    }
}

async fn tokens_from_register_and_login_are_es256_and_verify_against_the_published_jwk(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let registered = app.register_ok("ada@example.com").await;
    let logged_in = Tokens::from_payload(
        app.login_email("ada@example.com", PASSWORD)
            .await
            .data("login"),
    );
    let document = jwks(&app).await;
    let published = kids(&document);

    for tokens in [&registered, &logged_in] {
        let header = part_of(&tokens.access, 0);
        assert_eq!(header["alg"], "ES256", "{header}");
        assert_eq!(header["typ"], "JWT", "{header}");
        assert!(
            published.contains(&kid_of(&tokens.access)),
            "kid {header} is not in the JWKS {document}"
        );
        let claims = verify_outside(&document, &tokens.access, Algorithm::ES256);
        assert_eq!(claims["sub"], tokens.user_id.as_str());
        assert_eq!(claims["typ"], "access");
        assert!(app.me_ok(&tokens.access).await);
    }
    // Two sessions, two tokens: each verified on its own signature.
    assert_ne!(registered.access, logged_in.access);
}

async fn discovery_names_the_issuer_the_jwks_uri_from_public_url_and_the_algorithms(
    backend: Backend,
) {
    for public_url in [
        "https://auth.example.test/base",
        "https://auth.example.test/base/",
    ] {
        let app = spawn_app_with(backend, |s| {
            s.tokens.public_url = Some(url::Url::parse(public_url).expect("a URL"));
        })
        .await;
        let (status, cache_control, document) =
            get(&app, "/.well-known/openid-configuration", None).await;
        assert_eq!(status, StatusCode::OK, "{document}");
        assert_eq!(cache_control.as_deref(), Some("public, max-age=300"));
        assert_eq!(document["issuer"], "auth-server", "{document}");
        assert_eq!(
            document["jwks_uri"], "https://auth.example.test/base/.well-known/jwks.json",
            "PUBLIC_URL {public_url}"
        );
        assert_eq!(
            document["id_token_signing_alg_values_supported"],
            json!(["ES256"])
        );
        // PUBLIC_URL wins over whatever Host the request came with.
        let (_, _, via_other_host) = get(
            &app,
            "/.well-known/openid-configuration",
            Some("elsewhere.test"),
        )
        .await;
        assert_eq!(via_other_host["jwks_uri"], document["jwks_uri"]);
    }
}

async fn without_public_url_the_jwks_uri_is_built_from_the_host_header(backend: Backend) {
    let app = spawn_app(backend).await;

    let (status, _, document) = get(&app, "/.well-known/openid-configuration", None).await;
    assert_eq!(status, StatusCode::OK, "{document}");
    let jwks_uri = format!("http://127.0.0.1:{}/.well-known/jwks.json", app.port);
    assert_eq!(document["jwks_uri"], jwks_uri.as_str());
    // A verifier following discovery gets the JWKS.
    let followed: Value = app
        .client
        .get(&jwks_uri)
        .send()
        .await
        .expect("jwks_uri answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(followed, jwks(&app).await);

    let (_, _, proxied) = get(
        &app,
        "/.well-known/openid-configuration",
        Some("auth.internal:8443"),
    )
    .await;
    assert_eq!(
        proxied["jwks_uri"],
        "http://auth.internal:8443/.well-known/jwks.json"
    );

    // A Host that is not a host name cannot be spliced into the URL.
    let (status, _, _) = get(
        &app,
        "/.well-known/openid-configuration",
        Some("evil.test/x?y=1"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn an_http_issuer_is_the_base_of_the_jwks_uri_when_public_url_is_unset(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.tokens.issuer = "https://issuer.example.test".to_owned();
    })
    .await;
    let (status, _, document) = get(&app, "/.well-known/openid-configuration", None).await;
    assert_eq!(status, StatusCode::OK, "{document}");
    assert_eq!(document["issuer"], "https://issuer.example.test");
    assert_eq!(
        document["jwks_uri"],
        "https://issuer.example.test/.well-known/jwks.json"
    );
    // The tokens carry that issuer.
    let tokens = app.register_ok("ada@example.com").await;
    assert_eq!(
        part_of(&tokens.access, 1)["iss"],
        "https://issuer.example.test"
    );
    assert!(app.me_ok(&tokens.access).await);
}

/// Registers, passes `me`, and checks the token's header and its verification from the
/// outside with `algorithm`; returns the one published key.
async fn issues_verifiable_tokens(app: &TestApp, algorithm: Algorithm, name: &str) -> Value {
    let document = jwks(app).await;
    let keys = document["keys"].as_array().expect("a keys array");
    assert_eq!(keys.len(), 1, "{document}");
    let tokens = app.register_ok("ada@example.com").await;
    let header = part_of(&tokens.access, 0);
    assert_eq!(header["alg"], name, "{header}");
    assert_eq!(kid_of(&tokens.access), keys[0]["kid"].as_str().unwrap());
    assert!(app.me_ok(&tokens.access).await, "`me` refuses {name}");
    let claims = verify_outside(&document, &tokens.access, algorithm);
    assert_eq!(claims["sub"], tokens.user_id.as_str());
    let (_, _, discovery) = get(app, "/.well-known/openid-configuration", None).await;
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!([name])
    );
    keys[0].clone()
}

async fn eddsa_keys_sign_tokens_that_verify_end_to_end(backend: Backend) {
    let app = spawn_app_with(backend, stored_keys_of(SigningAlgorithm::EdDsa)).await;
    let key = issues_verifiable_tokens(&app, Algorithm::EdDSA, "EdDSA").await;
    assert_public_jwk(&key, "OKP", "EdDSA", &["crv", "x"]);
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(decoded(&key, "x").len(), 32, "an Ed25519 public key");
    assert_eq!(key["kid"], thumbprint(&key, &["crv", "kty", "x"]));
}

async fn rs256_keys_sign_tokens_that_verify_end_to_end(backend: Backend) {
    let app = spawn_app_with(backend, stored_keys_of(SigningAlgorithm::Rs256)).await;
    let key = issues_verifiable_tokens(&app, Algorithm::RS256, "RS256").await;
    assert_public_jwk(&key, "RSA", "RS256", &["n", "e"]);
    assert_eq!(decoded(&key, "n").len(), 256, "a 2048-bit modulus");
    assert_eq!(key["e"], "AQAB");
    assert_eq!(key["kid"], thumbprint(&key, &["e", "kty", "n"]));
}

async fn hs256_mode_publishes_no_keys_and_its_tokens_still_work(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.tokens.algorithm = SigningAlgorithm::Hs256;
        s.tokens.key_source = KeySource::Secret;
    })
    .await;
    let (status, cache_control, document) = get(&app, "/.well-known/jwks.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        document,
        json!({"keys": []}),
        "the secret is never published"
    );
    assert_eq!(cache_control.as_deref(), Some("public, max-age=300"));

    let tokens = app.register_ok("ada@example.com").await;
    assert_eq!(part_of(&tokens.access, 0)["alg"], "HS256");
    assert!(app.me_ok(&tokens.access).await);
    // A legacy verifier holding JWT_ACCESS_SECRET still verifies it.
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.set_audience(&["auth-server"]);
    let claims = jsonwebtoken::decode::<Value>(
        &tokens.access,
        &jsonwebtoken::DecodingKey::from_secret(ACCESS_SECRET.as_bytes()),
        &validation,
    )
    .expect("HS256 with the access secret")
    .claims;
    assert_eq!(claims["sub"], tokens.user_id.as_str());
    // A token minted before kids existed (none in its header) still verifies.
    let legacy = crate::tokens::sign(
        Algorithm::HS256,
        ACCESS_SECRET,
        &crate::tokens::claims_of(&tokens),
    );
    assert_eq!(part_of(&legacy, 0).get("kid"), None);
    assert!(app.me_ok(&legacy).await, "a legacy HS256 token without kid");
}

backend_tests!(
    the_jwks_publishes_the_signing_key_as_a_public_p256_jwk,
    the_jwks_and_discovery_may_be_cached_for_jwks_max_age,
    tokens_from_register_and_login_are_es256_and_verify_against_the_published_jwk,
    discovery_names_the_issuer_the_jwks_uri_from_public_url_and_the_algorithms,
    without_public_url_the_jwks_uri_is_built_from_the_host_header,
    an_http_issuer_is_the_base_of_the_jwks_uri_when_public_url_is_unset,
    eddsa_keys_sign_tokens_that_verify_end_to_end,
    rs256_keys_sign_tokens_that_verify_end_to_end,
    hs256_mode_publishes_no_keys_and_its_tokens_still_work,
);
