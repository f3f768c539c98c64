//! The approximate index: an HNSW graph from hnsw_rs, behind our own type.

use std::path::Path;

use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::HnswIo;
use serde::{Deserialize, Serialize};

use super::{FlatIndex, Hit};

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

impl HnswParams {
    /// Whether a graph built with `other` is the graph these parameters build (the search's
    /// candidate list size does not change the graph).
    pub fn builds_same_graph(&self, other: &HnswParams) -> bool {
        (self.m, self.ef_construction, self.max_layer)
            == (other.m, other.ef_construction, other.max_layer)
    }
}

/// Candidate list sizes [`HnswIndex::calibrate_ef`] tries, smallest first.
pub const EF_CANDIDATES: [usize; 6] = [64, 96, 128, 192, 256, 400];

/// Recall@10 against the exact scan that [`HnswIndex::calibrate_ef`] asks of the graph.
pub const TARGET_RECALL: f64 = 0.99;

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

    /// Recall@`k` of the graph searched with `ef` against `truths`, each query's exact `k`
    /// nearest (as the exact scan finds them).
    pub fn recall_at(&self, queries: &[Vec<f32>], truths: &[Vec<Hit>], k: usize, ef: usize) -> f64 {
        let (mut found, mut wanted) = (0usize, 0usize);
        for (query, truth) in queries.iter().zip(truths) {
            let hits = self.search_with_ef(query, k, ef, None);
            wanted += truth.len();
            found += truth
                .iter()
                .filter(|t| hits.iter().any(|h| h.position == t.position))
                .count();
        }
        if wanted == 0 {
            1.0
        } else {
            found as f64 / wanted as f64
        }
    }

    /// The smallest of [`EF_CANDIDATES`] whose recall@10 over `queries` against the exact
    /// scan of `exact` (the graph's vectors) reaches [`TARGET_RECALL`] (the largest when none
    /// does), with that recall: the walk costs about linearly in ef, and how much of it a
    /// catalogue needs depends on the catalogue.
    pub fn calibrate_ef(&self, exact: &FlatIndex, queries: &[Vec<f32>]) -> (usize, f64) {
        let truths: Vec<Vec<Hit>> = queries
            .iter()
            .map(|q| exact.search(q, 10, &|_| true))
            .collect();
        let mut last = (EF_CANDIDATES[EF_CANDIDATES.len() - 1], 0.0);
        for ef in EF_CANDIDATES {
            last = (ef, self.recall_at(queries, &truths, 10, ef));
            if last.1 >= TARGET_RECALL {
                break;
            }
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_picks_the_smallest_list_that_reaches_the_recall() {
        // 3,000 random unit vectors of 16 dimensions (seeded), a small graph (M 4, built with
        // a short list) so that short search lists miss neighbours.
        let (n, dim) = (3000, 16);
        let mut seed = 11u64;
        let mut next = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let mut vectors: Vec<f32> = (0..n * dim).map(|_| next()).collect();
        for row in vectors.chunks_exact_mut(dim) {
            let norm = crate::linalg::dot(row, row).sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        let queries: Vec<Vec<f32>> = vectors
            .chunks_exact(dim)
            .take(100)
            .map(|q| q.iter().map(|x| x + 0.05).collect())
            .collect();
        let dir = tempfile::tempdir().expect("temporary directory");
        let params = HnswParams {
            m: 4,
            ef_construction: 16,
            ef_search: 400,
            max_layer: 16,
        };
        HnswIndex::build_into(dir.path(), &vectors, dim, params).expect("graph");
        let graph = HnswIndex::load(dir.path(), params).expect("load");
        let exact = FlatIndex::new(vectors, dim);
        let (ef, recall) = graph.calibrate_ef(&exact, &queries);
        // The definition, written out here: the share of each query's exact 10 nearest that
        // the graph walk with list `ef` returns.
        let recall_with = |ef: usize| {
            let found: usize = queries
                .iter()
                .map(|q| {
                    let hits = graph.search_with_ef(q, 10, ef, None);
                    exact
                        .search(q, 10, &|_| true)
                        .iter()
                        .filter(|t| hits.iter().any(|h| h.position == t.position))
                        .count()
                })
                .sum();
            found as f64 / (10 * queries.len()) as f64
        };
        // The chosen list is the first candidate that reaches the target (the last when none
        // does), and its recall is what the calibration reports.
        let first = EF_CANDIDATES
            .into_iter()
            .find(|&e| recall_with(e) >= TARGET_RECALL)
            .unwrap_or(EF_CANDIDATES[EF_CANDIDATES.len() - 1]);
        assert_eq!((ef, recall), (first, recall_with(first)));
        // The test graph is hard for the shortest list, so the choice is not trivially it.
        let shortest = recall_with(EF_CANDIDATES[0]);
        assert!(
            shortest < TARGET_RECALL,
            "the test graph should be hard for short lists: {shortest}"
        );
        assert!(recall_with(400) > shortest);
    }

    #[test]
    fn the_search_list_does_not_change_the_graph() {
        let params = HnswParams::default();
        let other = HnswParams {
            ef_search: 64,
            ..params
        };
        assert!(params.builds_same_graph(&other));
        assert!(!params.builds_same_graph(&HnswParams { m: 8, ..params }));
    }
}
