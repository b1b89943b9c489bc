//! `securityEvents(first, after)` as the GraphQL cursor connections spec has it: edges
//! with opaque cursors, `pageInfo` whose `endCursor` continues the walk, `first` bounded
//! (1 to 100), and a cursor that is not one refused as `BAD_USER_INPUT` on `after`.

use serde_json::{Value, json};

use super::{ids, kinds};
use crate::backend_tests;
use crate::helpers::*;

/// Seven events of ada's: register, three failed logins, three logins; the tokens of the
/// last login.
async fn seven_events(app: &TestApp) -> Tokens {
    let first = app.register_ok("ada@example.com").await;
    for i in 0..3 {
        app.login_fails_from(&format!("Guesser/{i}"), "ada@example.com")
            .await;
    }
    app.events_until(&first.access, "three failed logins", |e| e.len() == 4)
        .await;
    let mut last = first;
    for i in 0..3 {
        last = app
            .login_ok_from(&format!("Device/{i}"), "ada@example.com")
            .await;
    }
    last
}

/// The connection of one page, which must come without errors.
async fn page(app: &TestApp, bearer: &str, first: i64, after: Option<&str>) -> Value {
    let r = app
        .security_events(Some(bearer), json!(first), json!(after))
        .await;
    r.expect_success();
    r.data("securityEvents").clone()
}

async fn walking_pages_of_two_sees_every_event_once_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = seven_events(&app).await;
    let all = app.events_ok(&ada.access).await;
    assert_eq!(
        kinds(&all),
        [
            "login", "login", "login", "login", "login", "login", "register"
        ]
    );

    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let connection = page(&app, &ada.access, 2, after.as_deref()).await;
        pages += 1;
        let edges = connection["edges"].as_array().expect("edges").clone();
        let info = &connection["pageInfo"];
        let nodes: Vec<String> = ids(connection["nodes"].as_array().expect("nodes"));
        let edge_ids: Vec<String> = edges
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(nodes, edge_ids, "nodes are the edges' nodes");
        assert!(!edges.is_empty() && edges.len() <= 2, "{connection}");
        assert_eq!(
            info["startCursor"], edges[0]["cursor"],
            "startCursor is the first edge's cursor: {connection}"
        );
        assert_eq!(
            info["endCursor"],
            edges[edges.len() - 1]["cursor"],
            "endCursor is the last edge's cursor: {connection}"
        );
        if pages == 1 {
            assert_eq!(info["hasPreviousPage"], json!(false), "{connection}");
        }
        for e in &edges {
            assert!(e["cursor"].as_str().is_some_and(|c| !c.is_empty()), "{e}");
        }
        seen.extend(edge_ids);
        if info["hasNextPage"] == json!(false) {
            break;
        }
        after = Some(info["endCursor"].as_str().expect("endCursor").to_owned());
        assert!(pages < 10, "the walk does not end");
    }
    assert_eq!(pages, 4, "7 events in pages of 2");
    assert_eq!(seen, ids(&all), "every event once, in order");

    // After the last cursor: an empty page that says so.
    let last = all.last().unwrap();
    let tail = page(&app, &ada.access, 100, None).await;
    let last_cursor = tail["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    assert_eq!(
        tail["edges"].as_array().unwrap().last().unwrap()["node"]["id"],
        last["id"]
    );
    let beyond = page(&app, &ada.access, 2, Some(&last_cursor)).await;
    assert_eq!(beyond["edges"], json!([]), "{beyond}");
    assert_eq!(beyond["nodes"], json!([]), "{beyond}");
    assert_eq!(beyond["pageInfo"]["hasNextPage"], json!(false));
    assert_eq!(beyond["pageInfo"]["startCursor"], Value::Null);
    assert_eq!(beyond["pageInfo"]["endCursor"], Value::Null);

    // Any edge's cursor continues after that edge.
    let middle = tail["edges"][2]["cursor"].as_str().unwrap().to_owned();
    let from_middle = page(&app, &ada.access, 3, Some(&middle)).await;
    assert_eq!(
        ids(from_middle["nodes"].as_array().unwrap()),
        ids(&all[3..6])
    );
    assert_eq!(from_middle["pageInfo"]["hasNextPage"], json!(true));
}

async fn has_next_page_is_exact_at_the_boundary(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = seven_events(&app).await;
    let exact = page(&app, &ada.access, 7, None).await;
    assert_eq!(exact["edges"].as_array().unwrap().len(), 7);
    assert_eq!(exact["pageInfo"]["hasNextPage"], json!(false));
    let short = page(&app, &ada.access, 6, None).await;
    assert_eq!(short["edges"].as_array().unwrap().len(), 6);
    assert_eq!(short["pageInfo"]["hasNextPage"], json!(true));
    let one = page(&app, &ada.access, 1, None).await;
    assert_eq!(one["edges"].as_array().unwrap().len(), 1);
    assert_eq!(one["pageInfo"]["hasNextPage"], json!(true));
    let most = page(&app, &ada.access, 100, None).await;
    assert_eq!(most["edges"].as_array().unwrap().len(), 7);
    // `first: null` is the default (20).
    let null = page_with(&app, &ada.access, Value::Null).await;
    assert_eq!(null["edges"].as_array().unwrap().len(), 7);
}

async fn page_with(app: &TestApp, bearer: &str, first: Value) -> Value {
    let r = app.security_events(Some(bearer), first, Value::Null).await;
    r.expect_success();
    r.data("securityEvents").clone()
}

async fn first_out_of_range_is_bad_input_on_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    for first in [0, 101, -1, i64::from(i32::MIN), 1_000_000] {
        app.security_events(Some(&ada.access), json!(first), Value::Null)
            .await
            .expect_bad_input("first");
    }
}

async fn a_malformed_cursor_is_bad_input_on_after(backend: Backend) {
    use base64::Engine;
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let real = page(&app, &ada.access, 1, None).await["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    for bad in [
        "x".to_owned(),
        "%%%".to_owned(),
        String::new(),
        b64("junk"),
        b64("v1:yesterday:00000000000000000000000000000000"),
        b64("v1:1:not-a-uuid"),
        format!("{real}x"),
        real.chars().rev().collect(),
        "A".repeat(5_000),
    ] {
        app.security_events(Some(&ada.access), json!(5), json!(bad))
            .await
            .expect_bad_input("after");
    }
    // The real one still works.
    assert_eq!(
        page(&app, &ada.access, 5, Some(&real)).await["edges"],
        json!([])
    );
}

backend_tests!(
    walking_pages_of_two_sees_every_event_once_in_order,
    has_next_page_is_exact_at_the_boundary,
    first_out_of_range_is_bad_input_on_first,
    a_malformed_cursor_is_bad_input_on_after,
);
