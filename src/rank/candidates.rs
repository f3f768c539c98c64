//! Stage one of `recommend`: candidates from a person's history, each with the sources that
//! proposed it. The same code feeds serving, the candidate ranker's training and the
//! full-catalogue evaluation.

use std::collections::{HashMap, HashSet};

use super::features::{FeatureBuilder, Person};
use crate::ann::Hit;

/// The budget `recommend` uses.
pub const DEFAULT_CANDIDATES: usize = 300;

/// The personal candidate sources, in the order of their lists and weights.
pub const SOURCES: [&str; 4] = ["ials", "ease", "item_knn", "profile"];

/// Weights of the sources in [`fuse`] ([`SOURCES`] order): alone at 300 candidates iALS
/// finds 0.73 of the relevant test movies, EASE 0.71, item-kNN 0.65 and the taste vector
/// 0.14 (split seed 1, README), so the strong sources weigh most while the taste vector
/// keeps some content-based candidates (other weights and offsets moved NDCG@10 by less
/// than 0.003 on seed 1).
const SOURCE_WEIGHTS: [usize; 4] = [4, 4, 2, 1];

/// The rank offset of reciprocal-rank fusion (60, as in Cormack et al. 2009).
const FUSION_K: f64 = 60.0;

/// How many distinct candidates stage one returns, and how the sources share them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CandidateBudget {
    /// Distinct candidates to return (fewer only when the sources run dry).
    pub total: usize,
    /// Weight of each source in the fusion ([`SOURCES`] order; 0: not asked).
    pub weights: [usize; 4],
    /// Most popular movies for a person without a liked movie.
    pub popular: usize,
}

impl CandidateBudget {
    /// `n` candidates from every source weighted by [`SOURCE_WEIGHTS`]; popular movies only stand in for a
    /// person without a liked movie (measured: popular candidates crowd out the personal
    /// ones, see README).
    pub fn for_total(n: usize) -> CandidateBudget {
        CandidateBudget {
            total: n,
            weights: SOURCE_WEIGHTS,
            popular: n,
        }
    }

    /// `n` candidates from `source` (one of [`SOURCES`]) alone, popular movies only for a
    /// person without a liked movie: to measure each source's recall.
    pub fn alone(source: &str, n: usize) -> CandidateBudget {
        CandidateBudget {
            total: n,
            weights: SOURCES.map(|s| usize::from(s == source)),
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
/// `allowed` (a request's filters) excluded. Each source ranks up to `budget.total` movies —
/// iALS, EASE, item-kNN affinity to the movies they liked, and the nearest to their taste
/// vector (found by `retrieve`, which applies the same filter) — and [`fuse`] keeps the
/// `total` best. Popular movies only when no source has anything.
pub fn candidates(
    models: &FeatureBuilder,
    person: &Person,
    budget: CandidateBudget,
    retrieve: &dyn Fn(&[f32], usize) -> Vec<Hit>,
    allowed: &dyn Fn(u32) -> bool,
) -> Candidates {
    let lists = source_lists(models, person, budget, retrieve, allowed);
    candidates_from(models, person, &lists, budget, allowed)
}

/// Each source's ranked list for `person` ([`SOURCES`] order, best first, up to
/// `budget.total` movies; empty where its weight is 0), rated movies and those not `allowed`
/// left out. Every source
/// ranks by a deterministic score, so its top m is the first m of its top n: an evaluation
/// computes the lists once at its largest budget and cuts them for each smaller one.
pub fn source_lists(
    models: &FeatureBuilder,
    person: &Person,
    budget: CandidateBudget,
    retrieve: &dyn Fn(&[f32], usize) -> Vec<Hit>,
    allowed: &dyn Fn(u32) -> bool,
) -> Vec<Vec<u32>> {
    let n = budget.total;
    let history = models.history(person);
    // A sorted list, not a hash set: `keep` is asked of every movie of the catalogue.
    let mut rated: Vec<u32> = history.iter().map(|&(m, _)| m).collect();
    rated.sort_unstable();
    let keep = |m: u32| rated.binary_search(&m).is_err() && allowed(m);
    let user = match person {
        Person::User(user) => Some(*user),
        Person::Profile(_) => None,
    };
    SOURCES
        .iter()
        .zip(budget.weights)
        .map(|(&source, weight)| {
            if weight == 0 {
                return Vec::new();
            }
            match source {
                "ials" => models.models.ials.top_for(user, history, n, &keep),
                "ease" => models.models.ease.top_for_history(history, n, &keep),
                "item_knn" => models.top_affinity(history, n, &keep),
                _ => models.taste_vector(person).map_or_else(Vec::new, |taste| {
                    retrieve(&taste, n + rated.len())
                        .into_iter()
                        .map(|h| h.position as u32)
                        .filter(|&m| keep(m))
                        .take(n)
                        .collect()
                }),
            }
        })
        .collect()
}

/// [`candidates`] from source lists made by [`source_lists`] for at least `budget.total`
/// movies: each cut at `budget.total`, fused with `budget.weights`; popular movies only when
/// no source has anything.
pub fn candidates_from(
    models: &FeatureBuilder,
    person: &Person,
    lists: &[Vec<u32>],
    budget: CandidateBudget,
    allowed: &dyn Fn(u32) -> bool,
) -> Candidates {
    let n = budget.total;
    let cut: Vec<Vec<u32>> = lists
        .iter()
        .map(|list| list[..n.min(list.len())].to_vec())
        .collect();
    let mut candidates = fuse(&cut, &budget.weights, n);
    if !candidates.order.is_empty() {
        return candidates;
    }
    let rated: HashSet<u32> = models.history(person).iter().map(|&(m, _)| m).collect();
    let keep = |m: u32| !rated.contains(&m) && allowed(m);
    for position in models.popular(budget.popular, &keep) {
        candidates.add(position, "popular");
    }
    candidates
}

/// Reciprocal-rank fusion (Cormack et al. 2009) of ranked `lists` (best first), the list of
/// source `s` weighted by `weights[s]`: a movie scores `Σ weight / (FUSION_K + rank)` over
/// the lists holding it, so one several sources rank high comes first. The `n` best (ties to
/// the lower position), each with every source whose list holds it, in [`SOURCES`] order.
pub fn fuse(lists: &[Vec<u32>], weights: &[usize], n: usize) -> Candidates {
    let mut fused: HashMap<u32, (f64, Vec<usize>)> = HashMap::new();
    for (s, (list, &weight)) in lists.iter().zip(weights).enumerate() {
        if weight == 0 {
            continue;
        }
        for (rank, &movie) in list.iter().enumerate() {
            let entry = fused.entry(movie).or_default();
            entry.0 += weight as f64 / (FUSION_K + rank as f64);
            entry.1.push(s);
        }
    }
    let scored: Vec<(u32, f64)> = fused.iter().map(|(&m, (score, _))| (m, *score)).collect();
    let mut candidates = Candidates::default();
    for (movie, _) in crate::ann::top_by(scored, n, |&(m, s)| (s, m as usize)) {
        for &s in fused.get(&movie).map_or(&[][..], |e| e.1.as_slice()) {
            candidates.add(movie, SOURCES[s]);
        }
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_puts_movies_several_sources_rank_high_first() {
        // iALS: 1, 2, 3; EASE: 2, 4; item-kNN: 5; the taste vector: nothing.
        let lists = vec![vec![1, 2, 3], vec![2, 4], vec![5], vec![]];
        let fused = fuse(&lists, &[4, 4, 2, 1], 4);
        // 2: 4/61 + 4/60; 1: 4/60; 4: 4/61; 5: 2/60; 3: 4/62.
        assert_eq!(fused.order, vec![2, 1, 4, 3]);
        assert_eq!(fused.sources[&2], vec!["ials", "ease"]);
        assert_eq!(fused.sources[&4], vec!["ease"]);
        // A source weighted 0 proposes nothing; n bounds the result.
        let alone = fuse(&lists, &[0, 0, 1, 0], 10);
        assert_eq!(alone.order, vec![5]);
        assert_eq!(fuse(&lists, &[1, 1, 1, 1], 2).order.len(), 2);
    }
}
