//! The passkey operations of `tests/operations/` through the generated client, with the
//! software authenticator of `tests/api/passkeys/` as the browser: a passkey-only signup,
//! a login with it, adding a second passkey, listing and removing one.

use graphql_client::GraphQLQuery;

use super::{DateTime, data, post};
use crate::backend_tests;
use crate::helpers::{Backend, spawn_app};
use crate::passkeys::authenticator::Authenticator;

/// The test server's accepted origin (the test settings' `APP_URL`).
const ORIGIN: &str = "http://localhost:3000";

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/begin_passkey_signup.graphql",
    response_derives = "Debug"
)]
pub struct BeginPasskeySignup;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/finish_passkey_signup.graphql",
    response_derives = "Debug"
)]
pub struct FinishPasskeySignup;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/begin_passkey_login.graphql",
    response_derives = "Debug"
)]
pub struct BeginPasskeyLogin;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/finish_passkey_login.graphql",
    response_derives = "Debug"
)]
pub struct FinishPasskeyLogin;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/begin_passkey_registration.graphql",
    response_derives = "Debug"
)]
pub struct BeginPasskeyRegistration;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/finish_passkey_registration.graphql",
    response_derives = "Debug"
)]
pub struct FinishPasskeyRegistration;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/passkeys.graphql",
    response_derives = "Debug"
)]
pub struct Passkeys;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/remove_passkey.graphql",
    response_derives = "Debug"
)]
pub struct RemovePasskey;

async fn the_generated_rust_client_signs_up_and_in_with_passkeys(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = "typed-passkey@example.com";
    let mut phone = Authenticator::new();

    let begun = data(
        post::<_, begin_passkey_signup::ResponseData>(
            &app,
            &BeginPasskeySignup::build_query(begin_passkey_signup::Variables {
                email: email.into(),
                username: None,
            }),
            None,
        )
        .await,
    )
    .begin_passkey_signup;
    let opened = data(
        post::<_, finish_passkey_signup::ResponseData>(
            &app,
            &FinishPasskeySignup::build_query(finish_passkey_signup::Variables {
                credential: phone.register(&begun.options, ORIGIN),
                challenge_id: begun.challenge_id,
            }),
            None,
        )
        .await,
    )
    .finish_passkey_signup;
    assert_eq!(opened.user.email, email);
    assert!(!opened.user.email_verified);

    let login = data(
        post::<_, begin_passkey_login::ResponseData>(
            &app,
            &BeginPasskeyLogin::build_query(begin_passkey_login::Variables),
            None,
        )
        .await,
    )
    .begin_passkey_login;
    let signed_in = data(
        post::<_, finish_passkey_login::ResponseData>(
            &app,
            &FinishPasskeyLogin::build_query(finish_passkey_login::Variables {
                credential: phone.authenticate(&login.options, ORIGIN),
                challenge_id: login.challenge_id,
            }),
            None,
        )
        .await,
    )
    .finish_passkey_login;
    assert_eq!(signed_in.user.id, opened.user.id);
    let access = signed_in.access_token.as_str();

    let mut laptop = Authenticator::new();
    let adding = data(
        post::<_, begin_passkey_registration::ResponseData>(
            &app,
            &BeginPasskeyRegistration::build_query(begin_passkey_registration::Variables),
            Some(access),
        )
        .await,
    )
    .begin_passkey_registration;
    let added = data(
        post::<_, finish_passkey_registration::ResponseData>(
            &app,
            &FinishPasskeyRegistration::build_query(finish_passkey_registration::Variables {
                credential: laptop.register(&adding.options, ORIGIN),
                challenge_id: adding.challenge_id,
                name: Some("Laptop".into()),
            }),
            Some(access),
        )
        .await,
    )
    .finish_passkey_registration;
    assert_eq!(added.name, "Laptop");
    assert!(added.last_used_at.is_none());

    let listed = data(
        post::<_, passkeys::ResponseData>(
            &app,
            &Passkeys::build_query(passkeys::Variables),
            Some(access),
        )
        .await,
    )
    .passkeys;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].id, added.id, "oldest first");
    assert!(listed[0].last_used_at.is_some(), "the login is recorded");

    let removed = data(
        post::<_, remove_passkey::ResponseData>(
            &app,
            &RemovePasskey::build_query(remove_passkey::Variables { id: added.id }),
            Some(access),
        )
        .await,
    )
    .remove_passkey;
    assert!(removed);
    let left = data(
        post::<_, passkeys::ResponseData>(
            &app,
            &Passkeys::build_query(passkeys::Variables),
            Some(access),
        )
        .await,
    )
    .passkeys;
    assert_eq!(left.len(), 1);
}

backend_tests!(the_generated_rust_client_signs_up_and_in_with_passkeys);
