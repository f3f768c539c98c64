//! `manifest.json`: what an index was built from and with, checked before the index is used.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::files::{IndexFile, INDEX_FILES};
use crate::ann::HnswParams;
use crate::data::PeopleAdded;
use crate::data::Skipped;
use crate::documents::DocumentTemplate;
use crate::error::{Error, Result};
use crate::fsutil::FileFingerprint;

/// Version of the on-disk layout; bumped whenever a file changes meaning. 4: generations under
/// one root with a `CURRENT` pointer, a format marker and a crc32 per file. 7: the documents
/// follow the seed template by default, and numbered sequels' names without their subtitle are
/// title keys of `keyword.bin`. 8: the catalogue holds each movie's document. 9: the stack
/// holds the personal ranker of search. 10: iALS and rating-aware features in the stack, the
/// candidate ranker reads scores relative to the other candidates. 11: the stack records how
/// many users it trained on.
pub const FORMAT_VERSION: u32 = 12;

/// The marker every reelrank manifest carries in its `format` field, so that a foreign
/// `manifest.json` is never mistaken for one of ours.
pub const FORMAT_MARKER: &str = "reelrank-index";

/// Name of the manifest inside an index directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The file at an index root that lists the model and dataset files found, by their hash, to
/// hold what the manifest records under another modification time (path → fingerprint as
/// found). A model or dataset copied anew, as a fresh checkout of `../shared` is, keeps its
/// bytes but not its mtime, and hashing the model's 90 MB again on every open took ~40 ms of a
/// 120–150 ms fresh-process search. Written by whoever hashes; losing it costs one hash.
pub const VERIFIED_FILE: &str = "VERIFIED.json";

/// Whether the file at `path` holds the contents `recorded` names, for the index at `root`:
/// settled by size and mtime when they tell, else by [`VERIFIED_FILE`]'s entry for the file
/// when its size and mtime are still those found then, else by hashing it (and then recorded
/// there, best effort: a read-only root only means hashing again next time).
pub fn holds_recorded(root: &Path, recorded: &FileFingerprint, path: &Path) -> Result<bool> {
    if let Some(answer) = recorded.settled_by_stat(path)? {
        return Ok(answer);
    }
    let key = path
        .canonicalize()
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned();
    let list = root.join(VERIFIED_FILE);
    let mut verified: BTreeMap<String, FileFingerprint> = std::fs::read(&list)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    if let Some(found) = verified.get(&key) {
        if found.sha256 == recorded.sha256 && found.settled_by_stat(path)? == Some(true) {
            return Ok(true);
        }
    }
    // Stamped before hashing: a file changed while it is hashed then differs from its entry.
    let stamped = recorded.restamped(path)?;
    if !recorded.matches_exactly(path)? {
        return Ok(false);
    }
    verified.insert(key, stamped);
    let written = serde_json::to_vec_pretty(&verified)
        .map_err(|e| Error::Json {
            path: list.clone(),
            error: e,
        })
        .and_then(|bytes| crate::fsutil::write_atomic(&list, &bytes));
    if let Err(error) = written {
        tracing::debug!("could not record the hashed file: {error}");
    }
    Ok(true)
}

/// The embedding model an index was built with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Hub repository or local directory.
    pub id: String,
    /// Fingerprint of model.safetensors.
    pub weights: FileFingerprint,
    /// Embedding dimension.
    pub dim: usize,
    /// Longest input, in tokens.
    pub max_seq_length: usize,
    /// Pooling ("mean").
    pub pooling: String,
    /// Whether vectors are L2-normalised.
    pub normalized: bool,
}

/// The MovieLens files an index was built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// The directory, as given at build time.
    pub dir: String,
    /// The files present then (links.csv only if it existed).
    pub files: Vec<FileFingerprint>,
    /// Rows skipped as orphans.
    pub skipped: Skipped,
}

/// Sizes of what was indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Movies (= documents = vectors).
    pub movies: usize,
    /// Ratings used.
    pub ratings: usize,
    /// Tags used.
    pub tags: usize,
    /// Distinct users who rated.
    pub users: usize,
    /// Documents longer than the model's max_seq_length (cut there).
    pub truncated_documents: usize,
    /// Vectors copied from the previous generation (same weights, same document text)
    /// instead of embedded again.
    #[serde(default)]
    pub reused_vectors: usize,
    /// Whether the HNSW graph is the previous generation's (every vector the same, in the
    /// same order, same parameters).
    #[serde(default)]
    pub reused_graph: bool,
    /// Points inserted into the previous generation's graph, whose vectors were the first of
    /// these (new movies appended); 0 when the graph was built or reused as it is.
    #[serde(default)]
    pub extended_graph: usize,
}

/// The profiles of the online store that a build took in as users of the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeopleRecord {
    /// The store (password hidden).
    pub store: String,
    /// Who was added, from which userId.
    #[serde(flatten)]
    pub added: PeopleAdded,
}

/// Everything recorded about an index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_MARKER`].
    pub format: String,
    /// [`FORMAT_VERSION`] at build time.
    pub format_version: u32,
    /// reelrank's version at build time.
    pub crate_version: String,
    /// Build time, Unix seconds.
    pub created_unix: u64,
    /// The embedding model.
    pub model: ModelRecord,
    /// HNSW parameters.
    pub hnsw: HnswParams,
    /// How each movie's document was written.
    pub document_template: DocumentTemplate,
    /// The source dataset.
    pub dataset: DatasetRecord,
    /// The people of the profile store added as users (absent: no store was found).
    #[serde(default)]
    pub people: Option<PeopleRecord>,
    /// Sizes.
    pub counts: Counts,
    /// The generation's own files (everything but the manifest): exactly [`INDEX_FILES`].
    pub files: Vec<IndexFile>,
    /// How the serving stack in `stack.bin` was trained; the store keeps it opaque (the
    /// ranking code reads and writes it).
    pub stack: serde_json::Value,
    /// Wall time of each build stage, milliseconds.
    pub timings_ms: BTreeMap<String, f64>,
}

impl Manifest {
    /// Reads `dir/manifest.json`, refusing other format versions.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        if !path.is_file() {
            return Err(Error::IndexMissing {
                path: dir.to_path_buf(),
            });
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        // Read the marker and version alone first, so that a newer layout is reported as such
        // rather than as a parse error.
        #[derive(Deserialize)]
        struct Version {
            format: Option<String>,
            format_version: u32,
        }
        let version: Version = serde_json::from_slice(&bytes).map_err(|e| Error::IndexCorrupt {
            path: path.clone(),
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        if version.format.as_deref() != Some(FORMAT_MARKER) {
            return Err(Error::IndexCorrupt {
                path,
                dir: dir.to_path_buf(),
                reason: format!("not a reelrank manifest (no \"format\": \"{FORMAT_MARKER}\")"),
            });
        }
        if version.format_version != FORMAT_VERSION {
            return Err(Error::IndexIncompatible {
                path: dir.to_path_buf(),
                reason: format!(
                    "format version {} (this reelrank reads version {FORMAT_VERSION})",
                    version.format_version
                ),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::IndexCorrupt {
            path,
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// The recorded entry of `name` (the list itself is checked once, on open, by
    /// [`Manifest::check_file_list`]).
    pub fn file(&self, dir: &Path, name: &str) -> Result<&IndexFile> {
        self.files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| Error::IndexCorrupt {
                path: dir.join(MANIFEST_FILE),
                dir: dir.to_path_buf(),
                reason: format!("no entry for {name}"),
            })
    }

    /// Checks that `files` names exactly [`INDEX_FILES`], each once.
    pub fn check_file_list(&self, dir: &Path) -> Result<()> {
        let mut names: Vec<&str> = self.files.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        let mut required = INDEX_FILES.to_vec();
        required.sort_unstable();
        if names != required {
            return Err(Error::IndexCorrupt {
                path: dir.join(MANIFEST_FILE),
                dir: dir.to_path_buf(),
                reason: format!(
                    "its file list [{}] is not the format's [{}]",
                    names.join(", "),
                    required.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// Checks that the model weights at `weights` are those the index was built with.
    pub fn check_model(&self, dir: &Path, weights: &Path, dim: usize) -> Result<()> {
        self.check_weights(dir, weights)?;
        self.check_dim(dir, weights, dim)
    }

    /// The dimension half of [`Manifest::check_model`]: the loaded model's output size.
    pub fn check_dim(&self, dir: &Path, weights: &Path, dim: usize) -> Result<()> {
        if self.model.dim != dim {
            return Err(self.other_model(dir, weights));
        }
        Ok(())
    }

    /// The weights half of [`Manifest::check_model`]: size and mtime, or the sha256 when the
    /// mtime differs (a copied model), equal to those recorded (see [`holds_recorded`]).
    pub fn check_weights(&self, dir: &Path, weights: &Path) -> Result<()> {
        if !holds_recorded(dir, &self.model.weights, weights)? {
            return Err(self.other_model(dir, weights));
        }
        Ok(())
    }

    /// The error of an index opened with other model weights than it was built with.
    fn other_model(&self, dir: &Path, weights: &Path) -> Error {
        Error::IndexIncompatible {
            path: dir.to_path_buf(),
            reason: format!(
                "it was built with model {} (weights sha256 {}), not with {}",
                self.model.id,
                self.model.weights.sha256,
                weights.display()
            ),
        }
    }

    /// Checks that the dataset directory `data` holds the files the index was built from. A
    /// missing directory is not an error (an index can be used without its source data).
    pub fn check_dataset(&self, dir: &Path, data: &Path) -> Result<()> {
        if !data.is_dir() {
            tracing::warn!(
                "dataset {} not found: cannot check that index {} is up to date",
                data.display(),
                dir.display()
            );
            return Ok(());
        }
        for name in crate::data::DATASET_FILES {
            let path = data.join(name);
            let recorded = self.dataset.files.iter().find(|f| f.name == name);
            let same = match recorded {
                Some(file) => path.is_file() && holds_recorded(dir, file, &path)?,
                None => !path.is_file(),
            };
            if !same {
                return Err(Error::IndexIncompatible {
                    path: dir.to_path_buf(),
                    reason: format!("{} changed since the index was built", path.display()),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    /// Sets the modification time of `path` to `seconds` after the epoch.
    fn stamp(path: &Path, seconds: u64) {
        let file = std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open");
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
            .expect("set mtime");
    }

    #[test]
    fn a_copied_file_is_hashed_once_and_a_changed_one_is_refused() {
        let root = tempfile::tempdir().expect("root");
        let path = root.path().join("model.bin");
        std::fs::write(&path, b"the weights").expect("write");
        stamp(&path, 1_000_000);
        let recorded = FileFingerprint::of(&path, "model.bin").expect("fingerprint");
        let list = root.path().join(VERIFIED_FILE);

        // Same mtime: settled without hashing and without recording anything.
        assert!(holds_recorded(root.path(), &recorded, &path).expect("check"));
        assert!(!list.exists());

        // Copied anew (same bytes, new mtime): hashed, found equal, recorded with the new mtime.
        stamp(&path, 2_000_000);
        assert!(holds_recorded(root.path(), &recorded, &path).expect("check"));
        let verified: BTreeMap<String, FileFingerprint> =
            serde_json::from_slice(&std::fs::read(&list).expect("list")).expect("json");
        let entry = verified.values().next().expect("one entry");
        assert_eq!(verified.len(), 1);
        assert_eq!(entry.sha256, recorded.sha256);
        assert_eq!(entry.modified_ns, 2_000_000 * 1_000_000_000);
        // Then trusted while size and mtime stay those found.
        assert!(holds_recorded(root.path(), &recorded, &path).expect("check"));

        // Changed in place (same size, new mtime): the entry no longer fits, the hash differs.
        std::fs::write(&path, b"the wrights").expect("write");
        stamp(&path, 3_000_000);
        assert!(!holds_recorded(root.path(), &recorded, &path).expect("check"));
        // Another size is refused by the size alone.
        std::fs::write(&path, b"other weights").expect("write");
        assert!(!holds_recorded(root.path(), &recorded, &path).expect("check"));

        // An entry vouches only for the contents it was hashed against: another index's
        // record of the same path with other contents is not taken from it.
        std::fs::write(&path, b"the weights").expect("write");
        stamp(&path, 2_000_000);
        let other = FileFingerprint {
            sha256: "0".repeat(64),
            modified_ns: 1,
            ..recorded.clone()
        };
        assert!(!holds_recorded(root.path(), &other, &path).expect("check"));

        // A root it cannot write to still gets its answer (the next open hashes again).
        let missing = root.path().join("not-there");
        stamp(&path, 4_000_000);
        assert!(holds_recorded(&missing, &recorded, &path).expect("check"));
        assert!(!missing.exists());
    }
}
