//! Benchmark helper (not part of the server): times bcrypt and seeds a database with
//! accounts, sessions and ready-to-use tokens. Driven by `bench/run`; built only with
//! `--features bench`.
//!
//! It uses the server's own token code (`TokenKeys`) and entities, so the seeded rows and
//! the minted tokens are exactly what the server would have produced, and reads the same
//! environment as the server (`DATABASE_URL`, `JWT_ACCESS_SECRET`, `JWT_REFRESH_SECRET`).
//!
//! ```text
//! bench_tool bcrypt COST ROUNDS            # prints {"hash":..,"verify_secs":[..]}
//! bench_tool seed OUT_DIR HASH HOT LOGIN FILLER
//! bench_tool plans                          # EXPLAIN QUERY PLAN of the hot queries (SQLite)
//! bench_tool counts                         # rows per table
//! bench_tool createdb|dropdb NAME           # on the server DATABASE_URL points at
//! ```
//! `seed` adds `LOGIN` accounts `login{i}@bench.test` (password `bench-password`, stored
//! as `HASH`), `HOT` accounts each with one live session whose access token is appended to
//! `OUT_DIR/access.txt` and refresh token to `OUT_DIR/refresh.txt`, and (SQLite only)
//! `FILLER` more accounts, each with a session and a refresh token, by bulk SQL.

use std::io::Write;
use std::time::Instant;

use auth_server::auth::tokens::TokenKeys;
use auth_server::config::Settings;
use auth_server::entity::{refresh_token, session, user};
use chrono::{SubsecRound, Utc};
use sea_orm::{
    ActiveValue::Set, ConnectOptions, ConnectionTrait, Database, DatabaseBackend,
    DatabaseConnection, EntityTrait, Statement, TransactionTrait,
};
use secrecy::ExposeSecret;
use uuid::Uuid;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> Result<&str> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("missing argument {i}; see the file's doc comment").into())
    };
    match arg(0)? {
        "bcrypt" => bcrypt_timing(arg(1)?.parse()?, arg(2)?.parse()?),
        "seed" => {
            seed(
                arg(1)?,
                arg(2)?,
                arg(3)?.parse()?,
                arg(4)?.parse()?,
                arg(5)?.parse()?,
            )
            .await
        }
        "plans" => plans().await,
        "counts" => counts().await,
        "createdb" => admin(&format!("CREATE DATABASE {}", db_name(arg(1)?)?)).await,
        "dropdb" => admin(&format!("DROP DATABASE IF EXISTS {}", db_name(arg(1)?)?)).await,
        other => Err(format!("unknown command {other}").into()),
    }
}

/// Hashes once, then times `rounds` single-threaded verifications.
fn bcrypt_timing(cost: u32, rounds: usize) -> Result<()> {
    let hash = bcrypt::hash("bench-password", cost)?;
    let mut secs = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let ok = bcrypt::verify("bench-password", &hash)?;
        secs.push(start.elapsed().as_secs_f64());
        assert!(ok, "bcrypt verify failed");
    }
    println!(
        "{}",
        serde_json::json!({ "hash": hash, "verify_secs": secs })
    );
    Ok(())
}

async fn connect() -> Result<(Settings, DatabaseConnection)> {
    let settings = Settings::from_env()?;
    let url = settings.database.url.expose_secret().to_owned();
    let mut options = ConnectOptions::new(url.clone());
    options.max_connections(1).sqlx_logging(false);
    if url.starts_with("sqlite:") {
        options.map_sqlx_sqlite_opts(|o| {
            o.busy_timeout(std::time::Duration::from_secs(30))
                .foreign_keys(true)
        });
    }
    let db = Database::connect(options).await?;
    Ok((settings, db))
}

async fn seed(out: &str, hash: &str, hot: usize, login: usize, filler: usize) -> Result<()> {
    let (settings, db) = connect().await?;
    let keys = TokenKeys::new(&settings.tokens);
    let now = Utc::now().trunc_subsecs(6);
    // The server's signing keys, as it stored them (a key made for its process alone would
    // be unknown here: the bench sets KEY_ENCRYPTION_KEY).
    let store = auth_server::store::Store::new(db.clone(), settings.database.url.expose_secret());
    keys.access.ring().load(&store, now).await?;
    let expires = now + chrono::Duration::days(7);
    let tag = Uuid::new_v4().simple().to_string();
    let tag = &tag[..8];
    let started = Instant::now();

    let new_user = |email: String| user::ActiveModel {
        id: Set(Uuid::new_v4()),
        email_skeleton: Set(Some(migration::email_key::skeleton_key(&email))),
        email: Set(email),
        username: Set(None),
        username_normalized: Set(None),
        password_hash: Set(hash.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        // An established user base: addresses proven long ago.
        email_verified_at: Set(Some(now)),
    };

    let txn = db.begin().await?;
    let existing_login = std::fs::read_to_string(format!("{out}/login.txt")).unwrap_or_default();
    if existing_login.is_empty() && login > 0 {
        let mut emails = String::new();
        for chunk in (0..login).collect::<Vec<_>>().chunks(500) {
            let rows = chunk.iter().map(|i| {
                let email = format!("login{i}.{tag}@bench.test");
                emails.push_str(&email);
                emails.push('\n');
                new_user(email)
            });
            user::Entity::insert_many(rows.collect::<Vec<_>>())
                .exec_without_returning(&txn)
                .await?;
        }
        std::fs::write(format!("{out}/login.txt"), emails)?;
    }

    let mut access = String::new();
    let mut refresh = String::new();
    let ids: Vec<(Uuid, Uuid)> = (0..hot).map(|_| (Uuid::new_v4(), Uuid::new_v4())).collect();
    for chunk in ids.chunks(500) {
        let mut users = Vec::new();
        let mut sessions = Vec::new();
        let mut tokens = Vec::new();
        for (user_id, session_id) in chunk {
            users.push(user::ActiveModel {
                id: Set(*user_id),
                ..new_user(format!("hot-{user_id}@bench.test"))
            });
            sessions.push(session::ActiveModel {
                id: Set(*session_id),
                user_id: Set(*user_id),
                created_at: Set(now),
                expires_at: Set(expires),
                revoked_at: Set(None),
                last_used_at: Set(Some(now)),
                created_ip: Set(Some("127.0.0.1".to_owned())),
                created_user_agent: Set(Some("bench".to_owned())),
                last_ip: Set(Some("127.0.0.1".to_owned())),
                last_user_agent: Set(Some("bench".to_owned())),
                amr: Set(Some("pwd".to_owned())),
            });
            let token = keys.new_refresh();
            tokens.push(refresh_token::ActiveModel {
                id: Set(Uuid::new_v4()),
                session_id: Set(*session_id),
                token_hash: Set(keys.hash(&token)),
                created_at: Set(now),
                expires_at: Set(expires),
                spent_at: Set(None),
                generation: Set(token.generation()),
                rotated_at: Set(None),
            });
            access.push_str(&keys.mint_access(*user_id, *session_id, now)?);
            access.push('\n');
            refresh.push_str(token.as_str());
            refresh.push('\n');
        }
        user::Entity::insert_many(users)
            .exec_without_returning(&txn)
            .await?;
        session::Entity::insert_many(sessions)
            .exec_without_returning(&txn)
            .await?;
        refresh_token::Entity::insert_many(tokens)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    std::fs::write(format!("{out}/access.txt"), access)?;
    std::fs::write(format!("{out}/refresh.txt"), refresh)?;

    if filler > 0 {
        if db.get_database_backend() != DatabaseBackend::Sqlite {
            return Err("filler rows are only supported on SQLite".into());
        }
        bulk_filler(&db, filler, tag).await?;
    }
    eprintln!(
        "seeded {login} login accounts, {hot} hot sessions, {filler} filler accounts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Clones the template row's formats (id encoding, timestamp text) with `INSERT … SELECT`
/// over a recursive counter: about a second per 100,000 rows per table.
async fn bulk_filler(db: &DatabaseConnection, filler: usize, tag: &str) -> Result<()> {
    let exec = |sql: String| async move {
        db.execute_raw(Statement::from_string(DatabaseBackend::Sqlite, sql))
            .await
    };
    let row = db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Sqlite,
            "SELECT typeof(id) AS t FROM users LIMIT 1".to_owned(),
        ))
        .await?
        .ok_or("seed hot or login accounts first: they are the template")?;
    let kind: String = row.try_get("", "t")?;
    if kind != "blob" {
        return Err(format!("expected UUIDs stored as blobs, found {kind}").into());
    }
    exec("PRAGMA cache_size = -262144".to_owned()).await?;
    exec("BEGIN IMMEDIATE".to_owned()).await?;
    exec(format!(
        "CREATE TEMP TABLE filler AS WITH RECURSIVE c(n) AS \
         (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {filler}) \
         SELECT n, randomblob(16) AS uid, randomblob(16) AS sid FROM c"
    ))
    .await?;
    exec(format!(
        "INSERT INTO users (id, email, username, username_normalized, password_hash, created_at, updated_at) \
         SELECT uid, 'filler' || n || '.{tag}@bench.test', NULL, NULL, t.password_hash, t.created_at, t.updated_at \
         FROM filler, (SELECT password_hash, created_at, updated_at FROM users LIMIT 1) AS t"
    ))
    .await?;
    exec(
        "INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at) \
         SELECT sid, uid, t.created_at, t.expires_at, NULL \
         FROM filler, (SELECT created_at, expires_at FROM sessions LIMIT 1) AS t"
            .to_owned(),
    )
    .await?;
    exec(
        "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at, spent_at) \
         SELECT randomblob(16), sid, lower(hex(randomblob(32))), t.created_at, t.expires_at, NULL \
         FROM filler, (SELECT created_at, expires_at FROM refresh_tokens LIMIT 1) AS t"
            .to_owned(),
    )
    .await?;
    exec("DROP TABLE filler".to_owned()).await?;
    exec("COMMIT".to_owned()).await?;
    exec("ANALYZE".to_owned()).await?;
    Ok(())
}

/// The query plans SQLite picks for the statements on the hot paths, with the SQL the
/// server sends (captured from its debug log; parameters as `?`).
async fn plans() -> Result<()> {
    let (_, db) = connect().await?;
    let queries = [
        (
            "me: the guard's session + user lookup (the pool's SQL)",
            "SELECT users.* FROM users INNER JOIN sessions ON users.id = sessions.user_id \
             WHERE sessions.id = ? AND sessions.revoked_at IS NULL \
             AND sessions.expires_at > ? LIMIT 1",
        ),
        (
            "me: the same lookup by the inline SQLite reader",
            "SELECT u.id, u.email, u.username, u.created_at, u.updated_at \
             FROM sessions s INNER JOIN users u ON u.id = s.user_id \
             WHERE s.id = ? AND s.revoked_at IS NULL AND s.expires_at > ? LIMIT 1",
        ),
        (
            "refreshToken: find the token and its session",
            "SELECT * FROM refresh_tokens LEFT JOIN sessions ON refresh_tokens.session_id = sessions.id \
             WHERE refresh_tokens.token_hash = ? LIMIT 1",
        ),
        (
            "refreshToken: move the chain on",
            "UPDATE refresh_tokens SET generation = ? + 1, rotated_at = ?, expires_at = ? \
             WHERE id = ? AND generation = ? AND spent_at IS NULL",
        ),
        (
            "refreshToken: spend a token issued before chains",
            "UPDATE refresh_tokens SET spent_at = ? WHERE refresh_tokens.id = ? AND refresh_tokens.spent_at IS NULL",
        ),
        (
            "refreshToken: extend the session",
            "UPDATE sessions SET expires_at = ? WHERE sessions.id = ? AND sessions.revoked_at IS NULL",
        ),
        (
            "refreshToken: the account of the session",
            "SELECT users.* FROM users INNER JOIN sessions ON users.id = sessions.user_id WHERE sessions.id = ? LIMIT 1",
        ),
        (
            "login: the account by email",
            "SELECT * FROM users WHERE users.email = ? LIMIT 1",
        ),
        (
            "login: the account by username",
            "SELECT * FROM users WHERE users.username_normalized = ? LIMIT 1",
        ),
    ];
    let mut out = std::io::stdout().lock();
    for (what, sql) in queries {
        let rows = db
            .query_all_raw(Statement::from_string(
                DatabaseBackend::Sqlite,
                format!("EXPLAIN QUERY PLAN {sql}"),
            ))
            .await?;
        writeln!(out, "-- {what}\n{sql}")?;
        for row in rows {
            let detail: String = row.try_get("", "detail")?;
            writeln!(out, "   => {detail}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Rows per table, to show what the large database holds.
async fn counts() -> Result<()> {
    let (_, db) = connect().await?;
    let mut parts = Vec::new();
    for table in ["users", "sessions", "refresh_tokens"] {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await?
            .ok_or("COUNT(*) returned no row")?;
        let n: i64 = row.try_get("", "n")?;
        parts.push(format!("{table}: {n}"));
    }
    println!("{}", parts.join(", "));
    Ok(())
}

/// A database name we generated ourselves: letters, digits and `_` only.
fn db_name(name: &str) -> Result<&str> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(name)
    } else {
        Err(format!("refusing database name {name:?}").into())
    }
}

/// One statement on the administrative connection `DATABASE_URL` names.
async fn admin(sql: &str) -> Result<()> {
    let url = std::env::var("DATABASE_URL")?;
    let db = Database::connect(ConnectOptions::new(url).sqlx_logging(false).to_owned()).await?;
    db.execute_unprepared(sql).await?;
    db.close().await?;
    Ok(())
}
