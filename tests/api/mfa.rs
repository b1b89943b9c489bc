//! TOTP and recovery codes over HTTP: enrolment, the login that answers `MFA_REQUIRED`,
//! `verifyMfa`, and the attacker's side (replay, expired, reused and foreign tickets,
//! brute force, concurrent use of one code). Time steps move on a `ManualClock`.

use std::time::Duration;

use auth_server::Collaborators;
use auth_server::auth::totp::{code_of_base32, qr_code_svg};
use auth_server::clock::ManualClock;
use auth_server::config::{LimitStore, RedisFailure, RedisSettings};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;

const ENROLL: &str = "mutation { enrollTotp { secret otpauthUri qrCodeSvg } }";
const CONFIRM: &str = "mutation($code: String!) { confirmTotp(code: $code) }";
const DISABLE: &str = "mutation($password: String!) { disableTotp(password: $password) }";
const STEP: Duration = Duration::from_secs(30);

fn verify_query() -> String {
    format!(
        "mutation($t: String!, $c: String!) {{ verifyMfa(mfaToken: $t, code: $c) {{ {PAYLOAD} }} }}"
    )
}

/// An account with TOTP on, as its owner sees it.
struct Enrolled {
    email: String,
    /// The session that enrolled.
    tokens: Tokens,
    /// Base32, as `enrollTotp` showed it.
    secret: String,
    recovery_codes: Vec<String>,
}

impl Enrolled {
    /// The code an authenticator app shows at `clock`'s time, `steps` steps away.
    fn code(&self, clock: &ManualClock, steps: i64) -> String {
        let at = clock.now() + chrono::Duration::seconds(30 * steps);
        code_of_base32(&self.secret, at).expect("a code")
    }
}

/// Registers `email`, enrols and confirms TOTP at the clock's time, then moves the clock
/// one step on (the confirming code's step is spent).
async fn enrolled(app: &TestApp, clock: &ManualClock, email: &str) -> Enrolled {
    let tokens = app.register_ok(email).await;
    let enrolment = app.gql(ENROLL, json!({}), Some(&tokens.access)).await;
    enrolment.expect_success();
    let secret = enrolment.data("enrollTotp")["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let code = code_of_base32(&secret, clock.now()).expect("a code");
    let confirmed = app
        .gql(CONFIRM, json!({"code": code}), Some(&tokens.access))
        .await;
    confirmed.expect_success();
    let recovery_codes = confirmed
        .data("confirmTotp")
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("a code").to_owned())
        .collect();
    clock.advance(STEP);
    Enrolled {
        email: email.to_owned(),
        tokens,
        secret,
        recovery_codes,
    }
}

/// Logs `email` in and returns the `MFA_REQUIRED` error's ticket and methods.
async fn challenge(app: &TestApp, email: &str) -> (String, Value) {
    let r = app.login_email(email, PASSWORD).await;
    let error = r.expect_only_error("MFA_REQUIRED");
    let ticket = error["extensions"]["mfaToken"]
        .as_str()
        .expect("mfaToken")
        .to_owned();
    (ticket, error["extensions"]["methods"].clone())
}

async fn verify(app: &TestApp, ticket: &str, code: &str) -> Gql {
    app.gql(&verify_query(), json!({"t": ticket, "c": code}), None)
        .await
}

/// The `amr` claim of an access token (its payload, unverified: the server verified it).
fn amr(access: &str) -> Value {
    let payload = access.split('.').nth(1).expect("a JWT");
    let bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims["amr"].clone()
}

async fn mfa_enabled(app: &TestApp, access: &str) -> bool {
    let r = app
        .gql("{ me { mfaEnabled } }", json!({}), Some(access))
        .await;
    r.expect_success();
    r.data("me")["mfaEnabled"].as_bool().expect("a boolean")
}

async fn enrolling_confirming_and_verifying_a_code_signs_in_with_amr_pwd_otp(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let tokens = app.register_ok("ada@example.com").await;
    assert!(!mfa_enabled(&app, &tokens.access).await);

    let enrolment = app.gql(ENROLL, json!({}), Some(&tokens.access)).await;
    enrolment.expect_success();
    let secret = enrolment.data("enrollTotp")["secret"].as_str().unwrap();
    let uri = enrolment.data("enrollTotp")["otpauthUri"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160 bits in base32: {secret}");
    assert!(
        uri.starts_with("otpauth://totp/auth-server:ada%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains("issuer=auth-server"), "{uri}");
    // The URI's QR code (that it reads back as the URI is `auth::totp::qr`'s unit test).
    let qr = enrolment.data("enrollTotp")["qrCodeSvg"].as_str().unwrap();
    assert_eq!(qr, qr_code_svg(uri).unwrap());
    assert!(
        qr.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{qr}"
    );
    // Pending: login is unchanged until confirmed.
    assert!(!mfa_enabled(&app, &tokens.access).await);
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();

    let code = code_of_base32(secret, clock.now()).unwrap();
    let confirmed = app
        .gql(CONFIRM, json!({"code": code}), Some(&tokens.access))
        .await;
    confirmed.expect_success();
    let codes = confirmed.data("confirmTotp").as_array().unwrap().clone();
    assert_eq!(codes.len(), 10);
    assert!(mfa_enabled(&app, &tokens.access).await);
    clock.advance(STEP);

    let login = app.login_email("ada@example.com", PASSWORD).await;
    let error = login.expect_only_error("MFA_REQUIRED");
    assert_eq!(
        error["extensions"]["methods"],
        json!(["totp", "recovery_code"])
    );
    let ticket = error["extensions"]["mfaToken"].as_str().unwrap();
    let code = code_of_base32(secret, clock.now()).unwrap();
    let signed_in = verify(&app, ticket, &code).await;
    signed_in.expect_success();
    let fresh = Tokens::from_payload(signed_in.data("verifyMfa"));
    assert_eq!(fresh.user_id, tokens.user_id);
    assert_eq!(amr(&fresh.access), json!(["pwd", "otp"]));
    assert!(app.me_ok(&fresh.access).await);
    assert!(mfa_enabled(&app, &fresh.access).await);

    // The session keeps how it was authenticated through its refreshes.
    let refreshed = app.refresh(&fresh.refresh).await;
    refreshed.expect_success();
    let access = refreshed.data("refreshToken")["accessToken"]
        .as_str()
        .unwrap();
    assert_eq!(amr(access), json!(["pwd", "otp"]));
}

async fn an_account_without_a_factor_logs_in_as_before_with_amr_pwd(backend: Backend) {
    let app = spawn_app(backend).await;
    let registered = app.register_ok("bob@example.com").await;
    assert_eq!(amr(&registered.access), json!(["pwd"]));

    let login = app.login_email("bob@example.com", PASSWORD).await;
    login.expect_success();
    let tokens = Tokens::from_payload(login.data("login"));
    assert_eq!(amr(&tokens.access), json!(["pwd"]));
    assert!(!mfa_enabled(&app, &tokens.access).await);
    let refreshed = app.refresh(&tokens.refresh).await;
    refreshed.expect_success();
    let access = refreshed.data("refreshToken")["accessToken"]
        .as_str()
        .unwrap();
    assert_eq!(amr(access), json!(["pwd"]));
}

async fn codes_one_step_away_are_accepted_and_two_steps_away_refused(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let ada = enrolled(&app, &clock, "ada@example.com").await;
    // Two steps past the confirmation's, so the step before is unused too.
    clock.advance(STEP);

    // Two steps away, either way: refused (the ticket stays usable).
    let (ticket, _) = challenge(&app, &ada.email).await;
    for steps in [-2, 2] {
        verify(&app, &ticket, &ada.code(&clock, steps))
            .await
            .expect_only_error("INVALID_MFA_CODE");
    }
    // The step before: accepted.
    verify(&app, &ticket, &ada.code(&clock, -1))
        .await
        .expect_success();

    // The step after (a phone a little ahead): accepted.
    let (ticket, _) = challenge(&app, &ada.email).await;
    verify(&app, &ticket, &ada.code(&clock, 1))
        .await
        .expect_success();
}

async fn a_used_code_and_older_ones_are_refused(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let ada = enrolled(&app, &clock, "ada@example.com").await;
    let code = ada.code(&clock, 0);
    let (ticket, _) = challenge(&app, &ada.email).await;
    verify(&app, &ticket, &code).await.expect_success();

    let (ticket, _) = challenge(&app, &ada.email).await;
    verify(&app, &ticket, &code)
        .await
        .expect_only_error("INVALID_MFA_CODE");
    // The step before, still inside the window, is older than the one used.
    verify(&app, &ticket, &ada.code(&clock, -1))
        .await
        .expect_only_error("INVALID_MFA_CODE");
    // The next step's code is new.
    clock.advance(STEP);
    verify(&app, &ticket, &ada.code(&clock, 0))
        .await
        .expect_success();
}

async fn a_recovery_code_works_once_with_amr_pwd_mfa(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let ada = enrolled(&app, &clock, "ada@example.com").await;
    let mut unique = ada.recovery_codes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10);
    let code = &ada.recovery_codes[3];

    let (ticket, methods) = challenge(&app, &ada.email).await;
    assert_eq!(methods, json!(["totp", "recovery_code"]));
    // Typed in capitals, without the dashes: still the code.
    let typed = code.to_uppercase().replace('-', "");
    let signed_in = verify(&app, &ticket, &typed).await;
    signed_in.expect_success();
    let access = signed_in.data("verifyMfa")["accessToken"].as_str().unwrap();
    assert_eq!(amr(access), json!(["pwd", "mfa"]));

    let (ticket, _) = challenge(&app, &ada.email).await;
    verify(&app, &ticket, code)
        .await
        .expect_only_error("INVALID_MFA_CODE");
    // Another of the codes still works.
    verify(&app, &ticket, &ada.recovery_codes[4])
        .await
        .expect_success();
}

async fn an_expired_mfa_token_is_refused(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let ada = enrolled(&app, &clock, "ada@example.com").await;
    let (ticket, _) = challenge(&app, &ada.email).await;

    clock.advance(Duration::from_secs(5 * 60 + 1));
    verify(&app, &ticket, &ada.code(&clock, 0))
        .await
        .expect_only_error("INVALID_TOKEN");

    // Just inside the five minutes it works.
    let (ticket, _) = challenge(&app, &ada.email).await;
    clock.advance(Duration::from_secs(5 * 60 - 1));
    verify(&app, &ticket, &ada.code(&clock, 0))
        .await
        .expect_success();
}

async fn a_used_mfa_token_is_refused(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let ada = enrolled(&app, &clock, "ada@example.com").await;
    let (ticket, _) = challenge(&app, &ada.email).await;
    verify(&app, &ticket, &ada.code(&clock, 0))
        .await
        .expect_success();

    clock.advance(STEP);
    verify(&app, &ticket, &ada.code(&clock, 0))
        .await
        .expect_only_error("INVALID_TOKEN");
    verify(&app, &ticket, &ada.recovery_codes[0])
        .await
        .expect_only_error("INVALID_TOKEN");
}

async fn an_mfa_token_of_another_account_or_purpose_is_refused(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let ada = enrolled(&app, &clock, "ada@example.com").await;
    let bob = enrolled(&app, &clock, "bob@example.com").await;
    let (bobs_ticket, _) = challenge(&app, &bob.email).await;

    // Ada's code and recovery code with Bob's ticket: judged as Bob's, so wrong.
    verify(&app, &bobs_ticket, &ada.code(&clock, 0))
        .await
        .expect_only_error("INVALID_MFA_CODE");
    verify(&app, &bobs_ticket, &ada.recovery_codes[0])
        .await
        .expect_only_error("INVALID_MFA_CODE");

    // Not tickets: a refresh token, an access token, junk, a well-shaped unknown one.
    let fake = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let long = "A".repeat(10_000);
    for not_a_ticket in [
        ada.tokens.refresh.as_str(),
        ada.tokens.access.as_str(),
        "",
        "x",
        fake.as_str(),
        long.as_str(),
    ] {
        verify(&app, not_a_ticket, &ada.code(&clock, 0))
            .await
            .expect_only_error("INVALID_TOKEN");
    }

    // Bob's ticket still works with Bob's code; Ada's code was never spent.
    let signed_in = verify(&app, &bobs_ticket, &bob.code(&clock, 0)).await;
    signed_in.expect_success();
    assert_eq!(
        signed_in.data("verifyMfa")["user"]["email"],
        json!("bob@example.com")
    );
    let (adas_ticket, _) = challenge(&app, &ada.email).await;
    verify(&app, &adas_ticket, &ada.code(&clock, 0))
        .await
        .expect_success();
}

async fn an_mfa_token_dies_with_a_change_of_password(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let ada = enrolled(&app, &clock, "ada@example.com").await;
    let (ticket, _) = challenge(&app, &ada.email).await;
    app.change_password(&ada.tokens.access, PASSWORD, "another long password")
        .await
        .expect_success();
    verify(&app, &ticket, &ada.code(&clock, 0))
        .await
        .expect_only_error("INVALID_TOKEN");
}

async fn brute_forcing_codes_is_limited_per_account(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |s| s.rate_limits.mfa_per_account = 3).await;
    let ada = enrolled(&app, &clock, "ada@example.com").await;
    let bob = enrolled(&app, &clock, "bob@example.com").await;
    let (ticket, _) = challenge(&app, &ada.email).await;
    let right = ada.code(&clock, 0);
    let wrong = ["000000", "111111", "222222"]
        .into_iter()
        .find(|c| *c != right)
        .unwrap();
    // The budget of 3 codes a minute: the confirmation spent one of it.
    for _ in 0..2 {
        verify(&app, &ticket, wrong)
            .await
            .expect_only_error("INVALID_MFA_CODE");
    }
    for code in [wrong, right.as_str()] {
        let refused = verify(&app, &ticket, code).await;
        let error = refused.expect_only_error("RATE_LIMITED");
        assert!(error["extensions"]["retryAfter"].as_u64().unwrap() >= 1);
    }
    // Another account's budget is its own.
    let (bobs, _) = challenge(&app, &bob.email).await;
    verify(&app, &bobs, &bob.code(&clock, 0))
        .await
        .expect_success();
}

async fn disabling_needs_the_right_password_and_ends_the_other_sessions(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let ada = enrolled(&app, &clock, "ada@example.com").await;
    let (ticket, _) = challenge(&app, &ada.email).await;
    let other = verify(&app, &ticket, &ada.code(&clock, 0)).await;
    other.expect_success();
    let other = Tokens::from_payload(other.data("verifyMfa"));

    // Without a bearer, without the password, with a wrong one: refused.
    app.gql(DISABLE, json!({"password": PASSWORD}), None)
        .await
        .expect_only_error("UNAUTHENTICATED");
    let missing = app
        .gql(
            "mutation { disableTotp }",
            json!({}),
            Some(&ada.tokens.access),
        )
        .await;
    assert!(missing.body["errors"].is_array(), "{}", missing.body);
    assert!(missing.body["data"].is_null(), "{}", missing.body);
    app.gql(
        DISABLE,
        json!({"password": "not the password"}),
        Some(&ada.tokens.access),
    )
    .await
    .expect_only_error("INVALID_CREDENTIALS");
    assert!(mfa_enabled(&app, &ada.tokens.access).await);
    assert!(app.me_ok(&other.access).await);

    let disabled = app
        .gql(
            DISABLE,
            json!({"password": PASSWORD}),
            Some(&ada.tokens.access),
        )
        .await;
    disabled.expect_success();
    assert_eq!(disabled.data("disableTotp"), &json!(true));
    assert!(!mfa_enabled(&app, &ada.tokens.access).await);
    app.me(Some(&other.access))
        .await
        .expect_only_error("UNAUTHENTICATED");
    app.login_email(&ada.email, PASSWORD).await.expect_success();
    // Nothing left to disable.
    let again = app
        .gql(
            DISABLE,
            json!({"password": PASSWORD}),
            Some(&ada.tokens.access),
        )
        .await;
    assert_eq!(again.data("disableTotp"), &json!(false));
}

async fn a_wrong_password_for_disabling_is_a_login_attempt(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |s| s.rate_limits.login_per_account = 2).await;
    let ada = enrolled(&app, &clock, "ada@example.com").await;
    for _ in 0..2 {
        app.gql(
            DISABLE,
            json!({"password": "not the password"}),
            Some(&ada.tokens.access),
        )
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    }
    app.gql(
        DISABLE,
        json!({"password": PASSWORD}),
        Some(&ada.tokens.access),
    )
    .await
    .expect_only_error("RATE_LIMITED");
}

async fn concurrent_verifications_with_one_code_have_exactly_one_winner(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let ada = enrolled(&app, &clock, "ada@example.com").await;
    let mut tickets = Vec::new();
    for _ in 0..10 {
        tickets.push(challenge(&app, &ada.email).await.0);
    }
    let code = ada.code(&clock, 0);
    let query = verify_query();
    let answers = futures::future::join_all(
        tickets
            .iter()
            .map(|ticket| app.gql(&query, json!({"t": ticket, "c": code}), None)),
    )
    .await;
    let won = answers
        .iter()
        .filter(|a| a.body.get("errors").is_none())
        .count();
    assert_eq!(won, 1, "{answers:#?}");
    for answer in answers.iter().filter(|a| a.body.get("errors").is_some()) {
        answer.expect_only_error("INVALID_MFA_CODE");
    }

    // One ticket sent ten times at once: one session.
    clock.advance(STEP);
    let (ticket, _) = challenge(&app, &ada.email).await;
    let code = ada.code(&clock, 0);
    let answers = futures::future::join_all(
        (0..10).map(|_| app.gql(&query, json!({"t": ticket, "c": code}), None)),
    )
    .await;
    let won = answers
        .iter()
        .filter(|a| a.body.get("errors").is_none())
        .count();
    assert_eq!(won, 1, "{answers:#?}");
    for answer in answers.iter().filter(|a| a.body.get("errors").is_some()) {
        let code = answer.code();
        assert!(
            matches!(code, Some("INVALID_TOKEN" | "INVALID_MFA_CODE")),
            "{}",
            answer.body
        );
    }
}

async fn confirming_needs_a_right_code_of_a_pending_enrolment(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let tokens = app.register_ok("ada@example.com").await;
    // Nothing enrolled.
    app.gql(CONFIRM, json!({"code": "123456"}), Some(&tokens.access))
        .await
        .expect_only_error("INVALID_MFA_CODE");
    let enrolment = app.gql(ENROLL, json!({}), Some(&tokens.access)).await;
    let secret = enrolment.data("enrollTotp")["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let right = code_of_base32(&secret, clock.now()).unwrap();
    let two_steps_on =
        code_of_base32(&secret, clock.now() + chrono::Duration::seconds(60)).unwrap();
    for wrong in [two_steps_on.as_str(), "", "abcdef", "1234567"] {
        if wrong == right {
            continue;
        }
        app.gql(CONFIRM, json!({"code": wrong}), Some(&tokens.access))
            .await
            .expect_only_error("INVALID_MFA_CODE");
    }
    assert!(!mfa_enabled(&app, &tokens.access).await);
    app.gql(CONFIRM, json!({"code": right}), None)
        .await
        .expect_only_error("UNAUTHENTICATED");
    app.gql(CONFIRM, json!({"code": right}), Some(&tokens.access))
        .await
        .expect_success();
    assert!(mfa_enabled(&app, &tokens.access).await);
}

async fn enrolling_again_replaces_a_pending_secret_and_is_refused_once_enabled(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let tokens = app.register_ok("ada@example.com").await;
    app.gql(ENROLL, json!({}), None)
        .await
        .expect_only_error("UNAUTHENTICATED");
    let first = app.gql(ENROLL, json!({}), Some(&tokens.access)).await;
    let first = first.data("enrollTotp")["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = app.gql(ENROLL, json!({}), Some(&tokens.access)).await;
    let second = second.data("enrollTotp")["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);

    // The first secret is gone; the second confirms.
    let old = code_of_base32(&first, clock.now()).unwrap();
    let new = code_of_base32(&second, clock.now()).unwrap();
    if old != new {
        app.gql(CONFIRM, json!({"code": old}), Some(&tokens.access))
            .await
            .expect_only_error("INVALID_MFA_CODE");
    }
    app.gql(CONFIRM, json!({"code": new}), Some(&tokens.access))
        .await
        .expect_success();

    // Enabled: enrolling or confirming again is refused, and the factor is unchanged.
    app.gql(ENROLL, json!({}), Some(&tokens.access))
        .await
        .expect_only_error("MFA_ALREADY_ENABLED");
    app.gql(CONFIRM, json!({"code": new}), Some(&tokens.access))
        .await
        .expect_only_error("MFA_ALREADY_ENABLED");
    clock.advance(STEP);
    let (ticket, _) = challenge(&app, "ada@example.com").await;
    let code = code_of_base32(&second, clock.now()).unwrap();
    verify(&app, &ticket, &code).await.expect_success();
}

async fn a_wrong_password_gets_no_challenge(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let ada = enrolled(&app, &clock, "ada@example.com").await;
    app.login_email(&ada.email, "not the password")
        .await
        .expect_only_error("INVALID_CREDENTIALS");
}

backend_tests!(
    enrolling_confirming_and_verifying_a_code_signs_in_with_amr_pwd_otp,
    an_account_without_a_factor_logs_in_as_before_with_amr_pwd,
    codes_one_step_away_are_accepted_and_two_steps_away_refused,
    a_used_code_and_older_ones_are_refused,
    a_recovery_code_works_once_with_amr_pwd_mfa,
    an_expired_mfa_token_is_refused,
    a_used_mfa_token_is_refused,
    an_mfa_token_of_another_account_or_purpose_is_refused,
    an_mfa_token_dies_with_a_change_of_password,
    brute_forcing_codes_is_limited_per_account,
    disabling_needs_the_right_password_and_ends_the_other_sessions,
    a_wrong_password_for_disabling_is_a_login_attempt,
    concurrent_verifications_with_one_code_have_exactly_one_winner,
    confirming_needs_a_right_code_of_a_pending_enrolment,
    enrolling_again_replaces_a_pending_secret_and_is_refused_once_enabled,
    a_wrong_password_gets_no_challenge,
);

/// Two instances on one database and one Redis: a ticket from one is finished on the
/// other, and the code budget is one between them.
async fn instances_share_tickets_used_steps_and_the_code_budget(backend: Backend) {
    let url = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .expect("TEST_REDIS_URL is not set: this Redis test cannot run");
    let store = LimitStore::Redis(RedisSettings {
        url: SecretString::from(url),
        // Generous: the machine runs many tests at once, and a timeout would refuse.
        timeout: Duration::from_secs(2),
        key_prefix: format!("test-{}", uuid::Uuid::new_v4().simple()),
        on_failure: RedisFailure::Closed,
    });
    let (first, clock) = spawn_app_with_clock(backend, |s| {
        s.rate_limits.mfa_per_account = 4;
        s.rate_limits.store = store.clone();
    })
    .await;
    let second = spawn_instance_of(
        &first,
        |_| {},
        Collaborators {
            clock: clock.clone().into(),
        },
    )
    .await;
    let ada = enrolled(&first, &clock, "ada@example.com").await;

    // A ticket of the first instance, finished on the second; the code is then spent on
    // the first too.
    let code = ada.code(&clock, 0);
    let (ticket, _) = challenge(&first, &ada.email).await;
    verify(&second, &ticket, &code).await.expect_success();
    let (ticket, _) = challenge(&second, &ada.email).await;
    verify(&first, &ticket, &code)
        .await
        .expect_only_error("INVALID_MFA_CODE");

    // 4 codes a minute between both: the confirmation and the two above spent 3.
    verify(&second, &ticket, "000000")
        .await
        .expect_only_error("INVALID_MFA_CODE");
    verify(&first, &ticket, &ada.code(&clock, 1))
        .await
        .expect_only_error("RATE_LIMITED");
    verify(&second, &ticket, &ada.code(&clock, 1))
        .await
        .expect_only_error("RATE_LIMITED");
}

mod instances_share_tickets_used_steps_and_the_code_budget {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(test_redis), ignore = "TEST_REDIS_URL was not set at build time")]
    async fn sqlite() {
        super::instances_share_tickets_used_steps_and_the_code_budget(
            crate::helpers::Backend::Sqlite,
        )
        .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(all(test_redis, test_mysql)),
        ignore = "TEST_REDIS_URL or TEST_MYSQL_URL was not set at build time"
    )]
    async fn mysql() {
        crate::helpers::Backend::Mysql.require();
        super::instances_share_tickets_used_steps_and_the_code_budget(
            crate::helpers::Backend::Mysql,
        )
        .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(all(test_redis, test_postgres)),
        ignore = "TEST_REDIS_URL or TEST_POSTGRES_URL was not set at build time"
    )]
    async fn postgres() {
        crate::helpers::Backend::Postgres.require();
        super::instances_share_tickets_used_steps_and_the_code_budget(
            crate::helpers::Backend::Postgres,
        )
        .await
    }
}
