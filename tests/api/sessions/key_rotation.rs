//! `auth-server keys rotate` is an operator's security event: a `key_rotated` row naming
//! the new kid, with no user, session or client (the first key, made at the first start,
//! is one too); a refused `keys retire` leaves none.

use serde_json::json;

use super::{database, event_rows, kinds};
use crate::backend_tests;
use crate::helpers::*;
use crate::keys::{keys_command, published_kids, stored_keys};

async fn keys_rotate_records_a_key_rotated_event_with_the_new_kid(backend: Backend) {
    let app = spawn_app_with(backend, stored_keys).await;
    let ada = app.register_ok("ada@example.com").await;
    let old = published_kids(&app).await.remove(0);
    let db = database(&app).await;
    // The first start made the first key: a rotation too.
    let before = event_rows(&db).await;
    assert_eq!(
        before.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        ["key_rotated", "register"],
        "{before:#?}"
    );
    assert_eq!(before[0].detail.as_deref(), Some(old.as_str()));

    let started = chrono::Utc::now();
    let new = keys_command(&app, &["rotate"])
        .await
        .ok()
        .first_line()
        .to_owned();
    let rows = event_rows(&db).await;
    let rotated: Vec<_> = rows
        .iter()
        .filter(|r| r.kind == "key_rotated" && r.detail.as_deref() != Some(old.as_str()))
        .collect();
    assert_eq!(rotated.len(), 1, "{rows:#?}");
    assert_eq!(rows.len(), before.len() + 1, "{rows:#?}");
    let row = rotated[0];
    assert_eq!(row.outcome, "success");
    assert_eq!(row.detail.as_deref(), Some(new.as_str()), "the new kid");
    assert_eq!(row.user_id, None);
    assert_eq!(row.session_id, None);
    assert_eq!(row.ip, None, "no client: the command line");
    assert_eq!(row.user_agent, None);
    assert!(
        row.at >= started - chrono::Duration::seconds(1) && row.at <= chrono::Utc::now(),
        "{row:?}"
    );

    // Retiring the only signing key is refused: no event.
    keys_command(&app, &["retire", &old])
        .await
        .refused_with(&[&old]);
    let after = event_rows(&db).await;
    assert!(after.iter().all(|r| r.kind != "key_retired"), "{after:#?}");
    assert_eq!(after.len(), rows.len());

    // An operator's event is no user's.
    let events = app.events_ok(&ada.access).await;
    assert_eq!(kinds(&events), ["register"], "{events:#?}");
    assert!(events.iter().all(|e| e["detail"] != json!(new)));
    db.close().await.ok();
}

backend_tests!(keys_rotate_records_a_key_rotated_event_with_the_new_kid);
