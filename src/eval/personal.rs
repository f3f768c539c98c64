//! The personal-search protocol: does a person's history make their search better?
//!
//! The catalogue statistics and the serving stack (with its personal ranker) are trained on the
//! training part of a seeded split only. For a seeded sample of test users, each
//! [`QueryKind`] makes one query from one of their held-out liked movies (rated ≥ the
//! threshold): its genres, its tags, or a title-free description. Relevant: every held-out
//! movie the user liked. Each variant answers through the engine's own search (or recommend),
//! so the protocol measures what serving does. Besides Hit@K, Recall@K and NDCG@K it reports
//! the hits among on-topic relevant movies alone, and the topic precision: the share of results
//! on the query's topic, so that personalisation cannot win by leaving it. A movie is on topic
//! when it has at least half (rounded up) of the source movie's genres.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use super::metrics::{ranking_metrics, RankingMetrics};
use super::protocol::EvalConfig;
use crate::catalog::catalog_of_rows;
use crate::config::Paths;
use crate::data::split::{Split, SplitSizes};
use crate::data::Dataset;
use crate::documents::QueryKind;
use crate::engine::recommend::recommend_filtered;
use crate::engine::{Engine, PersonSpec, SearchRequest};
use crate::error::Result;
use crate::fsutil::ms;
use crate::models::Interactions;
use crate::rank::personal::{on_topic, queries_from, sample_people, LikedQuery};
use crate::rank::stack::{Person, ServingStack, StackKind};

/// Test users sampled per split seed (each asks up to one query of each kind).
pub const DEFAULT_TEST_USERS: usize = 200;

/// One way of answering a person's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// The query alone.
    Plain,
    /// The default personal search: the personal ranker over the query's pool and the
    /// history-aware candidates.
    Personal,
    /// What personal search did before the personal ranker: the logistic stack's P(liked |
    /// rated) blended half and half with the relevance.
    LogisticBlend,
    /// No query at all: `recommend`'s candidates restricted to the query's topic, ranked by the
    /// candidate ranker.
    HistoryOnTopic,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::Plain,
        Variant::Personal,
        Variant::LogisticBlend,
        Variant::HistoryOnTopic,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain search",
            Variant::Personal => "personal search",
            Variant::LogisticBlend => "personal, logistic blend 0.5",
            Variant::HistoryOnTopic => "history only, on topic",
        }
    }
}

/// One variant's mean metrics over one kind of query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonalSearchRow {
    /// The query kind ("genres", "tags", "description") or "all".
    pub queries: &'static str,
    /// The variant.
    pub variant: &'static str,
    /// Queries answered.
    pub count: usize,
    /// Hit@K, Recall@K, NDCG@K against every held-out liked movie.
    pub metrics: RankingMetrics,
    /// Hit@K against the on-topic held-out liked movies (queries that have one).
    pub on_topic_hit_rate: f64,
    /// Mean share of the top K on the query's topic.
    pub topic_precision: f64,
}

/// The outcome of the personal-search protocol for one split seed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonalSearchReport {
    /// "personal-search".
    pub protocol: &'static str,
    /// K, threshold and seed (of the split, the stack and the sample).
    pub config: EvalConfig,
    /// Split sizes.
    pub split: SplitSizes,
    /// Test users sampled.
    pub users: usize,
    /// Rows per query kind and variant, then over all kinds.
    pub rows: Vec<PersonalSearchRow>,
    /// Milliseconds per stage.
    pub timings_ms: BTreeMap<String, f64>,
}

/// A test query: who asks, what, and which held-out movies answer it.
struct TestQuery {
    user: u32,
    kind: QueryKind,
    text: String,
    /// The genres of the movie the query was made from: its topic.
    topic: Vec<String>,
    relevant: Vec<u32>,
    on_topic: Vec<u32>,
}

/// Runs the protocol on one split: `engine` supplies the index files and the encoder; the
/// catalogue statistics and the stack are retrained on the split's training part.
pub fn evaluate_personal_search(
    engine: &Engine,
    paths: &Paths,
    dataset: &Dataset,
    split: &Split,
    config: &EvalConfig,
    users: usize,
) -> Result<PersonalSearchReport> {
    let total = Instant::now();
    let mut timings = BTreeMap::new();
    let t = Instant::now();
    let train_rows = split.train_full();
    let embed = |texts: &[String]| engine.encoder().embed_texts(texts);
    let stack = ServingStack::fit_on(
        dataset,
        &train_rows,
        engine.index().flat(),
        Some(&embed),
        config.seed,
    )?;
    let documents: Vec<String> = engine
        .index()
        .catalog()
        .movies
        .iter()
        .map(|e| e.document.clone())
        .collect();
    let catalog = catalog_of_rows(dataset, &train_rows, &documents);
    let trained = engine.trained_on(paths, catalog, stack)?;
    timings.insert("fit".into(), ms(t));

    let queries = test_queries(dataset, split, config, users);
    let t = Instant::now();
    // Per query, per variant: (metrics, on-topic hit, topic precision).
    let outcomes: Vec<Vec<(RankingMetrics, Option<f64>, f64)>> = queries
        .par_iter()
        .map(|query| {
            Variant::ALL
                .iter()
                .map(|&variant| {
                    let ranked = answer(&trained, dataset, query, variant, config.k)?;
                    Ok(score(dataset, query, &ranked, config.k))
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    timings.insert("queries".into(), ms(t));

    let mut rows = Vec::new();
    let kinds = QueryKind::ALL.map(|k| (k.name(), Some(k)));
    for (name, kind) in kinds.into_iter().chain([("all", None)]) {
        for (v, variant) in Variant::ALL.iter().enumerate() {
            let chosen: Vec<&(RankingMetrics, Option<f64>, f64)> = queries
                .iter()
                .zip(&outcomes)
                .filter(|(q, _)| kind.is_none_or(|k| q.kind == k))
                .map(|(_, o)| &o[v])
                .collect();
            let n = chosen.len().max(1) as f64;
            let mut sum = RankingMetrics::default();
            for (m, _, _) in &chosen {
                sum.add(m);
            }
            let on_topic: Vec<f64> = chosen.iter().filter_map(|(_, h, _)| *h).collect();
            rows.push(PersonalSearchRow {
                queries: name,
                variant: variant.name(),
                count: chosen.len(),
                metrics: sum.divided(n),
                on_topic_hit_rate: on_topic.iter().sum::<f64>() / on_topic.len().max(1) as f64,
                topic_precision: chosen.iter().map(|(_, _, p)| p).sum::<f64>() / n,
            });
        }
    }
    timings.insert("total".into(), ms(total));
    let users = queries.iter().map(|q| q.user).collect::<HashSet<_>>().len();
    Ok(PersonalSearchReport {
        protocol: "personal-search",
        config: *config,
        split: split.sizes(),
        users,
        rows,
        timings_ms: timings,
    })
}

/// The seeded test queries: up to `users` test users with a training history and a held-out
/// liked movie, one query of each kind each (from a liked movie that has text of that kind).
fn test_queries(
    dataset: &Dataset,
    split: &Split,
    config: &EvalConfig,
    users: usize,
) -> Vec<TestQuery> {
    let train = Interactions::from_rows(&dataset.ratings, &split.train_full());
    let test = Interactions::from_rows(&dataset.ratings, &split.test);
    let known: HashSet<u32> = train.user.iter().copied().collect();
    let liked = test.movies_by_user(config.threshold);
    let people: Vec<u32> = liked
        .keys()
        .copied()
        .filter(|u| known.contains(u))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let tags = dataset.tags_by_movie();
    let genres = |m: u32| &dataset.movies[m as usize].genres;
    let mut queries = Vec::new();
    for user in sample_people(people, users, &mut rng) {
        let relevant = &liked[&user];
        for LikedQuery { kind, source, text } in
            queries_from(&dataset.movies, &tags, relevant, &mut rng)
        {
            let topic = genres(source).clone();
            let on_topic_movies = relevant
                .iter()
                .copied()
                .filter(|&m| on_topic(genres(m), &topic))
                .collect();
            queries.push(TestQuery {
                user,
                kind,
                text,
                topic,
                relevant: relevant.clone(),
                on_topic: on_topic_movies,
            });
        }
    }
    queries
}

/// The top `k` (catalogue positions) of `variant` for `query`.
fn answer(
    engine: &Engine,
    dataset: &Dataset,
    query: &TestQuery,
    variant: Variant,
    k: usize,
) -> Result<Vec<u32>> {
    let user = PersonSpec {
        user: Some(query.user),
        ..PersonSpec::default()
    };
    let mut request = SearchRequest::new(query.text.clone());
    request.k = k;
    match variant {
        Variant::Plain => {}
        Variant::Personal => request.person = user,
        Variant::LogisticBlend => {
            request.person = user;
            request.stack = Some(StackKind::Logistic);
            request.personal_weight = Some(0.5);
        }
        Variant::HistoryOnTopic => {
            let stack = engine.stack()?;
            let index = engine.index();
            let allowed = |m: u32| on_topic(&dataset.movies[m as usize].genres, &query.topic);
            let retrieve =
                |taste: &[f32], n: usize| index.flat().search(taste, n, &|p| allowed(p as u32));
            let person = Person::User(query.user);
            let response = recommend_filtered(index, stack, &person, k, None, &retrieve, &allowed);
            return Ok(positions(engine, &response));
        }
    }
    Ok(positions(engine, &engine.search(&request)?))
}

/// The catalogue positions of a response's results.
fn positions(engine: &Engine, response: &crate::engine::Response) -> Vec<u32> {
    let catalog = engine.index().catalog();
    response
        .results
        .iter()
        .filter_map(|r| catalog.position(r.movie_id))
        .map(|p| p as u32)
        .collect()
}

/// The metrics of one answer: against every relevant movie, the on-topic hit (None when no
/// relevant movie is on topic), and the topic precision.
fn score(
    dataset: &Dataset,
    query: &TestQuery,
    ranked: &[u32],
    k: usize,
) -> (RankingMetrics, Option<f64>, f64) {
    let top = &ranked[..k.min(ranked.len())];
    let hits: Vec<bool> = top.iter().map(|m| query.relevant.contains(m)).collect();
    let metrics = ranking_metrics(&hits, query.relevant.len(), k, k).unwrap_or_default();
    let on_topic_hit = (!query.on_topic.is_empty())
        .then(|| f64::from(u8::from(top.iter().any(|m| query.on_topic.contains(m)))));
    let topical = top
        .iter()
        .filter(|&&m| on_topic(&dataset.movies[m as usize].genres, &query.topic))
        .count();
    (metrics, on_topic_hit, topical as f64 / k as f64)
}
