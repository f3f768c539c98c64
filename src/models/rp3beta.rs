//! RP3β (Paudel et al. 2017; a strong graph baseline in Dacrema et al. 2019): the probability
//! of a three-step random walk item → user → item over the bipartite rating graph,
//! `W_ij = Σ_{u rated i and j} (1/deg(i))·(1/deg(u))`, divided by `deg(j)^β` so that popular
//! destinations do not win every walk. Each row keeps its [`DEFAULT_KEPT_WEIGHTS`] largest
//! weights; a user's score for j is `Σ_{i ∈ history} W_ij`.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{score_by_user_runs, Interactions, RatedMovies, Scorer};

/// β, the popularity penalty: 0.2 ranked best alone on split seed 1 of the full protocol (0,
/// 0.2, 0.3, 0.4, 0.6, 0.8 tried; ml-latest-small's movies have few ratings each, and larger
/// penalties put obscure films first; README).
pub const DEFAULT_BETA: f32 = 0.2;
/// Weights kept per item (Dacrema et al. tune 5–800; 100 is their typical best on MovieLens).
pub const DEFAULT_KEPT_WEIGHTS: usize = 100;

/// A fitted RP3β model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rp3Beta {
    /// Per catalogue position i: the kept (j, W_ij), largest first.
    rows: Vec<Vec<(u32, f32)>>,
    /// The movies each training user rated.
    rated: RatedMovies,
}

impl Rp3Beta {
    /// Fits on `train` over a catalogue of `n_movies` with popularity penalty `beta`, `kept`
    /// weights per item.
    pub fn fit(train: &Interactions, n_movies: usize, beta: f32, kept: usize) -> Rp3Beta {
        let rated = RatedMovies::new(train, |m| ((m as usize) < n_movies).then_some(m));
        let histories = rated.rows();
        let mut raters: Vec<Vec<u32>> = vec![Vec::new(); n_movies];
        for (user, history) in histories.iter().enumerate() {
            for &m in history {
                raters[m as usize].push(user as u32);
            }
        }
        let penalty: Vec<f32> = raters
            .iter()
            .map(|r| {
                if r.is_empty() {
                    0.0
                } else {
                    (r.len() as f32).powf(-beta)
                }
            })
            .collect();
        // Items in parallel, each thread with its own dense walk buffer.
        let rows = raters
            .par_iter()
            .enumerate()
            .map_init(
                || (vec![0f32; n_movies], vec![0u32; n_movies + 1]),
                |(walk, touched), (i, column)| {
                    if column.is_empty() {
                        return Vec::new();
                    }
                    let from_item = 1.0 / column.len() as f32;
                    let mut reached = 0;
                    for &user in column {
                        let history = &histories[user as usize];
                        let step = from_item / history.len() as f32;
                        for &j in history {
                            reached = super::reach(walk, touched, reached, j, step);
                        }
                    }
                    let touched = &touched[..reached];
                    let row: Vec<(u32, f32)> = touched
                        .iter()
                        .filter(|&&j| j as usize != i)
                        .map(|&j| (j, walk[j as usize] * penalty[j as usize]))
                        .collect();
                    for &j in touched {
                        walk[j as usize] = 0.0;
                    }
                    // Shrunk: truncating keeps the capacity of every touched item (3.6 GB at
                    // 10M ratings before).
                    super::strongest(row, kept, |w| w)
                },
            )
            .collect();
        Rp3Beta { rows, rated }
    }

    /// The scores over the catalogue of a history of catalogue positions.
    fn all_scores(&self, history: impl IntoIterator<Item = u32>) -> Vec<f32> {
        let mut scores = vec![0f32; self.rows.len()];
        for i in history {
            for &(j, w) in self.rows.get(i as usize).map_or(&[][..], Vec::as_slice) {
                scores[j as usize] += w;
            }
        }
        scores
    }
}

impl Scorer for Rp3Beta {
    fn name(&self) -> &'static str {
        "RP3beta"
    }

    fn score_one(&self, user: u32, movie: u32) -> f32 {
        self.score(&[user], &[movie])[0]
    }

    /// One user's scores are computed once for a run of pairs of that user.
    fn score(&self, users: &[u32], movies: &[u32]) -> Vec<f32> {
        score_by_user_runs(
            users,
            movies,
            |user| self.all_scores(self.rated.of(user).iter().copied()),
            |scores, movie| scores.get(movie as usize).copied().unwrap_or(0.0),
        )
    }

    fn score_history(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f32> {
        let scores = self.all_scores(history.iter().map(|&(m, _)| m));
        movies
            .iter()
            .map(|&m| scores.get(m as usize).copied().unwrap_or(0.0))
            .collect()
    }

    fn predicts_ratings(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_walk_by_hand() {
        // Users 1: {0, 1}; 2: {0, 1, 2}; 3: {2}. deg(0) = 2, deg(1) = 2, deg(2) = 2.
        let train = Interactions::of(&[
            (1, 0, 5.0),
            (1, 1, 4.0),
            (2, 0, 3.0),
            (2, 1, 4.0),
            (2, 2, 1.0),
            (3, 2, 5.0),
        ]);
        let beta = 0.5;
        let model = Rp3Beta::fit(&train, 4, beta, 10);
        // 0 → 1: via user 1 (1/2·1/2) and user 2 (1/2·1/3), times deg(1)^-β.
        let w01 = (0.25 + 1.0 / 6.0) * 2f32.powf(-beta);
        // 0 → 2: via user 2 only.
        let w02 = (1.0 / 6.0) * 2f32.powf(-beta);
        assert_eq!(model.rows[0].len(), 2, "no self-loop");
        assert_eq!(model.rows[0][0].0, 1);
        assert!((model.rows[0][0].1 - w01).abs() < 1e-6);
        assert!((model.rows[0][1].1 - w02).abs() < 1e-6);
        assert!(model.rows[3].is_empty(), "an unrated movie walks nowhere");
        // User 3 rated movie 2 only: its walk reaches 0 and 1 through user 2.
        let w20 = (1.0 / 2.0) * (1.0 / 3.0) * 2f32.powf(-beta);
        let scores = model.score(&[3, 3], &[0, 3]);
        assert!((scores[0] - w20).abs() < 1e-6);
        assert_eq!(scores[1], 0.0);
        let folded = model.score_history(&[(2, 5.0)], &[0]);
        assert!((folded[0] - scores[0]).abs() < 1e-7);
        // Kept weights bound each row.
        let pruned = Rp3Beta::fit(&train, 4, beta, 1);
        assert!(pruned.rows.iter().all(|r| r.len() <= 1));
    }
}
