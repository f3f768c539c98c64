//! Stage one of `recommend`: candidates from a person's history, each with the sources that
//! proposed it. The same code feeds serving, the candidate ranker's training and the
//! full-catalogue evaluation.

use std::collections::{HashMap, HashSet};

use super::features::{FeatureBuilder, Person};
use crate::ann::Hit;

/// The budget `recommend` uses. Full-catalogue NDCG@10 over seeds 42, 7 and 2024 is flat from
/// 150 to 300 (0.2523, 0.2498, 0.2488, within split noise) and lower at 500; 300 keeps short
/// profiles on their taste (three Pixar likes: 9 animated films of 10, against 5 at 150).
pub const DEFAULT_CANDIDATES: usize = 300;

/// Twelfths of a budget for the taste vector's neighbours.
const SHARE_PROFILE: usize = 4;
/// Twelfths of a budget for item-kNN affinity (EASE takes the rest).
const SHARE_ITEM_KNN: usize = 4;

/// How many candidates each source proposes (before overlaps and rated movies are removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CandidateBudget {
    /// Nearest movies to the taste vector.
    pub profile: usize,
    /// Movies with the highest item-kNN affinity (summed cosine to the liked movies).
    pub item_knn: usize,
    /// Movies with the highest EASE score for the history.
    pub ease: usize,
    /// Most popular movies (weighted rating of the training ratings).
    pub popular: usize,
}

impl CandidateBudget {
    /// About `n` candidates: half taste neighbours, half item-kNN affinity; popular movies
    /// only stand in for a person without a liked movie (measured: popular candidates crowd
    /// out the personal ones, see README).
    pub fn for_total(n: usize) -> CandidateBudget {
        CandidateBudget {
            profile: n * SHARE_PROFILE / 12,
            item_knn: n * SHARE_ITEM_KNN / 12,
            ease: n * (12 - SHARE_PROFILE - SHARE_ITEM_KNN) / 12,
            popular: n,
        }
    }
}

/// Candidates gathered from several sources, each remembered per movie.
#[derive(Debug, Default)]
pub struct Candidates {
    /// Catalogue positions in the order they were found.
    pub order: Vec<u32>,
    /// The sources of each.
    pub sources: HashMap<u32, Vec<&'static str>>,
}

impl Candidates {
    /// Adds `movie` as proposed by `source` (a movie keeps its first position).
    pub fn add(&mut self, movie: u32, source: &'static str) {
        let sources = self.sources.entry(movie).or_default();
        if sources.is_empty() {
            self.order.push(movie);
        }
        if !sources.contains(&source) {
            sources.push(source);
        }
    }
}

/// The candidates of `person` within `budget`, their rated movies and the movies not
/// `allowed` (a request's filters) excluded: the nearest movies to their taste vector (found
/// by `retrieve`, which applies the same filter), the movies closest to all the movies they
/// liked by item-kNN affinity, and popular movies only when neither source has anything.
pub fn candidates(
    models: &FeatureBuilder,
    person: &Person,
    budget: CandidateBudget,
    retrieve: &dyn Fn(&[f32], usize) -> Vec<Hit>,
    allowed: &dyn Fn(u32) -> bool,
) -> Candidates {
    let history = models.history(person);
    let rated: HashSet<u32> = history.iter().map(|&(m, _)| m).collect();
    let keep = |m: u32| !rated.contains(&m) && allowed(m);
    let mut candidates = Candidates::default();
    if let Some(taste) = models.taste_vector(person) {
        let hits = retrieve(&taste, budget.profile + rated.len());
        for hit in hits
            .iter()
            .filter(|h| keep(h.position as u32))
            .take(budget.profile)
        {
            candidates.add(hit.position as u32, "profile");
        }
    }
    for movie in models.top_affinity(history, budget.item_knn, &keep) {
        candidates.add(movie, "item_knn");
    }
    for movie in models
        .models
        .ease
        .top_for_history(history, budget.ease, &keep)
    {
        candidates.add(movie, "ease");
    }
    if !candidates.order.is_empty() {
        return candidates;
    }
    for position in models.popular(budget.popular, &keep) {
        candidates.add(position, "popular");
    }
    candidates
}
