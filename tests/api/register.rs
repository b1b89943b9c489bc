//! `register`: the payload, normalisation, uniqueness, the input policy, and races.

use futures::future::join_all;
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::*;

/// Asserts `value` is an RFC 3339 timestamp.
fn assert_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not an RFC 3339 timestamp: {e}"));
}

async fn registration_returns_bearer_tokens_their_lifetimes_and_the_normalised_user(
    backend: Backend,
) {
    let app = spawn_app(backend).await;

    let r = app
        .register(
            "  Ada.Lovelace@Example.COM ",
            PASSWORD,
            Some("Ada_Lovelace"),
        )
        .await;

    r.expect_success();
    let p = r.data("register");
    assert_eq!(p["tokenType"], "Bearer");
    assert_eq!(p["expiresIn"], 900);
    assert_eq!(p["refreshExpiresIn"], 604_800);
    let access = p["accessToken"].as_str().expect("accessToken");
    let refresh = p["refreshToken"].as_str().expect("refreshToken");
    assert_eq!(
        access.split('.').count(),
        3,
        "the access token is a JWT: {access}"
    );
    assert!(
        refresh.len() >= 22,
        "a refresh token of 128 bits or more: {refresh}"
    );
    assert_ne!(access, refresh);
    let user = &p["user"];
    uuid::Uuid::parse_str(user["id"].as_str().expect("id")).expect("the id is a UUID");
    assert_eq!(user["email"], "ada.lovelace@example.com");
    assert_eq!(user["username"], "Ada_Lovelace");
    assert_timestamp(&user["createdAt"]);
    assert_timestamp(&user["updatedAt"]);
    assert_eq!(user["createdAt"], user["updatedAt"]);
}

async fn registration_opens_a_session_whose_tokens_work(backend: Backend) {
    let app = spawn_app(backend).await;

    let tokens = app.register_ok("ada@example.com").await;

    let me = app.me(Some(&tokens.access)).await;
    me.expect_success();
    assert_eq!(me.data("me")["id"].as_str(), Some(tokens.user_id.as_str()));
    assert_eq!(me.data("me")["email"], "ada@example.com");
    let refreshed = app.refresh(&tokens.refresh).await;
    refreshed.expect_success();
    assert_eq!(
        refreshed.data("refreshToken")["user"]["id"].as_str(),
        Some(tokens.user_id.as_str())
    );
}

async fn registration_without_a_username_leaves_it_null(backend: Backend) {
    let app = spawn_app(backend).await;

    let r = app.register("ada@example.com", PASSWORD, None).await;

    r.expect_success();
    let user = &r.data("register")["user"];
    assert_eq!(user["email"], "ada@example.com");
    assert!(user["username"].is_null(), "username in {user}");
}

async fn registering_an_existing_email_in_another_case_fails_with_email_taken(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("ada@example.com").await;

    let r = app.register(" ADA@Example.com ", PASSWORD, None).await;

    r.expect_only_error("EMAIL_TAKEN");
    let again = app
        .register("ada@example.com", "another password", Some("someone"))
        .await;
    again.expect_only_error("EMAIL_TAKEN");
}

async fn registering_a_taken_username_in_another_case_fails_with_username_taken(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("ada@example.com", PASSWORD, Some("Ada.Lovelace"))
        .await
        .expect_success();

    let r = app
        .register("grace@example.com", PASSWORD, Some("aDA.lOVELACE"))
        .await;

    r.expect_only_error("USERNAME_TAKEN");
    let exact = app
        .register("grace@example.com", PASSWORD, Some("Ada.Lovelace"))
        .await;
    exact.expect_only_error("USERNAME_TAKEN");
}

async fn registering_with_a_malformed_email_fails_on_the_email_field(backend: Backend) {
    let app = spawn_app(backend).await;

    for email in [
        "",
        "   ",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "ada @example.com",
        "ada@example..com",
    ] {
        let r = app.register(email, PASSWORD, None).await;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{email:?}: {}", r.body);
        r.expect_bad_input("email");
    }
}

async fn registering_with_a_seven_character_password_fails_on_the_password_field(backend: Backend) {
    let app = spawn_app(backend).await;

    let r = app.register("ada@example.com", "1234567", None).await;

    r.expect_bad_input("password");
    app.register("ada@example.com", "12345678", None)
        .await
        .expect_success();
}

async fn registering_with_seven_multibyte_characters_fails_because_the_minimum_counts_characters(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let seven = "é".repeat(7);
    let eight = "é".repeat(8);
    assert_eq!((seven.len(), eight.chars().count()), (14, 8));

    app.register("ada@example.com", &seven, None)
        .await
        .expect_bad_input("password");
    app.register("ada@example.com", &eight, None)
        .await
        .expect_success();
    app.login_email("ada@example.com", &eight)
        .await
        .expect_success();
}

async fn registering_with_a_73_byte_password_fails_on_the_password_field(backend: Backend) {
    let app = spawn_app(backend).await;

    let r = app.register("ada@example.com", &"p".repeat(73), None).await;

    r.expect_bad_input("password");
}

async fn registering_with_25_euro_signs_fails_because_the_limit_counts_bytes(backend: Backend) {
    let app = spawn_app(backend).await;
    let password = "€".repeat(25);
    assert_eq!((password.chars().count(), password.len()), (25, 75));

    let r = app.register("ada@example.com", &password, None).await;

    r.expect_bad_input("password");
}

async fn registering_with_a_72_byte_password_succeeds_and_the_password_logs_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let ascii = "p".repeat(72);
    let euros = "€".repeat(24);
    assert_eq!(euros.len(), 72);

    app.register("ada@example.com", &ascii, None)
        .await
        .expect_success();
    app.register("grace@example.com", &euros, None)
        .await
        .expect_success();

    app.login_email("ada@example.com", &ascii)
        .await
        .expect_success();
    app.login_email("grace@example.com", &euros)
        .await
        .expect_success();
    // Nothing was truncated: a 71-byte prefix is not the password.
    app.login_email("ada@example.com", &ascii[..71])
        .await
        .expect_only_error("INVALID_CREDENTIALS");
}

async fn registering_with_a_too_short_username_fails_on_the_username_field(backend: Backend) {
    let app = spawn_app(backend).await;

    let r = app.register("ada@example.com", PASSWORD, Some("ab")).await;

    r.expect_bad_input("username");
    app.register("ada@example.com", PASSWORD, Some("abc"))
        .await
        .expect_success();
}

async fn registering_with_a_too_long_username_fails_on_the_username_field(backend: Backend) {
    let app = spawn_app(backend).await;

    let r = app
        .register("ada@example.com", PASSWORD, Some(&"a".repeat(33)))
        .await;

    r.expect_bad_input("username");
    app.register("ada@example.com", PASSWORD, Some(&"a".repeat(32)))
        .await
        .expect_success();
}

async fn registering_with_forbidden_username_characters_fails_on_the_username_field(
    backend: Backend,
) {
    let app = spawn_app(backend).await;

    for username in ["ada lovelace", "ada@home", "adä", "ada!", "ada/x", "a'--"] {
        let r = app
            .register("ada@example.com", PASSWORD, Some(username))
            .await;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{username:?}: {}", r.body);
        r.expect_bad_input("username");
    }
    app.register("ada@example.com", PASSWORD, Some("Ada_Love.lace-1"))
        .await
        .expect_success();
}

async fn a_registration_refused_as_bad_input_leaves_no_account(backend: Backend) {
    let app = spawn_app(backend).await;

    app.register("ada@example.com", "short", None)
        .await
        .expect_bad_input("password");
    app.register("ada@example.com", PASSWORD, Some("a b"))
        .await
        .expect_bad_input("username");

    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    app.login_email("ada@example.com", "short")
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    app.register("ada@example.com", PASSWORD, None)
        .await
        .expect_success();
}

async fn a_registration_refused_for_a_taken_username_leaves_no_account_for_its_email(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.register("ada@example.com", PASSWORD, Some("ada"))
        .await
        .expect_success();

    app.register("grace@example.com", PASSWORD, Some("ADA"))
        .await
        .expect_only_error("USERNAME_TAKEN");

    app.login_email("grace@example.com", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    app.register("grace@example.com", PASSWORD, Some("grace"))
        .await
        .expect_success();
}

async fn twenty_concurrent_registrations_of_one_email_create_exactly_one_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let emails: Vec<String> = (0..20)
        .map(|i| {
            if i % 2 == 0 {
                "race@example.com".to_owned()
            } else {
                " RACE@Example.com".to_owned()
            }
        })
        .collect();

    let results = join_all(emails.iter().map(|e| app.register(e, PASSWORD, None))).await;

    let mut winners = Vec::new();
    for r in &results {
        match r.code() {
            None => winners.push(Tokens::from_payload(r.data("register"))),
            Some("EMAIL_TAKEN") => {
                r.expect_only_error("EMAIL_TAKEN");
            }
            Some(other) => panic!("unexpected {other} in {}", r.body),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one registration wins");
    let login = app.login_email("race@example.com", PASSWORD).await;
    login.expect_success();
    assert_eq!(
        login.data("login")["user"]["id"].as_str(),
        Some(winners[0].user_id.as_str())
    );
}

async fn twenty_concurrent_registrations_of_one_username_create_exactly_one_account(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let emails: Vec<String> = (0..20).map(|i| format!("racer{i}@example.com")).collect();

    let results = join_all(emails.iter().enumerate().map(|(i, e)| {
        app.register(
            e,
            PASSWORD,
            Some(if i % 2 == 0 { "Racer" } else { "rACER" }),
        )
    }))
    .await;

    let mut winners = Vec::new();
    for (email, r) in emails.iter().zip(&results) {
        match r.code() {
            None => winners.push(email.clone()),
            Some("USERNAME_TAKEN") => {
                r.expect_only_error("USERNAME_TAKEN");
                app.login_email(email, PASSWORD)
                    .await
                    .expect_only_error("INVALID_CREDENTIALS");
            }
            Some(other) => panic!("unexpected {other} in {}", r.body),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one registration wins");
    let login = app.login_username("racer", PASSWORD).await;
    login.expect_success();
    assert_eq!(
        login.data("login")["user"]["email"].as_str(),
        Some(winners[0].as_str())
    );
}

backend_tests!(
    registration_returns_bearer_tokens_their_lifetimes_and_the_normalised_user,
    registration_opens_a_session_whose_tokens_work,
    registration_without_a_username_leaves_it_null,
    registering_an_existing_email_in_another_case_fails_with_email_taken,
    registering_a_taken_username_in_another_case_fails_with_username_taken,
    registering_with_a_malformed_email_fails_on_the_email_field,
    registering_with_a_seven_character_password_fails_on_the_password_field,
    registering_with_seven_multibyte_characters_fails_because_the_minimum_counts_characters,
    registering_with_a_73_byte_password_fails_on_the_password_field,
    registering_with_25_euro_signs_fails_because_the_limit_counts_bytes,
    registering_with_a_72_byte_password_succeeds_and_the_password_logs_in,
    registering_with_a_too_short_username_fails_on_the_username_field,
    registering_with_a_too_long_username_fails_on_the_username_field,
    registering_with_forbidden_username_characters_fails_on_the_username_field,
    a_registration_refused_as_bad_input_leaves_no_account,
    a_registration_refused_for_a_taken_username_leaves_no_account_for_its_email,
    twenty_concurrent_registrations_of_one_email_create_exactly_one_account,
    twenty_concurrent_registrations_of_one_username_create_exactly_one_account,
);
