//! The movie index on disk: HNSW graph, exact vectors, catalogue and manifest, in one directory.
//!
//! ```text
//! indexes/ml-latest-small/
//!   manifest.json        written last: format, model, dataset fingerprint, params, timings
//!   catalog.json         movies and their popularity statistics, in vector order
//!   vectors.f32          unit embeddings, row-major little-endian f32
//!   graph.hnsw.graph     hnsw_rs graph
//!   graph.hnsw.data      hnsw_rs copy of the vectors
//!   stack.bin            the serving stack: base models, statistics, meta-models (postcard)
//! ```
//!
//! A build writes everything into a temporary sibling directory and renames it into place, so a
//! failed build leaves the previous index (or nothing) behind, never a half-written one.

mod flat;
mod hnsw;
mod manifest;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use flat::{dot, top_by, top_k, FlatIndex};
pub use hnsw::{DotDistance, HnswIndex, HnswParams};
pub use manifest::{Counts, DatasetRecord, Manifest, ModelRecord, FORMAT_VERSION, MANIFEST_FILE};

use crate::data::Movie;
use crate::error::{Error, Result};
use crate::fsutil::{write_atomic, FileFingerprint};
use crate::models::popularity::PopularityParams;

/// The catalogue file.
pub const CATALOG_FILE: &str = "catalog.json";
/// The exact vectors file.
pub const VECTORS_FILE: &str = "vectors.f32";
/// The serving stack file.
pub const STACK_FILE: &str = "stack.bin";

/// One search hit: a position in the catalogue and its similarity to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Position in the catalogue (and row of the vector).
    pub position: usize,
    /// Cosine similarity (dot product of unit vectors).
    pub similarity: f32,
}

/// What the index knows of one movie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// The movie.
    #[serde(flatten)]
    pub movie: Movie,
    /// Number of ratings.
    pub rating_count: u32,
    /// Mean rating, absent when unrated.
    pub mean_rating: Option<f32>,
    /// IMDB weighted rating (C for unrated movies).
    pub weighted_rating: f32,
}

/// The movies of an index, in vector order, with the popularity parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredCatalog")]
pub struct Catalog {
    /// m and C of the weighted rating.
    pub popularity: PopularityParams,
    /// One entry per vector.
    pub movies: Vec<CatalogEntry>,
    /// movieId → position, derived from `movies`.
    #[serde(skip)]
    positions: HashMap<u32, u32>,
}

/// What the catalogue file stores (the movieId map is rebuilt on load).
#[derive(Deserialize)]
struct StoredCatalog {
    popularity: PopularityParams,
    movies: Vec<CatalogEntry>,
}

impl From<StoredCatalog> for Catalog {
    fn from(stored: StoredCatalog) -> Catalog {
        Catalog::new(stored.popularity, stored.movies)
    }
}

impl Catalog {
    /// The catalogue of `movies` (in vector order).
    pub fn new(popularity: PopularityParams, movies: Vec<CatalogEntry>) -> Catalog {
        let positions = movies
            .iter()
            .enumerate()
            .map(|(p, e)| (e.movie.id, p as u32))
            .collect();
        Catalog {
            popularity,
            movies,
            positions,
        }
    }

    /// The catalogue position of a MovieLens movieId.
    pub fn position(&self, movie_id: u32) -> Option<usize> {
        self.positions.get(&movie_id).map(|&p| p as usize)
    }
}

/// An opened index: catalogue, exact vectors and HNSW graph.
#[derive(Debug)]
pub struct MovieIndex {
    dir: PathBuf,
    manifest: Manifest,
    catalog: Catalog,
    flat: FlatIndex,
    hnsw: HnswIndex,
}

impl MovieIndex {
    /// Opens the index in `dir`: reads the manifest, checks every file's hash, loads them.
    pub fn open(dir: &Path) -> Result<MovieIndex> {
        let manifest = Manifest::read(dir)?;
        manifest.verify_files(dir)?;
        let catalog: Catalog = read_json(dir, CATALOG_FILE)?;
        let vectors = read_vectors(&dir.join(VECTORS_FILE))?;
        let dim = manifest.model.dim;
        let corrupt = |what: &str, reason: String| Error::IndexCorrupt {
            path: dir.join(what),
            dir: dir.to_path_buf(),
            reason,
        };
        if dim == 0 || vectors.len() != catalog.movies.len() * dim {
            return Err(corrupt(
                VECTORS_FILE,
                format!(
                    "{} floats for {} movies of dimension {dim}",
                    vectors.len(),
                    catalog.movies.len()
                ),
            ));
        }
        let hnsw = HnswIndex::load(dir, manifest.hnsw)?;
        if hnsw.len() != catalog.movies.len() {
            return Err(corrupt(
                "graph.hnsw.graph",
                format!("{} points for {} movies", hnsw.len(), catalog.movies.len()),
            ));
        }
        Ok(MovieIndex {
            dir: dir.to_path_buf(),
            manifest,
            catalog,
            flat: FlatIndex::new(vectors, dim),
            hnsw,
        })
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.dir
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

    /// The HNSW index.
    pub fn hnsw(&self) -> &HnswIndex {
        &self.hnsw
    }

    /// The exact cosine similarity of the movie at `position` to a unit `vector`, from the
    /// stored vector (whichever index found the movie).
    pub fn similarity(&self, vector: &[f32], position: usize) -> f32 {
        dot(vector, self.flat.vector(position))
    }

    /// Stage two without a person: the movie's exact similarity to `vector` and its blend
    /// with the movie's popularity (`alpha`·similarity + (1 − alpha)·WR/5).
    pub fn popularity_blend(&self, vector: &[f32], position: usize, alpha: f32) -> (f32, f32) {
        let similarity = self.similarity(vector, position);
        let wr = self.catalog.movies[position].weighted_rating;
        (similarity, crate::rank::blend(similarity, wr, alpha))
    }
}

/// Writes a new index into `dir`, replacing any index there only once everything is written.
/// `stack` is the serialised serving stack. `manifest.files` and the "hnsw" timing are filled
/// in here, and the time spent here is added to the "total" timing.
pub fn write_index(
    dir: &Path,
    catalog: &Catalog,
    vectors: &[f32],
    stack: &[u8],
    mut manifest: Manifest,
) -> Result<()> {
    let started = std::time::Instant::now();
    check_replaceable(dir)?;
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".reelrank-build-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let tmp = staging.path();

    let catalog_json = serde_json::to_vec(catalog).map_err(|e| Error::Json {
        path: tmp.join(CATALOG_FILE),
        error: e,
    })?;
    write_atomic(&tmp.join(CATALOG_FILE), &catalog_json)?;
    write_atomic(&tmp.join(VECTORS_FILE), &vectors_to_bytes(vectors))?;
    write_atomic(&tmp.join(STACK_FILE), stack)?;
    let t = std::time::Instant::now();
    HnswIndex::build_into(tmp, vectors, manifest.model.dim, manifest.hnsw)?;
    manifest
        .timings_ms
        .insert("hnsw".into(), t.elapsed().as_secs_f64() * 1e3);
    // "total" covers everything up to the manifest, this function included.
    *manifest.timings_ms.entry("total".into()).or_default() +=
        started.elapsed().as_secs_f64() * 1e3;

    let mut files = vec![CATALOG_FILE, VECTORS_FILE, STACK_FILE];
    files.extend(hnsw::GRAPH_FILES);
    manifest.files = files
        .into_iter()
        .map(|name| FileFingerprint::of(&tmp.join(name), name))
        .collect::<Result<_>>()?;
    let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Json {
        path: tmp.join(MANIFEST_FILE),
        error: e,
    })?;
    write_atomic(&tmp.join(MANIFEST_FILE), &manifest_json)?;

    // Swap in: move any old index aside, rename the new one into place, then delete the old.
    let staged = staging.keep();
    let old = if dir.exists() {
        let aside = parent.join(format!(
            ".reelrank-old-{}-{}",
            std::process::id(),
            dir.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ));
        std::fs::rename(dir, &aside).map_err(|e| Error::io(dir, e))?;
        Some(aside)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(&staged, dir) {
        if let Some(aside) = &old {
            let _ = std::fs::rename(aside, dir);
        }
        let _ = std::fs::remove_dir_all(&staged);
        return Err(Error::io(dir, e));
    }
    if let Some(aside) = old {
        std::fs::remove_dir_all(&aside).map_err(|e| Error::io(&aside, e))?;
    }
    Ok(())
}

/// Refuses to replace an existing directory unless it is empty or holds an index: `--index`
/// pointed at the wrong place must not delete someone's files. `build` calls it before any work.
pub fn check_replaceable(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let is_index = dir.join(MANIFEST_FILE).is_file();
    let is_empty = dir.is_dir()
        && std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .next()
            .is_none();
    if is_index || is_empty {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name: "--index".into(),
            message: format!(
                "{} exists and is not a reelrank index (no {MANIFEST_FILE}); refusing to replace it",
                dir.display()
            ),
        })
    }
}

fn vectors_to_bytes(vectors: &[f32]) -> Vec<u8> {
    vectors.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read_vectors(path: &Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::IndexCorrupt {
        path,
        dir: dir.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_replace_a_foreign_directory() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let target = dir.path().join("index");
        check_replaceable(&target)?;
        std::fs::create_dir(&target).map_err(|e| Error::io(&target, e))?;
        check_replaceable(&target)?;
        write_atomic(&target.join("notes.txt"), b"precious")?;
        let error = check_replaceable(&target).expect_err("foreign directory");
        assert!(error.to_string().contains("--index"), "{error}");
        write_atomic(&target.join(MANIFEST_FILE), b"{}")?;
        check_replaceable(&target)?;
        Ok(())
    }

    #[test]
    fn vectors_round_trip_through_bytes() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let path = dir.path().join(VECTORS_FILE);
        let values = vec![0.25f32, -1.5, 3.0e-8, 1.0];
        write_atomic(&path, &vectors_to_bytes(&values))?;
        assert_eq!(read_vectors(&path)?, values);
        Ok(())
    }
}
