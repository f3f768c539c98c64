//! A synthetic MovieLens directory in the shape of ml-latest, for scale benchmarks and tests.
//!
//! ml-latest (33,832,162 ratings by 330,975 users on 86,537 movies, 2,328,315 tag applications)
//! is not shipped here, so [`Shape::ml_latest`] keeps its proportions at any number of ratings:
//! Zipf-like movie popularity, log-normal user activity with a heavy tail, ratings from a
//! latent-factor model rounded to half stars, titles with years and, for some, an alternative
//! title in parentheses, "(no genres listed)" for some, tags on the popular part of the
//! catalogue from a long-tailed vocabulary. Every draw comes from a ChaCha stream seeded by
//! (seed, user or movie), so the files are the same for a seed whatever the thread count.

use std::io::{BufWriter, Write};
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};

/// ml-latest's counts, which [`Shape::ml_latest`] scales.
pub const ML_LATEST_RATINGS: usize = 33_832_162;
/// Users of ml-latest.
pub const ML_LATEST_USERS: usize = 330_975;
/// Movies of ml-latest.
pub const ML_LATEST_MOVIES: usize = 86_537;
/// Tag applications of ml-latest.
pub const ML_LATEST_TAGS: usize = 2_328_315;

/// Share of the catalogue that carries tags (~50k of 86.5k movies).
const TAGGED_SHARE: f64 = 0.58;
/// Share of titles with an alternative title, "Title (Other Title) (1995)".
const ALTERNATIVE_TITLE_SHARE: f64 = 0.12;
/// Share of movies without genres.
const NO_GENRES_SHARE: f64 = 0.07;
/// Share of titles without a year, as some of MovieLens' are.
const NO_YEAR_SHARE: f64 = 0.01;
/// Tag applications per distinct tag, on average (ml-latest: ~16).
const TAG_USES_PER_TAG: usize = 16;
/// The fewest movies of a shape (ml-latest's proportions give 77 at 30k ratings).
pub const MIN_MOVIES: usize = 500;
/// Latent factors of the rating model.
const FACTORS: usize = 8;

const GENRES: [&str; 19] = [
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// Words of titles and tags: English, so the encoder sees text it knows.
const WORDS: [&str; 96] = [
    "night",
    "love",
    "war",
    "city",
    "dark",
    "space",
    "river",
    "king",
    "girl",
    "ghost",
    "summer",
    "blood",
    "dream",
    "house",
    "road",
    "star",
    "winter",
    "secret",
    "island",
    "fire",
    "heart",
    "shadow",
    "storm",
    "moon",
    "silent",
    "lost",
    "last",
    "wild",
    "golden",
    "broken",
    "hidden",
    "red",
    "black",
    "blue",
    "iron",
    "glass",
    "paper",
    "stone",
    "ocean",
    "desert",
    "forest",
    "mountain",
    "train",
    "ship",
    "robot",
    "alien",
    "detective",
    "soldier",
    "doctor",
    "witch",
    "dragon",
    "family",
    "brother",
    "sister",
    "mother",
    "father",
    "child",
    "hunter",
    "killer",
    "thief",
    "angel",
    "devil",
    "empire",
    "kingdom",
    "planet",
    "future",
    "past",
    "memory",
    "revenge",
    "escape",
    "journey",
    "return",
    "legend",
    "story",
    "song",
    "dance",
    "game",
    "money",
    "time",
    "time travel",
    "comedy",
    "drama",
    "funny",
    "twist ending",
    "atmospheric",
    "classic",
    "cult film",
    "dystopia",
    "heist",
    "zombies",
    "musical",
    "satire",
    "romance",
    "violence",
    "based on a book",
    "visually appealing",
];

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Shape {
    /// Ratings wanted (a few may be lost to repeated draws; the summary has the count).
    pub ratings: usize,
    /// Users.
    pub users: usize,
    /// Movies.
    pub movies: usize,
    /// Tag applications.
    pub tags: usize,
    /// Seed of every draw.
    pub seed: u64,
}

impl Shape {
    /// ml-latest's proportions at `ratings` ratings (its own size at 33,832,162), with at
    /// least [`MIN_MOVIES`] movies so that small sets keep a long tail.
    pub fn ml_latest(ratings: usize, seed: u64) -> Shape {
        let scale = ratings as f64 / ML_LATEST_RATINGS as f64;
        let at_least = |n: usize, floor: usize| ((n as f64 * scale).round() as usize).max(floor);
        Shape {
            ratings,
            users: at_least(ML_LATEST_USERS, 20),
            movies: at_least(ML_LATEST_MOVIES, MIN_MOVIES),
            tags: at_least(ML_LATEST_TAGS, 20),
            seed,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The shape asked for.
    pub shape: Shape,
    /// Ratings written.
    pub ratings: usize,
    /// Users with at least one rating.
    pub users: usize,
    /// Movies written.
    pub movies: usize,
    /// Movies with at least one rating.
    pub rated_movies: usize,
    /// Tag applications written.
    pub tags: usize,
    /// Movies with at least one tag.
    pub tagged_movies: usize,
    /// Distinct tag texts.
    pub distinct_tags: usize,
    /// Titles with an alternative title.
    pub alternative_titles: usize,
    /// Ratings of the most rated movie.
    pub most_ratings_of_a_movie: usize,
    /// Median ratings per movie.
    pub median_ratings_of_a_movie: usize,
    /// Ratings of the most active user.
    pub most_ratings_of_a_user: usize,
    /// Median ratings per user.
    pub median_ratings_of_a_user: usize,
}

/// A seeded stream for one part of the data (`stream`) and one row of it.
fn stream(seed: u64, stream: u64, row: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng.set_word_pos(u128::from(row) << 20);
    rng
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Index drawn from a cumulative weight table (the last entry is the total).
fn draw(cumulative: &[f64], rng: &mut impl Rng) -> usize {
    let total = cumulative[cumulative.len() - 1];
    let x = rng.random::<f64>() * total;
    cumulative
        .partition_point(|&c| c <= x)
        .min(cumulative.len() - 1)
}

/// Running sums of `weights`.
fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut total = 0.0;
    weights
        .map(|w| {
            total += w;
            total
        })
        .collect()
}

/// One movie's title (MovieLens style: a leading article moved behind a comma, the year in
/// parentheses, sometimes an alternative title) and its genres.
fn movie_row(seed: u64, movie: usize, id: u32) -> (String, String, bool) {
    let mut rng = stream(seed, 1, movie as u64);
    let word = |rng: &mut ChaCha8Rng| {
        let w = WORDS[rng.random_range(0..WORDS.len())];
        let mut chars = w.chars();
        chars.next().map_or_else(String::new, |c| {
            c.to_uppercase().chain(chars).collect::<String>()
        })
    };
    let n_words = rng.random_range(1..=3);
    let mut name: Vec<String> = (0..n_words).map(|_| word(&mut rng)).collect();
    // Titles repeat at this scale, as remakes do; the id keeps some apart.
    if rng.random_bool(0.3) {
        name.push(format!("{}", id % 100 + 2));
    }
    let mut title = name.join(" ");
    if rng.random_bool(0.25) {
        title.push_str(", The");
    }
    let alternative = rng.random_bool(ALTERNATIVE_TITLE_SHARE);
    if alternative {
        let other: Vec<String> = (0..rng.random_range(1..=3))
            .map(|_| word(&mut rng))
            .collect();
        let prefix = if rng.random_bool(0.3) { "a.k.a. " } else { "" };
        title.push_str(&format!(" ({prefix}{})", other.join(" ")));
    }
    if !rng.random_bool(NO_YEAR_SHARE) {
        title.push_str(&format!(" ({})", rng.random_range(1902..=2023)));
    }
    let genres = if rng.random_bool(NO_GENRES_SHARE) {
        "(no genres listed)".to_string()
    } else {
        let mut picked: Vec<&str> = Vec::new();
        for _ in 0..rng.random_range(1..=3) {
            let g = GENRES[rng.random_range(0..GENRES.len())];
            if !picked.contains(&g) {
                picked.push(g);
            }
        }
        picked.join("|")
    };
    (title, genres, alternative)
}

/// The text of tag `v` of the vocabulary: single words first, then pairs of words.
fn tag_text(v: usize) -> String {
    let n = WORDS.len();
    if v < n {
        WORDS[v].to_string()
    } else {
        let pair = v - n;
        format!("{} {}", WORDS[pair % n], WORDS[(pair / n) % n])
    }
}

/// Writes movies.csv, ratings.csv, tags.csv and links.csv of `shape` into `dir` (created; an
/// existing file of those names is an error, never overwritten). Each file is written beside
/// its name with `.partial` appended and renamed once all four are complete; a failure removes
/// the partial files.
pub fn write(shape: &Shape, dir: &Path) -> Result<Summary> {
    let written = write_partial(shape, dir);
    for name in super::DATASET_FILES {
        let partial = partial_path(&dir.join(name));
        if written.is_ok() {
            std::fs::rename(&partial, dir.join(name)).map_err(|e| Error::io(&partial, e))?;
        } else if partial.exists() {
            // Ours (created with create_new below), so ours to remove.
            let _ = std::fs::remove_file(&partial);
        }
    }
    written
}

/// Where `path` is written before it is complete.
fn partial_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    name.into()
}

/// [`write`] into the `.partial` files.
fn write_partial(shape: &Shape, dir: &Path) -> Result<Summary> {
    if shape.users == 0 || shape.movies == 0 {
        return Err(Error::InvalidArgument {
            name: "shape".into(),
            message: "a synthetic dataset needs at least one user and one movie".into(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for name in super::DATASET_FILES {
        if dir.join(name).exists() || partial_path(&dir.join(name)).exists() {
            return Err(Error::InvalidArgument {
                name: "out".into(),
                message: format!(
                    "{} exists; choose an empty directory",
                    dir.join(name).display()
                ),
            });
        }
    }
    let seed = shape.seed;
    let n_movies = shape.movies;
    // Movie ids with gaps, as MovieLens' (ids reach ~3.3× the count in ml-latest).
    let mut id_rng = stream(seed, 0, 0);
    let mut next = 0u32;
    let ids: Vec<u32> = (0..n_movies)
        .map(|_| {
            next += 1 + u32::from(id_rng.random_bool(0.6)) * id_rng.random_range(1..5);
            next
        })
        .collect();
    let movies: Vec<(String, String, bool)> = (0..n_movies)
        .into_par_iter()
        .map(|m| movie_row(seed, m, ids[m]))
        .collect();

    // Popularity: Zipf-like over a seeded order of the movies, (rank + offset)^-1.8 with the
    // offset a fixed share of the catalogue: at ml-latest's size the most rated movie gets
    // ~91k ratings (ml-latest: ~122k), the median one ~12 and 45 % fewer than 10.
    let mut order: Vec<usize> = (0..n_movies).collect();
    for i in (1..n_movies).rev() {
        order.swap(i, id_rng.random_range(0..=i));
    }
    let offset = (300.0 * n_movies as f64 / ML_LATEST_MOVIES as f64).max(1.0);
    let mut popularity = vec![0f64; n_movies];
    for (rank, &m) in order.iter().enumerate() {
        popularity[m] = 1.0 / (rank as f64 + offset).powf(1.8);
    }
    let popularity_cdf = cumulative(popularity.iter().copied());

    // Activity: log-normal with a heavy tail, scaled to the ratings wanted, at least one
    // rating, at most a third of the catalogue (ml-latest's most active user: ~38 %).
    let activity: Vec<f64> = (0..shape.users)
        .map(|u| (1.35 * normal(&mut stream(seed, 2, u as u64))).exp())
        .collect();
    let cap = (n_movies / 3).max(1);
    let counts_at = |scale: f64| -> Vec<usize> {
        activity
            .iter()
            .map(|a| ((a * scale).round() as usize).clamp(1, cap))
            .collect()
    };
    // The scale whose capped counts sum to the ratings wanted (bisection: the sum grows
    // with the scale).
    let (mut low, mut high) = (0.0, shape.ratings as f64);
    for _ in 0..60 {
        let middle = (low + high) / 2.0;
        if counts_at(middle).iter().sum::<usize>() < shape.ratings {
            low = middle;
        } else {
            high = middle;
        }
    }
    let counts = counts_at(high);

    // Item side of the rating model.
    let items: Vec<(f64, [f64; FACTORS])> = (0..n_movies)
        .into_par_iter()
        .map(|m| {
            let mut rng = stream(seed, 3, m as u64);
            (
                0.45 * normal(&mut rng),
                std::array::from_fn(|_| 0.35 * normal(&mut rng)),
            )
        })
        .collect();

    // Each user's distinct movies and ratings.
    let rows: Vec<Vec<(u32, u8, u32)>> = (0..shape.users)
        .into_par_iter()
        .map(|u| {
            let mut rng = stream(seed, 4, u as u64);
            let bias = 0.45 * normal(&mut rng);
            let taste: [f64; FACTORS] = std::array::from_fn(|_| 0.35 * normal(&mut rng));
            let mut seen = std::collections::HashSet::with_capacity(counts[u] * 2);
            let mut picked = Vec::with_capacity(counts[u]);
            let mut tries = 0;
            while picked.len() < counts[u] && tries < counts[u] * 50 {
                tries += 1;
                let m = draw(&popularity_cdf, &mut rng);
                if seen.insert(m) {
                    picked.push(m);
                }
            }
            let start = rng.random_range(828_000_000u32..1_650_000_000);
            picked
                .into_iter()
                .map(|m| {
                    let (item_bias, factors) = &items[m];
                    let dot: f64 = taste.iter().zip(factors).map(|(a, b)| a * b).sum();
                    let raw = 3.5 + bias + item_bias + dot + 0.7 * normal(&mut rng);
                    // Half stars, stored as twice the rating.
                    let half_stars = (raw * 2.0).round().clamp(1.0, 10.0) as u8;
                    let when = start + rng.random_range(0..40_000_000u32);
                    (m as u32, half_stars, when)
                })
                .collect()
        })
        .collect();

    // ratings.csv
    let path = dir.join("ratings.csv");
    let mut out = BufWriter::with_capacity(1 << 20, create(&path)?);
    let io = |e| Error::io(&path, e);
    writeln!(out, "userId,movieId,rating,timestamp").map_err(io)?;
    let mut ratings_of_movie = vec![0usize; n_movies];
    let mut ratings = 0;
    for (u, row) in rows.iter().enumerate() {
        for &(m, half_stars, when) in row {
            let rating = f32::from(half_stars) / 2.0;
            writeln!(out, "{},{},{rating:.1},{when}", u + 1, ids[m as usize]).map_err(io)?;
            ratings_of_movie[m as usize] += 1;
        }
        ratings += row.len();
    }
    out.flush().map_err(io)?;

    // tags.csv: on the most popular share of the catalogue, by active users, from a
    // Zipf-distributed vocabulary.
    let tagged_count = ((n_movies as f64 * TAGGED_SHARE).ceil() as usize).max(1);
    let tag_movies = &order[..tagged_count];
    let movie_cdf = cumulative(tag_movies.iter().map(|&m| popularity[m]));
    let user_cdf = cumulative(counts.iter().map(|&c| c as f64));
    let vocabulary = (shape.tags / TAG_USES_PER_TAG).max(WORDS.len());
    let tag_cdf = cumulative((0..vocabulary).map(|v| 1.0 / (v as f64 + 2.0)));
    let tags: Vec<(usize, u32, usize, u32)> = (0..shape.tags)
        .into_par_iter()
        .map(|t| {
            let mut rng = stream(seed, 5, t as u64);
            let m = tag_movies[draw(&movie_cdf, &mut rng)];
            let u = draw(&user_cdf, &mut rng);
            (
                u + 1,
                ids[m],
                draw(&tag_cdf, &mut rng),
                rng.random_range(1_135_000_000..1_690_000_000),
            )
        })
        .collect();
    let path = dir.join("tags.csv");
    let mut writer = csv::Writer::from_writer(BufWriter::new(create(&path)?));
    let csv_error = |e: csv::Error| Error::io(&path, std::io::Error::other(e));
    writer
        .write_record(["userId", "movieId", "tag", "timestamp"])
        .map_err(csv_error)?;
    let mut tagged = std::collections::HashSet::new();
    let mut distinct = std::collections::HashSet::new();
    for &(u, id, v, when) in &tags {
        writer
            .write_record([u.to_string(), id.to_string(), tag_text(v), when.to_string()])
            .map_err(csv_error)?;
        tagged.insert(id);
        distinct.insert(v);
    }
    writer.flush().map_err(|e| Error::io(&path, e))?;

    // movies.csv and links.csv
    let path = dir.join("movies.csv");
    let mut writer = csv::Writer::from_writer(BufWriter::new(create(&path)?));
    let csv_error = |e: csv::Error| Error::io(&path, std::io::Error::other(e));
    writer
        .write_record(["movieId", "title", "genres"])
        .map_err(csv_error)?;
    for (id, (title, genres, _)) in ids.iter().zip(&movies) {
        writer
            .write_record([&id.to_string(), title, genres])
            .map_err(csv_error)?;
    }
    writer.flush().map_err(|e| Error::io(&path, e))?;
    let path = dir.join("links.csv");
    let mut out = BufWriter::new(create(&path)?);
    let io = |e| Error::io(&path, e);
    writeln!(out, "movieId,imdbId,tmdbId").map_err(io)?;
    for &id in &ids {
        writeln!(out, "{id},{:07},{}", 1_000_000 + id, 100_000 + id).map_err(io)?;
    }
    out.flush().map_err(io)?;

    let mut per_user: Vec<usize> = rows.iter().map(Vec::len).filter(|&n| n > 0).collect();
    per_user.sort_unstable();
    Ok(Summary {
        shape: *shape,
        ratings,
        users: per_user.len(),
        movies: n_movies,
        rated_movies: ratings_of_movie.iter().filter(|&&n| n > 0).count(),
        tags: tags.len(),
        tagged_movies: tagged.len(),
        distinct_tags: distinct.len(),
        alternative_titles: movies.iter().filter(|m| m.2).count(),
        most_ratings_of_a_movie: ratings_of_movie.iter().copied().max().unwrap_or(0),
        median_ratings_of_a_movie: {
            let mut sorted = ratings_of_movie.clone();
            sorted.sort_unstable();
            sorted[sorted.len() / 2]
        },
        most_ratings_of_a_user: per_user.last().copied().unwrap_or(0),
        median_ratings_of_a_user: per_user.get(per_user.len() / 2).copied().unwrap_or(0),
    })
}

/// Creates `path`'s partial file, refusing to replace a file.
fn create(path: &Path) -> Result<std::fs::File> {
    let partial = partial_path(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .map_err(|e| Error::io(&partial, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_scales_ml_latest() {
        let full = Shape::ml_latest(ML_LATEST_RATINGS, 1);
        assert_eq!(
            (full.users, full.movies, full.tags),
            (ML_LATEST_USERS, ML_LATEST_MOVIES, ML_LATEST_TAGS)
        );
        let tenth = Shape::ml_latest(ML_LATEST_RATINGS / 10, 1);
        assert!((tenth.movies as i64 - 8_654).abs() <= 1, "{tenth:?}");
    }

    #[test]
    fn the_same_seed_writes_the_same_files_and_another_seed_others() {
        let root = tempfile::tempdir().expect("tempdir");
        let shape = Shape::ml_latest(30_000, 3);
        let a = write(&shape, &root.path().join("a")).expect("a");
        let b = write(&shape, &root.path().join("b")).expect("b");
        write(&Shape { seed: 4, ..shape }, &root.path().join("c")).expect("c");
        assert_eq!(a, b);
        for name in super::super::DATASET_FILES {
            let read = |d: &str| std::fs::read(root.path().join(d).join(name)).expect("read");
            assert_eq!(read("a"), read("b"), "{name}");
            if name != "links.csv" {
                assert_ne!(read("a"), read("c"), "{name}");
            }
        }
        assert_eq!(a.ratings, 30_000, "{a:?}");
        // ml-latest's proportions show from about a million ratings (below, the catalogue
        // caps the most active users): skewed users and movies, tags on part of the
        // catalogue, alternative titles, a long tail of tag texts.
        let d = write(&Shape::ml_latest(1_000_000, 3), &root.path().join("d")).expect("d");
        assert_eq!((d.ratings, d.movies), (1_000_000, 2_558), "{d:?}");
        assert!(
            d.most_ratings_of_a_user > 10 * d.median_ratings_of_a_user,
            "{d:?}"
        );
        assert!(d.most_ratings_of_a_movie > d.users / 2, "{d:?}");
        assert!(
            d.median_ratings_of_a_movie < d.ratings / d.movies / 3,
            "{d:?}"
        );
        assert!(
            d.tagged_movies < d.movies && d.tagged_movies > d.movies / 3,
            "{d:?}"
        );
        assert!(d.alternative_titles > d.movies / 20, "{d:?}");
        assert!(d.distinct_tags > 2_000, "{d:?}");
        // Never over a file it did not write.
        assert!(matches!(
            write(&shape, &root.path().join("a")),
            Err(Error::InvalidArgument { .. })
        ));
    }
}
