//! `me`: the bearer guard, over POST and GET.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::*;

const ME: &str = "{ me { id email username createdAt updatedAt } }";

/// Asserts `me` was refused as `UNAUTHENTICATED`, with the error on the `me` field.
fn assert_unauthenticated(r: &Gql) {
    assert_eq!(r.status, reqwest::StatusCode::OK, "status of {}", r.body);
    let error = r.expect_only_error("UNAUTHENTICATED");
    assert_eq!(error["path"], json!(["me"]), "path of {}", r.body);
}

/// `me` with a raw `Authorization` header value.
async fn me_with_authorization(app: &TestApp, value: &str) -> Gql {
    app.post_json(json!({"query": ME}), None, &[("Authorization", value)])
        .await
}

async fn me_returns_the_account_that_registered(backend: Backend) {
    let app = spawn_app(backend).await;
    let registered = app
        .register(" Ada@Example.com", PASSWORD, Some("Ada_L"))
        .await;
    let payload = registered.data("register");
    let access = payload["accessToken"].as_str().unwrap();

    let r = app.me(Some(access)).await;

    r.expect_success();
    let me = r.data("me");
    assert_eq!(me, &payload["user"]);
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["username"], "Ada_L");
}

async fn me_answers_each_caller_with_their_own_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let grace = app.register_ok("grace@example.com").await;

    let as_ada = app.me(Some(&ada.access)).await;
    let as_grace = app.me(Some(&grace.access)).await;

    assert_eq!(as_ada.data("me")["id"].as_str(), Some(ada.user_id.as_str()));
    assert_eq!(as_ada.data("me")["email"], "ada@example.com");
    assert_eq!(
        as_grace.data("me")["id"].as_str(),
        Some(grace.user_id.as_str())
    );
    assert_eq!(as_grace.data("me")["email"], "grace@example.com");
}

async fn me_without_an_authorization_header_is_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("ada@example.com").await;

    let r = app.me(None).await;

    assert_unauthenticated(&r);
}

async fn me_with_a_garbage_bearer_token_is_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("ada@example.com").await;

    for token in ["garbage", "a.b.c", "null", "eyJhbGciOiJIUzI1NiJ9..", "...."] {
        let r = app.me(Some(token)).await;
        assert_unauthenticated(&r);
    }
}

async fn me_with_basic_credentials_is_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.register_ok("ada@example.com").await;

    let basic = me_with_authorization(&app, "Basic xyz").await;
    // A valid access token under another scheme is not a bearer token.
    let basic_token = me_with_authorization(&app, &format!("Basic {}", tokens.access)).await;
    let bare_token = me_with_authorization(&app, &tokens.access).await;

    assert_unauthenticated(&basic);
    assert_unauthenticated(&basic_token);
    assert_unauthenticated(&bare_token);
    assert!(app.me_ok(&tokens.access).await, "the token itself is valid");
}

async fn me_with_an_empty_bearer_token_is_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("ada@example.com").await;

    for value in ["Bearer", "Bearer ", "Bearer    ", ""] {
        let r = me_with_authorization(&app, value).await;
        assert_unauthenticated(&r);
    }
}

async fn me_accepts_the_bearer_scheme_in_any_case(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.register_ok("ada@example.com").await;

    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = me_with_authorization(&app, &format!("{scheme} {}", tokens.access)).await;
        r.expect_success();
        assert_eq!(r.data("me")["id"].as_str(), Some(tokens.user_id.as_str()));
    }
}

async fn me_over_get_with_a_bearer_token_returns_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.register_ok("ada@example.com").await;

    let r = app
        .get_graphql("{me{id email}}", Some(&tokens.access))
        .await;

    r.expect_success();
    assert_eq!(r.data("me")["id"].as_str(), Some(tokens.user_id.as_str()));
    assert_eq!(r.data("me")["email"], "ada@example.com");
}

async fn me_over_get_without_a_token_is_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("ada@example.com").await;

    let r = app.get_graphql("{me{id email}}", None).await;

    assert_unauthenticated(&r);
}

/// What another writer commits (another instance, an operator) is what the next `me` sees:
/// nothing the server remembers between requests (documents, verified tokens, the SQLite
/// reader's connections) may answer for the database.
async fn me_sees_writes_of_another_connection_at_once(backend: Backend) {
    use auth_server::entity::{session, user};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let grace = app.register_ok("grace@example.com").await;
    for _ in 0..3 {
        assert!(app.me_ok(&ada.access).await);
    }
    let id = uuid::Uuid::parse_str(&ada.user_id).expect("a UUID");
    let db = sea_orm::Database::connect(&app.database_url)
        .await
        .expect("connect");

    user::Entity::update_many()
        .col_expr(user::Column::Email, Expr::value("ada.lovelace@example.com"))
        .filter(user::Column::Id.eq(id))
        .exec(&db)
        .await
        .expect("update the email");
    let r = app.me(Some(&ada.access)).await;
    r.expect_success();
    assert_eq!(r.data("me")["email"], "ada.lovelace@example.com");

    let revoked = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(chrono::Utc::now()))
        .filter(session::Column::UserId.eq(id))
        .exec(&db)
        .await
        .expect("revoke");
    assert_eq!(revoked.rows_affected, 1);
    db.close().await.ok();
    assert_unauthenticated(&app.me(Some(&ada.access)).await);
    // Nobody else is affected.
    assert!(app.me_ok(&grace.access).await);
}

backend_tests!(
    me_returns_the_account_that_registered,
    me_sees_writes_of_another_connection_at_once,
    me_answers_each_caller_with_their_own_account,
    me_without_an_authorization_header_is_unauthenticated,
    me_with_a_garbage_bearer_token_is_unauthenticated,
    me_with_basic_credentials_is_unauthenticated,
    me_with_an_empty_bearer_token_is_unauthenticated,
    me_accepts_the_bearer_scheme_in_any_case,
    me_over_get_with_a_bearer_token_returns_the_account,
    me_over_get_without_a_token_is_unauthenticated,
);
