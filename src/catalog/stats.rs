//! Count and mean of ratings, per movie, per user and per history.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Count and mean of a user's or a movie's ratings.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RatingStats {
    /// Number of ratings.
    pub count: u32,
    /// Mean rating (0 when unrated).
    pub mean: f64,
}

impl RatingStats {
    /// Adds a rating; `mean` holds the running sum until [`RatingStats::finish`].
    fn add(&mut self, rating: f32) {
        self.count += 1;
        self.mean += f64::from(rating);
    }

    /// Turns the sum into the mean (sum / count, the arithmetic the reports were measured with).
    fn finish(mut self) -> Self {
        if self.count > 0 {
            self.mean /= f64::from(self.count);
        }
        self
    }

    /// The mean, or `fallback` when there is no rating.
    pub fn mean_or(&self, fallback: f64) -> f64 {
        if self.count > 0 {
            self.mean
        } else {
            fallback
        }
    }
}

/// Rating statistics of every movie position `0..n_movies`, from parallel movie/rating columns.
pub fn movie_stats(movie: &[u32], rating: &[f32], n_movies: usize) -> Vec<RatingStats> {
    let mut stats = vec![RatingStats::default(); n_movies];
    for (&m, &r) in movie.iter().zip(rating) {
        stats[m as usize].add(r);
    }
    stats.into_iter().map(RatingStats::finish).collect()
}

/// Rating statistics of every user, from parallel user/rating columns.
pub fn user_stats(user: &[u32], rating: &[f32]) -> HashMap<u32, RatingStats> {
    let mut stats: HashMap<u32, RatingStats> = HashMap::new();
    for (&u, &r) in user.iter().zip(rating) {
        stats.entry(u).or_default().add(r);
    }
    stats.into_iter().map(|(u, s)| (u, s.finish())).collect()
}

/// Rating statistics of one person's history ((movie, rating) pairs).
pub fn history_stats(history: &[(u32, f32)]) -> RatingStats {
    let mut stats = RatingStats::default();
    for &(_, r) in history {
        stats.add(r);
    }
    stats.finish()
}
