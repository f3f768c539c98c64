//! The engine: one opened index (and its encoder and serving stack) answering every kind of
//! request with typed, serde-serialisable requests and responses. The CLI and any other front
//! end only parse, build a request, call, and print; validation lives here.

mod build;
pub mod person;
pub mod recommend;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use build::{build, build_if_missing, keyword_index, BuildOptions, DEFAULT_SEED};
pub use person::{MovieRef, PersonSpec, ProfileRating};
pub use recommend::{NamedMovie, Ranker, Response, SearchIntent, DEFAULT_PERSONAL_WEIGHT};

use crate::ann::{top_by, FlatIndex, Hit, HnswIndex};
use crate::config::Paths;
pub use crate::embed::{check_query, MAX_QUERY_CHARS};
use crate::embed::{model_files, Encoder, QueryCache, DEFAULT_QUERY_CACHE};
use crate::error::{Error, Result};
use crate::fsutil::ms;
use crate::intent::{self, QueryIntent, DECADE_BOOST, GENRE_BOOST};
use crate::profiles::ProfileStore;
use crate::rank::fusion::{
    add_feedback, familiar_title_match, fuse, keyword_only, semantic_only, Fusion, Relevant,
    FEEDBACK_DOCS, FEEDBACK_NEIGHBOURS, FEEDBACK_WEIGHT,
};
use crate::rank::personal::HISTORY_DEPTH;
use crate::rank::stack::{
    FeatureImportance, PairExplanation, Person, RankerImportance, ServingStack, StackKind,
};
use crate::rank::{check_alpha, check_weight, Filters, DEFAULT_ALPHA};
use crate::store::{IndexFile, MovieIndex};
use recommend::{
    nearest_unseen, rank_by_vector, rank_relevant, rated_movies, with_history, VectorRequest,
};
pub use recommend::{Personal, PersonalOrder};

/// Most results one request may ask for.
pub const MAX_K: usize = 1000;
/// Most stage-one candidates one request may ask for.
pub const MAX_CANDIDATES: usize = 10_000;

/// Below this share of the catalogue, a filtered query scans the matching movies exactly
/// instead of walking the graph (a graph walk through mostly filtered-out nodes is slow and
/// can miss matches).
const EXACT_FILTER_SHARE: f64 = 0.1;

/// Below this many movies stage one scans every vector instead of walking the HNSW graph: at
/// ml-latest-small's 9,742 the scan took 0.83 ms a query against 2.35 ms for the graph at ef
/// 400 (recall@10 0.999), and it is exact. The scan grows linearly with the catalogue, the
/// graph walk about logarithmically, so larger catalogues (ML-latest's 86k) take the graph.
pub const GRAPH_FROM_MOVIES: usize = 20_000;

/// Keyword hits looked at to find the movie a "movies like X" query names.
const LIKE_LOOKUP: usize = 20;

/// Default number of results.
pub const DEFAULT_K: usize = 10;
/// Default number of stage-one candidates of a query.
pub const DEFAULT_QUERY_CANDIDATES: usize = 100;

/// Which retrievers answer a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// The embedding's nearest movies only.
    Semantic,
    /// BM25 over titles, genres and tags only (no embedding).
    Keyword,
    /// Both, fused.
    #[default]
    Hybrid,
}

impl SearchMode {
    /// The name in responses and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SearchMode::Semantic => "semantic",
            SearchMode::Keyword => "keyword",
            SearchMode::Hybrid => "hybrid",
        }
    }
}

/// A query and how to answer it, optionally for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// Free text.
    pub query: String,
    /// Results wanted (1..=[`MAX_K`]).
    pub k: usize,
    /// Candidates taken from stage one (1..=[`MAX_CANDIDATES`]; at least k are taken).
    pub candidates: usize,
    /// Restrictions applied before the top-k is cut.
    pub filters: Filters,
    /// Without a person: weight of the query similarity against popularity.
    pub alpha: f32,
    /// Use the exact scan instead of HNSW for stage one.
    pub exact: bool,
    /// Who to personalise for (empty: nobody).
    pub person: PersonSpec,
    /// With a person: order by `(1 − w)·relevance + w·P` with this w instead of the personal
    /// ranker (see [`recommend::Personal`]).
    pub personal_weight: Option<f64>,
    /// With a person: order by this rating stack's P blended with the relevance instead of the
    /// personal ranker.
    pub stack: Option<StackKind>,
    /// Which retrievers answer.
    #[serde(default)]
    pub mode: SearchMode,
    /// How a hybrid search fuses its two candidate lists.
    #[serde(default)]
    pub fusion: Fusion,
    /// Apply the query rules (see [`crate::intent`]): "movies like X" answered like
    /// `similar`, decade and genre words boosting their movies.
    #[serde(default = "default_true")]
    pub intent: bool,
    /// Weight of the pseudo-relevance feedback through the rating graph (0: none; see
    /// [`add_feedback`]).
    #[serde(default = "default_feedback")]
    pub feedback: f32,
}

/// serde's default of [`SearchRequest::feedback`].
fn default_feedback() -> f32 {
    FEEDBACK_WEIGHT
}

/// serde's default of a flag that is on unless said otherwise.
fn default_true() -> bool {
    true
}

impl SearchRequest {
    /// A request with the default settings (k 10, 100 candidates, alpha 0.6, HNSW, no filter,
    /// nobody).
    pub fn new(query: impl Into<String>) -> SearchRequest {
        SearchRequest {
            query: query.into(),
            k: DEFAULT_K,
            candidates: DEFAULT_QUERY_CANDIDATES,
            filters: Filters::default(),
            alpha: DEFAULT_ALPHA,
            exact: false,
            person: PersonSpec::default(),
            personal_weight: None,
            stack: None,
            mode: SearchMode::default(),
            fusion: Fusion::default(),
            intent: true,
            feedback: FEEDBACK_WEIGHT,
        }
    }

    /// Checks what can be checked without an index: query, k, candidates and weights. Front
    /// ends call it before building a missing index for a request that would fail anyway.
    pub fn validate(&self) -> Result<()> {
        check_query(&self.query)?;
        check_ranking(self.k, self.candidates, self.alpha, self.personal_weight)?;
        check_weight("--feedback", f64::from(self.feedback))?;
        self.person.validate()
    }
}

/// Recommendations for a person, without a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommendRequest {
    /// Who for (required).
    pub person: PersonSpec,
    /// Results wanted.
    pub k: usize,
    /// Restrictions on what may be recommended.
    pub filters: Filters,
    /// What orders the answer (the candidate ranker by default).
    #[serde(default)]
    pub ranker: Ranker,
}

impl RecommendRequest {
    /// Ten recommendations for `person` by the candidate ranker, unfiltered.
    pub fn new(person: PersonSpec) -> RecommendRequest {
        RecommendRequest {
            person,
            k: DEFAULT_K,
            filters: Filters::default(),
            ranker: Ranker::default(),
        }
    }
}

/// Movies like one movie, optionally for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarRequest {
    /// The movie to start from.
    pub movie: MovieRef,
    /// Results wanted.
    pub k: usize,
    /// Candidates taken from stage one.
    pub candidates: usize,
    /// Restrictions applied before the top-k is cut.
    pub filters: Filters,
    /// Without a person: weight of the similarity against popularity.
    pub alpha: f32,
    /// Who to personalise for (empty: nobody).
    pub person: PersonSpec,
    /// With a person: order by `(1 − w)·similarity + w·P` with this w instead of the personal
    /// ranker.
    pub personal_weight: Option<f64>,
    /// With a person: order by this rating stack's P blended with the similarity instead of
    /// the personal ranker.
    pub stack: Option<StackKind>,
}

impl SimilarRequest {
    /// The ten movies most like `movie`, with the default settings.
    pub fn new(movie: MovieRef) -> SimilarRequest {
        SimilarRequest {
            movie,
            k: DEFAULT_K,
            candidates: DEFAULT_QUERY_CANDIDATES,
            filters: Filters::default(),
            alpha: DEFAULT_ALPHA,
            person: PersonSpec::default(),
            personal_weight: None,
            stack: None,
        }
    }
}

/// What `explain` describes: the stacks as a whole, or one (user, movie) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExplainRequest {
    /// Every feature's global importance in each stack.
    Global,
    /// One pair's feature values and contributions.
    Pair {
        /// A MovieLens userId of the index.
        user: u32,
        /// A MovieLens movieId of the index.
        movie_id: u32,
    },
}

/// The answer to an [`ExplainRequest`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Explanation {
    /// Global importances, with how the stack was trained.
    Global {
        /// The stack's training record.
        training: serde_json::Value,
        /// One entry per feature.
        features: Vec<FeatureImportance>,
        /// The candidate ranker's and the personal ranker's gain shares.
        rankers: Vec<RankerImportance>,
    },
    /// One pair.
    Pair {
        /// The userId.
        user: u32,
        /// The movieId.
        movie_id: u32,
        /// The movie's title.
        title: String,
        /// Feature values and contributions.
        explanation: PairExplanation,
    },
}

/// Everything the index knows of one movie.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MovieDetails {
    /// MovieLens movieId.
    pub movie_id: u32,
    /// Title with year.
    pub title: String,
    /// Release year.
    pub year: Option<u16>,
    /// Genres.
    pub genres: Vec<String>,
    /// Number of ratings in the index's data.
    pub rating_count: u32,
    /// Mean rating, absent when unrated.
    pub mean_rating: Option<f32>,
    /// IMDB weighted rating (0–5).
    pub weighted_rating: f32,
    /// The text embedded for it.
    pub document: String,
    /// IMDb page, from links.csv.
    pub imdb_url: Option<String>,
    /// TMDB page, from links.csv.
    pub tmdb_url: Option<String>,
}

/// What `reelrank verify` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// The index root.
    pub index: PathBuf,
    /// The generation checked.
    pub generation: String,
    /// Its files, every one's sha256 checked.
    pub files: Vec<IndexFile>,
    /// Whether the dataset directory was there to compare with.
    pub dataset_checked: bool,
}

/// A loaded index and encoder, ready to answer requests.
pub struct Engine {
    index: MovieIndex,
    /// Shared with the engines that [`Engine::reopen`] makes.
    encoder: Arc<Encoder>,
    /// Query embeddings, shared with reopened engines (same encoder, same vectors).
    query_cache: Arc<QueryCache>,
    /// Loaded on first use: plain queries never need it.
    stack: OnceLock<ServingStack>,
    /// Where saved profile files are looked up (`--profiles`).
    profiles: PathBuf,
    /// The profile database, looked up before the files.
    store: Option<Arc<ProfileStore>>,
    /// Catalogues from this size walk the HNSW graph; smaller ones are scanned exactly.
    graph_from: usize,
}

impl Engine {
    /// Opens the index at `paths.index`, refusing it if its format, model or dataset differ.
    pub fn open(paths: &Paths) -> Result<Engine> {
        Engine::load(paths, &|| open_index(paths))
    }

    /// Opens the index, building it first if there is none.
    pub fn open_or_build(paths: &Paths, options: &BuildOptions) -> Result<Engine> {
        Engine::load(paths, &|| open_or_build_index(paths, options))
    }

    /// Loads the encoder while `open` opens the index, then refuses the index if it was built
    /// with other model weights. The two loads (~130 ms each on ml-latest-small) share nothing,
    /// and a fresh process answering one query spends most of its time in them.
    fn load(paths: &Paths, open: &(dyn Fn() -> Result<MovieIndex> + Sync)) -> Result<Engine> {
        let files = model_files(&paths.model)?;
        let (index, encoder) = std::thread::scope(|scope| {
            let encoder = scope.spawn(|| Encoder::load(&files));
            let index = open().and_then(|index| {
                index
                    .manifest()
                    .check_weights(&paths.index, &files.weights)?;
                Ok(index)
            });
            (index, encoder.join())
        });
        let encoder = encoder.map_err(|_| Error::ModelInvalid {
            path: files.weights.clone(),
            message: "the encoder's loading thread panicked".into(),
        })??;
        let index = index?;
        index
            .manifest()
            .check_dim(&paths.index, &files.weights, encoder.dim())?;
        Ok(Engine {
            index,
            encoder: Arc::new(encoder),
            query_cache: Arc::new(QueryCache::new(DEFAULT_QUERY_CACHE)),
            stack: OnceLock::new(),
            profiles: PathBuf::from(person::DEFAULT_PROFILES_DIR),
            store: None,
            graph_from: GRAPH_FROM_MOVIES,
        })
    }

    /// The current generation of the same index as a new engine with this one's encoder,
    /// query cache, profiles and settings, its serving stack loaded: what a server switches to
    /// when a build publishes. Refused like [`Engine::open`] refuses a stale index.
    pub fn reopen(&self, paths: &Paths) -> Result<Engine> {
        let index = open_index(paths)?;
        let weights = &self.encoder.files().weights;
        index.manifest().check_weights(&paths.index, weights)?;
        index
            .manifest()
            .check_dim(&paths.index, weights, self.encoder.dim())?;
        let engine = self.twin(index, self.store.clone());
        engine.load_all()?;
        Ok(engine)
    }

    /// `index` with this engine's encoder, query cache and settings, and `store`.
    fn twin(&self, index: MovieIndex, store: Option<Arc<ProfileStore>>) -> Engine {
        Engine {
            index,
            encoder: Arc::clone(&self.encoder),
            query_cache: Arc::clone(&self.query_cache),
            stack: OnceLock::new(),
            profiles: self.profiles.clone(),
            store,
            graph_from: self.graph_from,
        }
    }

    /// A twin of this engine (same index files and encoder) whose catalogue statistics and
    /// serving stack were trained on part of the ratings only: what an evaluation on held-out
    /// ratings queries, through the same code as serving.
    pub fn trained_on(
        &self,
        paths: &Paths,
        catalog: crate::catalog::Catalog,
        stack: ServingStack,
    ) -> Result<Engine> {
        let index = open_index(paths)?.with_catalog(catalog)?;
        let engine = self.twin(index, None);
        // A fresh OnceLock takes the first value.
        let _ = engine.stack.set(stack);
        Ok(engine)
    }

    /// Keeps at most `queries` query embeddings (0: embed every query) instead of
    /// [`DEFAULT_QUERY_CACHE`].
    pub fn with_query_cache(mut self, queries: usize) -> Engine {
        self.query_cache = Arc::new(QueryCache::new(queries));
        self
    }

    /// Looks profiles up in `store` before the files of the profiles directory.
    pub fn with_profile_store(mut self, store: Arc<ProfileStore>) -> Engine {
        self.store = Some(store);
        self
    }

    /// The query embedding cache's (hits, misses).
    pub fn query_cache_stats(&self) -> (u64, u64) {
        self.query_cache.stats()
    }

    /// Walks the HNSW graph for catalogues of `movies` or more instead of
    /// [`GRAPH_FROM_MOVIES`] (0: always, unless a request asks for the exact scan).
    pub fn with_graph_from(mut self, movies: usize) -> Engine {
        self.graph_from = movies;
        self
    }

    /// Looks saved profiles up in `dir` instead of `profiles/`.
    pub fn with_profiles_dir(mut self, dir: impl Into<PathBuf>) -> Engine {
        self.profiles = dir.into();
        self
    }

    /// The serving stack saved in the index (read on first use, never retrained).
    pub fn stack(&self) -> Result<&ServingStack> {
        if let Some(stack) = self.stack.get() {
            return Ok(stack);
        }
        let loaded = ServingStack::open(&self.index)?;
        Ok(self.stack.get_or_init(|| loaded))
    }

    /// The index.
    pub fn index(&self) -> &MovieIndex {
        &self.index
    }

    /// The encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The person a spec describes, resolved against this index: `None` for an empty spec.
    /// Unknown users, movies and profiles, and ambiguous titles, are errors naming the flag.
    pub fn person(&self, spec: &PersonSpec) -> Result<Option<Person>> {
        spec.validate()?;
        if spec.is_empty() {
            return Ok(None);
        }
        let stack = self.stack()?;
        person::resolve(
            &self.index,
            stack,
            spec,
            &self.profiles,
            self.store.as_deref(),
        )
        .map(Some)
    }

    /// How many movies the person has rated (0 for nobody).
    pub fn rated_count(&self, spec: &PersonSpec) -> Result<usize> {
        Ok(match self.person(spec)? {
            Some(person) => rated_movies(self.stack()?, &person).len(),
            None => 0,
        })
    }

    /// The catalogue position of a movie given by id or title.
    pub fn movie_position(&self, movie: &MovieRef) -> Result<usize> {
        person::movie_position(&self.index, movie)
    }

    /// What the index knows of one movie.
    pub fn movie(&self, movie_id: u32) -> Result<MovieDetails> {
        let position = self.movie_position(&MovieRef::Id(movie_id))?;
        let entry = &self.index.catalog().movies[position];
        let movie = &entry.movie;
        Ok(MovieDetails {
            movie_id: movie.id,
            title: movie.title.clone(),
            year: movie.year,
            genres: movie.genres.clone(),
            rating_count: entry.rating_count,
            mean_rating: entry.mean_rating,
            weighted_rating: entry.weighted_rating,
            document: entry.document.clone(),
            imdb_url: movie.imdb_url(),
            tmdb_url: movie.tmdb_url(),
        })
    }

    /// Answers a query: embed it, retrieve candidates, rerank them by the popularity blend
    /// (or, for a person, by the rating stack blended with the similarity), cut the top k.
    pub fn search(&self, request: &SearchRequest) -> Result<Response> {
        let total = Instant::now();
        request.validate()?;
        self.check_filters(&request.filters)?;
        let query = request.query.trim();
        let intent = if request.intent {
            intent::parse(query)
        } else {
            QueryIntent::default()
        };
        if let Some(position) = intent
            .like
            .as_deref()
            .and_then(|t| self.named_movie(query, t))
        {
            return self.search_like(request, position, total);
        }
        let person = self.person(&request.person)?;
        let personal = self.personal(person.as_ref(), request.stack, request.personal_weight)?;
        let rated = personal
            .map(|p| rated_movies(p.stack, p.person))
            .unwrap_or_default();
        // The personal ranker also looks deeper into the query's neighbours for movies the
        // person's history points at.
        let depth = if personal.is_some_and(|p| p.learned()) {
            HISTORY_DEPTH.max(request.candidates.max(request.k))
        } else {
            request.candidates.max(request.k)
        };
        // Rated movies are dropped after retrieval, so each retriever is asked for more.
        let wanted = request.candidates.max(request.k) + rated.len();
        let keep = request.candidates.max(request.k);
        let mut timings = std::collections::BTreeMap::new();

        let allowed = self.allowed(&request.filters);
        let keyword: Vec<(u32, f32)> = if request.mode == SearchMode::Semantic {
            Vec::new()
        } else {
            let t = Instant::now();
            let hits = self
                .index
                .keyword()
                .search(query, wanted, allowed.clone())?;
            timings.insert("keyword".to_string(), ms(t));
            hits.into_iter()
                .map(|h| (h.position, h.score))
                .filter(|(m, _)| !rated.contains(m))
                .take(keep)
                .collect()
        };

        let mut retrieval = None;
        let mut nearest = Vec::new();
        let boosted = |mut relevant: Vec<Relevant>| {
            self.boost(&intent, &mut relevant);
            relevant
        };
        let relevant: Vec<Relevant> = if request.mode == SearchMode::Keyword {
            boosted(keyword_only(&keyword))
        } else {
            let t = Instant::now();
            let vector = self.query_cache.embed(&self.encoder, query)?;
            timings.insert("embed".to_string(), ms(t));
            let t = Instant::now();
            let (hits, how) = self.retrieve_allowed(
                &vector,
                depth + rated.len(),
                allowed.as_deref().map(Vec::as_slice),
                request.exact,
            );
            retrieval = Some(how);
            nearest = nearest_unseen(&self.index, &vector, &hits, &rated, None, depth);
            let semantic = &nearest[..keep.min(nearest.len())];
            let similarity = |m: u32| self.index.similarity(&vector, m as usize);
            let mut relevant = if request.mode == SearchMode::Semantic {
                semantic_only(semantic, "semantic")
            } else {
                let title_query = self.index.keyword().title_query(query);
                let catalog = self.index.catalog();
                let title_match = |m: u32| {
                    familiar_title_match(title_query.score(m), catalog.familiarity(m as usize))
                };
                fuse(
                    semantic,
                    &keyword,
                    &similarity,
                    &title_match,
                    request.fusion,
                )
            };
            if request.feedback > 0.0 {
                let stack = self.stack()?;
                let mask = allowed.as_deref().map(Vec::as_slice);
                add_feedback(
                    &mut relevant,
                    FEEDBACK_DOCS,
                    request.feedback,
                    &|m| stack.co_rated(m, FEEDBACK_NEIGHBOURS),
                    &similarity,
                    &|m| !rated.contains(&m) && allows(mask, m),
                );
            }
            // Stage one keeps the `keep` most relevant of both lists: a keyword hit enters
            // only by beating a semantic one, so stage two (a person's taste above all)
            // never reaches for an off-topic movie.
            let relevant = top_by(boosted(relevant), keep, |r| {
                (f64::from(r.relevance), r.movie as usize)
            });
            timings.insert("retrieve".to_string(), ms(t));
            relevant
        };
        let relevant = match personal {
            Some(p) if p.learned() => with_history(p, &nearest, relevant),
            _ => relevant,
        };
        let mut response = rank_relevant(&self.index, personal, relevant, request.k, request.alpha);
        response.query = Some(request.query.clone());
        response.retrieval = retrieval;
        response.mode = Some(request.mode.name());
        if intent.has_boosts() {
            response.intent = Some(SearchIntent {
                similar_to: None,
                decades: intent.decades,
                genres: intent.genres,
            });
        }
        response.timings_ms.extend(timings);
        response.timings_ms.insert("total".to_string(), ms(total));
        Ok(response)
    }

    /// The movie a "movies like X" query names by `title` (the text after "like"): among the
    /// keyword hits whose title holds every word of it, the closest title, then the most rated.
    /// None when nothing fits, or when the whole `query` is itself a title ("Like Water for
    /// Chocolate").
    fn named_movie(&self, query: &str, title: &str) -> Option<usize> {
        let keyword = self.index.keyword();
        let catalog = &self.index.catalog().movies;
        let whole = keyword.title_query(query);
        let hits = keyword.search(query, LIKE_LOOKUP, None).ok()?;
        if hits.iter().any(|h| whole.score(h.position) >= 1.0) {
            return None;
        }
        let named = keyword.title_query(title);
        let hits = keyword.search(title, LIKE_LOOKUP, None).ok()?;
        hits.iter()
            .filter(|h| named.covered_by(h.position))
            .max_by(|a, b| {
                let key = |p: u32| (named.score(p), catalog[p as usize].rating_count);
                let (ka, kb) = (key(a.position), key(b.position));
                ka.0.total_cmp(&kb.0)
                    .then(ka.1.cmp(&kb.1))
                    .then(b.position.cmp(&a.position))
            })
            .map(|h| h.position as usize)
    }

    /// A "movies like X" search answered as `similar` for the movie at `position`.
    fn search_like(
        &self,
        request: &SearchRequest,
        position: usize,
        total: Instant,
    ) -> Result<Response> {
        let movie = &self.index.catalog().movies[position].movie;
        let mut response = self.similar(&SimilarRequest {
            movie: MovieRef::Id(movie.id),
            k: request.k,
            candidates: request.candidates,
            filters: request.filters.clone(),
            alpha: request.alpha,
            person: request.person.clone(),
            personal_weight: request.personal_weight,
            stack: request.stack,
        })?;
        response.query = Some(request.query.clone());
        response.mode = Some(request.mode.name());
        response.intent = Some(SearchIntent {
            similar_to: Some(NamedMovie {
                movie_id: movie.id,
                title: movie.title.clone(),
            }),
            decades: Vec::new(),
            genres: Vec::new(),
        });
        response.timings_ms.insert("total".to_string(), ms(total));
        Ok(response)
    }

    /// Adds the decade and genre boosts of `intent` to each candidate's relevance.
    fn boost(&self, intent: &QueryIntent, relevant: &mut [Relevant]) {
        if !intent.has_boosts() {
            return;
        }
        let catalog = &self.index.catalog().movies;
        for r in relevant {
            let movie = &catalog[r.movie as usize].movie;
            r.relevance += intent.boost(movie.year, &movie.genres, DECADE_BOOST, GENRE_BOOST);
        }
    }

    /// Movies like one movie: its embedding neighbours by the search blend, or for a person
    /// reranked like a personal search; the movie itself is left out.
    pub fn similar(&self, request: &SimilarRequest) -> Result<Response> {
        check_ranking(
            request.k,
            request.candidates,
            request.alpha,
            request.personal_weight,
        )?;
        self.check_filters(&request.filters)?;
        let position = self.movie_position(&request.movie)?;
        let person = self.person(&request.person)?;
        let personal = self.personal(person.as_ref(), request.stack, request.personal_weight)?;
        let vector = self.index.flat().vector(position).to_vec();
        let allowed = self.allowed(&request.filters);
        Ok(rank_by_vector(
            &self.index,
            personal,
            &VectorRequest {
                vector: &vector,
                k: request.k,
                candidates: request.candidates,
                alpha: request.alpha,
                exclude: Some(position as u32),
                source: "movie",
            },
            &|v, n| {
                self.retrieve_allowed(v, n, allowed.as_deref().map(Vec::as_slice), false)
                    .0
            },
        ))
    }

    /// Recommendations without a query: candidates from the person's taste and history, ranked
    /// by the candidate ranker (or a rating stack, or popularity alone), rated movies and
    /// filtered-out movies left out.
    pub fn recommend(&self, request: &RecommendRequest) -> Result<Response> {
        check_k(request.k)?;
        self.check_filters(&request.filters)?;
        if request.person.is_empty() {
            return Err(Error::InvalidArgument {
                name: "person".into(),
                message: "recommend needs a person: --user, --like, --dislike, --ratings or \
                          --profile"
                    .into(),
            });
        }
        let person = self
            .person(&request.person)?
            .ok_or_else(|| Error::InvalidArgument {
                name: "person".into(),
                message: "recommend needs at least one rating".into(),
            })?;
        let stack = self.stack()?;
        let allowed = self.allowed(&request.filters);
        let mask = allowed.as_deref().map(Vec::as_slice);
        let stack_kind = match request.ranker {
            Ranker::Popularity => {
                return Ok(recommend::recommend_popular(
                    &self.index,
                    stack,
                    &person,
                    request.k,
                    &|m| allows(mask, m),
                ))
            }
            Ranker::Candidate => None,
            Ranker::Stack(kind) => Some(kind),
        };
        Ok(recommend::recommend_filtered(
            &self.index,
            stack,
            &person,
            request.k,
            stack_kind,
            &|v, n| self.retrieve_allowed(v, n, mask, false).0,
            &|m| allows(mask, m),
        ))
    }

    /// The serving stack's global feature importances, or one pair's contributions.
    pub fn explain(&self, request: &ExplainRequest) -> Result<Explanation> {
        let stack = self.stack()?;
        match *request {
            ExplainRequest::Global => Ok(Explanation::Global {
                training: serde_json::to_value(&stack.training).map_err(|e| Error::Json {
                    path: self.index.dir().to_path_buf(),
                    error: e,
                })?,
                features: stack.importance(),
                rankers: stack.ranker_importance(),
            }),
            ExplainRequest::Pair { user, movie_id } => {
                person::check_user(stack, user, self.index.dir())?;
                let position = self.movie_position(&MovieRef::Id(movie_id))?;
                Ok(Explanation::Pair {
                    user,
                    movie_id,
                    title: self.index.catalog().movies[position].movie.title.clone(),
                    explanation: stack.explain(user, position as u32),
                })
            }
        }
    }

    /// What ranks a personal request, if a person was given: the personal ranker, or the
    /// blend of a rating stack when `kind` or `weight` asks for it.
    fn personal<'a>(
        &'a self,
        person: Option<&'a Person>,
        kind: Option<StackKind>,
        weight: Option<f64>,
    ) -> Result<Option<Personal<'a>>> {
        let Some(person) = person else {
            return Ok(None);
        };
        let stack = self.stack()?;
        // A stack without a personal ranker (never one `build` writes) blends instead.
        let order = if kind.is_none() && weight.is_none() && stack.has_personal_ranker() {
            PersonalOrder::Learned
        } else {
            PersonalOrder::Blend {
                kind: kind.unwrap_or(StackKind::Logistic),
                weight: weight.unwrap_or(DEFAULT_PERSONAL_WEIGHT),
            }
        };
        Ok(Some(Personal {
            stack,
            person,
            order,
        }))
    }

    /// Which catalogue positions pass `filters`; `None` when there is no filter. Computed once
    /// per request and shared by both retrievers and the fill-up of `recommend`.
    fn allowed(&self, filters: &Filters) -> Option<Arc<Vec<bool>>> {
        (!filters.is_empty()).then(|| {
            Arc::new(
                self.index
                    .catalog()
                    .movies
                    .iter()
                    .map(|e| filters.matches(&e.movie))
                    .collect(),
            )
        })
    }

    /// Stage one: the `wanted` movies most similar to `vector` that pass `filters`.
    pub fn retrieve(
        &self,
        vector: &[f32],
        wanted: usize,
        filters: &Filters,
        exact: bool,
    ) -> (Vec<Hit>, &'static str) {
        let allowed = self.allowed(filters);
        self.retrieve_allowed(vector, wanted, allowed.as_deref().map(Vec::as_slice), exact)
    }

    /// [`Engine::retrieve`] among the positions `allowed` marks (all when `None`).
    fn retrieve_allowed(
        &self,
        vector: &[f32],
        wanted: usize,
        allowed: Option<&[bool]>,
        exact: bool,
    ) -> (Vec<Hit>, &'static str) {
        let flat = self.index.flat();
        let graph = if exact { None } else { self.graph() };
        let Some(allowed) = allowed else {
            return match graph {
                Some(graph) => (graph.search(vector, wanted, None), "hnsw"),
                None => (flat.search(vector, wanted, &|_| true), "exact"),
            };
        };
        let allowed = |p: usize| allows(Some(allowed), p as u32);
        let walk = |v: &[f32], n: usize, keep: &dyn Fn(usize) -> bool| {
            graph.map_or_else(Vec::new, |g| g.search(v, n, Some(keep)))
        };
        retrieve_filtered(flat, &walk, vector, wanted, &allowed, graph.is_none())
    }

    /// The HNSW graph when this engine walks it (catalogues of `graph_from` movies or more),
    /// loaded on first use; `None` means the exact scan. A graph that fails its checksums is
    /// refused and reported, and the exact scan answers (the server loads it at start, so
    /// there it fails before serving).
    fn graph(&self) -> Option<&HnswIndex> {
        if self.index.flat().len() < self.graph_from {
            return None;
        }
        match self.index.hnsw() {
            Ok(graph) => Some(graph),
            Err(error) => {
                tracing::error!("{error}; scanning every vector instead");
                None
            }
        }
    }

    /// Loads what a long-lived process serves from (the stack and, where it is walked, the
    /// graph) now: their damage is then an error here rather than on some later request.
    /// Also copies the mapped vectors into memory ([`FlatIndex::make_resident`]) and prepares
    /// the exact scan's half-precision copy ([`FlatIndex::prepare_fast_scan`]).
    pub fn load_all(&self) -> Result<()> {
        self.stack()?;
        self.index.flat().make_resident();
        self.index.flat().prepare_fast_scan();
        if self.index.flat().len() >= self.graph_from {
            self.index.hnsw()?;
        }
        Ok(())
    }

    /// Refuses genres the catalogue does not know, listing the known ones.
    fn check_filters(&self, filters: &Filters) -> Result<()> {
        let all = self.index.catalog().genres();
        for genre in &filters.genres {
            if !all.iter().any(|g| g.eq_ignore_ascii_case(genre)) {
                return Err(Error::InvalidArgument {
                    name: "--genre".into(),
                    message: format!("unknown genre '{genre}' (known: {})", all.join(", ")),
                });
            }
        }
        Ok(())
    }
}

/// Checks the full index: everything an open checks, every file's sha256, and that the model
/// and dataset of `paths` are those it was built from.
pub fn verify(paths: &Paths) -> Result<VerifyReport> {
    let index = open_index(paths)?;
    let files = index.verify_hashes()?;
    let model = model_files(&paths.model)?;
    index
        .manifest()
        .check_model(&paths.index, &model.weights, index.manifest().model.dim)?;
    Ok(VerifyReport {
        index: paths.index.clone(),
        generation: index.generation().to_string(),
        files,
        dataset_checked: paths.data.is_dir(),
    })
}

/// Opens the index of `paths` for its catalogue and vectors (no encoder), checking that it was
/// built from `paths.data`; builds it first if there is none.
pub fn open_or_build_index(paths: &Paths, options: &BuildOptions) -> Result<MovieIndex> {
    match open_index(paths) {
        Err(Error::IndexMissing { .. }) => {
            let index = build_if_missing(paths, options)?;
            index.manifest().check_dataset(&paths.index, &paths.data)?;
            Ok(index)
        }
        other => other,
    }
}

/// Opens the index of `paths`, refusing it if its format differs or its files are damaged, or if
/// it was built from other data than `paths.data`.
pub fn open_index(paths: &Paths) -> Result<MovieIndex> {
    let index = MovieIndex::open(&paths.index)?;
    index.manifest().check_dataset(&paths.index, &paths.data)?;
    Ok(index)
}

/// Whether the filter mask `allowed` (`None`: no filter) lets the movie at `position` through.
fn allows(allowed: Option<&[bool]>, position: u32) -> bool {
    allowed.is_none_or(|mask| mask.get(position as usize).copied().unwrap_or(false))
}

/// A graph search restricted to the movies a filter keeps.
type FilteredGraph<'a> = dyn Fn(&[f32], usize, &dyn Fn(usize) -> bool) -> Vec<Hit> + 'a;

/// Stage one under a filter: the exact scan when asked or when the filter keeps under
/// [`EXACT_FILTER_SHARE`] of the catalogue; otherwise the graph, falling back to the exact
/// scan when the graph walk finds fewer matches than wanted and exist.
fn retrieve_filtered(
    flat: &FlatIndex,
    graph: &FilteredGraph,
    vector: &[f32],
    wanted: usize,
    allowed: &dyn Fn(usize) -> bool,
    exact: bool,
) -> (Vec<Hit>, &'static str) {
    let matching = (0..flat.len()).filter(|&p| allowed(p)).count();
    if exact || (matching as f64) < EXACT_FILTER_SHARE * flat.len() as f64 {
        return (flat.search(vector, wanted, allowed), "exact");
    }
    let hits = graph(vector, wanted, allowed);
    if hits.len() < wanted.min(matching) {
        return (flat.search(vector, wanted, allowed), "exact");
    }
    (hits, "hnsw")
}

/// Refuses a k outside 1..=[`MAX_K`].
fn check_k(k: usize) -> Result<()> {
    if (1..=MAX_K).contains(&k) {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name: "-k".into(),
            message: format!("{k} is not within 1..={MAX_K}"),
        })
    }
}

/// Checks the settings shared by search and similar.
fn check_ranking(
    k: usize,
    candidates: usize,
    alpha: f32,
    personal_weight: Option<f64>,
) -> Result<()> {
    check_k(k)?;
    if !(1..=MAX_CANDIDATES).contains(&candidates) {
        return Err(Error::InvalidArgument {
            name: "--candidates".into(),
            message: format!("{candidates} is not within 1..={MAX_CANDIDATES}"),
        });
    }
    check_alpha(alpha)?;
    if let Some(weight) = personal_weight {
        check_weight("--personal-weight", weight)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_empty_and_huge_queries() {
        assert!(check_query("  \n\t ").is_err());
        assert_eq!(check_query("  space  ").ok(), Some("space"));
        let huge = "a".repeat(MAX_QUERY_CHARS + 1);
        let err = check_query(&huge).expect_err("too long");
        assert!(err.to_string().contains("10000"), "{err}");
        assert!(check_query(&"é".repeat(MAX_QUERY_CHARS)).is_ok());
    }

    #[test]
    fn a_graph_walk_that_finds_too_few_falls_back_to_the_exact_scan() {
        // Ten unit vectors in 2-d; the filter keeps the even positions (half the catalogue).
        let vectors: Vec<f32> = (0..10)
            .flat_map(|i| {
                let a = i as f32 * 0.3;
                [a.cos(), a.sin()]
            })
            .collect();
        let flat = FlatIndex::new(vectors, 2);
        let even = |p: usize| p.is_multiple_of(2);
        let query = [1.0, 0.0];
        let exact = flat.search(&query, 3, &even);
        // A graph that finds one match only: the exact scan answers.
        let poor = |_: &[f32], _: usize, _: &dyn Fn(usize) -> bool| vec![exact[0]];
        let (hits, how) = retrieve_filtered(&flat, &poor, &query, 3, &even, false);
        assert_eq!((hits, how), (exact.clone(), "exact"));
        // A graph that finds enough is used as it is.
        let good = |v: &[f32], n: usize, keep: &dyn Fn(usize) -> bool| flat.search(v, n, keep);
        assert_eq!(
            retrieve_filtered(&flat, &good, &query, 3, &even, false),
            (exact.clone(), "hnsw")
        );
        // More wanted than match: every match, not a fallback.
        let (all, how) = retrieve_filtered(&flat, &good, &query, 8, &even, false);
        assert_eq!((all.len(), how), (5, "hnsw"));
        // A filter keeping under a tenth is scanned exactly, without the graph.
        let rare = |p: usize| p == 3;
        let never = |_: &[f32], _: usize, _: &dyn Fn(usize) -> bool| -> Vec<Hit> {
            unreachable!("the graph is not walked for a rare filter")
        };
        let ten: Vec<f32> = (0..40)
            .flat_map(|i| [(i as f32).cos(), (i as f32).sin()])
            .collect();
        let big = FlatIndex::new(ten, 2);
        assert_eq!(
            retrieve_filtered(&big, &never, &query, 3, &rare, false).1,
            "exact"
        );
    }

    #[test]
    fn refuses_k_and_candidates_out_of_range() {
        assert!(check_ranking(10, 100, 0.7, Some(0.5)).is_ok());
        let error = check_ranking(0, 100, 0.7, Some(0.5)).expect_err("k = 0");
        assert!(error.to_string().contains("-k"), "{error}");
        assert!(check_ranking(MAX_K + 1, 100, 0.7, Some(0.5)).is_err());
        let error = check_ranking(10, 0, 0.7, Some(0.5)).expect_err("no candidates");
        assert!(error.to_string().contains("--candidates"), "{error}");
        assert!(check_ranking(10, 100, 1.5, Some(0.5)).is_err());
        assert!(check_ranking(10, 100, 0.7, Some(-0.1)).is_err());
        assert!(
            check_ranking(10, 100, 0.7, None).is_ok(),
            "no weight: the personal ranker"
        );
    }
}
