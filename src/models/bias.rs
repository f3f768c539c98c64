//! Bias: `μ + b_u + b_i` from means (seed 000 §3.1).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{history_stats, Interactions, RatingModel};

/// Global mean plus user and item deviations of their mean ratings from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bias {
    mu: f64,
    user_bias: HashMap<u32, f64>,
    item_bias: Vec<Option<f64>>,
}

impl Bias {
    /// Fits on `train` over a catalogue of `n_movies` positions.
    pub fn fit(train: &Interactions, n_movies: usize) -> Bias {
        let mu = train.mean();
        Bias {
            mu,
            user_bias: train
                .user_stats()
                .into_iter()
                .map(|(u, s)| (u, s.mean - mu))
                .collect(),
            item_bias: train
                .movie_stats(n_movies)
                .into_iter()
                .map(|s| (s.count > 0).then_some(s.mean - mu))
                .collect(),
        }
    }

    /// The global mean μ.
    pub fn mu(&self) -> f64 {
        self.mu
    }
}

impl RatingModel for Bias {
    const NAME: &'static str = "Bias";

    /// An unknown user or item contributes no bias.
    fn predict(&self, user: u32, movie: u32) -> f64 {
        self.predict_with(self.user_bias.get(&user).copied().unwrap_or(0.0), movie)
    }

    /// b_u is the history's mean minus μ, as in `fit`.
    fn predict_history(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f64> {
        let stats = history_stats(history);
        let bu = if stats.count > 0 {
            stats.mean - self.mu
        } else {
            0.0
        };
        movies.iter().map(|&m| self.predict_with(bu, m)).collect()
    }
}

impl Bias {
    /// μ + `bu` + b_i.
    fn predict_with(&self, bu: f64, movie: u32) -> f64 {
        let bi = self
            .item_bias
            .get(movie as usize)
            .copied()
            .flatten()
            .unwrap_or(0.0);
        self.mu + bu + bi
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Scorer;

    #[test]
    fn biases_by_hand() {
        // user 1: 4, 2 → mean 3; user 2: 5 → 5; μ = 11/3
        // item 0: 4, 5 → 4.5; item 1: 2
        let train = Interactions {
            user: vec![1, 1, 2],
            movie: vec![0, 1, 0],
            rating: vec![4.0, 2.0, 5.0],
        };
        let model = Bias::fit(&train, 3);
        let mu = 11.0 / 3.0;
        assert!((model.mu() - mu).abs() < 1e-12);
        // μ + (3 − μ) + (2 − μ)
        assert!((model.predict(1, 1) - (3.0 + 2.0 - mu)).abs() < 1e-12);
        // unknown user: μ + b_i
        assert!((model.predict(9, 0) - 4.5).abs() < 1e-12);
        // unknown item (never rated): μ + b_u
        assert!((model.predict(2, 2) - 5.0).abs() < 1e-12);
        assert!((model.predict(9, 2) - mu).abs() < 1e-12);
        assert_eq!(model.score(&[9], &[2]), vec![mu as f32]);
    }
}
