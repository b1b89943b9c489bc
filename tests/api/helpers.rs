//! `spawn_app` and `TestApp`: a running server on a fresh database, one helper per operation.
//!
//! Every test runs once per backend through [`backend_tests!`]: on SQLite always, and on
//! MySQL/MariaDB and PostgreSQL when `TEST_MYSQL_URL` / `TEST_POSTGRES_URL` name a server
//! (each test then gets its own uniquely named database, dropped afterwards).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use auth_server::auth::AuthService;
use auth_server::clock::ManualClock;
use auth_server::config::Settings;
use auth_server::jobs::MailWorker;
use auth_server::{Application, Collaborators};
use reqwest::header::HeaderMap;
use reqwest::{Client, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};

pub const ACCESS_SECRET: &str = "test-access-secret-0123456789abcdef0123456789";
pub const REFRESH_SECRET: &str = "test-refresh-secret-0123456789abcdef012345678";
pub const PASSWORD: &str = "correct horse battery";

/// Generates one `#[tokio::test]` per backend for each listed `async fn(Backend)`. The
/// MySQL and PostgreSQL variants are compiled as ignored unless `TEST_MYSQL_URL` /
/// `TEST_POSTGRES_URL` were set when the tests were built (see `build.rs`), so a run
/// without those servers reports them as ignored, never as passed.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(test_mysql), ignore = "TEST_MYSQL_URL was not set at build time")]
                async fn mysql() {
                    $crate::helpers::Backend::Mysql.require();
                    super::$name($crate::helpers::Backend::Mysql).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(test_postgres), ignore = "TEST_POSTGRES_URL was not set at build time")]
                async fn postgres() {
                    $crate::helpers::Backend::Postgres.require();
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

/// As [`backend_tests!`], for tests that only a database server can run (a proxy in front
/// of it, a connection killed from outside): the MySQL and PostgreSQL variants only.
#[macro_export]
macro_rules! server_backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(test_mysql), ignore = "TEST_MYSQL_URL was not set at build time")]
                async fn mysql() {
                    $crate::helpers::Backend::Mysql.require();
                    super::$name($crate::helpers::Backend::Mysql).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(test_postgres), ignore = "TEST_POSTGRES_URL was not set at build time")]
                async fn postgres() {
                    $crate::helpers::Backend::Postgres.require();
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Mysql,
    Postgres,
}

impl Backend {
    fn env_var(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Mysql => Some("TEST_MYSQL_URL"),
            Backend::Postgres => Some("TEST_POSTGRES_URL"),
        }
    }

    /// Fails the test when this backend's server is not configured: a test that reaches
    /// here was compiled to run on it (or was asked for with `--ignored`), and passing
    /// without touching the database would be a lie.
    pub fn require(self) {
        if let Some(var) = self.env_var() {
            assert!(
                std::env::var(var).is_ok_and(|v| !v.is_empty()),
                "{var} is not set: this {self:?} test cannot run (set it, or run without \
                 `--ignored` after building without it)"
            );
        }
    }
}

/// A database created for one test and removed when the test ends.
enum TestDatabase {
    Sqlite(tempfile::TempDir),
    Server {
        admin_url: String,
        name: String,
        backend: Backend,
    },
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Server {
            admin_url,
            name,
            backend,
        } = self
        {
            let (admin_url, name, backend) = (admin_url.clone(), name.clone(), *backend);
            // Drop runs inside the test's runtime; use a thread with its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let admin = sea_orm::Database::connect(&admin_url).await?;
                    let sql = match backend {
                        Backend::Postgres => {
                            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")
                        }
                        _ => format!("DROP DATABASE IF EXISTS `{name}`"),
                    };
                    sea_orm::ConnectionTrait::execute_unprepared(&admin, &sql).await?;
                    admin.close().await
                })
                .map_err(|e| std::io::Error::other(e.to_string()))
            })
            .join();
        }
    }
}

impl TestDatabase {
    async fn create(backend: Backend) -> (Self, String) {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/auth.db?mode=rwc", dir.path().display());
                (TestDatabase::Sqlite(dir), url)
            }
            Backend::Mysql | Backend::Postgres => {
                let var = backend.env_var().expect("server backend");
                let admin_url = std::env::var(var).expect("checked by require()");
                let name = format!("auth_test_{}", uuid::Uuid::new_v4().simple());
                let admin = sea_orm::Database::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("{var} does not answer: {e}"));
                sea_orm::ConnectionTrait::execute_unprepared(
                    &admin,
                    &format!("CREATE DATABASE {name}"),
                )
                .await
                .expect("create test database");
                admin.close().await.ok();
                let url = replace_database(&admin_url, &name);
                (
                    TestDatabase::Server {
                        admin_url,
                        name,
                        backend,
                    },
                    url,
                )
            }
        }
    }
}

/// `scheme://user@host:port/db?params` with `db` replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, params) = match url.split_once('?') {
        Some((b, p)) => (b, Some(p)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    match params {
        Some(p) => format!("{host}/{name}?{p}"),
        None => format!("{host}/{name}"),
    }
}

/// A fresh database for `backend` (dropped with the guard) and its URL, for tests that
/// run the server binary themselves.
pub struct DatabaseGuard(TestDatabase);

pub async fn create_database(backend: Backend) -> (DatabaseGuard, String) {
    let (db, url) = TestDatabase::create(backend).await;
    (DatabaseGuard(db), url)
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    /// The `METRICS_ADDR` listener's port, when the settings set one.
    pub metrics_port: Option<u16>,
    pub client: Client,
    pub backend: Backend,
    pub database_url: String,
    pub settings: Settings,
    /// The server's mail worker: its queue, and `dispatch_pending` for tests that send now.
    pub mail: MailWorker,
    /// The server's auth service, for tests that drive it beside the HTTP API (its signing
    /// keys, a reload of them).
    pub auth: Arc<AuthService>,
    /// The database, dropped with the app; `None` for a second instance on another's.
    _db: Option<TestDatabase>,
}

/// Settings every test starts from: cheap bcrypt, fixed secrets, no rate limits.
pub fn test_settings() -> Settings {
    let mut s = Settings::defaults();
    s.port = 0;
    s.passwords.bcrypt_cost = 4;
    s.tokens.access_secret = SecretString::from(ACCESS_SECRET);
    s.tokens.refresh_secret = SecretString::from(REFRESH_SECRET);
    s.rate_limits.login_per_ip = 0;
    s.rate_limits.login_per_account = 0;
    s.rate_limits.register_per_ip = 0;
    s.rate_limits.mail_per_address = 0;
    s.rate_limits.mail_per_ip = 0;
    s.rate_limits.mfa_per_account = 0;
    s.warnings.clear();
    s
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(backend, configure, Collaborators::default()).await
}

/// As [`spawn_app_with`], on a clock that stands still until the test advances it: time
/// passes for every expiry the server judges (tokens, sessions, the grace window), not for
/// governor's rate limiters or the HTTP timeouts.
pub async fn spawn_app_with_clock(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
) -> (TestApp, ManualClock) {
    let clock = ManualClock::starting_now();
    let collaborators = Collaborators {
        clock: clock.clone().into(),
    };
    (spawn(backend, configure, collaborators).await, clock)
}

async fn spawn(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
    collaborators: Collaborators,
) -> TestApp {
    // The server's log, shown with a failing test's output: errors, or what `TEST_LOG`
    // (an `EnvFilter`) asks for.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("TEST_LOG"))
        .with_test_writer()
        .try_init();
    let (db, url) = TestDatabase::create(backend).await;
    let mut settings = test_settings();
    settings.database.url = SecretString::from(url.clone());
    configure(&mut settings);
    start(backend, settings, collaborators, Some(db)).await
}

/// Another instance on `first`'s database, with `first`'s settings changed by `configure`:
/// two servers sharing one database, as a deployment runs them.
pub async fn spawn_instance_of(
    first: &TestApp,
    configure: impl FnOnce(&mut Settings),
    collaborators: Collaborators,
) -> TestApp {
    let mut settings = first.settings.clone();
    configure(&mut settings);
    start(first.backend, settings, collaborators, None).await
}

async fn start(
    backend: Backend,
    settings: Settings,
    collaborators: Collaborators,
    db: Option<TestDatabase>,
) -> TestApp {
    use secrecy::ExposeSecret;
    let url = settings.database.url.expose_secret().to_owned();
    let app = Application::build_with(settings.clone(), collaborators)
        .await
        .expect("the application builds");
    let port = app.port();
    let metrics_port = app.metrics_port();
    let mail = app.mail();
    let auth = app.auth();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        metrics_port,
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A connection per request: after refusing a body it did not read (413), the
            // server closes the connection, and a pooled client could send the next
            // request on it as the close arrives (`IncompleteMessage`).
            .pool_max_idle_per_host(0)
            .build()
            .expect("client"),
        backend,
        database_url: url,
        settings,
        mail,
        auth,
        _db: db,
    }
}

/// The legacy HS256 configuration: access tokens signed with `JWT_ACCESS_SECRET`.
pub fn legacy_hs256(settings: &mut Settings) {
    settings.tokens.algorithm = auth_server::auth::tokens::signing::SigningAlgorithm::Hs256;
    settings.tokens.key_source = auth_server::config::KeySource::Secret;
}

/// A GraphQL response: status, headers and JSON body.
#[derive(Debug)]
pub struct Gql {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Gql {
    /// Status, headers and body (JSON, or the raw text as a string) of a response.
    pub async fn read(resp: reqwest::Response) -> Self {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Gql {
            status,
            headers,
            body,
        }
    }

    /// `data.<field>`, panicking with the whole body if it is missing or null.
    pub fn data(&self, field: &str) -> &Value {
        let v = &self.body["data"][field];
        assert!(!v.is_null(), "no data.{field} in {}", self.body);
        v
    }

    /// The first error's `extensions.code`.
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    /// Asserts exactly one error with `code` and returns it.
    pub fn expect_error(&self, code: &str) -> &Value {
        assert_eq!(self.code(), Some(code), "expected {code} in {}", self.body);
        &self.body["errors"][0]
    }
}

/// Tokens and user of an `AuthPayload`.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub user_id: String,
}

impl Tokens {
    pub fn from_payload(v: &Value) -> Self {
        Self {
            access: v["accessToken"].as_str().expect("accessToken").to_owned(),
            refresh: v["refreshToken"].as_str().expect("refreshToken").to_owned(),
            user_id: v["user"]["id"].as_str().expect("user.id").to_owned(),
        }
    }
}

pub const PAYLOAD: &str = "accessToken refreshToken tokenType expiresIn refreshExpiresIn user { id email username createdAt updatedAt }";

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POSTs one operation, with an optional bearer token.
    pub async fn gql(&self, query: &str, variables: Value, bearer: Option<&str>) -> Gql {
        self.post_json(json!({"query": query, "variables": variables}), bearer, &[])
            .await
    }

    /// POSTs any JSON body with extra headers.
    pub async fn post_json(
        &self,
        body: Value,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Gql {
        let mut req = self.client.post(self.url("/graphql")).json(&body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Gql::read(req.send().await.expect("request sent")).await
    }

    pub async fn register(&self, email: &str, password: &str, username: Option<&str>) -> Gql {
        self.gql(
            &format!(
                "mutation($input: RegisterInput!) {{ register(input: $input) {{ {PAYLOAD} }} }}"
            ),
            json!({"input": {"email": email, "password": password, "username": username}}),
            None,
        )
        .await
    }

    /// Registers a fresh account and returns its tokens.
    pub async fn register_ok(&self, email: &str) -> Tokens {
        let r = self.register(email, PASSWORD, None).await;
        Tokens::from_payload(r.data("register"))
    }

    pub async fn login(&self, input: Value) -> Gql {
        self.gql(
            &format!("mutation($input: LoginInput!) {{ login(input: $input) {{ {PAYLOAD} }} }}"),
            json!({"input": input}),
            None,
        )
        .await
    }

    pub async fn login_email(&self, email: &str, password: &str) -> Gql {
        self.login(json!({"email": email, "password": password}))
            .await
    }

    pub async fn refresh(&self, token: &str) -> Gql {
        self.gql(
            &format!("mutation($t: String!) {{ refreshToken(refreshToken: $t) {{ {PAYLOAD} }} }}"),
            json!({"t": token}),
            None,
        )
        .await
    }

    pub async fn logout(&self, bearer: Option<&str>, refresh: Option<&str>, all: bool) -> Gql {
        self.gql(
            "mutation($t: String, $all: Boolean!) { logout(refreshToken: $t, allSessions: $all) }",
            json!({"t": refresh, "all": all}),
            bearer,
        )
        .await
    }

    pub async fn me(&self, bearer: Option<&str>) -> Gql {
        self.gql(
            "{ me { id email username createdAt updatedAt } }",
            json!({}),
            bearer,
        )
        .await
    }

    /// Whether `bearer` still passes the guard.
    pub async fn me_ok(&self, bearer: &str) -> bool {
        let r = self.me(Some(bearer)).await;
        match r.code() {
            None => true,
            Some("UNAUTHENTICATED") => false,
            Some(other) => panic!("unexpected error {other}: {}", r.body),
        }
    }
}

/// A socket address nothing listens on (bound, then released).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(
        replace_database("mysql://root@127.0.0.1:3306/test", "x"),
        "mysql://root@127.0.0.1:3306/x"
    );
    assert_eq!(
        replace_database("postgres://postgres@127.0.0.1:5432", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        replace_database("postgres://p@h/db?sslmode=disable", "x"),
        "postgres://p@h/x?sslmode=disable"
    );
}

// ---- Helpers of register / login / me / rate_limits / tokens tests ----

impl Gql {
    /// Asserts the response holds exactly one error, with `code`, and no data for the
    /// failed root field; returns that error.
    pub fn expect_only_error(&self, code: &str) -> &Value {
        let errors = self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("expected a {code} error in {}", self.body));
        assert_eq!(
            errors.len(),
            1,
            "expected exactly one error in {}",
            self.body
        );
        assert_eq!(self.code(), Some(code), "expected {code} in {}", self.body);
        assert!(
            self.body["data"].is_null(),
            "expected no data next to {code} in {}",
            self.body
        );
        &errors[0]
    }

    /// Asserts exactly one `BAD_USER_INPUT` error naming `field`.
    pub fn expect_bad_input(&self, field: &str) -> &Value {
        let error = self.expect_only_error("BAD_USER_INPUT");
        assert_eq!(
            error["extensions"]["field"].as_str(),
            Some(field),
            "expected BAD_USER_INPUT on {field} in {}",
            self.body
        );
        error
    }

    /// Asserts a 200 response without any error.
    pub fn expect_success(&self) {
        assert_eq!(self.status, StatusCode::OK, "status of {}", self.body);
        assert!(
            self.body.get("errors").is_none(),
            "expected no errors in {}",
            self.body
        );
    }
}

impl TestApp {
    pub async fn login_username(&self, username: &str, password: &str) -> Gql {
        self.login(json!({"username": username, "password": password}))
            .await
    }

    /// Runs `query` with GET /graphql?query=..., with an optional bearer token.
    pub async fn get_graphql(&self, query: &str, bearer: Option<&str>) -> Gql {
        let mut req = self
            .client
            .get(self.url("/graphql"))
            .query(&[("query", query)]);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        Gql::read(req.send().await.expect("request sent")).await
    }
}

// ---- Helpers of the adversarial tests ----

impl TestApp {
    /// After an attack: `/health` is 200 with the database up, GraphQL still executes, and,
    /// when registration is not rate-limited, a fresh account registers and passes `me`.
    pub async fn assert_still_healthy(&self) {
        let health = self
            .client
            .get(self.url("/health"))
            .send()
            .await
            .expect("the server still answers");
        assert_eq!(health.status(), StatusCode::OK, "/health after the attack");
        let body: Value = health.json().await.expect("/health answers JSON");
        assert_eq!(body, json!({"status": "ok", "database": "up"}));
        let typename = self.gql("{ __typename }", json!({}), None).await;
        assert_eq!(typename.body, json!({"data": {"__typename": "Query"}}));
        if self.settings.rate_limits.register_per_ip == 0 {
            let email = format!("healthy-{}@example.com", uuid::Uuid::new_v4().simple());
            let tokens = self.register_ok(&email).await;
            assert!(
                self.me_ok(&tokens.access).await,
                "a fresh account fails `me`"
            );
        }
    }

    /// Sends any request and reads the answer as a `Gql` (a non-JSON body becomes a string).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Gql {
        let resp = request.send().await.expect("the server answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Gql {
            status,
            headers,
            body,
        }
    }

    /// POSTs raw bytes to `/graphql` with `content_type`.
    pub async fn post_bytes(&self, content_type: &str, body: impl Into<Vec<u8>>) -> Gql {
        let request = self
            .client
            .post(self.url("/graphql"))
            .header("content-type", content_type)
            .body(body.into());
        self.send(request).await
    }
}

/// In CI (`CI` set, as `.ci/run` runs) every backend must be built in: a missing database
/// server or Redis there fails the run instead of skipping part of the suite.
#[test]
fn ci_builds_run_every_backend() {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        let built_in = [cfg!(test_mysql), cfg!(test_postgres), cfg!(test_redis)];
        assert_eq!(
            built_in,
            [true, true, true],
            "CI must set TEST_MYSQL_URL, TEST_POSTGRES_URL and TEST_REDIS_URL before building \
             the tests"
        );
    }
}

// ---- Helpers of the account lifecycle tests (issue 13) ----

/// The `User` fields the lifecycle tests read.
pub const USER: &str = "id email username emailVerified";

impl TestApp {
    pub async fn request_email_verification(&self, bearer: Option<&str>) -> Gql {
        self.gql("mutation { requestEmailVerification }", json!({}), bearer)
            .await
    }

    pub async fn verify_email(&self, token: &str, bearer: Option<&str>) -> Gql {
        self.gql(
            &format!("mutation($t: String!) {{ verifyEmail(token: $t) {{ {USER} }} }}"),
            json!({"t": token}),
            bearer,
        )
        .await
    }

    pub async fn request_password_reset(&self, email: &str) -> Gql {
        self.gql(
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({"e": email}),
            None,
        )
        .await
    }

    pub async fn reset_password(&self, token: &str, new: &str, bearer: Option<&str>) -> Gql {
        self.gql(
            &format!(
                "mutation($t: String!, $p: String!) {{ resetPassword(token: $t, newPassword: $p) {{ {PAYLOAD} }} }}"
            ),
            json!({"t": token, "p": new}),
            bearer,
        )
        .await
    }

    pub async fn change_password(&self, bearer: &str, current: &str, new: &str) -> Gql {
        self.gql(
            &format!(
                "mutation($c: String!, $p: String!) {{ changePassword(currentPassword: $c, newPassword: $p) {{ {PAYLOAD} }} }}"
            ),
            json!({"c": current, "p": new}),
            Some(bearer),
        )
        .await
    }

    pub async fn change_email(&self, bearer: &str, new_email: &str, password: &str) -> Gql {
        self.gql(
            "mutation($e: String!, $p: String!) { changeEmail(newEmail: $e, password: $p) }",
            json!({"e": new_email, "p": password}),
            Some(bearer),
        )
        .await
    }

    pub async fn delete_account(&self, bearer: &str, password: &str) -> Gql {
        self.gql(
            "mutation($p: String!) { deleteAccount(password: $p) }",
            json!({"p": password}),
            Some(bearer),
        )
        .await
    }

    /// `me { emailVerified email }` of `bearer`, which must pass the guard.
    pub async fn me_user(&self, bearer: &str) -> Value {
        let r = self
            .gql(&format!("{{ me {{ {USER} }} }}"), json!({}), Some(bearer))
            .await;
        r.expect_success();
        r.data("me").clone()
    }

    pub async fn me_verified(&self, bearer: &str) -> bool {
        self.me_user(bearer).await["emailVerified"]
            .as_bool()
            .expect("emailVerified is a Boolean")
    }
}

/// Stores, for every session in `db` (the database at `database_url`), a refresh token of
/// the kind issued before chains (43 characters, a row of its own, hashed with the refresh
/// secret of `settings`), as a server before chains would have; returns them in the order
/// of the sessions' ids.
pub async fn store_pre_chain_refresh_tokens(
    settings: &Settings,
    db: &sea_orm::DatabaseConnection,
    database_url: &str,
) -> Vec<String> {
    use auth_server::auth::tokens::{RefreshKeys, RefreshToken};
    use base64::Engine;
    use sea_orm::ConnectionTrait;
    let store = auth_server::store::Store::new(db.clone(), database_url);
    let keys = RefreshKeys::new(&settings.tokens);
    let sessions = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT id FROM sessions ORDER BY id",
        ))
        .await
        .expect("the sessions");
    let at = chrono::Utc::now();
    let mut tokens = Vec::new();
    for row in sessions {
        let session: uuid::Uuid = row.try_get_by_index(0).expect("an id");
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let token = RefreshToken::parse(&raw).expect("43 base64url characters");
        store
            .refresh_tokens()
            .insert(
                session,
                keys.hash(&token),
                None,
                at,
                at + chrono::Duration::days(7),
            )
            .await
            .expect("insert a pre-chain token");
        tokens.push(raw);
    }
    tokens
}
