//! `login`: by email or username, one session per login, and errors that reveal nothing.

use std::time::{Duration, Instant};

use auth_server::Application;
use auth_server::entity::user;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::*;

async fn login_by_email_returns_a_new_token_pair_for_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let registered = app.register("ada@example.com", PASSWORD, Some("Ada")).await;
    let registered_user = registered.data("register")["user"].clone();

    let r = app.login_email("ada@example.com", PASSWORD).await;

    r.expect_success();
    let p = r.data("login");
    assert_eq!(p["tokenType"], "Bearer");
    assert_eq!(p["expiresIn"], 900);
    assert_eq!(p["refreshExpiresIn"], 604_800);
    assert_eq!(p["user"], registered_user);
    let tokens = Tokens::from_payload(p);
    assert_ne!(
        tokens.access,
        registered.data("register")["accessToken"].as_str().unwrap()
    );
    assert_ne!(
        tokens.refresh,
        registered.data("register")["refreshToken"]
            .as_str()
            .unwrap()
    );
    let me = app.me(Some(&tokens.access)).await;
    me.expect_success();
    assert_eq!(me.data("me"), &registered_user);
}

async fn login_by_email_ignores_case_and_surrounding_spaces(backend: Backend) {
    let app = spawn_app(backend).await;
    let registered = app.register_ok("ada@example.com").await;

    let r = app.login_email("  ADA@Example.COM ", PASSWORD).await;

    r.expect_success();
    assert_eq!(
        r.data("login")["user"]["id"].as_str(),
        Some(registered.user_id.as_str())
    );
    assert_eq!(r.data("login")["user"]["email"], "ada@example.com");
}

async fn login_by_username_ignores_case_and_keeps_the_username_as_typed(backend: Backend) {
    let app = spawn_app(backend).await;
    let registered = app
        .register("ada@example.com", PASSWORD, Some("AdaLovelace"))
        .await;
    let id = registered.data("register")["user"]["id"].clone();

    for username in ["AdaLovelace", "adalovelace", "ADALOVELACE"] {
        let r = app.login_username(username, PASSWORD).await;
        r.expect_success();
        let user = &r.data("login")["user"];
        assert_eq!(user["id"], id, "{username}");
        assert_eq!(user["username"], "AdaLovelace");
        assert_eq!(user["email"], "ada@example.com");
    }
}

async fn each_login_opens_its_own_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let registered = app.register_ok("ada@example.com").await;

    let first = Tokens::from_payload(
        app.login_email("ada@example.com", PASSWORD)
            .await
            .data("login"),
    );
    let second = Tokens::from_payload(
        app.login_email("ada@example.com", PASSWORD)
            .await
            .data("login"),
    );

    assert_ne!(first.refresh, second.refresh);
    assert_ne!(first.access, second.access);
    assert!(app.me_ok(&registered.access).await);
    assert!(app.me_ok(&first.access).await);
    assert!(app.me_ok(&second.access).await);
    // Ending the first session leaves the others alive.
    app.logout(Some(&first.access), None, false)
        .await
        .expect_success();
    assert!(!app.me_ok(&first.access).await);
    assert!(app.me_ok(&second.access).await);
    assert!(app.me_ok(&registered.access).await);
    app.refresh(&second.refresh).await.expect_success();
}

async fn login_with_a_wrong_password_fails_with_invalid_credentials(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("ada@example.com", PASSWORD, Some("ada"))
        .await
        .expect_success();

    let by_email = app.login_email("ada@example.com", "wrong password").await;
    let by_username = app.login_username("ada", "wrong password").await;
    let wrong_case = app
        .login_email("ada@example.com", &PASSWORD.to_uppercase())
        .await;

    by_email.expect_only_error("INVALID_CREDENTIALS");
    by_username.expect_only_error("INVALID_CREDENTIALS");
    wrong_case.expect_only_error("INVALID_CREDENTIALS");
}

async fn login_with_an_unknown_email_fails_exactly_like_a_wrong_password(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("ada@example.com").await;

    let wrong = app.login_email("ada@example.com", "wrong password").await;
    let unknown = app.login_email("nobody@example.com", PASSWORD).await;

    let wrong = wrong.expect_only_error("INVALID_CREDENTIALS");
    let unknown = unknown.expect_only_error("INVALID_CREDENTIALS");
    assert_eq!(unknown["message"], wrong["message"]);
    assert_eq!(unknown["extensions"], wrong["extensions"]);
}

async fn login_with_an_unknown_username_fails_exactly_like_a_wrong_password(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("ada@example.com", PASSWORD, Some("ada"))
        .await
        .expect_success();

    let wrong = app.login_username("ada", "wrong password").await;
    let unknown = app.login_username("nobody", PASSWORD).await;
    // An account without a username cannot be reached by its email's local part.
    app.register_ok("grace@example.com").await;
    let no_username = app.login_username("grace", PASSWORD).await;

    let wrong = wrong.expect_only_error("INVALID_CREDENTIALS");
    let unknown = unknown.expect_only_error("INVALID_CREDENTIALS");
    no_username.expect_only_error("INVALID_CREDENTIALS");
    assert_eq!(unknown["message"], wrong["message"]);
    assert_eq!(unknown["extensions"], wrong["extensions"]);
}

async fn login_with_a_password_over_72_bytes_fails_even_when_its_first_72_bytes_are_right(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let password = "p".repeat(72);
    app.register("ada@example.com", &password, None)
        .await
        .expect_success();
    let wrong = app.login_email("ada@example.com", "wrong password").await;

    let longer = app
        .login_email("ada@example.com", &format!("{password}x"))
        .await;
    let much_longer = app
        .login_email("ada@example.com", &format!("{password}{}", "€".repeat(100)))
        .await;

    let wrong = wrong.expect_only_error("INVALID_CREDENTIALS");
    let longer = longer.expect_only_error("INVALID_CREDENTIALS");
    much_longer.expect_only_error("INVALID_CREDENTIALS");
    assert_eq!(longer["message"], wrong["message"]);
    app.login_email("ada@example.com", &password)
        .await
        .expect_success();
}

async fn login_with_both_email_and_username_fails_on_the_email_field(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("ada@example.com", PASSWORD, Some("ada"))
        .await
        .expect_success();

    let r = app
        .login(json!({"email": "ada@example.com", "username": "ada", "password": PASSWORD}))
        .await;

    r.expect_bad_input("email");
}

async fn login_with_neither_email_nor_username_fails_on_the_email_field(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("ada@example.com").await;

    let omitted = app.login(json!({"password": PASSWORD})).await;
    let nulls = app
        .login(json!({"email": null, "username": null, "password": PASSWORD}))
        .await;

    omitted.expect_bad_input("email");
    nulls.expect_bad_input("email");
}

async fn login_with_a_too_short_password_fails_with_invalid_credentials_not_bad_input(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.register("ada@example.com", PASSWORD, Some("ada"))
        .await
        .expect_success();

    for password in ["", "short", "1234567"] {
        app.login_email("ada@example.com", password)
            .await
            .expect_only_error("INVALID_CREDENTIALS");
        app.login_username("ada", password)
            .await
            .expect_only_error("INVALID_CREDENTIALS");
        app.login_email("nobody@example.com", password)
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }
}

/// Wall-clock time of one login that must fail with `INVALID_CREDENTIALS`.
async fn timed_failed_login(app: &TestApp, email: &str, password: &str) -> Duration {
    let started = Instant::now();
    app.login_email(email, password)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    started.elapsed()
}

async fn a_login_for_an_unknown_account_costs_as_much_bcrypt_work_as_a_wrong_password(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| s.passwords.bcrypt_cost = 10).await;
    app.register_ok("ada@example.com").await;
    // Any lazily built dummy hash is built by now.
    timed_failed_login(&app, "warm-up@example.com", PASSWORD).await;

    // Interleaved, so a burst of load elsewhere slows both kinds alike; the fastest of
    // each kind is the work it really costs.
    let (mut wrong, mut unknown) = (Duration::MAX, Duration::MAX);
    for i in 0..5 {
        let w = timed_failed_login(&app, "ada@example.com", "wrong password").await;
        let u = timed_failed_login(&app, &format!("nobody{i}@example.com"), PASSWORD).await;
        wrong = wrong.min(w);
        unknown = unknown.min(u);
    }

    eprintln!("fastest wrong password: {wrong:?}, fastest unknown account: {unknown:?}");
    assert!(
        wrong >= Duration::from_millis(10),
        "a cost-10 bcrypt verification takes measurable time ({wrong:?})"
    );
    // Skipping bcrypt (or a cheaper dummy hash) makes the unknown case several times faster.
    assert!(
        unknown * 2 >= wrong,
        "unknown account {unknown:?} is much faster than a wrong password {wrong:?}"
    );
}

/// The password hash stored for `email`, read from the database.
async fn stored_hash(app: &TestApp, email: &str) -> String {
    let db = sea_orm::Database::connect(&app.database_url)
        .await
        .expect("connect");
    let found = user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(&db)
        .await
        .expect("read the user");
    db.close().await.ok();
    found.expect("the user exists").password_hash
}

/// The cost field of a bcrypt hash (`$2b$<cost>$...`).
fn bcrypt_cost(hash: &str) -> u32 {
    hash.split('$')
        .nth(2)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not a bcrypt hash: {hash}"))
}

/// Starts a second server on `app`'s database with `bcrypt_cost`, as a restart after a
/// change of `BCRYPT_COST` would; returns its `/graphql` URL.
async fn restart_at_cost(app: &TestApp, bcrypt_cost: u32) -> String {
    let mut settings = app.settings.clone();
    settings.passwords.bcrypt_cost = bcrypt_cost;
    let restarted = Application::build(settings)
        .await
        .expect("the application builds again on the same database");
    let port = restarted.port();
    tokio::spawn(restarted.run_until(std::future::pending()));
    format!("http://127.0.0.1:{port}/graphql")
}

async fn login_at(app: &TestApp, graphql_url: &str, email: &str, password: &str) -> Gql {
    let body = json!({
        "query": format!("mutation($input: LoginInput!) {{ login(input: $input) {{ {PAYLOAD} }} }}"),
        "variables": {"input": {"email": email, "password": password}},
    });
    let sent = app.client.post(graphql_url).json(&body).send().await;
    Gql::read(sent.expect("request sent")).await
}

async fn a_login_after_bcrypt_cost_changes_rehashes_the_password_at_the_new_cost(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("ada@example.com").await;
    assert_eq!(bcrypt_cost(&stored_hash(&app, "ada@example.com").await), 4);

    let restarted = restart_at_cost(&app, 5).await;
    login_at(&app, &restarted, "ada@example.com", "wrong password")
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    assert_eq!(
        bcrypt_cost(&stored_hash(&app, "ada@example.com").await),
        4,
        "a failed login rehashes nothing"
    );
    login_at(&app, &restarted, "ada@example.com", PASSWORD)
        .await
        .expect_success();

    let upgraded = stored_hash(&app, "ada@example.com").await;
    assert_eq!(bcrypt_cost(&upgraded), 5);
    login_at(&app, &restarted, "ada@example.com", PASSWORD)
        .await
        .expect_success();
    assert_eq!(
        stored_hash(&app, "ada@example.com").await,
        upgraded,
        "a hash at the configured cost is not hashed again"
    );
    login_at(&app, &restarted, "ada@example.com", "wrong password")
        .await
        .expect_only_error("INVALID_CREDENTIALS");
}

backend_tests!(
    a_login_after_bcrypt_cost_changes_rehashes_the_password_at_the_new_cost,
    login_by_email_returns_a_new_token_pair_for_the_account,
    login_by_email_ignores_case_and_surrounding_spaces,
    login_by_username_ignores_case_and_keeps_the_username_as_typed,
    each_login_opens_its_own_session,
    login_with_a_wrong_password_fails_with_invalid_credentials,
    login_with_an_unknown_email_fails_exactly_like_a_wrong_password,
    login_with_an_unknown_username_fails_exactly_like_a_wrong_password,
    login_with_a_password_over_72_bytes_fails_even_when_its_first_72_bytes_are_right,
    login_with_both_email_and_username_fails_on_the_email_field,
    login_with_neither_email_nor_username_fails_on_the_email_field,
    login_with_a_too_short_password_fails_with_invalid_credentials_not_bad_input,
    a_login_for_an_unknown_account_costs_as_much_bcrypt_work_as_a_wrong_password,
);
