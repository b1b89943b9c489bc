//! Issue 14 over HTTP: asymmetric signing keys. The JWKS and discovery documents, the
//! tokens the server refuses, rotation of stored keys with `auth-server keys`, two
//! instances on one database, and the binary's start-up checks. Where a token is said to
//! verify, it is also checked from the outside: jsonwebtoken with nothing but the JWK
//! fetched from the JWKS.

mod discovery;
mod instances;
mod refusals;
mod rotation;
mod startup;

use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use auth_server::auth::tokens::signing::SigningAlgorithm;
use auth_server::config::{KeySource, Settings};
use auth_server::store::Store;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;

use crate::helpers::{ACCESS_SECRET, REFRESH_SECRET, TestApp};
use crate::server_process::BIN;
use crate::tokens::part_of;

/// The key-encryption key of the tests' stored keys (at least 32 bytes, as production asks).
pub const KEK: &str = "test-key-encryption-key-0123456789abcdef";

/// The parameters of a private key in a JWK (RFC 7518 §6): none may ever be published.
pub const PRIVATE_PARAMETERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// Settings whose signing keys live in the database, sealed under [`KEK`].
pub fn stored_keys(s: &mut Settings) {
    s.tokens.key_source = KeySource::Database {
        key_encryption_key: SecretString::from(KEK),
    };
}

/// As [`stored_keys`], with new keys of `algorithm`.
pub fn stored_keys_of(algorithm: SigningAlgorithm) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.tokens.algorithm = algorithm;
        stored_keys(s);
    }
}

/// `GET /.well-known/jwks.json` on `app`: the document, which must be a 200 JSON answer.
pub async fn jwks(app: &TestApp) -> Value {
    let resp = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("the JWKS answers");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("the JWKS is JSON")
}

/// The `kid`s a JWKS document lists, in its order.
pub fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("no keys array in {jwks}"))
        .iter()
        .map(|k| {
            k["kid"]
                .as_str()
                .unwrap_or_else(|| panic!("a key without kid in {jwks}"))
                .to_owned()
        })
        .collect()
}

/// The `kid`s `app` publishes now.
pub async fn published_kids(app: &TestApp) -> Vec<String> {
    kids(&jwks(app).await)
}

/// The JOSE header of a JWT.
pub fn header_of(token: &str) -> Value {
    part_of(token, 0)
}

/// The `kid` in a JWT's header.
pub fn kid_of(token: &str) -> String {
    header_of(token)["kid"]
        .as_str()
        .unwrap_or_else(|| panic!("no kid in the header of {token}"))
        .to_owned()
}

/// Verifies `token` as a third-party service would: the key its `kid` names in `jwks`,
/// turned into a key by jsonwebtoken's `DecodingKey::from_jwk`, the algorithm fixed by the
/// verifier (not taken from the token), issuer and audience `auth-server`, `exp` by the
/// system clock. Returns the claims.
pub fn verify_outside(jwks: &Value, token: &str, algorithm: jsonwebtoken::Algorithm) -> Value {
    let set: JwkSet = serde_json::from_value(jwks.clone()).expect("the JWKS is a JWK set");
    let kid = kid_of(token);
    let jwk = set
        .find(&kid)
        .unwrap_or_else(|| panic!("the JWKS has no key {kid}: {jwks}"));
    let key = DecodingKey::from_jwk(jwk).expect("the published JWK is a usable key");
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&["auth-server"]);
    validation.set_audience(&["auth-server"]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("the token does not verify against the JWKS: {e}"))
        .claims
}

/// A store on `app`'s database, for the `keys` operations run in the test itself.
pub async fn store_of(app: &TestApp) -> Store {
    use secrecy::ExposeSecret;
    let db = auth_server::db::connect(&app.settings.database)
        .await
        .expect("the test database answers");
    Store::new(db, app.settings.database.url.expose_secret())
}

/// What a run of the binary printed, and how it ended.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Asserts it exited 0, and returns it.
    pub fn ok(self) -> Self {
        assert!(
            self.status.success(),
            "exited with {}:\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts it failed with a message (on stderr) containing every one of `words`.
    pub fn refused_with(self, words: &[&str]) -> Self {
        assert!(
            !self.status.success(),
            "it succeeded:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        for word in words {
            assert!(
                self.stderr.contains(word),
                "no {word:?} in stderr:\n{}",
                self.stderr
            );
        }
        self
    }

    /// The first line of stdout (where `keys rotate` prints the new kid).
    pub fn first_line(&self) -> &str {
        self.stdout.lines().next().unwrap_or_default()
    }

    /// stdout as JSON (`keys list --json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs `auth-server <args>` to completion on `database_url` with a clean environment (the
/// JWT secrets of the tests, `RUST_LOG=warn`) plus `extra`, in an empty directory (no
/// stray `.env`). It must end within a minute.
pub async fn run_binary(database_url: &str, args: &[&str], extra: &[(&str, &str)]) -> Outcome {
    let database_url = database_url.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().expect("temp dir");
        run_blocking(dir.path(), &database_url, &args, &extra)
    })
    .await
    .expect("the binary's runner does not panic")
}

fn run_blocking(
    dir: &Path,
    database_url: &str,
    args: &[String],
    extra: &[(String, String)],
) -> Outcome {
    const LIMIT: Duration = Duration::from_secs(60);
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = Command::new(BIN)
        .env_clear()
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env("JWT_ACCESS_SECRET", ACCESS_SECRET)
        .env("JWT_REFRESH_SECRET", REFRESH_SECRET)
        .env("RUST_LOG", "warn")
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("the binary starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`auth-server {}` still runs after {LIMIT:?}; stderr:\n{}",
                args.join(" "),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        status,
        stdout: std::fs::read_to_string(&out_path).expect("stdout"),
        stderr: std::fs::read_to_string(&err_path).expect("stderr"),
    }
}

/// `auth-server keys <args>` on `app`'s database with the tests' [`KEK`].
pub async fn keys_command(app: &TestApp, args: &[&str]) -> Outcome {
    let mut full = vec!["keys"];
    full.extend_from_slice(args);
    run_binary(&app.database_url, &full, &[("KEY_ENCRYPTION_KEY", KEK)]).await
}

/// `keys list --json` on `app`'s database: one entry per key, by kid.
pub async fn listed(app: &TestApp) -> Vec<Value> {
    keys_command(app, &["list", "--json"])
        .await
        .ok()
        .json()
        .as_array()
        .cloned()
        .expect("keys list --json prints an array")
}

/// The entry of `kid` in a `keys list --json` array.
pub fn entry<'a>(list: &'a [Value], kid: &str) -> &'a Value {
    list.iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("no key {kid} in {list:?}"))
}

/// An RFC 3339 instant of a `keys list --json` entry.
pub fn instant(entry: &Value, field: &str) -> DateTime<Utc> {
    let raw = entry[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {entry}"));
    DateTime::parse_from_rfc3339(raw)
        .unwrap_or_else(|e| panic!("{field} {raw:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// Polls `app`'s JWKS until `done` holds for its kids, for at most `limit`; whether it did.
pub async fn wait_for_kids(
    app: &TestApp,
    limit: Duration,
    done: impl Fn(&[String]) -> bool,
) -> bool {
    let started = Instant::now();
    loop {
        if done(&published_kids(app).await) {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A PEM document of `der` under `label`, lines of 64 characters (RFC 7468).
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
