//! Products with a matrix laid out in panels of 16 columns for our AVX2 kernel: in IEEE half
//! precision (a short query's weights, the catalogue's vectors for stage one's scan) or in f32
//! (the catalogue's weights).

use super::{split_columns, Parallelism, SharedOut, COLUMN_BLOCK};

/// Columns of one panel: two 8-lane AVX registers.
const PANEL: usize = COLUMN_BLOCK;
/// Rows of `x` one kernel call carries: 2·6 accumulators, 2 weight registers and a broadcast
/// fill 15 of AVX2's 16 registers.
const ROW_BLOCK: usize = 6;
/// Bytes of `x` one pass over the panels reads: a chunk of rows multiplied by every panel in
/// turn while it stays in L2, so that a product of many rows reads each panel once a chunk
/// rather than re-reading all of `x` for every panel. Measured with 2,048 rows (a catalogue
/// batch) on one thread of the AVX2 machine: 24, 48 and 96 KB gave median 70–76, 74–91 and
/// 67–75 GFLOP/s over the three shapes of a layer; all of `x` at once 54–68.
const CHUNK_BYTES: usize = 48 * 1024;

/// How a panel stores its values: IEEE half precision ([`half::f16`]) or `f32`.
pub trait PanelValue: Copy + Send + Sync + 'static {
    /// The value 0 (padding columns).
    const ZERO: Self;
    /// `src` rounded into `dst` (same length).
    fn from_f32_slice(src: &[f32], dst: &mut [Self]);
    /// The value as f32 (the scalar loop).
    fn to_f32(self) -> f32;
    /// Eight values from `ptr` as f32 lanes.
    ///
    /// # Safety
    /// AVX2, FMA and F16C are present and `ptr` points at 8 values.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe fn load8(ptr: *const Self) -> std::arch::x86_64::__m256;
}

impl PanelValue for half::f16 {
    const ZERO: Self = half::f16::ZERO;
    fn from_f32_slice(src: &[f32], dst: &mut [Self]) {
        use half::slice::HalfFloatSliceExt;
        dst.convert_from_f32_slice(src);
    }
    fn to_f32(self) -> f32 {
        half::f16::to_f32(self)
    }
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    #[inline(always)]
    unsafe fn load8(ptr: *const Self) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::{__m128i, _mm256_cvtph_ps, _mm_loadu_si128};
        // SAFETY: the caller's contract: F16C present, 8 values (16 bytes) at `ptr`.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(ptr.cast::<__m128i>())) }
    }
}

impl PanelValue for f32 {
    const ZERO: Self = 0.0;
    fn from_f32_slice(src: &[f32], dst: &mut [Self]) {
        dst.copy_from_slice(src);
    }
    fn to_f32(self) -> f32 {
        self
    }
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    #[inline(always)]
    unsafe fn load8(ptr: *const Self) -> std::arch::x86_64::__m256 {
        // SAFETY: the caller's contract: AVX present, 8 values at `ptr`.
        unsafe { std::arch::x86_64::_mm256_loadu_ps(ptr) }
    }
}

/// A `[inputs, outputs]` matrix cut into panels of 16 columns (the last padded with zero
/// columns), each panel's `inputs × 16` values contiguous: the layout our kernel streams, read
/// once per chunk of rows, prepared once (gemm re-packs its right-hand side on every call).
pub struct PanelMatrix<E> {
    panels: Vec<E>,
    inputs: usize,
    outputs: usize,
}

/// A [`PanelMatrix`] in IEEE half precision.
///
/// Why: a short query's products are bound by reading the weights, not by arithmetic (one
/// token reads all 42 MB of MiniLM's f32 weights, more than the L3 cache holds); halves are
/// half the bytes, and F16C turns them back into f32 for f32 arithmetic. Rounding moves each
/// value by at most 2⁻¹¹ of itself (normal values) or 2⁻²⁵ (subnormal ones).
pub type HalfMatrix = PanelMatrix<half::f16>;

impl<E: PanelValue> PanelMatrix<E> {
    /// Columns of one panel: results come in whole panels.
    pub const PANEL: usize = PANEL;

    /// The matrix whose transpose `w_t` is (row-major `[outputs, inputs]`, as a linear
    /// layer's weight is stored), rounded to `E`.
    ///
    /// # Panics
    /// When `w_t` is shorter than `outputs × inputs`.
    pub fn from_transposed(w_t: &[f32], inputs: usize, outputs: usize) -> Self {
        let w_t = &w_t[..inputs * outputs];
        Self::from_rows(inputs, outputs, |o, row| {
            row.copy_from_slice(&w_t[o * inputs..(o + 1) * inputs]);
        })
    }

    /// The matrix whose transpose has rows `fill(o, row)` writes (row `o` of `[outputs,
    /// inputs]`: output `o`'s weight for every input), rounded to `E` a row at a time.
    pub fn from_rows(
        inputs: usize,
        outputs: usize,
        mut fill: impl FnMut(usize, &mut [f32]),
    ) -> Self {
        let count = outputs.div_ceil(PANEL);
        let mut panels = vec![E::ZERO; count * inputs * PANEL];
        let mut row = vec![0f32; inputs];
        let mut rounded = vec![E::ZERO; inputs];
        for o in 0..outputs {
            fill(o, &mut row);
            E::from_f32_slice(&row, &mut rounded);
            let panel = &mut panels[(o / PANEL) * inputs * PANEL..];
            for (k, &value) in rounded.iter().enumerate() {
                panel[k * PANEL + o % PANEL] = value;
            }
        }
        PanelMatrix {
            panels,
            inputs,
            outputs: count * PANEL,
        }
    }

    /// Whether this CPU runs [`PanelMatrix::matmul_add`] on vector kernels (AVX2, FMA and
    /// F16C); elsewhere it runs a scalar loop that only tests should use.
    pub fn vectorised() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Columns of the product: `outputs` rounded up to a multiple of 16 (the padding
    /// columns' results are 0 plus what `out` held).
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// `out += x·W`: `x` row-major `[rows, inputs]`, `out` row-major
    /// `[rows, self.outputs()]`.
    ///
    /// # Panics
    /// When a slice is shorter than its shape says.
    pub fn matmul_add(&self, out: &mut [f32], x: &[f32], rows: usize, parallelism: Parallelism) {
        let (k, n) = (self.inputs, self.outputs);
        let (out, x) = (&mut out[..rows * n], &x[..rows * k]);
        if rows == 0 || n == 0 {
            return;
        }
        if !Self::vectorised() {
            self.scalar_matmul_add(out, x);
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            let target = SharedOut(out.as_mut_ptr());
            let chunk = (CHUNK_BYTES / (4 * k.max(1)) / ROW_BLOCK).max(1) * ROW_BLOCK;
            split_columns(parallelism, n, &|columns| {
                for chunk_start in (0..rows).step_by(chunk) {
                    let chunk_end = rows.min(chunk_start + chunk);
                    // Whole panels: the split hands out multiples of the panel width.
                    for p in columns.start / PANEL..columns.end / PANEL {
                        let panel = &self.panels[p * k * PANEL..(p + 1) * k * PANEL];
                        for first in (chunk_start..chunk_end).step_by(ROW_BLOCK) {
                            let block = ROW_BLOCK.min(chunk_end - first);
                            // SAFETY: the CPU has AVX2, FMA and F16C (`vectorised`). The
                            // kernel reads `panel` (k × 16 values), rows first..first+block
                            // of `x` (k values each, inside the slice cut above) and reads and
                            // writes columns p·16..p·16+16 of the same rows of `out` (n
                            // values a row, n = 16 × panels, inside the slice cut above).
                            // Members of a split get disjoint panels, and `out` stays
                            // borrowed mutably meanwhile.
                            #[allow(unsafe_code)]
                            unsafe {
                                kernel::for_rows(block)(
                                    panel.as_ptr(),
                                    k,
                                    x.as_ptr().add(first * k),
                                    target.get().add(first * n + p * PANEL),
                                    n,
                                );
                            }
                        }
                    }
                }
            });
        }
    }

    /// [`PanelMatrix::matmul_add`] without vector kernels, on slices cut to shape.
    fn scalar_matmul_add(&self, out: &mut [f32], x: &[f32]) {
        let (k, n) = (self.inputs, self.outputs);
        for (o, xr) in out.chunks_exact_mut(n).zip(x.chunks_exact(k)) {
            for (c, value) in o.iter_mut().enumerate() {
                let panel = &self.panels[(c / PANEL) * k * PANEL..];
                for (i, &xi) in xr.iter().enumerate() {
                    *value += xi * panel[i * PANEL + c % PANEL].to_f32();
                }
            }
        }
    }
}

impl PanelMatrix<f32> {
    /// Whether f32 products are fastest on panels on this CPU: our kernels present and no
    /// AVX-512 (where gemm's 16-lane kernels run; ours are 8 lanes wide).
    pub fn preferred_for_f32() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            Self::vectorised() && !is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

/// The AVX2 + FMA + F16C kernel of [`PanelMatrix`].
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod kernel {
    use std::arch::x86_64::{
        __m256, _mm256_add_ps, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_loadu_ps,
        _mm256_setzero_ps, _mm256_storeu_ps, _mm_prefetch, _MM_HINT_T0,
    };

    use super::{PanelValue, PANEL, ROW_BLOCK};

    /// How far ahead the kernel prefetches its panel: 4 KB (tried 1 to 16 KB of half-precision
    /// panels with `examples/bench_encoder.rs`; 4–8 KB best, 2 tokens 1.37 → 0.93 ms on one
    /// thread).
    const AHEAD_BYTES: usize = 4096;

    /// A kernel for blocks of some number of rows: `(panel, inputs, x, out, out_stride)` adds
    /// those rows of `x` (row stride `inputs`) times one panel to 16 columns of the same rows
    /// of `out` (row stride `out_stride`).
    ///
    /// # Safety (of a call)
    /// AVX2, FMA and F16C are present; `panel` holds `inputs × 16` values, `x` `rows × inputs`
    /// and `out` 16 values at each of `rows` rows `out_stride` apart, `rows` being the block
    /// size [`for_rows`] chose the kernel for.
    pub(super) type Kernel<E> = unsafe fn(*const E, usize, *const f32, *mut f32, usize);

    /// The kernel for blocks of `rows` (1..=6) rows.
    pub(super) fn for_rows<E: PanelValue>(rows: usize) -> Kernel<E> {
        match rows {
            1 => rows_of::<E, 1, 4>,
            2 => rows_of::<E, 2, 2>,
            3 => rows_of::<E, 3, 2>,
            4 => rows_of::<E, 4, 1>,
            5 => rows_of::<E, 5, 1>,
            _ => rows_of::<E, ROW_BLOCK, 1>,
        }
    }

    /// The kernel for `R` rows, `U` steps along the inputs at a time, each with its own
    /// accumulators: at least 8 independent sums keep both FMA units busy despite each
    /// FMA's latency (one row alone would otherwise wait on its previous sum every step).
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn rows_of<E: PanelValue, const R: usize, const U: usize>(
        panel: *const E,
        inputs: usize,
        x: *const f32,
        out: *mut f32,
        out_stride: usize,
    ) {
        // SAFETY: every offset below stays inside the extents of [`Kernel`]'s contract.
        unsafe {
            let zero = _mm256_setzero_ps();
            let mut acc: [[[__m256; 2]; U]; R] = [[[zero; 2]; U]; R];
            for (r, a) in acc.iter_mut().enumerate() {
                a[0][0] = _mm256_loadu_ps(out.add(r * out_stride));
                a[0][1] = _mm256_loadu_ps(out.add(r * out_stride + 8));
            }
            let ahead = AHEAD_BYTES / (PANEL * std::mem::size_of::<E>());
            let whole = inputs - inputs % U;
            let mut k = 0;
            while k < whole {
                _mm_prefetch::<_MM_HINT_T0>(panel.wrapping_add((k + ahead) * PANEL).cast::<i8>());
                for u in 0..U {
                    let w = panel.add((k + u) * PANEL);
                    let (low, high) = (E::load8(w), E::load8(w.add(8)));
                    for (r, a) in acc.iter_mut().enumerate() {
                        let xv = _mm256_broadcast_ss(&*x.add(r * inputs + k + u));
                        a[u][0] = _mm256_fmadd_ps(xv, low, a[u][0]);
                        a[u][1] = _mm256_fmadd_ps(xv, high, a[u][1]);
                    }
                }
                k += U;
            }
            for k in whole..inputs {
                let w = panel.add(k * PANEL);
                let (low, high) = (E::load8(w), E::load8(w.add(8)));
                for (r, a) in acc.iter_mut().enumerate() {
                    let xv = _mm256_broadcast_ss(&*x.add(r * inputs + k));
                    a[0][0] = _mm256_fmadd_ps(xv, low, a[0][0]);
                    a[0][1] = _mm256_fmadd_ps(xv, high, a[0][1]);
                }
            }
            for (r, a) in acc.iter().enumerate() {
                let (mut low, mut high) = (a[0][0], a[0][1]);
                for partial in &a[1..] {
                    low = _mm256_add_ps(low, partial[0]);
                    high = _mm256_add_ps(high, partial[1]);
                }
                _mm256_storeu_ps(out.add(r * out_stride), low);
                _mm256_storeu_ps(out.add(r * out_stride + 8), high);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::{matmul_add, Team};

    /// Every row-block size (1–6 and beyond), chunks of rows (1,600 inputs: 12 rows a
    /// chunk); one thread, a team of two and the scalar loop; output counts that are and are
    /// not a multiple of the panel width: the product equals the f32 product with the weights
    /// rounded as `E` rounds them.
    fn products_equal_the_product_with_rounded_weights<E: PanelValue>(round: fn(f32) -> f32) {
        let team = Team::new(2, "test-panels").expect("threads");
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for (inputs, outputs) in [(40, 32), (33, 48), (20, 10), (1600, 16)] {
            let w: Vec<f32> = (0..inputs * outputs).map(|_| next()).collect();
            let rounded: Vec<f32> = w.iter().map(|&v| round(v)).collect();
            let w_t: Vec<f32> = (0..outputs * inputs)
                .map(|i| w[(i % inputs) * outputs + i / inputs])
                .collect();
            let matrix = PanelMatrix::<E>::from_transposed(&w_t, inputs, outputs);
            let padded = matrix.outputs();
            assert_eq!(padded, outputs.div_ceil(16) * 16);
            for rows in [1, 2, 3, 4, 5, 6, 7, 13] {
                let x: Vec<f32> = (0..rows * inputs).map(|_| next()).collect();
                let start: Vec<f32> = (0..rows * padded).map(|_| next()).collect();
                // The padding columns add nothing to what `out` held.
                let mut want = start.clone();
                for (row, (out, x)) in want
                    .chunks_exact_mut(padded)
                    .zip(x.chunks_exact(inputs))
                    .enumerate()
                {
                    let mut product = vec![0.0; outputs];
                    matmul_add(
                        &mut product,
                        x,
                        &rounded,
                        1,
                        inputs,
                        outputs,
                        Parallelism::Sequential,
                    );
                    for (o, p) in out.iter_mut().zip(product) {
                        *o += p;
                    }
                    assert_eq!(
                        out[outputs..],
                        start[row * padded + outputs..(row + 1) * padded]
                    );
                }
                let mut scalar = start.clone();
                matrix.scalar_matmul_add(&mut scalar, &x);
                let mut results = vec![("scalar", scalar)];
                for (name, parallelism) in [
                    ("one thread", Parallelism::Sequential),
                    ("team", Parallelism::Team(&team)),
                ] {
                    let mut got = start.clone();
                    matrix.matmul_add(&mut got, &x, rows, parallelism);
                    results.push((name, got));
                }
                for (name, got) in results {
                    for (g, e) in got.iter().zip(&want) {
                        assert!(
                            (g - e).abs() < 1e-5 * inputs as f32,
                            "{name} {rows}×{inputs}×{outputs}: {g} vs {e}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn half_products_equal_the_product_with_rounded_weights() {
        products_equal_the_product_with_rounded_weights::<half::f16>(|v| {
            half::f16::from_f32(v).to_f32()
        });
        // Rounding to half precision is close: relative error ≤ 2⁻¹¹ for normal values.
        let matrix = HalfMatrix::from_transposed(&[0.1, -3.0], 1, 2);
        let mut out = vec![0.0; matrix.outputs()];
        matrix.matmul_add(&mut out, &[1.0], 1, Parallelism::Sequential);
        assert!((out[0] - 0.1).abs() < 0.1 / 2048.0 && out[1] == -3.0);
    }

    #[test]
    fn f32_products_equal_the_f32_product() {
        products_equal_the_product_with_rounded_weights::<f32>(|v| v);
    }
}
