//! The library's one error type.

use std::path::PathBuf;

/// Every failure the library reports, with the context a user needs to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error (shown in the message, so not chained as a source).
        error: std::io::Error,
    },

    /// The MovieLens directory (or one of its required files) does not exist.
    #[error("{path}: not found. {hint}")]
    DatasetNotFound {
        /// What was looked for.
        path: PathBuf,
        /// How to get the data.
        hint: String,
    },

    /// A CSV file lacks a required column.
    #[error("{file}: missing column '{column}' (header has: {found})")]
    MissingColumn {
        /// The CSV file.
        file: PathBuf,
        /// The required column.
        column: String,
        /// The columns present.
        found: String,
    },

    /// A CSV row holds a value that breaks a validation rule.
    #[error("{file}, line {line}, field '{field}': {problem}")]
    InvalidRow {
        /// The CSV file.
        file: PathBuf,
        /// The 1-based line number in the file (the header is line 1).
        line: usize,
        /// The column at fault.
        field: String,
        /// What is wrong with it.
        problem: String,
    },

    /// A CSV line does not have the shape of the header (field count, quoting).
    #[error("{file}, line {line}: {problem}")]
    MalformedLine {
        /// The CSV file.
        file: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },

    /// The dataset leaves nothing to build from.
    #[error("{path}: {reason}; refusing to build an index from it")]
    EmptyDataset {
        /// The file at fault.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },

    /// A CSV file could not be parsed at all.
    #[error("{file}: {message}")]
    Csv {
        /// The CSV file.
        file: PathBuf,
        /// The parser's message.
        message: String,
    },

    /// The sentence-transformers model could not be found or loaded.
    #[error("model not found: {message}")]
    ModelNotFound {
        /// What was searched and how to fix it.
        message: String,
    },

    /// The model files exist but are not usable.
    #[error("model {path}: {message}")]
    ModelInvalid {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// Tokenisation failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// A tensor operation failed inside candle.
    #[error("embedding model: {0}")]
    Candle(#[from] candle_core::Error),

    /// No index exists at the given directory.
    #[error("no index at {path}: run `reelrank build --index {path}` (or `reelrank search`, which builds it)")]
    IndexMissing {
        /// The index directory.
        path: PathBuf,
    },

    /// The index was built with another format, model or dataset than the one in use.
    #[error("index {path} is stale: {reason}. Rebuild it with `reelrank build --index {path}`")]
    IndexIncompatible {
        /// The index directory.
        path: PathBuf,
        /// Which recorded fact does not match.
        reason: String,
    },

    /// An index file is damaged (wrong size, wrong hash, unreadable).
    #[error("index {path} is corrupt: {reason}. Rebuild it with `reelrank build --index {dir}`")]
    IndexCorrupt {
        /// The damaged file.
        path: PathBuf,
        /// The index directory.
        dir: PathBuf,
        /// What was found wrong.
        reason: String,
    },

    /// A request argument is out of range or malformed.
    #[error("invalid {name}: {message}")]
    InvalidArgument {
        /// The flag or argument at fault, e.g. `--year`.
        name: String,
        /// Why it is rejected.
        message: String,
    },

    /// A movie id that the catalogue does not hold.
    #[error("unknown movie id {0}")]
    UnknownMovie(u32),

    /// JSON (de)serialisation of a file failed.
    #[error("{path}: {error}")]
    Json {
        /// The file involved.
        path: PathBuf,
        /// The underlying error (shown in the message, so not chained as a source).
        error: serde_json::Error,
    },

    /// Building or reading the keyword index failed.
    #[error(transparent)]
    Keyword(#[from] crate::keyword::KeywordError),

    /// The profile database failed or refused to open.
    #[error("profile store {store}: {message}")]
    Store {
        /// The database (password hidden).
        store: String,
        /// What failed.
        message: String,
    },

    /// Drawing a chart failed.
    #[error("chart '{title}': {message}")]
    Chart {
        /// The chart's title.
        title: String,
        /// What the drawing library reported.
        message: String,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }
}
