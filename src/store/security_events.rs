//! The `security_events` table: appended to, read a page at a time by user, deleted by age.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::entity::security_event;

/// Where a page starts: after the event at `at` with `id` (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

pub struct SecurityEvents<'a, C> {
    db: &'a C,
    /// Inside a write: the rows inserted, announced once it commits.
    recorded: Option<&'a std::sync::Mutex<Vec<security_event::Model>>>,
}

impl<'a, C: ConnectionTrait> SecurityEvents<'a, C> {
    pub(super) fn on(
        db: &'a C,
        recorded: Option<&'a std::sync::Mutex<Vec<security_event::Model>>>,
    ) -> Self {
        Self { db, recorded }
    }

    /// Appends one event.
    pub async fn insert(&self, row: security_event::Model) -> Result<(), DbErr> {
        self.insert_many(vec![row.clone()]).await?;
        if let Some(recorded) = self.recorded
            && let Ok(mut recorded) = recorded.lock()
        {
            recorded.push(row);
        }
        Ok(())
    }

    /// Appends events in one statement.
    pub async fn insert_many(&self, rows: Vec<security_event::Model>) -> Result<(), DbErr> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = rows
            .into_iter()
            .map(sea_orm::IntoActiveModel::into_active_model);
        security_event::Entity::insert_many(rows)
            .exec_without_returning(self.db)
            .await
            .map(|_| ())
    }

    /// Up to `limit` events of `user`, newest first, after `cursor`.
    pub async fn page(
        &self,
        user: Uuid,
        cursor: Option<EventCursor>,
        limit: u64,
    ) -> Result<Vec<security_event::Model>, DbErr> {
        use security_event::Column;
        let mut query = security_event::Entity::find().filter(Column::UserId.eq(user));
        if let Some(c) = cursor {
            query = query.filter(
                Condition::any().add(Column::At.lt(c.at)).add(
                    Condition::all()
                        .add(Column::At.eq(c.at))
                        .add(Column::Id.lt(c.id)),
                ),
            );
        }
        query
            .order_by_desc(Column::At)
            .order_by_desc(Column::Id)
            .limit(limit)
            .all(self.db)
            .await
    }

    /// Deletes events older than `cutoff`; returns how many.
    pub async fn delete_before(&self, cutoff: DateTime<Utc>) -> Result<u64, DbErr> {
        let deleted = security_event::Entity::delete_many()
            .filter(security_event::Column::At.lt(cutoff))
            .exec(self.db)
            .await?;
        Ok(deleted.rows_affected)
    }
}
