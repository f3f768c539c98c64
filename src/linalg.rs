//! Dense f32 matrix products through the `gemm` crate (candle's own kernels, with the `x86-v4`
//! feature on: AVX-512 where the CPU has it, AVX2 otherwise, chosen at run time). This module
//! holds the crate's only `unsafe` call, behind a safe signature whose bounds are checked.

/// `out += x·w`: `x` row-major `[rows, inputs]`, `w` row-major `[inputs, outputs]`, `out`
/// row-major `[rows, outputs]`; split over rayon's pool when `threads` > 1.
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
    threads: usize,
) {
    let (out, x, w) = (
        &mut out[..rows * outputs],
        &x[..rows * inputs],
        &w[..inputs * outputs],
    );
    if rows == 0 || outputs == 0 {
        return;
    }
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the three slices were just cut to exactly rows × outputs, rows × inputs and
    // inputs × outputs values; the strides below (column stride 1, row strides outputs,
    // inputs and outputs) address only inside them. `out` is borrowed mutably, so nothing
    // else reads or writes it meanwhile. gemm reads `out` (read_dst) and adds 1·x·w.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            rows,
            outputs,
            inputs,
            out.as_mut_ptr(),
            1,
            outputs as isize,
            true,
            x.as_ptr(),
            1,
            inputs as isize,
            w.as_ptr(),
            1,
            outputs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `matrix · vector` for a row-major `[rows, vector.len()]` matrix: every row's dot product
/// with the vector.
pub fn matvec(matrix: &[f32], vector: &[f32]) -> Vec<f32> {
    let dim = vector.len();
    let rows = matrix.len().checked_div(dim).unwrap_or(0);
    let mut out = vec![0f32; rows];
    // out[rows × 1] += matrix[rows × dim] · vector[dim × 1]
    matmul_add(&mut out, matrix, vector, rows, dim, 1, 1);
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
        matmul_add(&mut out, &x, &w, 2, 3, 2, 1);
        assert_eq!(
            out,
            vec![1.0 - 3.0 + 0.5, 4.0 - 6.0 - 1.0, 4.0 + 0.5, 13.0 - 1.0]
        );
        let m = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(matvec(&m, &[1.0, 0.0, -1.0]), vec![-2.0, -2.0]);
        assert_eq!(matvec(&[], &[1.0]), Vec::<f32>::new());
    }

    #[test]
    #[should_panic]
    fn a_short_slice_panics_before_the_product() {
        matmul_add(&mut [0.0; 3], &[1.0; 6], &[1.0; 6], 2, 3, 2, 1);
    }
}
