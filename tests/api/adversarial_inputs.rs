//! Adversarial inputs, from the attacker's side: hostile strings (SQL metacharacters,
//! control, invisible and other unicode characters) in every string input, extremely long
//! values, huge and deeply nested variables, fragment bombs and other expensive documents,
//! malformed bodies, and mutations smuggled into GET. Each case asserts the exact code or
//! status, then that the server still answers.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;

/// Never a valid email (no `@`) nor a valid username (a character other than ASCII
/// letters, digits, `_`, `.`, `-`).
const HOSTILE: &[&str] = &[
    "' OR '1'='1",
    "admin'--",
    "\"; DROP TABLE users; --",
    "1; SELECT pg_sleep(10)",
    "%",
    "\\",
    "\0",
    "a\0b",
    "\r\n\t",
    "\u{1b}[31m",
    "\u{7f}",
    "\u{202e}evil",
    "\u{200b}",
    "\u{feff}",
    "😀",
    "e\u{301}",
    "\u{fffd}",
    "Ω≈ç√",
    "{{7*7}}",
    "${jndi:ldap://x}",
    "<script>alert(1)</script>",
    "../../etc/passwd",
];

/// Characters that must never be part of an email or a username: control characters,
/// line separators, and invisible formatting and direction marks that make one address
/// look like another.
const INVISIBLE_OR_CONTROL: &[char] = &[
    '\0', '\t', '\r', '\n', '\u{1b}', '\u{7f}', '\u{85}', '\u{a0}', '\u{ad}', '\u{200b}',
    '\u{200d}', '\u{200e}', '\u{202e}', '\u{2028}', '\u{2060}', '\u{2066}', '\u{feff}',
];

/// No hang: the generous bound on anything that must be refused cheaply.
const NO_HANG: Duration = Duration::from_secs(5);

/// Asserts a request error: nothing executed (`data` absent or null), at least one error,
/// none of them a resolver error or an internal one; returns the first message.
fn assert_request_error(r: &Gql) -> String {
    assert_eq!(r.status, StatusCode::OK, "{:.500}", r.body);
    assert!(r.body["data"].is_null(), "it executed: {:.500}", r.body);
    let errors = r.body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {:.500}", r.body));
    assert!(!errors.is_empty());
    for e in errors {
        assert!(e.get("path").is_none(), "a resolver error: {e:.500}");
        assert_ne!(e["extensions"]["code"], "INTERNAL_SERVER_ERROR");
    }
    errors[0]["message"].as_str().unwrap_or_default().to_owned()
}

/// Asserts an argument value was refused before any resolver ran: no data, and each error
/// either a request error (no `path`) or `BAD_USER_INPUT` on the field.
fn assert_refused_input(r: &Gql) {
    assert_eq!(r.status, StatusCode::OK, "{:.500}", r.body);
    assert!(
        r.body["data"].is_null()
            || r.body["data"]
                .as_object()
                .is_some_and(|d| d.values().all(Value::is_null)),
        "it executed: {:.500}",
        r.body
    );
    let errors = r.body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {:.500}", r.body));
    assert_eq!(errors.len(), 1, "{:.500}", r.body);
    if errors[0].get("path").is_some() {
        assert_eq!(
            errors[0]["extensions"]["code"], "BAD_USER_INPUT",
            "{:.500}",
            r.body
        );
    }
}

/// A GraphQL string literal for `s` (JSON escapes are valid GraphQL escapes).
fn literal(s: &str) -> String {
    serde_json::to_string(s).expect("serialises")
}

async fn hostile_strings_in_every_string_input_get_their_exact_client_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;

    for s in HOSTILE {
        app.register(s, PASSWORD, None)
            .await
            .expect_bad_input("email");
        app.register("new@example.com", PASSWORD, Some(s))
            .await
            .expect_bad_input("username");
        app.login_email(s, PASSWORD).await.expect_bad_input("email");
        app.login_username(s, PASSWORD)
            .await
            .expect_bad_input("username");
        app.login_email("ada@example.com", s)
            .await
            .expect_only_error("INVALID_CREDENTIALS");
        app.refresh(s)
            .await
            .expect_only_error("INVALID_REFRESH_TOKEN");
        for all in [false, true] {
            app.logout(None, Some(s), all)
                .await
                .expect_only_error("INVALID_REFRESH_TOKEN");
        }
    }

    // Nothing was created or revoked on the way.
    app.register("new@example.com", PASSWORD, None)
        .await
        .expect_success();
    assert!(app.me_ok(&ada.access).await, "ada's session was harmed");
    app.refresh(&ada.refresh).await.expect_success();
    app.assert_still_healthy().await;
}

async fn hostile_strings_inlined_in_the_document_get_the_same_codes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("ada@example.com").await;

    for s in HOSTILE {
        let s = literal(s);
        let register = format!(
            "mutation {{ register(input: {{email: {s}, password: {}}}) {{ accessToken }} }}",
            literal(PASSWORD)
        );
        app.gql(&register, json!({}), None)
            .await
            .expect_bad_input("email");
        let login = format!(
            "mutation {{ login(input: {{email: \"ada@example.com\", password: {s}}}) {{ accessToken }} }}"
        );
        app.gql(&login, json!({}), None)
            .await
            .expect_only_error("INVALID_CREDENTIALS");
        let refresh = format!("mutation {{ refreshToken(refreshToken: {s}) {{ accessToken }} }}");
        app.gql(&refresh, json!({}), None)
            .await
            .expect_only_error("INVALID_REFRESH_TOKEN");
    }
    app.assert_still_healthy().await;
}

async fn passwords_with_control_and_unicode_characters_round_trip_exactly(backend: Backend) {
    let app = spawn_app(backend).await;

    for (i, s) in HOSTILE.iter().enumerate() {
        let email = format!("p{i}@example.com");
        let password = format!("pass{s}word");
        let r = app.register(&email, &password, None).await;
        if s.contains('\0') {
            // bcrypt cannot represent NUL: refused rather than silently cut.
            r.expect_bad_input("password");
            continue;
        }
        r.expect_success();
        app.login_email(&email, &password).await.expect_success();
        app.login_email(&email, "passwordpassword")
            .await
            .expect_only_error("INVALID_CREDENTIALS");
        app.login_email(&email, &format!("pass{s}word "))
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }
    app.assert_still_healthy().await;
}

async fn sql_metacharacters_and_like_wildcards_are_matched_literally(backend: Backend) {
    let app = spawn_app(backend).await;
    let ab = app.register("ab@example.com", PASSWORD, Some("abc")).await;
    ab.expect_success();

    // Wildcards and injections never reach another account.
    for probe in [
        "a_@example.com",
        "%@example.com",
        "a%@example.com",
        "_b@example.com",
    ] {
        app.login_email(probe, PASSWORD)
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }
    for probe in ["ab@example.com' OR '1'='1", "ab@example.com' --"] {
        app.login_email(probe, PASSWORD)
            .await
            .expect_bad_input("email");
    }
    for probe in ["a_c", "a.c", "_bc", "ab_"] {
        app.login_username(probe, PASSWORD)
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }

    // Addresses full of metacharacters are ordinary addresses, stored as typed.
    let emails = [
        "o'brien@example.com",
        "a'--@example.com",
        "a\"b@example.com",
        "a;b@example.com",
        "%@example.com",
        "_@example.com",
        "a\\b@example.com",
        "a`b@example.com",
        "a/*x*/@example.com",
    ];
    for (i, email) in emails.iter().enumerate() {
        let r = app.register(email, PASSWORD, Some(&format!("u_{i}"))).await;
        r.expect_success();
        assert_eq!(r.data("register")["user"]["email"], *email);
        let tokens = Tokens::from_payload(r.data("register"));
        let me = app.me(Some(&tokens.access)).await;
        assert_eq!(me.data("me")["email"], *email);
        let login = app.login_email(email, PASSWORD).await;
        assert_eq!(login.data("login")["user"]["id"], tokens.user_id.as_str());
    }
    // `_` is a username character, not a wildcard.
    let under = app
        .register("under@example.com", PASSWORD, Some("a_c"))
        .await;
    let under = Tokens::from_payload(under.data("register"));
    let login = app.login_username("abc", PASSWORD).await;
    assert_eq!(
        login.data("login")["user"]["id"],
        Tokens::from_payload(ab.data("register")).user_id.as_str()
    );
    let login = app.login_username("A_C", PASSWORD).await;
    assert_eq!(login.data("login")["user"]["id"], under.user_id.as_str());
    app.assert_still_healthy().await;
}

async fn invisible_and_control_characters_never_enter_an_email_or_a_username(backend: Backend) {
    let app = spawn_app(backend).await;

    for c in INVISIBLE_OR_CONTROL {
        for email in [
            format!("ad{c}a@example.com"),
            format!("ada@exa{c}mple.com"),
            format!("{c}ada@example.com{c}x"),
        ] {
            app.register(&email, PASSWORD, None)
                .await
                .expect_bad_input("email");
            app.login_email(&email, PASSWORD)
                .await
                .expect_bad_input("email");
        }
        app.register("ada@example.com", PASSWORD, Some(&format!("ad{c}a")))
            .await
            .expect_bad_input("username");
    }

    // No look-alike account was created: the plain ones are free.
    app.register("ada@example.com", PASSWORD, Some("ada"))
        .await
        .expect_success();
    app.assert_still_healthy().await;
}

async fn unicode_emails_are_normalised_and_distinct_from_their_ascii_look_alikes(backend: Backend) {
    let app = spawn_app(backend).await;

    let accented = app.register(" JOSÉ@Exämple.com ", PASSWORD, None).await;
    assert_eq!(
        accented.data("register")["user"]["email"],
        "josé@exämple.com"
    );
    let accented = Tokens::from_payload(accented.data("register"));
    let login = app.login_email("josé@EXÄMPLE.COM", PASSWORD).await;
    assert_eq!(login.data("login")["user"]["id"], accented.user_id.as_str());

    // The plain spelling is another address: another account, another password.
    let other = "another password 2";
    let plain = app.register("jose@example.com", other, None).await;
    plain.expect_success();
    let plain = Tokens::from_payload(plain.data("register"));
    assert_ne!(plain.user_id, accented.user_id);
    app.login_email("jose@example.com", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    let login = app.login_email("jose@example.com", other).await;
    assert_eq!(login.data("login")["user"]["id"], plain.user_id.as_str());

    for email in [
        "用户@例子.广告",
        "😀@example.com",
        "ωμέγα@παράδειγμα.δοκιμή",
    ] {
        let r = app.register(email, PASSWORD, None).await;
        assert_eq!(r.data("register")["user"]["email"], email);
        app.login_email(email, PASSWORD).await.expect_success();
    }
    app.assert_still_healthy().await;
}

async fn look_alikes_of_registered_addresses_are_refused_and_never_log_in_to_them(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let kim = app.register_ok("kim@example.com").await;
    let jose = app.register_ok("jos\u{e9}@example.com").await;
    let ape = app.register_ok("ape@example.com").await;

    // (look-alike, the account it looks like, whether it is the same address once
    // normalised, so that logging in with it reaches that very account)
    let look_alikes = [
        ("jos\u{e9}@example.com", &jose, true),   // NFC, as registered
        ("jose\u{301}@example.com", &jose, true), // NFD: e + combining acute
        ("ｋｉｍ@example.com", &kim, true),       // fullwidth
        ("ｋｉｍ＠ｅｘａｍｐｌｅ．ｃｏｍ", &kim, true), // fullwidth throughout
        ("k\u{131}m@example.com", &kim, false),   // dotless ı
        ("K\u{130}M@example.com", &kim, false),   // capital İ: i + combining dot
        ("\u{430}\u{440}\u{435}@example.com", &ape, false), // all Cyrillic: а р е
    ];
    for (look_alike, owner, same_address) in look_alikes {
        app.register(look_alike, "another password 2", None)
            .await
            .expect_only_error("EMAIL_TAKEN");
        app.login_email(look_alike, "another password 2")
            .await
            .expect_only_error("INVALID_CREDENTIALS");
        let login = app.login_email(look_alike, PASSWORD).await;
        if same_address {
            assert_eq!(
                login.data("login")["user"]["id"],
                owner.user_id.as_str(),
                "{look_alike}"
            );
        } else {
            login.expect_only_error("INVALID_CREDENTIALS");
        }
    }

    // A Cyrillic letter among Latin ones in a part of the address is refused outright.
    for mixed in ["kim@ex\u{430}mple.com", "\u{43a}im@example.com"] {
        app.register(mixed, PASSWORD, None)
            .await
            .expect_bad_input("email");
        app.login_email(mixed, PASSWORD)
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }

    // Addresses that merely resemble another are still free.
    for distinct in ["jose@example.com", "kim2@example.com", "kim@example.org"] {
        app.register(distinct, PASSWORD, None)
            .await
            .expect_success();
    }
    app.assert_still_healthy().await;
}

async fn extremely_long_inputs_get_their_exact_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    // Just under the 64 KiB body limit once wrapped in the request.
    let long = "a".repeat(60_000);
    let long_email = format!("{long}@example.com");
    let long_multibyte = "é".repeat(30_000);

    app.register(&long_email, PASSWORD, None)
        .await
        .expect_bad_input("email");
    app.register("new@example.com", PASSWORD, Some(&long))
        .await
        .expect_bad_input("username");
    app.register("new@example.com", &long, None)
        .await
        .expect_bad_input("password");
    app.register("new@example.com", &long_multibyte, None)
        .await
        .expect_bad_input("password");
    app.login_email(&long_email, PASSWORD)
        .await
        .expect_bad_input("email");
    app.login_username(&long, PASSWORD)
        .await
        .expect_bad_input("username");
    for password in [&long, &long_multibyte] {
        app.login_email("ada@example.com", password)
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }
    app.refresh(&long)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    app.logout(None, Some(&long), false)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    // A 200 KiB bearer token is refused without being decoded.
    app.me(Some(&"a".repeat(200 * 1024)))
        .await
        .expect_only_error("UNAUTHENTICATED");

    assert!(app.me_ok(&ada.access).await);
    app.assert_still_healthy().await;
}

async fn huge_and_deeply_nested_variables_are_refused_without_a_server_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let register =
        format!("mutation($input: RegisterInput!) {{ register(input: $input) {{ {PAYLOAD} }} }}");

    // Thousands of variables the document does not declare are ignored.
    let unused: serde_json::Map<String, Value> =
        (0..4000).map(|i| (format!("v{i}"), json!("x"))).collect();
    let r = app.gql("{ __typename }", Value::Object(unused), None).await;
    assert_eq!(r.body, json!({"data": {"__typename": "Query"}}));

    // One variable over the body limit.
    let r = app
        .gql(
            &register,
            json!({"input": {"email": "x".repeat(70 * 1024), "password": PASSWORD}}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Variables of the wrong shape are coercion errors: nothing runs. (Nested within the
    // bound of 64 levels per body; deeper is a bad request, see adversarial_nesting.rs.)
    let mut nested = json!("leaf");
    for _ in 0..60 {
        nested = json!({"email": nested, "password": PASSWORD});
    }
    let wrong_shapes = [
        nested,
        Value::Array(vec![
            json!({"email": "a@example.com", "password": PASSWORD});
            800
        ]),
        json!("a@example.com"),
        json!({"email": ["a@example.com"], "password": PASSWORD}),
        json!({"email": "a@example.com", "password": PASSWORD, "admin": true}),
        json!({"email": 12345678901234567890u64, "password": PASSWORD}),
        Value::Null,
    ];
    for input in wrong_shapes {
        let r = app.gql(&register, json!({"input": input}), None).await;
        assert_refused_input(&r);
    }
    // So are missing and null values of non-null arguments.
    let refresh = "mutation($t: String) { refreshToken(refreshToken: $t) { accessToken } }";
    for variables in [json!({}), json!({"t": null})] {
        assert_refused_input(&app.gql(refresh, variables.clone(), None).await);
        let strict = refresh.replace("String)", "String!)");
        assert_refused_input(&app.gql(&strict, variables, None).await);
    }

    // JSON nested deeper than the parser allows is a bad request.
    let deep = format!(
        "{{\"query\": \"{{ __typename }}\", \"variables\": {{\"v\": {}1{}}}}}",
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let r = app.post_bytes("application/json", deep).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:.300}", r.body);

    // None of it created an account.
    app.register("a@example.com", PASSWORD, None)
        .await
        .expect_success();
    app.assert_still_healthy().await;
}

/// `levels` fragments, each spreading the previous one twice: 2^(levels-1) fields once
/// expanded, from well under a kilobyte of document.
fn fragment_bomb(levels: usize) -> String {
    let mut doc = format!(
        "query {{ ...F{} }} fragment F0 on Query {{ __typename }}",
        levels - 1
    );
    for i in 1..levels {
        doc.push_str(&format!(
            " fragment F{i} on Query {{ ...F{} ...F{} }}",
            i - 1,
            i - 1
        ));
    }
    doc
}

async fn fragment_bombs_and_pathological_nesting_are_refused_quickly(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;

    let bomb = fragment_bomb(30);
    assert!(bomb.len() < 1500);
    let started = Instant::now();
    let r = app.gql(&bomb, json!({}), Some(&ada.access)).await;
    let message = assert_request_error(&r);
    assert!(message.contains("too large"), "{message}");
    let r = app.get_graphql(&bomb, None).await;
    assert!(assert_request_error(&r).contains("too large"));
    let batch = vec![json!({"query": bomb}); 10];
    let r = app.post_json(Value::Array(batch), None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_array().map(Vec::len), Some(10), "{:.300}", r.body);
    assert!(
        started.elapsed() < NO_HANG,
        "12 fragment bombs took {:?}",
        started.elapsed()
    );

    // Nesting far past the parser's recursion limit, in selections and in values.
    let depth = 10_000;
    let documents = [
        format!("{}{}", "{ a ".repeat(depth), "}".repeat(depth)),
        format!(
            "{{ __type(name: {}\"x\"{}) {{ name }} }}",
            "[".repeat(2 * depth),
            "]".repeat(2 * depth)
        ),
        format!(
            "{{ __type(name: {}1{}) {{ name }} }}",
            "{a: ".repeat(depth),
            "}".repeat(depth)
        ),
        format!(
            "{}{}",
            "{ ... on Query ".repeat(depth / 4),
            "}".repeat(depth / 4)
        ),
    ];
    for doc in &documents {
        let started = Instant::now();
        let r = app.gql(doc, json!({}), None).await;
        assert_request_error(&r);
        let r = app.get_graphql(&doc[..doc.len().min(20_000)], None).await;
        assert!(r.status == StatusCode::OK || r.status.is_client_error());
        assert!(started.elapsed() < NO_HANG, "took {:?}", started.elapsed());
    }

    // A thousand repeated fields are merged and cheap; five thousand are too many.
    let wide = |n: usize| format!("{{ {} }}", "__typename ".repeat(n));
    let r = app.gql(&wide(1000), json!({}), None).await;
    assert_eq!(r.body, json!({"data": {"__typename": "Query"}}));
    let r = app.gql(&wide(5000), json!({}), None).await;
    assert!(assert_request_error(&r).contains("too large"));

    assert!(app.me_ok(&ada.access).await);
    app.assert_still_healthy().await;
}

async fn malformed_bodies_are_bad_requests(backend: Backend) {
    let app = spawn_app(backend).await;
    let bodies: Vec<Vec<u8>> = vec![
        b"{\"query\": \"{ __typename \xff\xfe }\"}".to_vec(),
        b"\xef\xbb\xbf{\"query\": \"{ __typename }\"}".to_vec(),
        b"{\"query\": \"{ __typename }\", \"query\": \"mutation { logout }\"}".to_vec(),
        b"{\"query\": \"{ __typename }\", \"variables\": \"x\"}".to_vec(),
        b"{\"query\": \"{ __typename }\", \"variables\": [1]}".to_vec(),
        b"{\"query\": \"{ __typename }\"} trailing".to_vec(),
        b"{\"query\": \"{ __typename }\", \"variables\": {\"n\": NaN}}".to_vec(),
        b"{\"query\": null}".to_vec(),
        b"[null]".to_vec(),
        b"[[{\"query\": \"{ __typename }\"}]]".to_vec(),
        b"[1, 2]".to_vec(),
        b"123".to_vec(),
        b"{\"query\": \"{ __typename }\"".to_vec(),
        b"\x00\x01\x02".to_vec(),
    ];
    for body in bodies {
        let r = app.post_bytes("application/json", body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{:?}: {:.300}",
            String::from_utf8_lossy(&body),
            r.body
        );
    }
    // A megabyte of whitespace is over the body limit.
    let r = app
        .post_bytes("application/json", " ".repeat(1024 * 1024))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    app.assert_still_healthy().await;
}

async fn mutations_smuggled_into_get_requests_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let get = |path_and_query: String| {
        app.client
            .get(app.url(&path_and_query))
            .bearer_auth(&ada.access)
    };

    let smuggled = [
        // Percent-encoded keyword, comments and whitespace before it, subscriptions.
        "query=%6dutation%7Blogout%7D".to_owned(),
        "query=%23comment%0A%20%20mutation%7Blogout%7D".to_owned(),
        "query=%0A%09mutation%20%7B%20logout(allSessions%3A%20true)%20%7D".to_owned(),
        "query=subscription%7B__typename%7D".to_owned(),
        // Selected by name among many queries.
        format!(
            "query={}%20mutation%20M%7Blogout%7D&operationName=M",
            (0..50)
                .map(|i| format!("query%20Q{i}%7B__typename%7D"))
                .collect::<Vec<_>>()
                .join("%20")
        ),
    ];
    for query in &smuggled {
        let r = app.send(get(format!("/graphql?{query}"))).await;
        assert_eq!(
            r.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{query}: {}",
            r.body
        );
        let r = app
            .send(
                app.client
                    .head(app.url(&format!("/graphql?{query}")))
                    .bearer_auth(&ada.access),
            )
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "HEAD {query}");
    }

    // A second `query` parameter cannot swap in a mutation.
    let r = app
        .send(get(
            "/graphql?query=%7B__typename%7D&query=mutation%7Blogout%7D".to_owned(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // Naming an operation the document does not hold runs nothing.
    let r = app
        .send(get(
            "/graphql?query=mutation%20M%7Blogout%7D&operationName=Missing".to_owned(),
        ))
        .await;
    assert_request_error(&r);

    assert!(app.me_ok(&ada.access).await, "a GET logged ada out");
    app.assert_still_healthy().await;
}

backend_tests!(
    hostile_strings_in_every_string_input_get_their_exact_client_code,
    hostile_strings_inlined_in_the_document_get_the_same_codes,
    passwords_with_control_and_unicode_characters_round_trip_exactly,
    sql_metacharacters_and_like_wildcards_are_matched_literally,
    invisible_and_control_characters_never_enter_an_email_or_a_username,
    unicode_emails_are_normalised_and_distinct_from_their_ascii_look_alikes,
    look_alikes_of_registered_addresses_are_refused_and_never_log_in_to_them,
    extremely_long_inputs_get_their_exact_code,
    huge_and_deeply_nested_variables_are_refused_without_a_server_error,
    fragment_bombs_and_pathological_nesting_are_refused_quickly,
    malformed_bodies_are_bad_requests,
    mutations_smuggled_into_get_requests_are_refused,
);
