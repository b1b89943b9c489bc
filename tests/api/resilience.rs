//! The database goes away and comes back: `/health` says so, operations fail cleanly and
//! quickly with INTERNAL_SERVER_ERROR, and the server recovers without a restart.
//!
//! The server reaches MySQL/PostgreSQL through a TCP proxy owned by the test, which is
//! stopped (every connection cut, the port closed) and restarted on the same port.
//! SQLite is embedded (no connection to lose), so these run on the server backends only.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::*;

/// Forwards 127.0.0.1:`port` to `target` until stopped.
struct Proxy {
    port: u16,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(port: u16, target: SocketAddr) -> Proxy {
        let listener = bind_retrying(port).await;
        let port = listener.local_addr().expect("addr").port();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let conns = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().expect("lock").push(conn);
            }
        });
        tasks.lock().expect("lock").push(accept);
        Proxy {
            port,
            target,
            tasks,
        }
    }

    /// Closes the port and cuts every forwarded connection.
    fn stop(&self) {
        for task in self.tasks.lock().expect("lock").drain(..) {
            task.abort();
        }
    }

    async fn restart(&self) -> Proxy {
        Proxy::start(self.port, self.target).await
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn bind_retrying(port: u16) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => return l,
            Err(e) if Instant::now() > deadline => panic!("cannot bind proxy port {port}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// host:port of a database URL.
fn server_addr(url: &str) -> SocketAddr {
    let after_scheme = &url[url.find("://").expect("scheme") + 3..];
    let authority = after_scheme.split(['/', '?']).next().expect("authority");
    let host_port = authority.rsplit('@').next().expect("host");
    let (host, port) = host_port.rsplit_once(':').expect("URL names a port");
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{port}").parse().expect("host:port")
}

fn through_proxy(url: &str, proxy_port: u16) -> String {
    let target = server_addr(url);
    let original = url
        .find(&format!(":{}", target.port()))
        .expect("port in URL");
    let host_start = url[..original].rfind(['@', '/']).expect("host start") + 1;
    format!(
        "{}127.0.0.1:{}{}",
        &url[..host_start],
        proxy_port,
        &url[original + 1 + target.port().to_string().len()..]
    )
}

async fn health(app: &TestApp) -> (u16, serde_json::Value) {
    let resp = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("health answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

async fn the_server_reports_an_outage_and_recovers_by_itself(backend: Backend) {
    let var = match backend {
        Backend::Mysql => "TEST_MYSQL_URL",
        Backend::Postgres => "TEST_POSTGRES_URL",
        Backend::Sqlite => unreachable!("server backends only"),
    };
    let target = server_addr(&std::env::var(var).expect("checked"));
    let proxy = Proxy::start(0, target).await;
    let proxy_port = proxy.port;
    let app = spawn_app_with(backend, |s| {
        let url = secrecy::ExposeSecret::expose_secret(&s.database.url).to_owned();
        s.database.url = secrecy::SecretString::from(through_proxy(&url, proxy_port));
        s.database.acquire_timeout = Duration::from_secs(1);
        s.database.statement_timeout = Duration::from_secs(2);
        s.database.max_connections = 3;
    })
    .await;
    let tokens = app.register_ok("outage@example.com").await;
    assert_eq!(
        health(&app).await,
        (200, json!({"status": "ok", "database": "up"}))
    );

    proxy.stop();

    let started = Instant::now();
    let (status, body) = health(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["database"], "down");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "health took {:?}",
        started.elapsed()
    );

    for op in ["me", "login", "register"] {
        let started = Instant::now();
        let r = match op {
            "me" => app.me(Some(&tokens.access)).await,
            "login" => app.login_email("outage@example.com", PASSWORD).await,
            _ => app.register("new@example.com", PASSWORD, None).await,
        };
        let error = r.expect_error("INTERNAL_SERVER_ERROR");
        assert_eq!(
            error["message"], "internal server error",
            "no detail leaks: {}",
            r.body
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{op} took {:?} while the database was down",
            started.elapsed()
        );
    }

    let _proxy = proxy.restart().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if health(&app).await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        app.me_ok(&tokens.access).await,
        "the session survived the outage"
    );
    app.login_email("outage@example.com", PASSWORD)
        .await
        .data("login");
}

crate::server_backend_tests!(the_server_reports_an_outage_and_recovers_by_itself);

#[test]
fn urls_are_rewritten_to_go_through_the_proxy() {
    assert_eq!(
        through_proxy("mysql://root@127.0.0.1:3306/auth_test_x", 9999),
        "mysql://root@127.0.0.1:9999/auth_test_x"
    );
    assert_eq!(
        through_proxy("postgres://postgres@localhost:5432/db?sslmode=disable", 7),
        "postgres://postgres@127.0.0.1:7/db?sslmode=disable"
    );
    assert_eq!(server_addr("postgres://u:p@127.0.0.1:5432/x").port(), 5432);
}
