//! `securityEvents`: what happened to the caller's account, newest first, each with its
//! kind, outcome, session and client, and never a secret; failures of unknown accounts
//! and other users' events stay out of it.

use std::time::Duration;

use auth_server::entity::{refresh_token, security_event};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use super::{LOOPBACK, database, event_rows, instant, kinds, rows_until, sid};
use crate::backend_tests;
use crate::helpers::*;

const NEW_PASSWORD: &str = "a brand new passphrase";

/// One expected event: kind, outcome, session (if any), user agent, detail (if checked).
struct Expected<'a> {
    kind: &'a str,
    outcome: &'a str,
    session: Option<String>,
    agent: &'a str,
    detail: Option<&'a str>,
}

fn expected<'a>(
    kind: &'a str,
    outcome: &'a str,
    session: Option<&Tokens>,
    agent: &'a str,
) -> Expected<'a> {
    Expected {
        kind,
        outcome,
        session: session.map(|t| sid(&t.access)),
        agent,
        detail: None,
    }
}

fn check(events: &[Value], want: &[Expected<'_>]) {
    assert_eq!(
        kinds(events),
        want.iter().map(|w| w.kind).collect::<Vec<_>>(),
        "kinds, newest first: {events:#?}"
    );
    for (event, w) in events.iter().zip(want) {
        assert_eq!(event["outcome"], json!(w.outcome), "{event}");
        assert_eq!(event["sessionId"], json!(w.session), "{event}");
        assert_eq!(event["ip"], json!(LOOPBACK), "{event}");
        assert_eq!(event["userAgent"], json!(w.agent), "{event}");
        if let Some(detail) = w.detail {
            assert_eq!(event["detail"], json!(detail), "{event}");
        }
    }
    for pair in events.windows(2) {
        assert!(
            instant(&pair[0]["at"]) >= instant(&pair[1]["at"]),
            "newest first: {pair:#?}"
        );
    }
    let mut unique: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), events.len(), "ids are unique");
}

async fn every_kind_of_account_event_is_listed_newest_first_with_its_session_and_client(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| s.tokens.reuse_grace = Duration::ZERO).await;
    let email = "ada@example.com";
    let s1 = app.register_from("1 register", email).await;
    app.login_fails_from("2 wrong password", email).await;
    // The failure is stored by the buffered writer: wait for it, so the order is certain.
    app.events_until(&s1.access, "the failed login", |e| e.len() == 2)
        .await;
    let s2 = app.login_ok_from("3 login", email).await;
    app.refresh_from("4 refresh", &s2.refresh)
        .await
        .expect_success();
    app.refresh_from("5 replay", &s2.refresh)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    let s3 = app.login_ok_from("6 login", email).await;
    app.gql_from(
        "7 logout",
        "mutation { logout }",
        json!({}),
        Some(&s3.access),
    )
    .await
    .expect_success();
    let s4 = app.login_ok_from("8 login", email).await;
    let s5 = app.login_ok_from("9 login", email).await;
    let revoked = app
        .revoke_session_from("10 revoke", &s5.access, &sid(&s4.access))
        .await;
    assert_eq!(revoked.data("revokeSession"), &json!(true));
    let wrong = app
        .gql_from(
            "11 wrong current password",
            "mutation($c: String!, $p: String!) { changePassword(currentPassword: $c, newPassword: $p) { accessToken } }",
            json!({"c": "not the password at all", "p": NEW_PASSWORD}),
            Some(&s1.access),
        )
        .await;
    wrong.expect_only_error("INVALID_CREDENTIALS");
    app.events_until(&s1.access, "the failed password check", |e| {
        e.first()
            .is_some_and(|e| e["kind"] == json!("password_check"))
    })
    .await;
    let changed = app
        .gql_from(
            "12 change password",
            "mutation($c: String!, $p: String!) { changePassword(currentPassword: $c, newPassword: $p) { accessToken } }",
            json!({"c": PASSWORD, "p": NEW_PASSWORD}),
            Some(&s1.access),
        )
        .await;
    changed.expect_success();
    let s1_access = changed.data("changePassword")["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    app.gql_from(
        "13 logout everywhere",
        "mutation { logout(allSessions: true) }",
        json!({}),
        Some(&s1_access),
    )
    .await
    .expect_success();

    // Read with a fresh session (its login is the newest event).
    let reader = Tokens::from_payload(
        app.login_from("14 reader", email, NEW_PASSWORD)
            .await
            .data("login"),
    );
    let events = app.events_ok(&reader.access).await;
    let mut want = vec![
        expected("login", "success", Some(&reader), "14 reader"),
        expected("logout_all", "success", Some(&s1), "13 logout everywhere"),
        expected(
            "password_changed",
            "success",
            Some(&s1),
            "12 change password",
        ),
        expected(
            "password_check",
            "failure",
            None,
            "11 wrong current password",
        ),
        expected("session_revoked", "success", Some(&s4), "10 revoke"),
        expected("login", "success", Some(&s5), "9 login"),
        expected("login", "success", Some(&s4), "8 login"),
        expected("logout", "success", Some(&s3), "7 logout"),
        expected("login", "success", Some(&s3), "6 login"),
        expected("refresh_reuse", "failure", Some(&s2), "5 replay"),
        expected("login", "success", Some(&s2), "3 login"),
        expected("login", "failure", None, "2 wrong password"),
        expected("register", "success", Some(&s1), "1 register"),
    ];
    want[4].detail = Some("other");
    want[11].detail = Some("invalid_credentials");
    check(&events, &want);
    // The default page (20) holds them all too.
    assert_eq!(
        super::ids(&app.security_events_default(&reader.access).await),
        super::ids(&events)
    );
}

async fn a_failed_login_appears_within_moments(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    app.login_fails_from("Guesser/1", "ada@example.com").await;
    let events = app
        .events_until(&ada.access, "the failed login", |e| e.len() == 2)
        .await;
    let failed = &events[0];
    assert_eq!(failed["kind"], json!("login"));
    assert_eq!(failed["outcome"], json!("failure"));
    assert_eq!(failed["sessionId"], Value::Null);
    assert_eq!(failed["userAgent"], json!("Guesser/1"));
    assert_eq!(failed["ip"], json!(LOOPBACK));
}

async fn a_failed_login_of_an_unknown_account_is_no_event_of_any_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let bob = app.register_ok("bob@example.com").await;
    app.login_fails_from("Guesser/1", "nobody@example.com")
        .await;
    // Something stored after it by the same writer: ada's own failure.
    app.login_fails_from("Ada/typo", "ada@example.com").await;
    let db = database(&app).await;
    let rows = rows_until(&db, "both failed logins", |rows| {
        rows.iter()
            .filter(|r| r.kind == "login" && r.outcome == "failure")
            .count()
            == 2
    })
    .await;
    let unknown: Vec<&security_event::Model> = rows
        .iter()
        .filter(|r| r.user_agent.as_deref() == Some("Guesser/1"))
        .collect();
    assert_eq!(unknown.len(), 1, "{rows:#?}");
    assert_eq!(unknown[0].user_id, None, "an unknown account has no user");
    assert_eq!(unknown[0].session_id, None);
    let unknown_id = unknown[0].id.to_string();
    assert!(
        !format!("{rows:?}").contains("nobody"),
        "the identifier tried is not stored: {rows:#?}"
    );

    let ada_events = app.events_ok(&ada.access).await;
    assert_eq!(kinds(&ada_events), ["login", "register"], "{ada_events:#?}");
    assert_eq!(ada_events[0]["userAgent"], json!("Ada/typo"));
    let bob_events = app.events_ok(&bob.access).await;
    assert_eq!(kinds(&bob_events), ["register"], "{bob_events:#?}");
    for e in ada_events.iter().chain(&bob_events) {
        assert_ne!(e["id"], json!(unknown_id));
    }
    db.close().await.ok();
}

async fn a_rate_limit_trip_is_an_event_of_the_account(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.login_per_account = 2).await;
    let ada = app.register_ok("ada@example.com").await;
    app.login_fails_from("Guesser/1", "ada@example.com").await;
    app.login_fails_from("Guesser/2", "ada@example.com").await;
    let refused = app
        .login_from("Guesser/3", "ada@example.com", "still wrong")
        .await;
    refused.expect_only_error("RATE_LIMITED");
    // Refused again within the minute: counted, but one trip event is enough.
    app.login_from("Guesser/4", "ada@example.com", "still wrong")
        .await
        .expect_only_error("RATE_LIMITED");

    let events = app
        .events_until(&ada.access, "the trip and both failures", |e| {
            kinds(e) == ["rate_limited", "login", "login", "register"]
        })
        .await;
    let trip = &events[0];
    assert_eq!(trip["outcome"], json!("failure"));
    assert_eq!(trip["detail"], json!("login_account"));
    assert_eq!(trip["userAgent"], json!("Guesser/3"));
    assert_eq!(trip["ip"], json!(LOOPBACK));
    assert_eq!(trip["sessionId"], Value::Null);
}

async fn a_trip_of_a_per_ip_limit_is_stored_without_a_user(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limits.login_per_ip = 1;
        s.rate_limits.register_per_ip = 1;
    })
    .await;
    let ada = app.register_ok("ada@example.com").await;
    app.register("bob@example.com", PASSWORD, None)
        .await
        .expect_only_error("RATE_LIMITED");
    app.login_fails_from("Guesser/1", "ada@example.com").await;
    app.login_from("Guesser/2", "ada@example.com", PASSWORD)
        .await
        .expect_only_error("RATE_LIMITED");
    let db = database(&app).await;
    let rows = rows_until(&db, "both trips", |rows| {
        rows.iter().filter(|r| r.kind == "rate_limited").count() == 2
    })
    .await;
    let trips: Vec<&security_event::Model> =
        rows.iter().filter(|r| r.kind == "rate_limited").collect();
    let mut details: Vec<&str> = trips.iter().filter_map(|r| r.detail.as_deref()).collect();
    details.sort_unstable();
    assert_eq!(details, ["login_ip", "register_ip"], "{trips:#?}");
    for trip in &trips {
        assert_eq!(trip.outcome, "failure");
        assert_eq!(
            trip.user_id, None,
            "a per-IP limit names no account: {trip:?}"
        );
        assert_eq!(trip.ip.as_deref(), Some(LOOPBACK));
    }
    // Not ada's: they name no account.
    let events = app.events_ok(&ada.access).await;
    assert!(
        events.iter().all(|e| e["kind"] != json!("rate_limited")),
        "{events:#?}"
    );
    db.close().await.ok();
}

async fn a_user_never_sees_another_users_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_from("Ada/1", "ada@example.com").await;
    let bob = app.register_from("Bob/1", "bob@example.com").await;
    let bob2 = app.login_ok_from("Bob/2", "bob@example.com").await;
    app.login_fails_from("Bob/3", "bob@example.com").await;
    assert!(app.revoke_session(&bob.access, &sid(&bob2.access)).await);
    app.logout(Some(&bob.access), None, false)
        .await
        .expect_success();
    let bob3 = app.login_ok_from("Bob/4", "bob@example.com").await;
    let bobs = app
        .events_until(&bob3.access, "bob's failed login", |e| e.len() == 6)
        .await;

    let adas = app.events_ok(&ada.access).await;
    assert_eq!(kinds(&adas), ["register"], "{adas:#?}");
    assert_eq!(adas[0]["sessionId"], json!(sid(&ada.access)));
    let bob_sessions = [sid(&bob.access), sid(&bob2.access), sid(&bob3.access)];
    for e in &adas {
        assert!(!bob_sessions.iter().any(|s| e["sessionId"] == json!(s)));
        assert!(!bobs.iter().any(|b| b["id"] == e["id"]));
    }
}

/// Every string in `haystack` (the JSON of events, or rows) must hold none of `secrets`.
fn assert_holds_none(haystack: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !haystack.contains(secret.as_str()),
            "a secret ({}...) is in {haystack}",
            &secret[..secret.len().min(12)]
        );
    }
}

async fn no_event_holds_a_password_or_a_token(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.tokens.reuse_grace = Duration::ZERO).await;
    let email = "ada@example.com";
    let mut secrets = vec![PASSWORD.to_owned(), NEW_PASSWORD.to_owned()];
    let first = app.register_from("Agent/1", email).await;
    let wrong_password = "a wrong password, 123";
    secrets.push(wrong_password.to_owned());
    app.login_from("Agent/2", email, wrong_password)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    let second = app.login_ok_from("Agent/3", email).await;
    let rotated = Tokens::from_payload(app.refresh(&second.refresh).await.data("refreshToken"));
    app.refresh(&second.refresh)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    let changed = app
        .change_password(&first.access, PASSWORD, NEW_PASSWORD)
        .await;
    changed.expect_success();
    let changed = Tokens::from_payload(changed.data("changePassword"));
    app.change_password(&changed.access, "a wrong current one", NEW_PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    secrets.push("a wrong current one".to_owned());
    let third = Tokens::from_payload(app.login_email(email, NEW_PASSWORD).await.data("login"));
    app.logout(None, Some(&third.refresh), false)
        .await
        .expect_success();
    for t in [&first, &second, &rotated, &changed, &third] {
        secrets.push(t.access.clone());
        secrets.push(t.refresh.clone());
        // The signature alone, in case a token were stored cut.
        secrets.push(t.access.rsplit('.').next().unwrap().to_owned());
    }

    let db = database(&app).await;
    // The stored hashes of every refresh token ever issued.
    let hashes: Vec<String> = refresh_token::Entity::find()
        .all(&db)
        .await
        .expect("refresh_tokens reads")
        .into_iter()
        .map(|row| row.token_hash)
        .collect();
    assert!(!hashes.is_empty());
    secrets.extend(hashes);

    let rows = rows_until(&db, "both password failures", |rows| {
        rows.iter().filter(|r| r.outcome == "failure").count() == 3
    })
    .await;
    assert_holds_none(&format!("{rows:?}"), &secrets);
    let events = app.events_ok(&changed.access).await;
    assert_eq!(events.len(), rows.len(), "{events:#?}");
    assert_holds_none(&serde_json::to_string(&events).unwrap(), &secrets);
    assert!(
        event_rows(&db)
            .await
            .iter()
            .all(|r| r.detail.as_deref().is_none_or(|d| d.len() <= 128)),
        "details are short"
    );
    db.close().await.ok();
}

async fn security_events_without_a_valid_access_token_is_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    app.security_events(None, json!(10), Value::Null)
        .await
        .expect_only_error("UNAUTHENTICATED");
    app.security_events(Some("junk"), json!(10), Value::Null)
        .await
        .expect_only_error("UNAUTHENTICATED");
    let ada = app.register_ok("ada@example.com").await;
    app.security_events(Some(&ada.refresh), json!(10), Value::Null)
        .await
        .expect_only_error("UNAUTHENTICATED");
}

backend_tests!(
    every_kind_of_account_event_is_listed_newest_first_with_its_session_and_client,
    a_failed_login_appears_within_moments,
    a_failed_login_of_an_unknown_account_is_no_event_of_any_user,
    a_rate_limit_trip_is_an_event_of_the_account,
    a_trip_of_a_per_ip_limit_is_stored_without_a_user,
    a_user_never_sees_another_users_events,
    no_event_holds_a_password_or_a_token,
    security_events_without_a_valid_access_token_is_unauthenticated,
);
