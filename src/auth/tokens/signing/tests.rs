//! Key material from PEM and from storage, and the sealing of stored private keys.

use super::material::{KeyPair, PublicKey, SigningAlgorithm};
use super::ring::{key_sealer, seal};

/// `pair`'s private key as PKCS#8 PEM (what `openssl genpkey` writes).
fn private_pem(pair: &KeyPair) -> String {
    use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
    match pair.algorithm() {
        SigningAlgorithm::Es256 => {
            let secret = p256::SecretKey::from_pkcs8_der(pair.der()).unwrap();
            secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
        }
        SigningAlgorithm::EdDsa => {
            let key = ed25519_dalek::SigningKey::from_pkcs8_der(pair.der()).unwrap();
            key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
        }
        SigningAlgorithm::Rs256 => {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            let key = rsa::RsaPrivateKey::from_pkcs1_der(pair.der()).unwrap();
            key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
        }
        SigningAlgorithm::Hs256 => unreachable!("no key material"),
    }
}

/// `pair`'s public key as SPKI PEM.
fn public_pem(pair: &KeyPair) -> String {
    use p256::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
    match pair.algorithm() {
        SigningAlgorithm::Es256 => {
            let secret = p256::SecretKey::from_pkcs8_der(pair.der()).unwrap();
            secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap()
        }
        SigningAlgorithm::EdDsa => {
            let key = ed25519_dalek::SigningKey::from_pkcs8_der(pair.der()).unwrap();
            key.verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap()
        }
        SigningAlgorithm::Rs256 => {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            let key = rsa::RsaPrivateKey::from_pkcs1_der(pair.der()).unwrap();
            key.to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap()
        }
        SigningAlgorithm::Hs256 => unreachable!("no key material"),
    }
}

const ASYMMETRIC: [SigningAlgorithm; 3] = [
    SigningAlgorithm::Es256,
    SigningAlgorithm::EdDsa,
    SigningAlgorithm::Rs256,
];

#[test]
fn a_key_read_back_from_pem_or_der_is_the_same_key_with_the_same_kid() {
    for algorithm in ASYMMETRIC {
        let pair = KeyPair::generate(algorithm).unwrap();
        assert_eq!(pair.kid().len(), 43, "a SHA-256 thumbprint, base64url");
        let from_der = KeyPair::from_der(algorithm, pair.der()).unwrap();
        assert_eq!(from_der.kid(), pair.kid());
        let from_pem = KeyPair::from_pem(private_pem(&pair).as_bytes()).unwrap();
        assert_eq!(
            (from_pem.algorithm(), from_pem.kid()),
            (algorithm, pair.kid())
        );
        let public = PublicKey::from_pem(public_pem(&pair).as_bytes()).unwrap();
        assert_eq!((public.algorithm(), public.kid()), (algorithm, pair.kid()));
        let stored = PublicKey::from_json(algorithm, &pair.public().json()).unwrap();
        assert_eq!(stored.kid(), pair.kid());
    }
}

#[test]
fn the_published_jwk_holds_no_private_parameter() {
    for algorithm in ASYMMETRIC {
        let pair = KeyPair::generate(algorithm).unwrap();
        let jwk: serde_json::Value = serde_json::from_str(&pair.public().json()).unwrap();
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                jwk.get(private).is_none(),
                "{algorithm}: {private} in {jwk}"
            );
        }
        assert_eq!(jwk["kid"], pair.kid());
        assert_eq!(jwk["alg"], algorithm.name());
        assert_eq!(jwk["use"], "sig");
    }
}

#[test]
fn what_is_not_a_supported_key_is_refused_with_a_reason() {
    for junk in [
        &b""[..],
        b"not a pem",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ] {
        assert!(KeyPair::from_pem(junk).is_err());
        assert!(PublicKey::from_pem(junk).is_err());
    }
    assert!(KeyPair::generate(SigningAlgorithm::Hs256).is_err());
}

#[test]
fn a_sealed_private_key_opens_only_under_its_kek_and_in_its_own_row() {
    use base64::Engine;
    let pair = KeyPair::generate(SigningAlgorithm::Es256).unwrap();
    let sealer = key_sealer(b"kek-0123456789abcdef0123456789abcdef");
    let sealed = seal(&sealer, &pair);
    let der = base64::engine::general_purpose::STANDARD.encode(pair.der());
    assert!(!sealed.contains(&der[..20]), "the DER is not in the clear");
    let opened = sealer.open_bound(&sealed, pair.kid().as_bytes()).unwrap();
    assert_eq!(opened, der);
    // Another row's kid, another key-encryption key, plaintext: none opens.
    assert!(sealer.open_bound(&sealed, b"another-kid").is_err());
    let other = key_sealer(b"another-kek-0123456789abcdef01234567");
    assert!(other.open_bound(&sealed, pair.kid().as_bytes()).is_err());
    assert!(sealer.open_bound(&der, pair.kid().as_bytes()).is_err());
}

/// The ES256 path signs with ring, the key parsed once (`Signer::sign`): the token is
/// jsonwebtoken's JWS (the same header and claims segments) and `jsonwebtoken::decode`
/// verifies it with the published key.
#[test]
fn es256_tokens_signed_with_ring_are_the_jws_jsonwebtoken_makes() {
    use jsonwebtoken::Validation;
    let pair = KeyPair::generate(SigningAlgorithm::Es256).unwrap();
    let signer = super::ring::signer(&pair);
    let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.validate_aud = false;
    for n in 0..5 {
        let claims = serde_json::json!({"sub": format!("user-{n}"), "exp": 4_000_000_000u64});
        let ours = signer.sign(&claims).unwrap();
        let theirs = jsonwebtoken::encode(&signer.header, &claims, &signer.encoding).unwrap();
        let signed_part = |t: &str| t.rsplit_once('.').unwrap().0.to_owned();
        assert_eq!(signed_part(&ours), signed_part(&theirs));
        assert_eq!(
            ours.rsplit_once('.').unwrap().1.len(),
            86,
            "64 bytes, base64url"
        );
        let decoded =
            jsonwebtoken::decode::<serde_json::Value>(&ours, pair.public().decoding(), &validation)
                .unwrap();
        assert_eq!(decoded.claims, claims);
        assert_eq!(decoded.header.kid.as_deref(), Some(pair.kid()));
        // ring draws a fresh nonce for each signature, jsonwebtoken's RFC 6979 does not:
        // two signatures of one message differ only on the ring path.
        assert_ne!(ours, signer.sign(&claims).unwrap(), "ring did not sign");
    }
}
