//! Each test keeps its own arrange-act-assert lines, even where two read alike: each states
//! one rule and reads alone.

use std::time::Duration;

use super::*;
use crate::config::Settings;

fn keys() -> AccessKeys {
    AccessKeys::new(&Settings::defaults().tokens)
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
    }
}

#[test]
fn a_token_without_the_access_type_is_refused() {
    let settings = Settings::defaults().tokens;
    let keys = AccessKeys::new(&settings);
    let mut claims = claims(&settings, "refresh");
    let key = EncodingKey::from_secret(settings.access_secret.expose_secret().as_bytes());
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
    assert!(matches!(
        keys.verify(&token, Utc::now()),
        Err(AccessTokenError::WrongType)
    ));
    claims.typ = "access".into();
    claims.aud = "someone-else".into();
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
    assert!(keys.verify(&token, Utc::now()).is_err());
}

#[test]
fn hs512_with_the_right_key_is_refused() {
    let settings = Settings::defaults().tokens;
    let keys = AccessKeys::new(&settings);
    let claims = claims(&settings, "access");
    let key = EncodingKey::from_secret(settings.access_secret.expose_secret().as_bytes());
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key).unwrap();
    assert!(keys.verify(&token, Utc::now()).is_err());
}
