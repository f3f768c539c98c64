//! The exact index: a scan of every vector. The oracle for the HNSW index, and the search used
//! when a filter leaves few movies.

use std::sync::{Arc, OnceLock};

use super::Hit;
use crate::linalg::{dot, HalfMatrix, Parallelism, Team};

/// Unit vectors stored row-major, searched by exhaustive dot product. Cloning shares the
/// vectors (models that score with them hold a clone).
#[derive(Debug, Clone, Default)]
pub struct FlatIndex {
    vectors: Vectors,
    dim: usize,
    /// The half-precision scan, once [`FlatIndex::prepare_fast_scan`] made it.
    fast: Arc<OnceLock<FastScan>>,
}

/// The vectors in half precision (half the bytes to read: a scan is bound by reading them)
/// and the threads that share a scan.
struct FastScan {
    matrix: HalfMatrix,
    team: Team,
    /// The largest vector norm (1 for unit vectors), for the rounding bound.
    max_norm: f32,
}

impl std::fmt::Debug for FastScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastScan")
            .field("columns", &self.matrix.outputs())
            .field("threads", &self.team.size())
            .finish()
    }
}

/// Where the vectors live: in memory, or in a read-only map of the index's vector file (a
/// one-shot process then reads only the pages a scan touches, straight from the page cache,
/// instead of copying 133 MB at ml-latest's size twice).
#[derive(Clone)]
enum Vectors {
    Owned(Arc<[f32]>),
    Mapped(Arc<MappedVectors>),
}

/// A map of little-endian f32 values, checked to cast, and its copy in memory once
/// [`FlatIndex::make_resident`] made it (then read instead of the map).
struct MappedVectors {
    map: memmap2::Mmap,
    resident: OnceLock<Box<[f32]>>,
}

impl Default for Vectors {
    fn default() -> Self {
        Vectors::Owned(Arc::from(Vec::new()))
    }
}

impl std::fmt::Debug for Vectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vectors")
            .field("values", &self.as_slice().len())
            .finish()
    }
}

impl Vectors {
    /// The values, row-major.
    fn as_slice(&self) -> &[f32] {
        match self {
            Vectors::Owned(values) => values,
            Vectors::Mapped(mapped) => match mapped.resident.get() {
                Some(copy) => copy,
                // Checked to cast when it was made (`FlatIndex::mapped`).
                None => bytemuck::cast_slice(&mapped.map[..]),
            },
        }
    }
}

impl FlatIndex {
    /// Wraps `vectors` (row-major, `len / dim` rows).
    pub fn new(vectors: Vec<f32>, dim: usize) -> FlatIndex {
        debug_assert!(dim > 0 && vectors.len().is_multiple_of(dim));
        FlatIndex {
            vectors: Vectors::Owned(vectors.into()),
            dim,
            fast: Arc::default(),
        }
    }

    /// The vectors of a map of little-endian f32 values (row-major, `dim` a row), read in
    /// place where this CPU's floats are little-endian and copied out otherwise. Errs when the
    /// map is not a whole number of rows.
    pub fn mapped(map: memmap2::Mmap, dim: usize) -> Result<FlatIndex, String> {
        if dim == 0 || !map.len().is_multiple_of(4 * dim) {
            return Err(format!(
                "{} bytes are not whole vectors of {dim} floats",
                map.len()
            ));
        }
        if cfg!(target_endian = "big") {
            let values = map
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            return Ok(FlatIndex::new(values, dim));
        }
        // A map starts on a page boundary: aligned for f32 (checked all the same).
        bytemuck::try_cast_slice::<u8, f32>(&map[..]).map_err(|e| e.to_string())?;
        Ok(FlatIndex {
            vectors: Vectors::Mapped(Arc::new(MappedVectors {
                map,
                resident: OnceLock::new(),
            })),
            dim,
            fast: Arc::default(),
        })
    }

    /// Copies mapped vectors into memory (nothing to do for vectors already there): a
    /// long-lived process then serves what it checked at open even if the file is later
    /// rewritten or truncated under it (which a map would show, or fault on).
    pub fn make_resident(&self) {
        if let Vectors::Mapped(mapped) = &self.vectors {
            mapped
                .resident
                .get_or_init(|| bytemuck::cast_slice(&mapped.map[..]).into());
        }
    }

    /// Makes later searches scan a half-precision copy of the vectors (where the CPU has the
    /// kernels), shared over the cores, then rescore a shortlist exactly: the same hits as
    /// the f32 scan. Worth it for a server's many queries, not for a one-shot process (the
    /// copy costs some 30–50 f32 scans). Idempotent; shared with clones.
    pub fn prepare_fast_scan(&self) {
        if !HalfMatrix::vectorised() || self.is_empty() || self.fast.get().is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let team = match Team::new(cores, "reelrank-scan") {
            Ok(team) => team,
            Err(e) => {
                tracing::warn!("the fast scan's threads did not start ({e}); scanning in f32");
                return;
            }
        };
        self.fast.get_or_init(|| FastScan {
            matrix: HalfMatrix::from_transposed(self.vectors.as_slice(), self.dim, self.len()),
            team,
            max_norm: (0..self.len())
                .map(|p| dot(self.vector(p), self.vector(p)).sqrt())
                .fold(0.0, f32::max),
        });
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.vectors
            .as_slice()
            .len()
            .checked_div(self.dim)
            .unwrap_or(0)
    }

    /// Whether the index holds no vector.
    pub fn is_empty(&self) -> bool {
        self.vectors.as_slice().is_empty()
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The vector at `position`.
    pub fn vector(&self, position: usize) -> &[f32] {
        &self.vectors.as_slice()[position * self.dim..(position + 1) * self.dim]
    }

    /// All vectors, row-major.
    pub fn vectors(&self) -> &[f32] {
        self.vectors.as_slice()
    }

    /// The `k` most similar vectors among those `allowed`, best first; ties go to the lower
    /// position.
    pub fn search(&self, query: &[f32], k: usize, allowed: &dyn Fn(usize) -> bool) -> Vec<Hit> {
        let query = &query[..self.dim];
        if let Some(fast) = self.fast.get() {
            return self.search_fast(fast, query, k, allowed);
        }
        // Every dot product in one matrix-vector product (gemm's SIMD kernels: 0.79 → 0.45 ms
        // a query over 9,742 × 384 with AVX-512, `examples/bench_query.rs`), then the filter.
        let hits: Vec<Hit> = crate::linalg::matvec(self.vectors.as_slice(), query)
            .into_iter()
            .enumerate()
            .filter(|&(position, _)| allowed(position))
            .map(|(position, similarity)| Hit {
                position,
                similarity,
            })
            .collect();
        top_k(hits, k)
    }

    /// [`FlatIndex::search`] through the half-precision copy: approximate similarities for
    /// every movie, then exact ones for every movie that could be among the `k` best.
    ///
    /// Exact by a bound, not by luck: the approximate similarity of a vector `v` differs from
    /// its rescored one by at most ε = 2⁻¹¹‖q‖‖v‖ (rounding normal components to half
    /// precision) + 2⁻²⁵‖q‖√dim (subnormal ones) + 2·dim·2⁻²⁴‖q‖‖v‖ (the f32 summation of
    /// each). A movie among the `k` best rescored ones then has an approximate similarity ≥
    /// the `k`-th best approximate one − 2ε, so rescoring every movie above that line finds
    /// all of them.
    fn search_fast(
        &self,
        fast: &FastScan,
        query: &[f32],
        k: usize,
        allowed: &dyn Fn(usize) -> bool,
    ) -> Vec<Hit> {
        let mut approximate = vec![0f32; fast.matrix.outputs()];
        fast.matrix
            .matmul_add(&mut approximate, query, 1, Parallelism::Team(&fast.team));
        let approximate = &approximate[..self.len()];
        if k == 0 {
            return Vec::new();
        }
        // The line: the k-th best allowed approximate similarity − 2ε (no line when fewer than
        // k are allowed). Selected on bare floats, then only the movies above it become hits.
        let mut allowed_scores: Vec<f32> = approximate
            .iter()
            .enumerate()
            .filter(|&(position, _)| allowed(position))
            .map(|(_, &similarity)| similarity)
            .collect();
        let line = if allowed_scores.len() > k {
            let q = dot(query, query).sqrt();
            let dim = self.dim as f32;
            let epsilon = q * fast.max_norm * (2f32.powi(-11) + 2.0 * dim * 2f32.powi(-24))
                + q * dim.sqrt() * 2f32.powi(-25);
            let (_, kth, _) = allowed_scores.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            *kth - 2.0 * epsilon
        } else {
            f32::NEG_INFINITY
        };
        let mut hits: Vec<Hit> = approximate
            .iter()
            .enumerate()
            .filter(|&(position, &similarity)| similarity >= line && allowed(position))
            .map(|(position, &similarity)| Hit {
                position,
                similarity,
            })
            .collect();
        for hit in &mut hits {
            hit.similarity = dot(self.vector(hit.position), query);
        }
        top_k(hits, k)
    }
}

/// The `k` best hits, best first, ties broken by position.
pub fn top_k(hits: Vec<Hit>, k: usize) -> Vec<Hit> {
    top_by(hits, k, |h| (f64::from(h.similarity), h.position))
}

/// The `n` best of `items` by `key(item) = (score, id)`: highest score first, ties to the
/// lower id. The one selection rule of search, candidates, recommendations and evaluations.
pub fn top_by<T>(mut items: Vec<T>, n: usize, key: impl Fn(&T) -> (f64, usize)) -> Vec<T> {
    let order = |a: &T, b: &T| {
        let ((score_a, id_a), (score_b, id_b)) = (key(a), key(b));
        score_b.total_cmp(&score_a).then(id_a.cmp(&id_b))
    };
    if items.len() > n && n > 0 {
        items.select_nth_unstable_by(n - 1, order);
    }
    items.truncate(n);
    items.sort_by(order);
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_the_most_similar_rows() {
        let index = FlatIndex::new(vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8], 2);
        let hits = index.search(&[0.0, 1.0], 2, &|_| true);
        assert_eq!(
            hits.iter().map(|h| h.position).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!((hits[1].similarity - 0.8).abs() < 1e-6);
        let filtered = index.search(&[0.0, 1.0], 5, &|p| p != 1);
        assert_eq!(
            filtered.iter().map(|h| h.position).collect::<Vec<_>>(),
            vec![2, 0]
        );
    }

    /// An index with the fast scan prepared.
    fn fast_index(vectors: Vec<f32>, dim: usize) -> FlatIndex {
        let fast = FlatIndex::new(vectors, dim);
        fast.prepare_fast_scan();
        assert_eq!(fast.fast.get().is_some(), HalfMatrix::vectorised());
        fast
    }

    /// The definition: every allowed vector's [`dot`] with the query, the `k` best.
    fn brute_force(
        index: &FlatIndex,
        query: &[f32],
        k: usize,
        allowed: &dyn Fn(usize) -> bool,
    ) -> Vec<Hit> {
        let hits = (0..index.len())
            .filter(|&p| allowed(p))
            .map(|p| Hit {
                position: p,
                similarity: dot(index.vector(p), query),
            })
            .collect();
        top_k(hits, k)
    }

    #[test]
    fn the_fast_scan_finds_exact_hits_among_near_ties() {
        // 300 vectors closer to each other than half precision can tell apart (±1e-4 around
        // one direction): the approximate order is noise, the rescored one must be exact.
        let dim = 32;
        let mut state = 11u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let base: Vec<f32> = (0..dim).map(|_| next()).collect();
        let vectors: Vec<f32> = (0..300)
            .flat_map(|_| base.iter().map(|b| b + 2e-4 * next()).collect::<Vec<_>>())
            .collect();
        let query: Vec<f32> = base.iter().map(|b| b + 0.01 * next()).collect();
        let fast = fast_index(vectors, dim);
        for k in [1, 10, 100] {
            let want = brute_force(&fast, &query, k, &|p| p % 3 != 0);
            assert_eq!(fast.search(&query, k, &|p| p % 3 != 0), want, "k {k}");
        }
    }

    proptest! {
        #[test]
        fn the_fast_scan_equals_the_definition(
            rows in 1usize..120,
            dim in 1usize..40,
            seed in 0u64..1000,
            k in 0usize..30,
            modulus in 1usize..4,
        ) {
            let mut state = seed;
            let mut next = || {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            };
            let vectors: Vec<f32> = (0..rows * dim).map(|_| next()).collect();
            let query: Vec<f32> = (0..dim).map(|_| next()).collect();
            let fast = fast_index(vectors, dim);
            let allowed = |p: usize| p.is_multiple_of(modulus);
            let want = brute_force(&fast, &query, k, &allowed);
            let got = fast.search(&query, k, &allowed);
            prop_assert_eq!(&got, &want);
            // The f32 scan (gemm's sums) agrees to rounding.
            let exact = FlatIndex::new(fast.vectors().to_vec(), dim).search(&query, k, &allowed);
            prop_assert_eq!(exact.len(), got.len());
            for (e, g) in exact.iter().zip(&got) {
                prop_assert!((e.similarity - g.similarity).abs() < 1e-5);
            }
        }

        #[test]
        fn top_k_equals_sort_then_truncate(sims in proptest::collection::vec(-1.0f32..1.0, 0..60), k in 0usize..70) {
            let hits: Vec<Hit> = sims.iter().enumerate().map(|(position, &similarity)| Hit { position, similarity }).collect();
            let mut expected = hits.clone();
            expected.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.position.cmp(&b.position)));
            expected.truncate(k);
            prop_assert_eq!(top_k(hits, k), expected);
        }
    }
}
