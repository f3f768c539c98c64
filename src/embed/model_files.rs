//! Finding the files of a sentence-transformers model: a local directory, else hf-hub's cache,
//! else a download (unless `HF_HUB_OFFLINE` is set).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The hub repository used when no local model directory is given.
pub const DEFAULT_MODEL_REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Files the encoder cannot work without.
const REQUIRED: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
/// sentence-transformers' own settings, read when present.
const SBERT_CONFIG: &str = "sentence_bert_config.json";
const POOLING_CONFIG: &str = "1_Pooling/config.json";

/// Where the model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A local directory in sentence-transformers layout.
    Dir(PathBuf),
    /// A hugging face hub repository, through the local cache (and a download when allowed).
    Hub(String),
}

impl ModelSource {
    /// `--model DIR` / `REELRANK_MODEL` when given, else the default hub repository.
    pub fn from_option(dir: Option<PathBuf>) -> ModelSource {
        dir.map_or_else(
            || ModelSource::Hub(DEFAULT_MODEL_REPO.to_string()),
            ModelSource::Dir,
        )
    }
}

/// The resolved files of a model, and the sentence-transformers settings read from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFiles {
    /// A name for the model: the hub repository, or the local directory.
    pub id: String,
    /// BERT configuration.
    pub config: PathBuf,
    /// tokenizer.json.
    pub tokenizer: PathBuf,
    /// model.safetensors.
    pub weights: PathBuf,
    /// Longest input in tokens (sentence_bert_config.json; 256 for MiniLM).
    pub max_seq_length: usize,
    /// The pooling, as sentence-transformers names it ("mean").
    pub pooling: String,
}

#[derive(Deserialize)]
struct SbertConfig {
    max_seq_length: usize,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
}

/// The sequence length sentence-transformers falls back to when the model does not say.
const DEFAULT_MAX_SEQ_LENGTH: usize = 256;

/// Whether `HF_HUB_OFFLINE` forbids network access.
pub fn hub_offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

/// Resolves the model files of `source`.
pub fn model_files(source: &ModelSource) -> Result<ModelFiles> {
    match source {
        ModelSource::Dir(dir) => from_dir(dir),
        ModelSource::Hub(repo) => from_hub(repo),
    }
}

fn from_dir(dir: &Path) -> Result<ModelFiles> {
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(Error::ModelNotFound {
            message: format!(
                "{} lacks {} (expected a sentence-transformers directory such as all-MiniLM-L6-v2; \
                 pass --model DIR or REELRANK_MODEL, or leave both unset to use the hugging face cache)",
                dir.display(),
                missing.join(", ")
            ),
        });
    }
    let optional = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
    finish(
        dir.display().to_string(),
        dir.join("config.json"),
        dir.join("tokenizer.json"),
        dir.join("model.safetensors"),
        optional(SBERT_CONFIG),
        optional(POOLING_CONFIG),
    )
}

fn from_hub(repo: &str) -> Result<ModelFiles> {
    let cache = hf_hub::Cache::from_env();
    let cached = cache.model(repo.to_string());
    let mut paths = Vec::new();
    let mut absent = Vec::new();
    for name in REQUIRED {
        match cached.get(name) {
            Some(path) => paths.push(path),
            None => absent.push(name),
        }
    }
    if !absent.is_empty() {
        if hub_offline() {
            return Err(Error::ModelNotFound {
                message: format!(
                    "{repo} is not in the hugging face cache ({}) and HF_HUB_OFFLINE is set; \
                     pass --model DIR (a local sentence-transformers directory) or allow the download",
                    cache.path().display()
                ),
            });
        }
        paths = download(repo)?;
    }
    let optional = |name: &str| {
        cached.get(name).or_else(|| {
            (!hub_offline())
                .then(|| hub_api().ok()?.model(repo.to_string()).get(name).ok())
                .flatten()
        })
    };
    let [config, tokenizer, weights]: [PathBuf; 3] =
        paths.try_into().map_err(|_| Error::ModelNotFound {
            message: format!("{repo}: incomplete download"),
        })?;
    finish(
        repo.to_string(),
        config,
        tokenizer,
        weights,
        optional(SBERT_CONFIG),
        optional(POOLING_CONFIG),
    )
}

fn hub_api() -> Result<hf_hub::api::sync::Api> {
    hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .map_err(|e| Error::ModelNotFound {
            message: format!("cannot reach the hugging face hub: {e}"),
        })
}

fn download(repo: &str) -> Result<Vec<PathBuf>> {
    let api = hub_api()?.model(repo.to_string());
    REQUIRED
        .iter()
        .map(|name| {
            api.get(name).map_err(|e| Error::ModelNotFound {
                message: format!(
                    "downloading {name} of {repo} failed ({e}); pass --model DIR to use a local copy"
                ),
            })
        })
        .collect()
}

fn finish(
    id: String,
    config: PathBuf,
    tokenizer: PathBuf,
    weights: PathBuf,
    sbert: Option<PathBuf>,
    pooling: Option<PathBuf>,
) -> Result<ModelFiles> {
    let max_seq_length = match sbert {
        Some(path) => read_json::<SbertConfig>(&path)?.max_seq_length,
        None => DEFAULT_MAX_SEQ_LENGTH,
    };
    if let Some(path) = pooling {
        let p: PoolingConfig = read_json(&path)?;
        if !p.pooling_mode_mean_tokens || p.pooling_mode_cls_token || p.pooling_mode_max_tokens {
            return Err(Error::ModelInvalid {
                path,
                message: "only mean pooling is supported".into(),
            });
        }
    }
    Ok(ModelFiles {
        id,
        config,
        tokenizer,
        weights,
        max_seq_length,
        pooling: "mean".into(),
    })
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Json {
        path: path.to_path_buf(),
        error: e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_missing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.json"), "{}").expect("write");
        let err = model_files(&ModelSource::Dir(dir.path().into())).expect_err("incomplete");
        let message = err.to_string();
        assert!(
            message.contains("tokenizer.json, model.safetensors"),
            "{message}"
        );
        assert!(!message.contains("config.json,"), "{message}");
    }
}
