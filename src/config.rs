//! Where the dataset, the model and the index are: resolved once from flags, variables and
//! defaults, then passed to every command.

use std::path::{Path, PathBuf};

use crate::data::DEFAULT_DATA_DIR;
use crate::embed::ModelSource;
use crate::profiles::StoreUrl;

/// The directory that holds indexes by default.
pub const DEFAULT_INDEX_ROOT: &str = "indexes";

/// The three locations every command works with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The MovieLens directory.
    pub data: PathBuf,
    /// The sentence-transformers model.
    pub model: ModelSource,
    /// The index directory.
    pub index: PathBuf,
    /// The profile database (`--store`): an SQLite file beside the index by default.
    pub store: StoreUrl,
}

impl Paths {
    /// Resolves the locations from `--data`, `--model`, `--index` (or their variables, which
    /// the caller has already read): data defaults to `data/ml-latest-small`, the model to the
    /// hugging face cache, the index to `indexes/<dataset directory name>`.
    pub fn resolve(data: Option<PathBuf>, model: Option<PathBuf>, index: Option<PathBuf>) -> Paths {
        let data = data.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let index = index.unwrap_or_else(|| default_index_dir(&data));
        Paths {
            data,
            model: ModelSource::from_option(model),
            store: StoreUrl::beside(&index),
            index,
        }
    }

    /// The same locations with the profile database at `store` (`--store`).
    pub fn with_store(mut self, store: StoreUrl) -> Paths {
        self.store = store;
        self
    }
}

/// `indexes/<name of the dataset directory>`.
pub fn default_index_dir(data: &Path) -> PathBuf {
    let name = data
        .components()
        .next_back()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .unwrap_or_else(|| "default".to_string());
    Path::new(DEFAULT_INDEX_ROOT).join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_defaults_to_dataset_name() {
        let paths = Paths::resolve(Some("/x/ml-25m/".into()), None, None);
        assert_eq!(paths.index, Path::new("indexes/ml-25m"));
        assert!(matches!(paths.model, ModelSource::Hub(_)));
        let paths = Paths::resolve(None, Some("m".into()), Some("i".into()));
        assert_eq!(paths.data, Path::new(DEFAULT_DATA_DIR));
        assert_eq!(paths.model, ModelSource::Dir("m".into()));
        assert_eq!(paths.index, Path::new("i"));
    }
}
