//! Sentence embeddings: model file resolution and the candle encoder.

mod encoder;
mod model_files;

pub use encoder::{prefer_batch_parallelism, Embeddings, Encoder};
pub use model_files::{hub_offline, model_files, ModelFiles, ModelSource, DEFAULT_MODEL_REPO};
