//! The candidate ranker of `recommend`: trees trained on stage one's own candidates.
//!
//! The rating stacks learn P(liked | rated): every row they see is a movie the user chose to
//! watch, so over unwatched movies they favour obscure, well-rated films. The candidate ranker
//! learns what `recommend` needs instead. For each user of meta_train, stage one proposes
//! candidates from base_train's models, exactly as at serving; a candidate is a positive when
//! the user rated it ≥ 4 in meta_train, a negative otherwise (unwatched, or watched and not
//! liked). Log-loss trees learn P(watched and liked | candidate).
//!
//! Measured on the full-catalogue protocol (seed 42, NDCG@10): log-loss 0.2400, LambdaRank
//! grouped by user 0.2097, log-loss with 300 trees of depth 4 0.2353. The item-kNN affinity is
//! a mean over the liked movies, not a sum: a sum grows with the length of the history, which
//! trees splitting across users cannot undo (0.2215 with the sum).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::candidates::{candidates, CandidateBudget, DEFAULT_CANDIDATES};
use super::features::{FeatureBuilder, Person, CANDIDATE_FEATURES};
use crate::ann::Hit;
use crate::models::gbdt::Gbdt;
use crate::models::Interactions;

/// How the candidate ranker was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateTraining {
    /// Users whose candidates were rows (meta_train users with a liked movie).
    pub users: usize,
    /// Candidate rows.
    pub rows: usize,
    /// Share of positive rows.
    pub positive_share: f64,
    /// Share of the users' liked meta_train movies that stage one proposed.
    pub candidate_recall: f64,
}

/// Fits the candidate ranker (the seeds' tree settings): `models` are fit on base_train, `meta` holds the held-out
/// ratings whose liked movies are the positives, `retrieve` finds the nearest movies to a
/// taste vector.
pub fn fit_candidate_ranker(
    models: &FeatureBuilder,
    meta: &Interactions,
    liked: f32,
    retrieve: &(dyn Fn(&[f32], usize) -> Vec<Hit> + Sync),
    seed: u64,
) -> (Gbdt, CandidateTraining) {
    let wanted = meta.movies_by_user(liked);
    let mut users: Vec<u32> = wanted.keys().copied().collect();
    users.sort_unstable();
    let budget = CandidateBudget::for_total(DEFAULT_CANDIDATES);
    // Per user: feature rows, labels, and the number of liked movies found.
    let per_user: Vec<(Vec<f64>, Vec<bool>, usize)> = users
        .par_iter()
        .map(|&user| {
            let person = Person::User(user);
            let found = candidates(models, &person, budget, retrieve, &|_| true);
            let liked = &wanted[&user];
            let labels: Vec<bool> = found.order.iter().map(|m| liked.contains(m)).collect();
            let hits = labels.iter().filter(|&&l| l).count();
            let rows = models.person_rows(&person, &found.order, &CANDIDATE_FEATURES);
            (rows, labels, hits)
        })
        .collect();
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    let mut found = 0usize;
    for (user_rows, user_labels, hits) in per_user {
        rows.extend(user_rows);
        labels.extend(user_labels);
        found += hits;
    }
    let ranker = Gbdt::fit_log_loss(&rows, &labels, CANDIDATE_FEATURES.len(), seed);
    let positives = labels.iter().filter(|&&l| l).count();
    let liked_total: usize = wanted.values().map(Vec::len).sum();
    let training = CandidateTraining {
        users: users.len(),
        rows: labels.len(),
        positive_share: positives as f64 / labels.len().max(1) as f64,
        candidate_recall: found as f64 / liked_total.max(1) as f64,
    };
    (ranker, training)
}
