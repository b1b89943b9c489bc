//! `SECURITY_EVENTS_RETENTION`: the purge job deletes events older than the retention and
//! keeps the rest, whoever they belong to.

use std::time::Duration;

use serde_json::json;

use super::{database, event_rows, kinds, rows_until};
use crate::backend_tests;
use crate::helpers::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

async fn the_purge_deletes_events_older_than_the_retention_and_keeps_the_rest(backend: Backend) {
    let (app, clock) = spawn_app_with_clock(backend, |s| {
        s.accounts.security_events_retention = 30 * DAY;
    })
    .await;
    let db = database(&app).await;
    let t0 = clock.now();
    app.register_ok("ada@example.com").await;
    app.login_fails_from("Guesser/1", "ada@example.com").await;
    app.login_fails_from("Guesser/2", "nobody@example.com")
        .await;
    rows_until(&db, "the three first events", |rows| rows.len() == 3).await;

    clock.advance(10 * DAY);
    let kept_at = clock.now();
    app.login_ok_from("Kept/1", "ada@example.com").await;

    // Exactly the retention old: kept.
    clock.advance(20 * DAY);
    app.auth
        .purge_dead_sessions(chrono::Duration::days(1))
        .await
        .expect("purge");
    let rows = event_rows(&db).await;
    assert_eq!(
        rows.len(),
        4,
        "nothing is past the retention yet: {rows:#?}"
    );

    // A microsecond later the first three are past it.
    clock.advance(Duration::from_micros(1));
    let purged = app
        .auth
        .purge_dead_sessions(chrono::Duration::days(1))
        .await
        .expect("purge");
    assert!(purged >= 3, "the purge counts what it deleted: {purged}");
    let rows = event_rows(&db).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].kind, "login");
    assert_eq!(rows[0].at, kept_at);
    assert!(rows.iter().all(|r| r.at > t0));

    let reader = app.login_ok_from("Reader/1", "ada@example.com").await;
    let events = app.events_ok(&reader.access).await;
    assert_eq!(kinds(&events), ["login", "login"], "{events:#?}");
    assert_eq!(events[1]["userAgent"], json!("Kept/1"));

    // Twenty more days: the kept login is past the retention too; the reader's is not.
    clock.advance(20 * DAY + Duration::from_secs(1));
    app.auth
        .purge_dead_sessions(chrono::Duration::days(1))
        .await
        .expect("purge");
    let rows = event_rows(&db).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].user_agent.as_deref(), Some("Reader/1"));
    db.close().await.ok();
}

backend_tests!(the_purge_deletes_events_older_than_the_retention_and_keeps_the_rest);
