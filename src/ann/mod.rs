//! Nearest-neighbour search over unit vectors: the exact scan ([`FlatIndex`]), the HNSW graph
//! ([`HnswIndex`]) and the one top-n selection rule ([`top_by`]). Imports only [`crate::linalg`],
//! so that every layer above can use it.

mod flat;
mod hnsw;

pub use flat::{top_by, top_k, FlatIndex};
pub use hnsw::{DotDistance, HnswIndex, HnswParams, GRAPH_FILES};

/// One search hit: a position in the catalogue and its similarity to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Position in the catalogue (and row of the vector).
    pub position: usize,
    /// Cosine similarity (dot product of unit vectors).
    pub similarity: f32,
}
