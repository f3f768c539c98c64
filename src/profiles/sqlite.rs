//! The SQLite backend: one connection behind a mutex (SQLite serialises writers anyway, and
//! every statement here takes well under a millisecond), WAL so readers of other processes
//! (the CLI) never block the server, `synchronous=FULL` so a commit is on disk when it returns.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    check_schema_version, next_seq, now_ms, select_events, store_error, ExperimentEvent,
    ProfileRating, StoredRating, INSERT_EVENT, MIGRATIONS,
};
use crate::error::{Error, Result};

/// How long a writer waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct SqliteProfiles {
    url: String,
    connection: Mutex<Connection>,
}

impl SqliteProfiles {
    pub(super) fn open(path: &Path) -> Result<SqliteProfiles> {
        let url = format!("sqlite://{}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let fail = |action: &str, e: rusqlite::Error| store_error(&url, action, e);
        let mut connection = Connection::open(path).map_err(|e| fail("open", e))?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| fail("set busy timeout", e))?;
        let mode: String = connection
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .map_err(|e| fail("enable WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(store_error(
                &url,
                "enable WAL",
                format!("journal mode is {mode}"),
            ));
        }
        connection
            .execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(|e| fail("set pragmas", e))?;
        migrate(&mut connection, &url)?;
        Ok(SqliteProfiles {
            url,
            connection: Mutex::new(connection),
        })
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-done transaction behind (rusqlite rolls
        // back on drop), so the connection is still good.
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn fail(&self, action: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
        let action = action.to_string();
        move |e| store_error(&self.url, &action, e)
    }

    pub(super) fn schema_version(&self) -> Result<i64> {
        schema_version(&self.connection()).map_err(self.fail("read schema version"))
    }

    pub(super) fn ensure_profile(&self, id: &str, now: i64) -> Result<()> {
        self.connection()
            .execute(
                "INSERT INTO profiles (id, created_at_ms) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                params![id, now],
            )
            .map(|_| ())
            .map_err(self.fail("create profile"))
    }

    pub(super) fn ratings(&self, id: &str) -> Result<Option<Vec<ProfileRating>>> {
        let fail = self.fail("read profile");
        let mut connection = self.connection();
        // One read transaction: the profile and its ratings as of one moment.
        let tx = connection.transaction().map_err(&fail)?;
        if !profile_exists(&tx, id).map_err(&fail)? {
            return Ok(None);
        }
        let mut statement = tx
            .prepare(
                "SELECT movie_id, rating FROM ratings WHERE profile_id = ?1 \
                 ORDER BY seq, movie_id",
            )
            .map_err(&fail)?;
        let ratings = statement
            .query_map([id], |row| {
                Ok(ProfileRating {
                    movie_id: row.get::<_, i64>(0)? as u32,
                    rating: row.get::<_, f64>(1)? as f32,
                })
            })
            .map_err(&fail)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(&fail)?;
        Ok(Some(ratings))
    }

    pub(super) fn set_ratings(
        &self,
        id: &str,
        ratings: &[ProfileRating],
        now: i64,
    ) -> Result<bool> {
        let fail = self.fail("write rating");
        let mut connection = self.connection();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        if !profile_exists(&tx, id).map_err(&fail)? {
            return Ok(false);
        }
        {
            let sql = format!(
                "INSERT INTO ratings (profile_id, movie_id, rating, rated_at_ms, seq) \
                 VALUES (?1, ?2, ?3, ?4, {}) \
                 ON CONFLICT (profile_id, movie_id) DO UPDATE SET rating = excluded.rating, \
                 rated_at_ms = excluded.rated_at_ms, seq = excluded.seq",
                next_seq("?1")
            );
            let mut upsert = tx.prepare_cached(&sql).map_err(&fail)?;
            for r in ratings {
                upsert
                    .execute(params![id, i64::from(r.movie_id), f64::from(r.rating), now])
                    .map_err(&fail)?;
            }
        }
        tx.commit().map_err(&fail)?;
        Ok(true)
    }

    pub(super) fn delete_rating(&self, id: &str, movie: u32) -> Result<Option<bool>> {
        let fail = self.fail("delete rating");
        let mut connection = self.connection();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        if !profile_exists(&tx, id).map_err(&fail)? {
            return Ok(None);
        }
        let deleted = tx
            .execute(
                "DELETE FROM ratings WHERE profile_id = ?1 AND movie_id = ?2",
                params![id, i64::from(movie)],
            )
            .map_err(&fail)?;
        tx.commit().map_err(&fail)?;
        Ok(Some(deleted > 0))
    }

    pub(super) fn insert_events(&self, events: &[ExperimentEvent]) -> Result<()> {
        let fail = self.fail("write experiment events");
        let mut connection = self.connection();
        let tx = connection.transaction().map_err(&fail)?;
        {
            let mut insert = tx.prepare_cached(INSERT_EVENT).map_err(&fail)?;
            for e in events {
                insert
                    .execute(params![
                        e.experiment,
                        e.arm,
                        e.ranker,
                        e.subject,
                        e.list_id,
                        e.kind,
                        i64::from(e.movie_id),
                        i64::from(e.position),
                        e.team,
                        i64::from(e.history),
                        e.rating.map(f64::from),
                        e.at_ms
                    ])
                    .map_err(&fail)?;
            }
        }
        tx.commit().map_err(&fail)
    }

    pub(super) fn events(
        &self,
        experiment: Option<&str>,
        shown: Option<(&str, u32)>,
    ) -> Result<Vec<ExperimentEvent>> {
        let fail = self.fail("read experiment events");
        let connection = self.connection();
        let values: Vec<rusqlite::types::Value> = match (experiment, shown) {
            (_, Some((list, movie))) => vec![list.to_string().into(), i64::from(movie).into()],
            (Some(name), None) => vec![name.to_string().into()],
            (None, None) => Vec::new(),
        };
        let mut statement = connection
            .prepare(&select_events(experiment, shown))
            .map_err(&fail)?;
        let rows = statement
            .query_map(rusqlite::params_from_iter(values), |row| {
                Ok(ExperimentEvent {
                    experiment: row.get(0)?,
                    arm: row.get(1)?,
                    ranker: row.get(2)?,
                    subject: row.get(3)?,
                    list_id: row.get(4)?,
                    kind: row.get(5)?,
                    movie_id: row.get::<_, i64>(6)? as u32,
                    position: row.get::<_, i64>(7)? as u32,
                    team: row.get(8)?,
                    history: row.get::<_, i64>(9)? as u32,
                    rating: row.get::<_, Option<f64>>(10)?.map(|r| r as f32),
                    at_ms: row.get(11)?,
                })
            })
            .map_err(&fail)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(&fail)?;
        Ok(rows)
    }

    pub(super) fn all_ratings(&self) -> Result<Vec<StoredRating>> {
        let fail = self.fail("read ratings");
        let connection = self.connection();
        let mut statement = connection
            .prepare(
                "SELECT profile_id, movie_id, rating, rated_at_ms FROM ratings \
                 ORDER BY profile_id, seq, movie_id",
            )
            .map_err(&fail)?;
        let rows = statement
            .query_map([], |row| {
                Ok(StoredRating {
                    profile: row.get(0)?,
                    movie_id: row.get::<_, i64>(1)? as u32,
                    rating: row.get::<_, f64>(2)? as f32,
                    rated_at_ms: row.get(3)?,
                })
            })
            .map_err(&fail)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(&fail)?;
        Ok(rows)
    }
}

/// Whether profile `id` exists, inside a transaction.
fn profile_exists(connection: &Connection, id: &str) -> rusqlite::Result<bool> {
    connection
        .query_row("SELECT 1 FROM profiles WHERE id = ?1", [id], |_| Ok(()))
        .optional()
        .map(|row| row.is_some())
}

fn schema_version(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )
}

/// Applies the migrations not yet applied, in one immediate transaction (a second process
/// opening the same file at the same moment waits, then finds them applied).
fn migrate(connection: &mut Connection, url: &str) -> Result<()> {
    let fail = |e: rusqlite::Error| store_error(url, "migrate", e);
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version BIGINT PRIMARY KEY,
             applied_at_ms BIGINT NOT NULL
         );",
    )
    .map_err(fail)?;
    let current = schema_version(&tx).map_err(fail)?;
    check_schema_version(url, current)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?1, ?2)",
            params![version, now_ms()],
        )
        .map_err(fail)?;
        tracing::info!("{url}: applied schema migration {version}");
    }
    tx.commit().map_err(fail)
}
