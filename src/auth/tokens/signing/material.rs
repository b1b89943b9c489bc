//! One key's material: generating it, reading it from PEM or from its stored DER, and its
//! public half as a JWK named by its RFC 7638 thumbprint (the `kid` tokens carry).

use std::fmt;

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

/// The algorithms access tokens may be signed with (`JWT_ALGORITHM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    /// ECDSA on P-256 with SHA-256: the default.
    Es256,
    /// Ed25519.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    Rs256,
    /// HMAC-SHA-256 with `JWT_ACCESS_SECRET`: the legacy choice; nothing to publish.
    Hs256,
}

impl SigningAlgorithm {
    pub const ALL: [Self; 4] = [Self::Es256, Self::EdDsa, Self::Rs256, Self::Hs256];

    /// The JOSE name (`ES256`, `EdDSA`, `RS256`, `HS256`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
            Self::Hs256 => "HS256",
        }
    }

    /// The algorithm named `name` (as JOSE spells it, ignoring case).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn jwt(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
            Self::Rs256 => Algorithm::RS256,
            Self::Hs256 => Algorithm::HS256,
        }
    }

    pub fn is_asymmetric(self) -> bool {
        self != Self::Hs256
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why key material could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a supported key ({0}): expected a P-256, Ed25519 or RSA key in PEM")]
    Unsupported(String),
    #[error("{0} keys are not stored or generated (HS256 uses JWT_ACCESS_SECRET)")]
    Symmetric(SigningAlgorithm),
    #[error("the key cannot be used: {0}")]
    Invalid(String),
}

/// A private key that can sign, with its public half.
#[derive(Clone)]
pub struct KeyPair {
    algorithm: SigningAlgorithm,
    encoding: EncodingKey,
    public: PublicKey,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({} {}, ***)", self.algorithm, self.public.kid)
    }
}

impl KeyPair {
    /// A fresh key (RSA: 2048 bits).
    pub fn generate(algorithm: SigningAlgorithm) -> Result<Self, KeyError> {
        use rand::RngCore;
        let der = match algorithm {
            SigningAlgorithm::Es256 => {
                use p256::pkcs8::EncodePrivateKey;
                // A uniformly random scalar: retry the (about 2^-32 likely) out-of-range draw.
                let secret = loop {
                    let mut bytes = [0u8; 32];
                    rand::rng().fill_bytes(&mut bytes);
                    if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
                        break secret;
                    }
                };
                secret
                    .to_pkcs8_der()
                    .map_err(|e| KeyError::Invalid(e.to_string()))?
                    .as_bytes()
                    .to_vec()
            }
            SigningAlgorithm::EdDsa => {
                use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
                let mut seed = [0u8; 32];
                rand::rng().fill_bytes(&mut seed);
                // PKCS#8 v1 (no public key inside): the form jsonwebtoken reads a JWK from.
                KeypairBytes {
                    secret_key: seed,
                    public_key: None,
                }
                .to_pkcs8_der()
                .map_err(|e| KeyError::Invalid(e.to_string()))?
                .as_bytes()
                .to_vec()
            }
            SigningAlgorithm::Rs256 => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                    .map_err(|e| KeyError::Invalid(e.to_string()))?;
                key.to_pkcs1_der()
                    .map_err(|e| KeyError::Invalid(e.to_string()))?
                    .as_bytes()
                    .to_vec()
            }
            SigningAlgorithm::Hs256 => return Err(KeyError::Symmetric(algorithm)),
        };
        Self::from_der(algorithm, &der)
    }

    /// The key stored as [`der`](Self::der) for `algorithm`.
    pub fn from_der(algorithm: SigningAlgorithm, der: &[u8]) -> Result<Self, KeyError> {
        let encoding = match algorithm {
            SigningAlgorithm::Es256 => EncodingKey::from_ec_der(der),
            SigningAlgorithm::EdDsa => EncodingKey::from_ed_der(der),
            SigningAlgorithm::Rs256 => EncodingKey::from_rsa_der(der),
            SigningAlgorithm::Hs256 => return Err(KeyError::Symmetric(algorithm)),
        };
        Self::from_encoding(algorithm, encoding)
    }

    /// A private key in PEM (PKCS#8; PKCS#1 too for RSA); its algorithm is its kind.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let attempts = [
            (SigningAlgorithm::Es256, EncodingKey::from_ec_pem(pem)),
            (SigningAlgorithm::EdDsa, EncodingKey::from_ed_pem(pem)),
            (SigningAlgorithm::Rs256, EncodingKey::from_rsa_pem(pem)),
        ];
        let mut last = String::from("no PEM block");
        for (algorithm, encoding) in attempts {
            match encoding.map_err(|e| KeyError::Invalid(e.to_string())) {
                Ok(encoding) => match Self::from_encoding(algorithm, encoding) {
                    Ok(pair) => return Ok(pair),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
        }
        Err(KeyError::Unsupported(last))
    }

    fn from_encoding(algorithm: SigningAlgorithm, encoding: EncodingKey) -> Result<Self, KeyError> {
        let jwk = Jwk::from_encoding_key(&encoding, algorithm.jwt())
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        let public = PublicKey::from_jwk(algorithm, jwk)?;
        // Sign once and verify: a key whose halves do not match must not go into service.
        let probe = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(algorithm.jwt()),
            &serde_json::json!({ "probe": true }),
            &encoding,
        )
        .map_err(|e| KeyError::Invalid(e.to_string()))?;
        let mut validation = jsonwebtoken::Validation::new(algorithm.jwt());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&probe, &public.decoding, &validation)
            .map_err(|e| KeyError::Invalid(format!("it does not verify its own signature: {e}")))?;
        Ok(Self {
            algorithm,
            encoding,
            public,
        })
    }

    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// What is stored (sealed): PKCS#8 DER for ES256 and EdDSA, PKCS#1 DER for RSA.
    pub fn der(&self) -> &[u8] {
        self.encoding.as_bytes()
    }

    pub fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }
}

/// A public key that verifies, as published in the JWKS.
#[derive(Clone)]
pub struct PublicKey {
    algorithm: SigningAlgorithm,
    kid: String,
    jwk: Jwk,
    decoding: DecodingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.algorithm, self.kid)
    }
}

impl PublicKey {
    /// `jwk` (its own `kid` and `alg` are replaced) as a key of `algorithm`.
    pub fn from_jwk(algorithm: SigningAlgorithm, mut jwk: Jwk) -> Result<Self, KeyError> {
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.key_algorithm = Some(key_algorithm(algorithm)?);
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| KeyError::Invalid(e.to_string()))?;
        Ok(Self {
            algorithm,
            kid,
            jwk,
            decoding,
        })
    }

    /// A stored JWK (`public_jwk`) of a key of `algorithm`.
    pub fn from_json(algorithm: SigningAlgorithm, json: &str) -> Result<Self, KeyError> {
        let jwk: Jwk = serde_json::from_str(json).map_err(|e| KeyError::Invalid(e.to_string()))?;
        Self::from_jwk(algorithm, jwk)
    }

    /// A public (or private) key in PEM; its algorithm is its kind.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        if let Ok(pair) = KeyPair::from_pem(pem) {
            return Ok(pair.public);
        }
        let attempts = [
            (SigningAlgorithm::Es256, DecodingKey::from_ec_pem(pem)),
            (SigningAlgorithm::EdDsa, DecodingKey::from_ed_pem(pem)),
            (SigningAlgorithm::Rs256, DecodingKey::from_rsa_pem(pem)),
        ];
        let mut last = String::from("no PEM block");
        for (algorithm, decoding) in attempts {
            let jwk = decoding.and_then(|d| Jwk::from_decoding_key(&d, Some(algorithm.jwt())));
            match jwk.map_err(|e| KeyError::Invalid(e.to_string())) {
                Ok(jwk) => match Self::from_jwk(algorithm, jwk) {
                    Ok(key) => return Ok(key),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
        }
        Err(KeyError::Unsupported(last))
    }

    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWK as published: `kty`, the public parameters, `kid`, `alg`, `use`.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub fn json(&self) -> String {
        serde_json::to_string(&self.jwk).unwrap_or_default()
    }

    pub fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

fn key_algorithm(algorithm: SigningAlgorithm) -> Result<KeyAlgorithm, KeyError> {
    Ok(match algorithm {
        SigningAlgorithm::Es256 => KeyAlgorithm::ES256,
        SigningAlgorithm::EdDsa => KeyAlgorithm::EdDSA,
        SigningAlgorithm::Rs256 => KeyAlgorithm::RS256,
        SigningAlgorithm::Hs256 => return Err(KeyError::Symmetric(algorithm)),
    })
}
