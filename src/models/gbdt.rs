//! Gradient-boosted regression trees with two objectives: binary log-loss (GBStack) and
//! LambdaRank for NDCG grouped by user (LambdaMART).
//!
//! Written here because no maintained pure-Rust GBDT crate offers a ranking objective on stable
//! Rust (`../shared/CRATES.md`: lightgbm3 needs cmake ≥ 3.28 and libclang at build time,
//! perpetual 3 is a pre-release with ListNet only, gbdt/smartcore are pointwise only).
//!
//! Newton boosting on histograms: features are cut into ≤ 255 quantile bins once; each tree
//! grows level by level to `max_depth`, on a seeded `subsample` of the rows, choosing the split
//! that maximises `G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)`; a leaf predicts
//! `−learning_rate·G/(H+λ)`. The seeds' settings: 200 trees, rate 0.05, depth 3, subsample 0.8.

use super::sigmoid;
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// L2 penalty on leaf values (λ).
const LEAF_PENALTY: f64 = 1.0;
/// Least hessian a child must carry to be split off.
const MIN_CHILD_HESSIAN: f64 = 1e-3;
/// Most bins per feature.
const MAX_BINS: usize = 255;

/// Boosting settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GbdtConfig {
    /// Number of trees.
    pub trees: usize,
    /// Shrinkage of each tree.
    pub learning_rate: f64,
    /// Depth of each tree.
    pub max_depth: usize,
    /// Share of rows each tree is grown on.
    pub subsample: f64,
    /// Seed of the row sampling.
    pub seed: u64,
}

impl Default for GbdtConfig {
    fn default() -> Self {
        GbdtConfig {
            trees: 200,
            learning_rate: 0.05,
            max_depth: 3,
            subsample: 0.8,
            seed: 42,
        }
    }
}

/// What the trees minimise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective<'a> {
    /// Binary log-loss of `labels`.
    LogLoss,
    /// LambdaRank for NDCG: `groups[i]` is row i's query (user); rows of a group must be
    /// contiguous.
    LambdaRank {
        /// Group id of every row.
        groups: &'a [u32],
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Node {
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
        /// What the node would predict as a leaf (for path contributions).
        value: f64,
    },
    Leaf(f64),
}

/// A fitted ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gbdt {
    base_score: f64,
    trees: Vec<Vec<Node>>,
    /// Total split gain per feature.
    pub feature_gain: Vec<f64>,
}

/// Quantile cut points of one feature.
fn cut_points(values: &mut [f64]) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    let mut distinct: Vec<f64> = values.to_vec();
    distinct.dedup();
    if distinct.len() <= MAX_BINS {
        // Cut between consecutive distinct values.
        return distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    }
    let mut cuts: Vec<f64> = (1..MAX_BINS)
        .map(|b| values[b * values.len() / MAX_BINS])
        .collect();
    cuts.dedup();
    cuts
}

/// Gradients and hessians of the objective at the current scores.
fn gradients(objective: Objective, labels: &[bool], scores: &[f64], g: &mut [f64], h: &mut [f64]) {
    match objective {
        Objective::LogLoss => {
            for i in 0..labels.len() {
                let p = sigmoid(scores[i]);
                g[i] = p - if labels[i] { 1.0 } else { 0.0 };
                h[i] = (p * (1.0 - p)).max(1e-12);
            }
        }
        Objective::LambdaRank { groups } => {
            g.iter_mut().for_each(|x| *x = 0.0);
            h.iter_mut().for_each(|x| *x = 0.0);
            let mut start = 0;
            while start < groups.len() {
                let mut end = start + 1;
                while end < groups.len() && groups[end] == groups[start] {
                    end += 1;
                }
                lambda_group(start..end, labels, scores, g, h);
                start = end;
            }
        }
    }
}

/// Pairs are formed only when one side ranks in the current top [`TRUNCATION`] (LightGBM's
/// `lambdarank_truncation_level` default): what NDCG@10 measures, and O(T·n) per user rather
/// than O(n²) for users with thousands of rows.
const TRUNCATION: usize = 30;

/// LambdaRank gradients of one group: for each pair of a relevant and an irrelevant row, the
/// logistic pairwise loss weighted by the NDCG change of swapping them.
fn lambda_group(
    rows: std::ops::Range<usize>,
    labels: &[bool],
    scores: &[f64],
    g: &mut [f64],
    h: &mut [f64],
) {
    let n_relevant = rows.clone().filter(|&i| labels[i]).count();
    if n_relevant == 0 || n_relevant == rows.len() {
        return;
    }
    let ideal: f64 = (0..n_relevant).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
    let mut order: Vec<usize> = rows.collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let discount = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    for (rank_a, &a) in order.iter().enumerate().take(TRUNCATION) {
        for (rank_b, &b) in order.iter().enumerate().skip(rank_a + 1) {
            if labels[a] == labels[b] {
                continue;
            }
            let (i, j) = if labels[a] { (a, b) } else { (b, a) };
            let delta = (discount(rank_a) - discount(rank_b)).abs() / ideal;
            let rho = sigmoid(scores[j] - scores[i]);
            g[i] -= rho * delta;
            g[j] += rho * delta;
            let w = (rho * (1.0 - rho) * delta).max(1e-12);
            h[i] += w;
            h[j] += w;
        }
    }
}

impl Gbdt {
    /// Log-loss trees with the seeds' settings, seeded: the candidate ranker and the personal
    /// ranker.
    pub fn fit_log_loss(x: &[f64], labels: &[bool], dim: usize, seed: u64) -> Gbdt {
        let config = GbdtConfig {
            seed,
            ..GbdtConfig::default()
        };
        Gbdt::fit(x, labels, dim, Objective::LogLoss, &config)
    }

    /// Fits on row-major `x` (`labels.len()` rows × `dim`).
    pub fn fit(
        x: &[f64],
        labels: &[bool],
        dim: usize,
        objective: Objective,
        config: &GbdtConfig,
    ) -> Gbdt {
        let n = labels.len();
        let cuts: Vec<Vec<f64>> = (0..dim)
            .map(|f| cut_points(&mut (0..n).map(|i| x[i * dim + f]).collect::<Vec<_>>()))
            .collect();
        // bins[f * n + i]: the bin of row i on feature f
        let mut bins = vec![0u8; n * dim];
        for f in 0..dim {
            for i in 0..n {
                bins[f * n + i] = cuts[f].partition_point(|&c| c < x[i * dim + f]) as u8;
            }
        }
        let base_score = match objective {
            Objective::LogLoss => {
                let positive = labels.iter().filter(|&&l| l).count() as f64 / n.max(1) as f64;
                let p = positive.clamp(1e-6, 1.0 - 1e-6);
                (p / (1.0 - p)).ln()
            }
            Objective::LambdaRank { .. } => 0.0,
        };
        let mut scores = vec![base_score; n];
        let (mut g, mut h) = (vec![0f64; n], vec![0f64; n]);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let sample_size = ((n as f64 * config.subsample).round() as usize).clamp(1.min(n), n);
        let mut model = Gbdt {
            base_score,
            trees: Vec::with_capacity(config.trees),
            feature_gain: vec![0.0; dim],
        };
        let binned = Binned {
            bins: &bins,
            cuts: &cuts,
            n,
            dim,
        };
        for _ in 0..config.trees {
            gradients(objective, labels, &scores, &mut g, &mut h);
            let mut rows: Vec<usize> = sample(&mut rng, n, sample_size).into_vec();
            rows.sort_unstable();
            let tree = model.grow(rows, &binned, &g, &h, config);
            scores
                .par_iter_mut()
                .enumerate()
                .for_each(|(i, score)| *score += predict_tree(&tree, |f| x[i * dim + f]));
            model.trees.push(tree);
        }
        model
    }

    fn grow(
        &mut self,
        rows: Vec<usize>,
        data: &Binned,
        g: &[f64],
        h: &[f64],
        config: &GbdtConfig,
    ) -> Vec<Node> {
        let (bins, cuts, n) = (data.bins, data.cuts, data.n);
        let mut nodes = vec![Node::Leaf(0.0)];
        let mut frontier = vec![(0usize, rows)];
        for depth in 0..=config.max_depth {
            let mut next = Vec::new();
            for (node, rows) in frontier {
                let (sum_g, sum_h) = rows
                    .iter()
                    .fold((0.0, 0.0), |a, &i| (a.0 + g[i], a.1 + h[i]));
                let leaf = -config.learning_rate * sum_g / (sum_h + LEAF_PENALTY);
                let best = if depth < config.max_depth && rows.len() > 1 {
                    best_split(&rows, data, g, h, sum_g, sum_h)
                } else {
                    None
                };
                let Some((feature, bin, gain)) = best else {
                    nodes[node] = Node::Leaf(leaf);
                    continue;
                };
                self.feature_gain[feature] += gain;
                let (left_rows, right_rows): (Vec<usize>, Vec<usize>) = rows
                    .into_iter()
                    .partition(|&i| (bins[feature * n + i] as usize) <= bin);
                let (left, right) = (nodes.len(), nodes.len() + 1);
                nodes.push(Node::Leaf(0.0));
                nodes.push(Node::Leaf(0.0));
                nodes[node] = Node::Split {
                    feature,
                    threshold: cuts[feature][bin],
                    left,
                    right,
                    value: leaf,
                };
                next.push((left, left_rows));
                next.push((right, right_rows));
            }
            frontier = next;
        }
        nodes
    }

    /// The raw score (log-odds for LogLoss, a ranking score for LambdaRank) of one row.
    pub fn predict(&self, features: &[f64]) -> f64 {
        self.base_score
            + self
                .trees
                .iter()
                .map(|t| predict_tree(t, |f| features[f]))
                .sum::<f64>()
    }

    /// Path contributions of one row (Saabas): the base score plus every tree's root value,
    /// and per feature the changes in node value along each tree's path at that feature's
    /// splits. They add up to [`Gbdt::predict`] exactly.
    pub fn contributions(&self, features: &[f64]) -> (f64, Vec<f64>) {
        let mut bias = self.base_score;
        let mut out = vec![0f64; self.feature_gain.len()];
        for tree in &self.trees {
            let mut node = 0;
            let mut current = node_value(&tree[0]);
            bias += current;
            while let Node::Split {
                feature,
                threshold,
                left,
                right,
                ..
            } = tree[node]
            {
                node = if features[feature] <= threshold {
                    left
                } else {
                    right
                };
                let next = node_value(&tree[node]);
                out[feature] += next - current;
                current = next;
            }
        }
        (bias, out)
    }

    /// Number of trees.
    pub fn len(&self) -> usize {
        self.trees.len()
    }

    /// Whether there is no tree.
    pub fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }
}

fn node_value(node: &Node) -> f64 {
    match *node {
        Node::Leaf(value) | Node::Split { value, .. } => value,
    }
}

fn predict_tree(tree: &[Node], feature: impl Fn(usize) -> f64) -> f64 {
    let mut node = 0;
    loop {
        match &tree[node] {
            Node::Leaf(value) => return *value,
            Node::Split {
                feature: f,
                threshold,
                left,
                right,
                ..
            } => {
                node = if feature(*f) <= *threshold {
                    *left
                } else {
                    *right
                }
            }
        }
    }
}

/// The training matrix cut into bins: `bins[f * n + i]` is row i's bin on feature f.
struct Binned<'a> {
    bins: &'a [u8],
    cuts: &'a [Vec<f64>],
    n: usize,
    dim: usize,
}

/// The best (feature, last bin on the left, gain) split of `rows`, if any improves the loss.
fn best_split(
    rows: &[usize],
    data: &Binned,
    g: &[f64],
    h: &[f64],
    sum_g: f64,
    sum_h: f64,
) -> Option<(usize, usize, f64)> {
    let (bins, cuts, n, dim) = (data.bins, data.cuts, data.n, data.dim);
    let parent = sum_g * sum_g / (sum_h + LEAF_PENALTY);
    // The best split of one feature (the lowest bin among equal gains).
    let best_of = |f: usize| -> Option<(usize, usize, f64)> {
        let n_bins = cuts[f].len() + 1;
        if n_bins < 2 {
            return None;
        }
        let mut hist = vec![(0f64, 0f64); n_bins];
        for &i in rows {
            let b = bins[f * n + i] as usize;
            hist[b].0 += g[i];
            hist[b].1 += h[i];
        }
        let mut best: Option<(usize, usize, f64)> = None;
        let (mut left_g, mut left_h) = (0.0, 0.0);
        for (b, &(bg, bh)) in hist.iter().enumerate().take(n_bins - 1) {
            left_g += bg;
            left_h += bh;
            let (right_g, right_h) = (sum_g - left_g, sum_h - left_h);
            if left_h < MIN_CHILD_HESSIAN || right_h < MIN_CHILD_HESSIAN {
                continue;
            }
            let gain = left_g * left_g / (left_h + LEAF_PENALTY)
                + right_g * right_g / (right_h + LEAF_PENALTY)
                - parent;
            if gain > 1e-12 && best.is_none_or(|(_, _, g0)| gain > g0) {
                best = Some((f, b, gain));
            }
        }
        best
    };
    // Features in parallel once a node is large enough to pay for it (the histograms are
    // most of a fit: 1.9M candidate rows at 0.9M ratings); the winner is then picked in
    // feature order, so the trees are the same as one thread's.
    let per_feature: Vec<Option<(usize, usize, f64)>> = if rows.len() >= PARALLEL_ROWS {
        (0..dim).into_par_iter().map(best_of).collect()
    } else {
        (0..dim).map(best_of).collect()
    };
    let mut best: Option<(usize, usize, f64)> = None;
    for candidate in per_feature.into_iter().flatten() {
        if best.is_none_or(|(_, _, g0)| candidate.2 > g0) {
            best = Some(candidate);
        }
    }
    best
}

/// Rows from which a node's histograms are built on several threads.
const PARALLEL_ROWS: usize = 20_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn ndcg(scores: &[f64], labels: &[bool], groups: &[u32]) -> f64 {
        let mut total = 0.0;
        let mut count = 0;
        let mut start = 0;
        while start < groups.len() {
            let mut end = start + 1;
            while end < groups.len() && groups[end] == groups[start] {
                end += 1;
            }
            let rel: Vec<usize> = (start..end).collect();
            let mut order = rel.clone();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            let n_rel = rel.iter().filter(|&&i| labels[i]).count();
            if n_rel > 0 {
                let dcg: f64 = order
                    .iter()
                    .enumerate()
                    .filter(|(_, &i)| labels[i])
                    .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
                    .sum();
                let ideal: f64 = (0..n_rel).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
                total += dcg / ideal;
                count += 1;
            }
            start = end;
        }
        total / count as f64
    }

    #[test]
    fn learns_a_separable_problem() {
        // label = x0 > 0.5 XOR x1 > 0.5: needs depth 2, impossible for a linear model
        let mut x = Vec::new();
        let mut labels = Vec::new();
        for i in 0..400 {
            let (a, b) = ((i % 20) as f64 / 20.0, (i / 20) as f64 / 20.0);
            x.extend([a, b, 0.3]);
            labels.push((a > 0.5) ^ (b > 0.5));
        }
        let config = GbdtConfig {
            trees: 100,
            learning_rate: 0.3,
            ..GbdtConfig::default()
        };
        let model = Gbdt::fit(&x, &labels, 3, Objective::LogLoss, &config);
        let correct = (0..400)
            .filter(|&i| (model.predict(&x[i * 3..i * 3 + 3]) > 0.0) == labels[i])
            .count();
        assert_eq!(correct, 400);
        assert_eq!(
            model.feature_gain[2], 0.0,
            "the constant feature is never split"
        );
        assert_eq!(
            Gbdt::fit(&x, &labels, 3, Objective::LogLoss, &config),
            model
        );
        // Path contributions add up to the prediction; the constant feature contributes 0.
        for i in [0, 57, 399] {
            let row = &x[i * 3..i * 3 + 3];
            let (bias, parts) = model.contributions(row);
            let total = bias + parts.iter().sum::<f64>();
            assert!((total - model.predict(row)).abs() < 1e-9, "{total}");
            assert_eq!(parts[2], 0.0);
            assert!(parts[0] != 0.0 && parts[1] != 0.0);
        }
    }

    #[test]
    fn lambdamart_improves_ndcg() {
        // 30 users × 12 rows; relevance depends on x0 within a user, while x1 only shifts a
        // whole user's rows (a pointwise trap).
        let (mut x, mut labels, mut groups) = (Vec::new(), Vec::new(), Vec::new());
        for user in 0..30u32 {
            for item in 0..12 {
                let quality = ((item * 7 + user as usize * 3) % 12) as f64 / 12.0;
                x.extend([quality, user as f64]);
                labels.push(quality > 0.6);
                groups.push(user);
            }
        }
        let initial = ndcg(&vec![0.0; labels.len()], &labels, &groups);
        let config = GbdtConfig {
            trees: 30,
            ..GbdtConfig::default()
        };
        let model = Gbdt::fit(
            &x,
            &labels,
            2,
            Objective::LambdaRank { groups: &groups },
            &config,
        );
        let scores: Vec<f64> = (0..labels.len())
            .map(|i| model.predict(&x[i * 2..i * 2 + 2]))
            .collect();
        let trained = ndcg(&scores, &labels, &groups);
        assert!(trained > initial + 0.2, "{initial} → {trained}");
        assert!((trained - 1.0).abs() < 1e-9, "{trained}");
    }

    #[test]
    fn cut_points_split_distinct_values() {
        assert_eq!(cut_points(&mut [3.0, 1.0, 2.0, 1.0]), vec![1.5, 2.5]);
        assert!(cut_points(&mut [5.0, 5.0]).is_empty());
    }
}
