//! Fusion of the semantic and the keyword retriever's candidates into one relevance per movie,
//! which stage two blends with popularity or a person's score.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The constant k of reciprocal rank fusion (Cormack et al. 2009; Elasticsearch's default).
pub const RRF_K: f32 = 60.0;

/// Weight of the title match against the cosine similarity in [`Fusion::Convex`],
/// chosen on the tuning halves of `tests/queries/` (see the README's search quality table).
pub const KEYWORD_WEIGHT: f32 = 0.2;

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
    for (rank, &(movie, cosine)) in semantic.iter().enumerate() {
        slot.insert(movie, fused.len());
        let relevance = match fusion {
            Fusion::Rrf => rrf(rank) * rrf_scale,
            Fusion::Convex { keyword_weight } => {
                (1.0 - keyword_weight) * cosine + keyword_weight * title_match(movie)
            }
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
                relevance: match fusion {
                    Fusion::Rrf => 0.0,
                    Fusion::Convex { keyword_weight } => {
                        (1.0 - keyword_weight) * cosine + keyword_weight * title_match(movie)
                    }
                },
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
