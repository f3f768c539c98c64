//! A BERT encoder for sentence embeddings written for the CPU, loading the same safetensors as
//! candle's `BertModel` and computing the same vectors (the stock model is its oracle in the
//! tests).
//!
//! Why not candle's model: for short texts its time goes to per-op overhead (three Q/K/V
//! products and bias adds, `.contiguous()` copies in attention, padding and masking, a fresh
//! allocation per op). Here:
//! - **no padding**: the texts of a batch are packed into one `[tokens, hidden]` matrix for
//!   every linear layer; attention runs per text;
//! - **fusions**: one Q/K/V product (hidden × 3·hidden); each bias is written into the output
//!   before the product accumulates onto it; bias-free GELU (erf) in one pass; residual and
//!   LayerNorm in place;
//! - **weights prepared once**: Q, K and V concatenated; for queries each weight rounded to
//!   half precision at load, in the panel layout of our AVX2 kernel ([`crate::linalg`]); for
//!   f32 products laid out in the same panels on first use (on AVX-512 CPUs kept as stored,
//!   `[out, in]`, for gemm's 16-lane kernels, which read it transposed through strides);
//! - **attention** read in place from the packed Q|K|V rows for texts up to 40 tokens (faer's
//!   products on copied heads for longer ones); element-wise loops (GELU, LayerNorm, softmax)
//!   compiled for AVX2 where the CPU has it;
//! - **half-precision weights for queries** ([`Precision::HalfWeights`]): a short query is
//!   bound by reading the weights, and halves are half the bytes;
//! - **threads**: a caller embedding many texts runs one batch per core single-threaded; one
//!   query shares each product's columns with a spinning team ([`Parallelism`]).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use safetensors::{Dtype, SafeTensors};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

pub use crate::linalg::Parallelism;
use crate::linalg::{HalfMatrix, PanelMatrix, PanelValue};

/// Which copy of the linear layers' weights a forward pass reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// The checkpoint's f32 weights (the catalogue's vectors).
    Full,
    /// Weights rounded to half precision, f32 arithmetic ([`HalfMatrix`]): half the bytes a
    /// short query reads. Falls back to `Full` where the CPU lacks AVX2, FMA or F16C.
    HalfWeights,
}

/// What is wrong with the weights, for the caller's error.
pub type LoadError = String;

/// The checkpoint's bytes (a map of the file, or the bytes themselves), kept for what is
/// decoded on first use.
pub type CheckpointBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// Values stored in a checkpoint: little-endian f32 at byte ranges of it, in order.
struct Stored {
    bytes: CheckpointBytes,
    ranges: Vec<Range<usize>>,
}

impl Stored {
    /// Every value, decoded.
    fn decode(&self) -> Vec<f32> {
        let bytes = (*self.bytes).as_ref();
        self.ranges
            .iter()
            .flat_map(|range| decode_f32(&bytes[range.clone()]))
            .collect()
    }

    /// Values `start..start + out.len()` into `out`.
    fn decode_into(&self, start: usize, out: &mut [f32]) {
        let bytes = (*self.bytes).as_ref();
        let mut skip = start * 4;
        let mut filled = 0;
        for range in &self.ranges {
            if filled == out.len() {
                break;
            }
            if skip >= range.len() {
                skip -= range.len();
                continue;
            }
            let take = ((range.len() - skip) / 4).min(out.len() - filled);
            let from = range.start + skip;
            for (o, v) in out[filled..filled + take]
                .iter_mut()
                .zip(decode_f32(&bytes[from..from + take * 4]))
            {
                *o = v;
            }
            filled += take;
            skip = 0;
        }
    }
}

/// Little-endian f32 values of `bytes`.
fn decode_f32(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A linear layer: `y = x·Wᵀ + b`.
struct Linear {
    /// `W` in f32, made on the first f32 product (a process that only embeds queries never
    /// needs it; decoding 42 MB at load was a tenth of a fresh search).
    weight: OnceLock<FullWeights>,
    stored: Stored,
    /// `W` in half precision, where the CPU has the kernels that read it.
    half: Option<HalfMatrix>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Linear {
    /// A layer from the checkpoint's row-major `[outputs, inputs]` weight.
    fn new(stored: Stored, bias: Vec<f32>, inputs: usize, outputs: usize) -> Linear {
        let half = if HalfMatrix::vectorised() {
            panels(&stored, inputs, outputs)
        } else {
            None
        };
        Linear {
            half,
            weight: OnceLock::new(),
            stored,
            bias,
            inputs,
            outputs,
        }
    }

    /// `out` (row-major `[rows, outputs]`) = `x` (row-major `[rows, inputs]`)·Wᵀ + b.
    fn forward(
        &self,
        x: &[f32],
        rows: usize,
        out: &mut [f32],
        parallelism: Parallelism,
        precision: Precision,
    ) {
        let (n, k) = (self.outputs, self.inputs);
        let out = &mut out[..rows * n];
        let x = &x[..rows * k];
        for row in out.chunks_exact_mut(n) {
            row.copy_from_slice(&self.bias);
        }
        match (&self.half, precision) {
            (Some(half), Precision::HalfWeights) => half.matmul_add(out, x, rows, parallelism),
            _ => match self.weight.get_or_init(|| self.full_weights()) {
                FullWeights::Panels(panels) => panels.matmul_add(out, x, rows, parallelism),
                FullWeights::Stored(weight) => {
                    crate::linalg::matmul_add_transposed(out, x, weight, rows, k, n, parallelism)
                }
            },
        }
    }

    /// The f32 weights in the layout this CPU multiplies fastest.
    fn full_weights(&self) -> FullWeights {
        let panels = if PanelMatrix::<f32>::preferred_for_f32() {
            panels(&self.stored, self.inputs, self.outputs)
        } else {
            None
        };
        match panels {
            Some(panels) => FullWeights::Panels(panels),
            None => FullWeights::Stored(self.stored.decode()),
        }
    }
}

/// A layer's stored `[outputs, inputs]` weight laid out in panels, decoded a row at a time;
/// `None` unless `outputs` is whole panels (the kernel writes whole panels of columns; every
/// layer of BERT is made of them, one that is not keeps to gemm).
fn panels<E: PanelValue>(stored: &Stored, inputs: usize, outputs: usize) -> Option<PanelMatrix<E>> {
    outputs.is_multiple_of(PanelMatrix::<E>::PANEL).then(|| {
        PanelMatrix::from_rows(inputs, outputs, |o, row| {
            stored.decode_into(o * inputs, row)
        })
    })
}

/// A linear layer's f32 weight, in the layout its products read.
enum FullWeights {
    /// Panels of our AVX2 kernel.
    Panels(PanelMatrix<f32>),
    /// As the checkpoint stores it, `[out, in]` row-major: gemm reads it transposed through
    /// strides (nothing transposed at load).
    Stored(Vec<f32>),
}

/// LayerNorm over the hidden dimension.
struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    /// `row = LN(row + residual)` in place (`residual` may be empty: `LN(row)`).
    #[inline(always)]
    fn add_normalise(&self, row: &mut [f32], residual: &[f32]) {
        if !residual.is_empty() {
            for (x, r) in row.iter_mut().zip(residual) {
                *x += r;
            }
        }
        let n = row.len() as f32;
        let mean = crate::linalg::lane_sum(row, |x| x) / n;
        let var = crate::linalg::lane_sum(row, |x| (x - mean) * (x - mean)) / n;
        let scale = 1.0 / (var + self.eps).sqrt();
        for ((x, g), b) in row.iter_mut().zip(&self.gamma).zip(&self.beta) {
            *x = (*x - mean) * scale * g + b;
        }
    }
}

/// One transformer layer.
struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The model's sizes, read from `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Hidden size (384).
    pub hidden: usize,
    /// Attention heads (12).
    pub heads: usize,
    /// Intermediate size (1536).
    pub intermediate: usize,
    /// Layers (6).
    pub layers: usize,
    /// Longest position the embeddings know (512).
    pub max_positions: usize,
}

/// The encoder's weights, laid out for [`FusedBert::embed`].
pub struct FusedBert {
    dims: Dims,
    /// The word embeddings, `[vocab, hidden]`, read row by row from the checkpoint (a query
    /// reads a few of 30,522 rows; decoding all 47 MB was a sixth of a fresh search).
    word: Stored,
    vocab: usize,
    position: Vec<f32>,
    /// Token type 0's embedding (sentence-transformers embeds one segment).
    token_type: Vec<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
}

/// Scratch buffers of one forward pass.
struct Scratch {
    hidden: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    projected: Vec<f32>,
    intermediate: Vec<f32>,
    scores: Vec<f32>,
    /// One head's Q, K and V of one sequence, contiguous.
    heads: Vec<f32>,
    /// One head's attention output of one sequence.
    head_out: Vec<f32>,
}

impl FusedBert {
    /// Takes the weights of a BERT checkpoint in safetensors format (names as in
    /// `model.safetensors`, with or without a `bert.` prefix) with LayerNorm epsilon `eps`.
    pub fn from_checkpoint(
        bytes: CheckpointBytes,
        dims: Dims,
        eps: f64,
    ) -> Result<FusedBert, LoadError> {
        // Straight from the file's bytes into our buffers (going through candle tensors first
        // cost two more copies of the 90 MB); large weights stay in the checkpoint until used.
        let all = (*bytes).as_ref();
        let tensors = SafeTensors::deserialize(all).map_err(|e| e.to_string())?;
        let view = |name: &str| {
            tensors
                .tensor(name)
                .or_else(|_| tensors.tensor(&format!("bert.{name}")))
                .map_err(|_| format!("no tensor {name}"))
        };
        // The byte range of an f32 tensor of `len` values.
        let range = |name: &str, len: usize| -> Result<Range<usize>, LoadError> {
            let tensor = view(name)?;
            if tensor.dtype() != Dtype::F32 {
                return Err(format!("{name}: {:?}, expected F32", tensor.dtype()));
            }
            let data = tensor.data();
            if data.len() != len * 4 {
                return Err(format!("{name}: {} values, expected {len}", data.len() / 4));
            }
            let start = data.as_ptr() as usize - all.as_ptr() as usize;
            Ok(start..start + data.len())
        };
        let stored = |ranges: Vec<Range<usize>>| Stored {
            bytes: bytes.clone(),
            ranges,
        };
        let get = |name: &str, len: usize| -> Result<Vec<f32>, LoadError> {
            Ok(decode_f32(&all[range(name, len)?]).collect())
        };
        let (h, i) = (dims.hidden, dims.intermediate);
        if dims.heads == 0 || !h.is_multiple_of(dims.heads) {
            return Err(format!(
                "{} heads do not divide hidden size {h}",
                dims.heads
            ));
        }
        let eps = eps as f32;
        let norm = |prefix: &str| -> Result<LayerNorm, LoadError> {
            Ok(LayerNorm {
                gamma: get(&format!("{prefix}.weight"), h)?,
                beta: get(&format!("{prefix}.bias"), h)?,
                eps,
            })
        };
        let parts = |prefix: &str, inputs: usize, outputs: usize| {
            Ok::<_, LoadError>((
                range(&format!("{prefix}.weight"), inputs * outputs)?,
                get(&format!("{prefix}.bias"), outputs)?,
            ))
        };
        let linear = |prefix: &str, inputs: usize, outputs: usize| -> Result<Linear, LoadError> {
            let (weight, bias) = parts(prefix, inputs, outputs)?;
            Ok(Linear::new(stored(vec![weight]), bias, inputs, outputs))
        };
        let vocab = view("embeddings.word_embeddings.weight")?
            .shape()
            .first()
            .copied()
            .unwrap_or(0);
        let mut layers = Vec::with_capacity(dims.layers);
        for l in 0..dims.layers {
            let p = format!("encoder.layer.{l}");
            let (q, k, v) = (
                parts(&format!("{p}.attention.self.query"), h, h)?,
                parts(&format!("{p}.attention.self.key"), h, h)?,
                parts(&format!("{p}.attention.self.value"), h, h)?,
            );
            // One [3h, h] product instead of three: rows of Q, then K, then V.
            let qkv = Linear::new(
                stored(vec![q.0, k.0, v.0]),
                [q.1, k.1, v.1].concat(),
                h,
                3 * h,
            );
            layers.push(Layer {
                qkv,
                attention_out: linear(&format!("{p}.attention.output.dense"), h, h)?,
                attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                intermediate: linear(&format!("{p}.intermediate.dense"), h, i)?,
                output: linear(&format!("{p}.output.dense"), i, h)?,
                output_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        let token_types = get("embeddings.token_type_embeddings.weight", 2 * h)
            .or_else(|_| get("embeddings.token_type_embeddings.weight", h))?;
        Ok(FusedBert {
            dims,
            word: stored(vec![range("embeddings.word_embeddings.weight", vocab * h)?]),
            vocab,
            position: get(
                "embeddings.position_embeddings.weight",
                dims.max_positions * h,
            )?,
            token_type: token_types[..h].to_vec(),
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
        })
    }

    /// The vocabulary size the word embeddings cover.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Mean-pooled, L2-normalised embeddings of token sequences (each at most
    /// `max_positions` long, ids below [`FusedBert::vocab`]; the caller's tokenizer
    /// guarantees both), in input order.
    pub fn embed(
        &self,
        sequences: &[&[u32]],
        parallelism: Parallelism,
        precision: Precision,
    ) -> Vec<Vec<f32>> {
        let d = self.dims.hidden;
        let total: usize = sequences.iter().map(|s| s.len()).sum();
        let longest = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut scratch = Scratch {
            hidden: vec![0.0; total * d],
            qkv: vec![0.0; total * 3 * d],
            context: vec![0.0; total * d],
            projected: vec![0.0; total * d],
            intermediate: vec![0.0; total * self.dims.intermediate],
            scores: vec![0.0; longest * longest],
            heads: vec![0.0; 3 * longest * (d / self.dims.heads)],
            head_out: vec![0.0; longest * (d / self.dims.heads)],
        };
        // Embeddings: word + position + token type 0, then LayerNorm.
        let mut row = 0;
        for sequence in sequences {
            for (position, &id) in sequence.iter().enumerate() {
                let out = &mut scratch.hidden[row * d..(row + 1) * d];
                self.word.decode_into(id as usize * d, out);
                let pos = &self.position[position * d..(position + 1) * d];
                for ((o, p), t) in out.iter_mut().zip(pos).zip(&self.token_type) {
                    *o += p + t;
                }
                self.embedding_norm.add_normalise(out, &[]);
                row += 1;
            }
        }
        // The closure is inlined into the wide-target function, and `layer` into it.
        crate::linalg::with_wide_vectors(
            #[inline(always)]
            || {
                for layer in &self.layers {
                    self.layer(
                        layer,
                        sequences,
                        total,
                        &mut scratch,
                        parallelism,
                        precision,
                    );
                }
            },
        );
        // Mean pooling over each sequence's tokens, then L2 normalisation.
        let mut start = 0;
        sequences
            .iter()
            .map(|sequence| {
                let rows = &scratch.hidden[start * d..(start + sequence.len()) * d];
                start += sequence.len();
                let mut mean = vec![0f32; d];
                for token in rows.chunks_exact(d) {
                    for (m, x) in mean.iter_mut().zip(token) {
                        *m += x;
                    }
                }
                let count = sequence.len().max(1) as f32;
                let norm = mean
                    .iter()
                    .map(|m| (m / count) * (m / count))
                    .sum::<f32>()
                    .sqrt()
                    .max(1e-12);
                mean.iter().map(|m| m / count / norm).collect()
            })
            .collect()
    }

    /// One transformer layer over the packed hidden states in `scratch.hidden` (inlined into
    /// [`crate::linalg::with_wide_vectors`], so its element-wise loops get the wide target).
    #[inline(always)]
    fn layer(
        &self,
        layer: &Layer,
        sequences: &[&[u32]],
        total: usize,
        scratch: &mut Scratch,
        parallelism: Parallelism,
        precision: Precision,
    ) {
        let d = self.dims.hidden;
        let heads = self.dims.heads;
        let head = d / heads;
        let scale = 1.0 / (head as f32).sqrt();
        layer.qkv.forward(
            &scratch.hidden,
            total,
            &mut scratch.qkv,
            parallelism,
            precision,
        );
        // Attention per sequence and head: softmax(Q·Kᵀ/√head)·V, written into the head's
        // columns of `context`.
        let mut offset = 0;
        for sequence in sequences {
            let len = sequence.len();
            if len == 0 {
                continue;
            }
            let qkv = &scratch.qkv[offset * 3 * d..(offset + len) * 3 * d];
            let context = &mut scratch.context[offset * d..(offset + len) * d];
            if len <= DIRECT_ATTENTION_MAX {
                direct_attention(qkv, context, &mut scratch.scores, (d, heads), scale);
                offset += len;
                continue;
            }
            // Long sequences: faer's products on each head's Q, K and V copied out contiguous
            // (faer 0.24 wrote past the end of a row-strided destination view in a test of
            // ours, so every product here runs on whole, contiguous buffers).
            let scores = &mut scratch.scores[..len * len];
            let (q, rest) = scratch.heads[..3 * len * head].split_at_mut(len * head);
            let (k, v) = rest.split_at_mut(len * head);
            let out = &mut scratch.head_out[..len * head];
            for h in 0..heads {
                for (t, row) in qkv.chunks_exact(3 * d).enumerate() {
                    let at = h * head;
                    q[t * head..(t + 1) * head].copy_from_slice(&row[at..at + head]);
                    k[t * head..(t + 1) * head].copy_from_slice(&row[d + at..d + at + head]);
                    v[t * head..(t + 1) * head]
                        .copy_from_slice(&row[2 * d + at..2 * d + at + head]);
                }
                let dst = MatMut::from_row_major_slice_mut(&mut scores[..], len, len);
                let (qm, km) = (
                    MatRef::from_row_major_slice(&q[..], len, head),
                    MatRef::from_row_major_slice(&k[..], len, head),
                );
                matmul(dst, Accum::Replace, qm, km.transpose(), scale, Par::Seq);
                for row in scores.chunks_exact_mut(len) {
                    softmax(row);
                }
                let dst = MatMut::from_row_major_slice_mut(&mut out[..], len, head);
                let probabilities = MatRef::from_row_major_slice(&scores[..], len, len);
                let vm = MatRef::from_row_major_slice(&v[..], len, head);
                matmul(dst, Accum::Replace, probabilities, vm, 1.0, Par::Seq);
                for (t, row) in out.chunks_exact(head).enumerate() {
                    let at = t * d + h * head;
                    context[at..at + head].copy_from_slice(row);
                }
            }
            offset += len;
        }
        layer.attention_out.forward(
            &scratch.context,
            total,
            &mut scratch.projected,
            parallelism,
            precision,
        );
        for (row, residual) in scratch
            .hidden
            .chunks_exact_mut(d)
            .zip(scratch.projected.chunks_exact(d))
        {
            layer.attention_norm.add_normalise(row, residual);
        }
        layer.intermediate.forward(
            &scratch.hidden,
            total,
            &mut scratch.intermediate,
            parallelism,
            precision,
        );
        for x in &mut scratch.intermediate[..total * self.dims.intermediate] {
            *x = gelu(*x);
        }
        layer.output.forward(
            &scratch.intermediate,
            total,
            &mut scratch.projected,
            parallelism,
            precision,
        );
        for (row, residual) in scratch
            .hidden
            .chunks_exact_mut(d)
            .zip(scratch.projected.chunks_exact(d))
        {
            layer.output_norm.add_normalise(row, residual);
        }
    }
}

/// Sequences up to this many tokens take [`direct_attention`]; longer ones faer's products.
/// Measured with `examples/bench_encoder.rs` (one text, f32, one thread): direct 5.6 / 11.4 /
/// 28.3 ms at 16 / 32 / 64 tokens, faer 6.7 / 13.6 / 21.4 ms (direct loops save the copies
/// and per-product overhead of short texts; faer's kernels win on long ones).
const DIRECT_ATTENTION_MAX: usize = 40;

/// Attention of one sequence read in place from its packed Q|K|V rows (`qkv`, `[len, 3·d]`):
/// each head's softmax(Q·Kᵀ·scale)·V written into its columns of `context` (`[len, d]`).
/// `scores` holds at least `len` values.
#[inline(always)]
fn direct_attention(
    qkv: &[f32],
    context: &mut [f32],
    scores: &mut [f32],
    (d, heads): (usize, usize),
    scale: f32,
) {
    let head = d / heads;
    let len = context.len() / d;
    let scores = &mut scores[..len];
    for h in 0..heads {
        let (q_at, k_at, v_at) = (h * head, d + h * head, 2 * d + h * head);
        for (i, out) in context.chunks_exact_mut(d).enumerate() {
            let q = &qkv[i * 3 * d + q_at..][..head];
            for (j, score) in scores.iter_mut().enumerate() {
                *score = crate::linalg::dot(q, &qkv[j * 3 * d + k_at..][..head]) * scale;
            }
            softmax(scores);
            let out = &mut out[h * head..(h + 1) * head];
            out.fill(0.0);
            for (j, &p) in scores.iter().enumerate() {
                for (o, v) in out.iter_mut().zip(&qkv[j * 3 * d + v_at..][..head]) {
                    *o += p * v;
                }
            }
        }
    }
}

/// `row = softmax(row)` in place.
#[inline(always)]
fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for x in row.iter_mut() {
        *x = exp(*x - max);
    }
    let inverse = 1.0 / crate::linalg::lane_sum(row, |x| x);
    for x in row.iter_mut() {
        *x *= inverse;
    }
}

/// GELU with the error function, as BERT's `gelu` (not the tanh approximation), through
/// [`erf`]: branch-free, so the loop over a layer's activations vectorises (libm's `erff`
/// and `expf` took a quarter of a long text's time).
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The error function by Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5·10⁻⁷ in exact
/// arithmetic, under 10⁻⁶ in f32: below what the GELU it feeds can show).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let magnitude = 1.0 - poly * exp(-a * a);
    magnitude.copysign(x)
}

/// e^x (Cephes' `expf` polynomial after a range reduction by ln 2; relative error ~2·10⁻⁷),
/// branch-free so that loops over it vectorise; inputs below −87 give 0's neighbourhood.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding and removing 1.5·2²³ (no `floor`: without SSE4.1 in the
    // baseline target it is a libm call, 13 % of a long text's time).
    const ROUND: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 0.166_666_65;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2ⁿ from n's bits: `shifted`'s low bits hold n (|n| ≤ 127 ≪ 2²²) as an offset from
    // ROUND's, so integer arithmetic on them vectorises (`n as i32` is a saturating cast, one
    // lane at a time).
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    e * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_agree_with_libm() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            let (ours, libm_exp) = (exp(x), libm::expf(x));
            assert!(
                (ours - libm_exp).abs() <= 4e-7 * libm_exp,
                "exp({x}): {ours} vs {libm_exp}"
            );
            let x = x / 4.0;
            assert!((erf(x) - libm::erff(x)).abs() < 1e-6, "erf({x})");
        }
        assert!(erf(0.0).abs() < 1e-6 && erf(6.0) == 1.0 && erf(-6.0) == -1.0);
        assert!(exp(-200.0) < 1e-37 && exp(-200.0) >= 0.0);
    }

    #[test]
    fn gelu_matches_known_values() {
        // GELU(x) = x·Φ(x): Φ(1) = 0.841345, Φ(-1) = 0.158655, Φ(2) = 0.977250.
        assert!((gelu(1.0) - 0.841_345).abs() < 1e-5);
        assert!((gelu(-1.0) + 0.158_655).abs() < 1e-5);
        assert!((gelu(2.0) - 1.9545).abs() < 1e-5);
        assert_eq!(gelu(0.0), 0.0);
    }

    #[test]
    fn layer_norm_adds_the_residual_then_normalises() {
        let norm = LayerNorm {
            gamma: vec![2.0, 2.0],
            beta: vec![1.0, 1.0],
            eps: 0.0,
        };
        let mut row = vec![1.0, 2.0];
        norm.add_normalise(&mut row, &[1.0, 4.0]);
        // (2, 6): mean 4, std 2 → (−1, 1) → ×2 + 1.
        assert_eq!(row, vec![-1.0, 3.0]);
    }

    /// `values` as a checkpoint's bytes, one range.
    fn stored_of(values: &[f32]) -> Stored {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let whole = 0..bytes.len();
        Stored {
            bytes: Arc::new(bytes),
            ranges: vec![whole],
        }
    }

    #[test]
    fn stored_values_follow_their_ranges_in_order() {
        // Two ranges out of file order, as Q, K and V are concatenated from three tensors.
        let bytes: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let stored = Stored {
            bytes: Arc::new(bytes),
            ranges: vec![8..20, 0..8],
        };
        assert_eq!(stored.decode(), vec![3.0, 4.0, 5.0, 1.0, 2.0]);
        let mut out = [0.0; 3];
        stored.decode_into(2, &mut out);
        assert_eq!(out, [5.0, 1.0, 2.0]);
        let mut out = [0.0; 1];
        stored.decode_into(4, &mut out);
        assert_eq!(out, [2.0]);
    }

    #[test]
    fn linear_folds_the_bias_into_the_product() {
        let layer = Linear::new(
            stored_of(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            vec![0.5, -1.0],
            3,
            2,
        );
        let x = [1.0, 0.0, -1.0, 2.0, 1.0, 0.0]; // two rows
        let mut out = vec![0.0; 4];
        layer.forward(&x, 2, &mut out, Parallelism::Sequential, Precision::Full);
        assert_eq!(
            out,
            vec![1.0 - 3.0 + 0.5, 4.0 - 6.0 - 1.0, 4.0 + 0.5, 13.0 - 1.0]
        );
        // Two outputs are not a whole panel of the half kernel: this layer keeps to f32.
        assert!(layer.half.is_none());
    }

    #[test]
    fn half_weights_give_the_f32_product_when_the_weights_are_exact_halves() {
        // 32 outputs × 3 inputs of small integers and halves: exact in half precision.
        let (inputs, outputs) = (3, 32);
        let weight: Vec<f32> = (0..outputs * inputs)
            .map(|i| (i % 7) as f32 - 3.0 + 0.5 * (i % 2) as f32)
            .collect();
        let bias: Vec<f32> = (0..outputs).map(|o| o as f32 / 4.0).collect();
        let layer = Linear::new(stored_of(&weight), bias.clone(), inputs, outputs);
        let x = [1.0, 0.0, -1.0, 2.0, 1.0, 0.5];
        let mut want = vec![0.0; 2 * outputs];
        for (row, out) in want.chunks_exact_mut(outputs).enumerate() {
            for (o, value) in out.iter_mut().enumerate() {
                *value = bias[o]
                    + (0..inputs)
                        .map(|i| x[row * inputs + i] * weight[o * inputs + i])
                        .sum::<f32>();
            }
        }
        for precision in [Precision::Full, Precision::HalfWeights] {
            let mut out = vec![0.0; 2 * outputs];
            layer.forward(&x, 2, &mut out, Parallelism::Sequential, precision);
            assert_eq!(out, want, "{precision:?}");
        }
        assert_eq!(layer.half.is_some(), HalfMatrix::vectorised());
    }
}
