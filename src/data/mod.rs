//! Loading and validating a MovieLens directory (`ratings.csv`, `movies.csv`, `tags.csv`,
//! optionally `links.csv`) with polars.
//!
//! Validation is strict: a missing file or column, an unparsable or empty value, a rating
//! outside 0.5..=5.0 or a duplicate movieId is an error naming the file, line and field.
//! Rows of `ratings.csv` or `tags.csv` whose movieId is absent from `movies.csv` ("orphans") are
//! skipped with a warning and counted in [`Skipped`], which `build` records in the manifest: the
//! MovieLens releases have none, and a user's trimmed copy of them should still load.

pub(crate) mod csv;
pub mod split;
pub mod synthetic;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use polars::prelude::{Float64Type, Int64Type, UInt32Type};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use csv::{optional, required, Kind};

/// The dataset directory used when neither `--data` nor `REELRANK_DATA` is given.
pub const DEFAULT_DATA_DIR: &str = "data/ml-latest-small";

/// The files of a MovieLens directory, in the order they are fingerprinted.
pub const DATASET_FILES: [&str; 4] = ["movies.csv", "ratings.csv", "tags.csv", "links.csv"];

/// The smallest and largest rating MovieLens allows.
pub const RATING_RANGE: std::ops::RangeInclusive<f32> = 0.5..=5.0;

/// The rating from which a movie counts as liked (relevant in the evaluations, a positive in
/// training, a liked movie of a taste profile).
pub const LIKED_THRESHOLD: f32 = 4.0;

/// The text MovieLens uses for a movie without genres.
const NO_GENRES: &str = "(no genres listed)";

/// How to obtain MovieLens, shown when the data directory is missing.
pub const DATASET_HINT: &str = "Download MovieLens (e.g. https://files.grouplens.org/datasets/movielens/ml-latest-small.zip), \
unzip it under data/ (see data/README.md), or point --data / REELRANK_DATA at a MovieLens directory";

/// One movie of `movies.csv`, with its `links.csv` ids when present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Movie {
    /// MovieLens movieId.
    pub id: u32,
    /// The title as MovieLens writes it, year included ("Toy Story (1995)").
    pub title: String,
    /// The release year parsed from the title, when it ends in "(YYYY)".
    pub year: Option<u16>,
    /// Genres, empty for "(no genres listed)".
    pub genres: Vec<String>,
    /// IMDb id from links.csv (digits, leading zeros kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imdb_id: Option<String>,
    /// TMDB id from links.csv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmdb_id: Option<u32>,
}

impl Movie {
    /// The movie's IMDb page, from links.csv.
    pub fn imdb_url(&self) -> Option<String> {
        self.imdb_id
            .as_ref()
            .map(|id| format!("https://www.imdb.com/title/tt{id}/"))
    }

    /// The movie's TMDB page, from links.csv.
    pub fn tmdb_url(&self) -> Option<String> {
        self.tmdb_id
            .map(|id| format!("https://www.themoviedb.org/movie/{id}"))
    }
}

/// All ratings, column-wise; `movie` holds positions in [`Dataset::movies`], not movieIds.
#[derive(Debug, Clone, Default)]
pub struct Ratings {
    /// MovieLens userId of each rating.
    pub user: Vec<u32>,
    /// Position of the rated movie in [`Dataset::movies`].
    pub movie: Vec<u32>,
    /// The rating, 0.5..=5.0.
    pub rating: Vec<f32>,
    /// Unix seconds.
    pub timestamp: Vec<i64>,
}

impl Ratings {
    /// Number of ratings.
    pub fn len(&self) -> usize {
        self.rating.len()
    }

    /// Whether there are no ratings.
    pub fn is_empty(&self) -> bool {
        self.rating.is_empty()
    }
}

/// One row of `tags.csv`; `movie` is a position in [`Dataset::movies`].
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    /// MovieLens userId.
    pub user: u32,
    /// Position of the tagged movie in [`Dataset::movies`].
    pub movie: u32,
    /// The tag text as typed.
    pub text: String,
    /// Unix seconds.
    pub timestamp: i64,
}

/// Rows that were read but not used, reported instead of dropped silently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Ratings whose movieId is not in movies.csv.
    pub orphan_ratings: usize,
    /// Tags whose movieId is not in movies.csv.
    pub orphan_tags: usize,
    /// Links whose movieId is not in movies.csv.
    pub orphan_links: usize,
    /// Ratings of a (userId, movieId) pair rated again later: only the latest one is kept
    /// (by timestamp; the later line on a tie).
    #[serde(default)]
    pub duplicate_ratings: usize,
}

/// What [`Dataset::add_people`] added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeopleAdded {
    /// The userId of the first person added.
    pub first_user: u32,
    /// People with at least one rating added.
    pub people: usize,
    /// Ratings added.
    pub ratings: usize,
    /// Ratings dropped: unknown movie or rating out of range.
    pub dropped: usize,
}

/// A loaded, validated MovieLens dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The directory it was read from.
    pub dir: PathBuf,
    /// Movies in `movies.csv` order.
    pub movies: Vec<Movie>,
    /// All ratings that reference a known movie.
    pub ratings: Ratings,
    /// All tags that reference a known movie, in file order.
    pub tags: Vec<Tag>,
    /// Rows skipped as orphans.
    pub skipped: Skipped,
    positions: HashMap<u32, u32>,
}

impl Dataset {
    /// Loads and validates the MovieLens directory `dir`.
    pub fn load(dir: &Path) -> Result<Dataset> {
        if !dir.is_dir() {
            return Err(Error::DatasetNotFound {
                path: dir.to_path_buf(),
                hint: DATASET_HINT.to_string(),
            });
        }
        let mut movies = read_movies(&file_in(dir, "movies.csv")?)?;
        let positions: HashMap<u32, u32> = movies
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id, i as u32))
            .collect();
        let mut skipped = Skipped::default();
        let links = dir.join("links.csv");
        if links.is_file() {
            skipped.orphan_links = read_links(&links, &positions, &mut movies)?;
        }
        let (ratings, orphan_ratings, duplicate_ratings) =
            read_ratings(&file_in(dir, "ratings.csv")?, &positions)?;
        skipped.orphan_ratings = orphan_ratings;
        skipped.duplicate_ratings = duplicate_ratings;
        let (tags, orphan_tags) = read_tags(&file_in(dir, "tags.csv")?, &positions)?;
        skipped.orphan_tags = orphan_tags;
        for (count, what) in [
            (skipped.orphan_ratings, "ratings.csv rows"),
            (skipped.orphan_tags, "tags.csv rows"),
            (skipped.orphan_links, "links.csv rows"),
        ] {
            if count > 0 {
                tracing::warn!(
                    "skipped {count} {what} whose movieId is not in movies.csv ({})",
                    dir.display()
                );
            }
        }
        Ok(Dataset {
            dir: dir.to_path_buf(),
            movies,
            ratings,
            tags,
            skipped,
            positions,
        })
    }

    /// The position in [`Dataset::movies`] of a movieId.
    pub fn position(&self, movie_id: u32) -> Option<usize> {
        self.positions.get(&movie_id).map(|&p| p as usize)
    }

    /// The tag texts of every movie, in [`Dataset::movies`] order (each in file order).
    pub fn tags_by_movie(&self) -> Vec<Vec<&str>> {
        let mut tags = vec![Vec::new(); self.movies.len()];
        for tag in &self.tags {
            tags[tag.movie as usize].push(tag.text.as_str());
        }
        tags
    }

    /// Adds people from outside the CSVs (the profiles of the online store) as new users,
    /// numbered from one past the largest userId, in the order given; each gets its ratings of
    /// movies the dataset holds (others are dropped). Returns the first new userId and how many
    /// ratings were added and dropped.
    pub fn add_people(&mut self, people: &[Vec<(u32, f32, i64)>]) -> PeopleAdded {
        let first_user = self.ratings.user.iter().max().map_or(1, |&u| u + 1);
        let mut added = PeopleAdded {
            first_user,
            people: 0,
            ratings: 0,
            dropped: 0,
        };
        for (offset, ratings) in people.iter().enumerate() {
            let user = first_user + offset as u32;
            let before = added.ratings;
            for &(movie_id, rating, timestamp) in ratings {
                match self.position(movie_id) {
                    Some(position) if RATING_RANGE.contains(&rating) => {
                        self.ratings.user.push(user);
                        self.ratings.movie.push(position as u32);
                        self.ratings.rating.push(rating);
                        self.ratings.timestamp.push(timestamp);
                        added.ratings += 1;
                    }
                    _ => added.dropped += 1,
                }
            }
            added.people += usize::from(added.ratings > before);
        }
        added
    }

    /// The movie with this movieId.
    pub fn movie(&self, movie_id: u32) -> Result<&Movie> {
        self.position(movie_id)
            .map(|p| &self.movies[p])
            .ok_or(Error::UnknownMovie(movie_id))
    }
}

fn file_in(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::DatasetNotFound {
            path,
            hint: format!(
                "{} is not a complete MovieLens directory. {DATASET_HINT}",
                dir.display()
            ),
        })
    }
}

/// A MovieLens title split into the title proper and its release year: "Heat (1995)" →
/// ("Heat", 1995); a span ("(2006-2007)", "(2016-)") gives its first year; a title without a
/// trailing year stays whole.
pub fn split_year(title: &str) -> (&str, Option<u16>) {
    let trimmed = title.trim();
    let year = trimmed
        .strip_suffix(')')
        .and_then(|inner| inner.rsplit_once('('))
        .and_then(|(before, year)| {
            let first = year.split(['-', '–']).next()?.trim();
            let year = (first.len() == 4).then(|| first.parse().ok()).flatten()?;
            Some((before.trim_end(), year))
        });
    match year {
        Some((before, year)) => (before, Some(year)),
        None => (trimmed, None),
    }
}

/// The release year at the end of a MovieLens title ("Heat (1995)" → 1995).
pub fn year_of(title: &str) -> Option<u16> {
    split_year(title).1
}

/// The mean release year of the movies that have one (0 when none has): the fallback year of
/// features that use it.
pub fn mean_release_year(movies: &[Movie]) -> f64 {
    let (sum, n) = movies
        .iter()
        .filter_map(|m| m.year)
        .fold((0.0, 0usize), |(sum, n), y| (sum + f64::from(y), n + 1));
    sum / n.max(1) as f64
}

/// The genres of a MovieLens `genres` field, without "(no genres listed)".
pub fn genres_of(field: &str) -> Vec<String> {
    field
        .split('|')
        .map(str::trim)
        .filter(|g| !g.is_empty() && *g != NO_GENRES)
        .map(str::to_string)
        .collect()
}

fn read_movies(path: &Path) -> Result<Vec<Movie>> {
    let frame = csv::read_columns(
        path,
        &[
            required("movieId", Kind::Id),
            required("title", Kind::Text),
            optional("genres", Kind::Text),
        ],
    )?;
    let ids = csv::required_values::<UInt32Type>(&frame, "movieId", path)?;
    let titles = csv::texts(&frame, "title", path)?;
    let genres = csv::texts(&frame, "genres", path)?;
    let mut seen: HashMap<u32, usize> = HashMap::with_capacity(ids.len());
    let mut movies = Vec::with_capacity(ids.len());
    for (row, ((id, title), genres)) in ids.into_iter().zip(titles).zip(genres).enumerate() {
        if let Some(first) = seen.insert(id, row) {
            return Err(Error::InvalidRow {
                file: path.to_path_buf(),
                line: csv::line_of(path, row),
                field: "movieId".into(),
                problem: format!(
                    "duplicate movieId {id} (first on line {})",
                    csv::line_of(path, first)
                ),
            });
        }
        let title = title.unwrap_or_default().trim().to_string();
        movies.push(Movie {
            id,
            year: year_of(&title),
            title,
            genres: genres_of(genres.as_deref().unwrap_or_default()),
            imdb_id: None,
            tmdb_id: None,
        });
    }
    Ok(movies)
}

/// Reads links.csv into the movies; returns the number of orphan rows.
fn read_links(path: &Path, positions: &HashMap<u32, u32>, movies: &mut [Movie]) -> Result<usize> {
    let frame = csv::read_columns(
        path,
        &[
            required("movieId", Kind::Id),
            optional("imdbId", Kind::Text),
            optional("tmdbId", Kind::Id),
        ],
    )?;
    let ids = csv::required_values::<UInt32Type>(&frame, "movieId", path)?;
    let imdb = csv::texts(&frame, "imdbId", path)?;
    let tmdb = csv::optional_values::<UInt32Type>(&frame, "tmdbId", path)?;
    let mut orphans = 0;
    for ((id, imdb), tmdb) in ids.into_iter().zip(imdb).zip(tmdb) {
        match positions.get(&id) {
            Some(&p) => {
                let movie = &mut movies[p as usize];
                movie.imdb_id = imdb.filter(|s| !s.trim().is_empty());
                movie.tmdb_id = tmdb;
            }
            None => orphans += 1,
        }
    }
    Ok(orphans)
}

/// Reads ratings.csv; returns the ratings of known movies, the number of orphan rows and the
/// number of superseded duplicates.
fn read_ratings(path: &Path, positions: &HashMap<u32, u32>) -> Result<(Ratings, usize, usize)> {
    let frame = csv::read_columns(
        path,
        &[
            required("userId", Kind::Id),
            required("movieId", Kind::Id),
            required("rating", Kind::Number),
            required("timestamp", Kind::Timestamp),
        ],
    )?;
    let ratings = csv::required_values::<Float64Type>(&frame, "rating", path)?;
    if let Some(row) = ratings
        .iter()
        .position(|&r| !RATING_RANGE.contains(&(r as f32)))
    {
        return Err(Error::InvalidRow {
            file: path.to_path_buf(),
            line: csv::line_of(path, row),
            field: "rating".into(),
            problem: format!(
                "rating {} is outside {}..={}",
                ratings[row],
                RATING_RANGE.start(),
                RATING_RANGE.end()
            ),
        });
    }
    let movie_ids = csv::required_values::<UInt32Type>(&frame, "movieId", path)?;
    let mut keep: Vec<Option<u32>> = movie_ids
        .iter()
        .map(|id| positions.get(id).copied())
        .collect();
    drop(movie_ids);
    let orphans = keep.iter().filter(|p| p.is_none()).count();
    let users = csv::required_values::<UInt32Type>(&frame, "userId", path)?;
    let timestamps = csv::required_values::<Int64Type>(&frame, "timestamp", path)?;
    let duplicates = drop_superseded(&users, &timestamps, &mut keep);
    if duplicates > 0 {
        tracing::warn!(
            "{}: {duplicates} ratings of a (userId, movieId) pair rated again later were \
             skipped; the latest rating of each pair is kept",
            path.display()
        );
    }
    let out = Ratings {
        user: kept(users, &keep),
        rating: kept(ratings.into_iter().map(|r| r as f32).collect(), &keep),
        timestamp: kept(timestamps, &keep),
        movie: keep.iter().flatten().copied().collect(),
    };
    Ok((out, orphans, duplicates))
}

/// Unmarks every kept rating of a (user, movie) pair but its latest (by timestamp; the later
/// row on a tie), so that a pair has one rating and split files name rows unambiguously.
/// Returns how many were unmarked.
fn drop_superseded(users: &[u32], timestamps: &[i64], keep: &mut [Option<u32>]) -> usize {
    let mut latest: HashMap<(u32, u32), usize> = HashMap::new();
    let mut dropped = 0;
    for row in 0..keep.len() {
        let Some(movie) = keep[row] else { continue };
        match latest.entry((users[row], movie)) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(row);
            }
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let previous = *e.get();
                let superseded = if timestamps[row] >= timestamps[previous] {
                    e.insert(row);
                    previous
                } else {
                    row
                };
                keep[superseded] = None;
                dropped += 1;
            }
        }
    }
    dropped
}

/// The values whose row references a known movie.
fn kept<T>(values: Vec<T>, keep: &[Option<u32>]) -> Vec<T> {
    values
        .into_iter()
        .zip(keep)
        .filter_map(|(v, k)| k.map(|_| v))
        .collect()
}

/// Reads tags.csv; returns the tags of known movies and the number of orphan rows.
fn read_tags(path: &Path, positions: &HashMap<u32, u32>) -> Result<(Vec<Tag>, usize)> {
    let frame = csv::read_columns(
        path,
        &[
            required("userId", Kind::Id),
            required("movieId", Kind::Id),
            required("tag", Kind::Text),
            required("timestamp", Kind::Timestamp),
        ],
    )?;
    let users = csv::required_values::<UInt32Type>(&frame, "userId", path)?;
    let movie_ids = csv::required_values::<UInt32Type>(&frame, "movieId", path)?;
    let texts = csv::texts(&frame, "tag", path)?;
    let timestamps = csv::required_values::<Int64Type>(&frame, "timestamp", path)?;
    let mut orphans = 0;
    let mut tags = Vec::with_capacity(users.len());
    for (((user, movie_id), text), timestamp) in
        users.into_iter().zip(movie_ids).zip(texts).zip(timestamps)
    {
        match positions.get(&movie_id) {
            Some(&movie) => tags.push(Tag {
                user,
                movie,
                text: text.unwrap_or_default(),
                timestamp,
            }),
            None => orphans += 1,
        }
    }
    Ok((tags, orphans))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_years_from_titles() {
        assert_eq!(year_of("Toy Story (1995)"), Some(1995));
        assert_eq!(year_of("Babylon 5 "), None);
        assert_eq!(year_of("Stranger Things (2016-)"), Some(2016));
        assert_eq!(year_of("Big Bang Theory (2006–2007)"), Some(2006));
        assert_eq!(year_of("Movie (Director's Cut)"), None);
        assert_eq!(split_year("Toy Story (1995)"), ("Toy Story", Some(1995)));
        assert_eq!(split_year(" Heat (x) "), ("Heat (x)", None));
        assert_eq!(
            split_year("Seven (a.k.a. Se7en) (1995)"),
            ("Seven (a.k.a. Se7en)", Some(1995))
        );
    }

    #[test]
    fn parses_genres() {
        assert_eq!(genres_of("Action|Sci-Fi"), vec!["Action", "Sci-Fi"]);
        assert!(genres_of("(no genres listed)").is_empty());
        assert!(genres_of("").is_empty());
    }
}
