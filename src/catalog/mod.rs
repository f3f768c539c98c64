//! The catalogue: every movie of an index in vector order, with its rating statistics and IMDB
//! weighted rating. Sits above nearest-neighbour search and below the store and the models.

mod popularity;
mod stats;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use popularity::{popularity_params, quantile, weighted_rating, PopularityParams};
pub use stats::{history_stats, movie_stats, user_stats, RatingStats};

use crate::data::{Dataset, Movie};

/// What the index knows of one movie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredEntry")]
pub struct CatalogEntry {
    /// The movie.
    #[serde(flatten)]
    pub movie: Movie,
    /// Number of ratings.
    pub rating_count: u32,
    /// Mean rating, absent when unrated.
    pub mean_rating: Option<f32>,
    /// IMDB weighted rating (C for unrated movies).
    pub weighted_rating: f32,
    /// The text that was embedded for it (see [`crate::documents`]).
    pub document: String,
}

/// A [`CatalogEntry`] as the catalogue file stores it: the movie's fields beside the entry's.
/// Why not `#[serde(flatten)]` on the way in too: serde buffers a flattened struct's fields
/// into an untyped map first, which made reading ml-latest's 86k-movie catalogue (45 MB)
/// most of a fresh search's time.
#[derive(Deserialize)]
struct StoredEntry {
    id: u32,
    title: String,
    year: Option<u16>,
    genres: Vec<String>,
    #[serde(default)]
    imdb_id: Option<String>,
    #[serde(default)]
    tmdb_id: Option<u32>,
    rating_count: u32,
    mean_rating: Option<f32>,
    weighted_rating: f32,
    document: String,
}

impl From<StoredEntry> for CatalogEntry {
    fn from(stored: StoredEntry) -> CatalogEntry {
        CatalogEntry {
            movie: Movie {
                id: stored.id,
                title: stored.title,
                year: stored.year,
                genres: stored.genres,
                imdb_id: stored.imdb_id,
                tmdb_id: stored.tmdb_id,
            },
            rating_count: stored.rating_count,
            mean_rating: stored.mean_rating,
            weighted_rating: stored.weighted_rating,
            document: stored.document,
        }
    }
}

/// The movies of an index, in vector order, with the popularity parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredCatalog")]
pub struct Catalog {
    /// m and C of the weighted rating.
    pub popularity: PopularityParams,
    /// One entry per vector.
    pub movies: Vec<CatalogEntry>,
    /// movieId → position, derived from `movies`.
    #[serde(skip)]
    positions: HashMap<u32, u32>,
    /// The most ratings any movie has, derived from `movies`.
    #[serde(skip)]
    max_count: u32,
    /// Every genre some movie has, sorted, derived from `movies` (filters check against it on
    /// every request).
    #[serde(skip)]
    genres: Vec<String>,
}

/// What the catalogue file stores (the movieId map is rebuilt on load).
#[derive(Deserialize)]
struct StoredCatalog {
    popularity: PopularityParams,
    movies: Vec<CatalogEntry>,
}

impl From<StoredCatalog> for Catalog {
    fn from(stored: StoredCatalog) -> Catalog {
        Catalog::new(stored.popularity, stored.movies)
    }
}

impl Catalog {
    /// The catalogue of `movies` (in vector order).
    pub fn new(popularity: PopularityParams, movies: Vec<CatalogEntry>) -> Catalog {
        let positions = movies
            .iter()
            .enumerate()
            .map(|(p, e)| (e.movie.id, p as u32))
            .collect();
        let max_count = movies.iter().map(|e| e.rating_count).max().unwrap_or(0);
        // A set of borrowed names first: cloning and sorting every movie's genres was a few
        // per cent of opening ml-latest's catalogue.
        let genres: Vec<String> = movies
            .iter()
            .flat_map(|e| e.movie.genres.iter().map(String::as_str))
            .collect::<std::collections::BTreeSet<&str>>()
            .into_iter()
            .map(str::to_string)
            .collect();
        Catalog {
            popularity,
            movies,
            positions,
            max_count,
            genres,
        }
    }

    /// How widely known the movie at `position` is, in [0, 1]: `ln(1 + ratings)` over that of
    /// the most rated movie. Unlike the weighted rating, it tells a famous film from an obscure
    /// one of the same mean (two movies called "Titanic").
    pub fn familiarity(&self, position: usize) -> f32 {
        let count = self.movies.get(position).map_or(0, |e| e.rating_count);
        if self.max_count == 0 {
            return 0.0;
        }
        (f64::from(count).ln_1p() / f64::from(self.max_count).ln_1p()) as f32
    }

    /// Every genre some movie has, sorted.
    pub fn genres(&self) -> &[String] {
        &self.genres
    }

    /// The catalogue position of a MovieLens movieId.
    pub fn position(&self, movie_id: u32) -> Option<usize> {
        self.positions.get(&movie_id).map(|&p| p as usize)
    }
}

/// The catalogue of a dataset: every movie with its popularity statistics and its document
/// (`documents` in movie order).
pub fn catalog_of(dataset: &Dataset, documents: &[String]) -> Catalog {
    let ratings = &dataset.ratings;
    catalog_with(dataset, &ratings.movie, &ratings.rating, documents)
}

/// The catalogue of a dataset with popularity statistics from the rating rows `rows` only (an
/// evaluation's training part, so that a held-out rating never makes a movie popular).
pub fn catalog_of_rows(dataset: &Dataset, rows: &[usize], documents: &[String]) -> Catalog {
    let ratings = &dataset.ratings;
    let movie: Vec<u32> = rows.iter().map(|&i| ratings.movie[i]).collect();
    let rating: Vec<f32> = rows.iter().map(|&i| ratings.rating[i]).collect();
    catalog_with(dataset, &movie, &rating, documents)
}

/// The catalogue of a dataset's movies with the statistics of the ratings (`movie[i]`,
/// `rating[i]`).
fn catalog_with(dataset: &Dataset, movie: &[u32], rating: &[f32], documents: &[String]) -> Catalog {
    let stats = movie_stats(movie, rating, dataset.movies.len());
    let params = popularity_params(&stats);
    let movies = dataset
        .movies
        .iter()
        .zip(&stats)
        .zip(documents)
        .map(|((movie, s), document)| CatalogEntry {
            movie: movie.clone(),
            document: document.clone(),
            rating_count: s.count,
            mean_rating: (s.count > 0).then_some(s.mean as f32),
            weighted_rating: weighted_rating(f64::from(s.count), s.mean, params) as f32,
        })
        .collect();
    Catalog::new(params, movies)
}

/// A catalogue entry for unit tests: movie `id` with `rating_count` ratings and nothing else.
#[cfg(test)]
pub(crate) fn test_entry(id: u32, rating_count: u32) -> CatalogEntry {
    CatalogEntry {
        movie: Movie {
            id,
            title: format!("Movie {id}"),
            year: None,
            genres: Vec::new(),
            imdb_id: None,
            tmdb_id: None,
        },
        rating_count,
        mean_rating: None,
        weighted_rating: 3.0,
        document: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn familiarity_is_the_log_share_of_the_most_rated() {
        let entry = test_entry;
        let params = PopularityParams { m: 1.0, c: 3.0 };
        let catalog = Catalog::new(params, vec![entry(1, 99), entry(2, 9), entry(3, 0)]);
        assert_eq!(catalog.familiarity(0), 1.0);
        assert!(
            (catalog.familiarity(1) - 0.5).abs() < 1e-6,
            "ln 10 / ln 100"
        );
        assert_eq!(catalog.familiarity(2), 0.0);
        assert_eq!(catalog.familiarity(7), 0.0, "out of the catalogue");
        assert_eq!(Catalog::new(params, vec![entry(1, 0)]).familiarity(0), 0.0);
    }
}
