//! `auth-server keys list | rotate | retire`, and the first key of a development database:
//! the writes to `signing_keys`. Every running instance sees them at its next reload.

use chrono::{DateTime, Utc};

use super::material::{KeyError, KeyPair, SigningAlgorithm};
use super::ring::{LoadError, key_sealer, open, row, seal};
use super::schedule::{KeyState, Timeline, timelines};
use crate::auth::events::{Client, Event, EventKind};
use crate::auth::tokens::mfa::totp_seal;
use crate::config::{KeySource, TokenSettings};
use crate::entity::signing_key;
use crate::error::AuthError;
use crate::store::Store;

/// One key as `keys list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub algorithm: String,
    pub state: &'static str,
    pub created_at: DateTime<Utc>,
    pub activates_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    /// When it leaves the JWKS; `None` while it signs or may yet sign.
    pub published_until: Option<DateTime<Utc>>,
}

/// Why a `keys` command did nothing.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "JWT_ALGORITHM=HS256 signs with JWT_ACCESS_SECRET: there are no stored keys (choose ES256, EdDSA or RS256 and set KEY_ENCRYPTION_KEY)"
    )]
    Secret,
    #[error(
        "the signing key comes from JWT_PRIVATE_KEY_FILE: rotate by replacing the file (publish the next key in JWT_PUBLIC_KEY_FILES first)"
    )]
    Files,
    #[error(
        "KEY_ENCRYPTION_KEY is not set: keys are made per process and not stored; set it to keep keys in the database"
    )]
    Ephemeral,
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("database: {0}")]
    Write(String),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("could not make a key: {0}")]
    Key(#[from] KeyError),
    #[error("no key has the kid {0:?} (see `auth-server keys list`)")]
    UnknownKid(String),
    #[error(
        "{0} is the key that signs now and no other key could take over: run `auth-server keys rotate` first; it stops signing when the new key starts"
    )]
    OnlySigner(String),
    #[error("{0} is already retired")]
    AlreadyRetired(String),
    #[error("{0}")]
    NewKey(String),
}

/// What `keys rotate` did.
#[derive(Debug)]
pub struct Rotated {
    pub key: KeyInfo,
    /// The key that stops signing when the new one starts, if any.
    pub replaces: Option<KeyInfo>,
}

/// Every stored key and its state at `now`.
pub async fn list(
    store: &Store,
    settings: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<Vec<KeyInfo>, AdminError> {
    stored_only(settings)?;
    let rows = store.signing_keys().all().await?;
    let lines = schedule(&rows, settings)?;
    Ok(rows
        .iter()
        .zip(&lines)
        .map(|(r, line)| info(r, line, now))
        .collect())
}

/// Makes a key of `JWT_ALGORITHM` and stores it. It is published at once and signs from
/// `now + lead` (`SIGNING_KEYS_RELOAD` + `JWKS_MAX_AGE`, so that every instance and every
/// verifier's cache holds it first), or from `now` when no key signs yet.
pub async fn rotate(
    store: &Store,
    settings: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<Rotated, AdminError> {
    let kek = stored_only(settings)?;
    let rows = store.signing_keys().all().await?;
    let lines = schedule(&rows, settings)?;
    let current: Option<String> = rows
        .iter()
        .zip(&lines)
        .filter(|(_, line)| line.may_sign(now))
        .max_by_key(|(r, _)| r.activates_at)
        .map(|(r, _)| r.kid.clone());
    let activates_at = match current {
        Some(_) => now + chrono_duration(settings.rotation_lead()),
        None => now,
    };
    let pair = generate(settings.algorithm)?;
    let stored = signing_key::Model {
        kid: pair.kid().to_owned(),
        algorithm: pair.algorithm().name().to_owned(),
        public_jwk: pair.public().json(),
        private_key: seal(&key_sealer(kek), &pair),
        created_at: now,
        activates_at,
        retired_at: None,
    };
    let event = Event::success(EventKind::KeyRotated, &Client::default()).detail(pair.kid());
    let write = store.begin_write().await.map_err(write_error)?;
    write.signing_keys().insert(stored.clone()).await?;
    write.security_events().insert(event.row(now)).await?;
    store.commit_write(write).await.map_err(write_error)?;
    let mut rows = rows;
    rows.push(stored);
    let lines = schedule(&rows, settings)?;
    let infos: Vec<KeyInfo> = rows
        .iter()
        .zip(&lines)
        .map(|(r, line)| info(r, line, now))
        .collect();
    let key = infos
        .iter()
        .find(|k| k.kid == pair.kid())
        .cloned()
        .ok_or_else(|| AdminError::UnknownKid(pair.kid().to_owned()))?;
    let replaces = current.and_then(|kid| infos.iter().find(|k| k.kid == kid).cloned());
    Ok(Rotated { key, replaces })
}

/// Stops `kid` signing at `now` (a pending key is cancelled). It stays published until the
/// tokens it signed have expired. Refused for the key that signs now when no other key
/// could take over.
pub async fn retire(
    store: &Store,
    settings: &TokenSettings,
    kid: &str,
    now: DateTime<Utc>,
) -> Result<KeyInfo, AdminError> {
    stored_only(settings)?;
    let mut rows = store.signing_keys().all().await?;
    let index = rows
        .iter()
        .position(|r| r.kid == kid)
        .ok_or_else(|| AdminError::UnknownKid(kid.to_owned()))?;
    if rows[index].retired_at.is_some() {
        return Err(AdminError::AlreadyRetired(kid.to_owned()));
    }
    let before = schedule(&rows, settings)?;
    rows[index].retired_at = Some(now);
    let after = schedule(&rows, settings)?;
    let signed = |lines: &[Timeline]| lines.iter().any(|l| l.state(now) == KeyState::Signing);
    if signed(&before) && !signed(&after) {
        return Err(AdminError::OnlySigner(kid.to_owned()));
    }
    let write = store.begin_write().await.map_err(write_error)?;
    if !write.signing_keys().retire(kid, now).await? {
        write.rollback().await?;
        return Err(AdminError::AlreadyRetired(kid.to_owned()));
    }
    let event = Event::success(EventKind::KeyRetired, &Client::default()).detail(kid);
    write.security_events().insert(event.row(now)).await?;
    store.commit_write(write).await.map_err(write_error)?;
    Ok(info(&rows[index], &after[index], now))
}

/// What `keys reseal` sealed again.
#[derive(Debug)]
pub struct Resealed {
    /// The signing keys, in the order of `keys list`.
    pub kids: Vec<String>,
    /// TOTP secrets sealed again.
    pub totp_secrets: usize,
    /// TOTP secrets that did not open under `KEY_ENCRYPTION_KEY` either, left as they were
    /// (unusable before and after: their users sign in with a recovery code).
    pub totp_unopenable: usize,
}

/// Seals every stored private key again under `new_key_encryption_key`, in one transaction:
/// every row or none. A row that does not open under `KEY_ENCRYPTION_KEY`, or a key added
/// meanwhile, stops it with nothing written. The TOTP secrets, sealed under the same
/// key-encryption key, are sealed again in the same transaction.
pub async fn reseal(
    store: &Store,
    settings: &TokenSettings,
    new_key_encryption_key: &[u8],
) -> Result<Resealed, AdminError> {
    let current = stored_only(settings)?;
    if new_key_encryption_key.len() < crate::config::MIN_SECRET_BYTES {
        return Err(AdminError::NewKey(format!(
            "NEW_KEY_ENCRYPTION_KEY must be at least {} bytes",
            crate::config::MIN_SECRET_BYTES
        )));
    }
    if new_key_encryption_key == current {
        return Err(AdminError::NewKey(
            "NEW_KEY_ENCRYPTION_KEY is the KEY_ENCRYPTION_KEY the keys are sealed under already"
                .to_owned(),
        ));
    }
    let (old, new) = (key_sealer(current), key_sealer(new_key_encryption_key));
    // Read and written in one write transaction, so a key rotated meanwhile is either
    // resealed here or (read again below) makes the whole reseal stop unwritten.
    let write = store.begin_write().await.map_err(write_error)?;
    let rows = write.signing_keys().all().await?;
    let mut resealed = Vec::with_capacity(rows.len());
    for stored in &rows {
        let pair = KeyPair::from_der(row(stored)?.algorithm, &open(&old, stored)?)?;
        if pair.kid() != stored.kid {
            return Err(LoadError::Unopenable {
                kid: stored.kid.clone(),
            }
            .into());
        }
        resealed.push((stored.kid.clone(), seal(&new, &pair)));
    }
    for (kid, sealed) in &resealed {
        if !write.signing_keys().set_private_key(kid, sealed).await? {
            write.rollback().await?;
            return Err(AdminError::UnknownKid(kid.clone()));
        }
    }
    if write.signing_keys().all().await?.len() != resealed.len() {
        write.rollback().await?;
        return Err(AdminError::NewKey(
            "a key was added while resealing (keys rotate or a first start): nothing was \
             changed; run keys reseal again"
                .to_owned(),
        ));
    }
    let (old_totp, new_totp) = (totp_seal(current), totp_seal(new_key_encryption_key));
    let (mut totp_secrets, mut totp_unopenable) = (0, 0);
    for (user, sealed) in write.second_factors().all_totp_secrets().await? {
        let Ok(plain) = old_totp.open_bound(&sealed, user.as_bytes()) else {
            totp_unopenable += 1;
            continue;
        };
        let again = new_totp.seal_bound(&plain, user.as_bytes());
        // In the write transaction: a concurrent enrolment waits for it or went first.
        if write
            .second_factors()
            .reseal_totp_secret(user, &sealed, again)
            .await?
        {
            totp_secrets += 1;
        }
    }
    store.commit_write(write).await.map_err(write_error)?;
    Ok(Resealed {
        kids: resealed.into_iter().map(|(kid, _)| kid).collect(),
        totp_secrets,
        totp_unopenable,
    })
}

/// A failed write transaction, with its cause (the operator reads it).
fn write_error(e: AuthError) -> AdminError {
    AdminError::Write(e.internal_cause().unwrap_or_else(|| e.to_string()))
}

/// On a development start with an empty table (or none that can sign), makes the first key;
/// its kid, if it made one.
pub async fn ensure_signing_key(
    store: &Store,
    settings: &TokenSettings,
    now: DateTime<Utc>,
) -> Result<Option<String>, AdminError> {
    stored_only(settings)?;
    let rows = store.signing_keys().all().await?;
    let lines = schedule(&rows, settings)?;
    if lines.iter().any(|l| l.may_sign(now)) {
        return Ok(None);
    }
    rotate(store, settings, now).await.map(|r| Some(r.key.kid))
}

fn generate(algorithm: SigningAlgorithm) -> Result<KeyPair, KeyError> {
    KeyPair::generate(algorithm)
}

/// The key-encryption key, when the keys are stored; else why there is nothing to manage.
fn stored_only(settings: &TokenSettings) -> Result<&[u8], AdminError> {
    use secrecy::ExposeSecret;
    match &settings.key_source {
        KeySource::Database { key_encryption_key } => {
            Ok(key_encryption_key.expose_secret().as_bytes())
        }
        KeySource::Secret => Err(AdminError::Secret),
        KeySource::Files { .. } => Err(AdminError::Files),
        KeySource::Ephemeral(_) => Err(AdminError::Ephemeral),
    }
}

fn schedule(
    rows: &[signing_key::Model],
    settings: &TokenSettings,
) -> Result<Vec<Timeline>, AdminError> {
    let rows = rows.iter().map(row).collect::<Result<Vec<_>, _>>()?;
    Ok(timelines(&rows, settings.token_lifetime()))
}

fn info(stored: &signing_key::Model, line: &Timeline, now: DateTime<Utc>) -> KeyInfo {
    KeyInfo {
        kid: stored.kid.clone(),
        algorithm: stored.algorithm.clone(),
        state: line.state(now).name(),
        created_at: stored.created_at,
        activates_at: stored.activates_at,
        retired_at: stored.retired_at,
        published_until: line.published_until,
    }
}

fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
