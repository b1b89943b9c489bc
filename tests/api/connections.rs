//! Connection exhaustion: silent, trickling and idle connections are closed on time, the
//! number of open connections is bounded, and `/health` keeps answering with more idle
//! sockets open than the process has descriptors.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;
use crate::server_process::spawn;

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect")
}

/// Reads (and discards) until the server closes the connection; returns when that
/// happened, or `None` if it is still open after `limit`.
async fn closed_after(
    stream: &mut TcpStream,
    started: Instant,
    limit: Duration,
) -> Option<Duration> {
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads one `/health` response (headers and its small body) from a kept-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    read_until(stream, "\"database\"").await
}

/// Reads a response until its text contains `marker` (failing after 5 s or at a close).
async fn read_until(stream: &mut TcpStream, marker: &str) -> String {
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&text).contains(marker) {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, stream.read(&mut buf))
            .await
            .expect("a response within 5 s")
            .expect("read");
        assert!(
            n > 0,
            "closed before a response: {}",
            String::from_utf8_lossy(&text)
        );
        text.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_the_header_read_timeout() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.http.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    let started = Instant::now();
    let mut silent = connect(&app).await;
    let closed = closed_after(&mut silent, started, Duration::from_secs(5)).await;
    let closed = closed.expect("a silent connection is still open after 5 s");
    assert!(
        closed >= Duration::from_millis(400),
        "closed after {closed:?}"
    );
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
    app.assert_still_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_trickling_header_lines_is_closed_after_the_header_read_timeout() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.http.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let started = Instant::now();
    let (mut reader, mut writer) = connect(&app).await.into_split();
    // One header line every 200 ms, never the blank line that ends the head.
    let trickle = tokio::spawn(async move {
        writer.write_all(b"GET /health HTTP/1.1\r\n").await?;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        for i in 0u32.. {
            tick.tick().await;
            writer
                .write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
                .await?;
        }
        Ok::<(), std::io::Error>(())
    });
    let mut buf = [0u8; 1024];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buf)).await {
            Err(_) => panic!("a trickling connection is still open after 5 s"),
            Ok(Ok(0)) | Ok(Err(_)) => break started.elapsed(),
            Ok(Ok(_)) => {}
        }
    };
    trickle.abort();
    assert!(
        closed >= Duration::from_millis(900),
        "closed after {closed:?}"
    );
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_serves_requests_then_closes_after_the_keep_alive_timeout() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.http.header_read_timeout = Duration::from_millis(300);
        s.http.keep_alive_timeout = Some(Duration::from_millis(1500));
    })
    .await;
    let mut conn = connect(&app).await;
    for _ in 0..2 {
        conn.write_all(HEALTH).await.expect("send");
        let response = read_response(&mut conn).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    let idle_from = Instant::now();
    let closed = closed_after(&mut conn, idle_from, Duration::from_secs(5))
        .await
        .expect("an idle kept-alive connection is still open after 5 s");
    // Idle longer than the header timeout: the keep-alive timeout applies between requests.
    assert!(
        closed >= Duration::from_millis(1300),
        "closed after {closed:?}"
    );
    assert!(closed < Duration::from_secs(4), "closed after {closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_bound_a_new_connection_waits_until_one_closes() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.http.max_connections = 3;
        s.http.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    // Three connections in the middle of a request head hold every slot.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = connect(&app).await;
        c.write_all(b"GET /health HTTP/1.1\r\n")
            .await
            .expect("send");
        held.push(c);
    }
    let mut waiting = connect(&app).await;
    waiting.write_all(HEALTH).await.expect("send");
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut buf)).await;
    assert!(early.is_err(), "served beyond the bound: {early:?}");
    // One slot frees: the waiting connection is accepted and answered.
    drop(held.pop());
    let response = read_response(&mut waiting).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// Whether the server has closed `stream` (reading `0` or an error within `within`),
/// with nothing sent on it before.
async fn is_closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    match tokio::time::timeout(within, stream.read(&mut buf)).await {
        Err(_) => false,
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(n)) => panic!("unexpected bytes: {}", String::from_utf8_lossy(&buf[..n])),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_bound_an_idle_kept_alive_connection_is_closed_to_serve_a_new_one() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.http.max_connections = 2;
        s.http.header_read_timeout = Duration::from_secs(30);
        s.http.keep_alive_timeout = Some(Duration::from_secs(60));
    })
    .await;
    // One kept-alive connection idle after a request, one in the middle of a request head.
    let mut kept = connect(&app).await;
    kept.write_all(HEALTH).await.expect("send");
    let response = read_response(&mut kept).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let mut started = connect(&app).await;
    started
        .write_all(b"GET /health HTTP/1.1\r\n")
        .await
        .expect("send");

    let asked = Instant::now();
    let mut new = connect(&app).await;
    new.write_all(HEALTH).await.expect("send");
    let response = read_response(&mut new).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let waited = asked.elapsed();
    assert!(waited < Duration::from_secs(2), "served after {waited:?}");
    assert!(
        is_closed_within(&mut kept, Duration::from_secs(2)).await,
        "the idle kept-alive connection is still open"
    );
    // The connection that had begun its request head was not cut: it finishes and is served.
    started
        .write_all(b"Host: localhost\r\n\r\n")
        .await
        .expect("send");
    let response = read_response(&mut started).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_bound_a_request_in_flight_is_not_cut() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.http.max_connections = 1;
        s.http.header_read_timeout = Duration::from_secs(30);
        s.http.keep_alive_timeout = Some(Duration::from_secs(60));
    })
    .await;
    // A request whose body is still arriving holds the only slot.
    let body = br#"{"query":"{ __typename }"}"#;
    let (first, rest) = body.split_at(10);
    let mut in_flight = connect(&app).await;
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    in_flight.write_all(head.as_bytes()).await.expect("send");
    in_flight.write_all(first).await.expect("send");

    let mut new = connect(&app).await;
    new.write_all(HEALTH).await.expect("send");
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), new.read(&mut buf)).await;
    assert!(early.is_err(), "served beyond the bound: {early:?}");
    assert!(
        !is_closed_within(&mut in_flight, Duration::from_millis(50)).await,
        "the request in flight was cut"
    );

    // The request completes and is answered; its connection, idle now, makes room.
    in_flight.write_all(rest).await.expect("send");
    let response = read_until(&mut in_flight, "__typename").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains(r#"{"data":{"__typename":"Query"}}"#),
        "{response}"
    );
    let idle_from = Instant::now();
    let response = read_response(&mut new).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let waited = idle_from.elapsed();
    assert!(waited < Duration::from_secs(2), "served after {waited:?}");
    assert!(
        is_closed_within(&mut in_flight, Duration::from_secs(2)).await,
        "the connection idle after its request is still open"
    );
}

/// Raises this test process's own descriptor limit (it opens more than 1,024 sockets).
fn raise_own_descriptor_limit() {
    let limit = auth_server::http::raise_descriptor_limit();
    assert!(
        limit.is_some_and(|l| l >= 1_200),
        "the test needs 1,200 descriptors; hard limit {limit:?}"
    );
}

/// `Max open files` (soft, hard) of a process, from /proc.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let mut words = line["Max open files".len()..].split_whitespace();
    let soft = words.next().expect("soft").to_owned();
    let hard = words.next().expect("hard").to_owned();
    (soft, hard)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_keeps_answering_with_1100_idle_sockets_open_under_a_1024_descriptor_limit() {
    raise_own_descriptor_limit();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/auth.db?mode=rwc", dir.path().display());
    // The documented defaults: the idle sockets would hold their slots for 10 s.
    let mut server = spawn(
        dir.path(),
        &url,
        &["serve"],
        &[],
        &["prlimit", "--nofile=1024:1024"],
    );
    server.wait_healthy(Duration::from_secs(20)).await;
    assert_eq!(
        open_file_limits(server.pid()),
        ("1024".into(), "1024".into())
    );

    let mut idle = Vec::with_capacity(1_100);
    for _ in 0..1_100 {
        let socket = TcpStream::connect(("127.0.0.1", server.port))
            .await
            .expect("connect");
        idle.push(socket);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    for _ in 0..3 {
        let started = Instant::now();
        let resp = client.get(server.url("/health")).send().await;
        let resp = resp.unwrap_or_else(|e| {
            panic!(
                "/health did not answer with 1,100 idle sockets open: {e}\n{}",
                server.output()
            )
        });
        assert_eq!(resp.status(), 200);
        // Idle connections are closed to make room: no wait for their header timeout.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "/health answered after {:?}",
            started.elapsed()
        );
    }
    let output = server.output();
    assert!(!output.contains("Too many open files"), "{output}");
    assert!(
        output.contains("lowered"),
        "the bound was not lowered:\n{output}"
    );
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soft_descriptor_limit_is_raised_to_the_hard_limit_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/auth.db?mode=rwc", dir.path().display());
    let mut server = spawn(
        dir.path(),
        &url,
        &["serve"],
        &[],
        &["prlimit", "--nofile=256:4096"],
    );
    server.wait_healthy(Duration::from_secs(20)).await;
    assert_eq!(
        open_file_limits(server.pid()),
        ("4096".into(), "4096".into())
    );
    assert!(
        server.output().contains("raised the open-file limit"),
        "{}",
        server.output()
    );
}
