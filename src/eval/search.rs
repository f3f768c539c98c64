//! Search quality on judged query sets (`tests/queries/`): navigational queries (a title typed
//! as people type it; Hit@1 and MRR@10) and descriptive ones (Recall@10 and Hit@10), for each
//! retrieval mode. Each set is cut in two: the even lines are the tuning half (fusion weights
//! were chosen on it), the odd lines the held-out half the README reports.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::documents::DocumentTemplate;
use crate::engine::{Engine, SearchMode, SearchRequest, DEFAULT_QUERY_CANDIDATES};
use crate::error::{Error, Result};
use crate::eval::metrics::{ranking_metrics, reciprocal_rank};
use crate::rank::fusion::{Fusion, FEEDBACK_WEIGHT};
use crate::rank::DEFAULT_ALPHA;

/// The navigational set's file name.
pub const NAVIGATIONAL_FILE: &str = "navigational.jsonl";
/// The descriptive set's file name.
pub const DESCRIPTIVE_FILE: &str = "descriptive.jsonl";
/// The cut-off of the search metrics.
pub const SEARCH_K: usize = 10;

/// One judged query: its text and the titles (as MovieLens writes them) that answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgedQuery {
    /// The query as typed.
    pub query: String,
    /// Relevant movies by MovieLens title, year included.
    pub relevant: Vec<String>,
}

/// Reads a JSON-lines query set; blank lines are skipped.
pub fn read_queries(path: &Path) -> Result<Vec<JudgedQuery>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let query: JudgedQuery =
                serde_json::from_str(line).map_err(|e| Error::MalformedLine {
                    file: path.to_path_buf(),
                    line: i + 1,
                    problem: e.to_string(),
                })?;
            if query.relevant.is_empty() {
                return Err(Error::MalformedLine {
                    file: path.to_path_buf(),
                    line: i + 1,
                    problem: "no relevant movie".into(),
                });
            }
            Ok(query)
        })
        .collect()
}

/// A way of answering queries that the evaluation compares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchVariant {
    /// Its name in the tables.
    pub name: &'static str,
    /// The retrieval mode.
    pub mode: SearchMode,
    /// The fusion (hybrid only).
    pub fusion: Fusion,
    /// Exact scan instead of HNSW.
    pub exact: bool,
    /// Stage-one candidates.
    pub candidates: usize,
    /// The query rules on.
    pub intent: bool,
    /// Weight of the rating-graph feedback.
    pub feedback: f32,
    /// Weight of the query relevance against popularity.
    pub alpha: f32,
}

impl SearchVariant {
    /// A variant of `mode` with the engine's defaults otherwise.
    pub fn of(name: &'static str, mode: SearchMode) -> SearchVariant {
        SearchVariant {
            name,
            mode,
            fusion: Fusion::default(),
            exact: false,
            candidates: DEFAULT_QUERY_CANDIDATES,
            intent: true,
            feedback: FEEDBACK_WEIGHT,
            alpha: DEFAULT_ALPHA,
        }
    }

    /// The same variant under another name.
    pub fn with_name(self, name: &'static str) -> SearchVariant {
        SearchVariant { name, ..self }
    }

    /// The same variant under another name, without the query rules and the feedback.
    pub fn literal(self, name: &'static str) -> SearchVariant {
        SearchVariant {
            name,
            intent: false,
            feedback: 0.0,
            ..self
        }
    }
}

/// The rating-graph feedback weight the `hybrid feedback` row shows (off in serving: it did
/// not help on the tuning halves).
pub const TRIED_FEEDBACK: f32 = 0.2;

/// Notebook 004's weight of the similarity against popularity.
pub const SEED_ALPHA: f32 = 0.7;

/// Notebook 004's recipe (on an index built with `--document-template seed`): semantic only,
/// brute force, its 50 candidates, `0.7·similarity + 0.3·WR/5`.
pub fn seed_recipe() -> SearchVariant {
    SearchVariant {
        exact: true,
        candidates: 50,
        alpha: SEED_ALPHA,
        ..SearchVariant::of("semantic", SearchMode::Semantic).literal("seed recipe")
    }
}

/// The variants compared on an index whose documents follow `template`: each mode taking the
/// query literally (no rules, no feedback), hybrid by reciprocal rank fusion, hybrid as served
/// (with the query rules), hybrid with the rating-graph feedback, and on a seed-template index
/// the seed's own recipe.
pub fn default_variants(template: DocumentTemplate) -> Vec<SearchVariant> {
    let mut variants = Vec::new();
    if template == DocumentTemplate::Seed {
        variants.push(seed_recipe());
    }
    let hybrid = SearchVariant::of("hybrid", SearchMode::Hybrid);
    variants.extend([
        SearchVariant::of("semantic", SearchMode::Semantic).literal("semantic"),
        SearchVariant::of("keyword", SearchMode::Keyword).literal("keyword"),
        SearchVariant {
            fusion: Fusion::Rrf,
            ..hybrid.literal("hybrid rrf")
        },
        hybrid.literal("hybrid literal"),
        hybrid,
        SearchVariant {
            feedback: TRIED_FEEDBACK,
            ..hybrid.with_name("hybrid feedback")
        },
    ]);
    variants
}

/// The metrics of one variant on one half of one set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchQuality {
    /// "navigational" or "descriptive".
    pub set: &'static str,
    /// "tune" (even lines) or "held-out" (odd lines).
    pub half: &'static str,
    /// The variant's name.
    pub variant: &'static str,
    /// Number of queries.
    pub queries: usize,
    /// Share of queries whose first result is relevant.
    pub hit_at_1: f64,
    /// Mean reciprocal rank of the first relevant result within the top 10.
    pub mrr_at_10: f64,
    /// Share of queries with a relevant result in the top 10.
    pub hit_at_10: f64,
    /// Mean share of each query's relevant movies in its top 10.
    pub recall_at_10: f64,
}

/// The catalogue positions of a query's relevant titles; an unknown title is an error.
fn relevant_ids(engine: &Engine, query: &JudgedQuery, set: &Path) -> Result<Vec<u32>> {
    let catalog = &engine.index().catalog().movies;
    query
        .relevant
        .iter()
        .map(|title| {
            catalog
                .iter()
                .find(|e| &e.movie.title == title)
                .map(|e| e.movie.id)
                .ok_or_else(|| Error::InvalidArgument {
                    name: set.display().to_string(),
                    message: format!("'{title}' (for '{}') is not in the catalogue", query.query),
                })
        })
        .collect()
}

/// Evaluates `variants` on both sets in `dir`, both halves of each.
pub fn evaluate_search(
    engine: &Engine,
    dir: &Path,
    variants: &[SearchVariant],
) -> Result<Vec<SearchQuality>> {
    let mut rows = Vec::new();
    for (set, file) in [
        ("navigational", NAVIGATIONAL_FILE),
        ("descriptive", DESCRIPTIVE_FILE),
    ] {
        let path = dir.join(file);
        let queries = read_queries(&path)?;
        let judged: Vec<(&JudgedQuery, Vec<u32>)> = queries
            .iter()
            .map(|q| Ok((q, relevant_ids(engine, q, &path)?)))
            .collect::<Result<_>>()?;
        for variant in variants {
            for (half, parity) in [("tune", 0), ("held-out", 1)] {
                let mut row = SearchQuality {
                    set,
                    half,
                    variant: variant.name,
                    queries: 0,
                    hit_at_1: 0.0,
                    mrr_at_10: 0.0,
                    hit_at_10: 0.0,
                    recall_at_10: 0.0,
                };
                for (query, relevant) in judged.iter().skip(parity).step_by(2) {
                    let mut request = SearchRequest::new(query.query.clone());
                    request.k = SEARCH_K;
                    request.mode = variant.mode;
                    request.fusion = variant.fusion;
                    request.exact = variant.exact;
                    request.candidates = variant.candidates;
                    request.intent = variant.intent;
                    request.feedback = variant.feedback;
                    request.alpha = variant.alpha;
                    let ranked: Vec<bool> = engine
                        .search(&request)?
                        .results
                        .iter()
                        .map(|r| relevant.contains(&r.movie_id))
                        .collect();
                    // Precision is not reported; its denominator does not matter.
                    let metrics = ranking_metrics(&ranked, relevant.len(), SEARCH_K, SEARCH_K)
                        .unwrap_or_default();
                    row.queries += 1;
                    row.hit_at_1 += reciprocal_rank(&ranked, 1);
                    row.mrr_at_10 += reciprocal_rank(&ranked, SEARCH_K);
                    row.hit_at_10 += metrics.hit_rate;
                    row.recall_at_10 += metrics.recall;
                }
                let n = row.queries.max(1) as f64;
                row.hit_at_1 /= n;
                row.mrr_at_10 /= n;
                row.hit_at_10 /= n;
                row.recall_at_10 /= n;
                rows.push(row);
            }
        }
    }
    Ok(rows)
}
