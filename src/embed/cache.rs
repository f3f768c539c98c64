//! A bounded cache of query embeddings: people repeat queries, and embedding one costs ~10 ms
//! against microseconds for the lookup.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;

use super::Encoder;
use crate::error::Result;

/// Queries kept by default: 4,096 × 384 floats ≈ 6 MB.
pub const DEFAULT_QUERY_CACHE: usize = 4096;

/// The key of a query: lowercase, whitespace collapsed. all-MiniLM-L6-v2's tokenizer lowercases
/// and splits on whitespace itself, so queries with the same key get the same embedding.
pub fn query_key(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Query embeddings, least recently used evicted first, with hit and miss counts.
pub struct QueryCache {
    /// None: caching is off (every query is embedded).
    entries: Option<Mutex<LruCache<String, Arc<[f32]>>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl QueryCache {
    /// A cache of at most `capacity` queries (0: none kept).
    pub fn new(capacity: usize) -> QueryCache {
        QueryCache {
            entries: NonZeroUsize::new(capacity).map(|n| Mutex::new(LruCache::new(n))),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The embedding of `text` by `encoder`, from the cache when it holds the query's key.
    /// The lock is not held while embedding, so two misses of one query may both embed it.
    pub fn embed(&self, encoder: &Encoder, text: &str) -> Result<Arc<[f32]>> {
        let key = query_key(text);
        let Some(entries) = &self.entries else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Ok(encoder.embed(&key)?.into());
        };
        let cached = entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(vector) = cached {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(vector);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let vector: Arc<[f32]> = encoder.embed(&key)?.into();
        entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, Arc::clone(&vector));
        Ok(vector)
    }

    /// (hits, misses) since the cache was made.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Queries held now.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |entries| {
            entries.lock().unwrap_or_else(PoisonError::into_inner).len()
        })
    }

    /// Whether no query is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_forgive_case_and_spacing_only() {
        assert_eq!(query_key("  The   Matrix\t"), "the matrix");
        assert_ne!(query_key("the matrix"), query_key("the matrix 2"));
    }
}
