//! The real binary's start-up with signing keys (on SQLite: the checks are the same on
//! every backend): production without a key-encryption key, or with an empty key table,
//! refuses to start; `keys rotate` makes the first key; another key-encryption key cannot
//! open the table; development makes a key once and keeps it; PEM files sign and publish,
//! and a file of the wrong algorithm is refused.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use auth_server::auth::totp::code_of_base32;

use super::{KEK, kid_of, kids, pem, run_binary, verify_outside};
use crate::helpers::{PASSWORD, Tokens};
use crate::server_process::{ServerProcess, spawn};
use crate::tokens::claims_of;

/// What production needs besides the JWT secrets (which `server_process` sets).
const PRODUCTION: [(&str, &str); 2] = [
    ("APP_ENV", "production"),
    ("SMTP_URL", "smtp://127.0.0.1:2525"),
];
const OTHER_KEK: &str = "another-key-encryption-key-0123456789abcdef";
const START: Duration = Duration::from_secs(30);

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/keys.db?mode=rwc", dir.display())
}

/// `extra` followed by `more`.
fn env<'a>(extra: &[(&'a str, &'a str)], more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    extra.iter().chain(more).copied().collect()
}

/// `serve` with `extra`, which must exit unsuccessfully; its output.
async fn refuses_to_start(dir: &Path, extra: &[(&str, &str)]) -> String {
    let mut server = spawn(dir, &sqlite_url(dir), &["serve"], extra, &[]);
    let status = server.wait_exit(START).await;
    let output = server.output();
    assert!(!status.success(), "the server started:\n{output}");
    output
}

/// `serve` with `extra`, answering `/health`.
async fn serves(dir: &Path, extra: &[(&str, &str)]) -> ServerProcess {
    let mut server = spawn(dir, &sqlite_url(dir), &["serve"], extra, &[]);
    server.wait_healthy(START).await;
    server
}

async fn get_json(url: &str) -> Value {
    let resp = reqwest::get(url).await.expect("the server answers");
    assert_eq!(resp.status(), 200, "{url}");
    resp.json().await.expect("JSON")
}

async fn jwks_of(server: &ServerProcess) -> Value {
    get_json(&server.url("/.well-known/jwks.json")).await
}

async fn graphql(
    server: &ServerProcess,
    query: &str,
    variables: Value,
    bearer: Option<&str>,
) -> Value {
    let mut request = reqwest::Client::new()
        .post(server.url("/graphql"))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON")
}

async fn register(server: &ServerProcess, email: &str) -> Tokens {
    let body = graphql(
        server,
        "mutation($input: RegisterInput!) { register(input: $input) { accessToken refreshToken user { id } } }",
        json!({"input": {"email": email, "password": PASSWORD}}),
        None,
    )
    .await;
    assert!(body["errors"].is_null(), "register failed: {body}");
    Tokens::from_payload(&body["data"]["register"])
}

/// Enrols and confirms TOTP for the holder of `access`; the secret, as `enrollTotp` shows it.
async fn enrol_totp(server: &ServerProcess, access: &str) -> String {
    let enrolment = graphql(
        server,
        "mutation { enrollTotp { secret } }",
        json!({}),
        Some(access),
    )
    .await;
    let secret = enrolment["data"]["enrollTotp"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("enrollTotp failed: {enrolment}"))
        .to_owned();
    let code = code_of_base32(&secret, chrono::Utc::now()).expect("a code");
    let confirmed = graphql(
        server,
        "mutation($c: String!) { confirmTotp(code: $c) }",
        json!({"c": code}),
        Some(access),
    )
    .await;
    assert!(
        confirmed["errors"].is_null(),
        "confirmTotp failed: {confirmed}"
    );
    secret
}

/// Whether `token` passes `me` on `server` as the account `user_id`.
async fn me_ok(server: &ServerProcess, token: &str, user_id: &str) -> bool {
    let body = graphql(server, "{ me { id } }", json!({}), Some(token)).await;
    match body["errors"][0]["extensions"]["code"].as_str() {
        None => {
            assert_eq!(body["data"]["me"]["id"], user_id, "{body}");
            true
        }
        Some("UNAUTHENTICATED") => false,
        Some(other) => panic!("unexpected {other}: {body}"),
    }
}

/// A fresh P-256 key (a uniformly drawn scalar, redrawn when out of range).
fn p256_key() -> p256::SecretKey {
    use rand::RngCore;
    loop {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        if let Ok(key) = p256::SecretKey::from_slice(&bytes) {
            return key;
        }
    }
}

fn private_pem(key: &p256::SecretKey) -> String {
    use p256::pkcs8::EncodePrivateKey;
    pem(
        "PRIVATE KEY",
        key.to_pkcs8_der().expect("PKCS#8").as_bytes(),
    )
}

fn public_pem(key: &p256::SecretKey) -> String {
    use p256::pkcs8::EncodePublicKey;
    pem(
        "PUBLIC KEY",
        key.public_key()
            .to_public_key_der()
            .expect("SPKI")
            .as_bytes(),
    )
}

/// The JWK `x` of a P-256 key, computed here from the key itself.
fn x_of(key: &p256::SecretKey) -> String {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let point = key.public_key().to_encoded_point(false);
    URL_SAFE_NO_PAD.encode(point.x().expect("an uncompressed point"))
}

/// The kid the JWKS gives the key whose `x` is `x`.
fn kid_with_x(jwks: &Value, x: &str) -> String {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["x"] == x)
        .unwrap_or_else(|| panic!("no key with x {x} in {jwks}"))["kid"]
        .as_str()
        .expect("kid")
        .to_owned()
}

#[tokio::test]
async fn production_without_a_key_encryption_key_refuses_to_start_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = refuses_to_start(dir.path(), &PRODUCTION).await;
    assert!(output.contains("KEY_ENCRYPTION_KEY"), "{output}");
    // A short one is refused too, naming it.
    let output = refuses_to_start(
        dir.path(),
        &env(&PRODUCTION, &[("KEY_ENCRYPTION_KEY", "too-short")]),
    )
    .await;
    assert!(output.contains("KEY_ENCRYPTION_KEY"), "{output}");
    // And the key commands, which read the same settings.
    run_binary(&sqlite_url(dir.path()), &["keys", "rotate"], &PRODUCTION)
        .await
        .refused_with(&["KEY_ENCRYPTION_KEY"]);
}

#[tokio::test]
async fn production_with_an_empty_key_table_refuses_to_start_until_keys_rotate_makes_a_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(dir.path());
    let production = env(&PRODUCTION, &[("KEY_ENCRYPTION_KEY", KEK)]);

    let output = refuses_to_start(dir.path(), &production).await;
    assert!(output.contains("auth-server keys rotate"), "{output}");
    // It made no key by itself.
    let listed = run_binary(&url, &["keys", "list", "--json"], &production)
        .await
        .ok()
        .json();
    assert_eq!(listed, json!([]));

    let kid = run_binary(&url, &["keys", "rotate"], &production)
        .await
        .ok()
        .first_line()
        .to_owned();
    let listed = run_binary(&url, &["keys", "list", "--json"], &production)
        .await
        .ok()
        .json();
    assert_eq!(listed[0]["kid"], kid.as_str());
    assert_eq!(listed[0]["state"], "signing", "the first key signs at once");

    let server = serves(dir.path(), &production).await;
    let document = jwks_of(&server).await;
    assert_eq!(kids(&document), vec![kid.clone()]);
    let tokens = register(&server, "ada@example.com").await;
    assert_eq!(kid_of(&tokens.access), kid);
    assert!(me_ok(&server, &tokens.access, &tokens.user_id).await);
    verify_outside(&document, &tokens.access, Algorithm::ES256);
}

#[tokio::test]
async fn a_key_table_sealed_under_another_key_encryption_key_refuses_to_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(dir.path());
    let production = env(&PRODUCTION, &[("KEY_ENCRYPTION_KEY", KEK)]);
    let kid = run_binary(&url, &["keys", "rotate"], &production)
        .await
        .ok()
        .first_line()
        .to_owned();

    let output = refuses_to_start(
        dir.path(),
        &env(&PRODUCTION, &[("KEY_ENCRYPTION_KEY", OTHER_KEK)]),
    )
    .await;
    assert!(output.contains("cannot be opened"), "{output}");
    assert!(output.contains(&kid), "the message names the key: {output}");
    // Development refuses too, rather than making a key of its own beside it.
    let output = refuses_to_start(dir.path(), &[("KEY_ENCRYPTION_KEY", OTHER_KEK)]).await;
    assert!(output.contains("cannot be opened"), "{output}");
    let listed = run_binary(&url, &["keys", "list", "--json"], &production)
        .await
        .ok()
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    // The right key still opens it.
    serves(dir.path(), &production).await;
}

#[tokio::test]
async fn keys_reseal_moves_every_key_to_a_new_key_encryption_key_all_or_nothing() {
    const THIRD_KEK: &str = "a-third-key-encryption-key-0123456789abcdef";
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(dir.path());
    let old = env(&PRODUCTION, &[("KEY_ENCRYPTION_KEY", KEK)]);
    for _ in 0..2 {
        run_binary(&url, &["keys", "rotate"], &old).await.ok();
    }
    let server = serves(dir.path(), &old).await;
    let published = kids(&jwks_of(&server).await);
    assert_eq!(published.len(), 2, "{published:?}");
    let tokens = register(&server, "ada@example.com").await;
    // TOTP secrets are sealed under the same key-encryption key.
    let secret = enrol_totp(&server, &tokens.access).await;
    drop(server);

    // Refusals change nothing: no new key, a short one, the same one.
    run_binary(&url, &["keys", "reseal"], &old)
        .await
        .refused_with(&["NEW_KEY_ENCRYPTION_KEY is not set"]);
    let short = env(&old, &[("NEW_KEY_ENCRYPTION_KEY", "short")]);
    run_binary(&url, &["keys", "reseal"], &short)
        .await
        .refused_with(&["at least 32 bytes"]);
    let same = env(&old, &[("NEW_KEY_ENCRYPTION_KEY", KEK)]);
    run_binary(&url, &["keys", "reseal"], &same)
        .await
        .refused_with(&["already"]);

    let to_other = env(&old, &[("NEW_KEY_ENCRYPTION_KEY", OTHER_KEK)]);
    let out = run_binary(&url, &["keys", "reseal"], &to_other).await.ok();
    let mut resealed: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    resealed.sort();
    let mut expected = published.clone();
    expected.sort();
    assert_eq!(resealed, expected, "every key, by kid");
    assert!(
        out.stderr.contains("and 1 TOTP secret(s)"),
        "the TOTP secret is resealed too: {}",
        out.stderr
    );

    // The new key-encryption key opens the table: the same keys, the same tokens.
    let other = env(&PRODUCTION, &[("KEY_ENCRYPTION_KEY", OTHER_KEK)]);
    let server = serves(dir.path(), &other).await;
    assert_eq!(kids(&jwks_of(&server).await), published);
    assert!(
        me_ok(&server, &tokens.access, &tokens.user_id).await,
        "a token signed before the reseal still verifies"
    );
    // The TOTP secret opens under the new key: a login with a code goes through (before
    // the reseal learnt TOTP, this was INTERNAL_SERVER_ERROR: the secret stayed sealed
    // under the old key).
    let ticket = graphql(
        &server,
        "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
        json!({"i": {"email": "ada@example.com", "password": PASSWORD}}),
        None,
    )
    .await;
    assert_eq!(
        ticket["errors"][0]["extensions"]["code"], "MFA_REQUIRED",
        "{ticket}"
    );
    // The step after the one `confirmTotp` spent: accepted within ±1 of now, and unused.
    let code = code_of_base32(&secret, chrono::Utc::now() + chrono::Duration::seconds(30))
        .expect("a code");
    let verified = graphql(
        &server,
        "mutation($t: String!, $c: String!) { verifyMfa(mfaToken: $t, code: $c) { user { id } } }",
        json!({"t": ticket["errors"][0]["extensions"]["mfaToken"], "c": code}),
        None,
    )
    .await;
    assert_eq!(
        verified["data"]["verifyMfa"]["user"]["id"],
        tokens.user_id.as_str(),
        "{verified}"
    );
    drop(server);
    // The old one no longer does.
    let output = refuses_to_start(dir.path(), &old).await;
    assert!(output.contains("cannot be opened"), "{output}");
    // A reseal from the wrong key-encryption key names the key and writes nothing.
    let wrong = env(&old, &[("NEW_KEY_ENCRYPTION_KEY", THIRD_KEK)]);
    run_binary(&url, &["keys", "reseal"], &wrong)
        .await
        .refused_with(&["cannot be opened"]);
    let server = serves(dir.path(), &other).await;
    assert_eq!(kids(&jwks_of(&server).await), published);
}

#[tokio::test]
async fn development_with_a_key_encryption_key_makes_its_first_key_and_keeps_it_across_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let development = [("KEY_ENCRYPTION_KEY", KEK)];

    let first = serves(dir.path(), &development).await;
    let published = kids(&jwks_of(&first).await);
    assert_eq!(published.len(), 1, "{published:?}");
    let tokens = register(&first, "ada@example.com").await;
    assert_eq!(kid_of(&tokens.access), published[0]);
    assert!(
        first.output().contains("no signing key was stored"),
        "the first start warns that it made a key:\n{}",
        first.output()
    );
    drop(first);

    let second = serves(dir.path(), &development).await;
    assert_eq!(kids(&jwks_of(&second).await), published, "the same key");
    assert!(
        me_ok(&second, &tokens.access, &tokens.user_id).await,
        "a token of the first run verifies after the restart"
    );
    assert!(
        !second.output().contains("no signing key was stored"),
        "the restart made another key:\n{}",
        second.output()
    );
}

#[tokio::test]
async fn a_private_key_file_signs_and_public_key_files_are_published() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (signing, next) = (p256_key(), p256_key());
    let signing_path = dir.path().join("signing.pem");
    let next_path = dir.path().join("next.pem");
    std::fs::write(&signing_path, private_pem(&signing)).expect("write");
    std::fs::write(&next_path, public_pem(&next)).expect("write");
    let (signing_path, next_path) = (
        signing_path.display().to_string(),
        next_path.display().to_string(),
    );

    let server = serves(
        dir.path(),
        &[
            ("JWT_PRIVATE_KEY_FILE", &signing_path),
            ("JWT_PUBLIC_KEY_FILES", &next_path),
        ],
    )
    .await;
    let document = jwks_of(&server).await;
    assert_eq!(kids(&document).len(), 2, "{document}");
    let signing_kid = kid_with_x(&document, &x_of(&signing));
    let next_kid = kid_with_x(&document, &x_of(&next));

    // Tokens are signed by the file's key: checked with the PEM's own public half.
    let tokens = register(&server, "ada@example.com").await;
    assert_eq!(kid_of(&tokens.access), signing_kid);
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["auth-server"]);
    jsonwebtoken::decode::<Value>(
        &tokens.access,
        &DecodingKey::from_ec_pem(public_pem(&signing).as_bytes()).expect("PEM"),
        &validation,
    )
    .expect("signed by JWT_PRIVATE_KEY_FILE");
    verify_outside(&document, &tokens.access, Algorithm::ES256);
    assert!(me_ok(&server, &tokens.access, &tokens.user_id).await);

    // A published key is accepted too (it is the next one an operator will sign with).
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(next_kid);
    let next_encoding = {
        use p256::pkcs8::EncodePrivateKey;
        EncodingKey::from_ec_der(next.to_pkcs8_der().expect("PKCS#8").as_bytes())
    };
    let by_next =
        jsonwebtoken::encode(&header, &claims_of(&tokens), &next_encoding).expect("signs");
    assert!(me_ok(&server, &by_next, &tokens.user_id).await);
}

#[tokio::test]
async fn keys_commands_refuse_when_the_keys_come_from_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("signing.pem");
    std::fs::write(&path, private_pem(&p256_key())).expect("write");
    let path = path.display().to_string();
    let url = sqlite_url(dir.path());
    let files = [("JWT_PRIVATE_KEY_FILE", path.as_str())];

    run_binary(&url, &["keys", "rotate"], &files)
        .await
        .refused_with(&["JWT_PRIVATE_KEY_FILE", "replacing the file"]);
    run_binary(&url, &["keys", "retire", "any"], &files)
        .await
        .refused_with(&["JWT_PRIVATE_KEY_FILE"]);
    run_binary(&url, &["keys", "list"], &files)
        .await
        .refused_with(&["JWT_PRIVATE_KEY_FILE"]);
}

#[tokio::test]
async fn a_private_key_file_of_another_algorithm_refuses_to_start_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ed25519 = {
        use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
        let der = KeypairBytes {
            secret_key: [7u8; 32],
            public_key: None,
        }
        .to_pkcs8_der()
        .expect("PKCS#8");
        pem("PRIVATE KEY", der.as_bytes())
    };
    let ed25519_path = dir.path().join("ed25519.pem");
    std::fs::write(&ed25519_path, ed25519).expect("write");
    let p256_path = dir.path().join("p256.pem");
    std::fs::write(&p256_path, private_pem(&p256_key())).expect("write");
    let garbage_path = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage_path,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    let (ed25519_path, p256_path, garbage_path) = (
        ed25519_path.display().to_string(),
        p256_path.display().to_string(),
        garbage_path.display().to_string(),
    );

    for (file, algorithm) in [
        (&ed25519_path, "ES256"),
        (&p256_path, "EdDSA"),
        (&p256_path, "RS256"),
        (&garbage_path, "ES256"),
    ] {
        let output = refuses_to_start(
            dir.path(),
            &[
                ("JWT_PRIVATE_KEY_FILE", file.as_str()),
                ("JWT_ALGORITHM", algorithm),
            ],
        )
        .await;
        assert!(
            output.contains("JWT_PRIVATE_KEY_FILE"),
            "{file} with {algorithm}:\n{output}"
        );
    }
    // The right algorithm for the same file starts.
    serves(
        dir.path(),
        &[
            ("JWT_PRIVATE_KEY_FILE", &ed25519_path),
            ("JWT_ALGORITHM", "EdDSA"),
        ],
    )
    .await;
}
