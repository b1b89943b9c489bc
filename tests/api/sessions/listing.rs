//! `sessions`: the caller's live sessions, newest first, with when each was opened, last
//! refreshed and ends, and the client that opened and last refreshed it.

use std::time::Duration;

use serde_json::{Value, json};

use super::{LOOPBACK, ids, instant, sid};
use crate::backend_tests;
use crate::helpers::*;

/// The listed session with `id`.
fn session<'a>(listed: &'a [Value], id: &str) -> &'a Value {
    listed
        .iter()
        .find(|s| s["id"] == json!(id))
        .unwrap_or_else(|| panic!("no session {id} in {listed:#?}"))
}

async fn sessions_lists_the_callers_live_sessions_newest_first_with_the_client_of_each(
    backend: Backend,
) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let ttl = chrono::Duration::from_std(app.settings.tokens.refresh_ttl).unwrap();
    let opened_at = clock.now();
    let laptop = app.register_from("Laptop/1.0", "ada@example.com").await;
    clock.advance(Duration::from_secs(1));
    let phone_at = clock.now();
    let phone = app.login_ok_from("Phone/2.0", "ada@example.com").await;
    clock.advance(Duration::from_secs(1));
    let tablet_at = clock.now();
    let tablet = app.login_ok_from("Tablet/3.0", "ada@example.com").await;

    let listed = app.sessions_ok(&phone.access).await;
    assert_eq!(
        ids(&listed),
        [sid(&tablet.access), sid(&phone.access), sid(&laptop.access)],
        "newest first"
    );
    for (tokens, at, agent) in [
        (&laptop, opened_at, "Laptop/1.0"),
        (&phone, phone_at, "Phone/2.0"),
        (&tablet, tablet_at, "Tablet/3.0"),
    ] {
        let s = session(&listed, &sid(&tokens.access));
        assert_eq!(
            s["current"],
            json!(tokens.access == phone.access),
            "only the asking session is current: {s}"
        );
        assert_eq!(instant(&s["createdAt"]), at, "{s}");
        assert_eq!(instant(&s["lastUsedAt"]), at, "never refreshed: {s}");
        assert_eq!(instant(&s["expiresAt"]), at + ttl, "{s}");
        assert_eq!(s["userAgent"], json!(agent), "{s}");
        assert_eq!(s["openedUserAgent"], json!(agent), "{s}");
        assert_eq!(s["ip"], json!(LOOPBACK), "{s}");
        assert_eq!(s["openedIp"], json!(LOOPBACK), "{s}");
    }
    // Another session asking: `current` follows the token.
    let seen_by_tablet = app.sessions_ok(&tablet.access).await;
    let current: Vec<&Value> = seen_by_tablet
        .iter()
        .filter(|s| s["current"] == json!(true))
        .collect();
    assert_eq!(current.len(), 1, "{seen_by_tablet:#?}");
    assert_eq!(current[0]["id"], json!(sid(&tablet.access)));
}

async fn a_refresh_moves_last_used_and_the_client_while_the_opening_client_stays(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let ttl = chrono::Duration::from_std(app.settings.tokens.refresh_ttl).unwrap();
    let opened_at = clock.now();
    let phone = app.register_from("Phone/2.0", "ada@example.com").await;
    let laptop = app.login_ok_from("Laptop/1.0", "ada@example.com").await;

    clock.advance(Duration::from_secs(90));
    let refreshed_at = clock.now();
    let rotated = Tokens::from_payload(
        app.refresh_from("Phone/2.1 (updated)", &phone.refresh)
            .await
            .data("refreshToken"),
    );
    assert_eq!(sid(&rotated.access), sid(&phone.access), "same session");

    let listed = app.sessions_ok(&laptop.access).await;
    assert_eq!(listed.len(), 2, "{listed:#?}");
    let s = session(&listed, &sid(&phone.access));
    assert_eq!(instant(&s["createdAt"]), opened_at, "{s}");
    assert_eq!(instant(&s["lastUsedAt"]), refreshed_at, "{s}");
    assert_eq!(
        instant(&s["expiresAt"]),
        refreshed_at + ttl,
        "a refresh extends the session: {s}"
    );
    assert_eq!(s["userAgent"], json!("Phone/2.1 (updated)"), "{s}");
    assert_eq!(s["openedUserAgent"], json!("Phone/2.0"), "{s}");
    assert_eq!(s["ip"], json!(LOOPBACK), "{s}");
    assert_eq!(s["openedIp"], json!(LOOPBACK), "{s}");
    // The other session is untouched.
    let other = session(&listed, &sid(&laptop.access));
    assert_eq!(instant(&other["lastUsedAt"]), opened_at, "{other}");
    assert_eq!(other["userAgent"], json!("Laptop/1.0"), "{other}");
}

async fn me_does_not_move_last_used(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |_| {}).await;
    let opened_at = clock.now();
    let ada = app.register_from("Laptop/1.0", "ada@example.com").await;
    for _ in 0..3 {
        clock.advance(Duration::from_secs(60));
        let me = app
            .gql_from("Other/9.9", "{ me { id } }", json!({}), Some(&ada.access))
            .await;
        me.expect_success();
    }
    let listed = app.sessions_ok(&ada.access).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        instant(&listed[0]["lastUsedAt"]),
        opened_at,
        "{}",
        listed[0]
    );
    assert_eq!(
        listed[0]["userAgent"],
        json!("Laptop/1.0"),
        "`me` does not change the client either"
    );
}

async fn revoked_and_expired_sessions_are_not_listed(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |s| {
        s.tokens.refresh_ttl = Duration::from_secs(3600);
    })
    .await;
    let expiring = app.register_from("Old/1", "ada@example.com").await;
    let logged_out = app.login_ok_from("Gone/1", "ada@example.com").await;
    app.logout(Some(&logged_out.access), None, false)
        .await
        .expect_success();
    let revoked = app.login_ok_from("Revoked/1", "ada@example.com").await;
    assert!(
        app.revoke_session(&expiring.access, &sid(&revoked.access))
            .await
    );

    clock.advance(Duration::from_secs(30 * 60));
    let live = app.login_ok_from("Live/1", "ada@example.com").await;
    assert_eq!(
        ids(&app.sessions_ok(&live.access).await),
        [sid(&live.access), sid(&expiring.access)]
    );

    // The first session's hour is over; the second has half of its own left.
    clock.advance(Duration::from_secs(30 * 60));
    let asking = app.login_ok_from("Asking/1", "ada@example.com").await;
    assert_eq!(
        ids(&app.sessions_ok(&asking.access).await),
        [sid(&asking.access), sid(&live.access)],
        "the expired, logged-out and revoked sessions are not listed"
    );
}

async fn another_users_sessions_are_never_listed(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_from("Ada/1", "ada@example.com").await;
    let ada_phone = app.login_ok_from("Ada/2", "ada@example.com").await;
    let bob = app.register_from("Bob/1", "bob@example.com").await;
    let bob_phone = app.login_ok_from("Bob/2", "bob@example.com").await;

    let mut seen_by_ada = ids(&app.sessions_ok(&ada.access).await);
    seen_by_ada.sort();
    let mut ada_own = vec![sid(&ada.access), sid(&ada_phone.access)];
    ada_own.sort();
    assert_eq!(seen_by_ada, ada_own);

    let mut seen_by_bob = ids(&app.sessions_ok(&bob_phone.access).await);
    seen_by_bob.sort();
    let mut bob_own = vec![sid(&bob.access), sid(&bob_phone.access)];
    bob_own.sort();
    assert_eq!(seen_by_bob, bob_own);
}

async fn a_user_agent_of_ten_thousand_characters_is_stored_cut_to_256(backend: Backend) {
    let app = spawn_app(backend).await;
    let long: String = (0..10_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let cut: String = long.chars().take(256).collect();
    let ada = app.register_from(&long, "ada@example.com").await;
    let login = app.login_ok_from(&long, "ada@example.com").await;

    let listed = app.sessions_ok(&ada.access).await;
    assert_eq!(listed.len(), 2);
    for s in &listed {
        assert_eq!(s["userAgent"], json!(cut), "{s}");
        assert_eq!(s["openedUserAgent"], json!(cut), "{s}");
    }
    let events = app.events_ok(&login.access).await;
    assert_eq!(super::kinds(&events), ["login", "register"]);
    for e in &events {
        assert_eq!(e["userAgent"], json!(cut), "{e}");
    }
}

async fn behind_a_trusted_proxy_the_forwarded_client_address_is_recorded(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.http.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a CIDR")];
    })
    .await;
    let login = |ip: &'static str| {
        let app = &app;
        async move {
            let r = app
                .post_json(
                    json!({
                        "query": format!("mutation($i: LoginInput!) {{ login(input: $i) {{ {PAYLOAD} }} }}"),
                        "variables": {"i": {"email": "ada@example.com", "password": PASSWORD}},
                    }),
                    None,
                    &[("x-forwarded-for", ip), ("user-agent", "Proxied/1")],
                )
                .await;
            Tokens::from_payload(r.data("login"))
        }
    };
    app.register_ok("ada@example.com").await;
    let v4 = login("203.0.113.7").await;
    let v6 = login("2001:db8::1").await;
    let listed = app.sessions_ok(&v4.access).await;
    assert_eq!(
        session(&listed, &sid(&v4.access))["ip"],
        json!("203.0.113.7")
    );
    assert_eq!(
        session(&listed, &sid(&v4.access))["openedIp"],
        json!("203.0.113.7")
    );
    assert_eq!(
        session(&listed, &sid(&v6.access))["ip"],
        json!("2001:db8::1")
    );
    let events = app.events_ok(&v6.access).await;
    assert_eq!(events[0]["ip"], json!("2001:db8::1"), "{events:#?}");
    assert_eq!(events[1]["ip"], json!("203.0.113.7"), "{events:#?}");
}

async fn sessions_without_a_valid_access_token_is_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sessions(None)
        .await
        .expect_only_error("UNAUTHENTICATED");
    app.sessions(Some("not-a-jwt"))
        .await
        .expect_only_error("UNAUTHENTICATED");
    let ada = app.register_ok("ada@example.com").await;
    app.sessions(Some(&ada.refresh))
        .await
        .expect_only_error("UNAUTHENTICATED");
    app.logout(Some(&ada.access), None, false)
        .await
        .expect_success();
    app.sessions(Some(&ada.access))
        .await
        .expect_only_error("UNAUTHENTICATED");
}

backend_tests!(
    sessions_lists_the_callers_live_sessions_newest_first_with_the_client_of_each,
    a_refresh_moves_last_used_and_the_client_while_the_opening_client_stays,
    me_does_not_move_last_used,
    revoked_and_expired_sessions_are_not_listed,
    another_users_sessions_are_never_listed,
    a_user_agent_of_ten_thousand_characters_is_stored_cut_to_256,
    behind_a_trusted_proxy_the_forwarded_client_address_is_recorded,
    sessions_without_a_valid_access_token_is_unauthenticated,
);
