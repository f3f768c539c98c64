//! reelrank: a semantic two-stage retrieval and ranking engine for movies.
//!
//! The pipeline, one module per stage:
//! - [`data`]: MovieLens loading and validation (polars);
//! - [`documents`]: one text per movie (title, genres, tags);
//! - [`embed`]: all-MiniLM-L6-v2 through candle;
//! - [`index`]: HNSW (hnsw_rs) and an exact scan, persisted with a manifest;
//! - [`models`]: scores learned from ratings (bias, item-kNN, MF, genre content, ridge,
//!   logistic regression, popularity);
//! - [`rank`]: stage two, reranking the candidates, and the stack's feature list;
//! - [`eval`]: ranking metrics, the seeds' evaluation protocol and reports;
//! - [`engine`]: `build` and [`engine::Engine::search`], which tie the stages together.

pub mod config;
pub mod data;
pub mod documents;
pub mod embed;
pub mod engine;
pub mod error;
pub mod eval;
pub mod fsutil;
pub mod index;
pub mod models;
pub mod onboard;
pub mod output;
pub mod profile;
pub mod rank;
pub mod recommend;

pub use config::Paths;
pub use engine::{build, BuildOptions, Engine, SearchRequest, SearchResponse};
pub use error::{Error, Result};
pub use rank::RankedMovie;
