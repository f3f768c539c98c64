//! The files of one index generation, and how each is checked.
//!
//! | check | when | detects |
//! | --- | --- | --- |
//! | file list = [`INDEX_FILES`] | every open | a manifest with a missing, extra or repeated entry |
//! | size | every open | truncated or extended files |
//! | crc32 of the contents | every open (the bytes are read anyway) | torn writes, bit rot, edits |
//! | structure (floats = movies × dim, graph points = movies, keyword documents = movies, stack decodes) | every open | files from different builds |
//! | sha256 of the contents | at build (read back from disk) and `reelrank verify` | any change, with cryptographic strength |
//!
//! crc32 (crc32fast: SIMD, several GB/s) keeps an open cheap as the catalogue grows; sha256
//! would cost ~6 ms on ml-latest-small and ~0.5 s on ml-latest.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ann::GRAPH_FILES;
use crate::error::{Error, Result};

/// The catalogue file.
pub const CATALOG_FILE: &str = "catalog.json";
/// The exact vectors file.
pub const VECTORS_FILE: &str = "vectors.f32";
/// The serving stack file.
pub const STACK_FILE: &str = "stack.bin";
/// The keyword (BM25) index file.
pub const KEYWORD_FILE: &str = "keyword.bin";

/// Every file of a generation besides the manifest: the list the format requires.
pub const INDEX_FILES: [&str; 6] = [
    CATALOG_FILE,
    VECTORS_FILE,
    STACK_FILE,
    KEYWORD_FILE,
    GRAPH_FILES[0],
    GRAPH_FILES[1],
];

/// One file of a generation as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFile {
    /// File name inside the generation directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// crc32 (IEEE) of the contents: checked on every open.
    pub crc32: u32,
    /// sha256 of the contents, lowercase hex: checked by `reelrank verify`.
    pub sha256: String,
}

impl IndexFile {
    /// Records the file `name` in `dir` as it is on disk now.
    pub fn of(dir: &Path, name: &str) -> Result<IndexFile> {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        Ok(IndexFile {
            name: name.to_string(),
            size: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
            sha256: crate::fsutil::sha256_bytes(&bytes),
        })
    }

    /// Checks that the file exists with the size the manifest records (no read).
    pub fn check_size(&self, dir: &Path) -> Result<()> {
        let path = dir.join(&self.name);
        let corrupt = |reason: String| Error::IndexCorrupt {
            path: path.clone(),
            dir: dir.to_path_buf(),
            reason,
        };
        let size = std::fs::metadata(&path)
            .map_err(|e| corrupt(format!("cannot be read: {e}")))?
            .len();
        if size != self.size {
            return Err(corrupt(format!(
                "{size} bytes where manifest.json records {}",
                self.size
            )));
        }
        Ok(())
    }

    /// Reads the file from `dir`, checking its size and crc32.
    pub fn read_checked(&self, dir: &Path) -> Result<Vec<u8>> {
        self.check_size(dir)?;
        let path = dir.join(&self.name);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        self.check_crc(dir, &bytes)?;
        Ok(bytes)
    }

    /// Checks the file's bytes (read from `dir`) against the recorded crc32.
    fn check_crc(&self, dir: &Path, bytes: &[u8]) -> Result<()> {
        let crc = crc32fast::hash(bytes);
        if crc != self.crc32 {
            return Err(Error::IndexCorrupt {
                path: dir.join(&self.name),
                dir: dir.to_path_buf(),
                reason: format!(
                    "crc32 {crc:08x} where manifest.json records {:08x}",
                    self.crc32
                ),
            });
        }
        Ok(())
    }

    /// Maps the file from `dir` read-only ([`crate::fsutil::map_read_only`]), checking its
    /// size and crc32: [`IndexFile::read_checked`] without copying the bytes.
    pub fn map_checked(&self, dir: &Path) -> Result<memmap2::Mmap> {
        self.check_size(dir)?;
        let path = dir.join(&self.name);
        let map = crate::fsutil::map_read_only(&path)?;
        self.check_crc(dir, &map)?;
        Ok(map)
    }

    /// Checks the file in `dir` against its size and sha256 (the full check of `verify`).
    pub fn verify_sha256(&self, dir: &Path) -> Result<()> {
        let bytes = self.read_checked(dir)?;
        let sha = crate::fsutil::sha256_bytes(&bytes);
        if sha != self.sha256 {
            return Err(Error::IndexCorrupt {
                path: dir.join(&self.name),
                dir: dir.to_path_buf(),
                reason: format!("sha256 {sha} where manifest.json records {}", self.sha256),
            });
        }
        Ok(())
    }
}
