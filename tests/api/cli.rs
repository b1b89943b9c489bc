//! The real `auth-server` binary: `schema`, `--help`, `migrate up|down|status|fresh`, and
//! `serve`'s start-up checks.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::helpers::free_addr;

const BIN: &str = env!("CARGO_BIN_EXE_auth-server");
const MIGRATIONS: [&str; 13] = [
    "m20261122_000001_create_users",
    "m20261122_000002_create_sessions",
    "m20261122_000003_create_refresh_tokens",
    "m20261122_000004_binary_collation_for_lookup_keys",
    "m20261201_000005_email_skeleton",
    "m20261201_000006_create_mail_outbox",
    "m20261201_000007_account_lifecycle",
    "m20261202_000008_signing_keys",
    "m20261202_000009_session_activity_and_security_events",
    "m20261202_000010_token_hashes_as_varchar",
    "m20261202_000011_second_factors",
    "m20261202_000012_passkeys",
    "m20261204_000013_refresh_chains",
];
const GOOD_ACCESS: &str = "production-access-secret-0123456789abcdef";
const GOOD_REFRESH: &str = "production-refresh-secret-0123456789abcdef";
const GOOD_KEK: &str = "production-key-encryption-key-0123456789abcdef";

/// The binary with a clean environment, run in `dir` (so no stray `.env` is read), on a
/// SQLite file inside it.
fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .current_dir(dir)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/cli.db?mode=rwc", dir.display()),
        )
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs to completion, failing the test if it takes longer than `limit`.
fn run(mut cmd: Command, args: &[&str], limit: Duration) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let started = Instant::now();
    let mut child = Guard(
        cmd.args(args)
            .stdout(File::create(&out_path).expect("stdout file"))
            .stderr(File::create(&err_path).expect("stderr file"))
            .spawn()
            .expect("the binary starts"),
    );
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
            panic!(
                "`auth-server {}` still runs after {limit:?}; stderr:\n{stderr}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Outcome {
        status,
        stdout: std::fs::read_to_string(&out_path).expect("stdout"),
        stderr: std::fs::read_to_string(&err_path).expect("stderr"),
        elapsed: started.elapsed(),
    }
}

fn run_ok(dir: &Path, args: &[&str]) -> Outcome {
    let out = run(command(dir), args, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "`auth-server {}` failed with {}:\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status,
        out.stdout,
        out.stderr
    );
    out
}

/// Kills the child when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `(status, migration)` pairs printed by `migrate status`.
fn migration_status(dir: &Path) -> Vec<(String, String)> {
    let out = run_ok(dir, &["migrate", "status"]);
    out.stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (status, name) = (words.next()?, words.next()?);
            name.starts_with('m')
                .then(|| (status.to_owned(), name.to_owned()))
        })
        .filter(|(_, name)| MIGRATIONS.contains(&name.as_str()))
        .collect()
}

fn expect_status(dir: &Path, applied: usize) {
    let expected: Vec<(String, String)> = MIGRATIONS
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let status = if i < applied { "Applied" } else { "Pending" };
            (status.to_owned(), (*m).to_owned())
        })
        .collect();
    assert_eq!(migration_status(dir), expected);
}

/// `serve` in production with `extra` variables, expected to refuse to start.
fn serve_refuses(extra: &[(&str, &str)]) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = command(dir.path());
    cmd.env("PORT", free_addr().port().to_string());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = run(cmd, &["serve"], Duration::from_secs(10));
    assert!(!out.status.success(), "the server started: {}", out.stderr);
    assert!(
        out.elapsed < Duration::from_secs(5),
        "refusing took {:?}",
        out.elapsed
    );
    out
}

/// `serve` with `extra` refuses to start and its error names `var`.
fn serve_refuses_naming(extra: &[(&str, &str)], var: &str) {
    let out = serve_refuses(extra);
    assert!(
        out.stderr.contains(var),
        "{extra:?}: no {var} in stderr:\n{}",
        out.stderr
    );
}

#[test]
fn the_schema_command_prints_the_sdl_of_the_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_ok(dir.path(), &["schema"]);
    assert_eq!(out.stdout, auth_server::graphql::sdl());
    // It touches no database.
    assert!(
        !dir.path().join("cli.db").exists(),
        "`schema` created a database"
    );
}

#[test]
fn help_lists_the_serve_migrate_keys_and_schema_commands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_ok(dir.path(), &["--help"]);
    for command in ["serve", "migrate", "keys", "schema"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(command)),
            "--help does not list {command}:\n{}",
            out.stdout
        );
    }
    let out = run_ok(dir.path(), &["migrate", "--help"]);
    for action in ["up", "down", "status", "fresh"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(action)),
            "migrate --help does not list {action}:\n{}",
            out.stdout
        );
    }
    let out = run_ok(dir.path(), &["keys", "--help"]);
    for action in ["list", "rotate", "retire", "reseal"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(action)),
            "keys --help does not list {action}:\n{}",
            out.stdout
        );
    }
    for args in [
        &["serve", "--help"][..],
        &["keys", "retire", "--help"],
        &["schema", "--help"],
        &["migrate", "down", "--help"],
    ] {
        let out = run_ok(dir.path(), args);
        assert!(out.stdout.contains("Usage"), "{args:?}:\n{}", out.stdout);
    }
    let bad = run(
        command(dir.path()),
        &["frobnicate"],
        Duration::from_secs(10),
    );
    assert!(!bad.status.success());
}

#[test]
fn migrate_up_applies_every_migration_and_status_lists_them_as_applied() {
    let dir = tempfile::tempdir().expect("temp dir");
    expect_status(dir.path(), 0);
    run_ok(dir.path(), &["migrate", "up"]);
    expect_status(dir.path(), MIGRATIONS.len());
    // Applying again is a no-op.
    run_ok(dir.path(), &["migrate", "up"]);
    expect_status(dir.path(), MIGRATIONS.len());
}

#[test]
fn migrate_down_rolls_back_only_the_last_migration() {
    let dir = tempfile::tempdir().expect("temp dir");
    run_ok(dir.path(), &["migrate", "up"]);
    run_ok(dir.path(), &["migrate", "down"]);
    expect_status(dir.path(), MIGRATIONS.len() - 1);
    let rest = (MIGRATIONS.len() - 1).to_string();
    run_ok(dir.path(), &["migrate", "down", "--steps", &rest]);
    expect_status(dir.path(), 0);
    run_ok(dir.path(), &["migrate", "up"]);
    expect_status(dir.path(), MIGRATIONS.len());
}

#[test]
fn migrate_fresh_rebuilds_every_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    run_ok(dir.path(), &["migrate", "fresh"]);
    expect_status(dir.path(), MIGRATIONS.len());
    run_ok(dir.path(), &["migrate", "down"]);
    run_ok(dir.path(), &["migrate", "fresh"]);
    expect_status(dir.path(), MIGRATIONS.len());
}

#[test]
fn serve_in_production_without_its_secrets_exits_naming_the_first_missing() {
    // Signing keys (the default): the refresh secret, then the key-encryption key.
    serve_refuses_naming(&[("APP_ENV", "production")], "JWT_REFRESH_SECRET");
    serve_refuses_naming(
        &[
            ("APP_ENV", "production"),
            ("JWT_REFRESH_SECRET", GOOD_REFRESH),
        ],
        "KEY_ENCRYPTION_KEY",
    );
    // The legacy HS256: the access secret signs, and comes first.
    serve_refuses_naming(
        &[("APP_ENV", "production"), ("JWT_ALGORITHM", "HS256")],
        "JWT_ACCESS_SECRET",
    );
    serve_refuses_naming(
        &[
            ("APP_ENV", "production"),
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_ACCESS_SECRET", GOOD_ACCESS),
        ],
        "JWT_REFRESH_SECRET",
    );
}

#[test]
fn serve_in_production_with_secrets_shorter_than_32_bytes_exits_naming_them() {
    let short = "s".repeat(31);
    serve_refuses_naming(
        &[
            ("APP_ENV", "production"),
            ("JWT_ACCESS_SECRET", &short),
            ("JWT_REFRESH_SECRET", GOOD_REFRESH),
        ],
        "JWT_ACCESS_SECRET",
    );
    serve_refuses_naming(
        &[
            ("APP_ENV", "production"),
            ("JWT_ACCESS_SECRET", GOOD_ACCESS),
            ("JWT_REFRESH_SECRET", "too-short"),
        ],
        "JWT_REFRESH_SECRET",
    );
}

#[test]
fn serve_in_production_without_smtp_url_exits_naming_it() {
    serve_refuses_naming(
        &[
            ("APP_ENV", "production"),
            ("JWT_ACCESS_SECRET", GOOD_ACCESS),
            ("JWT_REFRESH_SECRET", GOOD_REFRESH),
            ("KEY_ENCRYPTION_KEY", GOOD_KEK),
        ],
        "SMTP_URL",
    );
}

#[test]
fn an_invalid_port_exits_naming_port() {
    for port in ["http", "70000", "-1"] {
        serve_refuses_naming(&[("PORT", port)], "PORT");
    }
}

/// Starts `serve` (or the default command) on a free port and waits for `/health`.
async fn serve_until_healthy(dir: &TempDir, args: &[&str], extra: &[(&str, &str)]) {
    let port = free_addr().port();
    let mut cmd = command(dir.path());
    cmd.env("HOST", "127.0.0.1").env("PORT", port.to_string());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let err_path = dir.path().join("serve.stderr");
    let mut child = Guard(
        cmd.args(args)
            .stdout(Stdio::null())
            .stderr(File::create(&err_path).expect("stderr file"))
            .spawn()
            .expect("the binary starts"),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let url = format!("http://127.0.0.1:{port}/health");
    let started = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
            panic!("the server exited with {status}:\n{stderr}");
        }
        if let Ok(resp) = client.get(&url).send().await {
            assert_eq!(resp.status(), 200);
            let body: serde_json::Value = resp.json().await.expect("JSON health");
            assert_eq!(body, serde_json::json!({"status": "ok", "database": "up"}));
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
            panic!("/health did not answer within 10 s:\n{stderr}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Stopped by the guard.
    drop(child);
}

#[tokio::test]
async fn serve_in_production_with_valid_secrets_starts_and_migrates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let production = [
        ("APP_ENV", "production"),
        ("JWT_REFRESH_SECRET", GOOD_REFRESH),
        ("KEY_ENCRYPTION_KEY", GOOD_KEK),
        ("SMTP_URL", "smtp://127.0.0.1:2525"),
    ];
    // Production makes no signing key by itself: the operator makes the first one.
    let mut rotate = command(dir.path());
    rotate.envs(production);
    let out = run(rotate, &["keys", "rotate"], Duration::from_secs(60));
    assert!(out.status.success(), "{}", out.stderr);
    serve_until_healthy(&dir, &["serve"], &production).await;
    // `keys rotate` applied the migrations, and `serve` found nothing left to apply.
    expect_status(dir.path(), MIGRATIONS.len());
}

#[tokio::test]
async fn serve_in_production_with_the_legacy_hs256_secrets_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    serve_until_healthy(
        &dir,
        &["serve"],
        &[
            ("APP_ENV", "production"),
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_ACCESS_SECRET", GOOD_ACCESS),
            ("JWT_REFRESH_SECRET", GOOD_REFRESH),
            ("SMTP_URL", "smtp://127.0.0.1:2525"),
        ],
    )
    .await;
    expect_status(dir.path(), MIGRATIONS.len());
}

#[tokio::test]
async fn without_a_command_the_binary_serves() {
    let dir = tempfile::tempdir().expect("temp dir");
    serve_until_healthy(&dir, &[], &[]).await;
}
