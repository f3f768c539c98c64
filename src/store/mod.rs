//! The index store: one root directory holding immutable generations, a `CURRENT` pointer
//! switched atomically, and a lock for builders.
//!
//! ```text
//! indexes/ml-latest-small/          the root (--index)
//!   REELRANK_INDEX                  marker: this directory is ours
//!   LOCK                            held exclusively by the one build running
//!   CURRENT                         "gen-000007": the generation readers open
//!   gen-000006/                     the previous generation, kept for readers still on it
//!   gen-000007/
//!     manifest.json                 written last: format, model, dataset, files, timings
//!     catalog.json                  movies and their popularity statistics, in vector order
//!     vectors.f32                   unit embeddings, row-major little-endian f32
//!     graph.hnsw.graph, .data       hnsw_rs graph and its copy of the vectors
//!     stack.bin                     the serving stack (postcard), opaque to the store
//!     READERS                       shared-locked by every process that has this generation open
//!   .staging-XXXX/                  a build in progress (or killed: removed by the next build)
//! ```
//!
//! What a crash leaves behind, at any point: `CURRENT` names a complete generation or does not
//! exist; a killed build leaves at most a `.staging-*` directory, an unreferenced `gen-*` or a
//! `.tmp*` file, which the next build removes. A generation is deleted only when it is neither
//! current nor previous and no process holds its `READERS` lock. The store never deletes a
//! directory it did not create: `--index` must be missing, empty, marked as ours, or an index
//! of the older single-directory layout (whose known files alone are removed).

mod files;
mod manifest;

use std::fs::File;
use std::path::{Path, PathBuf};

pub use files::{IndexFile, CATALOG_FILE, INDEX_FILES, KEYWORD_FILE, STACK_FILE, VECTORS_FILE};
pub use manifest::{
    Counts, DatasetRecord, Manifest, ModelRecord, PeopleRecord, FORMAT_MARKER, FORMAT_VERSION,
    MANIFEST_FILE,
};

use crate::ann::{FlatIndex, HnswIndex, HnswParams, GRAPH_FILES};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::fsutil::{fsync_dir, pause_point, write_atomic};
use crate::keyword::KeywordIndex;
use crate::linalg::dot;

/// The marker file of a root; its contents are [`ROOT_MARKER_TEXT`].
pub const ROOT_MARKER: &str = "REELRANK_INDEX";
/// What the marker file says.
const ROOT_MARKER_TEXT: &str = "reelrank index root (format 4): generations, CURRENT, LOCK\n";
/// The pointer to the current generation.
pub const CURRENT_FILE: &str = "CURRENT";
/// The builders' lock file.
pub const LOCK_FILE: &str = "LOCK";
/// The readers' lock file inside a generation.
const READERS_FILE: &str = "READERS";
/// Prefix of a build's staging directory.
const STAGING_PREFIX: &str = ".staging-";
/// Prefix of a generation directory.
const GENERATION_PREFIX: &str = "gen-";
/// The files of the single-directory layout (format ≤ 3), removed once a generation replaces
/// them.
const LEGACY_FILES: [&str; 6] = [
    MANIFEST_FILE,
    CATALOG_FILE,
    VECTORS_FILE,
    STACK_FILE,
    GRAPH_FILES[0],
    GRAPH_FILES[1],
];

/// An opened generation: manifest, catalogue, exact vectors and HNSW graph, in memory. It holds
/// the generation's reader lock, so no build deletes it while it is open.
#[derive(Debug)]
pub struct MovieIndex {
    root: PathBuf,
    generation: String,
    manifest: Manifest,
    catalog: Catalog,
    flat: FlatIndex,
    hnsw: std::sync::OnceLock<HnswIndex>,
    keyword: KeywordIndex,
    /// Shared lock on the generation's READERS file, released on drop.
    _reader: File,
}

impl MovieIndex {
    /// Opens the current generation of the index at `root`, checking the file list, every
    /// file's size and crc32 and the files' agreement with each other (see [`files`]).
    pub fn open(root: &Path) -> Result<MovieIndex> {
        // A build may delete the generation between reading CURRENT and locking it (after two
        // newer ones were published): read the pointer again then.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let generation = read_current(root)?;
            let dir = root.join(&generation);
            match lock_reader(&dir) {
                Ok(reader) => {
                    return MovieIndex::open_generation(root, generation, reader)
                        .map_err(|e| naming_root(e, root))
                }
                Err(e) if attempts < 3 => {
                    tracing::debug!(
                        "generation {generation} went away ({e}); reading CURRENT again"
                    )
                }
                Err(e) => {
                    return Err(Error::IndexCorrupt {
                        path: dir,
                        dir: root.to_path_buf(),
                        reason: format!("CURRENT names a generation that cannot be opened: {e}"),
                    })
                }
            }
        }
    }

    /// The generation `CURRENT` names now (what the next open would read).
    pub fn current_generation(root: &Path) -> Result<String> {
        read_current(root)
    }

    fn open_generation(root: &Path, generation: String, reader: File) -> Result<MovieIndex> {
        let dir = root.join(&generation);
        let manifest = Manifest::read(&dir)?;
        manifest.check_file_list(&dir)?;
        let corrupt = |what: &str, reason: String| Error::IndexCorrupt {
            path: dir.join(what),
            dir: root.to_path_buf(),
            reason,
        };
        let catalog_bytes = manifest.file(&dir, CATALOG_FILE)?.map_checked(&dir)?;
        let catalog: Catalog = serde_json::from_slice(&catalog_bytes)
            .map_err(|e| corrupt(CATALOG_FILE, e.to_string()))?;
        let vectors = manifest.file(&dir, VECTORS_FILE)?.map_checked(&dir)?;
        let dim = manifest.model.dim;
        if dim == 0 || vectors.len() != catalog.movies.len() * dim * 4 {
            return Err(corrupt(
                VECTORS_FILE,
                format!(
                    "{} floats for {} movies of dimension {dim}",
                    vectors.len() / 4,
                    catalog.movies.len()
                ),
            ));
        }
        let flat = FlatIndex::mapped(vectors, dim).map_err(|e| corrupt(VECTORS_FILE, e))?;
        // The stack and the graph are read (their checksums checked) on first use: at
        // ml-latest's size they are 1.1 GB and 200 MB that a one-shot plain search never
        // needs. Their sizes are checked now.
        for name in [STACK_FILE, GRAPH_FILES[0], GRAPH_FILES[1]] {
            manifest.file(&dir, name)?.check_size(&dir)?;
        }
        let keyword_bytes = manifest.file(&dir, KEYWORD_FILE)?.map_checked(&dir)?;
        let keyword = KeywordIndex::from_bytes(&keyword_bytes)
            .map_err(|e| corrupt(KEYWORD_FILE, e.to_string()))?;
        if keyword.len() != catalog.movies.len() {
            return Err(corrupt(
                KEYWORD_FILE,
                format!(
                    "{} documents for {} movies",
                    keyword.len(),
                    catalog.movies.len()
                ),
            ));
        }
        Ok(MovieIndex {
            root: root.to_path_buf(),
            generation,
            manifest,
            catalog,
            flat,
            hnsw: std::sync::OnceLock::new(),
            keyword,
            _reader: reader,
        })
    }

    /// The keyword (BM25) index.
    pub fn keyword(&self) -> &KeywordIndex {
        &self.keyword
    }

    /// The index root directory (`--index`).
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// The name of the generation in use, e.g. `gen-000007`.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The catalogue.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The exact index (and the vectors).
    pub fn flat(&self) -> &FlatIndex {
        &self.flat
    }

    /// Whether the graph's files are whole (the size and crc32 the manifest records): a build
    /// checks this before it links or extends them.
    pub fn graph_files_intact(&self) -> bool {
        self.check_graph_files().is_ok()
    }

    /// Checks the graph's files against the manifest's size and crc32, on a map.
    fn check_graph_files(&self) -> Result<()> {
        let dir = self.root.join(&self.generation);
        for name in GRAPH_FILES {
            self.manifest.file(&dir, name)?.map_checked(&dir)?;
        }
        Ok(())
    }

    /// The HNSW index, loaded on first use (its files' checksums checked then; a damaged
    /// graph is refused, never walked).
    pub fn hnsw(&self) -> Result<&HnswIndex> {
        if let Some(graph) = self.hnsw.get() {
            return Ok(graph);
        }
        let dir = self.root.join(&self.generation);
        let corrupt = |reason: String| Error::IndexCorrupt {
            path: dir.join(GRAPH_FILES[0]),
            dir: self.root.clone(),
            reason,
        };
        self.check_graph_files()?;
        // Its points are checked to be the catalogue's vectors, bit for bit.
        let graph = HnswIndex::load(&dir, self.manifest.hnsw, &self.flat).map_err(corrupt)?;
        Ok(self.hnsw.get_or_init(|| graph))
    }

    /// This index with its catalogue replaced by `catalog` (the same movies in the same order,
    /// with other statistics: an evaluation's training part); other movies are an error.
    pub fn with_catalog(mut self, catalog: Catalog) -> Result<MovieIndex> {
        let same = catalog.movies.len() == self.catalog.movies.len()
            && catalog
                .movies
                .iter()
                .zip(&self.catalog.movies)
                .all(|(a, b)| a.movie.id == b.movie.id);
        if !same {
            return Err(Error::IndexIncompatible {
                path: self.root.clone(),
                reason: "the replacement catalogue holds other movies".into(),
            });
        }
        self.catalog = catalog;
        Ok(self)
    }

    /// The exact cosine similarity of the movie at `position` to a unit `vector`, from the
    /// stored vector (whichever index found the movie).
    pub fn similarity(&self, vector: &[f32], position: usize) -> f32 {
        dot(vector, self.flat.vector(position))
    }

    /// The serving stack's bytes, size and crc32 checked (the generation is still there: this
    /// index holds its reader lock).
    pub fn stack_bytes(&self) -> Result<Vec<u8>> {
        let dir = self.root.join(&self.generation);
        self.manifest.file(&dir, STACK_FILE)?.read_checked(&dir)
    }

    /// The full check of `reelrank verify`: everything [`MovieIndex::open`] checks, plus every
    /// file's sha256. Returns the files checked.
    pub fn verify_hashes(&self) -> Result<Vec<IndexFile>> {
        let dir = self.root.join(&self.generation);
        for file in &self.manifest.files {
            file.verify_sha256(&dir)
                .map_err(|e| naming_root(e, &self.root))?;
        }
        Ok(self.manifest.files.clone())
    }
}

/// The name of the current generation of `root`; [`Error::IndexMissing`] when there is none.
/// A generation's error made to name the index root, which is what `build --index` takes
/// (the files and checks of a generation know only their own directory).
fn naming_root(error: Error, root: &Path) -> Error {
    match error {
        Error::IndexCorrupt { path, reason, .. } => Error::IndexCorrupt {
            path,
            dir: root.to_path_buf(),
            reason,
        },
        Error::IndexIncompatible { reason, .. } => Error::IndexIncompatible {
            path: root.to_path_buf(),
            reason,
        },
        other => other,
    }
}

fn read_current(root: &Path) -> Result<String> {
    let path = root.join(CURRENT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let name = text.trim();
            if generation_number(name).is_none() {
                return Err(Error::IndexCorrupt {
                    path,
                    dir: root.to_path_buf(),
                    reason: format!("'{}' is not a generation name", name.escape_debug()),
                });
            }
            Ok(name.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if is_legacy_index(root) {
                return Err(Error::IndexIncompatible {
                    path: root.to_path_buf(),
                    reason: "it has the single-directory layout of format 3 and older".into(),
                });
            }
            Err(Error::IndexMissing {
                path: root.to_path_buf(),
            })
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The number of a generation directory name (`gen-000007` → 7).
fn generation_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(GENERATION_PREFIX)?;
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn generation_name(number: u64) -> String {
    format!("{GENERATION_PREFIX}{number:06}")
}

/// Takes a shared lock on a generation's READERS file.
fn lock_reader(dir: &Path) -> std::io::Result<File> {
    let file = File::open(dir.join(READERS_FILE))?;
    file.lock_shared()?;
    // The generation may have been deleted while we waited for the lock.
    if !dir.join(MANIFEST_FILE).is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the generation was removed",
        ));
    }
    Ok(file)
}

/// Whether `root` holds an index of the single-directory layout (format ≤ 3): a manifest that
/// parses as one of ours, listing only files of that layout.
fn is_legacy_index(root: &Path) -> bool {
    #[derive(serde::Deserialize)]
    struct LegacyFile {
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct LegacyManifest {
        format_version: u32,
        #[allow(dead_code)]
        crate_version: String,
        #[allow(dead_code)]
        model: serde_json::Value,
        files: Vec<LegacyFile>,
    }
    let Ok(bytes) = std::fs::read(root.join(MANIFEST_FILE)) else {
        return false;
    };
    serde_json::from_slice::<LegacyManifest>(&bytes).is_ok_and(|m| {
        m.format_version < 4
            && m.files
                .iter()
                .all(|f| LEGACY_FILES.contains(&f.name.as_str()))
    })
}

fn is_empty_dir(dir: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .next()
        .is_none())
}

/// Refuses a `--index` that is not ours to write into: it must be missing, an empty directory,
/// a root marked as ours, or an index of the older layout. No side effect.
pub fn check_writable(root: &Path) -> Result<()> {
    if !root.exists() {
        return Ok(());
    }
    let refuse = |why: &str| {
        Err(Error::InvalidArgument {
            name: "--index".into(),
            message: format!(
                "{} {why}; refusing to write an index there (choose a new or empty directory)",
                root.display()
            ),
        })
    };
    if !root.is_dir() {
        return refuse("exists and is not a directory");
    }
    let marker = root.join(ROOT_MARKER);
    if marker.is_file() {
        return match std::fs::read_to_string(&marker) {
            Ok(text) if text == ROOT_MARKER_TEXT => Ok(()),
            _ => refuse(&format!(
                "has a {ROOT_MARKER} file that reelrank did not write"
            )),
        };
    }
    if is_empty_dir(root)? || is_legacy_index(root) {
        return Ok(());
    }
    refuse("exists and is not a reelrank index")
}

/// The HNSW graph files of a generation being built ([`BuildLock::prepare_graph`]).
#[derive(Debug)]
pub struct PreparedGraph {
    dir: tempfile::TempDir,
    /// Milliseconds spent building or linking it.
    pub ms: f64,
    /// Where the graph came from.
    pub origin: GraphOrigin,
}

/// How a build came by its HNSW graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphOrigin {
    /// Built over every vector.
    Built,
    /// The previous generation's files, linked: the same vectors.
    Reused,
    /// The previous generation's graph with this many new points inserted.
    Extended(usize),
}

impl GraphOrigin {
    /// One word for the build's log.
    pub fn label(self) -> &'static str {
        match self {
            GraphOrigin::Built => "built",
            GraphOrigin::Reused => "reused",
            GraphOrigin::Extended(_) => "extended",
        }
    }
}

impl PreparedGraph {
    /// Loads the prepared graph over the `vectors` it was prepared from (to measure it before
    /// it is published).
    pub fn load(&self, params: HnswParams, vectors: &FlatIndex) -> Result<HnswIndex> {
        HnswIndex::load(self.dir.path(), params, vectors).map_err(|reason| Error::IndexCorrupt {
            path: self.dir.path().join(GRAPH_FILES[0]),
            dir: self.dir.path().to_path_buf(),
            reason,
        })
    }
}

/// The one build allowed at a time on an index root: an exclusive lock on `LOCK`, released on
/// drop. Taking it cleans what killed builds left behind.
#[derive(Debug)]
pub struct BuildLock {
    root: PathBuf,
    file: File,
    /// The directories this lock created, the root last (removed again if the build
    /// publishes nothing).
    created: Vec<PathBuf>,
}

impl BuildLock {
    /// Checks that `root` is ours (see [`check_writable`]), creates and marks it if needed,
    /// and takes the lock, waiting (with a message) while another build holds it.
    // std's File::lock (Rust 1.89) is flock(2) on Linux, what fs4/fd-lock wrap: no crate needed.
    pub fn acquire(root: &Path) -> Result<BuildLock> {
        check_writable(root)?;
        let mut created: Vec<PathBuf> = root
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .map(Path::to_path_buf)
            .collect();
        created.reverse();
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let marker = root.join(ROOT_MARKER);
        if !marker.is_file() {
            write_atomic(&marker, ROOT_MARKER_TEXT.as_bytes())?;
        }
        let path = root.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::warn!(
                    "another build of {} is running; waiting for it to finish",
                    root.display()
                );
                file.lock().map_err(|e| Error::io(&path, e))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        let lock = BuildLock {
            root: root.to_path_buf(),
            file,
            created,
        };
        lock.remove_abandoned()?;
        Ok(lock)
    }

    /// The root this lock guards.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the root has a current generation (another build may have published one while
    /// this one waited for the lock).
    pub fn has_current(&self) -> bool {
        self.root.join(CURRENT_FILE).is_file()
    }

    /// Removes what killed builds left: staging directories, temporary files, and generations
    /// that are neither current nor previous and that no reader holds.
    fn remove_abandoned(&self) -> Result<()> {
        let current = read_current(&self.root).ok();
        let keep_below = current.as_deref().and_then(generation_number);
        for entry in std::fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))? {
            let entry = entry.map_err(|e| Error::io(&self.root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(STAGING_PREFIX) {
                tracing::debug!("removing abandoned {}", path.display());
                std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            } else if name.starts_with(".tmp") && path.is_file() {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            } else if let Some(number) = generation_number(&name) {
                // A generation newer than CURRENT was renamed into place by a build killed
                // before its switch: nobody can have opened it.
                if keep_below.is_none_or(|current| number > current) {
                    std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
                }
            }
        }
        Ok(())
    }

    /// A new staging directory in the root (removed on drop, or by the next build's cleanup
    /// if this process dies).
    fn staging_dir(&self) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(&self.root)
            .map_err(|e| Error::io(&self.root, e))
    }

    /// The HNSW graph of the next generation, in a staging directory of the root (removed
    /// with the other staging leftovers if the build dies). `previous` is a generation whose
    /// graph was built with these `params` over the first `n` of `vectors`, bit for bit: when
    /// that is all of them, its files are linked (the build is deterministic, so it is the
    /// graph a rebuild would make); when new movies were appended, they are inserted into it
    /// (3.8–4.0 s for 100 movies into ml-latest's 86.5k with loading and writing, the
    /// insertions 0.3 s of it, where building anew takes 330–360 s; the
    /// result is not byte for byte the graph a build from scratch makes, since the level
    /// generator starts anew on load, but it is the same for the same previous generation).
    /// Otherwise, or if that fails, it is built over `vectors`: hnsw_rs cannot delete a
    /// changed movie's node. Safe to call on another thread while the stack trains.
    pub fn prepare_graph(
        &self,
        vectors: &[f32],
        dim: usize,
        params: HnswParams,
        previous: Option<(&Path, usize)>,
    ) -> Result<PreparedGraph> {
        let started = std::time::Instant::now();
        let dir = self.staging_dir()?;
        let n = vectors.len() / dim.max(1);
        let origin = match previous {
            Some((previous, points)) if points == n => {
                let linked = GRAPH_FILES.iter().all(|name| {
                    let (from, to) = (previous.join(name), dir.path().join(name));
                    std::fs::hard_link(&from, &to)
                        .or_else(|_| std::fs::copy(&from, &to).map(|_| ()))
                        .is_ok()
                });
                if linked {
                    GraphOrigin::Reused
                } else {
                    GraphOrigin::Built
                }
            }
            Some((previous, points)) if points < n => {
                match HnswIndex::extend_into(previous, dir.path(), vectors, dim, points) {
                    Ok(()) => GraphOrigin::Extended(n - points),
                    Err(error) => {
                        tracing::warn!(
                            "could not extend the graph of {}: {error}; building it anew",
                            previous.display()
                        );
                        GraphOrigin::Built
                    }
                }
            }
            _ => GraphOrigin::Built,
        };
        if origin == GraphOrigin::Built {
            for name in GRAPH_FILES {
                let _ = std::fs::remove_file(dir.path().join(name));
            }
            let tmp = dir.path();
            HnswIndex::build_into(tmp, vectors, dim, params)
                .map_err(|e| Error::io(tmp.join(GRAPH_FILES[0]), e))?;
        }
        Ok(PreparedGraph {
            dir,
            ms: started.elapsed().as_secs_f64() * 1e3,
            origin,
        })
    }

    /// Publishes a new generation: writes every file into a staging directory, moves the
    /// prepared graph in, reads every file back for its checksums, writes the manifest,
    /// renames the directory into place and switches `CURRENT` to it. Returns the manifest as
    /// written. `manifest.files` and the "total" timing are filled in here.
    pub fn publish(
        &self,
        catalog: &Catalog,
        vectors: &[f32],
        stack: &[u8],
        keyword: &[u8],
        graph: PreparedGraph,
        mut manifest: Manifest,
    ) -> Result<(String, Manifest)> {
        let started = std::time::Instant::now();
        let root = &self.root;
        let staging = self.staging_dir()?;
        let tmp = staging.path();
        let catalog_json = serde_json::to_vec(catalog).map_err(|e| Error::Json {
            path: tmp.join(CATALOG_FILE),
            error: e,
        })?;
        write_atomic(&tmp.join(CATALOG_FILE), &catalog_json)?;
        pause_point("writing");
        write_atomic(&tmp.join(VECTORS_FILE), &vectors_to_bytes(vectors))?;
        write_atomic(&tmp.join(STACK_FILE), stack)?;
        write_atomic(&tmp.join(KEYWORD_FILE), keyword)?;
        pause_point("hnsw");
        for name in GRAPH_FILES {
            let path = tmp.join(name);
            std::fs::rename(graph.dir.path().join(name), &path).map_err(|e| Error::io(&path, e))?;
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&path, e))?;
        }
        drop(graph);
        write_atomic(&tmp.join(READERS_FILE), b"")?;
        manifest.files = INDEX_FILES
            .iter()
            .map(|name| IndexFile::of(tmp, name))
            .collect::<Result<_>>()?;
        // "total" covers everything up to the manifest, this function included.
        *manifest.timings_ms.entry("total".into()).or_default() +=
            started.elapsed().as_secs_f64() * 1e3;
        let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Json {
            path: tmp.join(MANIFEST_FILE),
            error: e,
        })?;
        write_atomic(&tmp.join(MANIFEST_FILE), &manifest_json)?;
        fsync_dir(tmp)?;

        let previous = read_current(root).ok();
        let number = std::fs::read_dir(root)
            .map_err(|e| Error::io(root, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| generation_number(&e.file_name().to_string_lossy()))
            .max()
            .map_or(1, |n| n + 1);
        let generation = generation_name(number);
        let target = root.join(&generation);
        pause_point("publish");
        std::fs::rename(staging.keep(), &target).map_err(|e| Error::io(&target, e))?;
        fsync_dir(root)?;
        pause_point("switch");
        write_atomic(
            &root.join(CURRENT_FILE),
            format!("{generation}\n").as_bytes(),
        )?;
        fsync_dir(root)?;
        self.remove_old(&generation, previous.as_deref())?;
        Ok((generation, manifest))
    }

    /// After a switch: removes the generations other than `current` and `previous` that no
    /// reader holds, and the files of the older single-directory layout.
    fn remove_old(&self, current: &str, previous: Option<&str>) -> Result<()> {
        let root = &self.root;
        if is_legacy_index(root) {
            for name in LEGACY_FILES {
                let path = root.join(name);
                if path.is_file() {
                    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                }
            }
        }
        for entry in std::fs::read_dir(root).map_err(|e| Error::io(root, e))? {
            let entry = entry.map_err(|e| Error::io(root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if generation_number(&name).is_none() || name == current || Some(&*name) == previous {
                continue;
            }
            let path = entry.path();
            let readers = File::open(path.join(READERS_FILE));
            let free = match &readers {
                Ok(file) => file.try_lock().is_ok(),
                Err(_) => true,
            };
            if free {
                std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            } else {
                tracing::debug!("keeping {}: a process still reads it", path.display());
            }
        }
        fsync_dir(root)
    }

    /// Called when a build fails: a root this lock created and nothing was published into is
    /// removed again (its marker and lock file are the only things in it), with the parent
    /// directories it created.
    pub fn abandon(self) {
        if !self.created.is_empty() && !self.has_current() {
            let _ = self.file.unlock();
            for name in [ROOT_MARKER, LOCK_FILE] {
                let _ = std::fs::remove_file(self.root.join(name));
            }
            // remove_dir fails, harmlessly, on a directory that holds anything else.
            for dir in self.created.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

fn vectors_to_bytes(vectors: &[f32]) -> Vec<u8> {
    vectors.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().expect("temporary directory")
    }

    #[test]
    fn a_foreign_directory_is_refused_and_left_alone() -> Result<()> {
        let dir = tempdir();
        let target = dir.path().join("index");
        check_writable(&target)?;
        std::fs::create_dir(&target).map_err(|e| Error::io(&target, e))?;
        check_writable(&target)?;
        // A web extension's manifest.json is not ours.
        let manifest = br#"{"manifest_version": 3, "name": "x"}"#;
        std::fs::write(target.join(MANIFEST_FILE), manifest).map_err(|e| Error::io("m", e))?;
        let error = BuildLock::acquire(&target).expect_err("foreign directory");
        assert!(error.to_string().contains("--index"), "{error}");
        assert_eq!(
            std::fs::read(target.join(MANIFEST_FILE)).ok(),
            Some(manifest.to_vec())
        );
        assert_eq!(std::fs::read_dir(&target).map(|d| d.count()).ok(), Some(1));
        // A marker with other contents is not ours either.
        let other = dir.path().join("other");
        std::fs::create_dir(&other).map_err(|e| Error::io(&other, e))?;
        std::fs::write(other.join(ROOT_MARKER), b"mine").map_err(|e| Error::io("m", e))?;
        assert!(check_writable(&other).is_err());
        Ok(())
    }

    #[test]
    fn a_second_builder_cannot_take_the_lock() -> Result<()> {
        let dir = tempdir();
        let root = dir.path().join("index");
        let first = BuildLock::acquire(&root)?;
        let file = File::open(root.join(LOCK_FILE)).map_err(|e| Error::io("lock", e))?;
        assert!(matches!(
            file.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(first);
        assert!(file.try_lock().is_ok());
        Ok(())
    }

    #[test]
    fn abandoned_staging_and_unswitched_generations_are_removed() -> Result<()> {
        let dir = tempdir();
        let root = dir.path().join("index");
        drop(BuildLock::acquire(&root)?);
        for stray in [".staging-abc", "gen-000003"] {
            std::fs::create_dir_all(root.join(stray).join("x")).map_err(|e| Error::io(stray, e))?;
        }
        std::fs::write(root.join("notes.txt"), b"keep").map_err(|e| Error::io("n", e))?;
        drop(BuildLock::acquire(&root)?);
        let mut names: Vec<String> = std::fs::read_dir(&root)
            .map_err(|e| Error::io(&root, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [LOCK_FILE, ROOT_MARKER, "notes.txt"]);
        Ok(())
    }

    #[test]
    fn generation_names_round_trip() {
        assert_eq!(generation_number(&generation_name(7)), Some(7));
        assert_eq!(generation_number("gen-7"), None);
        assert_eq!(generation_number("gen-00000x"), None);
        assert_eq!(generation_number("../etc"), None);
    }

    #[test]
    fn vectors_round_trip_through_a_mapped_file() -> Result<()> {
        let values = vec![0.25f32, -1.5, 3.0e-8, 1.0, 0.0, -0.0];
        let dir = tempdir();
        let path = dir.path().join(VECTORS_FILE);
        std::fs::write(&path, vectors_to_bytes(&values)).map_err(|e| Error::io(&path, e))?;
        let flat =
            FlatIndex::mapped(crate::fsutil::map_read_only(&path)?, 2).map_err(|reason| {
                Error::IndexCorrupt {
                    path: path.clone(),
                    dir: dir.path().to_path_buf(),
                    reason,
                }
            })?;
        assert_eq!(flat.vectors(), &values[..]);
        assert_eq!((flat.len(), flat.vector(2)), (3, &values[4..6]));
        // A resident copy keeps what was read when the file changes under the map.
        flat.make_resident();
        std::fs::write(&path, vectors_to_bytes(&[9.0; 6])).map_err(|e| Error::io(&path, e))?;
        assert_eq!(flat.vectors(), &values[..]);
        // Not whole vectors of 4: refused.
        let error = FlatIndex::mapped(crate::fsutil::map_read_only(&path)?, 4);
        assert!(error.is_err_and(|e| e.contains("24 bytes")));
        let rewritten = FlatIndex::mapped(crate::fsutil::map_read_only(&path)?, 2);
        assert!(rewritten.is_ok_and(|f| f.vectors() == [9.0; 6]));
        Ok(())
    }
}
