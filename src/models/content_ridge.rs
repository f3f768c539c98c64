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
        // The rows of one movie differ only in the user's feature, so the normal equations
        // are summed per movie (five sums of its ratings) and a solver iteration costs
        // O(movies · terms) instead of O(ratings · terms): on 10M ratings the row-wise
        // iterations were minutes of a single core.
        let dim = model.tfidf.vocabulary.len() + NUMERIC_FEATURES.len();
        let mut sums = vec![[0f64; 5]; dataset.movies.len()];
        for ((&u, &m), &r) in train.user.iter().zip(&train.movie).zip(&train.rating) {
            let user_mean = model.user_mean.get(&u).copied().unwrap_or(global_mean);
            let s = model.scales[3].apply(user_mean);
            let y = f64::from(r);
            let sum = &mut sums[m as usize];
            for (total, value) in sum.iter_mut().zip([1.0, s, s * s, y, s * y]) {
                *total += value;
            }
        }
        let mut movies = Vec::new();
        for (m, sum) in sums.into_iter().enumerate() {
            if sum[0] > 0.0 {
                let mut part = Vec::new();
                model.features_with_mean(global_mean, m as u32, &mut part);
                // The last entry is the user's feature, which `sum` carries.
                part.pop();
                movies.push((part, sum));
            }
        }
        let problem = RatingsByMovie {
            movies,
            user_column: dim - 1,
            dim,
        };
        let (theta, iterations) = solve_ridge(&problem, dim, alpha);
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

/// The parts of a least-squares problem's normal equations, over `dim` features and an
/// intercept (index `dim`): XᵀX·v, the diagonal of XᵀX and Xᵀy.
trait NormalEquations {
    /// XᵀX·v into `out` (zero on entry).
    fn gram_times(&self, v: &[f64], out: &mut [f64]);
    /// The diagonal of XᵀX.
    fn gram_diagonal(&self) -> Vec<f64>;
    /// Xᵀy.
    fn moments(&self) -> Vec<f64>;
}

/// One movie's features but the user's, and the five sums over its ratings.
type MovieSums = (Vec<(u32, f64)>, [f64; 5]);

/// Ratings grouped by movie: each movie's features but the user's (`part`) and five sums over
/// its ratings, `[count, Σs, Σs², Σy, Σs·y]` with `s` the user's feature (column
/// `user_column`). A rating's row is `part + s·e_user + e_intercept`, so every product over
/// the rows is a product over movies.
struct RatingsByMovie {
    movies: Vec<MovieSums>,
    user_column: usize,
    dim: usize,
}

impl NormalEquations for RatingsByMovie {
    fn gram_times(&self, v: &[f64], out: &mut [f64]) {
        let w = v[self.user_column];
        for (part, [count, s1, s2, _, _]) in &self.movies {
            // Σ_r xv_r and Σ_r s_r·xv_r with xv_r = a + s_r·w.
            let a = v[self.dim] + part.iter().map(|&(i, x)| x * v[i as usize]).sum::<f64>();
            let total = count * a + w * s1;
            for &(i, x) in part {
                out[i as usize] += x * total;
            }
            out[self.user_column] += a * s1 + w * s2;
            out[self.dim] += total;
        }
    }

    fn gram_diagonal(&self) -> Vec<f64> {
        let mut diagonal = vec![0f64; self.dim + 1];
        for (part, [count, _, s2, _, _]) in &self.movies {
            for &(i, x) in part {
                diagonal[i as usize] += count * x * x;
            }
            diagonal[self.user_column] += s2;
            diagonal[self.dim] += count;
        }
        diagonal
    }

    fn moments(&self) -> Vec<f64> {
        let mut b = vec![0f64; self.dim + 1];
        for (part, [_, _, _, y, sy]) in &self.movies {
            for &(i, x) in part {
                b[i as usize] += x * y;
            }
            b[self.user_column] += sy;
            b[self.dim] += y;
        }
        b
    }
}

/// Solves `(XᵀX + alpha·D) θ = Xᵀy` for θ = [w; b] (D leaves the intercept unpenalised) by
/// Jacobi-preconditioned conjugate gradients. Returns θ and the iterations used.
fn solve_ridge(problem: &impl NormalEquations, dim: usize, alpha: f64) -> (Vec<f64>, usize) {
    let n = dim + 1;
    let apply = |v: &[f64]| -> Vec<f64> {
        let mut out = vec![0f64; n];
        problem.gram_times(v, &mut out);
        for (o, vi) in out.iter_mut().zip(v).take(dim) {
            *o += alpha * vi;
        }
        out
    };
    let mut diagonal = problem.gram_diagonal();
    let b = problem.moments();
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
        let (theta, _) = solve_ridge(&Rows(rows, y), 2, 1e-9);
        assert!(
            (theta[0] - 2.0).abs() < 1e-5
                && (theta[1] + 1.0).abs() < 1e-5
                && (theta[2] - 3.0).abs() < 1e-5,
            "{theta:?}"
        );
        // With alpha = 1 on a single feature x = (1, −1), y = (1, −1): w = Σxy / (Σx² + 1) = 2/3.
        let rows = vec![vec![(0, 1.0)], vec![(0, -1.0)]];
        let (theta, _) = solve_ridge(&Rows(rows, vec![1.0, -1.0]), 1, 1.0);
        assert!(
            (theta[0] - 2.0 / 3.0).abs() < 1e-9 && theta[1].abs() < 1e-9,
            "{theta:?}"
        );
    }

    /// The definition: one sparse row per rating (the intercept column implicit) and targets.
    struct Rows(Vec<Vec<(u32, f64)>>, Vec<f64>);

    impl NormalEquations for Rows {
        fn gram_times(&self, v: &[f64], out: &mut [f64]) {
            let dim = out.len() - 1;
            for row in &self.0 {
                let xv = v[dim] + row.iter().map(|&(i, x)| x * v[i as usize]).sum::<f64>();
                for &(i, x) in row {
                    out[i as usize] += x * xv;
                }
                out[dim] += xv;
            }
        }

        fn gram_diagonal(&self) -> Vec<f64> {
            let dim = self.dimension();
            let mut d = vec![0f64; dim + 1];
            for row in &self.0 {
                for &(i, x) in row {
                    d[i as usize] += x * x;
                }
                d[dim] += 1.0;
            }
            d
        }

        fn moments(&self) -> Vec<f64> {
            let dim = self.dimension();
            let mut b = vec![0f64; dim + 1];
            for (row, y) in self.0.iter().zip(&self.1) {
                for &(i, x) in row {
                    b[i as usize] += x * y;
                }
                b[dim] += y;
            }
            b
        }
    }

    impl Rows {
        fn dimension(&self) -> usize {
            self.0
                .iter()
                .flatten()
                .map(|&(i, _)| i as usize + 1)
                .max()
                .unwrap_or(0)
        }
    }

    #[test]
    fn sums_by_movie_give_the_row_wise_normal_equations() {
        // Three movies' parts (columns 0..3), user feature in column 3, intercept 4.
        let parts = [
            vec![(0, 0.5), (2, 1.5)],
            vec![(1, 2.0)],
            vec![(0, -1.0), (1, 0.25), (2, 0.75)],
        ];
        let ratings = [
            (0, 0.3, 4.0),
            (0, -1.2, 3.5),
            (1, 0.7, 2.0),
            (2, 0.0, 5.0),
            (2, 2.0, 1.0),
        ];
        let mut sums = [[0f64; 5]; 3];
        let mut rows = Rows(Vec::new(), Vec::new());
        for &(m, s, y) in &ratings {
            for (t, v) in sums[m].iter_mut().zip([1.0, s, s * s, y, s * y]) {
                *t += v;
            }
            let mut row = parts[m].clone();
            row.push((3, s));
            rows.0.push(row);
            rows.1.push(y);
        }
        let by_movie = RatingsByMovie {
            movies: parts.iter().cloned().zip(sums).collect(),
            user_column: 3,
            dim: 4,
        };
        let v = [0.3, -0.7, 1.1, 0.4, 2.0];
        let (mut a, mut b) = (vec![0.0; 5], vec![0.0; 5]);
        by_movie.gram_times(&v, &mut a);
        rows.gram_times(&v, &mut b);
        for (pair, what) in [
            ((a, b), "XᵀX·v"),
            ((by_movie.gram_diagonal(), rows.gram_diagonal()), "diagonal"),
            ((by_movie.moments(), rows.moments()), "Xᵀy"),
        ] {
            for (x, y) in pair.0.iter().zip(&pair.1) {
                assert!(
                    (x - y).abs() < 1e-12,
                    "{what}: {:?} vs {:?}",
                    pair.0,
                    pair.1
                );
            }
        }
    }
}
