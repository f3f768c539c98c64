//! The database of what people do online: profiles and their ratings, in SQLite (embedded, the
//! default: one file beside the index root) or PostgreSQL (shared by several servers), through
//! one [`ProfileStore`] whose two backends run the same versioned migrations.
//!
//! Guarantees: a write returns only after the database has committed it (SQLite in WAL mode
//! with `synchronous=FULL`, PostgreSQL with its default synchronous commit), so an acknowledged
//! rating survives a SIGKILL of the process the next instant; each write is one transaction,
//! so concurrent writers to one profile lose nothing (the last rating of a movie wins).

mod postgres;
mod sqlite;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::data::RATING_RANGE;
use crate::error::{Error, Result};

/// The schema, one migration a version, applied in order and recorded in `schema_migrations`.
/// The SQL is the common dialect of SQLite and PostgreSQL (BIGINT, REAL, TEXT, ON CONFLICT).
pub(crate) const MIGRATIONS: [(i64, &str); 2] = [
    (
        1,
        "CREATE TABLE profiles (
         id TEXT PRIMARY KEY,
         created_at_ms BIGINT NOT NULL
     );
     CREATE TABLE ratings (
         profile_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
         movie_id BIGINT NOT NULL,
         rating REAL NOT NULL,
         rated_at_ms BIGINT NOT NULL,
         seq BIGINT NOT NULL,
         PRIMARY KEY (profile_id, movie_id)
     );",
    ),
    (
        2,
        "CREATE TABLE experiment_events (
             experiment TEXT NOT NULL,
             arm TEXT NOT NULL,
             ranker TEXT NOT NULL,
             subject TEXT NOT NULL,
             list_id TEXT NOT NULL,
             kind TEXT NOT NULL,
             movie_id BIGINT NOT NULL,
             position BIGINT NOT NULL,
             team TEXT,
             history BIGINT NOT NULL,
             rating REAL,
             at_ms BIGINT NOT NULL
         );
         CREATE INDEX experiment_events_by_experiment ON experiment_events (experiment);
         CREATE INDEX experiment_events_by_list ON experiment_events (list_id, movie_id);",
    ),
];

/// The order of a profile's ratings: one more than its latest (clocks tie and go backwards;
/// this does not). Evaluated inside the writing transaction.
/// `profile` is the SQL placeholder of the profile id (`?1`, `$1`).
pub(crate) fn next_seq(profile: &str) -> String {
    format!("(SELECT COALESCE(MAX(seq), 0) + 1 FROM ratings WHERE profile_id = {profile})")
}

/// The columns of an experiment event, in [`ExperimentEvent`]'s order.
pub(crate) const EVENT_COLUMNS: &str =
    "experiment, arm, ranker, subject, list_id, kind, movie_id, \
     position, team, history, rating, at_ms";

/// The query reading the experiment events of one experiment, of one shown movie (list id and
/// movie id), or every one (`?N` placeholders; PostgreSQL's `$N` by replacing '?'), in one
/// order for both backends: time, then the list and position shown, then the kind.
pub(crate) fn select_events(experiment: Option<&str>, shown: Option<(&str, u32)>) -> String {
    let filter = match (experiment, shown) {
        (_, Some(_)) => "WHERE list_id = ?1 AND movie_id = ?2",
        (Some(_), None) => "WHERE experiment = ?1",
        (None, None) => "",
    };
    format!(
        "SELECT {EVENT_COLUMNS} FROM experiment_events {filter} \
         ORDER BY at_ms, list_id, position, kind"
    )
}

/// Inserts one experiment event (`?N` placeholders; PostgreSQL's `$N` by replacing '?').
pub(crate) const INSERT_EVENT: &str = "INSERT INTO experiment_events (experiment, arm, ranker, \
     subject, list_id, kind, movie_id, position, team, history, rating, at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The default store's file name suffix: `indexes/ml-latest-small` keeps its people in
/// `indexes/ml-latest-small.profiles.sqlite`, beside the root, never inside a generation.
const DEFAULT_STORE_SUFFIX: &str = ".profiles.sqlite";

/// Longest profile id accepted.
pub const MAX_PROFILE_ID: usize = 64;

/// One rating of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProfileRating {
    /// MovieLens movieId.
    pub movie_id: u32,
    /// 0.5..=5.0.
    pub rating: f32,
}

/// The kind of the event that records a movie shown.
pub const IMPRESSION: &str = "impression";
/// What people may do with a movie shown: the kinds of interaction events.
pub const INTERACTIONS: [&str; 4] = ["click", "like", "dislike", "rating"];

/// One event of an online experiment: a movie shown (an impression) or something done with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentEvent {
    /// The experiment's name.
    pub experiment: String,
    /// "A" or "B" (A/B), or "interleave".
    pub arm: String,
    /// The ranker that put the movie there (the arm's, or the team's when interleaved).
    pub ranker: String,
    /// Who was shown it: `profile:ID` or `user:N`.
    pub subject: String,
    /// The list it was shown in (one answer of the server).
    pub list_id: String,
    /// [`IMPRESSION`] or one of [`INTERACTIONS`].
    pub kind: String,
    /// MovieLens movieId.
    pub movie_id: u32,
    /// 1-based position in the list.
    pub position: u32,
    /// The team credited with the position ("A" or "B"), when interleaved.
    pub team: Option<String>,
    /// How many ratings the person had when shown the list.
    pub history: u32,
    /// The rating, for a "rating" event.
    pub rating: Option<f32>,
    /// When, Unix milliseconds.
    pub at_ms: i64,
}

/// A stored rating with the profile it belongs to, as `build` ingests it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRating {
    /// The profile's id.
    pub profile: String,
    /// MovieLens movieId.
    pub movie_id: u32,
    /// 0.5..=5.0.
    pub rating: f32,
    /// When it was written, Unix milliseconds.
    pub rated_at_ms: i64,
}

/// Where a store lives: `sqlite://PATH` or `postgres://…` (`postgresql://` too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string.
    Postgres(String),
}

impl StoreUrl {
    /// Parses `--store`.
    pub fn parse(text: &str) -> Result<StoreUrl> {
        let bad = |message: String| Error::InvalidArgument {
            name: "--store".into(),
            message,
        };
        if let Some(path) = text.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(bad(
                    "sqlite:// needs a file path, e.g. sqlite://people.sqlite".into(),
                ));
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(text.to_string()));
        }
        Err(bad(format!(
            "'{}': give sqlite://PATH or postgres://USER@HOST/DB",
            redact(text)
        )))
    }

    /// The default store of the index root `index`: an SQLite file beside it.
    pub fn beside(index: &Path) -> StoreUrl {
        let mut name = index
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "index".into());
        name.push(DEFAULT_STORE_SUFFIX);
        StoreUrl::Sqlite(index.with_file_name(name))
    }

    /// The URL with any password hidden, for messages and logs.
    pub fn display(&self) -> String {
        match self {
            StoreUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            StoreUrl::Postgres(url) => redact(url),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// A new id (of a profile, of a list shown): 128 random bits from the thread's CSPRNG (ChaCha
/// seeded by the OS), as 32 hex digits. Knowing a profile's id is what lets a client write to
/// it, so it must not be guessable.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses an id that is empty, too long, or not letters, digits, '-' and '_' (the names of
/// the CLI's saved profiles follow the same rule).
pub fn check_profile_id(id: &str, parameter: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_PROFILE_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name: parameter.into(),
            message: format!(
                "'{}': a profile id is 1 to {MAX_PROFILE_ID} letters, digits, '-' and '_'",
                id.chars().take(80).collect::<String>()
            ),
        })
    }
}

/// Refuses a rating outside 0.5..=5 (or not a number).
pub fn check_rating_value(rating: f32, parameter: &str) -> Result<()> {
    if RATING_RANGE.contains(&rating) {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name: parameter.into(),
            message: format!(
                "{rating} is outside {}..={}",
                RATING_RANGE.start(),
                RATING_RANGE.end()
            ),
        })
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The profiles and ratings of one database.
pub struct ProfileStore {
    url: StoreUrl,
    backend: Backend,
}

enum Backend {
    Sqlite(sqlite::SqliteProfiles),
    /// Boxed: the client is large and there is one store per process.
    Postgres(Box<postgres::PostgresProfiles>),
}

impl std::fmt::Debug for ProfileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProfileStore({})", self.url.display())
    }
}

impl ProfileStore {
    /// Opens the store, creating an SQLite file (and its directory) if there is none, and
    /// brings its schema up to [`SCHEMA_VERSION`]. A database of a newer schema is refused.
    pub fn open(url: &StoreUrl) -> Result<ProfileStore> {
        let backend = match url {
            StoreUrl::Sqlite(path) => Backend::Sqlite(sqlite::SqliteProfiles::open(path)?),
            StoreUrl::Postgres(text) => {
                Backend::Postgres(Box::new(postgres::PostgresProfiles::connect(text)?))
            }
        };
        Ok(ProfileStore {
            url: url.clone(),
            backend,
        })
    }

    /// Opens the store if it exists: an SQLite file that is not there is `None` (reading
    /// commands never create one); a PostgreSQL database is always opened.
    pub fn open_existing(url: &StoreUrl) -> Result<Option<ProfileStore>> {
        match url {
            StoreUrl::Sqlite(path) if !path.exists() => Ok(None),
            _ => ProfileStore::open(url).map(Some),
        }
    }

    /// Where it is (password hidden).
    pub fn url(&self) -> String {
        self.url.display()
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64> {
        match &self.backend {
            Backend::Sqlite(s) => s.schema_version(),
            Backend::Postgres(p) => p.schema_version(),
        }
    }

    /// Creates a profile with a new random id and returns the id.
    pub fn create_profile(&self) -> Result<String> {
        let id = random_id();
        self.ensure_profile(&id)?;
        Ok(id)
    }

    /// Creates profile `id` unless it exists (the CLI's named profiles).
    pub fn ensure_profile(&self, id: &str) -> Result<()> {
        check_profile_id(id, "profile")?;
        match &self.backend {
            Backend::Sqlite(s) => s.ensure_profile(id, now_ms()),
            Backend::Postgres(p) => p.ensure_profile(id, now_ms()),
        }
    }

    /// The ratings of profile `id`, oldest first; `None` if there is no such profile.
    pub fn ratings(&self, id: &str) -> Result<Option<Vec<ProfileRating>>> {
        check_profile_id(id, "profile")?;
        match &self.backend {
            Backend::Sqlite(s) => s.ratings(id),
            Backend::Postgres(p) => p.ratings(id),
        }
    }

    /// Sets profile `id`'s rating of `movie_id`, replacing an earlier one; false if there is
    /// no such profile. The caller checks that the movie exists.
    pub fn set_rating(&self, id: &str, movie_id: u32, rating: f32) -> Result<bool> {
        self.set_ratings(id, &[ProfileRating { movie_id, rating }])
    }

    /// Sets several ratings of profile `id` in one transaction (all or none), in order;
    /// false if there is no such profile.
    pub fn set_ratings(&self, id: &str, ratings: &[ProfileRating]) -> Result<bool> {
        check_profile_id(id, "profile")?;
        for r in ratings {
            check_rating_value(r.rating, "rating")?;
        }
        match &self.backend {
            Backend::Sqlite(s) => s.set_ratings(id, ratings, now_ms()),
            Backend::Postgres(p) => p.set_ratings(id, ratings, now_ms()),
        }
    }

    /// Removes profile `id`'s rating of `movie_id`: `None` if there is no such profile, else
    /// whether there was a rating.
    pub fn delete_rating(&self, id: &str, movie_id: u32) -> Result<Option<bool>> {
        check_profile_id(id, "profile")?;
        match &self.backend {
            Backend::Sqlite(s) => s.delete_rating(id, movie_id),
            Backend::Postgres(p) => p.delete_rating(id, movie_id),
        }
    }

    /// Records experiment events (the movies of one list shown, say) in one transaction.
    pub fn record_events(&self, events: &[ExperimentEvent]) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.insert_events(events),
            Backend::Postgres(p) => p.insert_events(events),
        }
    }

    /// Records `kind` (one of [`INTERACTIONS`]) done with `movie_id` of list `list_id`, copying
    /// the experiment, arm, team and position from its impression; `None` (nothing written)
    /// when that list did not show that movie.
    pub fn record_interaction(
        &self,
        list_id: &str,
        movie_id: u32,
        kind: &str,
        rating: Option<f32>,
    ) -> Result<Option<ExperimentEvent>> {
        let Some(shown) = self
            .experiment_events_where(None, Some((list_id, movie_id)))?
            .into_iter()
            .find(|e| e.kind == IMPRESSION)
        else {
            return Ok(None);
        };
        let event = ExperimentEvent {
            kind: kind.to_string(),
            rating,
            at_ms: now_ms(),
            ..shown
        };
        self.record_events(std::slice::from_ref(&event))?;
        Ok(Some(event))
    }

    /// Every event of experiment `name`, oldest first.
    pub fn experiment_events(&self, name: &str) -> Result<Vec<ExperimentEvent>> {
        self.experiment_events_where(Some(name), None)
    }

    fn experiment_events_where(
        &self,
        experiment: Option<&str>,
        shown: Option<(&str, u32)>,
    ) -> Result<Vec<ExperimentEvent>> {
        match &self.backend {
            Backend::Sqlite(s) => s.events(experiment, shown),
            Backend::Postgres(p) => p.events(experiment, shown),
        }
    }

    /// Every rating of every profile, by profile id then time: what `build` ingests.
    pub fn all_ratings(&self) -> Result<Vec<StoredRating>> {
        match &self.backend {
            Backend::Sqlite(s) => s.all_ratings(),
            Backend::Postgres(p) => p.all_ratings(),
        }
    }
}

/// A store error naming the database.
pub(crate) fn store_error(url: &str, action: &str, error: impl std::fmt::Display) -> Error {
    Error::Store {
        store: url.to_string(),
        message: format!("{action}: {error}"),
    }
}

/// Refuses a database whose schema is newer than this code's.
pub(crate) fn check_schema_version(url: &str, found: i64) -> Result<()> {
    if found > SCHEMA_VERSION {
        Err(Error::Store {
            store: url.to_string(),
            message: format!(
                "its schema is version {found}, newer than this reelrank's {SCHEMA_VERSION}; \
                 upgrade reelrank"
            ),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_urls_and_hides_passwords() -> Result<()> {
        assert_eq!(
            StoreUrl::parse("sqlite://a/b.sqlite")?,
            StoreUrl::Sqlite("a/b.sqlite".into())
        );
        let pg = StoreUrl::parse("postgres://me:secret@db:5432/reelrank")?;
        assert_eq!(pg.display(), "postgres://me:***@db:5432/reelrank");
        assert!(StoreUrl::parse("sqlite://").is_err());
        let err = StoreUrl::parse("mysql://me:pw@x/y")
            .expect_err("refused")
            .to_string();
        assert!(err.contains("--store") && !err.contains("pw"), "{err}");
        assert_eq!(
            StoreUrl::beside(Path::new("indexes/ml-latest-small")),
            StoreUrl::Sqlite("indexes/ml-latest-small.profiles.sqlite".into())
        );
        Ok(())
    }

    #[test]
    fn profile_ids_are_random_and_checked() {
        let (a, b) = (random_id(), random_id());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(check_profile_id(&a, "profile").is_ok());
        for bad in ["", "../etc", "a b", &"x".repeat(MAX_PROFILE_ID + 1)] {
            assert!(check_profile_id(bad, "profile").is_err(), "{bad}");
        }
    }

    #[test]
    fn sqlite_store_keeps_ratings_and_migrates_once() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let url = StoreUrl::Sqlite(dir.path().join("sub/people.sqlite"));
        assert!(ProfileStore::open_existing(&url)?.is_none());
        let store = ProfileStore::open(&url)?;
        assert_eq!(store.schema_version()?, SCHEMA_VERSION);
        let id = store.create_profile()?;
        assert_eq!(store.ratings(&id)?, Some(Vec::new()));
        assert!(store.set_rating(&id, 1, 4.5)?);
        assert!(store.set_rating(&id, 2, 1.0)?);
        assert!(
            store.set_rating(&id, 1, 3.0)?,
            "a second rating replaces the first"
        );
        assert!(!store.set_rating("nobody", 1, 3.0)?);
        assert!(store.set_rating(&id, 3, 6.0).is_err());
        assert_eq!(store.delete_rating(&id, 2)?, Some(true));
        assert_eq!(store.delete_rating(&id, 2)?, Some(false));
        assert_eq!(store.delete_rating("nobody", 2)?, None);
        // Ratings keep the order they were given in, whatever the clock says; a new rating of
        // a movie moves it last.
        for movie in [30, 10, 20] {
            assert!(store
                .set_rating("alice-order", movie, 4.0)
                .is_ok_and(|found| !found));
        }
        store.ensure_profile("alice-order")?;
        for movie in [30, 10, 20, 30] {
            assert!(store.set_rating("alice-order", movie, 4.0)?);
        }
        let order: Vec<u32> = store
            .ratings("alice-order")?
            .unwrap_or_default()
            .iter()
            .map(|r| r.movie_id)
            .collect();
        assert_eq!(order, [10, 20, 30]);
        drop(store);
        // Reopening runs no migration twice and finds the ratings.
        let store = ProfileStore::open_existing(&url)?.expect("the file exists");
        assert_eq!(
            store.ratings(&id)?,
            Some(vec![ProfileRating {
                movie_id: 1,
                rating: 3.0
            }])
        );
        assert_eq!(store.ratings("nobody")?, None);
        store.ensure_profile("alice")?;
        store.ensure_profile("alice")?;
        assert!(store.set_rating("alice", 7, 5.0)?);
        let all = store.all_ratings()?;
        assert_eq!(all.len(), 5);
        assert!(all.iter().any(|r| r.profile == "alice" && r.movie_id == 7));
        Ok(())
    }

    #[test]
    fn a_newer_schema_is_refused() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("people.sqlite");
        drop(ProfileStore::open(&StoreUrl::Sqlite(path.clone()))?);
        let connection = rusqlite::Connection::open(&path).expect("open");
        connection
            .execute(
                "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (99, 0)",
                [],
            )
            .expect("insert");
        drop(connection);
        let err = ProfileStore::open(&StoreUrl::Sqlite(path))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("version 99"), "{err}");
        Ok(())
    }
}
