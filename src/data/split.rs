//! The seeds' evaluation split: rating rows shuffled with a seed, 80 % train_full / 20 % test,
//! then train_full 80 % base_train / 20 % meta_train. One definition, used by every protocol.

use std::collections::HashMap;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Dataset, Ratings};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// The columns of a split file.
const SPLIT_COLUMNS: [&str; 3] = ["userId", "movieId", "set"];

/// Share of all ratings held out as test.
pub const TEST_SHARE: f64 = 0.2;
/// Share of train_full held out as meta_train.
pub const META_SHARE: f64 = 0.2;

/// Shuffles `train_full` and cuts it into (base_train, meta_train), each sorted.
fn base_and_meta(mut train_full: Vec<usize>, rng: &mut ChaCha8Rng) -> (Vec<usize>, Vec<usize>) {
    train_full.shuffle(rng);
    let n_meta = (train_full.len() as f64 * META_SHARE).ceil() as usize;
    let (meta, base) = train_full.split_at(n_meta.min(train_full.len()));
    (sorted(base.to_vec()), sorted(meta.to_vec()))
}

fn sorted(mut rows: Vec<usize>) -> Vec<usize> {
    rows.sort_unstable();
    rows
}

/// How the test part is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SplitBy {
    /// A seeded shuffle of every rating (the seeds' protocol).
    #[default]
    Random,
    /// Each user's latest ratings by timestamp: a recommender predicts the future from the
    /// past. Per user rather than one global cut, so that every test user has a history and
    /// the test set is not dominated by the few users active at the end.
    Time,
}

/// Which part of the split a rating row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// base_train: the base models fit here.
    Base,
    /// meta_train: held out from the base models, for stacking.
    Meta,
    /// test: never trained on.
    Test,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Base => "base",
            Part::Meta => "meta",
            Part::Test => "test",
        }
    }
}

/// Rating row indices of each part (each sorted ascending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// base_train rows.
    pub base: Vec<usize>,
    /// meta_train rows.
    pub meta: Vec<usize>,
    /// test rows.
    pub test: Vec<usize>,
    /// Where the split came from: "seed 42" or the split file.
    pub source: String,
}

/// Sizes of a split, as reports show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplitSizes {
    /// base_train rows.
    pub base: usize,
    /// meta_train rows.
    pub meta: usize,
    /// test rows.
    pub test: usize,
    /// "seed 42" or the split file.
    pub source: String,
}

impl Split {
    /// The seeded split of `n` rating rows.
    pub fn seeded(n: usize, seed: u64) -> Split {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut rows: Vec<usize> = (0..n).collect();
        rows.shuffle(&mut rng);
        let n_test = (n as f64 * TEST_SHARE).ceil() as usize;
        let (test, train_full) = rows.split_at(n_test.min(n));
        let (base, meta) = base_and_meta(train_full.to_vec(), &mut rng);
        Split {
            base,
            meta,
            test: sorted(test.to_vec()),
            source: format!("seed {seed}"),
        }
    }

    /// The split of `split_by`: [`Split::seeded`], or [`Split::by_time`].
    pub fn new(ratings: &Ratings, split_by: SplitBy, seed: u64) -> Split {
        match split_by {
            SplitBy::Random => Split::seeded(ratings.len(), seed),
            SplitBy::Time => Split::by_time(ratings, seed),
        }
    }

    /// The time split: each user's latest [`TEST_SHARE`] of ratings (rounded up; ties in time
    /// by row order) is the test part; the rest is cut into base_train and meta_train by the
    /// seeded shuffle of [`Split::seeded`].
    pub fn by_time(ratings: &Ratings, seed: u64) -> Split {
        let mut by_user: HashMap<u32, Vec<usize>> = HashMap::new();
        for (row, &user) in ratings.user.iter().enumerate() {
            by_user.entry(user).or_default().push(row);
        }
        let mut users: Vec<u32> = by_user.keys().copied().collect();
        users.sort_unstable();
        let mut test = Vec::new();
        let mut train_full = Vec::new();
        for user in users {
            let mut rows = by_user.remove(&user).unwrap_or_default();
            rows.sort_by_key(|&row| (ratings.timestamp[row], row));
            let n_test = (rows.len() as f64 * TEST_SHARE).ceil() as usize;
            let (past, future) = rows.split_at(rows.len() - n_test.min(rows.len()));
            train_full.extend_from_slice(past);
            test.extend_from_slice(future);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (base, meta) = base_and_meta(sorted(train_full), &mut rng);
        Split {
            base,
            meta,
            test: sorted(test),
            source: format!("time, seed {seed}"),
        }
    }

    /// The serving split of `n` rating rows: no test part, every rating is trained on; the
    /// same seeded 80/20 cut into base_train and meta_train as inside [`Split::seeded`].
    pub fn serving(n: usize, seed: u64) -> Split {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (base, meta) = base_and_meta((0..n).collect(), &mut rng);
        Split {
            base,
            meta,
            test: Vec::new(),
            source: format!("serving, seed {seed}"),
        }
    }

    /// train_full = base_train ∪ meta_train, sorted.
    pub fn train_full(&self) -> Vec<usize> {
        let mut rows = [self.base.as_slice(), self.meta.as_slice()].concat();
        rows.sort_unstable();
        rows
    }

    /// The sizes of each part.
    pub fn sizes(&self) -> SplitSizes {
        SplitSizes {
            base: self.base.len(),
            meta: self.meta.len(),
            test: self.test.len(),
            source: self.source.clone(),
        }
    }

    /// Reads a split file: CSV `userId,movieId,set` with set ∈ {base, meta, test}, one line per
    /// rating row of `dataset` (matched by userId and movieId).
    pub fn read(path: &Path, dataset: &Dataset) -> Result<Split> {
        let ratings = &dataset.ratings;
        let mut row_of: HashMap<(u32, u32), usize> = HashMap::with_capacity(ratings.len());
        for row in 0..ratings.len() {
            row_of.insert(
                (
                    ratings.user[row],
                    dataset.movies[ratings.movie[row] as usize].id,
                ),
                row,
            );
        }
        let mut parts: Vec<Option<Part>> = vec![None; ratings.len()];
        super::csv::for_each_row(path, &SPLIT_COLUMNS, |number, fields| {
            let bad = |field: &str, problem: String| Error::InvalidRow {
                file: path.to_path_buf(),
                line: number,
                field: field.into(),
                problem,
            };
            let id = |i: usize| {
                fields[i]
                    .parse::<u32>()
                    .map_err(|_| bad(SPLIT_COLUMNS[i], format!("'{}' is not an id", fields[i])))
            };
            let (user, movie) = (id(0)?, id(1)?);
            let part = match fields[2] {
                "base" => Part::Base,
                "meta" => Part::Meta,
                "test" => Part::Test,
                other => return Err(bad("set", format!("'{other}' is not base, meta or test"))),
            };
            let row = *row_of.get(&(user, movie)).ok_or_else(|| {
                bad(
                    "movieId",
                    format!("user {user} has no rating of movie {movie}"),
                )
            })?;
            if parts[row].replace(part).is_some() {
                return Err(bad(
                    "movieId",
                    format!("rating ({user}, {movie}) listed twice"),
                ));
            }
            Ok(())
        })?;
        if let Some(row) = parts.iter().position(Option::is_none) {
            return Err(Error::InvalidArgument {
                name: "--split".into(),
                message: format!(
                    "{} does not assign every rating: e.g. user {}, movie {} is missing",
                    path.display(),
                    ratings.user[row],
                    dataset.movies[ratings.movie[row] as usize].id
                ),
            });
        }
        let rows_of = |wanted: Part| -> Vec<usize> {
            (0..parts.len())
                .filter(|&r| parts[r] == Some(wanted))
                .collect()
        };
        Ok(Split {
            base: rows_of(Part::Base),
            meta: rows_of(Part::Meta),
            test: rows_of(Part::Test),
            source: path.display().to_string(),
        })
    }

    /// Writes the split as `userId,movieId,set`, in rating row order.
    pub fn write(&self, path: &Path, dataset: &Dataset) -> Result<()> {
        let ratings: &Ratings = &dataset.ratings;
        let mut parts = vec![Part::Base; ratings.len()];
        for &row in &self.meta {
            parts[row] = Part::Meta;
        }
        for &row in &self.test {
            parts[row] = Part::Test;
        }
        let csv_error = |e: csv::Error| Error::Csv {
            file: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut writer = csv::Writer::from_writer(Vec::with_capacity(ratings.len() * 16));
        writer.write_record(SPLIT_COLUMNS).map_err(csv_error)?;
        for (row, part) in parts.iter().enumerate() {
            let movie = dataset.movies[ratings.movie[row] as usize].id;
            writer
                .write_record([
                    ratings.user[row].to_string(),
                    movie.to_string(),
                    part.name().to_string(),
                ])
                .map_err(csv_error)?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| csv_error(e.into_error().into()))?;
        write_atomic(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_split_holds_out_each_users_latest_ratings() {
        // User 1: 5 ratings (1 held out), user 2: 10 ratings (2 held out), interleaved rows.
        let user1 = [50, 10, 40, 20, 30];
        let user2 = [5, 95, 15, 85, 25, 75, 35, 65, 45, 55];
        let mut ratings = Ratings::default();
        for (i, &t) in user2.iter().enumerate() {
            if let Some(&t1) = user1.get(i) {
                ratings.user.push(1);
                ratings.timestamp.push(t1);
            }
            ratings.user.push(2);
            ratings.timestamp.push(t);
        }
        ratings.movie = (0..ratings.user.len() as u32).collect();
        ratings.rating = vec![4.0; ratings.user.len()];
        let split = Split::by_time(&ratings, 42);
        let held: Vec<(u32, i64)> = split
            .test
            .iter()
            .map(|&r| (ratings.user[r], ratings.timestamp[r]))
            .collect();
        assert_eq!(held, vec![(1, 50), (2, 95), (2, 85)], "in row order");
        let mut all = [split.base.clone(), split.meta.clone(), split.test.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (0..15).collect::<Vec<_>>(), "a partition of every row");
        assert_eq!(
            split.meta.len(),
            3,
            "a fifth of train_full's 12 rows, rounded up"
        );
        assert_eq!(Split::by_time(&ratings, 42), split, "reproducible");
        assert_eq!(
            Split::by_time(&ratings, 7).test,
            split.test,
            "the seed cuts base/meta only"
        );
        assert_eq!(
            Split::new(&ratings, SplitBy::Time, 42).source,
            "time, seed 42"
        );
    }

    #[test]
    fn seeded_split_is_a_reproducible_partition() {
        let split = Split::seeded(1000, 42);
        assert_eq!(
            Split::new(&Ratings::default(), SplitBy::Random, 42).source,
            "seed 42"
        );
        assert_eq!(
            (split.base.len(), split.meta.len(), split.test.len()),
            (640, 160, 200)
        );
        let mut all = [split.base.clone(), split.meta.clone(), split.test.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(Split::seeded(1000, 42), split);
        assert_ne!(Split::seeded(1000, 7).test, split.test);
        assert_eq!(split.train_full().len(), 800);
    }
}
