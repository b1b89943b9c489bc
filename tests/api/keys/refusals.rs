//! Tokens the server must refuse now that it signs with ES256 and names keys by `kid`: an
//! unknown kid, `alg: none`, HS256 keyed with the public key, a wrong issuer or audience,
//! another server's key (under its kid or relabelled with ours), a tampered signature.
//! Each starts from a control that the server accepts (the same claims, signed with our
//! key through the ring), and ends with the account's real token still working.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::Header;
use serde_json::{Value, json};
use sha2::Sha256;

use super::{jwks, kid_of};
use crate::backend_tests;
use crate::helpers::*;
use crate::tokens::{assert_accepted, assert_refused, claims_of, encode_part};

/// `claims` signed with the key `app` signs with now, under `header` (its own by default).
fn signed_by(app: &TestApp, header: Option<Header>, claims: &Value) -> String {
    let signer = app
        .auth
        .signing_keys()
        .signer(chrono::Utc::now())
        .expect("a key signs");
    let header = header.unwrap_or_else(|| signer.header.clone());
    jsonwebtoken::encode(&header, claims, &signer.encoding).expect("signs")
}

/// The kid `app` signs with now.
fn our_kid(app: &TestApp) -> String {
    app.auth
        .signing_keys()
        .signer(chrono::Utc::now())
        .expect("a key signs")
        .kid
        .clone()
}

/// A JWT with exactly `header`, `claims`, and an HMAC-SHA-256 keyed with `secret`.
fn hmac_signed(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", encode_part(header), encode_part(claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// An account, its tokens, and claims for its session that the server accepts when signed
/// with our key (checked).
async fn live(app: &TestApp) -> (Tokens, Value) {
    let tokens = app.register_ok("ada@example.com").await;
    let claims = claims_of(&tokens);
    assert_accepted(app, &signed_by(app, None, &claims), &tokens).await;
    (tokens, claims)
}

async fn a_token_naming_an_unknown_kid_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tokens, claims) = live(&app).await;
    let kid = our_kid(&app);

    // Signed by our own key: only the name of the key is wrong.
    let mut other_thumbprint = kid.clone();
    other_thumbprint.replace_range(0..1, if kid.starts_with('A') { "B" } else { "A" });
    for unknown in [
        other_thumbprint.as_str(),
        "unknown",
        "",
        "../../etc/passwd",
        &kid.to_lowercase(),
    ] {
        if unknown == kid {
            continue;
        }
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(unknown.to_owned());
        assert_refused(&app, &signed_by(&app, Some(header), &claims)).await;
    }
    // Or naming none at all.
    let unnamed = Header::new(jsonwebtoken::Algorithm::ES256);
    assert_refused(&app, &signed_by(&app, Some(unnamed), &claims)).await;

    assert_accepted(&app, &tokens.access, &tokens).await;
}

async fn a_token_with_alg_none_is_refused_with_or_without_our_kid(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tokens, claims) = live(&app).await;
    let kid = our_kid(&app);
    let payload = encode_part(&claims);
    // The real token's signature, to put after a `none` header too.
    let real_signature = tokens.access.rsplit('.').next().expect("a signature");

    for alg in ["none", "None", "NONE", "nOnE"] {
        for header in [
            json!({"alg": alg, "typ": "JWT"}),
            json!({"alg": alg, "typ": "JWT", "kid": kid}),
        ] {
            for signature in ["", real_signature] {
                let forged = format!("{}.{payload}.{signature}", encode_part(&header));
                assert_refused(&app, &forged).await;
            }
        }
    }

    assert_accepted(&app, &tokens.access, &tokens).await;
}

async fn hs256_signed_with_the_published_key_as_secret_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tokens, claims) = live(&app).await;
    let kid = our_kid(&app);

    // Every form of our public key an attacker could key an HMAC with.
    let document_text = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("the JWKS answers")
        .text()
        .await
        .expect("text");
    let document = jwks(&app).await;
    let jwk = &document["keys"][0];
    assert_eq!(jwk["kid"], kid.as_str());
    let x = jwk["x"].as_str().expect("x").to_owned();
    let y = jwk["y"].as_str().expect("y").to_owned();
    let x_bytes = URL_SAFE_NO_PAD.decode(&x).expect("x is base64url");
    let y_bytes = URL_SAFE_NO_PAD.decode(&y).expect("y is base64url");
    let mut point = vec![0x04];
    point.extend_from_slice(&x_bytes);
    point.extend_from_slice(&y_bytes);
    let public_pem = {
        use p256::pkcs8::EncodePublicKey;
        let key = p256::PublicKey::from_sec1_bytes(&point).expect("the JWK is a P-256 point");
        let der = key.to_public_key_der().expect("SPKI");
        super::pem("PUBLIC KEY", der.as_bytes())
    };
    let secrets: Vec<Vec<u8>> = vec![
        serde_json::to_vec(jwk).expect("JSON"),
        document_text.into_bytes(),
        x.clone().into_bytes(),
        x_bytes,
        point,
        public_pem.into_bytes(),
    ];

    for secret in &secrets {
        for header in [
            json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
            json!({"alg": "HS256", "typ": "JWT"}),
        ] {
            assert_refused(&app, &hmac_signed(&header, &claims, secret)).await;
        }
    }

    assert_accepted(&app, &tokens.access, &tokens).await;
}

async fn an_hs256_token_made_with_the_access_secret_is_refused_once_keys_are_asymmetric(
    backend: Backend,
) {
    // JWT_ACCESS_SECRET is still set (as before the upgrade), but signs nothing now.
    let app = spawn_app(backend).await;
    let (tokens, claims) = live(&app).await;
    let kid = our_kid(&app);
    let secret = ACCESS_SECRET.as_bytes();

    for header in [
        json!({"alg": "HS256", "typ": "JWT"}),
        json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
    ] {
        assert_refused(&app, &hmac_signed(&header, &claims, secret)).await;
    }

    assert_accepted(&app, &tokens.access, &tokens).await;
}

async fn a_token_with_a_wrong_issuer_is_refused_even_when_signed_by_our_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tokens, claims) = live(&app).await;

    for iss in [json!("someone-else"), json!("auth-server "), json!("")] {
        let mut forged = claims.clone();
        forged["iss"] = iss;
        assert_refused(&app, &signed_by(&app, None, &forged)).await;
    }
    let mut missing = claims.clone();
    missing.as_object_mut().unwrap().remove("iss");
    assert_refused(&app, &signed_by(&app, None, &missing)).await;

    assert_accepted(&app, &tokens.access, &tokens).await;
}

async fn a_token_with_a_wrong_audience_is_refused_even_when_signed_by_our_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tokens, claims) = live(&app).await;

    for aud in [
        json!("another-api"),
        json!(["another-api"]),
        json!("Auth-Server"),
        json!(""),
    ] {
        let mut forged = claims.clone();
        forged["aud"] = aud;
        assert_refused(&app, &signed_by(&app, None, &forged)).await;
    }
    let mut missing = claims.clone();
    missing.as_object_mut().unwrap().remove("aud");
    assert_refused(&app, &signed_by(&app, None, &missing)).await;

    assert_accepted(&app, &tokens.access, &tokens).await;
}

async fn a_token_signed_by_another_servers_key_is_refused_under_its_kid_and_under_ours(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    // Another deployment of the same server, on its own database, with its own key.
    let other = spawn_app(backend).await;
    let (tokens, claims) = live(&app).await;
    let kid = our_kid(&app);
    let theirs = other
        .auth
        .signing_keys()
        .signer(chrono::Utc::now())
        .expect("the other server signs");
    assert_ne!(theirs.kid, kid, "two servers made the same key");
    assert!(!super::kids(&jwks(&app).await).contains(&theirs.kid));

    // Our account's claims, signed by the other server's key: under its kid...
    let under_its_kid =
        jsonwebtoken::encode(&theirs.header, &claims, &theirs.encoding).expect("signs");
    assert_eq!(kid_of(&under_its_kid), theirs.kid);
    assert_refused(&app, &under_its_kid).await;
    // ...and relabelled with ours.
    let mut relabelled = theirs.header.clone();
    relabelled.kid = Some(kid.clone());
    let under_our_kid =
        jsonwebtoken::encode(&relabelled, &claims, &theirs.encoding).expect("signs");
    assert_refused(&app, &under_our_kid).await;
    // The other server's own token, good there, is refused here.
    let foreign = other.register_ok("ada@example.com").await;
    assert!(other.me_ok(&foreign.access).await);
    assert_refused(&app, &foreign.access).await;

    assert_accepted(&app, &tokens.access, &tokens).await;
}

async fn a_token_with_a_tampered_signature_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (tokens, _) = live(&app).await;
    // Verified once, so the server remembers this exact token.
    assert_accepted(&app, &tokens.access, &tokens).await;

    let (input, signature) = tokens.access.rsplit_once('.').expect("three parts");
    let mut flipped = signature.to_owned().into_bytes();
    // A character in the middle changes the decoded bytes (the last may only pad).
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ASCII");
    assert_refused(&app, &format!("{input}.{flipped}")).await;
    // The signature of another token of ours, of another session.
    let second = app.register_ok("grace@example.com").await;
    let other_signature = second.access.rsplit('.').next().expect("a signature");
    assert_refused(&app, &format!("{input}.{other_signature}")).await;
    // A truncated signature, and none.
    assert_refused(
        &app,
        &format!("{input}.{}", &signature[..signature.len() - 4]),
    )
    .await;
    assert_refused(&app, &format!("{input}.")).await;

    assert_accepted(&app, &tokens.access, &tokens).await;
    assert_accepted(&app, &second.access, &second).await;
}

backend_tests!(
    a_token_naming_an_unknown_kid_is_refused,
    a_token_with_alg_none_is_refused_with_or_without_our_kid,
    hs256_signed_with_the_published_key_as_secret_is_refused,
    an_hs256_token_made_with_the_access_secret_is_refused_once_keys_are_asymmetric,
    a_token_with_a_wrong_issuer_is_refused_even_when_signed_by_our_key,
    a_token_with_a_wrong_audience_is_refused_even_when_signed_by_our_key,
    a_token_signed_by_another_servers_key_is_refused_under_its_kid_and_under_ours,
    a_token_with_a_tampered_signature_is_refused,
);
