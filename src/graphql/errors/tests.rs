//! A schema whose resolvers fail the way real ones can, each with plain `?`, run through
//! the pass `Executor` runs: every error must reach the client with its own code, and every
//! internal one must have been logged. Each case spells out the whole error it expects, even
//! where two read alike.

use std::io::Write;
use std::sync::{Arc, Mutex};

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, Guard, InputObject, Object, Result, Schema,
    Variables,
};
use serde_json::json;

use super::set_codes;
use crate::domain::Email;
use crate::error::AuthError;

/// What a service call returns.
async fn service(outcome: AuthError) -> Result<bool, AuthError> {
    Err(outcome)
}

struct Refuses;

impl Guard for Refuses {
    async fn check(&self, _: &Context<'_>) -> Result<()> {
        service(AuthError::Unauthenticated).await?;
        Ok(())
    }
}

#[derive(InputObject)]
struct Pair {
    left: String,
    right: String,
}

struct Query;

#[Object]
impl Query {
    async fn email_taken(&self) -> Result<bool> {
        Ok(service(AuthError::EmailTaken).await?)
    }

    async fn rate_limited(&self) -> Result<bool> {
        Ok(service(AuthError::RateLimited { retry_after: 7 }).await?)
    }

    async fn internal(&self) -> Result<bool> {
        Ok(service(AuthError::internal_msg("the pool is closed")).await?)
    }

    /// A database error that skipped `AuthError`.
    async fn raw_db(&self) -> Result<bool> {
        let read: Result<bool, sea_orm::DbErr> = Err(sea_orm::DbErr::Custom(
            "SELECT password_hash FROM users".into(),
        ));
        Ok(read?)
    }

    /// A domain parse that skipped `AuthError`.
    async fn bad_email(&self) -> Result<bool> {
        Email::parse_new("not an address")?;
        Ok(true)
    }

    #[graphql(guard = "Refuses")]
    async fn guarded(&self) -> bool {
        true
    }

    async fn pair(&self, input: Pair) -> String {
        input.left + &input.right
    }
}

/// Everything written through `tracing` while it is the thread's default subscriber.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `query` as `Executor` does (execution, then [`set_codes`]); returns its only error
/// as the client sees it (JSON) and what was logged meanwhile.
async fn run(query: &str, variables: serde_json::Value) -> (serde_json::Value, String) {
    let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let request = async_graphql::Request::new(query).variables(Variables::from_json(variables));
    let mut response = schema.execute(request).await;
    set_codes(&mut response);
    assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
    let error = serde_json::to_value(&response.errors[0]).unwrap();
    let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    (error, logged)
}

#[tokio::test]
async fn an_auth_error_reaches_the_client_with_its_own_code_and_nothing_is_logged() {
    let (error, logged) = run("{ emailTaken }", json!({})).await;
    assert_eq!(
        error,
        json!({
            "message": "an account with this email already exists",
            "locations": [{"line": 1, "column": 3}],
            "path": ["emailTaken"],
            "extensions": {"code": "EMAIL_TAKEN"},
        })
    );
    assert_eq!(logged, "");

    let (error, logged) = run("{ rateLimited }", json!({})).await;
    assert_eq!(error["message"], "too many attempts; retry in 7 s");
    assert_eq!(
        error["extensions"],
        json!({"code": "RATE_LIMITED", "retryAfter": 7})
    );
    assert_eq!(logged, "");

    let (error, _) = run("{ guarded }", json!({})).await;
    assert_eq!(error["message"], "authentication required");
    assert_eq!(error["path"], json!(["guarded"]));
    assert_eq!(error["extensions"], json!({"code": "UNAUTHENTICATED"}));
}

#[tokio::test]
async fn an_invalid_input_that_skipped_auth_error_still_names_its_field() {
    let (error, logged) = run("{ badEmail }", json!({})).await;
    assert_eq!(
        error["extensions"],
        json!({"code": "BAD_USER_INPUT", "field": "email"})
    );
    assert_ne!(error["message"], "internal server error");
    assert_eq!(logged, "");
}

#[tokio::test]
async fn an_internal_error_is_logged_with_its_cause_and_reaches_the_client_without_it() {
    let (error, logged) = run("{ internal }", json!({})).await;
    assert_eq!(
        error,
        json!({
            "message": "internal server error",
            "locations": [{"line": 1, "column": 3}],
            "path": ["internal"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR"},
        })
    );
    assert!(logged.contains("ERROR"), "{logged}");
    assert!(logged.contains("internal error"), "{logged}");
    assert!(logged.contains("the pool is closed"), "{logged}");
}

#[tokio::test]
async fn any_other_error_type_is_internal_logged_and_not_revealed() {
    let (error, logged) = run("{ rawDb }", json!({})).await;
    assert_eq!(error["message"], "internal server error");
    assert_eq!(
        error["extensions"],
        json!({"code": "INTERNAL_SERVER_ERROR"})
    );
    assert!(!error.to_string().contains("password_hash"), "{error}");
    assert!(logged.contains("ERROR"), "{logged}");
    assert!(
        logged.contains("SELECT password_hash FROM users"),
        "{logged}"
    );
}

#[tokio::test]
async fn an_argument_that_fails_coercion_while_the_field_runs_is_bad_user_input() {
    let query = "query($p: Pair!) { pair(input: $p) }";
    let (error, logged) = run(query, json!({"p": ["a", "b"]})).await;
    assert_eq!(error["path"], json!(["pair"]), "{error}");
    assert_eq!(error["extensions"], json!({"code": "BAD_USER_INPUT"}));
    assert_eq!(logged, "");
}

#[tokio::test]
async fn a_request_error_is_left_as_async_graphql_wrote_it() {
    let (error, logged) = run("{ nope }", json!({})).await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Unknown field \"nope\""),
        "{error}"
    );
    assert_eq!(error.get("path"), None);
    assert_eq!(error.get("extensions"), None);
    assert_eq!(logged, "");
}
