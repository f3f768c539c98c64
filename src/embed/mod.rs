//! Sentence embeddings: model file resolution and the encoder (a fused BERT forward over
//! candle-loaded weights; candle's stock model as its oracle).

mod cache;
mod encoder;
pub mod fused;
mod model_files;

pub use cache::{query_key, QueryCache, DEFAULT_QUERY_CACHE};
pub use encoder::{embed_text, stock_embeddings, Embeddings, Encoder, StockBert};
pub use model_files::{hub_offline, model_files, ModelFiles, ModelSource, DEFAULT_MODEL_REPO};

use crate::error::{Error, Result};

/// Longest query accepted, in characters; longer ones are refused rather than silently cut.
pub const MAX_QUERY_CHARS: usize = 10_000;

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
