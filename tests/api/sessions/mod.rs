//! Issue 15 over HTTP: what a user sees of their account's activity. `sessions` (the
//! caller's live sessions, with the client that opened and last refreshed each),
//! `revokeSession`, `securityEvents` (the caller's events, newest first, a page at a time),
//! the retention of events, nothing lost when the server stops, and `keys rotate` leaving
//! its mark in the table.
//!
//! Each request here says who sends it (a `User-Agent`), so every session and event can be
//! traced to the request that made it.

mod events;
mod key_rotation;
mod listing;
mod log_lines;
mod pagination;
mod retention;
mod revoke;
mod shutdown;

use std::time::{Duration, Instant};

use auth_server::entity::security_event;
use chrono::{DateTime, Utc};
use sea_orm::{Database, DatabaseConnection, EntityTrait, QueryOrder};
use serde_json::{Value, json};

use crate::helpers::{Gql, PASSWORD, PAYLOAD, TestApp, Tokens};
use crate::tokens::part_of;

/// Every field of a `Session`.
pub const SESSION: &str =
    "id current createdAt lastUsedAt expiresAt userAgent ip openedUserAgent openedIp";

/// Every field of a `SecurityEvent`.
pub const EVENT: &str = "id kind outcome at ip userAgent sessionId detail";

/// Where the tests' requests come from.
pub const LOOPBACK: &str = "127.0.0.1";

/// How long a buffered (standalone) event may take to reach the table.
pub const EVENT_WAIT: Duration = Duration::from_secs(5);

/// The session id (`sid` claim) of an access token.
pub fn sid(access: &str) -> String {
    part_of(access, 1)["sid"]
        .as_str()
        .unwrap_or_else(|| panic!("no sid in {access}"))
        .to_owned()
}

/// An RFC 3339 instant of a response.
pub fn instant(v: &Value) -> DateTime<Utc> {
    let text = v.as_str().unwrap_or_else(|| panic!("not a DateTime: {v}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// The `id`s of a list of sessions or events, in order.
pub fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// A connection to `app`'s database, for reading `security_events` as the operator would.
pub async fn database(app: &TestApp) -> DatabaseConnection {
    Database::connect(&app.database_url)
        .await
        .expect("the test database answers")
}

/// Every row of `security_events`, oldest first.
pub async fn event_rows(db: &DatabaseConnection) -> Vec<security_event::Model> {
    security_event::Entity::find()
        .order_by_asc(security_event::Column::At)
        .all(db)
        .await
        .expect("security_events reads")
}

/// Polls `security_events` until `done` holds for its rows (at most [`EVENT_WAIT`]); the
/// rows then.
pub async fn rows_until(
    db: &DatabaseConnection,
    what: &str,
    done: impl Fn(&[security_event::Model]) -> bool,
) -> Vec<security_event::Model> {
    let started = Instant::now();
    loop {
        let rows = event_rows(db).await;
        if done(&rows) {
            return rows;
        }
        assert!(
            started.elapsed() < EVENT_WAIT,
            "{what} not within {EVENT_WAIT:?}; the table holds {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl TestApp {
    /// One operation sent with `User-Agent: user_agent`.
    pub async fn gql_from(
        &self,
        user_agent: &str,
        query: &str,
        variables: Value,
        bearer: Option<&str>,
    ) -> Gql {
        self.post_json(
            json!({"query": query, "variables": variables}),
            bearer,
            &[("user-agent", user_agent)],
        )
        .await
    }

    /// Registers `email` (with [`PASSWORD`]) from `user_agent`.
    pub async fn register_from(&self, user_agent: &str, email: &str) -> Tokens {
        let r = self
            .gql_from(
                user_agent,
                &format!(
                    "mutation($input: RegisterInput!) {{ register(input: $input) {{ {PAYLOAD} }} }}"
                ),
                json!({"input": {"email": email, "password": PASSWORD}}),
                None,
            )
            .await;
        Tokens::from_payload(r.data("register"))
    }

    /// Logs `email` in with `password` from `user_agent`.
    pub async fn login_from(&self, user_agent: &str, email: &str, password: &str) -> Gql {
        self.gql_from(
            user_agent,
            &format!("mutation($input: LoginInput!) {{ login(input: $input) {{ {PAYLOAD} }} }}"),
            json!({"input": {"email": email, "password": password}}),
            None,
        )
        .await
    }

    /// Logs `email` in with [`PASSWORD`] from `user_agent`: a new session.
    pub async fn login_ok_from(&self, user_agent: &str, email: &str) -> Tokens {
        Tokens::from_payload(
            self.login_from(user_agent, email, PASSWORD)
                .await
                .data("login"),
        )
    }

    /// A failed login of `email` (a wrong password) from `user_agent`.
    pub async fn login_fails_from(&self, user_agent: &str, email: &str) {
        self.login_from(user_agent, email, "not the password at all")
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }

    /// Spends `refresh` from `user_agent`.
    pub async fn refresh_from(&self, user_agent: &str, refresh: &str) -> Gql {
        self.gql_from(
            user_agent,
            &format!("mutation($t: String!) {{ refreshToken(refreshToken: $t) {{ {PAYLOAD} }} }}"),
            json!({"t": refresh}),
            None,
        )
        .await
    }

    /// `sessions` with every field.
    pub async fn sessions(&self, bearer: Option<&str>) -> Gql {
        self.gql(
            &format!("{{ sessions {{ {SESSION} }} }}"),
            json!({}),
            bearer,
        )
        .await
    }

    /// The sessions `bearer` sees, newest first.
    pub async fn sessions_ok(&self, bearer: &str) -> Vec<Value> {
        let r = self.sessions(Some(bearer)).await;
        r.expect_success();
        r.data("sessions")
            .as_array()
            .expect("sessions is a list")
            .clone()
    }

    /// `revokeSession(id:)` from `user_agent`.
    pub async fn revoke_session_from(&self, user_agent: &str, bearer: &str, id: &str) -> Gql {
        self.gql_from(
            user_agent,
            "mutation($id: ID!) { revokeSession(id: $id) }",
            json!({"id": id}),
            Some(bearer),
        )
        .await
    }

    /// `revokeSession(id:)`, which must answer a Boolean.
    pub async fn revoke_session(&self, bearer: &str, id: &str) -> bool {
        let r = self
            .gql(
                "mutation($id: ID!) { revokeSession(id: $id) }",
                json!({"id": id}),
                Some(bearer),
            )
            .await;
        r.expect_success();
        r.data("revokeSession")
            .as_bool()
            .expect("revokeSession is a Boolean")
    }

    /// `securityEvents(first:, after:)` with the whole connection; `first` is sent as
    /// given (a number, `null`, or left out when `Value::Null` is not wanted: see
    /// [`TestApp::security_events_default`]).
    pub async fn security_events(&self, bearer: Option<&str>, first: Value, after: Value) -> Gql {
        self.gql(
            &format!(
                "query($first: Int, $after: String) {{ securityEvents(first: $first, after: $after) {{ \
                 edges {{ cursor node {{ {EVENT} }} }} nodes {{ id }} \
                 pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
            ),
            json!({"first": first, "after": after}),
            bearer,
        )
        .await
    }

    /// `securityEvents` with neither argument (`first` takes its default).
    pub async fn security_events_default(&self, bearer: &str) -> Vec<Value> {
        let r = self
            .gql(
                &format!("{{ securityEvents {{ nodes {{ {EVENT} }} }} }}"),
                json!({}),
                Some(bearer),
            )
            .await;
        r.expect_success();
        r.data("securityEvents")["nodes"]
            .as_array()
            .expect("nodes is a list")
            .clone()
    }

    /// The newest 100 events `bearer` sees (the nodes of the edges), newest first.
    pub async fn events_ok(&self, bearer: &str) -> Vec<Value> {
        let r = self
            .security_events(Some(bearer), json!(100), Value::Null)
            .await;
        r.expect_success();
        let connection = r.data("securityEvents");
        assert_eq!(
            connection["pageInfo"]["hasNextPage"],
            json!(false),
            "more than 100 events: {}",
            r.body
        );
        connection["edges"]
            .as_array()
            .expect("edges is a list")
            .iter()
            .map(|e| e["node"].clone())
            .collect()
    }

    /// Polls `securityEvents` of `bearer` until `done` holds for them (at most
    /// [`EVENT_WAIT`]: standalone events are buffered before they are stored); the events
    /// then.
    pub async fn events_until(
        &self,
        bearer: &str,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let events = self.events_ok(bearer).await;
            if done(&events) {
                return events;
            }
            assert!(
                started.elapsed() < EVENT_WAIT,
                "{what} not within {EVENT_WAIT:?}; the events are {events:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The `kind`s of events, in order.
pub fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["kind"].as_str().expect("a kind"))
        .collect()
}
