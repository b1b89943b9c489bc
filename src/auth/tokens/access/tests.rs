//! Each test keeps its own arrange-act-assert lines, even where two read alike: each states
//! one rule and reads alone.

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use secrecy::ExposeSecret;

use super::*;
use crate::config::Settings;

fn keys() -> AccessKeys {
    keys_of(&Settings::defaults().tokens)
}

fn keys_of(settings: &TokenSettings) -> AccessKeys {
    let ring = KeyRing::new(settings, settings.token_lifetime());
    AccessKeys::new(settings, Arc::new(ring))
}

#[test]
fn an_access_token_round_trips() {
    let keys = keys();
    let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
    let token = keys.mint(user, session, Utc::now()).unwrap();
    let claims = keys.verify(&token, Utc::now()).unwrap();
    assert_eq!((claims.sub, claims.sid), (user, session));
    assert_eq!(claims.typ, "access");
    assert_eq!(claims.exp - claims.iat, 15 * 60);
}

#[test]
fn an_expired_access_token_is_refused() {
    let keys = keys();
    let an_hour_ago = Utc::now() - Duration::from_secs(3600);
    let token = keys
        .mint(Uuid::new_v4(), Uuid::new_v4(), an_hour_ago)
        .unwrap();
    assert!(keys.verify(&token, Utc::now()).is_err());
}

/// A token decoded afresh is judged by the time passed in, with the same leeway as a
/// remembered one, and with jsonwebtoken's own error.
#[test]
fn expiry_is_judged_at_the_time_given() {
    let keys = keys();
    let issued = Utc::now() - Duration::from_secs(3600);
    let token = keys.mint(Uuid::new_v4(), Uuid::new_v4(), issued).unwrap();
    let exp = issued + Duration::from_secs(15 * 60);
    let just_valid = exp + Duration::from_secs(LEEWAY_SECS);
    assert!(
        keys.verify(&token, just_valid).is_ok(),
        "valid by the clock given"
    );
    keys.verified().clear();
    let error = keys
        .verify(&token, just_valid + Duration::from_secs(1))
        .unwrap_err();
    assert!(
        matches!(&error, AccessTokenError::Invalid(e) if *e.kind() == ErrorKind::ExpiredSignature),
        "{error:?}"
    );
}

#[test]
fn a_remembered_token_is_refused_once_it_expires() {
    let keys = keys();
    let token = keys
        .mint(Uuid::new_v4(), Uuid::new_v4(), Utc::now())
        .unwrap();
    let claims = keys.verify(&token, Utc::now()).unwrap();
    assert_eq!(keys.verified().len(), 1, "remembered after verifying");
    let just_valid = DateTime::from_timestamp(claims.exp + LEEWAY_SECS as i64, 0).unwrap();
    assert_eq!(keys.verify(&token, just_valid).unwrap(), claims);
    assert!(matches!(
        keys.verify(&token, just_valid + Duration::from_secs(1)),
        Err(AccessTokenError::Expired)
    ));
    assert_eq!(keys.verified().len(), 0, "forgotten once expired");
    // A token that differs in one character is not the remembered one.
    let mut forged = token.clone().into_bytes();
    let i = forged.len() - 10; // inside the signature, a character of 6 full bits
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    keys.verify(&token, Utc::now()).unwrap();
    assert!(keys.verify(&forged, Utc::now()).is_err());
}

#[test]
fn a_token_signed_with_another_key_is_refused() {
    let other = keys();
    let token = other
        .mint(Uuid::new_v4(), Uuid::new_v4(), Utc::now())
        .unwrap();
    assert!(keys().verify(&token, Utc::now()).is_err());
}

/// Valid claims for `settings`, with the given type marker.
fn claims(settings: &TokenSettings, typ: &str) -> AccessClaims {
    let now = Utc::now().timestamp();
    AccessClaims {
        sub: Uuid::new_v4(),
        sid: Uuid::new_v4(),
        jti: Uuid::new_v4(),
        iat: now,
        exp: now + 60,
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        typ: typ.into(),
        amr: vec!["pwd".into()],
    }
}

/// Settings of `algorithm` (development: a key made for the process, or the secret).
fn settings_of(algorithm: &str) -> TokenSettings {
    Settings::from_lookup(|k| (k == "JWT_ALGORITHM").then(|| algorithm.to_owned()))
        .unwrap()
        .tokens
}

/// `claims` signed by the ring's current key, with its header.
fn signed(keys: &AccessKeys, claims: &AccessClaims) -> String {
    let signer = keys.ring().signer(Utc::now()).unwrap();
    jsonwebtoken::encode(&signer.header, claims, &signer.encoding).unwrap()
}

/// A token of `header` (JSON) and `claims`, signed with HMAC-SHA-256 under `secret`.
fn hmac_token(header: &str, claims: &AccessClaims, secret: &[u8]) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!(
        "{}.{}",
        b64.encode(header),
        b64.encode(serde_json::to_vec(claims).unwrap())
    );
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64.encode(mac.finalize().into_bytes()))
}

#[test]
fn a_token_without_the_access_type_is_refused() {
    let settings = Settings::defaults().tokens;
    let keys = keys_of(&settings);
    let mut claims = claims(&settings, "refresh");
    let token = signed(&keys, &claims);
    assert!(matches!(
        keys.verify(&token, Utc::now()),
        Err(AccessTokenError::WrongType)
    ));
    claims.typ = "access".into();
    assert!(keys.verify(&signed(&keys, &claims), Utc::now()).is_ok());
    claims.aud = "someone-else".into();
    assert!(keys.verify(&signed(&keys, &claims), Utc::now()).is_err());
    claims.aud = settings.audience.clone();
    claims.iss = "another-issuer".into();
    assert!(keys.verify(&signed(&keys, &claims), Utc::now()).is_err());
}

#[test]
fn every_algorithm_signs_with_a_kid_and_verifies() {
    for (name, alg) in [
        ("ES256", Algorithm::ES256),
        ("EdDSA", Algorithm::EdDSA),
        ("RS256", Algorithm::RS256),
        ("HS256", Algorithm::HS256),
    ] {
        let keys = keys_of(&settings_of(name));
        let token = keys
            .mint(Uuid::new_v4(), Uuid::new_v4(), Utc::now())
            .unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, alg, "{name}");
        assert!(header.kid.is_some_and(|k| !k.is_empty()), "{name}");
        assert!(keys.verify(&token, Utc::now()).is_ok(), "{name}");
        let published = keys.ring().jwks(Utc::now())["keys"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(published, usize::from(alg != Algorithm::HS256), "{name}");
    }
}

#[test]
fn hs256_with_the_public_key_as_its_secret_is_refused() {
    let settings = Settings::defaults().tokens;
    let keys = keys_of(&settings);
    let jwks = keys.ring().jwks(Utc::now());
    let jwk = &jwks["keys"][0];
    let kid = jwk["kid"].as_str().unwrap();
    let claims = claims(&settings, "access");
    let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#);
    // Whatever form of the public key a confused verifier would use as the HMAC secret.
    for secret in [
        jwk.to_string(),
        jwks.to_string(),
        jwk["x"].as_str().unwrap().to_owned(),
    ] {
        let token = hmac_token(&header, &claims, secret.as_bytes());
        assert!(
            matches!(
                keys.verify(&token, Utc::now()),
                Err(AccessTokenError::WrongAlgorithm)
            ),
            "{secret}"
        );
    }
}

#[test]
fn alg_none_an_unknown_kid_and_a_missing_kid_are_refused() {
    use base64::Engine;
    let settings = Settings::defaults().tokens;
    let keys = keys_of(&settings);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = claims(&settings, "access");
    let body = b64.encode(serde_json::to_vec(&claims).unwrap());
    let kid = keys.ring().signer(Utc::now()).unwrap().kid.clone();
    for header in [
        format!(r#"{{"alg":"none","kid":"{kid}"}}"#),
        r#"{"alg":"none"}"#.to_owned(),
    ] {
        let token = format!("{}.{body}.", b64.encode(header));
        assert!(keys.verify(&token, Utc::now()).is_err());
    }
    // A real signature by our key, under a kid nobody published.
    let signer = keys.ring().signer(Utc::now()).unwrap();
    let mut header = signer.header.clone();
    header.kid = Some("not-a-key-of-ours".into());
    let token = jsonwebtoken::encode(&header, &claims, &signer.encoding).unwrap();
    assert!(matches!(
        keys.verify(&token, Utc::now()),
        Err(AccessTokenError::UnknownKey)
    ));
    header.kid = None;
    let token = jsonwebtoken::encode(&header, &claims, &signer.encoding).unwrap();
    assert!(matches!(
        keys.verify(&token, Utc::now()),
        Err(AccessTokenError::UnknownKey)
    ));
}

#[test]
fn a_key_of_another_server_is_refused_even_under_our_kid() {
    let settings = Settings::defaults().tokens;
    let keys = keys_of(&settings);
    let other = keys_of(&Settings::defaults().tokens);
    let claims = claims(&settings, "access");
    let theirs = signed(&other, &claims);
    assert!(matches!(
        keys.verify(&theirs, Utc::now()),
        Err(AccessTokenError::UnknownKey)
    ));
    let signer = other.ring().signer(Utc::now()).unwrap();
    let mut header = signer.header.clone();
    header.kid = Some(keys.ring().signer(Utc::now()).unwrap().kid.clone());
    let forged = jsonwebtoken::encode(&header, &claims, &signer.encoding).unwrap();
    assert!(matches!(
        keys.verify(&forged, Utc::now()),
        Err(AccessTokenError::Invalid(_))
    ));
}

#[test]
fn hs512_with_the_right_secret_is_refused_in_hs256_mode() {
    let settings = settings_of("HS256");
    let keys = keys_of(&settings);
    let claims = claims(&settings, "access");
    let key = EncodingKey::from_secret(settings.access_secret.expose_secret().as_bytes());
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key).unwrap();
    assert!(keys.verify(&token, Utc::now()).is_err());
    // A token minted before kids existed (HS256, no kid) still verifies in HS256 mode.
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
    assert!(keys.verify(&token, Utc::now()).is_ok());
}
