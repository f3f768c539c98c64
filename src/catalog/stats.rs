//! Count, mean, spread and liked share of ratings, per movie, per user and per history.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::data::LIKED_THRESHOLD;

/// Count, mean, spread and liked count of a user's or a movie's ratings.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RatingStats {
    /// Number of ratings.
    pub count: u32,
    /// Mean rating (0 when unrated).
    pub mean: f64,
    /// Standard deviation of the ratings (population; 0 with fewer than two).
    pub spread: f64,
    /// Number of ratings ≥ [`LIKED_THRESHOLD`].
    pub liked: u32,
}

impl RatingStats {
    /// Adds a rating; `mean` and `spread` hold running sums until [`RatingStats::finish`].
    fn add(&mut self, rating: f32) {
        self.count += 1;
        self.mean += f64::from(rating);
        self.spread += f64::from(rating) * f64::from(rating);
        self.liked += u32::from(rating >= LIKED_THRESHOLD);
    }

    /// Turns the sums into the mean (sum / count, the arithmetic the reports were measured
    /// with) and the standard deviation.
    fn finish(mut self) -> Self {
        if self.count > 0 {
            let n = f64::from(self.count);
            self.mean /= n;
            self.spread = (self.spread / n - self.mean * self.mean).max(0.0).sqrt();
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

    /// The mean pulled toward `prior` as if `weight` more ratings had the value `prior`.
    pub fn shrunk_mean(&self, prior: f64, weight: f64) -> f64 {
        (f64::from(self.count) * self.mean + weight * prior) / (f64::from(self.count) + weight)
    }

    /// The share of ratings ≥ [`LIKED_THRESHOLD`], pulled toward `prior` as if `weight` more
    /// ratings had that share.
    pub fn shrunk_liked_share(&self, prior: f64, weight: f64) -> f64 {
        (f64::from(self.liked) + weight * prior) / (f64::from(self.count) + weight)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_liked_share_and_shrinkage_by_hand() {
        // Ratings 2, 4, 5: mean 11/3, population variance (4 + 16 + 25)/3 − (11/3)² = 14/9.
        let stats = history_stats(&[(0, 2.0), (1, 4.0), (2, 5.0)]);
        assert_eq!((stats.count, stats.liked), (3, 2));
        assert!((stats.mean - 11.0 / 3.0).abs() < 1e-12);
        assert!((stats.spread - (14.0f64 / 9.0).sqrt()).abs() < 1e-12);
        // Two pseudo-ratings of 3: (11 + 6) / 5; liked share (2 + 2·0.5) / 5.
        assert!((stats.shrunk_mean(3.0, 2.0) - 17.0 / 5.0).abs() < 1e-12);
        assert!((stats.shrunk_liked_share(0.5, 2.0) - 0.6).abs() < 1e-12);
        // No rating: the prior itself, and no spread.
        let none = RatingStats::default();
        assert_eq!(none.shrunk_mean(3.5, 10.0), 3.5);
        assert_eq!((none.spread, history_stats(&[(0, 4.0)]).spread), (0.0, 0.0));
    }
}
