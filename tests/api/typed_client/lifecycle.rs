//! The account-lifecycle operations of `tests/operations/` through the generated client:
//! register → requestEmailVerification → changePassword → changeEmail →
//! requestPasswordReset → deleteAccount. `verifyEmail` and `resetPassword` need a mailed
//! token, which the mail tests cover; here a junk token checks that their typed
//! responses carry `INVALID_TOKEN` in `errors`.

use graphql_client::GraphQLQuery;

use super::{Me, Register, code, data, me, post, register};
use crate::backend_tests;
use crate::helpers::{Backend, PASSWORD, spawn_app};

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/request_email_verification.graphql",
    response_derives = "Debug"
)]
pub struct RequestEmailVerification;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/verify_email.graphql",
    response_derives = "Debug"
)]
pub struct VerifyEmail;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/request_password_reset.graphql",
    response_derives = "Debug"
)]
pub struct RequestPasswordReset;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/reset_password.graphql",
    response_derives = "Debug"
)]
pub struct ResetPassword;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/change_password.graphql",
    response_derives = "Debug"
)]
pub struct ChangePassword;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/change_email.graphql",
    response_derives = "Debug"
)]
pub struct ChangeEmail;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/delete_account.graphql",
    response_derives = "Debug"
)]
pub struct DeleteAccount;

/// Well-formed (43 base64url characters) but never issued.
const JUNK_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const NEW_PASSWORD: &str = "a brand new passphrase";

async fn the_generated_rust_client_runs_the_account_lifecycle(backend: Backend) {
    let app = spawn_app(backend).await;

    let registered = data(
        post::<_, register::ResponseData>(
            &app,
            &Register::build_query(register::Variables {
                input: register::RegisterInput {
                    email: "lifecycle@example.com".into(),
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

    let resent = post::<_, request_email_verification::ResponseData>(
        &app,
        &RequestEmailVerification::build_query(request_email_verification::Variables),
        Some(access),
    )
    .await;
    assert!(data(resent).request_email_verification);

    let changed = data(
        post::<_, change_password::ResponseData>(
            &app,
            &ChangePassword::build_query(change_password::Variables {
                current_password: PASSWORD.into(),
                new_password: NEW_PASSWORD.into(),
            }),
            Some(access),
        )
        .await,
    )
    .change_password;
    assert_eq!(changed.token_type, "Bearer");
    assert_eq!(changed.user.id, registered.user.id);
    assert_ne!(changed.refresh_token, registered.refresh_token);
    // The caller's own session survives its password change.
    let still =
        post::<_, me::ResponseData>(&app, &Me::build_query(me::Variables), Some(access)).await;
    assert_eq!(data(still).me.id, registered.user.id);

    let mailed = post::<_, change_email::ResponseData>(
        &app,
        &ChangeEmail::build_query(change_email::Variables {
            new_email: "moved@example.com".into(),
            password: NEW_PASSWORD.into(),
        }),
        Some(&changed.access_token),
    )
    .await;
    assert!(data(mailed).change_email);

    let forgot = post::<_, request_password_reset::ResponseData>(
        &app,
        &RequestPasswordReset::build_query(request_password_reset::Variables {
            email: "lifecycle@example.com".into(),
        }),
        None,
    )
    .await;
    assert!(data(forgot).request_password_reset);

    let verified = post::<_, verify_email::ResponseData>(
        &app,
        &VerifyEmail::build_query(verify_email::Variables {
            token: JUNK_TOKEN.into(),
        }),
        None,
    )
    .await;
    assert_eq!(code(&verified).as_deref(), Some("INVALID_TOKEN"));
    assert!(verified.data.is_none());
    let reset = post::<_, reset_password::ResponseData>(
        &app,
        &ResetPassword::build_query(reset_password::Variables {
            token: JUNK_TOKEN.into(),
            new_password: NEW_PASSWORD.into(),
        }),
        None,
    )
    .await;
    assert_eq!(code(&reset).as_deref(), Some("INVALID_TOKEN"));
    assert!(reset.data.is_none());

    let deleted = post::<_, delete_account::ResponseData>(
        &app,
        &DeleteAccount::build_query(delete_account::Variables {
            password: NEW_PASSWORD.into(),
        }),
        Some(&changed.access_token),
    )
    .await;
    assert!(data(deleted).delete_account);
    let gone = post::<_, me::ResponseData>(
        &app,
        &Me::build_query(me::Variables),
        Some(&changed.access_token),
    )
    .await;
    assert_eq!(code(&gone).as_deref(), Some("UNAUTHENTICATED"));
}

backend_tests!(the_generated_rust_client_runs_the_account_lifecycle);
