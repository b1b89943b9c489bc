//! A real SMTP server for the mail tests: `tests/smtp/sink.py` (Python's aiosmtpd) on a
//! free port, writing each message it accepts to a file; killed when dropped, and
//! stoppable and restartable on its port to play an outage.
//!
//! `.ci/smtp-deps` installs aiosmtpd. `build.rs` turns on `cfg(test_smtp)` when `python3`
//! can import it; without it the tests that need it are compiled as ignored, and in CI
//! (`CI` set) a build without it fails [`ci_builds_run_the_smtp_tests`].

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use auth_server::clock::ManualClock;
use auth_server::config::Settings;
use secrecy::SecretString;

use crate::helpers::{Backend, TestApp, free_addr, spawn_app_with_clock};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp/sink.py");

/// As `backend_tests!`, for tests that also need the SMTP sink: ignored in a build
/// whose `python3` lacks aiosmtpd (see `crate::smtp`).
#[macro_export]
macro_rules! smtp_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(test_smtp), ignore = "python3 cannot import aiosmtpd (run .ci/smtp-deps)")]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(all(test_mysql, test_smtp)), ignore = "needs TEST_MYSQL_URL at build time and aiosmtpd")]
                async fn mysql() {
                    $crate::helpers::Backend::Mysql.require();
                    super::$name($crate::helpers::Backend::Mysql).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(all(test_postgres, test_smtp)), ignore = "needs TEST_POSTGRES_URL at build time and aiosmtpd")]
                async fn postgres() {
                    $crate::helpers::Backend::Postgres.require();
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

/// The server on `backend`, sending to `sink`, judging time by a clock the test moves.
pub async fn spawn_with_sink(backend: Backend, sink: &SmtpSink) -> (TestApp, ManualClock) {
    spawn_with_sink_and(backend, sink, |_| {}).await
}

/// As [`spawn_with_sink`], with `configure` applied to the settings afterwards.
pub async fn spawn_with_sink_and(
    backend: Backend,
    sink: &SmtpSink,
    configure: impl FnOnce(&mut Settings),
) -> (TestApp, ManualClock) {
    let url = sink.url();
    spawn_app_with_clock(backend, move |s| {
        s.mail.smtp_url = Some(SecretString::from(url));
        configure(s);
    })
    .await
}

/// A running sink and the messages it received.
pub struct SmtpSink {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope's recipients (`RCPT TO`).
    pub rcpt: Vec<String>,
    /// The message's header block, folded lines joined.
    pub headers: Vec<String>,
    pub body: String,
}

impl Received {
    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            let (key, value) = h.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

impl SmtpSink {
    /// Starts a sink on a free port and waits until it answers. A port found free can be
    /// taken (by another test's outgoing connection) before the sink binds it: then it
    /// tries another.
    pub fn start() -> Self {
        let mut sink = Self {
            port: 0,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        for _ in 0..10 {
            sink.port = free_addr().port();
            if sink.launch() {
                return sink;
            }
        }
        panic!(
            "the SMTP sink did not start on any of 10 free ports (is aiosmtpd installed? run .ci/smtp-deps)"
        );
    }

    /// `smtp://` (plain: a local relay) to this sink.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Kills the server: connections to its port are refused until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, keeping what it received; retried for up
    /// to 5 s while the port is still held.
    pub fn restart(&mut self) {
        self.stop();
        for _ in 0..50 {
            if self.launch() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "the SMTP sink did not start again on port {} (is aiosmtpd installed? run .ci/smtp-deps)",
            self.port
        );
    }

    /// Runs the sink on `self.port`; whether it said it is ready (it exits when it cannot
    /// bind the port).
    fn launch(&mut self) -> bool {
        let mut child = Command::new("python3")
            .arg(SCRIPT)
            .arg(self.port.to_string())
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 starts (run .ci/smtp-deps)");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() == "ready" {
            self.child = Some(child);
            true
        } else {
            let _ = child.kill();
            let _ = child.wait();
            false
        }
    }

    /// Every message received so far, in no particular order.
    pub fn messages(&self) -> Vec<Received> {
        read_all(self.dir.path())
    }

    /// Waits up to `limit` until at least `n` messages arrived, then a moment longer for
    /// any extra one (a duplicate), and returns them all.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let start = Instant::now();
        while self.messages().len() < n && start.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.messages()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_all(dir: &Path) -> Vec<Received> {
    let mut messages = Vec::new();
    for entry in std::fs::read_dir(dir).expect("sink directory") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "eml") {
            let raw = std::fs::read_to_string(&path).expect("a message in UTF-8");
            messages.push(parse(&raw));
        }
    }
    messages
}

fn parse(raw: &str) -> Received {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let mut headers: Vec<String> = Vec::new();
    for line in head.lines() {
        match headers.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => headers.push(line.to_owned()),
        }
    }
    let rcpt = headers
        .iter()
        .filter_map(|h| h.strip_prefix("X-Sink-Rcpt: "))
        .map(str::to_owned)
        .collect();
    Received {
        rcpt,
        headers,
        body: body.to_owned(),
    }
}

/// In CI the SMTP tests must run: a build without aiosmtpd fails here.
#[test]
fn ci_builds_run_the_smtp_tests() {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        assert_eq!(
            [cfg!(test_smtp)],
            [true],
            "aiosmtpd was not importable by python3 when the tests were built: run \
             .ci/smtp-deps before cargo test"
        );
    }
}
