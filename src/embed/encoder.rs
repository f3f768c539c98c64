//! all-MiniLM-L6-v2: BERT forward ([`FusedBert`]), mean pooling, L2 normalisation — the
//! vectors sentence-transformers computes. candle's stock `BertModel` stays as the oracle
//! ([`stock_embeddings`]) the tests and the benchmark compare with.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use rayon::prelude::*;

use std::sync::Arc;

use super::fused::{Dims, FusedBert, Parallelism, Precision};
use crate::linalg::Team;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::model_files::{read_json, ModelFiles};
use crate::error::{Error, Result};

/// Loads the model at `source` and embeds one text (the query rules apply: not empty, at most
/// [`super::MAX_QUERY_CHARS`] characters).
pub fn embed_text(source: &super::ModelSource, text: &str) -> Result<Vec<f32>> {
    let encoder = Encoder::load(&super::model_files(source)?)?;
    encoder.embed(super::check_query(text)?)
}

/// Largest number of padded tokens in one forward batch: long documents go in small batches,
/// short ones in large batches, so that each batch costs about the same. Small enough that a
/// batch's activations stay in the caches between the products of a layer: measured on the
/// catalogue with the panel kernel (AVX2 machine, alternating runs), 2,048 tokens 323–369
/// docs/s, 1,024 377–393, 512 371–418, 256 386–449, 128 375–376.
const TOKENS_PER_BATCH: usize = 256;
/// Upper bound on texts per batch.
const MAX_BATCH: usize = 128;

/// A loaded sentence encoder.
pub struct Encoder {
    model: FusedBert,
    tokenizer: Tokenizer,
    files: ModelFiles,
    dim: usize,
    /// Runs whole batches in parallel, one per core (see [`Encoder::embed_all`]).
    pool: rayon::ThreadPool,
    /// Shares one query's products among the cores (see [`Encoder::embed`]).
    team: Team,
}

/// One tokenised text.
struct Tokens {
    ids: Vec<u32>,
    /// Whether the text was longer than max_seq_length and cut.
    truncated: bool,
}

/// The embeddings of many texts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embeddings {
    /// Row-major `texts × dim` unit vectors, in input order.
    pub vectors: Vec<f32>,
    /// How many texts were longer than max_seq_length tokens and cut there.
    pub truncated: usize,
}

impl Encoder {
    /// Loads the model and tokenizer of `files` on the CPU.
    pub fn load(files: &ModelFiles) -> Result<Encoder> {
        let config: Config = read_json(&files.config)?;
        let dim = config.hidden_size;
        let tokenizer = load_tokenizer(files)?;
        let bytes = crate::fsutil::map_read_only(&files.weights)?;
        let invalid = |message: String| Error::ModelInvalid {
            path: files.weights.clone(),
            message,
        };
        let dims = Dims {
            hidden: config.hidden_size,
            heads: config.num_attention_heads,
            intermediate: config.intermediate_size,
            layers: config.num_hidden_layers,
            max_positions: config.max_position_embeddings,
        };
        let model = FusedBert::from_checkpoint(Arc::new(bytes), dims, config.layer_norm_eps)
            .map_err(invalid)?;
        if files.max_seq_length > dims.max_positions
            || tokenizer.get_vocab_size(true) > model.vocab()
        {
            return Err(Error::ModelInvalid {
                path: files.weights.clone(),
                message: format!(
                    "max_seq_length {} or the tokenizer's {} tokens exceed the model's {} \
                     positions or {} embeddings",
                    files.max_seq_length,
                    tokenizer.get_vocab_size(true),
                    dims.max_positions,
                    model.vocab()
                ),
            });
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("reelrank-embed-{i}"))
            .build()
            .map_err(|e| Error::ModelInvalid {
                path: files.weights.clone(),
                message: format!("cannot start the embedding threads: {e}"),
            })?;
        let team = Team::new(threads, "reelrank-query").map_err(|e| Error::ModelInvalid {
            path: files.weights.clone(),
            message: format!("cannot start the query threads: {e}"),
        })?;
        Ok(Encoder {
            model,
            tokenizer,
            files: files.clone(),
            dim,
            pool,
            team,
        })
    }

    /// The embedding dimension (384 for MiniLM).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The forward pass itself (benchmarks time it without the tokenizer).
    pub fn model(&self) -> &FusedBert {
        &self.model
    }

    /// The files the encoder was loaded from.
    pub fn files(&self) -> &ModelFiles {
        &self.files
    }

    /// The number of tokens (special tokens included, after truncation) of a text.
    pub fn token_count(&self, text: &str) -> Result<usize> {
        Ok(self.tokenize(&[text])?[0].ids.len())
    }

    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Tokens>> {
        tokenize(&self.tokenizer, texts)
    }

    /// How many of `texts` are longer than max_seq_length tokens (what [`Embeddings`] counts,
    /// for texts whose vectors were not computed now).
    pub fn count_truncated(&self, texts: &[&str]) -> Result<usize> {
        let tokens = self.pool.install(|| self.tokenize(texts))?;
        Ok(tokens.iter().filter(|t| t.truncated).count())
    }

    /// The unit-length embedding of one text, a query: half-precision weights (where the CPU
    /// has the kernels) and each product's columns shared among the cores. Measured with
    /// `examples/bench_encoder.rs` (2 cores, AVX2, 2026-12-01), one thread → shared, f32 →
    /// half weights: 7 tokens 7.9 ms (f32, one thread) → 4.4 (f32 shared) → 1.26 (half
    /// weights shared); 1 token 3.9 → 0.46; 256 tokens 102 → 82 (as fast as f32 shared).
    pub fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let tokens = self.tokenize(&[text])?;
        Ok(self
            .model
            .embed(
                &[tokens[0].ids.as_slice()],
                Parallelism::Team(&self.team),
                Precision::HalfWeights,
            )
            .remove(0))
    }

    /// Embeddings of many texts as one batch on the calling thread (in input order).
    pub fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let tokens = self.tokenize(texts)?;
        Ok(self.forward(&tokens.iter().collect::<Vec<_>>()))
    }

    /// Embeddings of many texts, one vector each (in input order): [`Encoder::embed_all`]
    /// without progress.
    pub fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let embedded = self.embed_all(texts, &|_| ())?;
        Ok(embedded
            .vectors
            .chunks_exact(self.dim)
            .map(<[f32]>::to_vec)
            .collect())
    }

    /// Embeddings of many texts. Texts are grouped by token length so that batches carry little
    /// padding; `progress` is called with the number of texts finished after each batch.
    pub fn embed_all(
        &self,
        texts: &[String],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Embeddings> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let tokens = self.pool.install(|| self.tokenize(&refs))?;
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].ids.len()));
        let batches = plan_batches(&order, |i| tokens[i].ids.len());
        let mut out = vec![0f32; texts.len() * self.dim];
        // One batch per core, each on one thread: no synchronisation inside a batch.
        let embedded: Vec<Vec<Vec<f32>>> = self.pool.install(|| {
            batches
                .par_iter()
                .map(|batch| {
                    let batch_tokens: Vec<&Tokens> = batch.iter().map(|&i| &tokens[i]).collect();
                    let vectors = self.forward(&batch_tokens);
                    progress(batch.len());
                    vectors
                })
                .collect()
        });
        for (batch, vectors) in batches.iter().zip(embedded) {
            for (&i, vector) in batch.iter().zip(vectors) {
                out[i * self.dim..(i + 1) * self.dim].copy_from_slice(&vector);
            }
        }
        Ok(Embeddings {
            vectors: out,
            truncated: tokens.iter().filter(|t| t.truncated).count(),
        })
    }

    /// The fused forward of a batch on the calling thread.
    fn forward(&self, batch: &[&Tokens]) -> Vec<Vec<f32>> {
        let ids: Vec<&[u32]> = batch.iter().map(|t| t.ids.as_slice()).collect();
        self.model
            .embed(&ids, Parallelism::Sequential, Precision::Full)
    }
}

/// The tensors of the model's safetensors file, from the same read-only map the encoder uses.
fn read_tensors(files: &ModelFiles) -> Result<std::collections::HashMap<String, Tensor>> {
    let weights = crate::fsutil::map_read_only(&files.weights)?;
    candle_core::safetensors::load_buffer(&weights, &Device::Cpu).map_err(|e| Error::ModelInvalid {
        path: files.weights.clone(),
        message: e.to_string(),
    })
}

/// candle's stock `BertModel` with the same tokenizer (one padded batch, masked mean pooling,
/// L2 normalisation): the oracle the fused encoder is tested and benchmarked against.
pub struct StockBert {
    model: BertModel,
    tokenizer: Tokenizer,
    files: ModelFiles,
}

impl StockBert {
    /// Loads the stock model and the tokenizer from `files`.
    pub fn load(files: &ModelFiles) -> Result<StockBert> {
        let tokenizer = load_tokenizer(files)?;
        let config: Config = read_json(&files.config)?;
        let vb = VarBuilder::from_tensors(read_tensors(files)?, DType::F32, &Device::Cpu);
        let model = BertModel::load(vb, &config).map_err(|e| Error::ModelInvalid {
            path: files.weights.clone(),
            message: e.to_string(),
        })?;
        Ok(StockBert {
            model,
            tokenizer,
            files: files.clone(),
        })
    }

    /// The embeddings of `texts` as one padded batch.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let batch = tokenize(&self.tokenizer, texts)?;
        let longest = batch.iter().map(|t| t.ids.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(batch.len() * longest);
        let mut mask = Vec::with_capacity(batch.len() * longest);
        for tokens in &batch {
            let pad = longest - tokens.ids.len();
            ids.extend_from_slice(&tokens.ids);
            ids.extend(std::iter::repeat_n(0u32, pad));
            mask.extend(std::iter::repeat_n(1u32, tokens.ids.len()));
            mask.extend(std::iter::repeat_n(0u32, pad));
        }
        let shape = (batch.len(), longest);
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = Tensor::from_vec(ids, shape, &Device::Cpu)?;
            let mask = Tensor::from_vec(mask, shape, &Device::Cpu)?;
            let type_ids = ids.zeros_like()?;
            let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
            let mean = summed.broadcast_div(&counts)?;
            let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            mean.broadcast_div(&norm)?.to_vec2::<f32>()
        };
        run().map_err(|e| Error::ModelInvalid {
            path: self.files.weights.clone(),
            message: e.to_string(),
        })
    }
}

/// The embeddings of `texts` by [`StockBert`], loaded for the call.
pub fn stock_embeddings(files: &ModelFiles, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    StockBert::load(files)?.embed(texts)
}

/// The tokenizer of `files`, truncating at max_seq_length. The shipped tokenizer.json pads and
/// truncates at 128; sentence-transformers truncates at max_seq_length (256) and pads each
/// batch to its longest text (the stock model pads itself; the fused encoder needs none).
fn load_tokenizer(files: &ModelFiles) -> Result<Tokenizer> {
    let mut tokenizer =
        Tokenizer::from_file(&files.tokenizer).map_err(|e| Error::ModelInvalid {
            path: files.tokenizer.clone(),
            message: e.to_string(),
        })?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length: files.max_seq_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    Ok(tokenizer)
}

/// `texts` tokenised, special tokens added.
fn tokenize(tokenizer: &Tokenizer, texts: &[&str]) -> Result<Vec<Tokens>> {
    let encodings = tokenizer
        .encode_batch(texts.to_vec(), true)
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    Ok(encodings
        .into_iter()
        .map(|e| Tokens {
            ids: e.get_ids().to_vec(),
            truncated: !e.get_overflowing().is_empty(),
        })
        .collect())
}

/// Splits texts, already sorted by decreasing length, into batches of at most
/// [`TOKENS_PER_BATCH`] padded tokens and [`MAX_BATCH`] texts.
fn plan_batches(order: &[usize], len: impl Fn(usize) -> usize) -> Vec<Vec<usize>> {
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut longest = 0;
    for &i in order {
        let l = len(i).max(1);
        let new_longest = longest.max(l);
        if !current.is_empty()
            && (new_longest * (current.len() + 1) > TOKENS_PER_BATCH || current.len() == MAX_BATCH)
        {
            batches.push(std::mem::take(&mut current));
            longest = 0;
        }
        longest = longest.max(l);
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_token_budget_and_cover_everything() {
        let b = TOKENS_PER_BATCH;
        let lengths = [b + 44, b, b / 2, b / 2, b / 8, b / 8, b / 8, 3];
        let order: Vec<usize> = (0..lengths.len()).collect();
        let batches = plan_batches(&order, |i| lengths[i]);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, order);
        for batch in &batches {
            let longest = batch.iter().map(|&i| lengths[i]).max().unwrap_or(0);
            assert!(batch.len() == 1 || longest * batch.len() <= TOKENS_PER_BATCH);
        }
        // Over-long texts alone; each batch as full as the budget allows.
        assert_eq!(
            batches,
            vec![vec![0], vec![1], vec![2, 3], vec![4, 5, 6, 7]]
        );
    }
}
