//! The PostgreSQL backend, for several servers sharing one database. The blocking `postgres`
//! client (the server calls the store from tokio's blocking pool, the CLI directly); one
//! connection behind a mutex, reconnected when the server closed it.

use std::sync::{Mutex, MutexGuard, PoisonError};

use postgres::{Client, NoTls};

use super::{
    check_schema_version, next_seq, now_ms, redact, select_events, store_error, ExperimentEvent,
    ProfileRating, StoredRating, INSERT_EVENT, MIGRATIONS,
};
use crate::error::{Error, Result};

/// Key of the advisory lock that serialises migrations of servers starting together.
const MIGRATION_LOCK: i64 = 0x7265_656c_7261_6e6b; // "reelrank"

pub(super) struct PostgresProfiles {
    url: String,
    redacted: String,
    client: Mutex<Client>,
}

impl PostgresProfiles {
    pub(super) fn connect(url: &str) -> Result<PostgresProfiles> {
        let redacted = redact(url);
        let mut client =
            Client::connect(url, NoTls).map_err(|e| store_error(&redacted, "connect", e))?;
        migrate(&mut client, &redacted)?;
        Ok(PostgresProfiles {
            url: url.to_string(),
            redacted,
            client: Mutex::new(client),
        })
    }

    /// The connection, opened again if the server dropped it (a restart of PostgreSQL).
    fn client(&self) -> Result<MutexGuard<'_, Client>> {
        let mut client = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if client.is_closed() {
            *client = Client::connect(&self.url, NoTls)
                .map_err(|e| store_error(&self.redacted, "reconnect", e))?;
        }
        Ok(client)
    }

    fn fail(&self, action: &str) -> impl Fn(postgres::Error) -> Error + '_ {
        let action = action.to_string();
        move |e| store_error(&self.redacted, &action, e)
    }

    pub(super) fn schema_version(&self) -> Result<i64> {
        let row = self
            .client()?
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
                &[],
            )
            .map_err(self.fail("read schema version"))?;
        Ok(row.get(0))
    }

    pub(super) fn ensure_profile(&self, id: &str, now: i64) -> Result<()> {
        self.client()?
            .execute(
                "INSERT INTO profiles (id, created_at_ms) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                &[&id, &now],
            )
            .map(|_| ())
            .map_err(self.fail("create profile"))
    }

    pub(super) fn ratings(&self, id: &str) -> Result<Option<Vec<ProfileRating>>> {
        let fail = self.fail("read profile");
        let mut client = self.client()?;
        let mut tx = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(&fail)?;
        if tx
            .query_opt("SELECT 1 FROM profiles WHERE id = $1", &[&id])
            .map_err(&fail)?
            .is_none()
        {
            return Ok(None);
        }
        let rows = tx
            .query(
                "SELECT movie_id, rating FROM ratings WHERE profile_id = $1 \
                 ORDER BY seq, movie_id",
                &[&id],
            )
            .map_err(&fail)?;
        tx.commit().map_err(&fail)?;
        Ok(Some(
            rows.iter()
                .map(|row| ProfileRating {
                    movie_id: row.get::<_, i64>(0) as u32,
                    rating: row.get(1),
                })
                .collect(),
        ))
    }

    pub(super) fn set_ratings(
        &self,
        id: &str,
        ratings: &[ProfileRating],
        now: i64,
    ) -> Result<bool> {
        let fail = self.fail("write rating");
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(&fail)?;
        // Locks the profile's row: a concurrent delete of the profile waits for this write.
        if !profile_exists(&mut tx, id).map_err(&fail)? {
            return Ok(false);
        }
        let upsert = tx
            .prepare(&format!(
                "INSERT INTO ratings (profile_id, movie_id, rating, rated_at_ms, seq) \
                 VALUES ($1, $2, $3, $4, {}) \
                 ON CONFLICT (profile_id, movie_id) DO UPDATE SET rating = excluded.rating, \
                 rated_at_ms = excluded.rated_at_ms, seq = excluded.seq",
                next_seq("$1")
            ))
            .map_err(&fail)?;
        for r in ratings {
            tx.execute(&upsert, &[&id, &i64::from(r.movie_id), &r.rating, &now])
                .map_err(&fail)?;
        }
        tx.commit().map_err(&fail)?;
        Ok(true)
    }

    pub(super) fn delete_rating(&self, id: &str, movie: u32) -> Result<Option<bool>> {
        let fail = self.fail("delete rating");
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(&fail)?;
        if !profile_exists(&mut tx, id).map_err(&fail)? {
            return Ok(None);
        }
        let deleted = tx
            .execute(
                "DELETE FROM ratings WHERE profile_id = $1 AND movie_id = $2",
                &[&id, &i64::from(movie)],
            )
            .map_err(&fail)?;
        tx.commit().map_err(&fail)?;
        Ok(Some(deleted > 0))
    }

    pub(super) fn insert_events(&self, events: &[ExperimentEvent]) -> Result<()> {
        let fail = self.fail("write experiment events");
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(&fail)?;
        let insert = tx.prepare(&INSERT_EVENT.replace('?', "$")).map_err(&fail)?;
        for e in events {
            tx.execute(
                &insert,
                &[
                    &e.experiment,
                    &e.arm,
                    &e.ranker,
                    &e.subject,
                    &e.list_id,
                    &e.kind,
                    &i64::from(e.movie_id),
                    &i64::from(e.position),
                    &e.team,
                    &i64::from(e.history),
                    &e.rating,
                    &e.at_ms,
                ],
            )
            .map_err(&fail)?;
        }
        tx.commit().map_err(&fail)
    }

    pub(super) fn events(
        &self,
        experiment: Option<&str>,
        shown: Option<(&str, u32)>,
    ) -> Result<Vec<ExperimentEvent>> {
        let fail = self.fail("read experiment events");
        let mut client = self.client()?;
        let query = select_events(experiment, shown).replace('?', "$");
        let rows = match (experiment, shown) {
            (_, Some((list, movie))) => client.query(&query, &[&list, &i64::from(movie)]),
            (Some(name), None) => client.query(&query, &[&name]),
            (None, None) => client.query(&query, &[]),
        }
        .map_err(&fail)?;
        Ok(rows
            .iter()
            .map(|row| ExperimentEvent {
                experiment: row.get(0),
                arm: row.get(1),
                ranker: row.get(2),
                subject: row.get(3),
                list_id: row.get(4),
                kind: row.get(5),
                movie_id: row.get::<_, i64>(6) as u32,
                position: row.get::<_, i64>(7) as u32,
                team: row.get(8),
                history: row.get::<_, i64>(9) as u32,
                rating: row.get(10),
                at_ms: row.get(11),
            })
            .collect())
    }

    pub(super) fn all_ratings(&self) -> Result<Vec<StoredRating>> {
        let rows = self
            .client()?
            .query(
                "SELECT profile_id, movie_id, rating, rated_at_ms FROM ratings \
                 ORDER BY profile_id, seq, movie_id",
                &[],
            )
            .map_err(self.fail("read ratings"))?;
        Ok(rows
            .iter()
            .map(|row| StoredRating {
                profile: row.get(0),
                movie_id: row.get::<_, i64>(1) as u32,
                rating: row.get(2),
                rated_at_ms: row.get(3),
            })
            .collect())
    }
}

/// Whether profile `id` exists, its row locked against deletion until the transaction ends.
fn profile_exists(tx: &mut postgres::Transaction<'_>, id: &str) -> Result<bool, postgres::Error> {
    tx.query_opt("SELECT 1 FROM profiles WHERE id = $1 FOR SHARE", &[&id])
        .map(|row| row.is_some())
}

/// Applies the migrations not yet applied, in one transaction holding an advisory lock, so
/// that servers starting together migrate once.
fn migrate(client: &mut Client, url: &str) -> Result<()> {
    let fail = |e: postgres::Error| store_error(url, "migrate", e);
    let mut tx = client.transaction().map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(fail)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version BIGINT PRIMARY KEY,
             applied_at_ms BIGINT NOT NULL
         );",
    )
    .map_err(fail)?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .map_err(fail)?
        .get(0);
    check_schema_version(url, current)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at_ms) VALUES ($1, $2)",
            &[version, &now_ms()],
        )
        .map_err(fail)?;
        tracing::info!("{url}: applied schema migration {version}");
    }
    tx.commit().map_err(fail)
}
