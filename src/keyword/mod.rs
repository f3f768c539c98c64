//! Keyword retrieval: a BM25 index (tantivy) over each movie's title — alternative titles in
//! parentheses included — its genres and its tags.
//!
//! - Titles weigh more than tags and genres ([`TITLE_BOOST`]).
//! - Words are lower-cased, accents folded ("Amélie" = "amelie") and stemmed ("wars" = "war").
//! - Articles need nothing special: "Matrix, The" holds the same words as "the matrix".
//! - Number forms agree: "2", "II" and "two" are one word ([`normalize_numbers`]).
//! - Typos are forgiven in titles: a query word of 5+ letters matches title words one edit
//!   away, of 9+ letters two edits away (Meilisearch's rule).
//!
//! The index is built in memory and kept as one file ([`KeywordIndex::to_bytes`]), so that the
//! store checksums it like every other file; opening it loads that file into a tantivy
//! `RamDirectory` (~1 MB for ml-latest-small).
//!
//! This module depends on nothing of ours.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tantivy::collector::{FilterCollector, TopDocs};
use tantivy::directory::RamDirectory;
use tantivy::query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    TextAnalyzer, TokenStream,
};
use tantivy::{Directory, Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

/// Weight of a title word against a tag or genre word.
pub const TITLE_BOOST: f32 = 3.0;
/// Score of a query whose words are exactly one of a movie's titles (see [`KeywordIndex`]).
pub const EXACT_TITLE_BOOST: f32 = 10.0;
/// Score of a title word matched only within the edit distance (a constant, as tantivy scores
/// fuzzy matches), relative to BM25 scores of exact words (~2–9 here).
pub const FUZZY_BOOST: f32 = 2.0;

/// The analyzer of stemmed fields.
const STEMMED: &str = "reelrank_stemmed";
/// The analyzer of the unstemmed title (for fuzzy matching: stems distort edit distances).
const PLAIN: &str = "reelrank_plain";

/// Field names of the schema.
const TITLE: &str = "title";
const TITLE_PLAIN: &str = "title_plain";
const GENRES: &str = "genres";
const TAGS: &str = "tags";
const TITLE_KEY: &str = "title_key";
const POSITION: &str = "position";

/// A keyword index failure (building, packing or unpacking).
#[derive(Debug, thiserror::Error)]
#[error("keyword index: {0}")]
pub struct KeywordError(String);

impl From<tantivy::TantivyError> for KeywordError {
    fn from(e: tantivy::TantivyError) -> Self {
        KeywordError(e.to_string())
    }
}

/// One movie as the keyword index sees it.
#[derive(Debug, Clone)]
pub struct KeywordDoc<'a> {
    /// The MovieLens title without its year ("Seven (a.k.a. Se7en)"): the caller strips it,
    /// as the data layer defines a title's year.
    pub title: &'a str,
    /// Genres.
    pub genres: &'a [String],
    /// Tags (each once).
    pub tags: Vec<&'a str>,
}

/// A movie the keyword index found: its catalogue position and BM25 score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeywordHit {
    /// Catalogue position.
    pub position: u32,
    /// BM25 (plus fuzzy title matches), higher is better.
    pub score: f32,
}

/// The schema's fields.
#[derive(Debug, Clone, Copy)]
struct Fields {
    title: Field,
    title_plain: Field,
    genres: Field,
    tags: Field,
    title_key: Field,
    position: Field,
}

impl Fields {
    fn of(schema: &Schema) -> Result<Fields, KeywordError> {
        let field = |name: &str| {
            schema
                .get_field(name)
                .map_err(|_| KeywordError(format!("the index has no field '{name}'")))
        };
        Ok(Fields {
            title: field(TITLE)?,
            title_plain: field(TITLE_PLAIN)?,
            genres: field(GENRES)?,
            tags: field(TAGS)?,
            title_key: field(TITLE_KEY)?,
            position: field(POSITION)?,
        })
    }
}

fn schema() -> Schema {
    let text = |analyzer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(analyzer)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
    };
    let mut builder = Schema::builder();
    builder.add_text_field(TITLE, text(STEMMED));
    builder.add_text_field(TITLE_PLAIN, text(PLAIN));
    builder.add_text_field(GENRES, text(STEMMED));
    builder.add_text_field(TAGS, text(STEMMED));
    // One untokenized key per title variant (see `title_key`).
    builder.add_text_field(
        TITLE_KEY,
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_index_option(IndexRecordOption::Basic),
        ),
    );
    builder.add_u64_field(POSITION, FAST);
    builder.build()
}

/// Registers the analyzers (tantivy does not store them with the index).
fn register_analyzers(index: &Index) {
    index.tokenizers().register(PLAIN, plain_analyzer().build());
    index.tokenizers().register(
        STEMMED,
        plain_analyzer()
            .filter(Stemmer::new(Language::English))
            .build(),
    );
}

/// Words lower-cased and accent-folded; overlong ones dropped.
fn plain_analyzer() -> tantivy::tokenizer::TextAnalyzerBuilder<impl tantivy::tokenizer::Tokenizer> {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
}

/// Number words and Roman numerals as digits, so that "Rocky III", "rocky 3" and
/// "rocky three" agree ("I" and "one" stay: both are mostly ordinary words).
fn number_form(word: &str) -> Option<&'static str> {
    Some(match word {
        "ii" | "two" => "2",
        "iii" | "three" => "3",
        "iv" | "four" => "4",
        "v" | "five" => "5",
        "vi" | "six" => "6",
        "vii" | "seven" => "7",
        "viii" | "eight" => "8",
        "ix" | "nine" => "9",
        "x" | "ten" => "10",
        _ => return None,
    })
}

/// `text` with its words lower-cased and number forms written as digits; other characters
/// stay. Applied to titles at build time and to queries, so both sides agree.
pub fn normalize_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let lower = word.to_lowercase();
        out.push_str(number_form(&lower).unwrap_or(&lower));
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The searchable title: a title without its year, "a.k.a." left out and numbers normalised.
pub fn title_text(title: &str) -> String {
    normalize_numbers(&title.replace("a.k.a.", " "))
}

/// Articles left out of title keys, so that "Matrix, The" and "the matrix" agree (English and
/// the French of many MovieLens alternative titles).
const ARTICLES: [&str; 7] = ["the", "a", "an", "le", "la", "les", "l"];

/// The title variants of a searchable title: the main title and each one in parentheses
/// ("7 (se7en)" → "7", "se7en"), and a numbered sequel's name without its subtitle ("home
/// alone 2: lost in new york" → "home alone 2"), as people type it.
fn title_variants(title: &str) -> Vec<&str> {
    let mut variants: Vec<&str> = title
        .split(['(', ')'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let sequels: Vec<&str> = variants
        .iter()
        .filter_map(|v| v.split_once(':'))
        .map(|(head, _)| head.trim_end())
        .filter(|head| {
            head.rsplit(' ')
                .next()
                .is_some_and(|last| !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    variants.extend(sequels);
    variants
}

/// The edit distance allowed for a query word of `len` characters (Meilisearch's rule).
fn fuzzy_distance(len: usize) -> u8 {
    match len {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

/// The words of `text` through `analyzer`.
fn words(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut words = Vec::new();
    while stream.advance() {
        words.push(stream.token().text.clone());
    }
    words
}

/// The words of `text` lower-cased and accent-folded, unstemmed.
fn plain_words(text: &str) -> Vec<String> {
    words(&mut plain_analyzer().build(), text)
}

/// The key of a title (or of a query naming one): its content words (see [`content_words`])
/// joined; `None` when nothing is left.
fn title_key(text: &str) -> Option<String> {
    let words = content_words(text);
    (!words.is_empty()).then(|| words.join(" "))
}

/// What the keyword index file holds: the searchable titles and tantivy's files.
#[derive(serde::Serialize, serde::Deserialize)]
struct Packed {
    titles: Vec<String>,
    files: BTreeMap<String, Vec<u8>>,
}

/// The distinct words of `text` (numbers normalised), articles and "part" left out ("back to
/// the future 2" names "Back to the Future Part II" in full).
fn content_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = plain_words(&normalize_numbers(text))
        .into_iter()
        .filter(|w| !ARTICLES.contains(&String::as_str(w)) && w != "part")
        .collect();
    words.sort_unstable();
    words.dedup();
    words
}

/// Whether a query word names a title word: equal, a plural or possessive away ("lamb" and
/// "lambs"), or within the edit distance of a typo (see [`fuzzy_distance`]).
fn word_matches(query: &str, title: &str) -> bool {
    if query == title {
        return true;
    }
    let (short, long) = if query.len() <= title.len() {
        (query, title)
    } else {
        (title, query)
    };
    if short.len() >= 3 && long.starts_with(short) && long.len() - short.len() <= 2 {
        return true;
    }
    let query_len = query.chars().count();
    let distance = usize::from(fuzzy_distance(query_len));
    // Words whose lengths differ by more than the distance cannot be within it: skip the
    // edit-distance computation, which is most of a title match's cost.
    distance > 0
        && query_len.abs_diff(title.chars().count()) <= distance
        && strsim::osa_distance(query, title) <= distance
}

/// A query's content words, to score how well it names titles (see [`TitleQuery::score`]).
#[derive(Debug, Clone)]
pub struct TitleQuery<'a> {
    index: &'a KeywordIndex,
    words: Vec<String>,
}

impl TitleQuery<'_> {
    /// How well the query names the title of `position`, in [0, 1]: of the words of the query
    /// and of the best-matching title variant (articles left out), the matched words over the
    /// larger count. 1 for "the matrix" → "Matrix, The" or "se7en" → "Seven (a.k.a. Se7en)";
    /// ½ for "the matrix" → "Matrix Reloaded, The"; near 0 for a description.
    pub fn score(&self, position: u32) -> f32 {
        self.matches(position)
            .map(|(matched, title_words)| matched as f32 / self.words.len().max(title_words) as f32)
            .fold(0.0, f32::max)
    }

    /// Whether every word of the query is in one variant of the title of `position` ("star
    /// wars" is in "Star Wars: Episode IV - A New Hope"); false for a query of no content word.
    pub fn covered_by(&self, position: u32) -> bool {
        !self.words.is_empty()
            && self
                .matches(position)
                .any(|(matched, _)| matched == self.words.len())
    }

    /// For each variant of the title of `position`: how many query words it matches, and its
    /// own number of words.
    fn matches(&self, position: u32) -> impl Iterator<Item = (usize, usize)> + '_ {
        let variants = if self.words.is_empty() {
            None
        } else {
            self.index.title_words(position)
        };
        variants.into_iter().flatten().map(|words| {
            let matched = self
                .words
                .iter()
                .filter(|q| words.iter().any(|t| word_matches(q, t)))
                .count();
            (matched, words.len())
        })
    }
}

/// A BM25 index of the catalogue, in memory. Besides BM25 over the words, a query whose words
/// (articles aside, in any order) are exactly one of a movie's titles scores
/// [`EXACT_TITLE_BOOST`] more: "the matrix" names "Matrix, The" rather than the sequels.
#[derive(Clone)]
pub struct KeywordIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// The searchable title of each position (see [`title_text`]), for [`TitleQuery::score`].
    titles: Vec<String>,
    /// The content words of each title variant, per position, worked out on first use: a
    /// server pays once per movie, a one-shot query only for its candidates.
    title_words: Vec<OnceLock<Vec<Vec<String>>>>,
}

impl std::fmt::Debug for KeywordIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeywordIndex({} movies)", self.len())
    }
}

impl KeywordIndex {
    /// Indexes `docs`; the i-th document is catalogue position i.
    pub fn build<'a>(
        docs: impl IntoIterator<Item = KeywordDoc<'a>>,
    ) -> Result<KeywordIndex, KeywordError> {
        let index = Index::create_in_ram(schema());
        register_analyzers(&index);
        let fields = Fields::of(&index.schema())?;
        // One thread: one segment, in position order, the same on every build.
        let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, 50_000_000)?;
        let mut titles = Vec::new();
        for (position, doc) in docs.into_iter().enumerate() {
            let title = title_text(doc.title);
            let mut document = TantivyDocument::default();
            document.add_text(fields.title, &title);
            document.add_text(fields.title_plain, &title);
            for variant in title_variants(&title) {
                if let Some(key) = title_key(variant) {
                    document.add_text(fields.title_key, key);
                }
            }
            document.add_text(fields.genres, doc.genres.join(" "));
            document.add_text(fields.tags, normalize_numbers(&doc.tags.join(" . ")));
            document.add_u64(fields.position, position as u64);
            writer.add_document(document)?;
            titles.push(title);
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        KeywordIndex::open(index, titles)
    }

    fn open(index: Index, titles: Vec<String>) -> Result<KeywordIndex, KeywordError> {
        register_analyzers(&index);
        let fields = Fields::of(&index.schema())?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let documents = reader.searcher().num_docs() as usize;
        if titles.len() != documents {
            return Err(KeywordError(format!(
                "{} titles for {documents} documents",
                titles.len()
            )));
        }
        let title_words = titles.iter().map(|_| OnceLock::new()).collect();
        Ok(KeywordIndex {
            index,
            reader,
            fields,
            titles,
            title_words,
        })
    }

    /// `query` prepared for [`TitleQuery::score`] against any number of titles.
    pub fn title_query(&self, query: &str) -> TitleQuery<'_> {
        TitleQuery {
            index: self,
            words: content_words(query),
        }
    }

    /// The content words of each variant of the title at `position`.
    fn title_words(&self, position: u32) -> Option<&[Vec<String>]> {
        let title = self.titles.get(position as usize)?;
        let words = self.title_words.get(position as usize)?.get_or_init(|| {
            title_variants(title)
                .into_iter()
                .map(content_words)
                .collect()
        });
        Some(words)
    }

    /// Number of movies indexed.
    pub fn len(&self) -> usize {
        self.titles.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.titles.is_empty()
    }

    /// Every file of the index as one byte string: (name, contents) pairs.
    pub fn to_bytes(&self) -> Result<Vec<u8>, KeywordError> {
        let directory = self.index.directory();
        let managed = directory
            .atomic_read(Path::new(".managed.json"))
            .map_err(|e| KeywordError(e.to_string()))?;
        let mut names: Vec<PathBuf> =
            serde_json::from_slice(&managed).map_err(|e| KeywordError(e.to_string()))?;
        names.push(PathBuf::from("meta.json"));
        names.push(PathBuf::from(".managed.json"));
        let mut files = BTreeMap::new();
        for name in names {
            let bytes = directory
                .atomic_read(&name)
                .map_err(|e| KeywordError(format!("{}: {e}", name.display())))?;
            files.insert(name.to_string_lossy().into_owned(), bytes);
        }
        let packed = Packed {
            titles: self.titles.clone(),
            files,
        };
        postcard::to_allocvec(&packed).map_err(|e| KeywordError(e.to_string()))
    }

    /// Opens an index from the bytes of [`KeywordIndex::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<KeywordIndex, KeywordError> {
        let packed: Packed =
            postcard::from_bytes(bytes).map_err(|e| KeywordError(e.to_string()))?;
        let directory = RamDirectory::create();
        for (name, contents) in &packed.files {
            directory
                .atomic_write(Path::new(name), contents)
                .map_err(|e| KeywordError(format!("{name}: {e}")))?;
        }
        KeywordIndex::open(Index::open(directory)?, packed.titles)
    }

    /// The words of `text` as the stemmed fields index them.
    fn stemmed_words(&self, text: &str) -> Vec<String> {
        match self.index.tokenizers().get(STEMMED) {
            Some(mut analyzer) => words(&mut analyzer, text),
            None => Vec::new(),
        }
    }

    /// The query: every word in the title (boosted), the tags and the genres, and every long
    /// enough word near a title word.
    fn query(&self, text: &str) -> BooleanQuery {
        let text = normalize_numbers(text);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let f = self.fields;
        for word in self.stemmed_words(&text) {
            for (field, boost) in [(f.title, TITLE_BOOST), (f.tags, 1.0), (f.genres, 1.0)] {
                let term = TermQuery::new(
                    Term::from_field_text(field, &word),
                    IndexRecordOption::WithFreqs,
                );
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(term), boost)),
                ));
            }
        }
        if let Some(key) = title_key(&text) {
            let exact = TermQuery::new(
                Term::from_field_text(f.title_key, &key),
                IndexRecordOption::Basic,
            );
            clauses.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(exact), EXACT_TITLE_BOOST)),
            ));
        }
        for word in plain_words(&text) {
            let distance = fuzzy_distance(word.chars().count());
            if distance > 0 {
                let fuzzy = FuzzyTermQuery::new(
                    Term::from_field_text(f.title_plain, &word),
                    distance,
                    true,
                );
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(fuzzy), FUZZY_BOOST)),
                ));
            }
        }
        BooleanQuery::new(clauses)
    }

    /// The `limit` best movies for `text`, best first; with `allowed`, only the positions it
    /// marks true. A query without any indexed word finds nothing.
    pub fn search(
        &self,
        text: &str,
        limit: usize,
        allowed: Option<Arc<Vec<bool>>>,
    ) -> Result<Vec<KeywordHit>, KeywordError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let query = self.query(text);
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(limit).order_by_score();
        let found = match allowed {
            None => searcher.search(&query, &top)?,
            Some(allowed) => {
                let keep =
                    move |position: u64| allowed.get(position as usize).copied().unwrap_or(false);
                searcher.search(
                    &query,
                    &FilterCollector::new(POSITION.to_string(), keep, top),
                )?
            }
        };
        // Positions come from the fast field (a column read), not from stored documents.
        let columns = searcher
            .segment_readers()
            .iter()
            .map(|segment| segment.fast_fields().u64(POSITION))
            .collect::<Result<Vec<_>, _>>()?;
        found
            .into_iter()
            .map(|(score, address)| {
                let position = columns
                    .get(address.segment_ord as usize)
                    .and_then(|column| column.first(address.doc_id))
                    .ok_or_else(|| KeywordError("a document without its position".into()))?;
                Ok(KeywordHit {
                    position: position as u32,
                    score,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(titles: &[(&str, &[&str], &[&str])]) -> KeywordIndex {
        let genres: Vec<Vec<String>> = titles
            .iter()
            .map(|(_, g, _)| g.iter().map(|s| s.to_string()).collect())
            .collect();
        KeywordIndex::build(
            titles
                .iter()
                .zip(&genres)
                .map(|((title, _, tags), genres)| KeywordDoc {
                    title,
                    genres,
                    tags: tags.to_vec(),
                }),
        )
        .expect("index")
    }

    fn first(index: &KeywordIndex, query: &str) -> Option<u32> {
        index
            .search(query, 10, None)
            .expect("search")
            .first()
            .map(|h| h.position)
    }

    #[test]
    fn titles_numbers_articles_accents_and_typos() {
        let index = index(&[
            ("Matrix, The", &["Sci-Fi"], &["cyberpunk"]),
            ("Rocky III", &["Drama"], &[]),
            ("Rocky", &["Drama"], &["boxing"]),
            ("Seven (a.k.a. Se7en)", &["Thriller"], &["serial killer"]),
            (
                "Amelie (Fabuleux destin d'Amélie Poulain, Le)",
                &["Comedy"],
                &[],
            ),
            ("Forrest Gump", &["Drama"], &[]),
            ("Forest Warrior", &["Action"], &[]),
            ("Up", &["Animation"], &["balloons"]),
            ("Matrix Reloaded, The", &["Sci-Fi"], &["matrix"]),
        ]);
        assert_eq!(first(&index, "the matrix"), Some(0));
        assert_eq!(first(&index, "rocky 3"), Some(1));
        assert_eq!(first(&index, "Rocky three"), Some(1));
        assert_eq!(first(&index, "se7en"), Some(3));
        assert_eq!(first(&index, "fabuleux destin d'amelie"), Some(4));
        assert_eq!(first(&index, "forest gump"), Some(5));
        assert_eq!(first(&index, "up"), Some(7));
        assert_eq!(first(&index, "serial killers"), Some(3), "stemmed tags");
        assert_eq!(first(&index, "   "), None);
        assert_eq!(first(&index, "zzzz qqq"), None);
    }

    #[test]
    fn filters_and_round_trips() {
        let index = index(&[
            ("Alien", &["Horror"], &[]),
            ("Aliens", &["Action"], &[]),
            ("Alien³ (a.k.a. Alien 3)", &["Action"], &[]),
        ]);
        let allowed = Arc::new(vec![false, true, true]);
        let hits = index.search("alien", 10, Some(allowed)).expect("search");
        assert!(!hits.is_empty() && hits.iter().all(|h| h.position != 0));
        let bytes = index.to_bytes().expect("bytes");
        let reopened = KeywordIndex::from_bytes(&bytes).expect("reopen");
        assert_eq!(reopened.len(), 3);
        assert_eq!(
            reopened.search("alien 3", 3, None).expect("search"),
            index.search("alien 3", 3, None).expect("search")
        );
        assert!(KeywordIndex::from_bytes(&bytes[..bytes.len() / 2]).is_err());
    }

    #[test]
    fn title_match_prefers_the_named_title() {
        let index = index(&[
            ("Matrix, The", &[], &[]),
            ("Matrix Reloaded, The", &[], &[]),
            ("Seven (a.k.a. Se7en)", &[], &[]),
            ("Silence of the Lambs, The", &[], &[]),
            ("Titanic", &[], &[]),
            ("Back to the Future Part II", &[], &[]),
        ]);
        assert_eq!(index.title_query("the matrix").score(0), 1.0);
        assert_eq!(index.title_query("back to the future 2").score(5), 1.0);
        assert_eq!(
            index.title_query("back to the future part two").score(5),
            1.0
        );
        assert_eq!(index.title_query("back to the future").score(5), 0.75);
        assert_eq!(index.title_query("the matrix").score(1), 0.5);
        assert_eq!(index.title_query("se7en").score(2), 1.0);
        assert_eq!(index.title_query("silence of the lamb").score(3), 1.0);
        assert_eq!(
            index.title_query("titanik").score(4),
            1.0,
            "one typo in 7 letters"
        );
        assert!(
            index
                .title_query("a great ship sinks after hitting an iceberg")
                .score(4)
                < 0.2
        );
        assert_eq!(index.title_query("").score(0), 0.0);
        assert_eq!(index.title_query("matrix").score(99), 0.0);
        // Coverage: every query word in the title, whatever else the title says.
        assert!(index.title_query("matrix").covered_by(1));
        assert!(index.title_query("the matrix reloaded").covered_by(1));
        assert!(!index.title_query("matrix revolutions").covered_by(1));
        assert!(!index.title_query("the").covered_by(0), "no content word");
        assert!(!index.title_query("matrix").covered_by(99));
    }

    #[test]
    fn number_forms_and_titles() {
        assert_eq!(normalize_numbers("Rocky III: Part Two"), "rocky 3: part 2");
        assert_eq!(title_text("Seven (a.k.a. Se7en)"), "7 (  se7en)");
        assert_eq!(title_variants("7 (  se7en)"), vec!["7", "se7en"]);
        assert_eq!(
            title_variants("home alone 2: lost in new york"),
            vec!["home alone 2: lost in new york", "home alone 2"]
        );
        assert_eq!(
            title_variants("star wars: episode 4 - a new hope"),
            vec!["star wars: episode 4 - a new hope"],
            "no number before the colon: no shorter name"
        );
        let key = title_key;
        assert_eq!(key("Matrix, The"), Some("matrix".to_string()));
        assert_eq!(key("the  MATRIX"), Some("matrix".to_string()));
        assert_eq!(key("Amélie"), Some("amelie".to_string()));
        assert_eq!(key("The"), None);
        assert_eq!(title_text("Blade Runner 2049"), "blade runner 2049");
        assert_eq!(title_text("Big Fish"), "big fish");
    }
}
