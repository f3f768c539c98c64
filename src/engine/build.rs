//! `build`: data → documents → embeddings → serving stack → a new generation of the index,
//! under the root's build lock.

use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::ann::{FlatIndex, HnswParams};
use crate::catalog::catalog_of;
use crate::config::Paths;
use crate::data::{split_year, Dataset};
use crate::documents::{build_documents, ranked_tags, DocumentTemplate};
use crate::embed::{model_files, Embeddings, Encoder};
use crate::error::{Error, Result};
use crate::fsutil::{ms, pause_point, FileFingerprint};
use crate::keyword::{KeywordDoc, KeywordIndex};
use crate::profiles::{ProfileStore, StoreUrl};
use crate::rank::stack::ServingStack;
use crate::store::{
    BuildLock, Counts, DatasetRecord, GraphOrigin, Manifest, ModelRecord, MovieIndex, PeopleRecord,
    FORMAT_MARKER, FORMAT_VERSION,
};

/// Seed of the serving stack's meta split, MF and trees when none is given.
pub const DEFAULT_SEED: u64 = 42;

/// Options of `build`.
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    /// HNSW parameters.
    pub hnsw: HnswParams,
    /// Show progress bars on the terminal.
    pub progress: bool,
    /// Seed of the serving stack.
    pub seed: u64,
    /// How each movie's document is written.
    pub document_template: DocumentTemplate,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            hnsw: HnswParams::default(),
            progress: false,
            seed: DEFAULT_SEED,
            document_template: DocumentTemplate::default(),
        }
    }
}

/// Builds a new generation of the index at `paths.index` from `paths.data` with `paths.model`,
/// publishes it, and returns its manifest (counts and per-stage timings). Waits for another
/// build of the same index to finish first.
pub fn build(paths: &Paths, options: &BuildOptions) -> Result<Manifest> {
    let lock = BuildLock::acquire(&paths.index)?;
    build_locked(paths, options, lock)
}

/// Builds the index unless it exists by the time the build lock is held (another process may
/// have built it meanwhile); then opens it. What `search` does when there is no index.
pub fn build_if_missing(paths: &Paths, options: &BuildOptions) -> Result<MovieIndex> {
    let lock = BuildLock::acquire(&paths.index)?;
    if !lock.has_current() {
        tracing::info!(
            "no index at {}: building it first (about a minute for ml-latest-small)",
            paths.index.display()
        );
        build_locked(paths, options, lock)?;
    } else {
        drop(lock);
    }
    MovieIndex::open(&paths.index)
}

/// Adds the profiles of the store at `url` (if there is one) to `dataset` as new users, in
/// profile-id order: what people rated online trains the next index (the offline loop of the
/// production design, notebook 002 §8.1).
fn ingest_people(dataset: &mut Dataset, url: &StoreUrl) -> Result<Option<PeopleRecord>> {
    let Some(store) = ProfileStore::open_existing(url)? else {
        return Ok(None);
    };
    let mut people: Vec<Vec<(u32, f32, i64)>> = Vec::new();
    let mut last: Option<String> = None;
    for r in store.all_ratings()? {
        if last.as_deref() != Some(r.profile.as_str()) {
            people.push(Vec::new());
            last = Some(r.profile.clone());
        }
        if let Some(ratings) = people.last_mut() {
            ratings.push((r.movie_id, r.rating, r.rated_at_ms / 1000));
        }
    }
    let added = dataset.add_people(&people);
    tracing::info!(
        "took in {} people of {} as users {}.. ({} ratings, {} of movies not in the data dropped)",
        added.people,
        store.url(),
        added.first_user,
        added.ratings,
        added.dropped
    );
    Ok(Some(PeopleRecord {
        store: store.url(),
        added,
    }))
}

fn build_locked(paths: &Paths, options: &BuildOptions, lock: BuildLock) -> Result<Manifest> {
    match build_generation(paths, options, &lock) {
        Ok(manifest) => Ok(manifest),
        Err(error) => {
            lock.abandon();
            Err(error)
        }
    }
}

fn build_generation(paths: &Paths, options: &BuildOptions, lock: &BuildLock) -> Result<Manifest> {
    let total = Instant::now();
    let mut timings = BTreeMap::new();

    let t = Instant::now();
    let mut dataset = Dataset::load(&paths.data)?;
    let people = ingest_people(&mut dataset, &paths.store)?;
    if dataset.ratings.is_empty() {
        // An index without ratings has no popularity and no stack: never let one replace a
        // working index.
        return Err(Error::EmptyDataset {
            path: paths.data.join("ratings.csv"),
            reason: "no rating is left after validation".into(),
        });
    }
    timings.insert("load_data".to_string(), ms(t));
    tracing::info!(
        "loaded {} movies, {} ratings, {} tags from {}",
        dataset.movies.len(),
        dataset.ratings.len(),
        dataset.tags.len(),
        paths.data.display()
    );

    let t = Instant::now();
    let documents = build_documents(&dataset, options.document_template);
    timings.insert("documents".to_string(), ms(t));

    let t = Instant::now();
    let files = model_files(&paths.model)?;
    let encoder = Encoder::load(&files)?;
    timings.insert("load_model".to_string(), ms(t));

    let t = Instant::now();
    let weights = FileFingerprint::of(&files.weights, "model.safetensors")?;
    timings.insert("fingerprint_model".to_string(), ms(t));

    let t = Instant::now();
    let dim = encoder.dim();
    let previous = reusable_generation(lock, &weights, dim);
    // Document text → its position in the previous generation (its vector is read in place).
    let previous_position: HashMap<&str, usize> =
        previous.as_ref().map_or_else(HashMap::new, |index| {
            let stored = index.flat().len();
            index
                .catalog()
                .movies
                .iter()
                .take(stored)
                .enumerate()
                .map(|(p, entry)| (entry.document.as_str(), p))
                .collect()
        });
    let missing: Vec<usize> = (0..documents.len())
        .filter(|&i| !previous_position.contains_key(documents[i].as_str()))
        .collect();
    let texts: Vec<String> = missing.iter().map(|&i| documents[i].clone()).collect();
    // The crash tests stop a build here too when every vector is reused.
    pause_point("embedding");
    let bar = progress_bar(options.progress, texts.len(), "embedding", "docs");
    let fresh = if texts.is_empty() {
        Embeddings::default()
    } else {
        encoder.embed_all(&texts, &|n| {
            bar.inc(n as u64);
            pause_point("embedding");
        })?
    };
    bar.finish_and_clear();
    let mut all_vectors = vec![0f32; documents.len() * dim];
    let mut reused_texts: Vec<&str> = Vec::new();
    if let Some(index) = &previous {
        for (i, document) in documents.iter().enumerate() {
            if let Some(&p) = previous_position.get(document.as_str()) {
                all_vectors[i * dim..(i + 1) * dim].copy_from_slice(index.flat().vector(p));
                reused_texts.push(document);
            }
        }
    }
    for (&i, vector) in missing.iter().zip(fresh.vectors.chunks_exact(dim)) {
        all_vectors[i * dim..(i + 1) * dim].copy_from_slice(vector);
    }
    let truncated = fresh.truncated + encoder.count_truncated(&reused_texts)?;
    let reused = reused_texts.len();
    // The previous graph serves as it is when every vector is bit for bit the previous one
    // at the same position (and the parameters are the same), and is extended when the
    // previous vectors are the first ones (new movies appended).
    let previous_graph: Option<(std::path::PathBuf, usize)> = previous
        .as_ref()
        .filter(|index| {
            let stored = index.flat().vectors();
            index.manifest().hnsw.builds_same_graph(&options.hnsw)
                && !stored.is_empty()
                && stored.len() <= all_vectors.len()
                && stored
                    .iter()
                    .zip(&all_vectors)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
                && index.graph_files_intact()
        })
        .map(|index| (index.dir().join(index.generation()), index.flat().len()));
    drop(previous_position);
    drop(previous);
    let embed_ms = ms(t);
    timings.insert("embed".to_string(), embed_ms);
    tracing::info!(
        "embedded {} documents in {:.1} s ({:.0} docs/s), {reused} vectors reused",
        texts.len(),
        embed_ms / 1e3,
        texts.len() as f64 / (embed_ms / 1e3)
    );

    let t = Instant::now();
    let catalog = catalog_of(&dataset, &documents);
    timings.insert("popularity".to_string(), ms(t));

    let t = Instant::now();
    let spinner = progress_bar(options.progress, 0, "training the serving stack", "");
    let vectors = FlatIndex::new(all_vectors, dim);
    let embed = |texts: &[String]| encoder.embed_texts(texts);
    // The graph is built on its own thread while the stack trains: its insertion is serial
    // (so that the graph is the same on every build) and would leave a core idle.
    let (graph, stack) = std::thread::scope(|scope| {
        let graph = scope.spawn(|| {
            let previous = previous_graph.as_ref().map(|(dir, n)| (dir.as_path(), *n));
            lock.prepare_graph(vectors.vectors(), dim, options.hnsw, previous)
        });
        let stack = ServingStack::fit(&dataset, &vectors, &embed, options.seed);
        let graph = graph
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (graph, stack)
    });
    let (graph, stack) = (graph?, stack?);
    let stack_bytes = stack.to_bytes()?;
    spinner.finish_and_clear();
    timings.insert("stack".to_string(), ms(t));
    timings.insert("hnsw".to_string(), graph.ms);
    tracing::info!(
        "trained the serving stack in {:.1} s ({} meta rows, seed {}); HNSW graph {} in {:.1} s",
        ms(t) / 1e3,
        stack.training.meta_rows,
        options.seed,
        graph.origin.label(),
        graph.ms / 1e3
    );

    // The graph's search list size, measured on this catalogue where it is walked.
    let t = Instant::now();
    let mut hnsw = options.hnsw;
    if vectors.len() >= super::GRAPH_FROM_MOVIES {
        let queries = calibration_queries(&catalog, &encoder)?;
        let (ef, recall) = graph.load(hnsw, &vectors)?.calibrate_ef(&vectors, &queries);
        hnsw.ef_search = ef;
        tracing::info!(
            "HNSW search list {ef}: recall@10 {recall:.4} against the exact scan ({} title queries)",
            queries.len()
        );
        timings.insert("hnsw_calibration".to_string(), ms(t));
    }

    let t = Instant::now();
    let keyword_bytes = keyword_index(&dataset)?.to_bytes()?;
    timings.insert("keyword".to_string(), ms(t));

    let t = Instant::now();
    let dataset_files = crate::data::DATASET_FILES
        .iter()
        .map(|name| (name, paths.data.join(name)))
        .filter(|(_, path)| path.is_file())
        .map(|(name, path)| FileFingerprint::of(&path, name))
        .collect::<Result<Vec<_>>>()?;
    timings.insert("fingerprint".to_string(), ms(t));

    let mut users: Vec<u32> = dataset.ratings.user.clone();
    users.sort_unstable();
    users.dedup();
    let mut manifest = Manifest {
        format: FORMAT_MARKER.to_string(),
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
        hnsw,
        document_template: options.document_template,
        dataset: DatasetRecord {
            dir: paths.data.display().to_string(),
            files: dataset_files,
            skipped: dataset.skipped,
        },
        people,
        counts: Counts {
            movies: dataset.movies.len(),
            ratings: dataset.ratings.len(),
            tags: dataset.tags.len(),
            users: users.len(),
            truncated_documents: truncated,
            reused_vectors: reused,
            reused_graph: graph.origin == GraphOrigin::Reused,
            extended_graph: match graph.origin {
                GraphOrigin::Extended(points) => points,
                GraphOrigin::Built | GraphOrigin::Reused => 0,
            },
        },
        files: Vec::new(),
        stack: serde_json::to_value(&stack.training).map_err(|e| Error::Json {
            path: paths.index.clone(),
            error: e,
        })?,
        timings_ms: timings,
    };
    manifest.timings_ms.insert("total".to_string(), ms(total));
    let (generation, manifest) = lock.publish(
        &catalog,
        vectors.vectors(),
        &stack_bytes,
        &keyword_bytes,
        graph,
        manifest,
    )?;
    tracing::info!(
        "published {} as {generation} in {:.1} s",
        lock.root().display(),
        ms(total) / 1e3
    );
    Ok(manifest)
}

/// The current generation of the index being rebuilt, when it was embedded with the same
/// weights (sha256) into `dim` dimensions: a rebuild after new ratings then embeds only new or
/// changed documents. None when there is no readable generation (a damaged or older index is
/// rebuilt from scratch, never read).
fn reusable_generation(
    lock: &BuildLock,
    weights: &FileFingerprint,
    dim: usize,
) -> Option<MovieIndex> {
    if !lock.has_current() {
        return None;
    }
    let index = MovieIndex::open(lock.root())
        .map_err(|error| {
            tracing::info!("not reusing vectors of {}: {error}", lock.root().display());
        })
        .ok()?;
    let model = &index.manifest().model;
    (model.weights.sha256 == weights.sha256 && model.dim == dim).then_some(index)
}

/// The keyword index of the dataset's movies: titles, genres and deduplicated tags.
pub fn keyword_index(dataset: &Dataset) -> Result<KeywordIndex> {
    let mut tags: Vec<Vec<&str>> = vec![Vec::new(); dataset.movies.len()];
    for tag in &dataset.tags {
        if let Some(list) = tags.get_mut(tag.movie as usize) {
            list.push(tag.text.as_str());
        }
    }
    let docs = dataset
        .movies
        .iter()
        .zip(tags)
        .map(|(movie, tags)| KeywordDoc {
            title: split_year(&movie.title).0,
            genres: &movie.genres,
            tags: ranked_tags(tags),
        });
    Ok(KeywordIndex::build(docs)?)
}

/// A progress bar over `len` items (a spinner when `len` is 0), hidden unless `show`.
fn progress_bar(
    show: bool,
    len: usize,
    message: &'static str,
    unit: &str,
) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    if len == 0 {
        let spinner = indicatif::ProgressBar::new_spinner();
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        spinner.set_message(message);
        return spinner;
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{{msg:>10}} [{{bar:40}}] {{pos}}/{{len}} {unit}  {{per_sec}}  eta {{eta}}"
    )) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

/// Titles of [`CALIBRATION_QUERIES`] movies spread evenly over the catalogue, embedded: the
/// queries whose nearest movies the graph must find (a title has one close match and a flat
/// tail of similarities, the hardest case for a graph walk).
fn calibration_queries(
    catalog: &crate::catalog::Catalog,
    encoder: &Encoder,
) -> Result<Vec<Vec<f32>>> {
    let n = catalog.movies.len();
    let count = CALIBRATION_QUERIES.min(n);
    let titles: Vec<String> = (0..count)
        .map(|i| catalog.movies[i * n / count].movie.title.clone())
        .collect();
    encoder.embed_texts(&titles)
}

/// How many title queries measure the graph's recall at build.
const CALIBRATION_QUERIES: usize = 200;
