//! The approximate index: an HNSW graph from hnsw_rs, behind our own type.

use std::path::Path;

use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::HnswIo;
use serde::{Deserialize, Serialize};

use super::Hit;

/// Base name of the graph files: `graph.hnsw.graph` and `graph.hnsw.data`.
pub const GRAPH_BASENAME: &str = "graph";
/// The files hnsw_rs writes for a dump under [`GRAPH_BASENAME`].
pub const GRAPH_FILES: [&str; 2] = ["graph.hnsw.graph", "graph.hnsw.data"];

/// HNSW construction and search parameters, saved in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Links per node and layer (M).
    pub m: usize,
    /// Candidate list size while building.
    pub ef_construction: usize,
    /// Candidate list size while searching (raised to k when k is larger).
    pub ef_search: usize,
    /// Most layers of the graph.
    pub max_layer: usize,
}

impl Default for HnswParams {
    /// Measured on ml-latest-small with 300 title queries (examples in README's Performance):
    /// recall@10 against the exact scan is 0.95 at ef_search 64, 0.988 at 256 and 0.993 at 400;
    /// a larger M barely helps. Title queries have one close match and a flat tail of
    /// similarities, where graph search struggles; 400 keeps recall ≥ 0.99 on them.
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            ef_search: 400,
            max_layer: 16,
        }
    }
}

/// `1 − a·b` for unit vectors, clamped at 0: rounding can push a vector's dot product with
/// itself above 1, which hnsw_rs' own `DistDot` asserts against.
#[derive(Debug, Default, Clone, Copy)]
pub struct DotDistance;

impl Distance<f32> for DotDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - crate::linalg::dot(a, b)).max(0.0)
    }
}

type Graph<'a> = Hnsw<'a, f32, DotDistance>;

self_cell::self_cell!(
    /// A graph reloaded from disk, owning the loader it borrows from (hnsw_rs issue #19).
    struct LoadedGraph {
        owner: HnswIo,
        #[not_covariant]
        dependent: Graph,
    }
);

/// An HNSW index over unit vectors, searched by dot product.
pub struct HnswIndex {
    graph: LoadedGraph,
    params: HnswParams,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("params", &self.params)
            .finish()
    }
}

impl HnswIndex {
    /// Builds the graph over `vectors` (row-major) and writes it into `dir`. Points are inserted
    /// one by one in position order: hnsw_rs seeds its level generator, so the graph is the same
    /// on every build (parallel insertion would make it depend on thread timing).
    pub fn build_into(
        dir: &Path,
        vectors: &[f32],
        dim: usize,
        params: HnswParams,
    ) -> std::io::Result<()> {
        let n = vectors.len() / dim;
        let graph: Graph = Hnsw::new(
            params.m,
            n.max(1),
            params.max_layer,
            params.ef_construction,
            DotDistance,
        );
        for (position, vector) in vectors.chunks_exact(dim).enumerate() {
            graph.insert_slice((vector, position));
        }
        graph
            .file_dump(dir, GRAPH_BASENAME)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(())
    }

    /// Loads the graph dumped in `dir` (the error is hnsw_rs' message). The caller checks the
    /// files' checksums first: hnsw_rs panics rather than erring on some damaged files.
    pub fn load(dir: &Path, params: HnswParams) -> Result<HnswIndex, String> {
        let io = HnswIo::new(dir, GRAPH_BASENAME);
        let graph = LoadedGraph::try_new(io, |io| {
            io.load_hnsw_with_dist::<f32, DotDistance>(DotDistance)
                .map(|mut g| {
                    g.set_searching_mode(true);
                    g
                })
        })
        .map_err(|e| e.to_string())?;
        Ok(HnswIndex { graph, params })
    }

    /// The parameters the index was built and is searched with.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Number of points in the graph.
    pub fn len(&self) -> usize {
        self.graph.with_dependent(|_, g| g.get_nb_point())
    }

    /// Whether the graph is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The approximate `k` nearest vectors among those `allowed`, best first, searched with the
    /// index's `ef_search`.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        allowed: Option<&dyn Fn(usize) -> bool>,
    ) -> Vec<Hit> {
        self.search_with_ef(query, k, self.params.ef_search, allowed)
    }

    /// As [`HnswIndex::search`] with another candidate list size (raised to `k` if smaller).
    pub fn search_with_ef(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allowed: Option<&dyn Fn(usize) -> bool>,
    ) -> Vec<Hit> {
        if k == 0 {
            return Vec::new();
        }
        let ef = ef.max(k);
        let neighbours = self.graph.with_dependent(|_, g| match allowed {
            Some(allowed) => {
                let filter = |id: &usize| allowed(*id);
                g.search_filter(query, k, ef, Some(&filter))
            }
            None => g.search(query, k, ef),
        });
        let hits = neighbours
            .into_iter()
            .map(|n| Hit {
                position: n.d_id,
                similarity: 1.0 - n.distance,
            })
            .collect();
        // The similarity is re-derived from the distance; sort for a deterministic order.
        super::flat::top_k(hits, k)
    }
}
