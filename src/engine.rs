//! The pipeline end to end: `build` (data → documents → embeddings → index) and the
//! [`Engine`] that answers queries (embed → stage one → stage two).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::Paths;
use crate::data::Dataset;
use crate::documents::build_documents;
use crate::embed::{model_files, Encoder};
use crate::error::{Error, Result};
use crate::fsutil::FileFingerprint;
use crate::index::{
    check_replaceable, write_index, Catalog, CatalogEntry, Counts, DatasetRecord, FlatIndex, Hit,
    HnswParams, Manifest, ModelRecord, MovieIndex, FORMAT_VERSION,
};
use crate::models::movie_stats;
use crate::models::popularity::{popularity_params, weighted_rating};
use crate::rank::stack::{Person, ServingStack, StackKind};
use crate::rank::{check_alpha, Filters, RankedMovie, DEFAULT_ALPHA};
use crate::recommend::{rank_by_vector, PersonalResponse, VectorRequest, DEFAULT_PERSONAL_WEIGHT};

/// Longest query accepted, in characters; longer ones are refused rather than silently cut.
pub const MAX_QUERY_CHARS: usize = 10_000;

/// Below this share of the catalogue, a filtered query scans the matching movies exactly
/// instead of walking the graph (a graph walk through mostly filtered-out nodes is slow and
/// can miss matches).
const EXACT_FILTER_SHARE: f64 = 0.1;

/// Seed of the serving stack's meta split, MF and trees when none is given.
pub const DEFAULT_SEED: u64 = 42;

/// Options of `build`.
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    /// HNSW parameters.
    pub hnsw: HnswParams,
    /// Show a progress bar on the terminal.
    pub progress: bool,
    /// Seed of the serving stack.
    pub seed: u64,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            hnsw: HnswParams::default(),
            progress: false,
            seed: DEFAULT_SEED,
        }
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Builds the index at `paths.index` from `paths.data` with `paths.model`, and returns its
/// manifest (counts and per-stage timings).
pub fn build(paths: &Paths, options: &BuildOptions) -> Result<Manifest> {
    let total = Instant::now();
    let mut timings = BTreeMap::new();
    check_replaceable(&paths.index)?;

    let t = Instant::now();
    let dataset = Dataset::load(&paths.data)?;
    timings.insert("load_data".to_string(), ms(t));
    tracing::info!(
        "loaded {} movies, {} ratings, {} tags from {}",
        dataset.movies.len(),
        dataset.ratings.len(),
        dataset.tags.len(),
        paths.data.display()
    );

    let t = Instant::now();
    let documents = build_documents(&dataset);
    timings.insert("documents".to_string(), ms(t));

    let t = Instant::now();
    let files = model_files(&paths.model)?;
    let encoder = Encoder::load(&files)?;
    timings.insert("load_model".to_string(), ms(t));

    let t = Instant::now();
    let bar = progress_bar(options.progress, documents.len(), "embedding");
    let embedded = encoder.embed_all(&documents, &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    let embed_ms = ms(t);
    timings.insert("embed".to_string(), embed_ms);
    tracing::info!(
        "embedded {} documents in {:.1} s ({:.0} docs/s)",
        documents.len(),
        embed_ms / 1e3,
        documents.len() as f64 / (embed_ms / 1e3)
    );

    let t = Instant::now();
    let catalog = catalog_of(&dataset);
    timings.insert("popularity".to_string(), ms(t));

    let t = Instant::now();
    let vectors = FlatIndex::new(embedded.vectors, encoder.dim());
    let stack = ServingStack::fit(&dataset, &vectors, options.seed);
    let stack_bytes = stack.to_bytes()?;
    timings.insert("stack".to_string(), ms(t));
    tracing::info!(
        "trained the serving stack in {:.1} s ({} meta rows, seed {})",
        ms(t) / 1e3,
        stack.training.meta_rows,
        options.seed
    );

    let t = Instant::now();
    let dataset_files = crate::data::DATASET_FILES
        .iter()
        .map(|name| (name, paths.data.join(name)))
        .filter(|(_, path)| path.is_file())
        .map(|(name, path)| FileFingerprint::of(&path, name))
        .collect::<Result<Vec<_>>>()?;
    let weights = FileFingerprint::of(&files.weights, "model.safetensors")?;
    timings.insert("fingerprint".to_string(), ms(t));

    let mut users: Vec<u32> = dataset.ratings.user.clone();
    users.sort_unstable();
    users.dedup();
    let mut manifest = Manifest {
        format_version: FORMAT_VERSION,
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        created_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: ModelRecord {
            id: files.id.clone(),
            weights,
            dim: encoder.dim(),
            max_seq_length: files.max_seq_length,
            pooling: files.pooling.clone(),
            normalized: true,
        },
        hnsw: options.hnsw,
        dataset: DatasetRecord {
            dir: paths.data.display().to_string(),
            files: dataset_files,
            skipped: dataset.skipped,
        },
        counts: Counts {
            movies: dataset.movies.len(),
            ratings: dataset.ratings.len(),
            tags: dataset.tags.len(),
            users: users.len(),
            truncated_documents: embedded.truncated,
        },
        files: Vec::new(),
        stack: stack.training.clone(),
        timings_ms: timings,
    };
    manifest.timings_ms.insert("total".to_string(), ms(total));
    write_index(
        &paths.index,
        &catalog,
        vectors.vectors(),
        &stack_bytes,
        manifest,
    )?;
    let manifest = Manifest::read(&paths.index)?;
    tracing::info!(
        "wrote index {} in {:.1} s",
        paths.index.display(),
        ms(total) / 1e3
    );
    Ok(manifest)
}

/// The catalogue of a dataset: every movie with its popularity statistics.
pub fn catalog_of(dataset: &Dataset) -> Catalog {
    let ratings = &dataset.ratings;
    let stats = movie_stats(&ratings.movie, &ratings.rating, dataset.movies.len());
    let params = popularity_params(&stats);
    let movies = dataset
        .movies
        .iter()
        .zip(&stats)
        .map(|(movie, s)| CatalogEntry {
            movie: movie.clone(),
            rating_count: s.count,
            mean_rating: (s.count > 0).then_some(s.mean as f32),
            weighted_rating: weighted_rating(f64::from(s.count), s.mean, params) as f32,
        })
        .collect();
    Catalog::new(params, movies)
}

fn progress_bar(show: bool, len: usize, message: &'static str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:>10} [{bar:40}] {pos}/{len} docs  {per_sec}  eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

/// Opens the index of `paths` for its catalogue and vectors (no encoder), checking that it was
/// built from `paths.data`; builds it first if there is none.
pub fn open_or_build_index(paths: &Paths, options: &BuildOptions) -> Result<MovieIndex> {
    match open_index(paths) {
        Err(Error::IndexMissing { .. }) => {
            tracing::info!("no index at {}: building it", paths.index.display());
            build(paths, options)?;
            open_index(paths)
        }
        other => other,
    }
}

/// Opens the index of `paths`, refusing it if its format differs or its files are damaged, or if
/// it was built from other data than `paths.data`.
fn open_index(paths: &Paths) -> Result<MovieIndex> {
    let index = MovieIndex::open(&paths.index)?;
    index.manifest().check_dataset(&paths.index, &paths.data)?;
    Ok(index)
}

/// A query and how to answer it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchRequest {
    /// Free text.
    pub query: String,
    /// Results wanted.
    pub k: usize,
    /// Candidates taken from stage one (at least k).
    pub candidates: usize,
    /// Restrictions applied before the top-k is cut.
    pub filters: Filters,
    /// Weight of the query similarity against popularity.
    pub alpha: f32,
    /// Use the exact scan instead of HNSW for stage one.
    pub exact: bool,
}

impl SearchRequest {
    /// Checks what can be checked without an index: the query and alpha.
    pub fn validate(&self) -> Result<()> {
        check_query(&self.query)?;
        check_alpha(self.alpha)?;
        Ok(())
    }

    /// A request with the default settings (k 10, 100 candidates, alpha 0.7, HNSW, no filter).
    pub fn new(query: impl Into<String>) -> SearchRequest {
        SearchRequest {
            query: query.into(),
            k: 10,
            candidates: 100,
            filters: Filters::default(),
            alpha: DEFAULT_ALPHA,
            exact: false,
        }
    }
}

/// The answer to a [`SearchRequest`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResponse {
    /// The query as given.
    pub query: String,
    /// Ranked results (sources: "query").
    pub results: Vec<RankedMovie>,
    /// How stage one ran: "hnsw" or "exact".
    pub retrieval: &'static str,
    /// Milliseconds per stage.
    pub timings_ms: BTreeMap<String, f64>,
}

/// A loaded index and encoder, ready to answer queries.
pub struct Engine {
    index: MovieIndex,
    encoder: Encoder,
    /// Loaded on first use: plain queries never need it.
    stack: OnceLock<ServingStack>,
}

impl Engine {
    /// Opens the index at `paths.index`, refusing it if its format, model or dataset differ.
    pub fn open(paths: &Paths) -> Result<Engine> {
        Engine::with_index(open_index(paths)?, paths)
    }

    /// Opens the index, building it first if there is none.
    pub fn open_or_build(paths: &Paths, options: &BuildOptions) -> Result<Engine> {
        Engine::with_index(open_or_build_index(paths, options)?, paths)
    }

    /// Loads the encoder for an opened index, refusing the index if it was built with other
    /// model weights.
    fn with_index(index: MovieIndex, paths: &Paths) -> Result<Engine> {
        let files = model_files(&paths.model)?;
        let encoder = Encoder::load(&files)?;
        index
            .manifest()
            .check_model(&paths.index, &files.weights, encoder.dim())?;
        Ok(Engine {
            index,
            encoder,
            stack: OnceLock::new(),
        })
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

    /// Answers a query: embed it, retrieve candidates, rerank them by the popularity blend,
    /// cut the top k.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResponse> {
        let (response, retrieval) = self.rank_query(request, None, DEFAULT_PERSONAL_WEIGHT)?;
        Ok(SearchResponse {
            query: request.query.clone(),
            results: response.results,
            retrieval,
            timings_ms: response.timings_ms,
        })
    }

    /// Answers a query for a person: the query's candidates reranked by the stack `kind`
    /// blended with the query similarity (`personal_weight`, see [`crate::recommend`]).
    pub fn search_for(
        &self,
        request: &SearchRequest,
        person: (&ServingStack, &Person, StackKind),
        personal_weight: f64,
    ) -> Result<PersonalResponse> {
        Ok(self.rank_query(request, Some(person), personal_weight)?.0)
    }

    /// Embeds the query, retrieves its candidates, ranks them (for `personal` if given); also
    /// says how stage one ran.
    fn rank_query(
        &self,
        request: &SearchRequest,
        personal: Option<(&ServingStack, &Person, StackKind)>,
        personal_weight: f64,
    ) -> Result<(PersonalResponse, &'static str)> {
        let total = Instant::now();
        request.validate()?;
        self.check_filters(&request.filters)?;
        let t = Instant::now();
        let vector = self.encoder.embed(request.query.trim())?;
        let embed_ms = ms(t);
        let retrieval = Cell::new("hnsw");
        let mut response = rank_by_vector(
            &self.index,
            personal,
            &VectorRequest {
                vector: &vector,
                k: request.k,
                candidates: request.candidates,
                alpha: request.alpha,
                personal_weight,
                exclude: None,
                source: "query",
            },
            &|v, n| {
                let (hits, how) = self.retrieve(v, n, &request.filters, request.exact);
                retrieval.set(how);
                hits
            },
        );
        response.timings_ms.insert("embed".to_string(), embed_ms);
        response.timings_ms.insert("total".to_string(), ms(total));
        Ok((response, retrieval.get()))
    }

    /// Stage one: the `wanted` movies most similar to `vector` that pass `filters`.
    pub fn retrieve(
        &self,
        vector: &[f32],
        wanted: usize,
        filters: &Filters,
        exact: bool,
    ) -> (Vec<Hit>, &'static str) {
        let catalog = &self.index.catalog().movies;
        let allowed = |p: usize| filters.matches(&catalog[p].movie);
        let flat = self.index.flat();
        if filters.is_empty() {
            if exact {
                return (flat.search(vector, wanted, &|_| true), "exact");
            }
            return (self.index.hnsw().search(vector, wanted, None), "hnsw");
        }
        let matching = (0..catalog.len()).filter(|&p| allowed(p)).count();
        if exact || (matching as f64) < EXACT_FILTER_SHARE * catalog.len() as f64 {
            return (flat.search(vector, wanted, &allowed), "exact");
        }
        let hits = self.index.hnsw().search(vector, wanted, Some(&allowed));
        if hits.len() < wanted.min(matching) {
            // The graph walk found too few matches: fall back to the exact scan.
            return (flat.search(vector, wanted, &allowed), "exact");
        }
        (hits, "hnsw")
    }

    fn check_filters(&self, filters: &Filters) -> Result<()> {
        for genre in &filters.genres {
            let known = self
                .index
                .catalog()
                .movies
                .iter()
                .any(|e| e.movie.genres.iter().any(|g| g.eq_ignore_ascii_case(genre)));
            if !known {
                let mut all: Vec<&str> = self
                    .index
                    .catalog()
                    .movies
                    .iter()
                    .flat_map(|e| e.movie.genres.iter().map(String::as_str))
                    .collect();
                all.sort_unstable();
                all.dedup();
                return Err(Error::InvalidArgument {
                    name: "--genre".into(),
                    message: format!("unknown genre '{genre}' (known: {})", all.join(", ")),
                });
            }
        }
        Ok(())
    }
}

/// The query with surrounding whitespace removed; empty or over-long queries are refused.
pub fn check_query(query: &str) -> Result<&str> {
    let trimmed = query.trim();
    if trimmed.is_empty() {
        return Err(Error::InvalidArgument {
            name: "query".into(),
            message: "the query is empty".into(),
        });
    }
    let chars = trimmed.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(Error::InvalidArgument {
            name: "query".into(),
            message: format!(
                "the query has {chars} characters; the limit is {MAX_QUERY_CHARS} \
                 (the model reads only its first 256 tokens anyway)"
            ),
        });
    }
    Ok(trimmed)
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
}
