//! Opening the database: pool limits, SQLite pragmas, and migrations.

use sea_orm::sqlx::Connection as _;
use sea_orm::sqlx::sqlite::SqliteConnectOptions;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;
use crate::storage;

/// How long a pooled MySQL/PostgreSQL connection may have been idle and still be handed out
/// without a ping first.
const PING_IF_IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Connects with the configured pool and statement timeout. SQLite runs in WAL mode with
/// `synchronous=FULL`, so a committed registration survives a crash or power loss.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    connect_with(settings, |o| o).await
}

/// As [`connect`], with `tune` applied last to every SQLite connection's options (tests use
/// it to set pragmas such as `max_page_count`).
pub async fn connect_with(
    settings: &DatabaseSettings,
    tune: impl Fn(SqliteConnectOptions) -> SqliteConnectOptions + Send + Sync + 'static,
) -> Result<DatabaseConnection, DbErr> {
    let url = settings.url.expose_secret();
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(settings.max_connections)
        .min_connections(1)
        .acquire_timeout(settings.acquire_timeout)
        .connect_timeout(settings.acquire_timeout)
        // Statements are logged at debug level only; they never carry secrets in plain
        // text, but they are noise.
        .sqlx_logging(false);
    let timeout = settings.statement_timeout;
    if url.starts_with("sqlite:") {
        options.map_sqlx_sqlite_opts(move |o| {
            tune(
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                    .busy_timeout(timeout)
                    .foreign_keys(true),
            )
        });
        // An embedded database has no connection to lose, and each ping is a round trip
        // to the connection's worker thread: see bench/FINDINGS.md (item 1).
        options.test_before_acquire(false);
    } else {
        // A connection used within the last second is handed out without a ping: sqlx's
        // default pings before every checkout, one more round trip for each (`me` made
        // three, counting the ping sqlx always sends on release; see bench/FINDINGS.md,
        // issue 17). A connection cut by an outage is still caught: one idle for longer is
        // pinged, and one whose query failed fails sqlx's ping on release and is closed.
        // (The hot reads and rotations also skip the ping on release: `store::warm`.)
        options.test_before_acquire_if_idle_for(PING_IF_IDLE_FOR);
    }
    if url.starts_with("postgres") {
        options.statement_timeout(timeout);
    }
    // A connection whose commit or rollback failed may be inside a transaction that sqlx
    // and the database no longer agree on: it is closed, never handed out again (see
    // `crate::storage`). `is_in_transaction` reads sqlx's count: no round trip.
    options.map_sqlx_sqlite_pool_opts(|pool| {
        pool.after_release(|conn, _| {
            Box::pin(async move { Ok(storage::reusable(conn.is_in_transaction())) })
        })
    });
    options.map_sqlx_mysql_pool_opts(move |pool| {
        pool.after_connect(move |conn, _| Box::pin(mysql_session(conn, timeout)))
            .after_release(|conn, _| {
                Box::pin(async move { Ok(storage::reusable(conn.is_in_transaction())) })
            })
    });
    options.map_sqlx_postgres_pool_opts(|pool| {
        pool.after_release(|conn, _| {
            Box::pin(async move { Ok(storage::reusable(conn.is_in_transaction())) })
        })
    });
    Database::connect(options).await
}

/// The session settings of every new MySQL/MariaDB connection. Per connection, in sqlx's
/// pool hook: sea-orm's `ConnectOptions::after_connect` runs once, on whichever pooled
/// connection it gets, so the statement timeout used to hold on one connection of the pool
/// only (`storage_failures::server_connections_all_carry_the_session_settings`).
async fn mysql_session(
    conn: &mut sea_orm::sqlx::MySqlConnection,
    timeout: std::time::Duration,
) -> Result<(), sea_orm::sqlx::Error> {
    use sea_orm::sqlx::{AssertSqlSafe, Executor as _};
    // MariaDB calls it max_statement_time (seconds); MySQL max_execution_time (ms).
    let mariadb = format!("SET SESSION max_statement_time = {}", timeout.as_secs_f64());
    if conn.execute(AssertSqlSafe(mariadb)).await.is_err() {
        let mysql = format!("SET SESSION max_execution_time = {}", timeout.as_millis());
        conn.execute(AssertSqlSafe(mysql)).await?;
    }
    // Every transaction at READ COMMITTED, as PostgreSQL runs by default: at REPEATABLE
    // READ a DELETE that finds no row still takes gap locks, and two writes of one account
    // (delete its older tokens, insert the new one) deadlocked. Set once here rather than
    // by a statement before each `BEGIN` (a round trip per write; bench/FINDINGS.md,
    // issue 17).
    conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .await?;
    Ok(())
}

/// Applies every pending migration on `db`, without the cross-process lock: for tests on
/// a private database. The server and the CLI use [`crate::migrate::run`].
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    use migration::MigratorTrait;
    migration::Migrator::up(db, None).await
}
