//! Stage two: reranking retrieved candidates. The popularity blend of notebook 004
//! (`score = alpha·similarity + (1 − alpha)·WR/5`), and the features of the learned stack.

pub mod candidates;
pub mod features;
pub mod fusion;
pub mod personal;
pub mod stack;
pub mod topn;

use serde::{Deserialize, Serialize};

use crate::catalog::CatalogEntry;
use crate::data::Movie;
use crate::error::{Error, Result};

/// One result of `search`, `recommend` and `similar`: every command answers in this shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedMovie {
    /// 1-based rank.
    pub rank: usize,
    /// MovieLens movieId.
    pub movie_id: u32,
    /// Title with year.
    pub title: String,
    /// Release year.
    pub year: Option<u16>,
    /// Genres.
    pub genres: Vec<String>,
    /// Cosine similarity to the query (or to the movie `similar` starts from); null for
    /// `recommend`.
    pub query_similarity: Option<f32>,
    /// The stack's score for the person (a probability); null without a person.
    pub personal_score: Option<f64>,
    /// IMDB weighted rating (0–5).
    pub popularity: f32,
    /// The score results are ranked by.
    pub score: f64,
    /// Where the candidate came from: "semantic", "keyword", "movie", "history" (search);
    /// "ials", "ease", "item_knn", "profile", "popular" (`recommend`).
    pub sources: Vec<&'static str>,
    /// BM25 score of a search result the keyword index found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bm25: Option<f32>,
    /// IMDb page, from links.csv.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imdb_url: Option<String>,
    /// TMDB page, from links.csv.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmdb_url: Option<String>,
}

impl RankedMovie {
    /// The result at `rank` for the catalogue `entry`, with its scores and sources.
    pub fn new(
        rank: usize,
        entry: &CatalogEntry,
        query_similarity: Option<f32>,
        personal_score: Option<f64>,
        score: f64,
        sources: Vec<&'static str>,
    ) -> RankedMovie {
        RankedMovie {
            rank,
            movie_id: entry.movie.id,
            title: entry.movie.title.clone(),
            year: entry.movie.year,
            genres: entry.movie.genres.clone(),
            query_similarity,
            personal_score,
            popularity: entry.weighted_rating,
            score,
            sources,
            bm25: None,
            imdb_url: entry.movie.imdb_url(),
            tmdb_url: entry.movie.tmdb_url(),
        }
    }
}

/// Weight of the query similarity in the blend. Notebook 004 uses 0.7; 0.6 found the named
/// title first more often and ranked descriptions' answers higher on the tuning halves of
/// `tests/queries/` (0.4–0.8 tried; README, Hybrid search).
pub const DEFAULT_ALPHA: f32 = 0.6;

/// The highest rating, which scales WR into [0, 1].
const MAX_RATING: f32 = 5.0;

/// The blended score of a candidate.
pub fn blend(similarity: f32, weighted_rating: f32, alpha: f32) -> f32 {
    alpha * similarity + (1.0 - alpha) * weighted_rating / MAX_RATING
}

/// Checks that a blend weight lies in [0, 1].
pub fn check_alpha(alpha: f32) -> Result<f32> {
    check_weight("--alpha", f64::from(alpha)).map(|_| alpha)
}

/// Checks that the weight given by `flag` lies in [0, 1].
pub fn check_weight(flag: &str, weight: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&weight) {
        Ok(weight)
    } else {
        Err(Error::InvalidArgument {
            name: flag.into(),
            message: format!("{weight} is not within 0..=1"),
        })
    }
}

/// An inclusive range of release years; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct YearRange {
    /// First year included.
    pub from: Option<u16>,
    /// Last year included.
    pub to: Option<u16>,
}

impl YearRange {
    /// Parses `FROM..TO`, `FROM..`, `..TO` or a single `YEAR`.
    pub fn parse(text: &str) -> Result<YearRange> {
        let bad = |why: &str| Error::InvalidArgument {
            name: "--year".into(),
            message: format!("'{text}': {why} (expected FROM..TO, FROM.., ..TO or YEAR)"),
        };
        let year = |s: &str| -> Result<Option<u16>> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<u16>()
                .map(Some)
                .map_err(|_| bad(&format!("'{s}' is not a year")))
        };
        let range = match text.split_once("..") {
            Some((from, to)) => YearRange {
                from: year(from)?,
                to: year(to.trim_start_matches('=')).map_err(|_| bad("bad upper bound"))?,
            },
            None => {
                let y = year(text)?.ok_or_else(|| bad("empty"))?;
                YearRange {
                    from: Some(y),
                    to: Some(y),
                }
            }
        };
        if let (Some(from), Some(to)) = (range.from, range.to) {
            if from > to {
                return Err(bad("the first year is after the last"));
            }
        }
        Ok(range)
    }

    /// Whether a release year lies in the range; movies without a year match only an
    /// unbounded range.
    pub fn contains(&self, year: Option<u16>) -> bool {
        match year {
            Some(y) => self.from.is_none_or(|f| y >= f) && self.to.is_none_or(|t| y <= t),
            None => self.from.is_none() && self.to.is_none(),
        }
    }
}

/// Restrictions on which movies may be returned, applied before the top-k is cut.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    /// The movie must carry every one of these genres (case-insensitive).
    pub genres: Vec<String>,
    /// The movie's release year must lie in this range.
    pub years: Option<YearRange>,
}

impl Filters {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.genres.is_empty() && self.years.is_none()
    }

    /// Whether a movie passes every filter.
    pub fn matches(&self, movie: &Movie) -> bool {
        self.genres
            .iter()
            .all(|g| movie.genres.iter().any(|mg| mg.eq_ignore_ascii_case(g)))
            && self.years.is_none_or(|r| r.contains(movie.year))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blend_matches_notebook_formula() {
        assert!((blend(0.5, 4.0, 0.7) - (0.35 + 0.3 * 0.8)).abs() < 1e-6);
        assert_eq!(blend(0.3, 5.0, 1.0), 0.3);
        assert!(check_alpha(1.5).is_err());
    }

    #[test]
    fn parses_year_ranges() -> Result<()> {
        assert_eq!(
            YearRange::parse("1990..1999")?,
            YearRange {
                from: Some(1990),
                to: Some(1999)
            }
        );
        assert_eq!(YearRange::parse("2000..")?.to, None);
        assert_eq!(YearRange::parse("..1980")?.from, None);
        assert_eq!(
            YearRange::parse("1995")?,
            YearRange {
                from: Some(1995),
                to: Some(1995)
            }
        );
        assert!(YearRange::parse("2000..1990").is_err());
        assert!(YearRange::parse("nineties").is_err());
        let r = YearRange::parse("1990..1999")?;
        assert!(r.contains(Some(1999)) && !r.contains(Some(2000)) && !r.contains(None));
        Ok(())
    }

    #[test]
    fn genre_filter_requires_every_genre() {
        let movie = Movie {
            id: 1,
            title: "Alien (1979)".into(),
            year: Some(1979),
            genres: vec!["Horror".into(), "Sci-Fi".into()],
            imdb_id: None,
            tmdb_id: None,
        };
        let filters = |genres: &[&str]| Filters {
            genres: genres.iter().map(|g| g.to_string()).collect(),
            years: None,
        };
        assert!(filters(&["sci-fi"]).matches(&movie));
        assert!(filters(&["Sci-Fi", "Horror"]).matches(&movie));
        assert!(!filters(&["Sci-Fi", "Comedy"]).matches(&movie));
    }
}
