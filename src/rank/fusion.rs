//! Fusion of the semantic and the keyword retriever's candidates into one relevance per movie,
//! which stage two blends with popularity or a person's score.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The constant k of reciprocal rank fusion (Cormack et al. 2009; Elasticsearch's default).
pub const RRF_K: f32 = 60.0;

/// Weight of the title match against the cosine similarity in [`Fusion::Convex`],
/// chosen on the tuning halves of `tests/queries/` (see the README's search quality table).
pub const KEYWORD_WEIGHT: f32 = 0.2;

/// Share of the title match that depends on how familiar the movie is (see
/// [`familiar_title_match`]); chosen on the tuning halves of `tests/queries/`.
pub const TITLE_FAMILIARITY: f32 = 0.4;

/// What a title named exactly (every word of the query, and nothing else, in one of the
/// movie's titles) adds to its title match: "jaws 2" names "Jaws 2" exactly and "Jaws" only in
/// part, and the sequel must win over the better-known, better-rated original; chosen on the
/// tuning halves of `tests/queries/`.
pub const EXACT_TITLE_BONUS: f32 = 1.0;

/// The title match a fusion uses: `title_match · (1 − f + f·familiarity)`, with f
/// [`TITLE_FAMILIARITY`], so that of two movies a query names equally well ("titanic": 1953
/// and 1997; "the shinning": "The Shining" and "The Thinning"), the widely known one wins;
/// plus [`EXACT_TITLE_BONUS`] for a title named exactly.
pub fn familiar_title_match(title_match: f32, familiarity: f32) -> f32 {
    let exact = if title_match >= 1.0 {
        EXACT_TITLE_BONUS
    } else {
        0.0
    };
    title_match * (1.0 - TITLE_FAMILIARITY + TITLE_FAMILIARITY * familiarity) + exact
}

/// Candidates whose co-rated neighbours [`add_feedback`] follows.
pub const FEEDBACK_DOCS: usize = 10;
/// Co-rated neighbours taken from each of them.
pub const FEEDBACK_NEIGHBOURS: usize = 20;
/// Weight of the feedback against the relevance.
pub const FEEDBACK_WEIGHT: f32 = 0.0;

/// How the two ranked lists combine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fusion {
    /// Reciprocal rank fusion, `Σ 1/(k + rank)`, rescaled so that first in both lists is 1.
    Rrf,
    /// `(1 − w)·cosine + w·title match` (how well the query names the movie's title, see
    /// `KeywordIndex::title_match`); BM25 brings candidates in.
    Convex {
        /// w, the keyword weight.
        keyword_weight: f32,
    },
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Convex {
            keyword_weight: KEYWORD_WEIGHT,
        }
    }
}

/// A candidate of a query or of a movie, with how relevant stage one found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Relevant {
    /// Catalogue position.
    pub movie: u32,
    /// Relevance, comparable across the candidates of one request.
    pub relevance: f32,
    /// Cosine similarity to the query vector, when there is one.
    pub similarity: Option<f32>,
    /// BM25 score, when the keyword index found the movie.
    pub bm25: Option<f32>,
    /// Which retrievers found it.
    pub sources: Vec<&'static str>,
}

/// Nearest-neighbour hits (position, cosine; best first) alone: relevance is the cosine;
/// `source` names the retriever ("semantic" for a query, "movie" for `similar`).
pub fn semantic_only(semantic: &[(u32, f32)], source: &'static str) -> Vec<Relevant> {
    semantic
        .iter()
        .map(|&(movie, cosine)| Relevant {
            movie,
            relevance: cosine,
            similarity: Some(cosine),
            bm25: None,
            sources: vec![source],
        })
        .collect()
}

/// Keyword hits (position, BM25, best first) alone: relevance is BM25 over the best BM25.
pub fn keyword_only(keyword: &[(u32, f32)]) -> Vec<Relevant> {
    let max = keyword.first().map_or(1.0, |h| h.1).max(f32::MIN_POSITIVE);
    keyword
        .iter()
        .map(|&(movie, bm25)| Relevant {
            movie,
            relevance: bm25 / max,
            similarity: None,
            bm25: Some(bm25),
            sources: vec!["keyword"],
        })
        .collect()
}

/// Fuses semantic hits (position, cosine; best first) and keyword hits (position, BM25; best
/// first); `similarity` gives the cosine of a movie only the keyword index found,
/// `title_match` how well the query names a movie's title.
pub fn fuse(
    semantic: &[(u32, f32)],
    keyword: &[(u32, f32)],
    similarity: &dyn Fn(u32) -> f32,
    title_match: &dyn Fn(u32) -> f32,
    fusion: Fusion,
) -> Vec<Relevant> {
    let mut fused: Vec<Relevant> = Vec::with_capacity(semantic.len() + keyword.len());
    let mut slot: HashMap<u32, usize> = HashMap::with_capacity(semantic.len() + keyword.len());
    let rrf = |rank: usize| 1.0 / (RRF_K + rank as f32 + 1.0);
    let rrf_scale = (RRF_K + 1.0) / 2.0;
    // A convex fusion's relevance; reciprocal rank fusion adds up ranks instead.
    let convex = |movie: u32, cosine: f32| match fusion {
        Fusion::Rrf => 0.0,
        Fusion::Convex { keyword_weight } => {
            (1.0 - keyword_weight) * cosine + keyword_weight * title_match(movie)
        }
    };
    for (rank, &(movie, cosine)) in semantic.iter().enumerate() {
        slot.insert(movie, fused.len());
        let relevance = match fusion {
            Fusion::Rrf => rrf(rank) * rrf_scale,
            Fusion::Convex { .. } => convex(movie, cosine),
        };
        fused.push(Relevant {
            movie,
            relevance,
            similarity: Some(cosine),
            bm25: None,
            sources: vec!["semantic"],
        });
    }
    for (rank, &(movie, bm25)) in keyword.iter().enumerate() {
        let i = *slot.entry(movie).or_insert_with(|| {
            let cosine = similarity(movie);
            fused.push(Relevant {
                movie,
                relevance: convex(movie, cosine),
                similarity: Some(cosine),
                bm25: None,
                sources: Vec::new(),
            });
            fused.len() - 1
        });
        let entry = &mut fused[i];
        entry.bm25 = Some(bm25);
        entry.sources.push("keyword");
        if fusion == Fusion::Rrf {
            entry.relevance += rrf(rank) * rrf_scale;
        }
    }
    fused
}

/// Pseudo-relevance feedback through the rating graph: each of the first `docs` candidates
/// (by relevance) lends its co-rated neighbours (`neighbours`, best first, similarities in
/// [0, 1]) the candidate's cosine times the neighbours' similarity; a movie's feedback is the
/// sum over lenders divided by the lenders' summed cosine. Each candidate's relevance gains
/// `weight` times its feedback; neighbours not yet candidates join (source "co-rated") with
/// their cosine from `similarity`, if `admit` lets them.
pub fn add_feedback(
    relevant: &mut Vec<Relevant>,
    docs: usize,
    weight: f32,
    neighbours: &dyn Fn(u32) -> Vec<(u32, f32)>,
    similarity: &dyn Fn(u32) -> f32,
    admit: &dyn Fn(u32) -> bool,
) {
    if weight <= 0.0 || relevant.is_empty() {
        return;
    }
    let mut order: Vec<usize> = (0..relevant.len()).collect();
    order.sort_by(|&a, &b| {
        relevant[b]
            .relevance
            .total_cmp(&relevant[a].relevance)
            .then(relevant[a].movie.cmp(&relevant[b].movie))
    });
    let lenders: Vec<(u32, f32)> = order
        .iter()
        .take(docs)
        .map(|&i| {
            (
                relevant[i].movie,
                relevant[i].similarity.unwrap_or(0.0).max(0.0),
            )
        })
        .collect();
    let total: f32 = lenders.iter().map(|l| l.1).sum();
    if total <= 0.0 {
        return;
    }
    let mut feedback: HashMap<u32, f32> = HashMap::new();
    for &(lender, cosine) in &lenders {
        for (movie, similarity) in neighbours(lender) {
            *feedback.entry(movie).or_default() += cosine * similarity / total;
        }
    }
    for r in relevant.iter_mut() {
        if let Some(f) = feedback.remove(&r.movie) {
            r.relevance += weight * f;
        }
    }
    let mut joining: Vec<(u32, f32)> = feedback
        .into_iter()
        .filter(|&(movie, _)| admit(movie))
        .collect();
    joining.sort_by_key(|&(movie, _)| movie);
    for (movie, f) in joining {
        let cosine = similarity(movie);
        relevant.push(Relevant {
            movie,
            relevance: cosine + weight * f,
            similarity: Some(cosine),
            bm25: None,
            sources: vec!["co-rated"],
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_rewards_agreement_and_keeps_both_lists() {
        let semantic = [(1, 0.9), (2, 0.8), (3, 0.7)];
        let keyword = [(3, 12.0), (4, 6.0)];
        let fused = fuse(&semantic, &keyword, &|_| 0.1, &|_| 0.0, Fusion::Rrf);
        let by_movie: HashMap<u32, &Relevant> = fused.iter().map(|r| (r.movie, r)).collect();
        assert_eq!(fused.len(), 4);
        // Movie 3: third semantically, first by keyword, beats movie 1 (first in one list).
        assert!(by_movie[&3].relevance > by_movie[&1].relevance);
        assert_eq!(by_movie[&3].sources, vec!["semantic", "keyword"]);
        assert_eq!(by_movie[&4].sources, vec!["keyword"]);
        assert_eq!(by_movie[&4].similarity, Some(0.1));
        assert_eq!(by_movie[&1].bm25, None);
        let first_in_both = fuse(&[(7, 0.5)], &[(7, 3.0)], &|_| 0.0, &|_| 0.0, Fusion::Rrf);
        assert!((first_in_both[0].relevance - 1.0).abs() < 1e-6);
    }

    #[test]
    fn familiar_and_exact_titles_match_more() {
        let f = TITLE_FAMILIARITY;
        // Equal matches: the familiar movie's is higher.
        assert!(familiar_title_match(0.5, 1.0) > familiar_title_match(0.5, 0.2));
        assert!((familiar_title_match(0.5, 0.0) - 0.5 * (1.0 - f)).abs() < 1e-6);
        // An exact title beats a famous partial one ("jaws 2": Jaws 2 over Jaws).
        assert!(familiar_title_match(1.0, 0.3) > familiar_title_match(0.5, 1.0) + 0.5);
        assert!((familiar_title_match(1.0, 1.0) - (1.0 + EXACT_TITLE_BONUS)).abs() < 1e-6);
        assert_eq!(familiar_title_match(0.0, 1.0), 0.0);
    }

    #[test]
    fn feedback_lifts_what_the_first_hits_are_rated_with() {
        let candidate = |movie: u32, cosine: f32| Relevant {
            movie,
            relevance: cosine,
            similarity: Some(cosine),
            bm25: None,
            sources: vec!["semantic"],
        };
        let mut relevant = vec![candidate(1, 0.6), candidate(2, 0.4), candidate(3, 0.2)];
        // The first two lend: 1 → {3: 0.5, 9: 1.0}, 2 → {9: 0.5}; 3 is not among the lenders.
        let neighbours = |m: u32| match m {
            1 => vec![(3, 0.5), (9, 1.0)],
            2 => vec![(9, 0.5)],
            _ => vec![(8, 1.0)],
        };
        add_feedback(&mut relevant, 2, 0.5, &neighbours, &|_| 0.1, &|m| m != 7);
        let by_movie: HashMap<u32, &Relevant> = relevant.iter().map(|r| (r.movie, r)).collect();
        assert_eq!(relevant.len(), 4, "9 joins, 8 lent by no lender");
        let f3 = 0.6 * 0.5 / 1.0;
        let f9 = (0.6 * 1.0 + 0.4 * 0.5) / 1.0;
        assert!((by_movie[&3].relevance - (0.2 + 0.5 * f3)).abs() < 1e-6);
        assert!((by_movie[&9].relevance - (0.1 + 0.5 * f9)).abs() < 1e-6);
        assert_eq!(by_movie[&9].sources, vec!["co-rated"]);
        assert_eq!(by_movie[&1].relevance, 0.6, "nobody lends to 1");
        // A movie the admission refuses (rated, filtered out) does not join.
        let mut relevant = vec![candidate(1, 0.6)];
        add_feedback(&mut relevant, 2, 0.5, &|_| vec![(7, 1.0)], &|_| 0.1, &|m| {
            m != 7
        });
        assert_eq!(relevant.len(), 1);
        // Weight 0 changes nothing.
        let mut relevant = vec![candidate(1, 0.6)];
        add_feedback(&mut relevant, 2, 0.0, &neighbours, &|_| 0.1, &|_| true);
        assert_eq!(relevant, vec![candidate(1, 0.6)]);
    }

    #[test]
    fn convex_blends_cosine_and_title_match() {
        let fusion = Fusion::Convex {
            keyword_weight: 0.25,
        };
        let title_match = |m: u32| if m == 2 { 1.0 } else { 0.5 };
        let fused = fuse(
            &[(1, 0.8)],
            &[(2, 10.0), (1, 5.0)],
            &|_| 0.4,
            &title_match,
            fusion,
        );
        let relevance: HashMap<u32, f32> = fused.iter().map(|r| (r.movie, r.relevance)).collect();
        assert!((relevance[&1] - (0.75 * 0.8 + 0.25 * 0.5)).abs() < 1e-6);
        assert!((relevance[&2] - (0.75 * 0.4 + 0.25 * 1.0)).abs() < 1e-6);
        assert_eq!(fused[1].bm25, Some(10.0));
        let alone = keyword_only(&[(5, 8.0), (6, 2.0)]);
        assert_eq!((alone[0].relevance, alone[1].relevance), (1.0, 0.25));
        let alone = semantic_only(&[(5, 0.5)], "movie");
        assert_eq!(
            (alone[0].relevance, alone[0].sources.clone()),
            (0.5, vec!["movie"])
        );
    }
}
