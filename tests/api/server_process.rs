//! The real `auth-server` binary as a child process (killed when dropped), for tests that
//! need several processes or process-wide limits: start it, wait for `/health`, wait for it
//! to exit, read its output (log and errors).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{ACCESS_SECRET, REFRESH_SECRET, free_addr};

pub const BIN: &str = env!("CARGO_BIN_EXE_auth-server");

/// A running (or exited) `auth-server` child; killed on drop.
pub struct ServerProcess {
    child: Child,
    /// The port it was told to listen on (meaningful for `serve`).
    pub port: u16,
    output_path: PathBuf,
}

/// The binary with a clean environment on `database_url`, run in `dir` (no stray `.env`),
/// with `args`, cheap bcrypt and fixed secrets, plus `extra` variables. `wrapper` (e.g.
/// `["prlimit", "--nofile=1024:1024"]`) runs it under another program that execs it.
pub fn spawn(
    dir: &Path,
    database_url: &str,
    args: &[&str],
    extra: &[(&str, &str)],
    wrapper: &[&str],
) -> ServerProcess {
    let port = free_addr().port();
    let output_path = dir.join(format!("server-{}.log", uuid::Uuid::new_v4().simple()));
    let mut cmd = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut cmd = Command::new(program);
            cmd.args(rest).arg(BIN);
            cmd
        }
        None => Command::new(BIN),
    };
    cmd.env_clear()
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("BCRYPT_COST", "4")
        .env("JWT_ACCESS_SECRET", ACCESS_SECRET)
        .env("JWT_REFRESH_SECRET", REFRESH_SECRET)
        .env("RUST_LOG", "info")
        .envs(extra.iter().copied())
        .args(args)
        .stdin(Stdio::null());
    // Logs go to stdout, errors to stderr: both into one file.
    let output = File::create(&output_path).expect("output file");
    cmd.stdout(output.try_clone().expect("output file"))
        .stderr(output);
    let child = cmd.spawn().expect("the binary starts");
    ServerProcess {
        child,
        port,
        output_path,
    }
}

impl ServerProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What it wrote to stdout (its log) and stderr so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.output_path).unwrap_or_default()
    }

    /// Waits until `/health` answers 200 with the database up, within `limit`; panics with
    /// its output if it exits first or does not answer in time.
    pub async fn wait_healthy(&mut self, limit: Duration) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                panic!("the server exited with {status}:\n{}", self.output());
            }
            if let Ok(resp) = client.get(self.url("/health")).send().await {
                assert_eq!(resp.status(), 200, "{}", self.output());
                let body: serde_json::Value = resp.json().await.expect("JSON health");
                assert_eq!(body, serde_json::json!({"status": "ok", "database": "up"}));
                return;
            }
            assert!(
                started.elapsed() < limit,
                "/health did not answer within {limit:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its exit status if it has exited, without waiting.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    /// Waits for it to exit, within `limit`; panics with its output otherwise.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "still running after {limit:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
