//! The session operations of `tests/operations/` through the generated client: `sessions`,
//! `revokeSession` and `securityEvents` (one page, then the next after its `endCursor`).

use graphql_client::GraphQLQuery;

use super::{DateTime, Login, Register, code, data, login, post, register};
use crate::backend_tests;
use crate::helpers::{Backend, PASSWORD, spawn_app};

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/sessions.graphql",
    response_derives = "Debug, Clone, PartialEq"
)]
pub struct Sessions;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/revoke_session.graphql",
    response_derives = "Debug"
)]
pub struct RevokeSession;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "schema.graphql",
    query_path = "tests/operations/security_events.graphql",
    response_derives = "Debug, Clone, PartialEq"
)]
pub struct SecurityEvents;

async fn the_generated_rust_client_lists_and_revokes_sessions_and_pages_security_events(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let registered = data(
        post::<_, register::ResponseData>(
            &app,
            &Register::build_query(register::Variables {
                input: register::RegisterInput {
                    email: "sessions@example.com".into(),
                    password: PASSWORD.into(),
                    username: None,
                },
            }),
            None,
        )
        .await,
    )
    .register;
    let other = data(
        post::<_, login::ResponseData>(
            &app,
            &Login::build_query(login::Variables {
                input: login::LoginInput {
                    email: Some("sessions@example.com".into()),
                    username: None,
                    password: PASSWORD.into(),
                },
            }),
            None,
        )
        .await,
    )
    .login;
    let access = registered.access_token.as_str();

    let listed: Vec<sessions::SessionsSessions> = data(
        post::<_, sessions::ResponseData>(
            &app,
            &Sessions::build_query(sessions::Variables),
            Some(access),
        )
        .await,
    )
    .sessions;
    assert_eq!(listed.len(), 2, "{listed:#?}");
    let current: Vec<_> = listed.iter().filter(|s| s.current).collect();
    assert_eq!(current.len(), 1);
    let theirs = listed
        .iter()
        .find(|s| !s.current)
        .expect("the other session")
        .id
        .clone();
    for s in &listed {
        assert_eq!(s.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(s.opened_ip, s.ip);
        assert!(s.expires_at > s.created_at, "{s:?}");
        assert!(s.last_used_at >= s.created_at, "{s:?}");
    }

    let revoked = post::<_, revoke_session::ResponseData>(
        &app,
        &RevokeSession::build_query(revoke_session::Variables { id: theirs.clone() }),
        Some(access),
    )
    .await;
    assert!(data(revoked).revoke_session);
    let again = post::<_, revoke_session::ResponseData>(
        &app,
        &RevokeSession::build_query(revoke_session::Variables { id: theirs.clone() }),
        Some(access),
    )
    .await;
    assert!(!data(again).revoke_session, "already revoked");
    let malformed = post::<_, revoke_session::ResponseData>(
        &app,
        &RevokeSession::build_query(revoke_session::Variables { id: "nope".into() }),
        Some(access),
    )
    .await;
    assert_eq!(code(&malformed).as_deref(), Some("BAD_USER_INPUT"));
    let gone = post::<_, sessions::ResponseData>(
        &app,
        &Sessions::build_query(sessions::Variables),
        Some(&other.access_token),
    )
    .await;
    assert_eq!(code(&gone).as_deref(), Some("UNAUTHENTICATED"));

    // register, login, session_revoked: a page of two, then the last one.
    let first = data(
        post::<_, security_events::ResponseData>(
            &app,
            &SecurityEvents::build_query(security_events::Variables {
                first: Some(2),
                after: None,
            }),
            Some(access),
        )
        .await,
    )
    .security_events;
    let kinds: Vec<&str> = first.edges.iter().map(|e| e.node.kind.as_str()).collect();
    assert_eq!(kinds, ["session_revoked", "login"]);
    assert_eq!(
        first.edges[0].node.session_id.as_deref(),
        Some(theirs.as_str())
    );
    assert_eq!(first.edges[0].node.outcome, "success");
    assert!(first.page_info.has_next_page);
    assert!(!first.page_info.has_previous_page);
    assert_eq!(
        first.page_info.end_cursor.as_deref(),
        Some(first.edges[1].cursor.as_str())
    );
    let rest = data(
        post::<_, security_events::ResponseData>(
            &app,
            &SecurityEvents::build_query(security_events::Variables {
                first: None,
                after: first.page_info.end_cursor.clone(),
            }),
            Some(access),
        )
        .await,
    )
    .security_events;
    let kinds: Vec<&str> = rest.edges.iter().map(|e| e.node.kind.as_str()).collect();
    assert_eq!(kinds, ["register"]);
    assert!(!rest.page_info.has_next_page);
    let instant = |at: &DateTime| {
        chrono::DateTime::parse_from_rfc3339(at).unwrap_or_else(|e| panic!("{at}: {e}"))
    };
    assert!(
        instant(&rest.edges[0].node.at) <= instant(&first.edges[1].node.at),
        "newest first"
    );
}

backend_tests!(the_generated_rust_client_lists_and_revokes_sessions_and_pages_security_events);
