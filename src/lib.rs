//! reelrank: a semantic two-stage retrieval and ranking engine for movies.
//!
//! The modules follow the pipeline, bottom up; a module uses only those above it in this list
//! (`python3 ../shared/tools/layers.py` prints the graph):
//! - [`linalg`]: dense matrix products (gemm); nothing of ours;
//! - [`error`], [`fsutil`]: the one error type; hashes, atomic writes, timings;
//! - [`ann`]: nearest-neighbour search (exact scan, HNSW, top-n); nothing of ours;
//! - [`keyword`]: BM25 keyword retrieval (tantivy); nothing of ours;
//! - [`intent`]: the query rules ("movies like X", decade and genre words); nothing of ours;
//! - [`data`]: MovieLens loading and validation (polars), splits;
//! - [`documents`]: one text per movie (title, genres, tags);
//! - [`embed`]: all-MiniLM-L6-v2 through candle;
//! - [`profiles`]: the database of people's profiles and ratings (SQLite, PostgreSQL);
//! - [`catalog`]: the movies of an index with their rating statistics and popularity;
//! - [`store`]: the index on disk: generations, manifest, checksums, the build lock;
//! - [`models`]: scores learned from ratings (bias, item-kNN, MF, content, logistic, trees);
//! - [`rank`]: stage one's candidates and stage two's features, stacks and rankers;
//! - [`engine`]: `build`, and the [`Engine`] answering search, recommend, similar, explain;
//! - [`experiment`]: A/B assignment, team-draft interleaving, the report's statistics;
//! - [`present`]: text tables, Markdown and SVG of plain data;
//! - [`eval`], [`onboard`], [`server`]: front ends of the library, as the CLI (`main.rs`) is.

pub mod ann;
pub mod catalog;
pub mod config;
pub mod data;
pub mod documents;
pub mod embed;
pub mod engine;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod fsutil;
pub mod intent;
pub mod keyword;
pub mod linalg;
pub mod models;
pub mod onboard;
pub mod present;
pub mod profiles;
pub mod rank;
pub mod server;
pub mod store;

pub use config::Paths;
pub use engine::{build, BuildOptions, Engine, SearchRequest};
pub use error::{Error, Result};
pub use rank::RankedMovie;
