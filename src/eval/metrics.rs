//! Ranking and rating metrics, defined once for every protocol.
//!
//! A user's candidate rows are ranked by score, highest first; ties are broken by the lower
//! catalogue position, so every ranking is deterministic. Relevance is binary (rating ≥ the
//! threshold). At cut-off K, with n candidate rows and R relevant ones:
//! - `HitRate@K`: 1 if any of the top min(K, n) is relevant;
//! - `Precision@K`: relevant in the top, divided by min(K, n) (the seeds' definition; the
//!   full-catalogue protocol has n ≫ K, so it divides by K);
//! - `Recall@K`: relevant in the top / R;
//! - `NDCG@K`: DCG of the top (gain 1/log2(rank + 1)) / the DCG of an ideal ranking;
//! - `MAP@K`: Σ over relevant ranks r ≤ K of Precision@r, divided by min(K, R).

use serde::Serialize;

/// Metrics of one user's ranking.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct RankingMetrics {
    /// 1 when the top K holds a relevant item.
    pub hit_rate: f64,
    /// Precision at K.
    pub precision: f64,
    /// Recall at K.
    pub recall: f64,
    /// NDCG at K.
    pub ndcg: f64,
    /// Average precision at K.
    pub map: f64,
}

impl RankingMetrics {
    /// The element-wise sum.
    pub fn add(&mut self, other: &RankingMetrics) {
        self.hit_rate += other.hit_rate;
        self.precision += other.precision;
        self.recall += other.recall;
        self.ndcg += other.ndcg;
        self.map += other.map;
    }

    /// Every value divided by `n`.
    pub fn divided(&self, n: f64) -> RankingMetrics {
        RankingMetrics {
            hit_rate: self.hit_rate / n,
            precision: self.precision / n,
            recall: self.recall / n,
            ndcg: self.ndcg / n,
            map: self.map / n,
        }
    }

    /// The metric names at K, in report order.
    pub fn names(k: usize) -> Vec<String> {
        RankingMetrics::default()
            .named(k)
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    /// A JSON result row: `{"model", "HitRate@K", …}`.
    pub fn json_row(&self, model: &str, k: usize) -> serde_json::Map<String, serde_json::Value> {
        let mut row = serde_json::Map::new();
        row.insert("model".into(), model.into());
        for (name, value) in self.named(k) {
            row.insert(name, value.into());
        }
        row
    }

    /// The metrics as (name@K, value) pairs, in report order.
    pub fn named(&self, k: usize) -> [(String, f64); 5] {
        [
            (format!("HitRate@{k}"), self.hit_rate),
            (format!("Precision@{k}"), self.precision),
            (format!("Recall@{k}"), self.recall),
            (format!("NDCG@{k}"), self.ndcg),
            (format!("MAP@{k}"), self.map),
        ]
    }
}

/// Positions of `items` ranked by `scores` (highest first, ties to the lower item).
pub fn rank_order(items: &[u32], scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        scores[b]
            .total_cmp(&scores[a])
            .then(items[a].cmp(&items[b]))
    });
    order
}

/// The metrics of one user's ranking: `relevant[i]` says whether the i-th ranked row is
/// relevant, `n_relevant` how many relevant rows exist in all (≥ those in `relevant`), and
/// `precision_denominator` what Precision@K divides by. `None` when the user has no relevant
/// row (such users are skipped).
pub fn ranking_metrics(
    relevant: &[bool],
    n_relevant: usize,
    k: usize,
    precision_denominator: usize,
) -> Option<RankingMetrics> {
    if n_relevant == 0 || k == 0 {
        return None;
    }
    let top = &relevant[..k.min(relevant.len())];
    let hits = top.iter().filter(|&&r| r).count();
    let gain = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    let dcg: f64 = top
        .iter()
        .enumerate()
        .filter(|(_, &r)| r)
        .map(|(i, _)| gain(i))
        .sum();
    let ideal: f64 = (0..n_relevant.min(k)).map(gain).sum();
    let mut seen = 0;
    let mut precision_sum = 0.0;
    for (i, &r) in top.iter().enumerate() {
        if r {
            seen += 1;
            precision_sum += seen as f64 / (i + 1) as f64;
        }
    }
    Some(RankingMetrics {
        hit_rate: if hits > 0 { 1.0 } else { 0.0 },
        precision: hits as f64 / precision_denominator.max(1) as f64,
        recall: hits as f64 / n_relevant as f64,
        ndcg: dcg / ideal,
        map: precision_sum / n_relevant.min(k) as f64,
    })
}

/// 1 / the rank of the first relevant row within the top `k` (0 when there is none):
/// averaged over queries, MRR@K.
pub fn reciprocal_rank(relevant: &[bool], k: usize) -> f64 {
    relevant
        .iter()
        .take(k)
        .position(|&r| r)
        .map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

/// Root mean squared error.
pub fn rmse(truth: &[f32], predicted: &[f32]) -> f64 {
    let n = truth.len().max(1) as f64;
    (truth
        .iter()
        .zip(predicted)
        .map(|(&t, &p)| (f64::from(t) - f64::from(p)).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}

/// Mean absolute error.
pub fn mae(truth: &[f32], predicted: &[f32]) -> f64 {
    let n = truth.len().max(1) as f64;
    truth
        .iter()
        .zip(predicted)
        .map(|(&t, &p)| (f64::from(t) - f64::from(p)).abs())
        .sum::<f64>()
        / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn reciprocal_rank_of_the_first_relevant_row() {
        assert_eq!(reciprocal_rank(&[false, false, true, true], 10), 1.0 / 3.0);
        assert_eq!(reciprocal_rank(&[true], 10), 1.0);
        assert_eq!(reciprocal_rank(&[false, false, true], 2), 0.0);
        assert_eq!(reciprocal_rank(&[], 10), 0.0);
    }

    #[test]
    fn metrics_by_hand() {
        // ranked: R, N, R, N, N; 3 relevant overall (one not in the top 3); K = 3, 5 rows
        let m = ranking_metrics(&[true, false, true, false, false], 3, 3, 3).expect("relevant");
        assert_eq!(m.hit_rate, 1.0);
        assert!(close(m.precision, 2.0 / 3.0));
        assert!(close(m.recall, 2.0 / 3.0));
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let ideal = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!(close(m.ndcg, dcg / ideal));
        assert!(close(m.map, (1.0 + 2.0 / 3.0) / 3.0));
    }

    #[test]
    fn fewer_rows_than_k() {
        // 2 rows, K = 10: precision divides by min(K, n) = 2 in the seed protocol
        let m = ranking_metrics(&[false, true], 1, 10, 2).expect("relevant");
        assert!(close(m.precision, 0.5));
        assert!(close(m.recall, 1.0));
        assert!(close(m.ndcg, 1.0 / 3f64.log2()));
        assert!(close(m.map, 0.5));
    }

    #[test]
    fn no_relevant_rows_are_skipped() {
        assert_eq!(ranking_metrics(&[false, false], 0, 10, 2), None);
    }

    #[test]
    fn ties_break_to_the_lower_item() {
        assert_eq!(rank_order(&[30, 10, 20], &[1.0, 1.0, 2.0]), vec![2, 1, 0]);
    }

    #[test]
    fn rating_errors() {
        assert!(close(rmse(&[1.0, 3.0], &[2.0, 1.0]), (2.5f64).sqrt()));
        assert!(close(mae(&[1.0, 3.0], &[2.0, 1.0]), 1.5));
    }

    proptest! {
        #[test]
        fn metrics_lie_in_unit_interval(relevant in proptest::collection::vec(any::<bool>(), 1..40), extra in 0usize..5, k in 1usize..15) {
            let n_relevant = relevant.iter().filter(|&&r| r).count() + extra;
            if let Some(m) = ranking_metrics(&relevant, n_relevant, k, k.min(relevant.len())) {
                for (_, v) in m.named(k) {
                    prop_assert!((0.0..=1.0 + 1e-12).contains(&v), "{v}");
                }
            }
        }

        #[test]
        fn perfect_ranking_has_ndcg_one(n_relevant in 1usize..20, n_other in 0usize..20, k in 1usize..25) {
            let relevant: Vec<bool> = (0..n_relevant + n_other).map(|i| i < n_relevant).collect();
            let m = ranking_metrics(&relevant, n_relevant, k, k.min(relevant.len())).expect("relevant");
            prop_assert!((m.ndcg - 1.0).abs() < 1e-12);
            prop_assert!((m.map - 1.0).abs() < 1e-12);
        }
    }
}
