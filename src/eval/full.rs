//! The full-catalogue protocol (beyond the seeds'): the same seeded split; models see
//! train_full; each test user with a relevant test movie gets every movie they have not rated
//! in train_full ranked; relevant = their test movies rated ≥ the threshold.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use super::metrics::{ranking_metrics, RankingMetrics};
use super::protocol::EvalConfig;
use crate::ann::top_by;
use crate::data::split::{Split, SplitSizes};
use crate::data::Dataset;
use crate::engine::recommend::score_candidates;
use crate::error::Result;
use crate::fsutil::ms;
use crate::models::Interactions;
use crate::rank::candidates::{
    candidates_from, source_lists, CandidateBudget, DEFAULT_CANDIDATES, SOURCES,
};
use crate::rank::features::{Feature, BASE_SCORES};
use crate::rank::personal::sample_people;
use crate::rank::stack::{Person, ServingStack, StackKind};
use crate::store::MovieIndex;

/// Candidate-set sizes whose recall is reported.
pub const CANDIDATE_SIZES: [usize; 4] = [100, 200, 300, 500];

/// One ranker's mean metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FullResult {
    /// Row name.
    pub model: String,
    /// Mean metrics over evaluated users (Precision@K divides by K).
    pub metrics: RankingMetrics,
}

/// Recall of stage one alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateRecall {
    /// The budget asked for.
    pub budget: usize,
    /// Mean number of candidates returned (sources overlap).
    pub mean_candidates: f64,
    /// Mean share of a user's relevant test movies among the candidates.
    pub recall: f64,
    /// The same for each source alone proposing `budget` candidates ((source, recall)).
    pub by_source: Vec<(&'static str, f64)>,
}

/// The outcome of the full-catalogue protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FullReport {
    /// "full".
    pub protocol: &'static str,
    /// K, threshold and seed.
    pub config: EvalConfig,
    /// Split sizes.
    pub split: SplitSizes,
    /// Users with a relevant test movie.
    pub users_evaluated: usize,
    /// Rows: Popularity, each base model, TwoStage.
    pub models: Vec<FullResult>,
    /// Stage one's recall at each candidate budget.
    pub candidate_recall: Vec<CandidateRecall>,
    /// Milliseconds per stage.
    pub timings_ms: BTreeMap<String, f64>,
}

impl FullReport {
    /// The JSON of `reelrank evaluate --protocol full --json`: metric names carry K.
    pub fn to_json(&self) -> serde_json::Value {
        let models = self
            .models
            .iter()
            .map(|m| m.metrics.json_row(&m.model, self.config.k))
            .collect();
        let mut json = self.config.report_json(
            self.protocol,
            &self.split,
            self.users_evaluated,
            models,
            &self.timings_ms,
        );
        let recall = serde_json::json!(self.candidate_recall);
        json.insert("candidate_recall".into(), recall);
        json.into()
    }
}

/// One user's metrics per row, and per candidate budget (candidates, recall, recall of each
/// source alone).
type UserOutcome = (Vec<RankingMetrics>, Vec<(f64, f64, Vec<f64>)>);

/// The metrics of a ranked list (best first) against a relevant set.
fn metrics_of(ranked: &[u32], relevant: &[u32], k: usize) -> RankingMetrics {
    let hits: Vec<bool> = ranked
        .iter()
        .take(k)
        .map(|m| relevant.contains(m))
        .collect();
    ranking_metrics(&hits, relevant.len(), k, k).unwrap_or_default()
}

/// The `k` best of `movies` by `scores` (ties to the lower position).
fn top_k(movies: &[u32], scores: impl IntoIterator<Item = f64>, k: usize) -> Vec<u32> {
    let scored: Vec<(u32, f64)> = movies.iter().copied().zip(scores).collect();
    top_by(scored, k, |&(m, s)| (s, m as usize))
        .into_iter()
        .map(|(m, _)| m)
        .collect()
}

/// Runs the full-catalogue protocol; `index` supplies the embeddings and the HNSW graph
/// (its catalogue's popularity is not used: popularity comes from train_full); with
/// `sample_users`, on a sample of that many test users seeded by the split's seed.
pub fn evaluate_full_protocol(
    dataset: &Dataset,
    split: &Split,
    index: &MovieIndex,
    config: &EvalConfig,
    sample_users: Option<usize>,
) -> Result<FullReport> {
    let total = Instant::now();
    let mut timings = BTreeMap::new();
    let t = Instant::now();
    let train_rows = split.train_full();
    // Without the personal ranker: this protocol never searches.
    let stack = ServingStack::fit_on(dataset, &train_rows, index.flat(), None, config.seed)?;
    timings.insert("fit".into(), ms(t));

    let train = Interactions::from_rows(&dataset.ratings, &train_rows);
    let test = Interactions::from_rows(&dataset.ratings, &split.test);
    let relevant = test.movies_by_user(config.threshold);
    let mut users: Vec<u32> = relevant.keys().copied().collect();
    users.sort_unstable();
    if let Some(n) = sample_users {
        users = sample_people(users, n, &mut ChaCha8Rng::seed_from_u64(config.seed));
    }
    let rated: HashMap<u32, HashSet<u32>> = train
        .movies_by_user(f32::MIN)
        .into_iter()
        .map(|(user, movies)| (user, movies.into_iter().collect()))
        .collect();
    let counts = train.movie_stats(dataset.movies.len());
    let n_movies = dataset.movies.len() as u32;
    let k = config.k;
    let catalogue_rankers: Vec<Feature> = BASE_SCORES
        .into_iter()
        .chain([Feature::ItemKnnAffinity])
        .collect();
    let nearest = |taste: &[f32], n: usize| index.flat().search(taste, n, &|_| true);

    // Per user: the metrics of every row (Popularity, each base model, ItemKnnTopN, TwoStage,
    // TwoStage-logistic) and the candidate recalls.
    let t = Instant::now();
    let per_user: Vec<UserOutcome> = users
        .par_iter()
        .map(|&user| {
            let empty = HashSet::new();
            let seen = rated.get(&user).unwrap_or(&empty);
            let wanted = &relevant[&user];
            let unrated: Vec<u32> = (0..n_movies).filter(|m| !seen.contains(m)).collect();
            let mut rows = Vec::new();
            let popularity = unrated.iter().map(|&m| f64::from(counts[m as usize].count));
            rows.push(metrics_of(&top_k(&unrated, popularity, k), wanted, k));
            // One column per full-catalogue ranker: each base model, then the affinity.
            let person = Person::User(user);
            let builder = stack.builder();
            let columns = builder.person_rows(&person, &unrated, &catalogue_rankers);
            for j in 0..catalogue_rankers.len() {
                let column = columns.iter().skip(j).step_by(catalogue_rankers.len());
                rows.push(metrics_of(&top_k(&unrated, column.copied(), k), wanted, k));
            }
            // Each source's list once, at the largest budget: every budget below cuts it
            // (a source's top n is a prefix of its top 500).
            let largest = CANDIDATE_SIZES[CANDIDATE_SIZES.len() - 1].max(DEFAULT_CANDIDATES);
            let every_source = CandidateBudget::for_total(largest);
            let lists = source_lists(&builder, &person, every_source, &nearest, &|_| true);
            let from_lists = |budget| candidates_from(&builder, &person, &lists, budget, &|_| true);
            // recommend end to end: its candidates once, ranked by each ranker.
            let found = from_lists(CandidateBudget::for_total(DEFAULT_CANDIDATES));
            for ranker in [None, Some(StackKind::Logistic)] {
                let scores = score_candidates(&stack, &person, &found.order, ranker);
                let two_stage = top_k(&found.order, scores.into_iter().map(|s| s.0), k);
                rows.push(metrics_of(&two_stage, wanted, k));
            }
            let recall = |movies: &[u32]| {
                let through = movies.iter().filter(|m| wanted.contains(m)).count();
                through as f64 / wanted.len() as f64
            };
            let alone: Vec<Vec<u32>> = SOURCES
                .iter()
                .map(|source| from_lists(CandidateBudget::alone(source, largest)).order)
                .collect();
            let recalls = CANDIDATE_SIZES
                .iter()
                .map(|&n| {
                    let found = from_lists(CandidateBudget::for_total(n));
                    let by_source = alone
                        .iter()
                        .map(|list| recall(&list[..n.min(list.len())]))
                        .collect();
                    (found.order.len() as f64, recall(&found.order), by_source)
                })
                .collect();
            (rows, recalls)
        })
        .collect();
    timings.insert("rank".into(), ms(t));

    let n_users = per_user.len().max(1) as f64;
    let mut names = vec!["Popularity".to_string()];
    names.extend(BASE_SCORES.iter().map(|f| stack.model_name(*f).to_string()));
    names.push("ItemKnnTopN".into());
    names.push("TwoStage".into());
    names.push("TwoStage-logistic".into());
    let models = names
        .into_iter()
        .enumerate()
        .map(|(i, model)| {
            let mut sum = RankingMetrics::default();
            for (rows, _) in &per_user {
                sum.add(&rows[i]);
            }
            FullResult {
                model,
                metrics: sum.divided(n_users),
            }
        })
        .collect();
    let candidate_recall = CANDIDATE_SIZES
        .iter()
        .enumerate()
        .map(|(j, &budget)| CandidateRecall {
            budget,
            mean_candidates: per_user.iter().map(|(_, r)| r[j].0).sum::<f64>() / n_users,
            recall: per_user.iter().map(|(_, r)| r[j].1).sum::<f64>() / n_users,
            by_source: SOURCES
                .iter()
                .enumerate()
                .map(|(s, &source)| {
                    let sum: f64 = per_user.iter().map(|(_, r)| r[j].2[s]).sum();
                    (source, sum / n_users)
                })
                .collect(),
        })
        .collect();
    timings.insert("total".into(), ms(total));
    Ok(FullReport {
        protocol: "full",
        config: *config,
        split: split.sizes(),
        users_evaluated: per_user.len(),
        models,
        candidate_recall,
        timings_ms: timings,
    })
}
