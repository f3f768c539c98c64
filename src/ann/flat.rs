//! The exact index: a scan of every vector. The oracle for the HNSW index, and the search used
//! when a filter leaves few movies.

use std::sync::Arc;

use super::Hit;

/// Unit vectors stored row-major, searched by exhaustive dot product. Cloning shares the
/// vectors (models that score with them hold a clone).
#[derive(Debug, Clone, Default)]
pub struct FlatIndex {
    vectors: Arc<[f32]>,
    dim: usize,
}

impl FlatIndex {
    /// Wraps `vectors` (row-major, `len / dim` rows).
    pub fn new(vectors: Vec<f32>, dim: usize) -> FlatIndex {
        debug_assert!(dim > 0 && vectors.len().is_multiple_of(dim));
        FlatIndex {
            vectors: vectors.into(),
            dim,
        }
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.vectors.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Whether the index holds no vector.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The vector at `position`.
    pub fn vector(&self, position: usize) -> &[f32] {
        &self.vectors[position * self.dim..(position + 1) * self.dim]
    }

    /// All vectors, row-major.
    pub fn vectors(&self) -> &[f32] {
        &self.vectors
    }

    /// The `k` most similar vectors among those `allowed`, best first; ties go to the lower
    /// position.
    pub fn search(&self, query: &[f32], k: usize, allowed: &dyn Fn(usize) -> bool) -> Vec<Hit> {
        // Every dot product in one matrix-vector product (gemm's SIMD kernels: 0.79 → 0.45 ms
        // a query over 9,742 × 384 with AVX-512, `examples/bench_query.rs`), then the filter.
        let hits: Vec<Hit> = crate::linalg::matvec(&self.vectors, &query[..self.dim])
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
}

/// Dot product of two equal-length slices. Eight independent accumulators let the compiler
/// vectorise the loop (a single running sum would serialise on float addition).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut acc = [0f32; LANES];
    let chunks_a = a.chunks_exact(LANES);
    let chunks_b = b.chunks_exact(LANES);
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for i in 0..LANES {
            acc[i] += ca[i] * cb[i];
        }
    }
    acc.iter().sum::<f32>() + tail
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

    #[test]
    fn dot_handles_remainders() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let expected: f32 = a.iter().map(|x| x * x).sum();
        assert_eq!(dot(&a, &a), expected);
        assert_eq!(dot(&[], &[]), 0.0);
    }

    proptest! {
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
