//! Models that score (user, movie) pairs from ratings: the collaborative and content base
//! models of the seed notebooks, popularity, and the logistic regression the stacks use.
//!
//! Every model is fit on [`Interactions`] (a subset of the ratings) and scores many pairs in one
//! call through [`Scorer`]. Users are MovieLens userIds; movies are catalogue positions.

pub mod bias;
pub mod content_ridge;
pub mod ease;
pub mod embedding_profile;
pub mod gbdt;
pub mod genre;
pub mod ials;
pub mod item_knn;
pub mod logistic;
pub mod matrix_factorization;
pub mod rp3beta;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::data::Ratings;

pub use crate::catalog::{history_stats, movie_stats, user_stats, RatingStats};

pub use bias::Bias;
pub use content_ridge::ContentRidge;
pub use ease::Ease;
pub use genre::GenreContent;
pub use ials::{Ials, IalsConfig};
pub use item_knn::ItemKnn;
pub use matrix_factorization::{MatrixFactorization, MfConfig};
pub use rp3beta::Rp3Beta;

/// Ratings a model is fit on, column-wise.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interactions {
    /// userId of each rating.
    pub user: Vec<u32>,
    /// Catalogue position of each rated movie.
    pub movie: Vec<u32>,
    /// The rating.
    pub rating: Vec<f32>,
}

impl Interactions {
    /// Ratings from (userId, catalogue position, rating) triples.
    pub fn of(triples: &[(u32, u32, f32)]) -> Interactions {
        Interactions {
            user: triples.iter().map(|t| t.0).collect(),
            movie: triples.iter().map(|t| t.1).collect(),
            rating: triples.iter().map(|t| t.2).collect(),
        }
    }

    /// The ratings at `rows`.
    pub fn from_rows(ratings: &Ratings, rows: &[usize]) -> Interactions {
        Interactions {
            user: rows.iter().map(|&r| ratings.user[r]).collect(),
            movie: rows.iter().map(|&r| ratings.movie[r]).collect(),
            rating: rows.iter().map(|&r| ratings.rating[r]).collect(),
        }
    }

    /// The ratings of the users `keep` lets through.
    pub fn of_users(&self, keep: impl Fn(u32) -> bool) -> Interactions {
        let rows: Vec<usize> = (0..self.len()).filter(|&i| keep(self.user[i])).collect();
        Interactions {
            user: rows.iter().map(|&i| self.user[i]).collect(),
            movie: rows.iter().map(|&i| self.movie[i]).collect(),
            rating: rows.iter().map(|&i| self.rating[i]).collect(),
        }
    }

    /// Number of ratings.
    pub fn len(&self) -> usize {
        self.rating.len()
    }

    /// Whether there is no rating.
    pub fn is_empty(&self) -> bool {
        self.rating.is_empty()
    }

    /// Statistics of every movie position `0..n_movies`.
    pub fn movie_stats(&self, n_movies: usize) -> Vec<RatingStats> {
        movie_stats(&self.movie, &self.rating, n_movies)
    }

    /// Statistics of every user.
    pub fn user_stats(&self) -> HashMap<u32, RatingStats> {
        user_stats(&self.user, &self.rating)
    }

    /// The movies each user rated ≥ `min_rating`, in rating order.
    pub fn movies_by_user(&self, min_rating: f32) -> HashMap<u32, Vec<u32>> {
        let mut movies: HashMap<u32, Vec<u32>> = HashMap::new();
        for ((&u, &m), &r) in self.user.iter().zip(&self.movie).zip(&self.rating) {
            if r >= min_rating {
                movies.entry(u).or_default().push(m);
            }
        }
        movies
    }

    /// The mean rating (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        self.rating.iter().map(|&r| f64::from(r)).sum::<f64>() / self.len() as f64
    }
}

/// The logistic function, 1 / (1 + e^−z).
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Solves `a x = b` for a symmetric positive definite `a` (row-major n×n) by Cholesky.
pub(crate) fn solve_spd(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] - sum;
                if d <= 0.0 {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - sum) / l[j * n + j];
            }
        }
    }
    let mut y = vec![0f64; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
    }
    let mut x = vec![0f64; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k * n + i] * x[k]).sum::<f64>()) / l[i * n + i];
    }
    Some(x)
}

/// Dense indices for the userIds of a training set, in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserIndex {
    index: HashMap<u32, u32>,
}

impl UserIndex {
    /// Indexes the users of `users`.
    pub fn new(users: &[u32]) -> UserIndex {
        let mut index = HashMap::new();
        for &user in users {
            let next = index.len() as u32;
            index.entry(user).or_insert(next);
        }
        UserIndex { index }
    }

    /// The dense index of a userId.
    pub fn get(&self, user: u32) -> Option<usize> {
        self.index.get(&user).map(|&i| i as usize)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there is no user.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// The `n` movies with the highest positive score in `scored` ((movie, score)) that `keep`
/// lets through, best first (ties: lower position): a candidate source's proposals.
pub fn top_positive(
    scored: impl IntoIterator<Item = (u32, f32)>,
    n: usize,
    keep: &dyn Fn(u32) -> bool,
) -> Vec<u32> {
    let scored: Vec<(u32, f32)> = scored
        .into_iter()
        .filter(|&(m, s)| s > 0.0 && keep(m))
        .collect();
    crate::ann::top_by(scored, n, |&(m, s)| (f64::from(s), m as usize))
        .into_iter()
        .map(|(m, _)| m)
        .collect()
}

/// The `kept` entries of a model's row ((movie, weight)) with the largest `strength(weight)`,
/// strongest first (ties: lower movie), without spare capacity: the pruned rows of item-kNN,
/// RP3β and EASE, which the serving stack keeps for every movie.
pub(crate) fn strongest(
    row: Vec<(u32, f32)>,
    kept: usize,
    strength: impl Fn(f32) -> f32,
) -> Vec<(u32, f32)> {
    let mut row = crate::ann::top_by(row, kept, |&(m, w)| (f64::from(strength(w)), m as usize));
    row.shrink_to_fit();
    row
}

/// What each training user rated, as implicit feedback: the user side of EASE and RP3β.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RatedMovies {
    users: UserIndex,
    /// Per dense user: the (mapped) movies they rated, sorted, each once.
    rows: Vec<Vec<u32>>,
}

impl RatedMovies {
    /// The movies of `train` by user, each mapped by `map` (those it maps to `None` left out).
    pub fn new(train: &Interactions, map: impl Fn(u32) -> Option<u32>) -> RatedMovies {
        let users = UserIndex::new(&train.user);
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); users.len()];
        for (&u, &m) in train.user.iter().zip(&train.movie) {
            if let (Some(user), Some(item)) = (users.get(u), map(m)) {
                rows[user].push(item);
            }
        }
        for row in &mut rows {
            row.sort_unstable();
            row.dedup();
        }
        RatedMovies { users, rows }
    }

    /// What the userId `user` rated (nothing for an unknown user).
    pub fn of(&self, user: u32) -> &[u32] {
        self.users
            .get(user)
            .map_or(&[][..], |u| self.rows[u].as_slice())
    }

    /// Every user's row, by dense user index.
    pub fn rows(&self) -> &[Vec<u32>] {
        &self.rows
    }
}

/// Adds `weight` (≥ 0) to `sums[j]` and, when `sums[j]` was still zero and `weight` is not,
/// records `j` at `touched[reached]`; returns how many positions are recorded. The sums of a
/// co-rating pass (item-kNN's dot products, RP3β's walk) start at zero and, their weights
/// being positive, never return to it, so each position is recorded once, in the order first
/// reached, and `touched` needs one slot more than `sums` has positions. Written without a branch or a call: the scatter
/// loop is most of a fit at 33.8M ratings, and whether a position is new is unpredictable.
#[inline(always)]
pub(crate) fn reach(
    sums: &mut [f32],
    touched: &mut [u32],
    reached: usize,
    j: u32,
    weight: f32,
) -> usize {
    let sum = &mut sums[j as usize];
    touched[reached] = j;
    let reached = reached + usize::from((*sum == 0.0) & (weight != 0.0));
    *sum += weight;
    reached
}

/// Scores the pairs `(users[i], movies[i])` of a model whose user side is a whole score
/// vector (EASE, RP3β): `scores_of(user)` is computed once for each run of pairs of one user,
/// and `lookup(scores, movie)` reads a movie's score from it.
pub fn score_by_user_runs(
    users: &[u32],
    movies: &[u32],
    scores_of: impl Fn(u32) -> Vec<f32>,
    lookup: impl Fn(&[f32], u32) -> f32,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(movies.len());
    let mut current: Option<(u32, Vec<f32>)> = None;
    for (&user, &movie) in users.iter().zip(movies) {
        if current.as_ref().is_none_or(|(u, _)| *u != user) {
            current = Some((user, scores_of(user)));
        }
        let scores = current.as_ref().map_or(&[][..], |(_, s)| s.as_slice());
        out.push(lookup(scores, movie));
    }
    out
}

/// A fitted model that scores (user, movie) pairs.
pub trait Scorer: Send + Sync {
    /// The model's name in reports ("Bias", "ItemKnn", …).
    fn name(&self) -> &'static str;

    /// The score of one pair; `movie` is a catalogue position.
    fn score_one(&self, user: u32, movie: u32) -> f32;

    /// Scores the pairs `(users[i], movies[i])`. Models that share work between pairs (ItemKnn)
    /// override it.
    fn score(&self, users: &[u32], movies: &[u32]) -> Vec<f32> {
        users
            .iter()
            .zip(movies)
            .map(|(&u, &m)| self.score_one(u, m))
            .collect()
    }

    /// Scores `movies` for a person who is not a training user, known by `history`
    /// ((movie, rating), each movie once): the user's side of the model is computed from the
    /// history by the formulas of `fit` (folded in), the items' side stays as trained.
    fn score_history(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f32>;

    /// Whether scores are rating predictions (so RMSE and MAE mean something).
    fn predicts_ratings(&self) -> bool;
}

/// A model whose score is a rating prediction; it is a [`Scorer`] through a blanket impl.
pub trait RatingModel: Send + Sync {
    /// The model's name in reports.
    const NAME: &'static str;

    /// The predicted rating of `user` for the movie at catalogue position `movie`.
    fn predict(&self, user: u32, movie: u32) -> f64;

    /// The predicted ratings on `movies` of a person known by `history` (see
    /// [`Scorer::score_history`]).
    fn predict_history(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f64>;
}

impl<T: RatingModel> Scorer for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn score_one(&self, user: u32, movie: u32) -> f32 {
        self.predict(user, movie) as f32
    }

    fn score_history(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f32> {
        self.predict_history(history, movies)
            .into_iter()
            .map(|v| v as f32)
            .collect()
    }

    fn predicts_ratings(&self) -> bool {
        true
    }
}

/// The mean of several models' scores, pair by pair (the seeds' SimpleAverage).
pub fn average_scores(scores: &[&[f32]]) -> Vec<f32> {
    let n = scores.first().map_or(0, |s| s.len());
    (0..n)
        .map(|i| scores.iter().map(|s| s[i]).sum::<f32>() / scores.len() as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaching_records_each_position_once_in_first_order() {
        let (mut sums, mut touched) = (vec![0f32; 4], vec![u32::MAX; 5]);
        let mut reached = 0;
        for (j, weight) in [(2, 1.5), (0, 0.0), (2, 0.5), (3, 1.0), (0, 2.0), (3, 0.0)] {
            reached = reach(&mut sums, &mut touched, reached, j, weight);
        }
        assert_eq!(
            &touched[..reached],
            &[2, 3, 0],
            "a zero weight records nothing"
        );
        assert_eq!(sums, vec![2.0, 0.0, 2.0, 1.0]);
        // Every position reached: the spare slot keeps the last write in bounds.
        let (mut sums, mut touched) = (vec![0f32; 3], vec![0u32; 4]);
        let reached = (0..3).fold(0, |r, j| reach(&mut sums, &mut touched, r, j, 1.0));
        assert_eq!(&touched[..reached], &[0, 1, 2]);
    }

    #[test]
    fn averages_pairwise() {
        assert_eq!(average_scores(&[&[1.0, 2.0], &[3.0, 0.0]]), vec![2.0, 1.0]);
        assert!(average_scores(&[]).is_empty());
    }

    #[test]
    fn statistics_by_movie_and_user() {
        let train = Interactions {
            user: vec![7, 7, 8],
            movie: vec![0, 2, 2],
            rating: vec![4.0, 2.0, 5.0],
        };
        let movies = train.movie_stats(3);
        assert_eq!(movies[1], RatingStats::default());
        assert_eq!(movies[2].count, 2);
        assert!((movies[2].mean - 3.5).abs() < 1e-12);
        assert_eq!(movies[1].mean_or(3.0), 3.0);
        let users = train.user_stats();
        assert!((users[&7].mean - 3.0).abs() < 1e-12 && users[&8].count == 1);
    }

    #[test]
    fn indexes_users_in_order_of_appearance() {
        let index = UserIndex::new(&[7, 3, 7, 9]);
        assert_eq!(
            (index.get(7), index.get(3), index.get(9)),
            (Some(0), Some(1), Some(2))
        );
        assert_eq!(index.get(4), None);
        assert_eq!(index.len(), 3);
    }
}
