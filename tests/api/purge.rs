//! The hourly purge deletes dead sessions and expired refresh tokens, and nothing live.

use std::time::Duration;

use auth_server::auth::AuthService;
use sea_orm::{ConnectionTrait, Database, Statement};

use crate::backend_tests;
use crate::helpers::*;

async fn count(db: &sea_orm::DatabaseConnection, table: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) FROM {table}"),
        ))
        .await
        .expect("count")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("integer")
}

async fn the_purge_removes_revoked_sessions_and_expired_tokens_only(backend: Backend) {
    let (app, clock) =
        spawn_app_with_clock(backend, |s| s.tokens.refresh_ttl = Duration::from_secs(2)).await;
    let gone = app.register_ok("gone@example.com").await;
    let expiring = app.register_ok("expiring@example.com").await;
    app.logout(Some(&gone.access), None, false)
        .await
        .data("logout");

    let db = Database::connect(&app.database_url).await.expect("connect");
    // On the app's clock, so that time passes for both.
    let service = AuthService::with_clock(db.clone(), &app.settings, clock.clone().into());
    assert_eq!(count(&db, "sessions").await, 2);
    // The clock stands still: the revocation must be in the past for a purge keeping
    // nothing (`revoked_at < now`), as it was by the time a real clock came here.
    clock.advance(Duration::from_millis(1));
    service
        .purge_dead_sessions(chrono::Duration::zero())
        .await
        .expect("purge");
    assert_eq!(
        count(&db, "sessions").await,
        1,
        "the revoked session is deleted"
    );
    assert_eq!(
        count(&db, "refresh_tokens").await,
        1,
        "its token went with it"
    );
    assert!(
        app.me_ok(&expiring.access).await,
        "the live session is untouched"
    );

    clock.advance(Duration::from_millis(2099));
    service
        .purge_dead_sessions(chrono::Duration::days(1))
        .await
        .expect("purge");
    assert_eq!(
        count(&db, "refresh_tokens").await,
        0,
        "the expired token is deleted"
    );
    assert_eq!(
        count(&db, "sessions").await,
        1,
        "its session is kept for a day"
    );
    app.refresh(&expiring.refresh)
        .await
        .expect_error("INVALID_REFRESH_TOKEN");
    db.close().await.ok();
}

backend_tests!(the_purge_removes_revoked_sessions_and_expired_tokens_only);
