//! EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): an item-item
//! weight matrix in closed form, `B = I − P·diag(1/diag(P))` with `P = (XᵀX + λI)⁻¹` over the
//! binary user×item matrix X (who rated what), the diagonal forced to zero. A user's score
//! for item j is `Σ_{i ∈ history} B_ij`.
//!
//! The dense items×items inverse is cubic in the items (ml-latest's 86k movies would need a
//! ~30 GB matrix), so EASE covers the [`DEFAULT_MAX_ITEMS`] most-rated movies; the others
//! score 0 and are left to the other candidate sources. Each row of B keeps its
//! [`DEFAULT_KEPT_WEIGHTS`] largest weights (by magnitude), which keeps the serving stack small.

use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, Side};
use serde::{Deserialize, Serialize};

use super::{score_by_user_runs, top_positive, Interactions, RatedMovies, Scorer};

/// λ, the L2 weight on B (Steck's ML-20M value is 500; chosen on ml-latest-small's full
/// protocol, see the README).
pub const DEFAULT_LAMBDA: f64 = 300.0;
/// Movies EASE covers: the most rated. 3,000 covers ~88 % of ml-latest-small's ratings; the
/// inverse takes ~1 s and n² f64 = 72 MB while fitting.
pub const DEFAULT_MAX_ITEMS: usize = 3000;
/// Weights kept per row of B.
pub const DEFAULT_KEPT_WEIGHTS: usize = 300;

/// A fitted EASE model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ease {
    /// Catalogue position → dense item index (u32::MAX: not covered).
    dense: Vec<u32>,
    /// Dense item index → catalogue position.
    items: Vec<u32>,
    /// Per dense item i: the kept (dense j, B_ij), largest |B_ij| first.
    rows: Vec<Vec<(u32, f32)>>,
    /// The dense items each training user rated.
    rated: RatedMovies,
}

/// Rows of the co-rating counts one task fills: small enough that both cores stay busy to
/// the end (the later rows of the triangle are the longer ones).
const COUNT_ROWS_PER_TASK: usize = 64;

/// The lower triangle (`j ≤ i`, row-major `[n, n]`, the rest zero) of `XᵀX` for the binary
/// matrix whose rows are `histories` (each sorted, each item once, all `< n`): how many
/// histories hold both `i` and `j`. Bands of rows are counted in parallel, each from the part
/// of every history at or below its last row, so the result does not depend on scheduling.
/// A single pass that added every ordered pair into an f64 matrix took a core 20–30 s at
/// 33.8M ratings: twice the pairs, twice the bytes, one core.
fn co_rating_counts(histories: &[Vec<u32>], n: usize) -> Vec<u32> {
    use rayon::prelude::*;
    let mut counts = vec![0u32; n * n];
    counts
        .par_chunks_mut(COUNT_ROWS_PER_TASK * n.max(1))
        .enumerate()
        .for_each(|(band, rows)| {
            let first = (band * COUNT_ROWS_PER_TASK) as u32;
            let end = first + (rows.len() / n.max(1)) as u32;
            for history in histories {
                let upto = history.partition_point(|&i| i < end);
                let from = history[..upto].partition_point(|&i| i < first);
                for (a, &i) in history[..upto].iter().enumerate().skip(from) {
                    let row = &mut rows[(i - first) as usize * n..][..n];
                    for &j in &history[..=a] {
                        row[j as usize] += 1;
                    }
                }
            }
        });
    counts
}

/// Marks a catalogue position EASE does not cover.
const UNCOVERED: u32 = u32::MAX;

impl Ease {
    /// Fits on `train` over a catalogue of `n_movies`: the `max_items` most-rated movies,
    /// L2 weight `lambda`, `kept` weights per row.
    pub fn fit(
        train: &Interactions,
        n_movies: usize,
        lambda: f64,
        max_items: usize,
        kept: usize,
    ) -> Ease {
        let stats = train.movie_stats(n_movies);
        let mut by_count: Vec<u32> = (0..n_movies as u32)
            .filter(|&m| stats[m as usize].count > 0)
            .collect();
        // Most rated first; ties to the lower position, so the cover is deterministic.
        by_count.sort_by(|&a, &b| {
            stats[b as usize]
                .count
                .cmp(&stats[a as usize].count)
                .then(a.cmp(&b))
        });
        by_count.truncate(max_items);
        let items = by_count;
        let mut dense = vec![UNCOVERED; n_movies];
        for (i, &m) in items.iter().enumerate() {
            dense[m as usize] = i as u32;
        }

        let rated = RatedMovies::new(train, |m| {
            dense.get(m as usize).copied().filter(|&d| d != UNCOVERED)
        });

        let n = items.len();
        // G = XᵀX + λI from the co-rating counts (X is sparse; counts are exact in f64).
        let counts = co_rating_counts(rated.rows(), n);
        let g = Mat::<f64>::from_fn(n, n, |i, j| {
            let (row, column) = (i.max(j), i.min(j));
            f64::from(counts[row * n + column]) + if i == j { lambda } else { 0.0 }
        });
        // G is symmetric positive definite for λ > 0, so the Cholesky factorisation exists;
        // should rounding break it, EASE scores nothing rather than stopping the build.
        let p = match g.llt(Side::Lower) {
            Ok(llt) => llt.inverse(),
            Err(error) => {
                tracing::warn!("EASE: no Cholesky factorisation of XᵀX + λI ({error:?})");
                Mat::zeros(n, n)
            }
        };
        let rows = (0..n)
            .map(|i| {
                let row: Vec<(u32, f32)> = (0..n)
                    .filter(|&j| j != i && p[(j, j)] != 0.0)
                    .map(|j| (j as u32, (-p[(i, j)] / p[(j, j)]) as f32))
                    .collect();
                super::strongest(row, kept, f32::abs)
            })
            .collect();
        Ease {
            dense,
            items,
            rows,
            rated,
        }
    }

    /// Number of movies covered.
    pub fn covered(&self) -> usize {
        self.items.len()
    }

    /// The scores over the dense items of a history of dense items.
    fn dense_scores(&self, history: &[u32]) -> Vec<f32> {
        let mut scores = vec![0f32; self.items.len()];
        for &i in history {
            for &(j, b) in &self.rows[i as usize] {
                scores[j as usize] += b;
            }
        }
        scores
    }

    /// The score of catalogue position `movie` in dense scores.
    fn lookup(&self, scores: &[f32], movie: u32) -> f32 {
        match self.dense.get(movie as usize) {
            Some(&d) if d != UNCOVERED => scores[d as usize],
            _ => 0.0,
        }
    }

    /// The dense items of a history of (catalogue position, rating).
    fn dense_history(&self, history: &[(u32, f32)]) -> Vec<u32> {
        let mut items: Vec<u32> = history
            .iter()
            .filter_map(|&(m, _)| self.dense.get(m as usize).copied())
            .filter(|&d| d != UNCOVERED)
            .collect();
        items.sort_unstable();
        items.dedup();
        items
    }

    /// The `n` covered movies with the highest positive score for a history, those `keep`
    /// refuses left out (best first; ties to the lower position): a candidate source.
    pub fn top_for_history(
        &self,
        history: &[(u32, f32)],
        n: usize,
        keep: &dyn Fn(u32) -> bool,
    ) -> Vec<u32> {
        let scores = self.dense_scores(&self.dense_history(history));
        top_positive(self.items.iter().copied().zip(scores), n, keep)
    }
}

impl Scorer for Ease {
    fn name(&self) -> &'static str {
        "Ease"
    }

    fn score_one(&self, user: u32, movie: u32) -> f32 {
        self.score(&[user], &[movie])[0]
    }

    /// One user's dense scores are computed once for a run of pairs of that user.
    fn score(&self, users: &[u32], movies: &[u32]) -> Vec<f32> {
        score_by_user_runs(
            users,
            movies,
            |user| self.dense_scores(self.rated.of(user)),
            |scores, movie| self.lookup(scores, movie),
        )
    }

    fn score_history(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f32> {
        let scores = self.dense_scores(&self.dense_history(history));
        movies.iter().map(|&m| self.lookup(&scores, m)).collect()
    }

    fn predicts_ratings(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Users 1 and 2 rated movies 0 and 1 together; user 3 rated 1 and 2; movie 3 is unrated.
    fn train() -> Interactions {
        Interactions::of(&[
            (1, 0, 5.0),
            (1, 1, 4.0),
            (2, 0, 3.0),
            (2, 1, 4.0),
            (3, 1, 5.0),
            (3, 2, 2.0),
        ])
    }

    #[test]
    fn closed_form_by_hand() {
        // Items by count: 1 (3 raters), 0 (2), 2 (1). G = XᵀX + λI with λ = 1:
        //   [[4, 2, 1], [2, 3, 0], [1, 0, 2]] over dense (1, 0, 2).
        let ease = Ease::fit(&train(), 4, 1.0, 10, 10);
        assert_eq!(ease.covered(), 3);
        let g = [[4.0, 2.0, 1.0], [2.0, 3.0, 0.0], [1.0, 0.0, 2.0]];
        // Inverse by the adjugate: det = 4·6 − 2·4 + 1·(−3) = 13.
        let det: f64 = 13.0;
        let adj = [[6.0, -4.0, -3.0], [-4.0, 7.0, 2.0], [-3.0, 2.0, 8.0]];
        let p = |i: usize, j: usize| adj[i][j] / det;
        for (i, row) in g.iter().enumerate() {
            let identity: Vec<f64> = (0..3)
                .map(|j| (0..3).map(|k| row[k] * p(k, j)).sum())
                .collect();
            for (j, v) in identity.iter().enumerate() {
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        let b = |i: usize, j: usize| -p(i, j) / p(j, j);
        // User 3 rated dense 0 (movie 1) and dense 2 (movie 2): score of movie 0 (dense 1).
        let expected = b(0, 1) + b(2, 1);
        let got = ease.score(&[3], &[0])[0];
        assert!(
            (f64::from(got) - expected).abs() < 1e-6,
            "{got} vs {expected}"
        );
        // The same through a folded-in history, and an uncovered movie scores 0.
        let folded = ease.score_history(&[(1, 5.0), (2, 2.0)], &[0, 3]);
        assert!((folded[0] - got).abs() < 1e-7);
        assert_eq!(folded[1], 0.0);
        // Unknown users score 0 everywhere.
        assert_eq!(ease.score(&[99, 99], &[0, 1]), vec![0.0, 0.0]);
    }

    #[test]
    fn co_rating_counts_follow_the_definition_across_bands() {
        // Items over several bands of rows, histories of every length up to all items.
        let n = 3 * COUNT_ROWS_PER_TASK + 5;
        let histories: Vec<Vec<u32>> = (0..40u32)
            .map(|u| {
                (0..n as u32)
                    .filter(|&i| (i * 7 + u * 13) % (u % 5 + 2) == 0 || u == 0)
                    .collect()
            })
            .collect();
        let counts = co_rating_counts(&histories, n);
        for i in 0..n as u32 {
            for j in 0..n as u32 {
                let both = histories
                    .iter()
                    .filter(|h| h.contains(&i) && h.contains(&j))
                    .count() as u32;
                let expected = if j <= i { both } else { 0 };
                assert_eq!(counts[i as usize * n + j as usize], expected, "({i}, {j})");
            }
        }
        assert!(counts.iter().any(|&c| c > 1));
    }

    #[test]
    fn cover_and_kept_weights_are_bounded() {
        let ease = Ease::fit(&train(), 4, 1.0, 2, 1);
        assert_eq!(ease.covered(), 2, "the two most-rated movies");
        assert!(ease.rows.iter().all(|r| r.len() <= 1));
        assert_eq!(
            ease.score_history(&[(2, 5.0)], &[0, 1, 2]),
            vec![0.0, 0.0, 0.0]
        );
        assert_eq!(ease.top_for_history(&[(0, 5.0)], 5, &|m| m != 0), vec![1]);
    }
}
