//! Small helpers every layer shares: content hashes, atomic writes, directory fsync, elapsed
//! milliseconds, read-only file maps, and the pause points of the killed-build tests.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The sha256 of a file's contents, in lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// A read-only map of a file the program only reads (the model's weights, an index's
/// vectors): its pages are read on first touch, straight from the page cache, instead of
/// copied into fresh memory (reading and copying MiniLM's 90 MB was a third of a fresh search).
pub fn map_read_only(path: &Path) -> Result<memmap2::Mmap> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is read-only and private to this process. What the compiler cannot
    // check is that nobody truncates or rewrites the file while it is mapped; model files
    // are never written by this program, an index generation's files never after they were
    // published (a build writes a new generation), and replacing or deleting a file leaves
    // this map on the old one.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok(map)
}

/// The sha256 of `bytes`, in lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Milliseconds elapsed since `since`.
pub fn ms(since: std::time::Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Flushes a directory's entries (a rename or a new file in it) to disk.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// The variable that names a pause point (see [`pause_point`]).
pub const PAUSE_VARIABLE: &str = "REELRANK_PAUSE_AT";

/// Fault injection for the crash tests: when `REELRANK_PAUSE_AT` names this point, the process
/// says so on stderr and sleeps, so that a test can SIGKILL it exactly there. Otherwise nothing.
pub fn pause_point(name: &str) {
    if std::env::var(PAUSE_VARIABLE).is_ok_and(|wanted| wanted == name) {
        eprintln!("reelrank: paused at {name}");
        std::thread::sleep(std::time::Duration::from_secs(600));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What identifies one file's contents: its size and hash, plus its modification time so that
/// an unchanged file can be recognised without hashing it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFingerprint {
    /// File name, relative to the directory it was found in.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the contents, lowercase hex.
    pub sha256: String,
    /// Modification time, nanoseconds since the Unix epoch (0 when unknown).
    #[serde(default)]
    pub modified_ns: u128,
}

impl FileFingerprint {
    /// Fingerprints the file at `path`, recorded under `name`.
    pub fn of(path: &Path, name: &str) -> Result<FileFingerprint> {
        let (size, modified_ns) = stat(path)?;
        Ok(FileFingerprint {
            name: name.to_string(),
            size,
            sha256: sha256_file(path)?,
            modified_ns,
        })
    }

    /// What size and modification time alone say of the file at `path`: `Some(false)` when
    /// its size differs, `Some(true)` when its mtime is unchanged too, `None` when only its
    /// hash can tell.
    pub fn settled_by_stat(&self, path: &Path) -> Result<Option<bool>> {
        let (size, modified_ns) = stat(path)?;
        Ok(if size != self.size {
            Some(false)
        } else if modified_ns == self.modified_ns && modified_ns != 0 {
            Some(true)
        } else {
            None
        })
    }

    /// These contents under the file at `path`'s current size and modification time (for a
    /// file just found to hold them).
    pub fn restamped(&self, path: &Path) -> Result<FileFingerprint> {
        let (size, modified_ns) = stat(path)?;
        Ok(FileFingerprint {
            size,
            modified_ns,
            ..self.clone()
        })
    }

    /// Whether the file at `path` has these contents, always hashing it.
    pub fn matches_exactly(&self, path: &Path) -> Result<bool> {
        Ok(std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len()
            == self.size
            && sha256_file(path)? == self.sha256)
    }
}

fn stat(path: &Path) -> Result<(u64, u128)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok((meta.len(), modified))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_detects_changed_contents() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let path = dir.path().join("a.csv");
        write_atomic(&path, b"x,y\n1,2\n")?;
        let print = FileFingerprint::of(&path, "a.csv")?;
        assert_eq!(print.sha256, sha256_bytes(b"x,y\n1,2\n"));
        assert_eq!(print.settled_by_stat(&path)?, Some(true));
        assert!(print.matches_exactly(&path)?);
        // Same size, other contents: a new mtime leaves it to the hash, which catches it.
        let mut stale = print.clone();
        stale.modified_ns = 0;
        write_atomic(&path, b"x,y\n1,3\n")?;
        assert_eq!(stale.settled_by_stat(&path)?, None);
        assert!(!print.matches_exactly(&path)?);
        // Another size is settled without the hash.
        write_atomic(&path, b"x,y\n1,23\n")?;
        assert_eq!(print.settled_by_stat(&path)?, Some(false));
        Ok(())
    }
}
