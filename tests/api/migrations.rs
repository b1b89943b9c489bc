//! The same migrations go up, down and up again on every backend, and leave the indexes
//! the hot paths rely on.

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, DatabaseBackend, Statement};

use crate::backend_tests;
use crate::helpers::*;

async fn tables(db: &sea_orm::DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        DatabaseBackend::MySql => {
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
        }
        _ => "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    };
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("list tables");
    let mut names: Vec<String> = rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("name"))
        .filter(|n| n != "seaql_migrations")
        .collect();
    names.sort();
    names
}

async fn migrations_go_up_down_and_up_again(backend: Backend) {
    let (_guard, url) = create_database(backend).await;
    let db = Database::connect(&url).await.expect("connect");
    Migrator::up(&db, None).await.expect("up");
    let all = [
        "email_tokens",
        "mail_outbox",
        "mfa_tickets",
        "passkey_challenges",
        "passkeys",
        "recovery_codes",
        "refresh_tokens",
        "security_events",
        "sessions",
        "signing_keys",
        "totp_factors",
        "users",
    ];
    assert_eq!(tables(&db).await, all);
    let statuses = Migrator::get_migration_with_status(&db)
        .await
        .expect("status");
    assert_eq!(statuses.len(), 13);
    assert!(statuses.iter().all(|m| m.status().to_string() == "Applied"));

    // The refresh chains' columns go; every table stays.
    Migrator::down(&db, Some(1))
        .await
        .expect("the refresh chains down");
    assert_eq!(tables(&db).await, all);
    Migrator::down(&db, Some(1))
        .await
        .expect("the passkeys down");
    let before_passkeys: Vec<_> = all
        .iter()
        .copied()
        .filter(|t| !t.starts_with("passkey"))
        .collect();
    assert_eq!(tables(&db).await, before_passkeys);

    let before_second_factors = [
        "email_tokens",
        "mail_outbox",
        "refresh_tokens",
        "security_events",
        "sessions",
        "signing_keys",
        "users",
    ];
    Migrator::down(&db, Some(1))
        .await
        .expect("the second factors down");
    assert_eq!(tables(&db).await, before_second_factors);
    // The token hashes' type change creates and drops no table.
    Migrator::down(&db, Some(1))
        .await
        .expect("the token hashes as varchar down");
    assert_eq!(tables(&db).await, before_second_factors);
    Migrator::down(&db, Some(1))
        .await
        .expect("the session activity and security events down");
    assert_eq!(
        tables(&db).await,
        [
            "email_tokens",
            "mail_outbox",
            "refresh_tokens",
            "sessions",
            "signing_keys",
            "users"
        ]
    );

    Migrator::down(&db, Some(1))
        .await
        .expect("the signing keys down");
    assert_eq!(
        tables(&db).await,
        [
            "email_tokens",
            "mail_outbox",
            "refresh_tokens",
            "sessions",
            "users"
        ]
    );
    Migrator::down(&db, Some(1)).await.expect("one down");
    assert_eq!(
        tables(&db).await,
        ["mail_outbox", "refresh_tokens", "sessions", "users"]
    );
    Migrator::down(&db, Some(1)).await.expect("one more down");
    assert_eq!(tables(&db).await, ["refresh_tokens", "sessions", "users"]);
    Migrator::down(&db, Some(3)).await.expect("three down");
    assert_eq!(tables(&db).await, ["sessions", "users"]);
    Migrator::down(&db, None).await.expect("all down");
    assert!(tables(&db).await.is_empty());
    Migrator::up(&db, None).await.expect("up again");
    assert_eq!(tables(&db).await, all);
    db.close().await.ok();
}

async fn the_unique_indexes_hold_in_the_database_itself(backend: Backend) {
    let (_guard, url) = create_database(backend).await;
    let db = Database::connect(&url).await.expect("connect");
    Migrator::up(&db, None).await.expect("up");
    let insert = |id: u8, email: &str, username: &str| {
        let uuid = uuid::Uuid::from_bytes([id; 16]);
        let now = chrono::Utc::now();
        use sea_orm::{ActiveValue::Set, EntityTrait};
        auth_server::entity::user::Entity::insert(auth_server::entity::user::ActiveModel {
            id: Set(uuid),
            email: Set(email.to_owned()),
            email_skeleton: Set(Some(migration::email_key::skeleton_key(email))),
            username: Set(Some(username.to_owned())),
            username_normalized: Set(Some(username.to_lowercase())),
            password_hash: Set("x".into()),
            created_at: Set(now),
            updated_at: Set(now),
            email_verified_at: Set(None),
        })
        .exec_without_returning(&db)
    };
    insert(1, "a@example.com", "Ada").await.expect("first row");
    for (id, email, username, what) in [
        (2, "a@example.com", "Bob", "duplicate email"),
        (3, "b@example.com", "ADA", "duplicate username"),
        (
            4,
            "a@ex\u{430}mple.com",
            "Cy",
            "look-alike email (Cyrillic a)",
        ),
    ] {
        let err = insert(id, email, username).await.expect_err(what);
        assert!(
            matches!(
                err.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ),
            "{what}: {err}"
        );
    }
    db.close().await.ok();
}

/// The rows the look-alike key migration found: address and key, by id byte.
async fn emails_and_keys(db: &sea_orm::DatabaseConnection) -> Vec<(u8, String, Option<String>)> {
    use auth_server::entity::user;
    use sea_orm::EntityTrait;
    let mut rows: Vec<_> = user::Entity::find()
        .all(db)
        .await
        .expect("read users")
        .into_iter()
        .map(|u| (u.id.as_bytes()[0], u.email, u.email_skeleton))
        .collect();
    rows.sort();
    rows
}

async fn the_look_alike_key_migration_backfills_existing_rows_and_normalises_addresses(
    backend: Backend,
) {
    let (_guard, url) = create_database(backend).await;
    let db = Database::connect(&url).await.expect("connect");
    Migrator::up(&db, Some(4))
        .await
        .expect("up to the migration before");
    // Addresses as the server stored them before (trimmed and lower-cased only), oldest first.
    let rows = [
        (1u8, "kim@example.com"),
        (2, "jose\u{301}@example.com"), // NFD: normalised to NFC
        (3, "k\u{131}m@example.com"),   // looks like 1
        (4, "ｋｉｍ@example.com"),      // normalises to 1's address
        (5, "jos\u{e9}@example.org"),   // already NFC
    ];
    for (i, (id, email)) in rows.iter().enumerate() {
        use sea_orm::{ActiveValue::Set, EntityTrait};
        // Distinct instants, in the order above, so "older" is well defined.
        let at = chrono::Utc::now() - chrono::Duration::seconds(100 - i as i64);
        let at = chrono::SubsecRound::trunc_subsecs(at, 0);
        auth_server::entity::user::Entity::insert(auth_server::entity::user::ActiveModel {
            id: Set(uuid::Uuid::from_bytes([*id; 16])),
            email: Set((*email).to_owned()),
            password_hash: Set("x".into()),
            created_at: Set(at),
            updated_at: Set(at),
            ..Default::default()
        })
        .exec_without_returning(&db)
        .await
        .expect("a row of the old schema");
    }

    Migrator::up(&db, None)
        .await
        .expect("the look-alike key migration");

    let key = |email: &str| Some(migration::email_key::skeleton_key(email));
    assert_eq!(
        emails_and_keys(&db).await,
        [
            (1, "kim@example.com".to_owned(), key("kim@example.com")),
            (
                2,
                "jos\u{e9}@example.com".to_owned(),
                key("jos\u{e9}@example.com")
            ),
            (3, "k\u{131}m@example.com".to_owned(), None),
            (4, "ｋｉｍ@example.com".to_owned(), None),
            (
                5,
                "jos\u{e9}@example.org".to_owned(),
                key("jos\u{e9}@example.org")
            ),
        ]
    );
    db.close().await.ok();
}

backend_tests!(
    migrations_go_up_down_and_up_again,
    the_unique_indexes_hold_in_the_database_itself,
    the_look_alike_key_migration_backfills_existing_rows_and_normalises_addresses,
);
