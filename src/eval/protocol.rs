//! The seeds' evaluation protocol: base models fit on base_train, stacks (logistic, trees) on
//! their features over meta_train, each test user's own test rows ranked by a model's score,
//! with Random and Oracle reference rows.

use std::collections::BTreeMap;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::metrics::{mae, rank_order, ranking_metrics, rmse, RankingMetrics};
use crate::ann::FlatIndex;
use crate::data::split::{Split, SplitSizes};
use crate::data::Dataset;
use crate::data::LIKED_THRESHOLD;
use crate::fsutil::ms;
use crate::models::{average_scores, Interactions};
use crate::rank::features::{
    select_columns, BaseModels, Feature, FeatureBuilder, Statistics, ALL_FEATURES, BASE_SCORES,
    SEED_000_FEATURES, SEED_001_FEATURES,
};
use crate::rank::stack::MetaRows;

/// Settings of an evaluation run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EvalConfig {
    /// Cut-off K.
    pub k: usize,
    /// Rating from which a test row is relevant.
    pub threshold: f32,
    /// Seed of the split (when no split file is given), of MF and of the Random row.
    pub seed: u64,
    /// Seeded shuffles averaged for the Random row.
    pub random_shuffles: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            k: 10,
            threshold: LIKED_THRESHOLD,
            seed: 42,
            random_shuffles: 50,
        }
    }
}

/// One row of the result table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelResult {
    /// Model name.
    pub model: String,
    /// Mean ranking metrics over evaluated users.
    pub metrics: RankingMetrics,
    /// Test RMSE, for models that predict ratings.
    pub rmse: Option<f64>,
    /// Test MAE, for models that predict ratings.
    pub mae: Option<f64>,
    /// Share of the NDCG gap between Random and Oracle this model closes.
    pub ndcg_gap_closed: f64,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// "seed".
    pub protocol: &'static str,
    /// The settings.
    pub config: EvalConfig,
    /// Split sizes and origin.
    pub split: SplitSizes,
    /// Users with at least one relevant test row.
    pub users_evaluated: usize,
    /// Rows, models first, then Random and Oracle.
    pub models: Vec<ModelResult>,
    /// MF training RMSE per epoch.
    pub mf_epoch_rmse: Vec<f64>,
    /// Milliseconds per stage.
    pub timings_ms: BTreeMap<String, f64>,
}

/// The test rows of each user, for ranking.
struct UserRows {
    /// Per user: indices into the test arrays.
    groups: Vec<Vec<usize>>,
}

impl UserRows {
    fn new(test: &Interactions) -> UserRows {
        let mut order: Vec<usize> = (0..test.len()).collect();
        order.sort_by_key(|&i| (test.user[i], i));
        let groups = order
            .chunk_by(|&a, &b| test.user[a] == test.user[b])
            .map(<[usize]>::to_vec)
            .collect();
        UserRows { groups }
    }
}

/// Mean ranking metrics of `scores` over users with a relevant test row, and that user count.
fn rank_test_rows(
    rows: &UserRows,
    test: &Interactions,
    scores: &[f32],
    config: &EvalConfig,
) -> (RankingMetrics, usize) {
    let mut total = RankingMetrics::default();
    let mut users = 0;
    for group in &rows.groups {
        let items: Vec<u32> = group.iter().map(|&i| test.movie[i]).collect();
        let user_scores: Vec<f32> = group.iter().map(|&i| scores[i]).collect();
        let relevant: Vec<bool> = rank_order(&items, &user_scores)
            .into_iter()
            .map(|r| test.rating[group[r]] >= config.threshold)
            .collect();
        let n_relevant = relevant.iter().filter(|&&r| r).count();
        let denominator = config.k.min(group.len());
        if let Some(m) = ranking_metrics(&relevant, n_relevant, config.k, denominator) {
            total.add(&m);
            users += 1;
        }
    }
    (total.divided(users.max(1) as f64), users)
}

/// Fits every stack on the feature rows of meta_train and scores the test rows whose features
/// (all of them) are `test_rows`: (name, scores, predicts ratings) rows.
fn stack_scores(
    meta_rows: &MetaRows,
    test_rows: &[f64],
    config: &EvalConfig,
    timings: &mut BTreeMap<String, f64>,
) -> Vec<(String, Vec<f32>, bool)> {
    let mut rows = Vec::new();
    let logistic: [(&str, &[Feature], bool); 4] = [
        ("LogisticStack4", &SEED_000_FEATURES, true),
        ("LogisticStack", &SEED_001_FEATURES, true),
        ("LogisticStack-unscaled", &SEED_001_FEATURES, false),
        ("LogisticStackAll", &ALL_FEATURES, true),
    ];
    for (name, features, standardize) in logistic {
        let model = meta_rows.logistic(features, standardize);
        let scores: Vec<f32> = select_columns(test_rows, &ALL_FEATURES, features)
            .chunks_exact(features.len())
            .map(|row| model.probability(row) as f32)
            .collect();
        rows.push((name.to_string(), scores, false));
    }
    let trees: [(&str, &[Feature], bool); 4] = [
        ("GBStack", &SEED_001_FEATURES, false),
        ("GBStackAll", &ALL_FEATURES, false),
        ("LambdaMART", &SEED_001_FEATURES, true),
        ("LambdaMARTAll", &ALL_FEATURES, true),
    ];
    for (name, features, ranking) in trees {
        let t = Instant::now();
        let model = meta_rows.trees(features, ranking, config.seed);
        let scores: Vec<f32> = select_columns(test_rows, &ALL_FEATURES, features)
            .chunks_exact(features.len())
            .map(|row| model.predict(row) as f32)
            .collect();
        rows.push((name.to_string(), scores, false));
        timings.insert(format!("fit_{}", name.to_lowercase()), ms(t));
    }
    rows
}

/// Runs the seed protocol on `dataset` with `split`; `vectors` are the movie embeddings of the
/// dataset's index, in catalogue order.
pub fn evaluate_seed_protocol(
    dataset: &Dataset,
    split: &Split,
    vectors: &FlatIndex,
    config: &EvalConfig,
) -> EvalReport {
    let mut timings = BTreeMap::new();
    let total = Instant::now();
    let base = Interactions::from_rows(&dataset.ratings, &split.base);
    let test = Interactions::from_rows(&dataset.ratings, &split.test);

    let models = BaseModels::fit(&base, dataset, vectors, config.seed);
    for (stage, ms) in &models.fit_ms {
        timings.insert((*stage).to_string(), *ms);
    }
    tracing::debug!(
        "ContentRidge: {} conjugate-gradient iterations",
        models.content_ridge.iterations
    );
    let mf_epoch_rmse = models.mf.epoch_rmse().to_vec();

    // Statistics come from base_train, like the base models. The seeds take them from
    // train_full, which holds meta_train: each meta row's own rating then leaks into its
    // user/item means, and the stack learns a shortcut that test rows do not have (measured:
    // LogisticStack NDCG@10 0.796 with train_full statistics, 0.830 with base_train's).
    let statistics = Statistics::new(&base, &dataset.movies);
    let builder = FeatureBuilder {
        models: &models,
        statistics: &statistics,
    };

    // Every feature of the test rows, once: the base models' rows are its score columns.
    let t = Instant::now();
    let test_rows = builder.rows(&test.user, &test.movie, &ALL_FEATURES);
    let mut rows: Vec<(String, Vec<f32>, bool)> = BASE_SCORES
        .iter()
        .filter_map(|&feature| {
            let model = models.scorer(feature)?;
            let scores = select_columns(&test_rows, &ALL_FEATURES, &[feature])
                .into_iter()
                .map(|v| v as f32)
                .collect();
            Some((model.name().to_string(), scores, model.predicts_ratings()))
        })
        .collect();
    // SimpleAverage is the mean of the seeds' four models (ContentRidge is not one of them).
    let seed_four: Vec<&[f32]> = rows[..4].iter().map(|(_, s, _)| s.as_slice()).collect();
    let average = average_scores(&seed_four);
    rows.push(("SimpleAverage".into(), average, false));
    timings.insert("score".into(), ms(t));

    let t = Instant::now();
    let meta = Interactions::from_rows(&dataset.ratings, &split.meta);
    let meta_rows = MetaRows::new(&builder, &meta, config.threshold);
    rows.extend(stack_scores(&meta_rows, &test_rows, config, &mut timings));
    timings.insert("stacks".into(), ms(t));

    // What serving does (`ServingStack`): the same logistic stack applied to base models and
    // statistics refit on train_full, i.e. on the meta rows too.
    let t = Instant::now();
    let stack = meta_rows.logistic(&ALL_FEATURES, true);
    let train_full = Interactions::from_rows(&dataset.ratings, &split.train_full());
    let refit = BaseModels::fit(&train_full, dataset, vectors, config.seed);
    let refit_statistics = Statistics::new(&train_full, &dataset.movies);
    let refit_rows = FeatureBuilder {
        models: &refit,
        statistics: &refit_statistics,
    }
    .rows(&test.user, &test.movie, &ALL_FEATURES);
    let scores = refit_rows
        .chunks_exact(ALL_FEATURES.len())
        .map(|row| stack.probability(row) as f32)
        .collect();
    rows.push(("LogisticStackAll-refit".into(), scores, false));
    timings.insert("refit".into(), ms(t));

    let t = Instant::now();
    let user_rows = UserRows::new(&test);
    let mut random = RankingMetrics::default();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    for _ in 0..config.random_shuffles.max(1) {
        let scores: Vec<f32> = (0..test.len()).map(|_| rng.random::<f32>()).collect();
        random.add(&rank_test_rows(&user_rows, &test, &scores, config).0);
    }
    let random = random.divided(config.random_shuffles.max(1) as f64);
    let (oracle, users_evaluated) = rank_test_rows(&user_rows, &test, &test.rating, config);
    let gap = |m: &RankingMetrics| {
        let span = oracle.ndcg - random.ndcg;
        if span > 0.0 {
            (m.ndcg - random.ndcg) / span
        } else {
            0.0
        }
    };
    let mut models: Vec<ModelResult> = rows
        .iter()
        .map(|(name, scores, predicts)| {
            let (metrics, _) = rank_test_rows(&user_rows, &test, scores, config);
            ModelResult {
                model: name.clone(),
                metrics,
                rmse: predicts.then(|| rmse(&test.rating, scores)),
                mae: predicts.then(|| mae(&test.rating, scores)),
                ndcg_gap_closed: gap(&metrics),
            }
        })
        .collect();
    for (name, metrics) in [("Random", random), ("Oracle", oracle)] {
        models.push(ModelResult {
            model: name.into(),
            metrics,
            rmse: None,
            mae: None,
            ndcg_gap_closed: gap(&metrics),
        });
    }
    timings.insert("metrics".into(), ms(t));
    timings.insert("total".into(), ms(total));
    EvalReport {
        protocol: "seed",
        config: *config,
        split: split.sizes(),
        users_evaluated,
        models,
        mf_epoch_rmse,
        timings_ms: timings,
    }
}

impl EvalConfig {
    /// The JSON every evaluation reports: protocol, K, threshold, seed, split, users, one row
    /// per model (`{"model", "HitRate@K", …}` plus `extra` columns), timings and versions.
    pub fn report_json(
        &self,
        protocol: &str,
        split: &SplitSizes,
        users_evaluated: usize,
        models: Vec<serde_json::Map<String, serde_json::Value>>,
        timings_ms: &BTreeMap<String, f64>,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut json = serde_json::Map::new();
        json.insert("protocol".into(), protocol.into());
        json.insert("k".into(), self.k.into());
        json.insert("threshold".into(), self.threshold.into());
        json.insert("seed".into(), self.seed.into());
        json.insert("split".into(), serde_json::json!(split));
        json.insert("users_evaluated".into(), users_evaluated.into());
        json.insert("models".into(), models.into_iter().collect());
        json.insert("timings_ms".into(), serde_json::json!(timings_ms));
        let versions = serde_json::json!({ "reelrank": env!("CARGO_PKG_VERSION") });
        json.insert("versions".into(), versions);
        json
    }
}

impl EvalReport {
    /// The JSON of `reelrank evaluate --json`: metric names carry K ("NDCG@10").
    pub fn to_json(&self) -> serde_json::Value {
        let k = self.config.k;
        let models = self
            .models
            .iter()
            .map(|m| {
                let mut row = m.metrics.json_row(&m.model, k);
                row.insert("RMSE".into(), m.rmse.into());
                row.insert("MAE".into(), m.mae.into());
                row.insert("NDCG gap closed".into(), m.ndcg_gap_closed.into());
                row
            })
            .collect();
        let mut json = self.config.report_json(
            self.protocol,
            &self.split,
            self.users_evaluated,
            models,
            &self.timings_ms,
        );
        json.insert("random_shuffles".into(), self.config.random_shuffles.into());
        json.insert("mf_epoch_rmse".into(), self.mf_epoch_rmse.clone().into());
        json.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn interactions(users: &[u32], movies: &[u32], ratings: &[f32]) -> Interactions {
        Interactions {
            user: users.to_vec(),
            movie: movies.to_vec(),
            rating: ratings.to_vec(),
        }
    }

    #[test]
    fn ranks_each_users_rows_with_ties_and_skips() {
        // user 1: movies 5, 3, 9 rated 5, 2, 4 with scores 0.5, 0.5, 0.1 → tie on 0.5 goes to
        // movie 3 (lower position): ranking 3 (N), 5 (R), 9 (R)
        // user 2: one row rated 1 → no relevant row, skipped
        let test = interactions(&[1, 1, 1, 2], &[5, 3, 9, 4], &[5.0, 2.0, 4.0, 1.0]);
        let rows = UserRows::new(&test);
        let config = EvalConfig {
            k: 2,
            ..EvalConfig::default()
        };
        let (m, users) = rank_test_rows(&rows, &test, &[0.5, 0.5, 0.1, 0.9], &config);
        assert_eq!(users, 1);
        assert_eq!(m.hit_rate, 1.0);
        assert!((m.precision - 0.5).abs() < 1e-12);
        assert!((m.recall - 0.5).abs() < 1e-12);
        let ideal = 1.0 + 1.0 / 3f64.log2();
        assert!((m.ndcg - (1.0 / 3f64.log2()) / ideal).abs() < 1e-12);
        assert!((m.map - 0.25).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn oracle_is_never_beaten_on_precision(
            rows in proptest::collection::vec((0u32..6, 1u32..10, 0.5f32..5.0, 0f32..1.0), 1..80),
            k in 1usize..12,
        ) {
            let mut seen = std::collections::HashSet::new();
            let rows: Vec<_> = rows.into_iter().filter(|r| seen.insert((r.0, r.1))).collect();
            let users: Vec<u32> = rows.iter().map(|r| r.0).collect();
            let movies: Vec<u32> = rows.iter().map(|r| r.1).collect();
            let ratings: Vec<f32> = rows.iter().map(|r| (r.2 * 2.0).round() / 2.0).collect();
            let scores: Vec<f32> = rows.iter().map(|r| r.3).collect();
            let test = interactions(&users, &movies, &ratings);
            let grouped = UserRows::new(&test);
            let config = EvalConfig { k, ..EvalConfig::default() };
            let (model, n) = rank_test_rows(&grouped, &test, &scores, &config);
            let (oracle, n_oracle) = rank_test_rows(&grouped, &test, &test.rating, &config);
            prop_assert_eq!(n, n_oracle);
            prop_assert!(oracle.precision + 1e-12 >= model.precision);
            prop_assert!(oracle.recall + 1e-12 >= model.recall);
            if n > 0 {
                prop_assert!((oracle.ndcg - 1.0).abs() < 1e-12);
            }
        }
    }
}
