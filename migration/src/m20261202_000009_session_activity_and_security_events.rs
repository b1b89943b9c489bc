//! What users and operators can see: each session's last use and the client that opened
//! and last refreshed it, and `security_events`, the append-only record of authentication
//! events.

use sea_orm_migration::prelude::*;

use crate::instant;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// An IPv6 address in text is at most 45 characters.
const IP_LEN: u32 = 45;
/// User agents are cut to this many characters before they are stored.
const USER_AGENT_LEN: u32 = 256;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        let columns = [
            instant(manager, Sessions::LastUsedAt).null().to_owned(),
            ColumnDef::new(Sessions::CreatedIp)
                .string_len(IP_LEN)
                .null()
                .to_owned(),
            ColumnDef::new(Sessions::CreatedUserAgent)
                .string_len(USER_AGENT_LEN)
                .null()
                .to_owned(),
            ColumnDef::new(Sessions::LastIp)
                .string_len(IP_LEN)
                .null()
                .to_owned(),
            ColumnDef::new(Sessions::LastUserAgent)
                .string_len(USER_AGENT_LEN)
                .null()
                .to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // Sessions opened before this migration were last used, as far as anyone knows,
        // when they were opened.
        manager
            .exec_stmt(
                Query::update()
                    .table(Sessions::Table)
                    .value(Sessions::LastUsedAt, Expr::col(Sessions::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // The session list reads a user's live sessions.
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user_created")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .col(Sessions::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SecurityEvents::Table)
                    .col(
                        ColumnDef::new(SecurityEvents::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    // `login`, `logout`, `session_revoked`, ... (see `auth::events`).
                    .col(
                        ColumnDef::new(SecurityEvents::Kind)
                            .string_len(32)
                            .not_null(),
                    )
                    // `success` or `failure`.
                    .col(
                        ColumnDef::new(SecurityEvents::Outcome)
                            .string_len(16)
                            .not_null(),
                    )
                    // No foreign keys: the record outlives the account and the session
                    // (an account's deletion is itself an event); retention deletes it.
                    .col(ColumnDef::new(SecurityEvents::UserId).uuid().null())
                    .col(ColumnDef::new(SecurityEvents::SessionId).uuid().null())
                    .col(ColumnDef::new(SecurityEvents::Ip).string_len(IP_LEN).null())
                    .col(
                        ColumnDef::new(SecurityEvents::UserAgent)
                            .string_len(USER_AGENT_LEN)
                            .null(),
                    )
                    // A short machine-readable qualifier: the limit that refused, the kid
                    // rotated, why a login failed. Never a secret.
                    .col(
                        ColumnDef::new(SecurityEvents::Detail)
                            .string_len(128)
                            .null(),
                    )
                    .col(instant(manager, SecurityEvents::At).not_null())
                    .to_owned(),
            )
            .await?;
        // A user's events, newest first, by keyset.
        manager
            .create_index(
                Index::create()
                    .name("idx_security_events_user_at")
                    .table(SecurityEvents::Table)
                    .col(SecurityEvents::UserId)
                    .col(SecurityEvents::At)
                    .col(SecurityEvents::Id)
                    .to_owned(),
            )
            .await?;
        // Retention deletes by age.
        manager
            .create_index(
                Index::create()
                    .name("idx_security_events_at")
                    .table(SecurityEvents::Table)
                    .col(SecurityEvents::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SecurityEvents::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_sessions_user_created")
                    .table(Sessions::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Sessions::LastUserAgent,
            Sessions::LastIp,
            Sessions::CreatedUserAgent,
            Sessions::CreatedIp,
            Sessions::LastUsedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    UserId,
    CreatedAt,
    LastUsedAt,
    CreatedIp,
    CreatedUserAgent,
    LastIp,
    LastUserAgent,
}

#[derive(DeriveIden)]
enum SecurityEvents {
    Table,
    Id,
    Kind,
    Outcome,
    UserId,
    SessionId,
    Ip,
    UserAgent,
    Detail,
    At,
}
