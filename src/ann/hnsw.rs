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

/// One layer's links in compressed rows: the neighbours of point `p` are
/// `targets[offsets[p]..offsets[p + 1]]` (none for a point that is not on the layer).
#[derive(Debug, Default)]
struct Links {
    offsets: Vec<u32>,
    targets: Vec<u32>,
}

impl Links {
    /// Lays `lists` (one neighbour list per point) out in rows.
    fn from_lists(lists: &[Vec<u32>]) -> Links {
        let mut offsets = Vec::with_capacity(lists.len() + 1);
        offsets.push(0);
        let mut targets = Vec::with_capacity(lists.iter().map(Vec::len).sum());
        for list in lists {
            targets.extend_from_slice(list);
            offsets.push(targets.len() as u32);
        }
        Links { offsets, targets }
    }

    /// The neighbours of `point` on this layer.
    #[inline]
    fn of(&self, point: u32) -> &[u32] {
        let p = point as usize;
        &self.targets[self.offsets[p] as usize..self.offsets[p + 1] as usize]
    }
}

/// A point and its similarity to the query, ordered by similarity (ties to the lower point).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored {
    similarity: f32,
    point: u32,
}

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.similarity
            .total_cmp(&other.similarity)
            .then(other.point.cmp(&self.point))
    }
}

/// An HNSW index over unit vectors, searched by dot product.
///
/// hnsw_rs builds the graph and writes and reads its files; the walk is ours. Once loaded, the
/// graph's links are copied into one array per layer, its vectors checked to be the exact
/// index's (whose matrix the walk then reads), and hnsw_rs' structures are dropped: its own
/// search keeps each point behind an `Arc` and each neighbour list behind a lock, with a hash
/// map of `Arc`s for the visited points. Over the
/// same graph of 86.5k movies this walk takes 0.58 ms for 100 neighbours where hnsw_rs took
/// 1.66 ms, and 0.38 ms for 10 at ef 64 where it took 0.86 ms, at the same recall
/// (`examples/bench_query.rs`): links and vectors contiguous, the next vectors prefetched
/// (0.70 ms without), visited points one bit each.
pub struct HnswIndex {
    /// Layer 0 (every point) first.
    layers: Vec<Links>,
    /// The points of the top layer, where every walk starts.
    top: Vec<u32>,
    /// The points' vectors: the exact index's, shared.
    vectors: FlatIndex,
    params: HnswParams,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("points", &self.len())
            .field("layers", &self.layers.len())
            .field("params", &self.params)
            .finish()
    }
}

/// The points a walk has reached, one bit each.
struct Visited(Vec<u64>);

impl Visited {
    fn new(points: usize) -> Visited {
        Visited(vec![0; points.div_ceil(64)])
    }

    /// Marks `point`; whether it was unmarked.
    #[inline]
    fn insert(&mut self, point: u32) -> bool {
        let (word, bit) = ((point / 64) as usize, 1u64 << (point % 64));
        let fresh = self.0[word] & bit == 0;
        self.0[word] |= bit;
        fresh
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

    /// Writes into `to` the graph dumped in `from`, which holds the first `first_new` rows of
    /// `vectors` (row-major), with the remaining rows inserted one by one in position order.
    pub fn extend_into(
        from: &Path,
        to: &Path,
        vectors: &[f32],
        dim: usize,
        first_new: usize,
    ) -> std::io::Result<()> {
        let io = HnswIo::new(from, GRAPH_BASENAME);
        let graph: Graph = io
            .load_hnsw_with_dist::<f32, DotDistance>(DotDistance)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if graph.get_nb_point() != first_new {
            return Err(std::io::Error::other(format!(
                "the graph holds {} points, not the first {first_new}",
                graph.get_nb_point()
            )));
        }
        let new_rows = vectors.get(first_new * dim..).unwrap_or_default();
        for (offset, vector) in new_rows.chunks_exact(dim).enumerate() {
            graph.insert_slice((vector, first_new + offset));
        }
        graph
            .file_dump(to, GRAPH_BASENAME)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(())
    }

    /// Loads the graph dumped in `dir`, built over the vectors of `vectors` (the error is
    /// hnsw_rs' message, or what is inconsistent in what it read). The caller checks the files'
    /// checksums first: hnsw_rs panics rather than erring on some damaged files.
    pub fn load(dir: &Path, params: HnswParams, vectors: &FlatIndex) -> Result<HnswIndex, String> {
        let io = HnswIo::new(dir, GRAPH_BASENAME);
        let graph: Graph = io
            .load_hnsw_with_dist::<f32, DotDistance>(DotDistance)
            .map_err(|e| e.to_string())?;
        Self::links_of(&graph, params, vectors)
    }

    /// The links of `graph` in our layout, checked: every position of `vectors` once, each
    /// point's vector bit for bit that row (a graph of another build is refused), every link
    /// to a point.
    fn links_of(
        graph: &Graph,
        params: HnswParams,
        vectors: &FlatIndex,
    ) -> Result<HnswIndex, String> {
        let n = graph.get_nb_point();
        if n != vectors.len() {
            return Err(format!("{n} points for {} vectors", vectors.len()));
        }
        let top_level = usize::from(graph.get_max_level_observed());
        let mut lists: Vec<Vec<Vec<u32>>> = vec![vec![Vec::new(); n]; top_level + 1];
        let mut levels: Vec<Option<usize>> = vec![None; n];
        for point in graph.get_point_indexation() {
            let position = point.get_origin_id();
            let level = usize::from(point.get_point_id().0);
            if position >= n || levels[position].is_some() || level > top_level {
                return Err(format!(
                    "point {position} on layer {level} is out of place in a graph of {n} points \
                     and {} layers",
                    top_level + 1
                ));
            }
            levels[position] = Some(level);
            let (stored, expected) = (point.get_v(), vectors.vector(position));
            if stored.len() != expected.len()
                || stored
                    .iter()
                    .zip(expected)
                    .any(|(a, b)| a.to_bits() != b.to_bits())
            {
                return Err(format!(
                    "point {position}'s vector is not the index's vector {position}"
                ));
            }
            for (layer, neighbours) in point.get_neighborhood_id().iter().enumerate() {
                if neighbours.is_empty() {
                    continue;
                }
                // hnsw_rs links a point on layers above its own too (the first points inserted
                // are linked from later, higher ones), and walks those links: so do we.
                if layer > top_level {
                    return Err(format!(
                        "point {position} has links on layer {layer} of a graph of {}",
                        top_level + 1
                    ));
                }
                for neighbour in neighbours {
                    if neighbour.d_id >= n {
                        return Err(format!(
                            "point {position} links to point {} of a graph of {n}",
                            neighbour.d_id
                        ));
                    }
                    lists[layer][position].push(neighbour.d_id as u32);
                }
            }
        }
        if let Some(missing) = levels.iter().position(Option::is_none) {
            return Err(format!("point {missing} of {n} is missing"));
        }
        let top = (0..n)
            .filter(|&p| levels[p] == Some(top_level))
            .map(|p| p as u32)
            .collect();
        Ok(HnswIndex {
            layers: lists.iter().map(|l| Links::from_lists(l)).collect(),
            top,
            vectors: vectors.clone(),
            params,
        })
    }

    /// The parameters the index was built and is searched with.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Number of points in the graph.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.offsets.len() - 1)
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
        let dim = self.vectors.dim();
        if k == 0 || self.is_empty() || query.len() < dim {
            return Vec::new();
        }
        let query = &query[..dim];
        let found = crate::linalg::with_wide_vectors(
            #[inline(always)]
            || self.walk(query, ef.max(k), allowed),
        );
        let hits = found
            .into_iter()
            .map(|s| Hit {
                position: s.point as usize,
                similarity: s.similarity,
            })
            .collect();
        super::flat::top_k(hits, k)
    }

    /// Malkov and Yashunin's search (algorithms 2 and 5): greedy from the best point of the top
    /// layer down to layer 1, then a best-first walk of layer 0 keeping the `ef` most similar
    /// `allowed` points found. A point the filter refuses is still walked through, and the walk
    /// goes on until `ef` allowed points are found (as hnswlib's filtered search).
    #[inline(always)]
    fn walk(
        &self,
        query: &[f32],
        ef: usize,
        allowed: Option<&dyn Fn(usize) -> bool>,
    ) -> Vec<Scored> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        // The matrix once (the flat index chooses between its map and its copy per call).
        let (rows, dim) = (self.vectors.vectors(), self.vectors.dim());
        let vector = |point: u32| &rows[point as usize * dim..(point as usize + 1) * dim];
        let similarity = |point: u32| crate::linalg::dot(query, vector(point));
        let scored = |point: u32| Scored {
            similarity: similarity(point),
            point,
        };
        let mut best = self
            .top
            .iter()
            .map(|&p| scored(p))
            .max()
            .unwrap_or_else(|| scored(0));
        for links in self.layers[1..].iter().rev() {
            loop {
                let step = links
                    .of(best.point)
                    .iter()
                    .map(|&p| scored(p))
                    .max()
                    .filter(|s| *s > best);
                match step {
                    Some(s) => best = s,
                    None => break,
                }
            }
        }
        let admits = |s: &Scored| allowed.is_none_or(|a| a(s.point as usize));
        let mut visited = Visited::new(self.len());
        visited.insert(best.point);
        let mut candidates = BinaryHeap::with_capacity(ef * 4);
        candidates.push(best);
        // The `ef` best allowed points so far, the least similar on top.
        let mut found: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(ef + 1);
        if admits(&best) {
            found.push(Reverse(best));
        }
        let mut fresh = Vec::with_capacity(64);
        while let Some(candidate) = candidates.pop() {
            let worst = found.peek().map(|w| w.0);
            if found.len() >= ef && worst.is_some_and(|w| candidate < w) {
                break;
            }
            fresh.clear();
            fresh.extend(
                self.layers[0]
                    .of(candidate.point)
                    .iter()
                    .copied()
                    .filter(|&p| visited.insert(p)),
            );
            for &p in &fresh {
                crate::linalg::prefetch(vector(p));
            }
            for &p in &fresh {
                let s = scored(p);
                let worst = found.peek().map(|w| w.0);
                if found.len() < ef || worst.is_some_and(|w| s > w) {
                    candidates.push(s);
                    if admits(&s) {
                        found.push(Reverse(s));
                        if found.len() > ef {
                            found.pop();
                        }
                    }
                }
            }
        }
        found.into_iter().map(|r| r.0).collect()
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

    /// A small hard graph: 3,000 random unit vectors of 16 dimensions (seeded) linked with
    /// M 4 and a short construction list, so that short search lists miss neighbours; 100
    /// queries near the first vectors. Returns the directory holding it too.
    fn hard_graph() -> (tempfile::TempDir, Vec<f32>, Vec<Vec<f32>>, HnswParams) {
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
        (dir, vectors, queries, params)
    }

    #[test]
    fn the_walk_finds_what_hnsw_rs_finds_on_the_same_graph() {
        let (dir, vectors, queries, params) = hard_graph();
        let exact = FlatIndex::new(vectors.clone(), 16);
        let ours = HnswIndex::load(dir.path(), params, &exact).expect("load");
        assert_eq!(ours.len(), 3000);
        // Vectors that are not the graph's, by one bit of one value or by a row, are refused.
        let mut other = vectors.clone();
        other[16 * 1234 + 5] = f32::from_bits(other[16 * 1234 + 5].to_bits() ^ 1);
        let refused = HnswIndex::load(dir.path(), params, &FlatIndex::new(other, 16));
        assert!(refused.is_err_and(|e| e.contains("point 1234's vector")));
        let shorter = FlatIndex::new(vectors[..16 * 2999].to_vec(), 16);
        assert!(HnswIndex::load(dir.path(), params, &shorter).is_err());
        let io = HnswIo::new(dir.path(), GRAPH_BASENAME);
        let theirs: Graph = io
            .load_hnsw_with_dist::<f32, DotDistance>(DotDistance)
            .expect("hnsw_rs load");
        for ef in [16, 64] {
            let (mut same, mut ours_found, mut theirs_found) = (0, 0, 0);
            for q in &queries {
                let truth: Vec<usize> = exact
                    .search(q, 10, &|_| true)
                    .iter()
                    .map(|h| h.position)
                    .collect();
                let a: Vec<usize> = ours
                    .search_with_ef(q, 10, ef, None)
                    .iter()
                    .map(|h| h.position)
                    .collect();
                let b: Vec<usize> = theirs.search(q, 10, ef).iter().map(|n| n.d_id).collect();
                same += a.iter().filter(|p| b.contains(p)).count();
                ours_found += a.iter().filter(|p| truth.contains(p)).count();
                theirs_found += b.iter().filter(|p| truth.contains(p)).count();
            }
            // The same algorithm over the same links: nearly the same answers (the walks start
            // from different top-layer points and stop by slightly different rules), and the
            // same recall within 1 %.
            assert!(same >= 950, "ef {ef}: {same} of 1000 shared with hnsw_rs");
            assert!(
                ours_found + 10 >= theirs_found,
                "ef {ef}: recall {ours_found} vs hnsw_rs' {theirs_found} of 1000"
            );
        }
        // Similarities are the exact dot products of the returned points, best first.
        let hits = ours.search_with_ef(&queries[0], 10, 64, None);
        assert!(hits.windows(2).all(|w| w[0].similarity >= w[1].similarity));
        for h in &hits {
            let expected = crate::linalg::dot(&queries[0], exact.vector(h.position));
            assert!((h.similarity - expected).abs() < 1e-6);
        }
    }

    #[test]
    fn an_extended_graph_holds_every_point_and_searches_like_a_built_one() {
        let (built_dir, vectors, _, params) = hard_graph();
        let dim = 16;
        let base = tempfile::tempdir().expect("base");
        HnswIndex::build_into(base.path(), &vectors[..2500 * dim], dim, params).expect("base");
        let (a, b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        HnswIndex::extend_into(base.path(), a.path(), &vectors, dim, 2500).expect("extend");
        HnswIndex::extend_into(base.path(), b.path(), &vectors, dim, 2500).expect("extend");
        for name in GRAPH_FILES {
            let read = |dir: &Path| std::fs::read(dir.join(name)).expect("graph file");
            assert_eq!(
                read(a.path()),
                read(b.path()),
                "{name}: the same for the same base"
            );
        }
        let exact = FlatIndex::new(vectors.clone(), dim);
        let extended = HnswIndex::load(a.path(), params, &exact).expect("load");
        let built = HnswIndex::load(built_dir.path(), params, &exact).expect("load");
        assert_eq!(extended.len(), 3000);
        let row = |p: usize| &vectors[p * dim..(p + 1) * dim];
        let finds_itself = |graph: &HnswIndex| {
            (2500..3000)
                .filter(|&p| graph.search_with_ef(row(p), 1, 64, None)[0].position == p)
                .count()
        };
        let (found, found_built) = (finds_itself(&extended), finds_itself(&built));
        assert!(found + 5 >= found_built, "{found} vs {found_built} of 500");
        // Queries near the new points and near the old ones: recall as the built graph's.
        let queries: Vec<Vec<f32>> = (2400..2600)
            .map(|p| row(p).iter().map(|x| x + 0.05).collect())
            .collect();
        let truths: Vec<Vec<Hit>> = queries
            .iter()
            .map(|q| exact.search(q, 10, &|_| true))
            .collect();
        let (recall, recall_built) = (
            extended.recall_at(&queries, &truths, 10, 64),
            built.recall_at(&queries, &truths, 10, 64),
        );
        assert!(
            recall >= recall_built - 0.02,
            "recall@10 {recall} vs {recall_built} built from scratch"
        );
        // A base that does not hold exactly the first rows is refused.
        let c = tempfile::tempdir().expect("c");
        assert!(HnswIndex::extend_into(base.path(), c.path(), &vectors, dim, 2400).is_err());
    }

    #[test]
    fn a_filtered_walk_returns_only_allowed_points_and_with_a_full_list_the_exact_ones() {
        let (dir, vectors, queries, params) = hard_graph();
        let exact = FlatIndex::new(vectors, 16);
        let graph = HnswIndex::load(dir.path(), params, &exact).expect("load");
        // Every third point; then a filter that keeps 5 points only.
        let thirds = |p: usize| p.is_multiple_of(3);
        let five = |p: usize| p % 600 == 7;
        for q in queries.iter().take(20) {
            let hits = graph.search_with_ef(q, 10, 64, Some(&thirds));
            assert_eq!(hits.len(), 10);
            assert!(hits.iter().all(|h| thirds(h.position)));
            // A list as long as the graph walks every point it reaches: the exact answer.
            let positions = |hits: Vec<Hit>| hits.iter().map(|h| h.position).collect::<Vec<_>>();
            let full = graph.search_with_ef(q, 10, 3000, Some(&thirds));
            assert_eq!(positions(full), positions(exact.search(q, 10, &thirds)));
            let few = graph.search_with_ef(q, 10, 64, Some(&five));
            assert_eq!(
                positions(few),
                positions(exact.search(q, 10, &five)),
                "all five, in order"
            );
        }
    }

    #[test]
    fn calibration_picks_the_smallest_list_that_reaches_the_recall() {
        let (dir, vectors, queries, params) = hard_graph();
        let exact = FlatIndex::new(vectors, 16);
        let graph = HnswIndex::load(dir.path(), params, &exact).expect("load");
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
