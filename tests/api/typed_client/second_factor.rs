//! The TOTP operations of `tests/operations/` through the generated client: `enrollTotp`,
//! `confirmTotp`, a `login` answering `MFA_REQUIRED`, `verifyMfa` and `disableTotp`.

use auth_server::auth::totp::code_of_base32;
use graphql_client::GraphQLQuery;

use super::{Login, Register, code, data, login, post, register};
use crate::backend_tests;
use crate::helpers::{Backend, PASSWORD, spawn_app_with_clock};

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/enroll_totp.graphql",
    response_derives = "Debug"
)]
pub struct EnrollTotp;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/confirm_totp.graphql",
    response_derives = "Debug"
)]
pub struct ConfirmTotp;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/verify_mfa.graphql",
    response_derives = "Debug"
)]
pub struct VerifyMfa;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/disable_totp.graphql",
    response_derives = "Debug"
)]
pub struct DisableTotp;

async fn the_generated_rust_client_enrols_totp_and_signs_in_with_a_code(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let email = "totp@example.com";
    let registered = data(
        post::<_, register::ResponseData>(
            &app,
            &Register::build_query(register::Variables {
                input: register::RegisterInput {
                    email: email.into(),
                    password: PASSWORD.into(),
                    username: None,
                },
            }),
            None,
        )
        .await,
    )
    .register;
    let access = registered.access_token.as_str();
    let enrolment = data(
        post::<_, enroll_totp::ResponseData>(
            &app,
            &EnrollTotp::build_query(enroll_totp::Variables),
            Some(access),
        )
        .await,
    )
    .enroll_totp;
    assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/"));
    let code_now = code_of_base32(&enrolment.secret, clock.now()).expect("a code");
    let recovery = data(
        post::<_, confirm_totp::ResponseData>(
            &app,
            &ConfirmTotp::build_query(confirm_totp::Variables { code: code_now }),
            Some(access),
        )
        .await,
    )
    .confirm_totp;
    assert_eq!(recovery.len(), 10);
    clock.advance(std::time::Duration::from_secs(30));

    let login_query = Login::build_query(login::Variables {
        input: login::LoginInput {
            email: Some(email.into()),
            username: None,
            password: PASSWORD.into(),
        },
    });
    let challenged = post::<_, login::ResponseData>(&app, &login_query, None).await;
    assert_eq!(code(&challenged).as_deref(), Some("MFA_REQUIRED"));
    let ticket = challenged.errors.as_ref().expect("errors")[0]
        .extensions
        .as_ref()
        .and_then(|e| e.get("mfaToken"))
        .and_then(|t| t.as_str())
        .expect("extensions.mfaToken")
        .to_owned();
    let signed_in = data(
        post::<_, verify_mfa::ResponseData>(
            &app,
            &VerifyMfa::build_query(verify_mfa::Variables {
                mfa_token: ticket,
                code: code_of_base32(&enrolment.secret, clock.now()).expect("a code"),
            }),
            None,
        )
        .await,
    )
    .verify_mfa;
    assert_eq!(signed_in.user.email, email);
    assert!(signed_in.user.mfa_enabled);

    let disabled = data(
        post::<_, disable_totp::ResponseData>(
            &app,
            &DisableTotp::build_query(disable_totp::Variables {
                password: PASSWORD.into(),
            }),
            Some(access),
        )
        .await,
    )
    .disable_totp;
    assert!(disabled);
    let plain = post::<_, login::ResponseData>(&app, &login_query, None).await;
    assert!(data(plain).login.access_token.len() > 10);
}

backend_tests!(the_generated_rust_client_enrols_totp_and_signs_in_with_a_code);
