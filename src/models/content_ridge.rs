//! ContentRidge (notebook 003): ridge regression of the rating on movie content and numbers.
//!
//! Features of a (user, movie) pair:
//! - TF-IDF of the movie's genres and tags (sklearn's defaults: tokens of ≥ 2 word characters,
//!   lowercased, smooth idf `ln((1+n)/(1+df)) + 1`, rows L2-normalised), keeping terms found in
//!   at least [`MIN_DF`] movies, at most [`MAX_TERMS`] of them (the most frequent);
//! - the movie's release year, log(1 + rating count) and mean rating, and the user's mean
//!   rating, all from the training ratings (unknown → the training mean; no year → the mean
//!   year), standardised on the training rows.
//!
//! The weights minimise `‖Xw + b − y‖² + alpha·‖w‖²` (the intercept is not penalised), solved
//! by conjugate gradients on the normal equations with a Jacobi preconditioner: X stays sparse.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{history_stats, Interactions, RatingModel};
use crate::data::{mean_release_year, Dataset, Movie};

/// Ridge penalty of notebook 003.
pub const DEFAULT_ALPHA: f64 = 1.0;
/// Terms must occur in this many movies.
pub const MIN_DF: usize = 2;
/// Largest vocabulary kept.
pub const MAX_TERMS: usize = 2000;
/// Names of the numeric features, after the TF-IDF terms.
pub const NUMERIC_FEATURES: [&str; 4] = [
    "year",
    "log_rating_count",
    "movie_mean_rating",
    "user_mean_rating",
];

/// Lowercased tokens of at least two word characters (sklearn's default token pattern).
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|t| t.chars().count() >= 2)
        .map(str::to_lowercase)
}

/// Sparse TF-IDF rows of every movie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tfidf {
    vocabulary: Vec<String>,
    rows: Vec<Vec<(u32, f32)>>,
}

impl Tfidf {
    fn fit(texts: &[String]) -> Tfidf {
        let counts: Vec<HashMap<String, u32>> = texts
            .iter()
            .map(|text| {
                let mut c = HashMap::new();
                for token in tokens(text) {
                    *c.entry(token).or_insert(0) += 1;
                }
                c
            })
            .collect();
        let mut df: HashMap<&str, usize> = HashMap::new();
        for c in &counts {
            for term in c.keys() {
                *df.entry(term.as_str()).or_insert(0) += 1;
            }
        }
        let mut terms: Vec<(&str, usize)> = df.into_iter().filter(|&(_, d)| d >= MIN_DF).collect();
        terms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        terms.truncate(MAX_TERMS);
        terms.sort_by(|a, b| a.0.cmp(b.0));
        let n = texts.len() as f64;
        let index: HashMap<&str, (u32, f32)> = terms
            .iter()
            .enumerate()
            .map(|(i, &(t, d))| {
                (
                    t,
                    (i as u32, (((1.0 + n) / (1.0 + d as f64)).ln() + 1.0) as f32),
                )
            })
            .collect();
        let rows = counts
            .iter()
            .map(|c| {
                let mut row: Vec<(u32, f32)> = c
                    .iter()
                    .filter_map(|(t, &tf)| {
                        index.get(t.as_str()).map(|&(i, idf)| (i, tf as f32 * idf))
                    })
                    .collect();
                row.sort_unstable_by_key(|e| e.0);
                let norm = row.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt();
                if norm > 0.0 {
                    row.iter_mut().for_each(|e| e.1 /= norm);
                }
                row
            })
            .collect();
        Tfidf {
            vocabulary: terms.into_iter().map(|(t, _)| t.to_string()).collect(),
            rows,
        }
    }
}

/// The text ContentRidge reads for a movie: its genres and its tags.
fn content_text(movie: &Movie, tags: &[&str]) -> String {
    let mut text = movie.genres.join(" ");
    for tag in tags {
        text.push(' ');
        text.push_str(tag);
    }
    text
}

/// Mean and standard deviation used to standardise one numeric feature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Scale {
    mean: f64,
    std: f64,
}

impl Scale {
    fn of(values: impl Iterator<Item = f64> + Clone) -> Scale {
        let n = values.clone().count().max(1) as f64;
        let mean = values.clone().sum::<f64>() / n;
        let var = values.map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Scale {
            mean,
            std: if var > 0.0 { var.sqrt() } else { 1.0 },
        }
    }

    fn apply(&self, v: f64) -> f64 {
        (v - self.mean) / self.std
    }
}

/// A fitted ContentRidge model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentRidge {
    tfidf: Tfidf,
    /// Raw numeric movie features: year, log1p(count), mean rating.
    movie_numeric: Vec<[f64; 3]>,
    user_mean: HashMap<u32, f64>,
    global_mean: f64,
    scales: [Scale; 4],
    /// Weights of the terms, then of the numeric features.
    weights: Vec<f64>,
    intercept: f64,
    /// Conjugate-gradient iterations used.
    pub iterations: usize,
}

impl ContentRidge {
    /// Fits on `train` with the movies and tags of `dataset`.
    pub fn fit(train: &Interactions, dataset: &Dataset, alpha: f64) -> ContentRidge {
        let tags = dataset.tags_by_movie();
        let texts: Vec<String> = dataset
            .movies
            .iter()
            .zip(&tags)
            .map(|(m, t)| content_text(m, t))
            .collect();
        let tfidf = Tfidf::fit(&texts);
        let global_mean = train.mean();

        let mean_year = mean_release_year(&dataset.movies);
        let movie_numeric: Vec<[f64; 3]> = dataset
            .movies
            .iter()
            .zip(train.movie_stats(dataset.movies.len()))
            .map(|(m, s)| {
                [
                    m.year.map_or(mean_year, f64::from),
                    f64::from(s.count).ln_1p(),
                    s.mean_or(global_mean),
                ]
            })
            .collect();
        let user_mean: HashMap<u32, f64> = train
            .user_stats()
            .into_iter()
            .map(|(u, s)| (u, s.mean))
            .collect();

        let raw = |i: usize, f: usize| -> f64 {
            if f < 3 {
                movie_numeric[train.movie[i] as usize][f]
            } else {
                user_mean
                    .get(&train.user[i])
                    .copied()
                    .unwrap_or(global_mean)
            }
        };
        let scales = [0, 1, 2, 3].map(|f| Scale::of((0..train.len()).map(move |i| raw(i, f))));
        let mut model = ContentRidge {
            tfidf,
            movie_numeric,
            user_mean,
            global_mean,
            scales,
            weights: Vec::new(),
            intercept: 0.0,
            iterations: 0,
        };
        // Rows are rebuilt on the fly from the per-movie TF-IDF rows: materialising a sparse
        // row per rating would cost ~1 GB on 10M ratings.
        let targets: Vec<f64> = train.rating.iter().map(|&r| f64::from(r)).collect();
        let dim = model.tfidf.vocabulary.len() + NUMERIC_FEATURES.len();
        let row = |i: usize, buffer: &mut Vec<(u32, f64)>| {
            model.features_into(train.user[i], train.movie[i], buffer);
        };
        let (theta, iterations) = solve_ridge(train.len(), &row, &targets, dim, alpha);
        model.intercept = theta[dim];
        model.weights = theta[..dim].to_vec();
        model.iterations = iterations;
        model
    }

    /// The sparse feature vector of a pair (without the intercept), into `row`.
    fn features_into(&self, user: u32, movie: u32, row: &mut Vec<(u32, f64)>) {
        let user_mean = self
            .user_mean
            .get(&user)
            .copied()
            .unwrap_or(self.global_mean);
        self.features_with_mean(user_mean, movie, row);
    }

    /// The sparse feature vector of a movie for a user whose mean rating is `user_mean`.
    fn features_with_mean(&self, user_mean: f64, movie: u32, row: &mut Vec<(u32, f64)>) {
        row.clear();
        let terms = self.tfidf.vocabulary.len() as u32;
        if let Some(r) = self.tfidf.rows.get(movie as usize) {
            row.extend(r.iter().map(|&(i, v)| (i, f64::from(v))));
        }
        let numeric = self.movie_numeric.get(movie as usize).copied().unwrap_or([
            self.scales[0].mean,
            0.0,
            self.global_mean,
        ]);
        for (f, value) in [numeric[0], numeric[1], numeric[2], user_mean]
            .into_iter()
            .enumerate()
        {
            row.push((terms + f as u32, self.scales[f].apply(value)));
        }
    }

    /// Feature names with their weights, terms as `term:WORD`.
    pub fn coefficients(&self) -> Vec<(String, f64)> {
        self.tfidf
            .vocabulary
            .iter()
            .map(|t| format!("term:{t}"))
            .chain(NUMERIC_FEATURES.iter().map(|n| n.to_string()))
            .zip(self.weights.iter().copied())
            .collect()
    }
}

/// Solves `(XᵀX + alpha·D) θ = Xᵀy` for θ = [w; b] (D leaves the intercept unpenalised) by
/// Jacobi-preconditioned conjugate gradients. Returns θ and the iterations used.
/// Writes row `i` of a sparse matrix into a buffer of (column, value).
type RowWriter<'a> = &'a dyn Fn(usize, &mut Vec<(u32, f64)>);

/// Row `i` of X is written by `row(i, buffer)`.
fn solve_ridge(
    n_rows: usize,
    row: RowWriter<'_>,
    y: &[f64],
    dim: usize,
    alpha: f64,
) -> (Vec<f64>, usize) {
    let n = dim + 1;
    let mut buffer = Vec::new();
    // A·v = Xᵀ(X v) + alpha·D v, with X's last column all ones.
    let mut apply = |v: &[f64]| -> Vec<f64> {
        let mut out = vec![0f64; n];
        for r in 0..n_rows {
            row(r, &mut buffer);
            let xv = v[dim] + buffer.iter().map(|&(i, x)| x * v[i as usize]).sum::<f64>();
            for &(i, x) in &buffer {
                out[i as usize] += x * xv;
            }
            out[dim] += xv;
        }
        for (o, vi) in out.iter_mut().zip(v).take(dim) {
            *o += alpha * vi;
        }
        out
    };
    let mut diagonal = vec![0f64; n];
    let mut b = vec![0f64; n];
    let mut buffer = Vec::new();
    for (r, &target) in y.iter().enumerate().take(n_rows) {
        row(r, &mut buffer);
        for &(i, x) in &buffer {
            diagonal[i as usize] += x * x;
            b[i as usize] += x * target;
        }
        diagonal[dim] += 1.0;
        b[dim] += target;
    }
    for d in diagonal.iter_mut().take(dim) {
        *d += alpha;
    }
    let precondition = |r: &[f64]| -> Vec<f64> {
        r.iter()
            .zip(&diagonal)
            .map(|(ri, d)| if *d > 0.0 { ri / d } else { *ri })
            .collect()
    };
    let dotp = |a: &[f64], c: &[f64]| a.iter().zip(c).map(|(x, z)| x * z).sum::<f64>();
    let mut theta = vec![0f64; n];
    let mut r = b.clone();
    let mut z = precondition(&r);
    let mut p = z.clone();
    let mut rz = dotp(&r, &z);
    let b_norm = dotp(&b, &b).sqrt().max(f64::MIN_POSITIVE);
    let max_iterations = 10 * n.max(100);
    for iteration in 0..max_iterations {
        if dotp(&r, &r).sqrt() / b_norm < 1e-8 {
            return (theta, iteration);
        }
        let ap = apply(&p);
        let step = rz / dotp(&p, &ap);
        for i in 0..n {
            theta[i] += step * p[i];
            r[i] -= step * ap[i];
        }
        z = precondition(&r);
        let rz_next = dotp(&r, &z);
        let beta = rz_next / rz;
        rz = rz_next;
        for i in 0..n {
            p[i] = z[i] + beta * p[i];
        }
    }
    (theta, max_iterations)
}

impl RatingModel for ContentRidge {
    const NAME: &'static str = "ContentRidge";

    fn predict(&self, user: u32, movie: u32) -> f64 {
        let mut row = Vec::new();
        self.features_into(user, movie, &mut row);
        self.linear(&row)
    }

    /// The history's mean rating replaces the user's.
    fn predict_history(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f64> {
        let user_mean = history_stats(history).mean_or(self.global_mean);
        let mut row = Vec::new();
        movies
            .iter()
            .map(|&m| {
                self.features_with_mean(user_mean, m, &mut row);
                self.linear(&row)
            })
            .collect()
    }
}

impl ContentRidge {
    /// The intercept plus the weighted sparse row.
    fn linear(&self, row: &[(u32, f64)]) -> f64 {
        self.intercept
            + row
                .iter()
                .map(|&(i, v)| self.weights[i as usize] * v)
                .sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenises_like_sklearn() {
        let t: Vec<String> = tokens("Sci-Fi, a Dark_Comedy! 2001 Ü").collect();
        assert_eq!(t, vec!["sci", "fi", "dark_comedy", "2001"]);
    }

    #[test]
    fn tfidf_by_hand() {
        let texts = vec![
            "war war drama".to_string(),
            "drama".to_string(),
            "war".to_string(),
            "solo".to_string(),
        ];
        let tfidf = Tfidf::fit(&texts);
        // "solo" occurs in one movie only (< MIN_DF)
        assert_eq!(tfidf.vocabulary, vec!["drama", "war"]);
        // idf = ln(5/3) + 1 for both (df 2 of 4); row 0 = (1, 2)·idf, normalised
        let norm = 5f32.sqrt();
        assert!((tfidf.rows[0][0].1 - 1.0 / norm).abs() < 1e-6);
        assert!((tfidf.rows[0][1].1 - 2.0 / norm).abs() < 1e-6);
        assert!(tfidf.rows[3].is_empty());
    }

    #[test]
    fn ridge_solves_a_known_problem() {
        // y = 2·x0 − 1·x1 + 3 exactly; alpha tiny → the solution is recovered.
        let rows: Vec<Vec<(u32, f64)>> = vec![
            vec![(0, 1.0), (1, 0.0)],
            vec![(0, 0.0), (1, 1.0)],
            vec![(0, 1.0), (1, 1.0)],
            vec![(0, 2.0), (1, -1.0)],
        ];
        let y: Vec<f64> = rows.iter().map(|r| 2.0 * r[0].1 - r[1].1 + 3.0).collect();
        let fill = |rows: Vec<Vec<(u32, f64)>>| {
            move |i: usize, b: &mut Vec<(u32, f64)>| {
                b.clear();
                b.extend_from_slice(&rows[i]);
            }
        };
        let (theta, _) = solve_ridge(4, &fill(rows), &y, 2, 1e-9);
        assert!(
            (theta[0] - 2.0).abs() < 1e-5
                && (theta[1] + 1.0).abs() < 1e-5
                && (theta[2] - 3.0).abs() < 1e-5,
            "{theta:?}"
        );
        // With alpha = 1 on a single feature x = (1, −1), y = (1, −1): w = Σxy / (Σx² + 1) = 2/3.
        let rows = vec![vec![(0, 1.0)], vec![(0, -1.0)]];
        let (theta, _) = solve_ridge(2, &fill(rows), &[1.0, -1.0], 1, 1.0);
        assert!(
            (theta[0] - 2.0 / 3.0).abs() < 1e-9 && theta[1].abs() < 1e-9,
            "{theta:?}"
        );
    }
}
