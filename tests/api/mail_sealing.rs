//! Mailed tokens are stored only as keyed hashes, and that holds for the outbox too: a
//! mail waiting there (the mail server is down) keeps its bodies sealed, so the database
//! never holds a usable link. Once the mail server answers, the mail arrives readable.

use sea_orm::{ConnectionTrait, Database, Statement};
use secrecy::SecretString;

use crate::backend_tests;
use crate::helpers::*;

/// Every text value of every row of `table`, as the database returns it.
async fn text_of(url: &str, table: &str) -> String {
    let db = Database::connect(url).await.expect("connect");
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            format!("SELECT * FROM {table}"),
        ))
        .await
        .expect("select");
    let mut all = String::new();
    for row in rows {
        for column in row.column_names() {
            if let Ok(Some(value)) = row.try_get::<Option<String>>("", &column) {
                all.push_str(&value);
                all.push('\n');
            }
        }
    }
    db.close().await.ok();
    all
}

async fn a_waiting_mail_holds_no_usable_link(backend: Backend) {
    // Nothing listens on this port: every attempt fails, and the mail waits (the clock
    // stands still, so its retry never comes due).
    let closed = format!("smtp://127.0.0.1:{}", free_addr().port());
    let (app, _clock) = spawn_app_with_clock(backend, move |s| {
        s.mail.smtp_url = Some(SecretString::from(closed));
    })
    .await;
    app.register_ok("sealed@example.com").await;
    app.mail.dispatch_pending().await.expect("one pass");
    assert_eq!(
        app.mail.queue().pending().await.unwrap(),
        1,
        "the mail waits"
    );

    let outbox = text_of(&app.database_url, "mail_outbox").await;
    assert!(outbox.contains("sealed@example.com"), "{outbox}");
    assert!(!outbox.contains("token="), "a link in the outbox: {outbox}");
    assert!(!outbox.contains("verify-email"), "{outbox}");
    // Both bodies (text and HTML) are sealed.
    assert_eq!(outbox.matches("sealed-v1:").count(), 2, "{outbox}");
}

backend_tests!(a_waiting_mail_holds_no_usable_link);
