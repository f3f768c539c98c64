//! Dense f32 matrix products: ours on weights laid out once in panels ([`PanelMatrix`]: f32,
//! or half precision as [`HalfMatrix`]) with an AVX2 kernel, gemm's (candle's own, with the
//! `x86-v4` feature on: AVX-512 where the CPU has it, chosen at run time) on matrices as
//! stored; a [`Team`] of threads for splitting one short product's columns; dot products and
//! a wide-vector target for element-wise loops. This module holds, with
//! `fsutil::map_read_only`, the crate's only `unsafe` code, behind safe signatures whose
//! bounds are checked.

mod panels;
mod team;

use std::ops::Range;

pub use panels::{HalfMatrix, PanelMatrix, PanelValue};
pub use team::Team;

/// How one matrix product uses threads.
#[derive(Clone, Copy)]
pub enum Parallelism<'a> {
    /// All on the calling thread (callers that run many products side by side).
    Sequential,
    /// The output's columns shared among a [`Team`].
    Team(&'a Team),
}

/// Columns of one block of a split: a multiple of every kernel's register width.
const COLUMN_BLOCK: usize = 16;

/// Runs `work` over `outputs` columns: all at once, or a contiguous range of whole
/// [`COLUMN_BLOCK`]s per member of a team.
fn split_columns(parallelism: Parallelism, outputs: usize, work: &(dyn Fn(Range<usize>) + Sync)) {
    match parallelism {
        Parallelism::Sequential => work(0..outputs),
        Parallelism::Team(team) => {
            let (blocks, parts) = (outputs.div_ceil(COLUMN_BLOCK), team.size());
            team.run(&|i| {
                let start = (i * blocks / parts * COLUMN_BLOCK).min(outputs);
                let end = ((i + 1) * blocks / parts * COLUMN_BLOCK).min(outputs);
                if start < end {
                    work(start..end);
                }
            });
        }
    }
}

/// A row-major output shared by the members of one split product, each writing only the
/// columns [`split_columns`] gave it.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);

impl SharedOut {
    /// The pointer (a method, so that closures capture the `Sync` wrapper, not the field).
    fn get(self) -> *mut f32 {
        self.0
    }
}

// SAFETY: members write disjoint columns through it, inside the `&mut` slice it was made
// from, which stays borrowed until the split product returns.
#[allow(unsafe_code)]
unsafe impl Sync for SharedOut {}
#[allow(unsafe_code)]
unsafe impl Send for SharedOut {}

/// `out += x·w`: `x` row-major `[rows, inputs]`, `w` row-major `[inputs, outputs]`, `out`
/// row-major `[rows, outputs]`.
///
/// # Panics
/// When a slice is shorter than its shape says (a programming error, not a data error).
pub fn matmul_add(
    out: &mut [f32],
    x: &[f32],
    w: &[f32],
    rows: usize,
    inputs: usize,
    outputs: usize,
    parallelism: Parallelism,
) {
    product(out, x, w, (rows, inputs, outputs), false, parallelism);
}

/// `out += x·wᵀ` for `w_t` row-major `[outputs, inputs]` (a linear layer's weight as stored:
/// gemm reads it through strides, so nothing is transposed at load).
///
/// # Panics
/// When a slice is shorter than its shape says.
pub fn matmul_add_transposed(
    out: &mut [f32],
    x: &[f32],
    w_t: &[f32],
    rows: usize,
    inputs: usize,
    outputs: usize,
    parallelism: Parallelism,
) {
    product(out, x, w_t, (rows, inputs, outputs), true, parallelism);
}

/// [`matmul_add`] (`transposed` false) or [`matmul_add_transposed`] (true).
fn product(
    out: &mut [f32],
    x: &[f32],
    w: &[f32],
    (rows, inputs, outputs): (usize, usize, usize),
    transposed: bool,
    parallelism: Parallelism,
) {
    let (out, x, w) = (
        &mut out[..rows * outputs],
        &x[..rows * inputs],
        &w[..inputs * outputs],
    );
    if rows == 0 || outputs == 0 {
        return;
    }
    // Element (k, n) of the right-hand side: w[k·outputs + n], or w_t[n·inputs + k].
    let (row_stride, column_stride) = if transposed {
        (1, inputs)
    } else {
        (outputs, 1)
    };
    let target = SharedOut(out.as_mut_ptr());
    split_columns(parallelism, outputs, &|columns| {
        // SAFETY: `out`, `x` and `w` were just cut to exactly rows × outputs, rows × inputs
        // and inputs × outputs values. The product covers columns `columns` (inside
        // 0..outputs) of `out` (row stride outputs) and of the right-hand side, whose element
        // (k, n) lies at k·row_stride + n·column_stride < inputs·outputs, and `x` with row
        // stride inputs: it addresses only inside them. `out` stays borrowed mutably for the
        // whole split, and members write disjoint columns. gemm reads `out` (read_dst) and
        // adds 1·x·w.
        #[allow(unsafe_code)]
        unsafe {
            gemm::gemm(
                rows,
                columns.len(),
                inputs,
                target.get().add(columns.start),
                1,
                outputs as isize,
                true,
                x.as_ptr(),
                1,
                inputs as isize,
                w.as_ptr().add(columns.start * column_stride),
                column_stride as isize,
                row_stride as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    });
}

/// Runs `work` compiled for AVX2 and FMA where the CPU has them, as it is elsewhere: the
/// crate's baseline target is SSE2, so element-wise loops (GELU, LayerNorm, softmax) inlined
/// into `work` otherwise run 4 lanes wide. Results are the same either way (no operation is
/// fused or reordered by the wider target).
#[inline]
pub fn with_wide_vectors<R>(work: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        /// `work`, compiled (once inlined) for AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        fn wide<R>(work: impl FnOnce() -> R) -> R {
            work()
        }
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        #[allow(unsafe_code)]
        return unsafe { wide(work) };
    }
    work()
}

/// Σ term(aᵢ, bᵢ) over two equal-length slices in eight running sums, one per lane, added
/// at the end: the loop vectorises (a single running sum would serialise on float addition).
#[inline(always)]
pub fn lane_sum_pairs<A: Copy, B: Copy>(a: &[A], b: &[B], term: impl Fn(A, B) -> f32) -> f32 {
    const LANES: usize = 8;
    let mut acc = [0f32; LANES];
    let chunks_a = a.chunks_exact(LANES);
    let chunks_b = b.chunks_exact(LANES);
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(&x, &y)| term(x, y))
        .sum();
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for i in 0..LANES {
            acc[i] += term(ca[i], cb[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Σ term(x) over `items`, in eight running sums as [`lane_sum_pairs`] (the second slice's
/// loads are unused, so the compiler drops them): for one sequence of any kind (an item-kNN
/// column's (rater, rating) pairs, a row of activations).
#[inline(always)]
pub fn lane_sum<T: Copy>(items: &[T], term: impl Fn(T) -> f32) -> f32 {
    lane_sum_pairs(items, items, |x, _| term(x))
}

/// Dot product of two equal-length slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    lane_sum_pairs(a, b, |x, y| x * y)
}

/// Asks the CPU to start loading `values` into its caches (every 64-byte line), so that a
/// later read finds them there: for random accesses such as a graph walk's, whose addresses
/// the hardware prefetcher cannot guess. A hint only: nothing happens elsewhere.
#[inline]
pub fn prefetch<T>(values: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        const LINE: usize = 64;
        let start = values.as_ptr() as usize;
        let end = start + std::mem::size_of_val(values);
        // From the line holding the first byte: a slice that starts inside a line spans
        // one more line than its length alone says.
        let mut line = start & !(LINE - 1);
        while line < end {
            // SAFETY: a prefetch never faults, and each line holds a byte of `values`.
            #[allow(unsafe_code)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(line as *const i8)
            };
            line += LINE;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}

/// From this many rows [`matvec`] splits its rows over rayon's pool.
const MATVEC_SPLIT_FROM_ROWS: usize = 4096;

/// `matrix · vector` for a row-major `[rows, vector.len()]` matrix: every row's dot product
/// with the vector; large matrices in one chunk of rows per thread of rayon's current pool.
pub fn matvec(matrix: &[f32], vector: &[f32]) -> Vec<f32> {
    use rayon::prelude::*;
    let dim = vector.len();
    let rows = matrix.len().checked_div(dim).unwrap_or(0);
    let mut out = vec![0f32; rows];
    if rows == 0 {
        return out;
    }
    let threads = rayon::current_num_threads();
    // Reading the matrix is the cost (15 MB at 9,742 × 384): both cores' loads.
    let chunk = if rows >= MATVEC_SPLIT_FROM_ROWS && threads > 1 {
        rows.div_ceil(threads)
    } else {
        rows.max(1)
    };
    out.par_chunks_mut(chunk)
        .zip(matrix[..rows * dim].par_chunks(chunk * dim))
        .for_each(|(out, rows_of)| {
            // out[rows × 1] += matrix[rows × dim] · vector[dim × 1]
            matmul_add(
                out,
                rows_of,
                vector,
                out.len(),
                dim,
                1,
                Parallelism::Sequential,
            );
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_match_the_definition() {
        let x = [1.0, 0.0, -1.0, 2.0, 1.0, 0.0]; // [2, 3]
        let w = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]; // [3, 2]
        let mut out = vec![0.5, -1.0, 0.5, -1.0];
        matmul_add(&mut out, &x, &w, 2, 3, 2, Parallelism::Sequential);
        assert_eq!(
            out,
            vec![1.0 - 3.0 + 0.5, 4.0 - 6.0 - 1.0, 4.0 + 0.5, 13.0 - 1.0]
        );
        let m = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(matvec(&m, &[1.0, 0.0, -1.0]), vec![-2.0, -2.0]);
        assert_eq!(matvec(&[], &[1.0]), Vec::<f32>::new());
    }

    #[test]
    fn a_team_shares_the_columns_without_changing_the_product() {
        // 3 column blocks and a ragged fourth over 2 members: uneven shares.
        let (rows, inputs, outputs) = (7, 40, 56);
        let x: Vec<f32> = (0..rows * inputs).map(|i| (i % 13) as f32 - 6.0).collect();
        let w: Vec<f32> = (0..inputs * outputs)
            .map(|i| (i % 7) as f32 * 0.5)
            .collect();
        let start: Vec<f32> = (0..rows * outputs).map(|i| i as f32).collect();
        let mut alone = start.clone();
        matmul_add(
            &mut alone,
            &x,
            &w,
            rows,
            inputs,
            outputs,
            Parallelism::Sequential,
        );
        let team = Team::new(2, "test-split").expect("threads");
        let mut shared = start.clone();
        matmul_add(
            &mut shared,
            &x,
            &w,
            rows,
            inputs,
            outputs,
            Parallelism::Team(&team),
        );
        assert_eq!(alone, shared);
        assert_ne!(alone, start);
        // The same product from the weight's transpose, alone and shared.
        let w_t: Vec<f32> = (0..outputs * inputs)
            .map(|i| w[(i % inputs) * outputs + i / inputs])
            .collect();
        for parallelism in [Parallelism::Sequential, Parallelism::Team(&team)] {
            let mut from_t = start.clone();
            matmul_add_transposed(&mut from_t, &x, &w_t, rows, inputs, outputs, parallelism);
            assert_eq!(from_t, alone);
        }
    }

    #[test]
    fn dot_handles_remainders() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let expected: f32 = a.iter().map(|x| x * x).sum();
        assert_eq!(dot(&a, &a), expected);
        assert_eq!(dot(&[], &[]), 0.0);
        // Σ x² the same way, and Σ (x − 1)² over 19 values: 8 + 8 lanes and a tail of 3.
        assert_eq!(lane_sum(&a, |x| x * x), expected);
        let shifted: f32 = a.iter().map(|x| (x - 1.0) * (x - 1.0)).sum();
        assert_eq!(lane_sum(&a, |x| (x - 1.0) * (x - 1.0)), shifted);
    }

    #[test]
    fn the_wide_target_computes_the_same_values() {
        let xs: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
        let f = |xs: &[f32]| -> Vec<u32> {
            xs.iter()
                .map(|x| (x * 1.5 + x * x * 0.25 - x / 3.0).to_bits())
                .collect()
        };
        let wide = with_wide_vectors(
            #[inline(always)]
            || (f(&xs), dot(&xs, &xs).to_bits()),
        );
        assert_eq!(wide, (f(&xs), dot(&xs, &xs).to_bits()));
    }

    #[test]
    #[should_panic]
    fn a_short_slice_panics_before_the_product() {
        matmul_add(
            &mut [0.0; 3],
            &[1.0; 6],
            &[1.0; 6],
            2,
            3,
            2,
            Parallelism::Sequential,
        );
    }
}
