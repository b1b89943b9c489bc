//! The keys one instance signs and verifies access tokens with, and the JWKS it publishes.
//!
//! Fed once at start from the configuration (the HS256 secret, PEM files, or a key made for
//! this process), or from the `signing_keys` table, which every instance re-reads every
//! `SIGNING_KEYS_RELOAD`. Between reads the ring still follows the schedule by the clock:
//! a pending key it already holds starts signing at its `activates_at` on every instance at
//! once, and a replaced key leaves the JWKS when its tokens have expired.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use secrecy::ExposeSecret;

use super::material::{KeyError, KeyPair, PublicKey, SigningAlgorithm};
use super::schedule::{KeyRow, timelines};
use crate::config::{KeySource, TokenSettings};
use crate::entity::signing_key;
use crate::mail::Sealer;
use crate::store::Store;

/// The key that signs, with its header made once.
pub struct Signer {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    pub header: Header,
    pub encoding: EncodingKey,
    /// An ES256 key, parsed once (see [`Signer::sign`]).
    es256: Option<ring::signature::EcdsaKeyPair>,
}

impl Signer {
    /// The compact JWS of `claims` under this key's header.
    ///
    /// ES256 is signed here with ring, the key parsed once: `jsonwebtoken::encode` (its
    /// rust_crypto backend) parsed the PKCS#8 key again for every token, deriving its
    /// public point, then signed with `sign_recoverable`, which recovers public keys from
    /// the signature to find a recovery id that a JWS never carries; and its pure-Rust
    /// P-256 has no precomputed tables. That was 78 % of the server's CPU under a
    /// `refreshToken` load (`bench/FINDINGS.md`, issue 17). The token is the same JWS
    /// (header and claims encoded as jsonwebtoken does, a 64-byte `r‖s` signature); a test
    /// checks both against `jsonwebtoken`. Other algorithms go through `jsonwebtoken`.
    pub fn sign(
        &self,
        claims: &impl serde::Serialize,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let Some(key) = &self.es256 else {
            return jsonwebtoken::encode(&self.header, claims, &self.encoding);
        };
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut token = b64.encode(serde_json::to_vec(&self.header)?);
        token.push('.');
        token.push_str(&b64.encode(serde_json::to_vec(claims)?));
        let rng = ring::rand::SystemRandom::new();
        let signature = key
            .sign(&rng, token.as_bytes())
            .map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey)?;
        token.push('.');
        token.push_str(&b64.encode(signature.as_ref()));
        Ok(token)
    }
}

/// A key that verifies tokens naming its `kid`.
pub struct Verifier {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    pub decoding: DecodingKey,
    /// The published JWK; `None` for the HS256 secret, which is never published.
    jwk: Option<Jwk>,
    /// When it leaves the ring; `None`: not before the next load.
    until: Option<DateTime<Utc>>,
}

struct Scheduled {
    activates_at: DateTime<Utc>,
    stops: Option<DateTime<Utc>>,
    signer: Arc<Signer>,
}

#[derive(Default)]
struct Loaded {
    signers: Vec<Scheduled>,
    verifiers: Vec<Arc<Verifier>>,
    /// HS256 only: tokens minted before `kid`s existed carry none, and are this key's.
    unnamed: Option<Arc<Verifier>>,
}

/// Why the stored keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error(
        "signing key {kid} cannot be opened with KEY_ENCRYPTION_KEY (was it sealed under another one?)"
    )]
    Unopenable { kid: String },
    #[error("signing key {kid}: {source}")]
    Key { kid: String, source: KeyError },
    #[error("signing key {kid} has an unknown algorithm {algorithm:?}")]
    Algorithm { kid: String, algorithm: String },
}

/// The ring: shared by the auth service (minting, verifying) and the HTTP routes (JWKS).
pub struct KeyRing {
    /// How keys are sealed in the table; `None` when the ring is not fed from the table.
    sealer: Option<Sealer>,
    /// An access token's lifetime plus the verification leeway.
    token_lifetime: chrono::Duration,
    loaded: RwLock<Arc<Loaded>>,
    /// Bumped whenever a load drops a key: what was verified before may not verify now.
    generation: AtomicU64,
}

impl KeyRing {
    /// The ring the settings describe. A ring fed from the table is empty until
    /// [`load`](Self::load).
    pub fn new(settings: &TokenSettings, token_lifetime: chrono::Duration) -> Self {
        let mut loaded = Loaded::default();
        let mut sealer = None;
        match &settings.key_source {
            KeySource::Secret => {
                let secret = settings.access_secret.expose_secret().as_bytes();
                let kid = secret_kid(secret);
                let verifier = Arc::new(Verifier {
                    kid: kid.clone(),
                    algorithm: SigningAlgorithm::Hs256,
                    decoding: DecodingKey::from_secret(secret),
                    jwk: None,
                    until: None,
                });
                loaded.signers.push(Scheduled {
                    activates_at: DateTime::<Utc>::MIN_UTC,
                    stops: None,
                    signer: Arc::new(Signer {
                        header: header(SigningAlgorithm::Hs256, &kid),
                        kid,
                        algorithm: SigningAlgorithm::Hs256,
                        encoding: EncodingKey::from_secret(secret),
                        es256: None,
                    }),
                });
                loaded.unnamed = Some(verifier.clone());
                loaded.verifiers.push(verifier);
            }
            KeySource::Files { signing, published } => {
                loaded.signers.push(always(signing));
                loaded.verifiers.push(verifier(signing.public(), None));
                for key in published {
                    if key.kid() != signing.kid() {
                        loaded.verifiers.push(verifier(key, None));
                    }
                }
            }
            KeySource::Ephemeral(pair) => {
                loaded.signers.push(always(pair));
                loaded.verifiers.push(verifier(pair.public(), None));
            }
            KeySource::Database {
                key_encryption_key: kek,
            } => sealer = Some(key_sealer(kek.expose_secret().as_bytes())),
        }
        Self {
            sealer,
            token_lifetime,
            loaded: RwLock::new(Arc::new(loaded)),
            generation: AtomicU64::new(0),
        }
    }

    /// Whether the ring is fed from the `signing_keys` table (and so reloads).
    pub fn is_stored(&self) -> bool {
        self.sealer.is_some()
    }

    /// Reads the table and replaces what the ring holds; a no-op for a configured ring.
    /// On failure the ring keeps what it had.
    pub async fn load(&self, store: &Store, now: DateTime<Utc>) -> Result<(), LoadError> {
        let Some(sealer) = &self.sealer else {
            return Ok(());
        };
        let rows = store.signing_keys().all().await?;
        let loaded = build(&rows, sealer, self.token_lifetime, now)?;
        let mut held = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        let dropped = held
            .verifiers
            .iter()
            .any(|old| !loaded.verifiers.iter().any(|new| new.kid == old.kid));
        *held = Arc::new(loaded);
        if dropped {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Changes whenever a key leaves the ring at a load (see `AccessKeys`' cache).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether a key signs at `now`.
    pub fn can_sign(&self, now: DateTime<Utc>) -> bool {
        self.signer(now).is_some()
    }

    /// The key that signs at `now`: the newest whose turn has come and not ended.
    pub fn signer(&self, now: DateTime<Utc>) -> Option<Arc<Signer>> {
        let loaded = self.current();
        loaded
            .signers
            .iter()
            .filter(|s| s.activates_at <= now && s.stops.is_none_or(|t| now < t))
            .max_by_key(|s| s.activates_at)
            .map(|s| s.signer.clone())
    }

    /// The key that verifies a token naming `kid` (or none: the HS256 legacy), at `now`.
    pub fn verifier(&self, kid: Option<&str>, now: DateTime<Utc>) -> Option<Arc<Verifier>> {
        let loaded = self.current();
        match kid {
            None => loaded.unnamed.clone(),
            Some(kid) => loaded
                .verifiers
                .iter()
                .find(|v| v.kid == kid && v.until.is_none_or(|t| now < t))
                .cloned(),
        }
    }

    /// The JWKS document at `now`: every published public key.
    pub fn jwks(&self, now: DateTime<Utc>) -> serde_json::Value {
        let loaded = self.current();
        let keys: Vec<&Jwk> = loaded
            .verifiers
            .iter()
            .filter(|v| v.until.is_none_or(|t| now < t))
            .filter_map(|v| v.jwk.as_ref())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The algorithms of the keys that verify at `now` (for discovery).
    pub fn algorithms(&self, now: DateTime<Utc>) -> Vec<&'static str> {
        let loaded = self.current();
        let mut names: Vec<&'static str> = loaded
            .verifiers
            .iter()
            .filter(|v| v.until.is_none_or(|t| now < t))
            .map(|v| v.algorithm.name())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    fn current(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The sealer of private keys in the table: keyed from `KEY_ENCRYPTION_KEY`, each sealed
/// value bound to its `kid`.
pub fn key_sealer(key_encryption_key: &[u8]) -> Sealer {
    Sealer::derived(key_encryption_key, b"signing-keys-seal-v1")
}

fn build(
    rows: &[signing_key::Model],
    sealer: &Sealer,
    token_lifetime: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<Loaded, LoadError> {
    let schedule_rows = rows
        .iter()
        .map(row)
        .collect::<Result<Vec<KeyRow>, LoadError>>()?;
    let lines = timelines(&schedule_rows, token_lifetime);
    let mut loaded = Loaded::default();
    for ((stored, key), line) in rows.iter().zip(&schedule_rows).zip(&lines) {
        if !line.published(now) {
            continue;
        }
        let public = PublicKey::from_json(key.algorithm, &stored.public_jwk).map_err(|source| {
            LoadError::Key {
                kid: key.kid.clone(),
                source,
            }
        })?;
        if public.kid() != key.kid {
            return Err(LoadError::Key {
                kid: key.kid.clone(),
                source: KeyError::Invalid("its JWK has another thumbprint".into()),
            });
        }
        if line.may_sign(now) {
            let der = open(sealer, stored)?;
            let pair = KeyPair::from_der(key.algorithm, &der).map_err(|source| LoadError::Key {
                kid: key.kid.clone(),
                source,
            })?;
            if pair.kid() != key.kid {
                return Err(LoadError::Key {
                    kid: key.kid.clone(),
                    source: KeyError::Invalid("its private key is another key's".into()),
                });
            }
            loaded.signers.push(Scheduled {
                activates_at: line.activates_at,
                stops: line.stops_signing,
                signer: Arc::new(signer(&pair)),
            });
        }
        loaded
            .verifiers
            .push(verifier(&public, line.published_until));
    }
    Ok(loaded)
}

/// The schedule's view of a stored row.
pub fn row(stored: &signing_key::Model) -> Result<KeyRow, LoadError> {
    let algorithm = SigningAlgorithm::parse(&stored.algorithm)
        .filter(|a| a.is_asymmetric())
        .ok_or_else(|| LoadError::Algorithm {
            kid: stored.kid.clone(),
            algorithm: stored.algorithm.clone(),
        })?;
    Ok(KeyRow {
        kid: stored.kid.clone(),
        algorithm,
        created_at: stored.created_at,
        activates_at: stored.activates_at,
        retired_at: stored.retired_at,
    })
}

/// The DER of a stored private key.
pub(super) fn open(sealer: &Sealer, stored: &signing_key::Model) -> Result<Vec<u8>, LoadError> {
    use base64::Engine;
    let unopenable = || LoadError::Unopenable {
        kid: stored.kid.clone(),
    };
    let encoded = sealer
        .open_bound(&stored.private_key, stored.kid.as_bytes())
        .map_err(|_| unopenable())?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| unopenable())
}

/// The sealed form of `pair`'s private key, for its row.
pub fn seal(sealer: &Sealer, pair: &KeyPair) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair.der());
    sealer.seal_bound(&encoded, pair.kid().as_bytes())
}

fn always(pair: &KeyPair) -> Scheduled {
    Scheduled {
        activates_at: DateTime::<Utc>::MIN_UTC,
        stops: None,
        signer: Arc::new(signer(pair)),
    }
}

pub(super) fn signer(pair: &KeyPair) -> Signer {
    let es256 = match pair.algorithm() {
        // A key ring cannot read (a PKCS#8 without its public key) signs through
        // jsonwebtoken instead.
        SigningAlgorithm::Es256 => ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pair.der(),
            &ring::rand::SystemRandom::new(),
        )
        .ok(),
        _ => None,
    };
    Signer {
        kid: pair.kid().to_owned(),
        algorithm: pair.algorithm(),
        header: header(pair.algorithm(), pair.kid()),
        encoding: pair.encoding().clone(),
        es256,
    }
}

fn verifier(key: &PublicKey, until: Option<DateTime<Utc>>) -> Arc<Verifier> {
    Arc::new(Verifier {
        kid: key.kid().to_owned(),
        algorithm: key.algorithm(),
        decoding: key.decoding().clone(),
        jwk: Some(key.jwk().clone()),
        until,
    })
}

fn header(algorithm: SigningAlgorithm, kid: &str) -> Header {
    let mut header = Header::new(algorithm.jwt());
    header.kid = Some(kid.to_owned());
    header
}

/// A `kid` for the HS256 secret that says nothing about it: a keyed hash, truncated.
fn secret_kid(secret: &[u8]) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(b"jwt-kid");
    let digest = mac.finalize().into_bytes();
    format!(
        "hs256-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..12])
    )
}
