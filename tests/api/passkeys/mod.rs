//! Passkeys over HTTP: adding one, logging in with one (both factors at once: `amr`
//! `hwk mfa`, no `MFA_REQUIRED`), opening an account with one alone, listing and removing
//! them, and the attacker's side: replayed, crossed, foreign and expired challenges,
//! another origin, no user verification, a cloned authenticator, a credential registered
//! twice, and races at every finish. A software [`Authenticator`] plays the browser and
//! the security key; the server is the relying party `localhost` on `http://localhost:3000`
//! (the test settings' `APP_URL`).

pub mod authenticator;

use std::time::Duration;

use auth_server::auth::totp::code_of_base32;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use self::authenticator::Authenticator;
use crate::backend_tests;
use crate::helpers::*;

/// The only origin the test server accepts a ceremony from.
const ORIGIN: &str = "http://localhost:3000";
/// On the relying party's domain, but not an accepted origin.
const EVIL_ORIGIN: &str = "http://evil.localhost:3000";
/// A challenge's lifetime, as the server has it.
const CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);

const PASSKEY: &str = "id name createdAt lastUsedAt";
const BEGIN_REGISTRATION: &str = "mutation { beginPasskeyRegistration { challengeId options } }";
const BEGIN_LOGIN: &str = "mutation { beginPasskeyLogin { challengeId options } }";
const BEGIN_SIGNUP: &str = "mutation($e: String!, $u: String) { beginPasskeySignup(email: $e, username: $u) { challengeId options } }";
const REMOVE: &str = "mutation($id: ID!) { removePasskey(id: $id) }";

/// A begun ceremony: the id to finish it with and the options for the authenticator.
struct Challenge {
    id: String,
    options: String,
}

impl Challenge {
    /// The `PasskeyChallenge` of `field` in a successful response.
    fn of(response: &Gql, field: &str) -> Self {
        response.expect_success();
        let challenge = response.data(field);
        let options = challenge["options"].as_str().expect("options").to_owned();
        let parsed: Value = serde_json::from_str(&options).expect("options are JSON");
        assert!(parsed["publicKey"]["challenge"].is_string(), "{options}");
        Self {
            id: challenge["challengeId"]
                .as_str()
                .expect("challengeId")
                .to_owned(),
            options,
        }
    }
}

async fn begin_registration(app: &TestApp, access: &str) -> Challenge {
    let r = app.gql(BEGIN_REGISTRATION, json!({}), Some(access)).await;
    Challenge::of(&r, "beginPasskeyRegistration")
}

async fn finish_registration(
    app: &TestApp,
    access: &str,
    challenge_id: &str,
    credential: &str,
    name: Option<&str>,
) -> Gql {
    app.gql(
        &format!(
            "mutation($c: String!, $cred: String!, $name: String) {{ finishPasskeyRegistration(challengeId: $c, credential: $cred, name: $name) {{ {PASSKEY} }} }}"
        ),
        json!({"c": challenge_id, "cred": credential, "name": name}),
        Some(access),
    )
    .await
}

/// Adds a passkey made by `authenticator` to `access`'s account; returns the `Passkey`.
async fn add_passkey(
    app: &TestApp,
    access: &str,
    authenticator: &mut Authenticator,
    name: Option<&str>,
) -> Value {
    let challenge = begin_registration(app, access).await;
    let credential = authenticator.register(&challenge.options, ORIGIN);
    let r = finish_registration(app, access, &challenge.id, &credential, name).await;
    r.expect_success();
    r.data("finishPasskeyRegistration").clone()
}

async fn begin_login(app: &TestApp) -> Challenge {
    Challenge::of(
        &app.gql(BEGIN_LOGIN, json!({}), None).await,
        "beginPasskeyLogin",
    )
}

async fn finish_login(app: &TestApp, challenge_id: &str, credential: &str) -> Gql {
    app.gql(
        &format!(
            "mutation($c: String!, $cred: String!) {{ finishPasskeyLogin(challengeId: $c, credential: $cred) {{ {PAYLOAD} }} }}"
        ),
        json!({"c": challenge_id, "cred": credential}),
        None,
    )
    .await
}

/// A whole passkey login with `authenticator`'s newest credential.
async fn passkey_login(app: &TestApp, authenticator: &mut Authenticator) -> Gql {
    let challenge = begin_login(app).await;
    let credential = authenticator.authenticate(&challenge.options, ORIGIN);
    finish_login(app, &challenge.id, &credential).await
}

/// A passkey login that must succeed; its tokens.
async fn passkey_login_ok(app: &TestApp, authenticator: &mut Authenticator) -> Tokens {
    let r = passkey_login(app, authenticator).await;
    r.expect_success();
    Tokens::from_payload(r.data("finishPasskeyLogin"))
}

async fn begin_signup(app: &TestApp, email: &str, username: Option<&str>) -> Gql {
    app.gql(BEGIN_SIGNUP, json!({"e": email, "u": username}), None)
        .await
}

async fn finish_signup(app: &TestApp, challenge_id: &str, credential: &str) -> Gql {
    app.gql(
        &format!(
            "mutation($c: String!, $cred: String!) {{ finishPasskeySignup(challengeId: $c, credential: $cred) {{ {PAYLOAD} }} }}"
        ),
        json!({"c": challenge_id, "cred": credential}),
        None,
    )
    .await
}

/// A whole passkey signup of `email`, its passkey made by `authenticator`.
async fn signup(app: &TestApp, email: &str, authenticator: &mut Authenticator) -> Gql {
    let challenge = Challenge::of(&begin_signup(app, email, None).await, "beginPasskeySignup");
    let credential = authenticator.register(&challenge.options, ORIGIN);
    finish_signup(app, &challenge.id, &credential).await
}

/// The caller's passkeys, oldest first.
async fn passkeys(app: &TestApp, access: &str) -> Vec<Value> {
    let r = app
        .gql(
            &format!("{{ passkeys {{ {PASSKEY} }} }}"),
            json!({}),
            Some(access),
        )
        .await;
    r.expect_success();
    r.body["data"]["passkeys"]
        .as_array()
        .expect("a list")
        .clone()
}

async fn remove_passkey(app: &TestApp, access: &str, id: &str) -> Gql {
    app.gql(REMOVE, json!({"id": id}), Some(access)).await
}

/// The id of a `Passkey`.
fn id_of(passkey: &Value) -> &str {
    passkey["id"].as_str().expect("a passkey id")
}

/// The `amr` claim of an access token (its payload, unverified: the server verified it).
fn amr(access: &str) -> Value {
    let payload = access.split('.').nth(1).expect("a JWT");
    let bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims["amr"].clone()
}

/// How many of `answers` succeeded; asserts every other one is a `loser` error alone.
fn winners(answers: &[Gql], loser: &str) -> usize {
    for answer in answers.iter().filter(|a| a.body.get("errors").is_some()) {
        answer.expect_only_error(loser);
    }
    answers
        .iter()
        .filter(|a| a.body.get("errors").is_none())
        .count()
}

// ---- The happy paths ----

async fn a_passkey_added_to_a_password_account_logs_in_with_amr_hwk_mfa(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    assert!(passkeys(&app, &ada.access).await.is_empty());

    let mut laptop = Authenticator::new();
    let added = add_passkey(&app, &ada.access, &mut laptop, Some("Laptop")).await;
    assert_eq!(added["name"], json!("Laptop"));
    assert!(added["lastUsedAt"].is_null(), "{added}");
    let listed = passkeys(&app, &ada.access).await;
    assert_eq!(listed, vec![added.clone()]);

    app.logout(Some(&ada.access), Some(&ada.refresh), false)
        .await
        .expect_success();
    assert!(!app.me_ok(&ada.access).await);

    let tokens = passkey_login_ok(&app, &mut laptop).await;
    assert_eq!(tokens.user_id, ada.user_id);
    let me = app.me(Some(&tokens.access)).await;
    me.expect_success();
    assert_eq!(me.data("me")["id"], json!(ada.user_id));
    assert_eq!(me.data("me")["email"], json!("ada@example.com"));
    assert_eq!(amr(&tokens.access), json!(["hwk", "mfa"]));

    let listed = passkeys(&app, &tokens.access).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], added["id"]);
    assert_eq!(listed[0]["name"], json!("Laptop"));
    assert!(listed[0]["lastUsedAt"].is_string(), "{}", listed[0]);

    // The session keeps how it was authenticated through its refreshes.
    let refreshed = app.refresh(&tokens.refresh).await;
    refreshed.expect_success();
    let access = refreshed.data("refreshToken")["accessToken"]
        .as_str()
        .unwrap();
    assert_eq!(amr(access), json!(["hwk", "mfa"]));
    assert!(app.me_ok(access).await);

    // A second login works too (the counter moved on), and the password still does.
    let again = passkey_login_ok(&app, &mut laptop).await;
    assert_eq!(again.user_id, ada.user_id);
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
}

async fn a_passkey_login_skips_the_totp_step_a_password_login_asks_for(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let ada = app.register_ok("ada@example.com").await;
    let mut key = Authenticator::new();
    add_passkey(&app, &ada.access, &mut key, None).await;

    let enrolment = app
        .gql(
            "mutation { enrollTotp { secret otpauthUri } }",
            json!({}),
            Some(&ada.access),
        )
        .await;
    let secret = enrolment.data("enrollTotp")["secret"].as_str().unwrap();
    let code = code_of_base32(secret, clock.now()).unwrap();
    app.gql(
        "mutation($code: String!) { confirmTotp(code: $code) }",
        json!({"code": code}),
        Some(&ada.access),
    )
    .await
    .expect_success();
    clock.advance(Duration::from_secs(30));

    let error = app.login_email("ada@example.com", PASSWORD).await;
    error.expect_only_error("MFA_REQUIRED");

    let tokens = passkey_login_ok(&app, &mut key).await;
    assert_eq!(tokens.user_id, ada.user_id);
    assert_eq!(amr(&tokens.access), json!(["hwk", "mfa"]));
    assert!(app.me_ok(&tokens.access).await);
    // And the password login still stops at the second factor.
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_only_error("MFA_REQUIRED");
}

// ---- Passkey-only accounts ----

async fn a_passkey_signup_opens_an_account_without_a_password(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut key = Authenticator::new();
    let challenge = Challenge::of(
        &begin_signup(&app, "carol@example.com", Some("carol")).await,
        "beginPasskeySignup",
    );
    let credential = key.register(&challenge.options, ORIGIN);
    let r = finish_signup(&app, &challenge.id, &credential).await;
    r.expect_success();
    let carol = Tokens::from_payload(r.data("finishPasskeySignup"));
    assert_eq!(amr(&carol.access), json!(["hwk", "mfa"]));
    let me = app.me(Some(&carol.access)).await;
    me.expect_success();
    assert_eq!(me.data("me")["id"], json!(carol.user_id));
    assert_eq!(me.data("me")["email"], json!("carol@example.com"));
    assert_eq!(me.data("me")["username"], json!("carol"));
    let listed = passkeys(&app, &carol.access).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], json!("Passkey"));

    // No password opens it: not the empty one, not the stored marker, not a guess.
    for password in ["!", "", PASSWORD, "carol@example.com"] {
        app.login_email("carol@example.com", password)
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }
    // The passkey does.
    let again = passkey_login_ok(&app, &mut key).await;
    assert_eq!(again.user_id, carol.user_id);
}

async fn the_only_passkey_of_an_account_without_a_password_stays(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut first = Authenticator::new();
    let r = signup(&app, "carol@example.com", &mut first).await;
    r.expect_success();
    let carol = Tokens::from_payload(r.data("finishPasskeySignup"));
    let only = passkeys(&app, &carol.access).await;
    assert_eq!(only.len(), 1);

    remove_passkey(&app, &carol.access, id_of(&only[0]))
        .await
        .expect_bad_input("id");
    assert_eq!(passkeys(&app, &carol.access).await, only);
    passkey_login_ok(&app, &mut first).await;

    // With a second passkey, either may go, but not both.
    let mut second = Authenticator::new();
    let added = add_passkey(&app, &carol.access, &mut second, Some("Phone")).await;
    let removed = remove_passkey(&app, &carol.access, id_of(&only[0])).await;
    assert_eq!(removed.data("removePasskey"), &json!(true));
    let left = passkeys(&app, &carol.access).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], added["id"]);
    passkey_login(&app, &mut first)
        .await
        .expect_only_error("INVALID_PASSKEY");
    assert_eq!(
        passkey_login_ok(&app, &mut second).await.user_id,
        carol.user_id
    );
    remove_passkey(&app, &carol.access, id_of(&added))
        .await
        .expect_bad_input("id");
    assert_eq!(passkeys(&app, &carol.access).await.len(), 1);
}

async fn a_passkey_signup_refuses_a_taken_address(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("ada@example.com").await;
    for taken in ["ada@example.com", "ADA@Example.com"] {
        begin_signup(&app, taken, None)
            .await
            .expect_only_error("EMAIL_TAKEN");
    }
    let mut key = Authenticator::new();
    signup(&app, "carol@example.com", &mut key)
        .await
        .expect_success();
    begin_signup(&app, "carol@example.com", None)
        .await
        .expect_only_error("EMAIL_TAKEN");
    app.register("carol@example.com", PASSWORD, None)
        .await
        .expect_only_error("EMAIL_TAKEN");
}

async fn concurrent_signups_for_one_address_have_one_winner(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = "dup@example.com";
    let mut keys = [Authenticator::new(), Authenticator::new()];
    let mut credentials = Vec::new();
    for key in &mut keys {
        // The address is free at both begins.
        let challenge = Challenge::of(&begin_signup(&app, email, None).await, "beginPasskeySignup");
        credentials.push((challenge.id, key.register(&challenge.options, ORIGIN)));
    }
    let answers = futures::future::join_all(
        credentials
            .iter()
            .map(|(id, credential)| finish_signup(&app, id, credential)),
    )
    .await;
    assert_eq!(winners(&answers, "EMAIL_TAKEN"), 1, "{answers:#?}");
    let winner = answers
        .iter()
        .position(|a| a.body.get("errors").is_none())
        .unwrap();
    let tokens = Tokens::from_payload(answers[winner].data("finishPasskeySignup"));
    assert_eq!(app.me_user(&tokens.access).await["email"], json!(email));

    // The winner's passkey opens the account; the loser's was never stored.
    let [first, second] = &mut keys;
    let (won, lost) = if winner == 0 {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(passkey_login_ok(&app, won).await.user_id, tokens.user_id);
    passkey_login(&app, lost)
        .await
        .expect_only_error("INVALID_PASSKEY");
}

// ---- Challenges: once, for their own ceremony and account, for five minutes ----

async fn a_login_challenge_answers_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let mut key = Authenticator::new();
    add_passkey(&app, &ada.access, &mut key, None).await;

    let challenge = begin_login(&app).await;
    let credential = key.authenticate(&challenge.options, ORIGIN);
    finish_login(&app, &challenge.id, &credential)
        .await
        .expect_success();
    finish_login(&app, &challenge.id, &credential)
        .await
        .expect_only_error("INVALID_TOKEN");
    // A fresh assertion for the spent challenge is refused the same way.
    let fresh = key.authenticate(&challenge.options, ORIGIN);
    finish_login(&app, &challenge.id, &fresh)
        .await
        .expect_only_error("INVALID_TOKEN");
    // Not challenge ids at all.
    let fake = URL_SAFE_NO_PAD.encode([7u8; 32]);
    for id in ["", "x", fake.as_str(), ada.refresh.as_str()] {
        finish_login(&app, id, &fresh)
            .await
            .expect_only_error("INVALID_TOKEN");
    }
}

async fn an_assertion_for_another_challenge_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let mut key = Authenticator::new();
    add_passkey(&app, &ada.access, &mut key, None).await;

    let a = begin_login(&app).await;
    let b = begin_login(&app).await;
    let for_a = key.authenticate(&a.options, ORIGIN);
    finish_login(&app, &b.id, &for_a)
        .await
        .expect_only_error("INVALID_PASSKEY");
    // B is spent by that; A was not touched and takes its own assertion.
    let for_b = key.authenticate(&b.options, ORIGIN);
    finish_login(&app, &b.id, &for_b)
        .await
        .expect_only_error("INVALID_TOKEN");
    let tokens = finish_login(&app, &a.id, &for_a).await;
    tokens.expect_success();
    assert_eq!(
        tokens.data("finishPasskeyLogin")["user"]["id"],
        json!(ada.user_id)
    );
}

async fn a_challenge_finishes_only_its_own_ceremony(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let mut key = Authenticator::new();
    add_passkey(&app, &ada.access, &mut key, None).await;

    // A registration challenge at the login's finish.
    let registration = begin_registration(&app, &ada.access).await;
    let login = begin_login(&app).await;
    let assertion = key.authenticate(&login.options, ORIGIN);
    finish_login(&app, &registration.id, &assertion)
        .await
        .expect_only_error("INVALID_TOKEN");
    // A signup challenge at the login's finish, a login challenge at the signup's.
    let signup = Challenge::of(
        &begin_signup(&app, "carol@example.com", None).await,
        "beginPasskeySignup",
    );
    finish_login(&app, &signup.id, &assertion)
        .await
        .expect_only_error("INVALID_TOKEN");
    let mut carols = Authenticator::new();
    let made = carols.register(&signup.options, ORIGIN);
    finish_signup(&app, &login.id, &made)
        .await
        .expect_only_error("INVALID_TOKEN");
    // A login or signup challenge at the registration's finish.
    let mut phone = Authenticator::new();
    let made_for_ada = phone.register(&registration.options, ORIGIN);
    for wrong in [&login.id, &signup.id] {
        finish_registration(&app, &ada.access, wrong, &made_for_ada, None)
            .await
            .expect_only_error("INVALID_TOKEN");
    }

    // None of them was spent by the wrong finish: each still finishes its own.
    finish_registration(&app, &ada.access, &registration.id, &made_for_ada, None)
        .await
        .expect_success();
    finish_login(&app, &login.id, &assertion)
        .await
        .expect_success();
    finish_signup(&app, &signup.id, &made)
        .await
        .expect_success();
    assert_eq!(passkeys(&app, &ada.access).await.len(), 2);
}

async fn another_users_registration_challenge_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let bob = app.register_ok("bob@example.com").await;
    let adas = begin_registration(&app, &ada.access).await;
    let mut key = Authenticator::new();
    let credential = key.register(&adas.options, ORIGIN);
    finish_registration(&app, &bob.access, &adas.id, &credential, None)
        .await
        .expect_only_error("INVALID_TOKEN");
    assert!(passkeys(&app, &bob.access).await.is_empty());
    assert!(passkeys(&app, &ada.access).await.is_empty());
    passkey_login(&app, &mut key)
        .await
        .expect_only_error("INVALID_PASSKEY");
    // Without a session there is no finishing at all.
    let challenge = begin_registration(&app, &ada.access).await;
    let credential = key.register(&challenge.options, ORIGIN);
    app.gql(
        "mutation($c: String!, $cred: String!) { finishPasskeyRegistration(challengeId: $c, credential: $cred) { id } }",
        json!({"c": challenge.id, "cred": credential}),
        None,
    )
    .await
    .expect_only_error("UNAUTHENTICATED");
    app.gql(BEGIN_REGISTRATION, json!({}), None)
        .await
        .expect_only_error("UNAUTHENTICATED");
}

async fn an_expired_challenge_is_refused(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let ada = app.register_ok("ada@example.com").await;
    let mut key = Authenticator::new();

    // Registration: a second late, refused; a second early, accepted.
    let late = begin_registration(&app, &ada.access).await;
    clock.advance(CHALLENGE_TTL + Duration::from_secs(1));
    let credential = key.register(&late.options, ORIGIN);
    finish_registration(&app, &ada.access, &late.id, &credential, None)
        .await
        .expect_only_error("INVALID_TOKEN");
    assert!(passkeys(&app, &ada.access).await.is_empty());
    let ada = app.login_email("ada@example.com", PASSWORD).await;
    let ada = Tokens::from_payload(ada.data("login"));
    let in_time = begin_registration(&app, &ada.access).await;
    clock.advance(CHALLENGE_TTL - Duration::from_secs(1));
    let credential = key.register(&in_time.options, ORIGIN);
    finish_registration(&app, &ada.access, &in_time.id, &credential, None)
        .await
        .expect_success();

    // Login, the same.
    let late = begin_login(&app).await;
    clock.advance(CHALLENGE_TTL + Duration::from_secs(1));
    let assertion = key.authenticate(&late.options, ORIGIN);
    finish_login(&app, &late.id, &assertion)
        .await
        .expect_only_error("INVALID_TOKEN");
    let in_time = begin_login(&app).await;
    clock.advance(CHALLENGE_TTL - Duration::from_secs(1));
    let assertion = key.authenticate(&in_time.options, ORIGIN);
    finish_login(&app, &in_time.id, &assertion)
        .await
        .expect_success();

    // Signup: late, refused, and no account was made.
    let mut carols = Authenticator::new();
    let late = Challenge::of(
        &begin_signup(&app, "carol@example.com", None).await,
        "beginPasskeySignup",
    );
    clock.advance(CHALLENGE_TTL + Duration::from_secs(1));
    let credential = carols.register(&late.options, ORIGIN);
    finish_signup(&app, &late.id, &credential)
        .await
        .expect_only_error("INVALID_TOKEN");
    begin_signup(&app, "carol@example.com", None)
        .await
        .expect_success();
}

// ---- What the relying party verifies ----

async fn another_origin_or_rp_id_is_refused_and_nothing_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let mut key = Authenticator::new();

    let challenge = begin_registration(&app, &ada.access).await;
    let credential = key.register(&challenge.options, EVIL_ORIGIN);
    finish_registration(&app, &ada.access, &challenge.id, &credential, None)
        .await
        .expect_only_error("INVALID_PASSKEY");
    let challenge = begin_registration(&app, &ada.access).await;
    let credential = key.register_with(&challenge.options, ORIGIN, |a| {
        a.rp_id = "evil.localhost".to_owned();
    });
    finish_registration(&app, &ada.access, &challenge.id, &credential, None)
        .await
        .expect_only_error("INVALID_PASSKEY");
    assert!(passkeys(&app, &ada.access).await.is_empty());

    let added = add_passkey(&app, &ada.access, &mut key, None).await;
    let challenge = begin_login(&app).await;
    let assertion = key.authenticate(&challenge.options, EVIL_ORIGIN);
    finish_login(&app, &challenge.id, &assertion)
        .await
        .expect_only_error("INVALID_PASSKEY");
    let challenge = begin_login(&app).await;
    let assertion = key.authenticate_with(&challenge.options, ORIGIN, |a| {
        a.rp_id = "evil.localhost".to_owned();
    });
    finish_login(&app, &challenge.id, &assertion)
        .await
        .expect_only_error("INVALID_PASSKEY");
    // A registration's client data at a login.
    let challenge = begin_login(&app).await;
    let assertion = key.authenticate_with(&challenge.options, ORIGIN, |a| {
        a.client_data.type_ = "webauthn.create".to_owned();
    });
    finish_login(&app, &challenge.id, &assertion)
        .await
        .expect_only_error("INVALID_PASSKEY");
    // Nothing was recorded of those: the passkey is unused, and works.
    assert_eq!(passkeys(&app, &ada.access).await, vec![added]);
    passkey_login_ok(&app, &mut key).await;
}

async fn a_ceremony_without_user_verification_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let mut key = Authenticator::new();

    let challenge = begin_registration(&app, &ada.access).await;
    let credential = key.register_with(&challenge.options, ORIGIN, |a| a.user_verified = false);
    finish_registration(&app, &ada.access, &challenge.id, &credential, None)
        .await
        .expect_only_error("INVALID_PASSKEY");
    assert!(passkeys(&app, &ada.access).await.is_empty());

    add_passkey(&app, &ada.access, &mut key, None).await;
    let challenge = begin_login(&app).await;
    let assertion = key.authenticate_with(&challenge.options, ORIGIN, |a| a.user_verified = false);
    finish_login(&app, &challenge.id, &assertion)
        .await
        .expect_only_error("INVALID_PASSKEY");
    let challenge = begin_login(&app).await;
    let assertion = key.authenticate_with(&challenge.options, ORIGIN, |a| a.user_present = false);
    finish_login(&app, &challenge.id, &assertion)
        .await
        .expect_only_error("INVALID_PASSKEY");
    passkey_login_ok(&app, &mut key).await;
}

async fn an_assertion_naming_another_account_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let bob = app.register_ok("bob@example.com").await;
    let mut adas = Authenticator::new();
    add_passkey(&app, &ada.access, &mut adas, None).await;
    let mut bobs = Authenticator::new();
    add_passkey(&app, &bob.access, &mut bobs, None).await;

    // Ada's credential, claiming to be Bob's: the credential is not Bob's.
    let bob_id = uuid::Uuid::parse_str(&bob.user_id).unwrap();
    let challenge = begin_login(&app).await;
    let assertion = adas.authenticate_with(&challenge.options, ORIGIN, |a| {
        a.user_handle = Some(bob_id.as_bytes().to_vec());
    });
    finish_login(&app, &challenge.id, &assertion)
        .await
        .expect_only_error("INVALID_PASSKEY");
    // No user handle: a discoverable login cannot tell the account.
    let challenge = begin_login(&app).await;
    let assertion = adas.authenticate_with(&challenge.options, ORIGIN, |a| a.user_handle = None);
    finish_login(&app, &challenge.id, &assertion)
        .await
        .expect_only_error("INVALID_PASSKEY");

    assert_eq!(passkey_login_ok(&app, &mut adas).await.user_id, ada.user_id);
    assert_eq!(passkey_login_ok(&app, &mut bobs).await.user_id, bob.user_id);
}

async fn a_cloned_authenticator_is_refused_and_the_original_keeps_working(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let mut original = Authenticator::new();
    add_passkey(&app, &ada.access, &mut original, None).await;
    let mut clone = original.clone();

    // The original signs twice (counter 2); the clone then signs 1, then 2: both at or
    // below what the server has seen.
    passkey_login_ok(&app, &mut original).await;
    passkey_login_ok(&app, &mut original).await;
    for _ in 0..2 {
        passkey_login(&app, &mut clone)
            .await
            .expect_only_error("INVALID_PASSKEY");
    }
    // Its refusals recorded nothing: the original, at 3, goes on.
    let tokens = passkey_login_ok(&app, &mut original).await;
    assert_eq!(tokens.user_id, ada.user_id);

    // A counter set back by hand, the same.
    let challenge = begin_login(&app).await;
    let assertion = original.authenticate_with(&challenge.options, ORIGIN, |a| a.counter = 1);
    finish_login(&app, &challenge.id, &assertion)
        .await
        .expect_only_error("INVALID_PASSKEY");
    let challenge = begin_login(&app).await;
    let assertion = original.authenticate_with(&challenge.options, ORIGIN, |a| a.counter = 4);
    finish_login(&app, &challenge.id, &assertion)
        .await
        .expect_success();
}

async fn a_credential_registered_already_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let bob = app.register_ok("bob@example.com").await;
    let mut key = Authenticator::new();
    let added = add_passkey(&app, &ada.access, &mut key, None).await;
    let credential_id = key.credentials[0].id.clone();

    // To the same account again.
    let challenge = begin_registration(&app, &ada.access).await;
    let again = key.register_again(&credential_id, &challenge.options, ORIGIN);
    finish_registration(&app, &ada.access, &challenge.id, &again, None)
        .await
        .expect_only_error("INVALID_PASSKEY");
    // To another account.
    let challenge = begin_registration(&app, &bob.access).await;
    let again = key.register_again(&credential_id, &challenge.options, ORIGIN);
    finish_registration(&app, &bob.access, &challenge.id, &again, None)
        .await
        .expect_only_error("INVALID_PASSKEY");
    // To a new account: refused, and the account not made.
    let challenge = Challenge::of(
        &begin_signup(&app, "carol@example.com", None).await,
        "beginPasskeySignup",
    );
    let again = key.register_again(&credential_id, &challenge.options, ORIGIN);
    finish_signup(&app, &challenge.id, &again)
        .await
        .expect_only_error("INVALID_PASSKEY");
    let mut carols = Authenticator::new();
    signup(&app, "carol@example.com", &mut carols)
        .await
        .expect_success();

    assert_eq!(passkeys(&app, &ada.access).await, vec![added]);
    assert!(passkeys(&app, &bob.access).await.is_empty());
    assert_eq!(passkey_login_ok(&app, &mut key).await.user_id, ada.user_id);
}

// ---- Removing ----

async fn removing_a_passkey_needs_its_owner_and_ends_its_logins(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let bob = app.register_ok("bob@example.com").await;
    let mut key = Authenticator::new();
    let added = add_passkey(&app, &ada.access, &mut key, Some("Laptop")).await;
    let id = id_of(&added);

    let bobs_try = remove_passkey(&app, &bob.access, id).await;
    assert_eq!(bobs_try.data("removePasskey"), &json!(false));
    let unknown = uuid::Uuid::now_v7().to_string();
    for malformed in [
        "not-a-uuid",
        "",
        "'; DROP TABLE passkeys; --",
        unknown.as_str(),
    ] {
        let r = remove_passkey(&app, &ada.access, malformed).await;
        assert_eq!(r.data("removePasskey"), &json!(false), "{malformed}");
    }
    remove_passkey(&app, "not a token", id)
        .await
        .expect_only_error("UNAUTHENTICATED");
    assert_eq!(passkeys(&app, &ada.access).await, vec![added.clone()]);
    assert_eq!(passkey_login_ok(&app, &mut key).await.user_id, ada.user_id);

    let removed = remove_passkey(&app, &ada.access, id).await;
    assert_eq!(removed.data("removePasskey"), &json!(true));
    assert!(passkeys(&app, &ada.access).await.is_empty());
    passkey_login(&app, &mut key)
        .await
        .expect_only_error("INVALID_PASSKEY");
    let again = remove_passkey(&app, &ada.access, id).await;
    assert_eq!(again.data("removePasskey"), &json!(false));
}

async fn deleting_the_account_deletes_its_passkeys(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let mut key = Authenticator::new();
    add_passkey(&app, &ada.access, &mut key, None).await;
    passkey_login_ok(&app, &mut key).await;

    let deleted = app.delete_account(&ada.access, PASSWORD).await;
    assert_eq!(deleted.data("deleteAccount"), &json!(true));
    passkey_login(&app, &mut key)
        .await
        .expect_only_error("INVALID_PASSKEY");
    // The address is free again, and the old credential cannot come back with it.
    let mut fresh = Authenticator::new();
    let r = signup(&app, "ada@example.com", &mut fresh).await;
    r.expect_success();
    let new_ada = Tokens::from_payload(r.data("finishPasskeySignup"));
    assert_ne!(new_ada.user_id, ada.user_id);
    passkey_login(&app, &mut key)
        .await
        .expect_only_error("INVALID_PASSKEY");
}

// ---- Input, limits and settings ----

async fn malformed_credentials_and_names_are_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let mut key = Authenticator::new();
    let challenge = begin_registration(&app, &ada.access).await;
    let credential = key.register(&challenge.options, ORIGIN);

    for junk in ["not json", "{}", "[]", "null"] {
        finish_registration(&app, &ada.access, &challenge.id, junk, None)
            .await
            .expect_bad_input("credential");
    }
    let long = "n".repeat(65);
    for name in [long.as_str(), "Lap\ntop", "Lap\u{7}top"] {
        finish_registration(&app, &ada.access, &challenge.id, &credential, Some(name))
            .await
            .expect_bad_input("name");
    }
    // Input refused before the challenge was looked at: it is still good, and 64
    // characters (trimmed) are a name.
    let longest = "é".repeat(64);
    let added = finish_registration(
        &app,
        &ada.access,
        &challenge.id,
        &credential,
        Some(&format!("  {longest}  ")),
    )
    .await;
    added.expect_success();
    assert_eq!(
        added.data("finishPasskeyRegistration")["name"],
        json!(longest)
    );

    // At the login's and the signup's finish too.
    let login = begin_login(&app).await;
    finish_login(&app, &login.id, "not json")
        .await
        .expect_bad_input("credential");
    let registration_json =
        key.register(&begin_registration(&app, &ada.access).await.options, ORIGIN);
    // A registration's credential is not an assertion.
    finish_login(&app, &login.id, &registration_json)
        .await
        .expect_bad_input("credential");
    let signup = Challenge::of(
        &begin_signup(&app, "carol@example.com", None).await,
        "beginPasskeySignup",
    );
    finish_signup(&app, &signup.id, "not json")
        .await
        .expect_bad_input("credential");
    // A blank name is the default one.
    let mut phone = Authenticator::new();
    let challenge = begin_registration(&app, &ada.access).await;
    let credential = phone.register(&challenge.options, ORIGIN);
    let r = finish_registration(&app, &ada.access, &challenge.id, &credential, Some("   ")).await;
    r.expect_success();
    assert_eq!(
        r.data("finishPasskeyRegistration")["name"],
        json!("Passkey")
    );
}

async fn an_account_holds_at_most_20_passkeys(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let mut keys: Vec<Authenticator> = (0..21).map(|_| Authenticator::new()).collect();
    for key in &mut keys[..19] {
        add_passkey(&app, &ada.access, key, None).await;
    }
    // Two ceremonies begun at 19: the first to finish is the 20th, the other is refused.
    let a = begin_registration(&app, &ada.access).await;
    let b = begin_registration(&app, &ada.access).await;
    let (last, over) = keys[19..].split_at_mut(1);
    let made_a = last[0].register(&a.options, ORIGIN);
    let made_b = over[0].register(&b.options, ORIGIN);
    finish_registration(&app, &ada.access, &a.id, &made_a, None)
        .await
        .expect_success();
    finish_registration(&app, &ada.access, &b.id, &made_b, None)
        .await
        .expect_only_error("INVALID_PASSKEY");
    assert_eq!(passkeys(&app, &ada.access).await.len(), 20);

    app.gql(BEGIN_REGISTRATION, json!({}), Some(&ada.access))
        .await
        .expect_bad_input("passkey");
    // Removing one makes room.
    let first = passkeys(&app, &ada.access).await[0].clone();
    remove_passkey(&app, &ada.access, id_of(&first))
        .await
        .expect_success();
    add_passkey(&app, &ada.access, &mut keys[20], None).await;
    assert_eq!(passkeys(&app, &ada.access).await.len(), 20);
}

async fn passkeys_switched_off_answer_passkeys_disabled(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.passkeys = None).await;
    let ada = app.register_ok("ada@example.com").await;
    app.gql(BEGIN_LOGIN, json!({}), None)
        .await
        .expect_only_error("PASSKEYS_DISABLED");
    begin_signup(&app, "carol@example.com", None)
        .await
        .expect_only_error("PASSKEYS_DISABLED");
    app.gql(BEGIN_REGISTRATION, json!({}), Some(&ada.access))
        .await
        .expect_only_error("PASSKEYS_DISABLED");
    let fake = URL_SAFE_NO_PAD.encode([7u8; 32]);
    finish_login(&app, &fake, "{}")
        .await
        .expect_only_error("PASSKEYS_DISABLED");
    finish_signup(&app, &fake, "{}")
        .await
        .expect_only_error("PASSKEYS_DISABLED");
    // Passwords are unaffected, and the account simply has no passkeys.
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
    assert!(passkeys(&app, &ada.access).await.is_empty());
}

async fn with_required_verification_a_passkey_signup_answers_email_not_verified(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.accounts.require_email_verification = true).await;
    let mut key = Authenticator::new();
    signup(&app, "carol@example.com", &mut key)
        .await
        .expect_only_error("EMAIL_NOT_VERIFIED");
    // The account and its passkey exist: the address is taken, and the passkey is known
    // (it is refused for the address, not as unknown).
    begin_signup(&app, "carol@example.com", None)
        .await
        .expect_only_error("EMAIL_TAKEN");
    app.register("carol@example.com", PASSWORD, None)
        .await
        .expect_only_error("EMAIL_TAKEN");
    for _ in 0..2 {
        passkey_login(&app, &mut key)
            .await
            .expect_only_error("EMAIL_NOT_VERIFIED");
    }
    // An unknown credential is still INVALID_PASSKEY.
    let mut stranger = key.clone();
    stranger.credentials[0].id = vec![1; 32];
    passkey_login(&app, &mut stranger)
        .await
        .expect_only_error("INVALID_PASSKEY");
}

// ---- Races ----

async fn concurrent_finishes_of_one_login_challenge_have_one_winner(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let mut key = Authenticator::new();
    add_passkey(&app, &ada.access, &mut key, None).await;
    for _ in 0..3 {
        let challenge = begin_login(&app).await;
        let credential = key.authenticate(&challenge.options, ORIGIN);
        let answers = futures::future::join_all(
            (0..5).map(|_| finish_login(&app, &challenge.id, &credential)),
        )
        .await;
        assert_eq!(winners(&answers, "INVALID_TOKEN"), 1, "{answers:#?}");
    }
    passkey_login_ok(&app, &mut key).await;
}

async fn concurrent_logins_of_clones_with_one_counter_have_one_winner(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let mut original = Authenticator::new();
    add_passkey(&app, &ada.access, &mut original, None).await;
    let mut keys = vec![original.clone(), original.clone(), original];
    // Each round, every copy signs the same counter for its own challenge: whichever
    // records first wins, the others lose at the verification or at the conditional write.
    for _ in 0..3 {
        let mut credentials = Vec::new();
        for key in &mut keys {
            let challenge = begin_login(&app).await;
            credentials.push((challenge.id, key.authenticate(&challenge.options, ORIGIN)));
        }
        let answers = futures::future::join_all(
            credentials
                .iter()
                .map(|(id, credential)| finish_login(&app, id, credential)),
        )
        .await;
        assert_eq!(winners(&answers, "INVALID_PASSKEY"), 1, "{answers:#?}");
    }
    // The counter the winners left is the copies' own: a next login goes on.
    passkey_login_ok(&app, &mut keys[0]).await;
}

async fn concurrent_removals_leave_a_passwordless_account_a_passkey(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut first = Authenticator::new();
    let r = signup(&app, "carol@example.com", &mut first).await;
    let carol = Tokens::from_payload(r.data("finishPasskeySignup"));
    for _ in 0..5 {
        let mut another = Authenticator::new();
        add_passkey(&app, &carol.access, &mut another, None).await;
        let both = passkeys(&app, &carol.access).await;
        assert_eq!(both.len(), 2);
        // Each removal alone would leave the other passkey: at once, only one may go.
        let answers = futures::future::join_all(
            both.iter()
                .map(|p| remove_passkey(&app, &carol.access, id_of(p))),
        )
        .await;
        assert_eq!(winners(&answers, "BAD_USER_INPUT"), 1, "{answers:#?}");
        assert_eq!(passkeys(&app, &carol.access).await.len(), 1);
    }
}

async fn concurrent_registrations_stop_at_20_passkeys(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    for _ in 0..18 {
        add_passkey(&app, &ada.access, &mut Authenticator::new(), None).await;
    }
    // Four ceremonies begun at 18, finished at once: two of them fit.
    let mut made = Vec::new();
    for _ in 0..4 {
        let challenge = begin_registration(&app, &ada.access).await;
        let credential = Authenticator::new().register(&challenge.options, ORIGIN);
        made.push((challenge.id, credential));
    }
    let answers = futures::future::join_all(
        made.iter()
            .map(|(id, credential)| finish_registration(&app, &ada.access, id, credential, None)),
    )
    .await;
    assert_eq!(winners(&answers, "INVALID_PASSKEY"), 2, "{answers:#?}");
    assert_eq!(passkeys(&app, &ada.access).await.len(), 20);
}

/// A session cannot pile up pending registrations: past five, each begin drops the oldest.
async fn pending_registrations_are_bounded_per_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let mut begun = Vec::new();
    for _ in 0..7 {
        begun.push(begin_registration(&app, &ada.access).await);
    }
    // Another account's pending registration is not the first's to drop.
    let bob = app.register_ok("bob@example.com").await;
    let bobs = begin_registration(&app, &bob.access).await;
    for _ in 0..6 {
        begin_registration(&app, &ada.access).await;
    }
    let mut key = Authenticator::new();
    let made = key.register(&bobs.options, ORIGIN);
    finish_registration(&app, &bob.access, &bobs.id, &made, None)
        .await
        .expect_success();
    // Of Ada's thirteen, the oldest eight are gone, whatever their credential.
    for challenge in &begun {
        let made = Authenticator::new().register(&challenge.options, ORIGIN);
        finish_registration(&app, &ada.access, &challenge.id, &made, None)
            .await
            .expect_only_error("INVALID_TOKEN");
    }
    let newest = begin_registration(&app, &ada.access).await;
    let made = Authenticator::new().register(&newest.options, ORIGIN);
    finish_registration(&app, &ada.access, &newest.id, &made, None)
        .await
        .expect_success();
    assert_eq!(passkeys(&app, &ada.access).await.len(), 1);
}

backend_tests!(
    pending_registrations_are_bounded_per_account,
    a_passkey_added_to_a_password_account_logs_in_with_amr_hwk_mfa,
    a_passkey_login_skips_the_totp_step_a_password_login_asks_for,
    a_passkey_signup_opens_an_account_without_a_password,
    the_only_passkey_of_an_account_without_a_password_stays,
    a_passkey_signup_refuses_a_taken_address,
    concurrent_signups_for_one_address_have_one_winner,
    a_login_challenge_answers_once,
    an_assertion_for_another_challenge_is_refused,
    a_challenge_finishes_only_its_own_ceremony,
    another_users_registration_challenge_is_refused,
    an_expired_challenge_is_refused,
    another_origin_or_rp_id_is_refused_and_nothing_stored,
    a_ceremony_without_user_verification_is_refused,
    an_assertion_naming_another_account_is_refused,
    a_cloned_authenticator_is_refused_and_the_original_keeps_working,
    a_credential_registered_already_is_refused,
    removing_a_passkey_needs_its_owner_and_ends_its_logins,
    deleting_the_account_deletes_its_passkeys,
    malformed_credentials_and_names_are_bad_input,
    an_account_holds_at_most_20_passkeys,
    concurrent_registrations_stop_at_20_passkeys,
    passkeys_switched_off_answer_passkeys_disabled,
    with_required_verification_a_passkey_signup_answers_email_not_verified,
    concurrent_finishes_of_one_login_challenge_have_one_winner,
    concurrent_logins_of_clones_with_one_counter_have_one_winner,
    concurrent_removals_leave_a_passwordless_account_a_passkey,
);
