//! Personalised two-stage retrieval: candidates from a query or from a person's history
//! (stage one), reranked for that person by the serving stack (stage two).
//!
//! How query and person combine in `search --user` (and `similar --user`): stage one keeps the
//! query's most relevant movies, and adds the movies a little deeper in the query's
//! neighbourhood that the person's history points at ([`with_history`]); the personal ranker
//! (trees trained on such pools, see [`crate::rank::personal`]) orders them by P(watched and
//! liked | query, candidate). Every candidate is near the query, so a person's taste can
//! reorder on-topic movies but not reach for off-topic ones. `--stack`/`--personal-weight`
//! order by the older blend `(1 − w)·q + w·p` instead (`q` the relevance rescaled to [0, 1]
//! over the candidates, `p` a rating stack's P(liked | rated)).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::ann::{top_by, Hit};
use crate::error::{Error, Result};
use crate::fsutil::ms;
use crate::rank::candidates::{candidates, CandidateBudget, DEFAULT_CANDIDATES};
use crate::rank::fusion::{semantic_only, Relevant};
use crate::rank::personal::{history_candidates, PoolEntry, HISTORY_CANDIDATES, HISTORY_DEPTH};
use crate::rank::stack::{Person, ServingStack, StackKind};
use crate::rank::{blend, RankedMovie};
use crate::store::MovieIndex;

/// Weight of the personal score against the query similarity in the blend of a personal
/// search that names a `--stack` without a `--personal-weight`.
pub const DEFAULT_PERSONAL_WEIGHT: f64 = 0.5;

/// The name of the personal ranker in responses.
pub const PERSONAL_RANKER: &str = "personal_ranker";

/// Who a query's candidates are ranked for, and how.
#[derive(Debug, Clone, Copy)]
pub struct Personal<'a> {
    /// The serving stack.
    pub stack: &'a ServingStack,
    /// The person.
    pub person: &'a Person,
    /// The ranker.
    pub order: PersonalOrder,
}

impl Personal<'_> {
    /// Whether the personal ranker orders (and the history-aware retrieval adds candidates).
    pub fn learned(&self) -> bool {
        self.order == PersonalOrder::Learned
    }
}

/// What orders a personal query's candidates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PersonalOrder {
    /// The personal ranker (the default).
    Learned,
    /// `(1 − weight)·relevance + weight·P(liked | rated)` of a rating stack.
    Blend {
        /// The rating stack.
        kind: StackKind,
        /// The weight of its probability.
        weight: f64,
    },
}

impl PersonalOrder {
    /// The name in responses.
    fn name(self) -> &'static str {
        match self {
            PersonalOrder::Learned => PERSONAL_RANKER,
            PersonalOrder::Blend { kind, .. } => kind.name(),
        }
    }
}

/// `relevant` followed by the history-aware candidates among `nearest` (the query's
/// neighbours, nearest first, rated movies left out): source "history".
pub fn with_history(
    personal: Personal,
    nearest: &[(u32, f32)],
    mut relevant: Vec<Relevant>,
) -> Vec<Relevant> {
    let in_pool: HashSet<u32> = relevant.iter().map(|r| r.movie).collect();
    let extra = history_candidates(
        &personal.stack.builder(),
        personal.person,
        nearest,
        &|m| in_pool.contains(&m),
        HISTORY_CANDIDATES,
    );
    relevant.extend(extra.into_iter().map(|(movie, similarity)| Relevant {
        movie,
        relevance: similarity,
        similarity: Some(similarity),
        bm25: None,
        sources: vec![HISTORY_SOURCE],
    }));
    relevant
}

/// The source of a candidate only the history-aware retrieval found.
const HISTORY_SOURCE: &str = "history";

/// Exponent of the watch share that weights a rating stack's score when it ranks `recommend`
/// (`--stack`; 0: the stack alone; 1: P(liked | watched) × P(watched)).
pub const WATCH_EXPONENT: f64 = 0.25;

/// The answer of search, similar and recommend: ranked results, and what produced them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    /// The query as given (search only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Who it is for: "user 42" or "profile (3 ratings)"; absent without a person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// The stack that ranked ("logistic", "candidate_ranker", …); absent without a person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<&'static str>,
    /// Ranked results.
    pub results: Vec<RankedMovie>,
    /// How stage one ran for a query: "hnsw" or "exact" (search only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<&'static str>,
    /// Which retrievers answered a query: "semantic", "keyword" or "hybrid" (search only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// What the query rules read in a query and how they changed its answer (search only,
    /// when a rule matched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<SearchIntent>,
    /// How many candidates stage one gave the ranker (recommend only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<usize>,
    /// Milliseconds per stage.
    pub timings_ms: BTreeMap<String, f64>,
}

/// The query rules that shaped a search's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchIntent {
    /// The movie a "movies like …" query named: the answer is that of `similar` for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similar_to: Option<NamedMovie>,
    /// Decades named (first years): their movies were boosted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decades: Vec<u16>,
    /// Genres named: their movies were boosted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub genres: Vec<&'static str>,
}

/// A movie by id and title.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedMovie {
    /// MovieLens movieId.
    pub movie_id: u32,
    /// Title with year.
    pub title: String,
}

/// A description of `person` for responses.
fn describe(person: &Person) -> String {
    match person {
        Person::User(user) => format!("user {user}"),
        Person::Profile(history) => format!("profile ({} ratings)", history.len()),
    }
}

/// What orders `recommend`'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ranker {
    /// The candidate ranker over every candidate source (the default).
    #[default]
    Candidate,
    /// A rating stack over the same candidates, weighted by the movie's watch share.
    Stack(StackKind),
    /// The IMDB weighted rating alone, unrated movies only: the baseline of experiments.
    Popularity,
}

impl Ranker {
    /// Every ranker, for messages.
    pub const ALL: [Ranker; 5] = [
        Ranker::Candidate,
        Ranker::Stack(StackKind::Logistic),
        Ranker::Stack(StackKind::Gbdt),
        Ranker::Stack(StackKind::LambdaMart),
        Ranker::Popularity,
    ];

    /// Its name: `candidate`, a stack's name, or `popularity`.
    pub fn name(self) -> &'static str {
        match self {
            Ranker::Candidate => "candidate",
            Ranker::Stack(kind) => kind.name(),
            Ranker::Popularity => "popularity",
        }
    }

    /// The ranker named `text`; an unknown name is an error naming `parameter`.
    pub fn parse(text: &str, parameter: &str) -> Result<Ranker> {
        Ranker::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| Error::InvalidArgument {
                name: parameter.into(),
                message: format!(
                    "'{}' is not a ranker (known: {})",
                    text.chars().take(40).collect::<String>(),
                    Ranker::ALL.map(Ranker::name).join(", ")
                ),
            })
    }
}

/// The `k` most popular (IMDB weighted rating) movies `person` has not rated that `allowed`
/// keeps: [`Ranker::Popularity`].
pub fn recommend_popular(
    index: &MovieIndex,
    stack: &ServingStack,
    person: &Person,
    k: usize,
    allowed: &dyn Fn(u32) -> bool,
) -> Response {
    let total = Instant::now();
    let rated = rated_movies(stack, person);
    let movies = stack
        .builder()
        .popular(k, &|m| allowed(m) && !rated.contains(&m));
    let catalog = &index.catalog().movies;
    let scored = movies
        .iter()
        .map(|&m| {
            (
                m,
                f64::from(catalog[m as usize].weighted_rating),
                None,
                None,
            )
        })
        .collect();
    let sources = movies.iter().map(|&m| (m, vec!["popular"])).collect();
    let mut timings = BTreeMap::new();
    timings.insert("total".into(), ms(total));
    Response {
        query: None,
        person: Some(describe(person)),
        stack: Some(Ranker::Popularity.name()),
        results: top_results(index, scored, &sources, k),
        retrieval: None,
        mode: None,
        intent: None,
        candidates: Some(movies.len()),
        timings_ms: timings,
    }
}

/// Scored candidates → the top `k` results, best first (ties: lower catalogue position).
fn top_results(
    index: &MovieIndex,
    scored: Vec<(u32, f64, Option<f32>, Option<f64>)>,
    sources: &HashMap<u32, Vec<&'static str>>,
    k: usize,
) -> Vec<RankedMovie> {
    let catalog = &index.catalog().movies;
    top_by(scored, k, |s| (s.1, s.0 as usize))
        .into_iter()
        .enumerate()
        .map(|(i, (position, score, similarity, personal))| {
            RankedMovie::new(
                i + 1,
                &catalog[position as usize],
                similarity,
                personal,
                score,
                sources.get(&position).cloned().unwrap_or_default(),
            )
        })
        .collect()
}

/// `recommend`: no query. Candidates are the nearest movies to the person's taste vector, the
/// movies with the highest item-kNN affinity to the movies they liked, and popular movies when
/// neither has any; rated movies are excluded. The candidate ranker orders them, or with
/// `ranker` a rating stack's P(liked) weighted by the movie's watch share (the comparison row
/// of the full-catalogue evaluation).
pub fn recommend(
    index: &MovieIndex,
    stack: &ServingStack,
    person: &Person,
    k: usize,
    ranker: Option<StackKind>,
) -> Response {
    // The exact scan: this path serves the onboarding flow and evaluations, whose callers
    // do not load the graph.
    let nearest = |taste: &[f32], n: usize| index.flat().search(taste, n, &|_| true);
    recommend_filtered(index, stack, person, k, ranker, &nearest, &|_| true)
}

/// [`recommend`] restricted to the movies `allowed`; `retrieve` finds the nearest allowed
/// movies to a taste vector. When the filter leaves fewer than `k` candidates, the most
/// popular allowed movies fill up the list.
pub fn recommend_filtered(
    index: &MovieIndex,
    stack: &ServingStack,
    person: &Person,
    k: usize,
    ranker: Option<StackKind>,
    retrieve: &dyn Fn(&[f32], usize) -> Vec<Hit>,
    allowed: &dyn Fn(u32) -> bool,
) -> Response {
    let total = Instant::now();
    let mut timings = BTreeMap::new();
    let t = Instant::now();
    let budget = CandidateBudget::for_total(DEFAULT_CANDIDATES);
    let builder = stack.builder();
    let mut candidates = candidates(&builder, person, budget, retrieve, allowed);
    if candidates.order.len() < k {
        let rated = rated_movies(stack, person);
        for movie in builder.popular(k, &|m| allowed(m) && !rated.contains(&m)) {
            candidates.add(movie, "popular");
        }
    }
    let movies = candidates.order.clone();
    timings.insert("candidates".into(), ms(t));

    let t = Instant::now();
    let scored = score_candidates(stack, person, &movies, ranker)
        .into_iter()
        .zip(&movies)
        .map(|((score, personal), &m)| (m, score, None, Some(personal)))
        .collect();
    let results = top_results(index, scored, &candidates.sources, k);
    timings.insert("rerank".into(), ms(t));
    timings.insert("total".into(), ms(total));
    Response {
        query: None,
        person: Some(describe(person)),
        stack: Some(ranker.map_or(CANDIDATE_RANKER, StackKind::name)),
        results,
        retrieval: None,
        mode: None,
        intent: None,
        candidates: Some(movies.len()),
        timings_ms: timings,
    }
}

/// The (score, personal score) of each of `movies`, candidates of `recommend` for `person`:
/// the candidate ranker's probability twice, or with `ranker` a rating stack's P(liked) and
/// that weighted by the movie's watch share.
pub fn score_candidates(
    stack: &ServingStack,
    person: &Person,
    movies: &[u32],
    ranker: Option<StackKind>,
) -> Vec<(f64, f64)> {
    match ranker {
        None => stack
            .rank_candidates(person, movies)
            .into_iter()
            .map(|s| (s, s))
            .collect(),
        // The rating stacks learn P(liked | rated): every training row is a movie the user
        // chose to watch. Over unwatched movies what matters is P(watched and liked), so
        // their score is weighted by the share of users who watched the movie.
        Some(kind) => movies
            .iter()
            .zip(stack.score_person(kind, person, movies))
            .map(|(&m, s)| (s * stack.watch_share(m).powf(WATCH_EXPONENT), s))
            .collect(),
    }
}

/// The name of the candidate ranker in responses.
pub const CANDIDATE_RANKER: &str = "candidate_ranker";

/// What to rank by a vector: a query's, or a movie's for `similar`.
#[derive(Debug, Clone)]
pub struct VectorRequest<'a> {
    /// The query or movie vector.
    pub vector: &'a [f32],
    /// Results wanted.
    pub k: usize,
    /// Candidates taken from stage one.
    pub candidates: usize,
    /// Without a person: weight of the similarity against popularity (the search blend).
    pub alpha: f32,
    /// A movie to leave out (the one `similar` starts from).
    pub exclude: Option<u32>,
    /// Candidate source name ("query" or "movie").
    pub source: &'static str,
}

/// Ranks the nearest movies to a vector: by the search blend of similarity and popularity
/// without a person; for a person as the module documentation says, their rated movies
/// excluded.
pub fn rank_by_vector(
    index: &MovieIndex,
    personal: Option<Personal>,
    request: &VectorRequest,
    retrieve: &dyn Fn(&[f32], usize) -> Vec<Hit>,
) -> Response {
    let t = Instant::now();
    let rated = personal
        .map(|p| rated_movies(p.stack, p.person))
        .unwrap_or_default();
    let skip = rated.len() + usize::from(request.exclude.is_some());
    let keep = request.candidates.max(request.k);
    let learned = personal.filter(Personal::learned);
    let depth = if learned.is_some() {
        HISTORY_DEPTH.max(keep)
    } else {
        keep
    };
    let hits = retrieve(request.vector, depth + skip);
    let nearest = nearest_unseen(index, request.vector, &hits, &rated, request.exclude, depth);
    let relevant = semantic_only(&nearest[..keep.min(nearest.len())], request.source);
    let relevant = match learned {
        Some(p) => with_history(p, &nearest, relevant),
        None => relevant,
    };
    let retrieve_ms = ms(t);
    let mut response = rank_relevant(index, personal, relevant, request.k, request.alpha);
    response.timings_ms.insert("retrieve".into(), retrieve_ms);
    response
}

/// The first `keep` of `hits` that are neither `exclude` nor in `rated`, with their cosine to
/// `vector`.
pub fn nearest_unseen(
    index: &MovieIndex,
    vector: &[f32],
    hits: &[Hit],
    rated: &HashSet<u32>,
    exclude: Option<u32>,
    keep: usize,
) -> Vec<(u32, f32)> {
    hits.iter()
        .map(|h| h.position as u32)
        .filter(|m| Some(*m) != exclude && !rated.contains(m))
        .take(keep)
        .map(|m| (m, index.similarity(vector, m as usize)))
        .collect()
}

/// The movies a person rated: never shown to them again.
pub fn rated_movies(stack: &ServingStack, person: &Person) -> HashSet<u32> {
    stack.history(person).iter().map(|&(m, _)| m).collect()
}

/// Stage two of a query or a movie: without a person, the search blend of relevance and
/// popularity; for a person, the personal ranker or a stack's blend (see the module
/// documentation).
pub fn rank_relevant(
    index: &MovieIndex,
    personal: Option<Personal>,
    relevant: Vec<Relevant>,
    k: usize,
    alpha: f32,
) -> Response {
    let total = Instant::now();
    let mut timings = BTreeMap::new();
    let t = Instant::now();
    // (score, personal score) of each candidate.
    let scores: Vec<(f64, Option<f64>)> = match personal {
        None => relevant
            .iter()
            .map(|r| {
                let wr = index.catalog().movies[r.movie as usize].weighted_rating;
                (f64::from(blend(r.relevance, wr, alpha)), None)
            })
            .collect(),
        Some(Personal {
            stack,
            person,
            order: PersonalOrder::Learned,
        }) => {
            let pool: Vec<PoolEntry> = relevant
                .iter()
                .map(|r| PoolEntry {
                    movie: r.movie,
                    similarity: r.similarity.unwrap_or(0.0),
                    relevance: (r.sources != [HISTORY_SOURCE]).then_some(r.relevance),
                })
                .collect();
            // The engine asks for the learned order only from a stack that has the ranker.
            stack
                .rank_personal(person, &pool)
                .unwrap_or_else(|| vec![0.0; pool.len()])
                .into_iter()
                .map(|p| (p, Some(p)))
                .collect()
        }
        Some(Personal {
            stack,
            person,
            order: PersonalOrder::Blend { kind, weight },
        }) => {
            let movies: Vec<u32> = relevant.iter().map(|r| r.movie).collect();
            let personal_scores = stack.score_person(kind, person, &movies);
            let (low, high) = relevant
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), r| {
                    (l.min(r.relevance), h.max(r.relevance))
                });
            let span = f64::from(high - low);
            let w = weight;
            relevant
                .iter()
                .zip(personal_scores)
                .map(|(r, p)| {
                    let relevance = if span > 0.0 {
                        f64::from(r.relevance - low) / span
                    } else {
                        1.0
                    };
                    ((1.0 - w) * relevance + w * p, Some(p))
                })
                .collect()
        }
    };
    let catalog = &index.catalog().movies;
    let results = top_by((0..relevant.len()).collect(), k, |&i| {
        (scores[i].0, relevant[i].movie as usize)
    })
    .into_iter()
    .enumerate()
    .map(|(rank, i)| {
        let r = &relevant[i];
        let mut result = RankedMovie::new(
            rank + 1,
            &catalog[r.movie as usize],
            r.similarity,
            scores[i].1,
            scores[i].0,
            r.sources.clone(),
        );
        result.bm25 = r.bm25;
        result
    })
    .collect();
    timings.insert("rerank".into(), ms(t));
    timings.insert("total".into(), ms(total));
    Response {
        query: None,
        person: personal.map(|p| describe(p.person)),
        stack: personal.map(|p| p.order.name()),
        results,
        retrieval: None,
        mode: None,
        intent: None,
        candidates: None,
        timings_ms: timings,
    }
}
