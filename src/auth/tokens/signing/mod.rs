//! Signing keys for access tokens: ES256 (default), EdDSA or RS256 keys that other services
//! verify from the JWKS, or the legacy HS256 secret.
//!
//! [`material`] makes and reads one key; [`schedule`] says when a stored key signs and how
//! long it stays published; [`ring`] is what an instance holds (signer, verifiers, JWKS);
//! [`admin`] is `auth-server keys`.

pub mod admin;
pub mod material;
pub mod ring;
pub mod schedule;

pub use material::{KeyError, KeyPair, PublicKey, SigningAlgorithm};
pub use ring::{KeyRing, LoadError};

/// Why an instance could not take its signing keys into service at start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(
        "no key in the signing_keys table can sign: run `auth-server keys rotate` to make the first one (in production none is made by itself)"
    )]
    NoSigningKey,
}
