//! The text that represents a movie for the embedding model. Which text is a design parameter
//! (Meilisearch calls it the embedder's `documentTemplate`): `build --document-template` picks
//! one of [`DocumentTemplate`], the manifest records it, and `scripts/search_templates.sh`
//! compares them on the judged query sets.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::data::{split_year, Dataset, Movie};

/// How a movie's title, genres and tags are written into the text that is embedded. The
/// default is notebook 004's own text: on the tuning halves of `tests/queries/` it found
/// descriptions' answers more often than the labelled template and titles as often (README,
/// Hybrid search).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum DocumentTemplate {
    /// `Toy Story (1995). Genres: Adventure, Animation. Tags: pixar, fun.` (tags deduplicated,
    /// most frequent first).
    Labelled,
    /// The same without the labels: `Toy Story (1995). Adventure, Animation. pixar, fun.`
    Plain,
    /// Notebook 004's text: title, the genres as MovieLens writes them, every tag as written:
    /// `Toy Story (1995) Adventure|Animation pixar pixar fun`.
    #[default]
    Seed,
    /// Labelled, each tag as often as people gave it (most frequent first).
    TagCounts,
    /// A sentence, genres as words: `Toy Story (1995): an adventure, animation film. Tags: …`
    Sentence,
    /// The title alone.
    Title,
}

impl DocumentTemplate {
    /// Every template, in the order the comparison prints them.
    pub const ALL: [DocumentTemplate; 6] = [
        DocumentTemplate::Labelled,
        DocumentTemplate::Plain,
        DocumentTemplate::Seed,
        DocumentTemplate::TagCounts,
        DocumentTemplate::Sentence,
        DocumentTemplate::Title,
    ];

    /// The name on the command line and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            DocumentTemplate::Labelled => "labelled",
            DocumentTemplate::Plain => "plain",
            DocumentTemplate::Seed => "seed",
            DocumentTemplate::TagCounts => "tag-counts",
            DocumentTemplate::Sentence => "sentence",
            DocumentTemplate::Title => "title",
        }
    }

    /// The document of `movie`, given its tags in file order.
    pub fn render<'a>(self, movie: &Movie, tags: impl IntoIterator<Item = &'a str>) -> String {
        let tags: Vec<&str> = tags.into_iter().collect();
        match self {
            DocumentTemplate::Labelled => labelled(movie, &ranked_tags(tags.iter().copied())),
            DocumentTemplate::TagCounts => labelled(movie, &tags_by_count(&tags)),
            DocumentTemplate::Plain => {
                let mut parts = vec![movie.title.clone()];
                if !movie.genres.is_empty() {
                    parts.push(movie.genres.join(", "));
                }
                let tags = ranked_tags(tags.iter().copied());
                if !tags.is_empty() {
                    parts.push(tags.join(", "));
                }
                format!("{}.", parts.join(". "))
            }
            DocumentTemplate::Seed => {
                // pandas' `genres.replace('|', ' ')` replaces whole values only, so the seed's
                // documents keep the pipes; tags are joined by spaces, duplicates included.
                // The trailing space of a movie without tags is left out: the tokenizer drops
                // it anyway.
                let text = format!(
                    "{} {} {}",
                    movie.title,
                    movie.genres.join("|"),
                    tags.join(" ")
                );
                text.trim_end().to_string()
            }
            DocumentTemplate::Sentence => {
                let (name, year) = split_year(&movie.title);
                let mut text = match year {
                    Some(year) => format!("{name} ({year})"),
                    None => name.to_string(),
                };
                if !movie.genres.is_empty() {
                    let words: Vec<&str> = movie.genres.iter().map(|g| genre_words(g)).collect();
                    text.push_str(&format!(": {} {}", article(words[0]), words.join(", ")));
                    text.push_str(" film");
                }
                let tags = ranked_tags(tags.iter().copied());
                if !tags.is_empty() {
                    text.push_str(". Tags: ");
                    text.push_str(&tags.join(", "));
                }
                text.push('.');
                text
            }
            DocumentTemplate::Title => movie.title.clone(),
        }
    }
}

/// How a query is made from a movie a person liked, with no word of its title: what the
/// personal-search evaluation asks and what the personal ranker is trained on (one definition
/// for both, so training rows look like the queries measured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueryKind {
    /// Its genres as MovieLens writes them: `Comedy Romance movies`.
    Genres,
    /// Its three most given tags: `pixar, fun, toys`.
    Tags,
    /// The sentence template without the title: `an adventure, animation film. Tags: pixar.`
    Description,
}

/// Tags a [`QueryKind::Tags`] query takes.
const QUERY_TAGS: usize = 3;
/// Tags a [`QueryKind::Description`] query takes.
const DESCRIPTION_TAGS: usize = 5;

impl QueryKind {
    /// Every kind, in report order.
    pub const ALL: [QueryKind; 3] = [QueryKind::Genres, QueryKind::Tags, QueryKind::Description];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            QueryKind::Genres => "genres",
            QueryKind::Tags => "tags",
            QueryKind::Description => "description",
        }
    }

    /// The query of this kind for `movie` with its `tags` (file order); `None` when the movie
    /// has nothing of that kind (no genre, no tag).
    pub fn query<'a>(
        self,
        movie: &Movie,
        tags: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        let tags = ranked_tags(tags);
        match self {
            QueryKind::Genres => {
                (!movie.genres.is_empty()).then(|| format!("{} movies", movie.genres.join(" ")))
            }
            QueryKind::Tags => {
                (!tags.is_empty()).then(|| tags[..tags.len().min(QUERY_TAGS)].join(", "))
            }
            QueryKind::Description => {
                let mut parts = Vec::new();
                if !movie.genres.is_empty() {
                    let words: Vec<&str> = movie.genres.iter().map(|g| genre_words(g)).collect();
                    parts.push(format!("{} {} film", article(words[0]), words.join(", ")));
                }
                if !tags.is_empty() {
                    let tags = &tags[..tags.len().min(DESCRIPTION_TAGS)];
                    parts.push(format!("Tags: {}", tags.join(", ")));
                }
                (!parts.is_empty()).then(|| format!("{}.", parts.join(". ")))
            }
        }
    }
}

/// The labelled document with the given tag list.
fn labelled(movie: &Movie, tags: &[&str]) -> String {
    let mut text = movie.title.clone();
    if !movie.genres.is_empty() {
        text.push_str(". Genres: ");
        text.push_str(&movie.genres.join(", "));
    }
    if !tags.is_empty() {
        text.push_str(". Tags: ");
        text.push_str(&tags.join(", "));
    }
    text.push('.');
    text
}

/// A MovieLens genre as the words a sentence uses.
fn genre_words(genre: &str) -> &str {
    match genre {
        "Sci-Fi" => "science fiction",
        "Film-Noir" => "film noir",
        "Children" => "children's",
        "Adventure" => "adventure",
        "Animation" => "animation",
        "Comedy" => "comedy",
        "Fantasy" => "fantasy",
        "Romance" => "romance",
        "Drama" => "drama",
        "Action" => "action",
        "Crime" => "crime",
        "Thriller" => "thriller",
        "Horror" => "horror",
        "Mystery" => "mystery",
        "War" => "war",
        "Musical" => "musical",
        "Documentary" => "documentary",
        "Western" => "western",
        other => other,
    }
}

/// "a" or "an" before `word`.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}

/// Tags deduplicated case-insensitively (after trimming), most frequent first; ties keep the
/// order of first appearance, and each tag is spelled as it first appeared.
pub fn ranked_tags<'a>(tags: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    counted_tags(tags).into_iter().map(|(tag, _)| tag).collect()
}

/// Each distinct tag repeated as often as it was given, most frequent first.
fn tags_by_count<'a>(tags: &[&'a str]) -> Vec<&'a str> {
    counted_tags(tags.iter().copied())
        .into_iter()
        .flat_map(|(tag, count)| std::iter::repeat_n(tag, count))
        .collect()
}

/// Distinct tags (case-insensitively, trimmed) with their counts, most frequent first; ties
/// keep the order of first appearance.
fn counted_tags<'a>(tags: impl IntoIterator<Item = &'a str>) -> Vec<(&'a str, usize)> {
    // key → (first spelling, count, first position)
    let mut counts: HashMap<String, (&'a str, usize, usize)> = HashMap::new();
    for (position, tag) in tags.into_iter().enumerate() {
        let tag = tag.trim();
        if tag.is_empty() {
            continue;
        }
        counts
            .entry(tag.to_lowercase())
            .and_modify(|entry| entry.1 += 1)
            .or_insert((tag, 1, position));
    }
    let mut ranked: Vec<_> = counts.into_values().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    ranked
        .into_iter()
        .map(|(tag, count, _)| (tag, count))
        .collect()
}

/// The document of the movie at `position` in [`Dataset::movies`] under `template`.
pub fn document_for(dataset: &Dataset, position: usize, template: DocumentTemplate) -> String {
    let tags = dataset
        .tags
        .iter()
        .filter(|t| t.movie as usize == position)
        .map(|t| t.text.as_str());
    template.render(&dataset.movies[position], tags)
}

/// The title and document (under `template`) of the movie `movie_id` of the MovieLens
/// directory `data`.
pub fn document_of(
    data: &std::path::Path,
    movie_id: u32,
    template: DocumentTemplate,
) -> crate::error::Result<(String, String)> {
    let dataset = Dataset::load(data)?;
    let position =
        dataset
            .position(movie_id)
            .ok_or_else(|| crate::error::Error::InvalidArgument {
                name: "--movie".into(),
                message: format!("{movie_id}: no such movieId in {}", data.display()),
            })?;
    Ok((
        dataset.movies[position].title.clone(),
        document_for(&dataset, position, template),
    ))
}

/// The documents of every movie of the dataset under `template`, in [`Dataset::movies`] order.
pub fn build_documents(dataset: &Dataset, template: DocumentTemplate) -> Vec<String> {
    dataset
        .movies
        .iter()
        .zip(dataset.tags_by_movie())
        .map(|(movie, tags)| template.render(movie, tags))
        .collect()
}
#[cfg(test)]
mod tests {
    use super::*;

    fn movie(title: &str, genres: &[&str]) -> Movie {
        Movie {
            id: 1,
            title: title.into(),
            year: None,
            genres: genres.iter().map(|g| g.to_string()).collect(),
            imdb_id: None,
            tmdb_id: None,
        }
    }

    #[test]
    fn queries_of_each_kind_leave_the_title_out() {
        let toy = movie("Toy Story (1995)", &["Adventure", "Animation"]);
        let tags = [
            "pixar",
            "fun",
            "Pixar",
            "toys",
            "friendship",
            "cgi",
            "tom hanks",
        ];
        let query = |kind: QueryKind| kind.query(&toy, tags.iter().copied());
        assert_eq!(
            query(QueryKind::Genres).as_deref(),
            Some("Adventure Animation movies")
        );
        assert_eq!(query(QueryKind::Tags).as_deref(), Some("pixar, fun, toys"));
        assert_eq!(
            query(QueryKind::Description).as_deref(),
            Some("an adventure, animation film. Tags: pixar, fun, toys, friendship, cgi.")
        );
        for kind in QueryKind::ALL {
            assert!(!query(kind).expect("text").contains("Toy Story"));
        }
        let bare = movie("Nothing (2000)", &[]);
        for kind in QueryKind::ALL {
            assert_eq!(
                kind.query(&bare, std::iter::empty()),
                None,
                "{}",
                kind.name()
            );
        }
        assert_eq!(
            QueryKind::Description.query(&bare, ["dark"]).as_deref(),
            Some("Tags: dark.")
        );
    }
    #[test]
    fn fuses_title_genres_and_tags() {
        let doc = DocumentTemplate::Labelled.render(
            &movie("Toy Story (1995)", &["Adventure", "Animation"]),
            ["pixar", "fun", "Pixar", "PIXAR ", "fun", "toys"],
        );
        assert_eq!(
            doc,
            "Toy Story (1995). Genres: Adventure, Animation. Tags: pixar, fun, toys."
        );
    }

    #[test]
    fn omits_empty_sections() {
        assert_eq!(
            DocumentTemplate::Labelled.render(&movie("Heat (1995)", &[]), []),
            "Heat (1995)."
        );
        assert_eq!(
            DocumentTemplate::Labelled.render(&movie("Heat (1995)", &["Crime"]), ["  "]),
            "Heat (1995). Genres: Crime."
        );
        assert_eq!(
            DocumentTemplate::Seed.render(&movie("Heat (1995)", &["Crime"]), []),
            "Heat (1995) Crime"
        );
        assert_eq!(DocumentTemplate::default(), DocumentTemplate::Seed);
    }

    #[test]
    fn each_template_writes_what_it_says() {
        let toy = movie("Toy Story (1995)", &["Adventure", "Sci-Fi"]);
        let tags = ["pixar", "fun", "Pixar"];
        for (template, expected) in [
            (
                DocumentTemplate::Labelled,
                "Toy Story (1995). Genres: Adventure, Sci-Fi. Tags: pixar, fun.",
            ),
            (
                DocumentTemplate::Plain,
                "Toy Story (1995). Adventure, Sci-Fi. pixar, fun.",
            ),
            (
                DocumentTemplate::Seed,
                "Toy Story (1995) Adventure|Sci-Fi pixar fun Pixar",
            ),
            (
                DocumentTemplate::TagCounts,
                "Toy Story (1995). Genres: Adventure, Sci-Fi. Tags: pixar, pixar, fun.",
            ),
            (
                DocumentTemplate::Sentence,
                "Toy Story (1995): an adventure, science fiction film. Tags: pixar, fun.",
            ),
            (DocumentTemplate::Title, "Toy Story (1995)"),
        ] {
            assert_eq!(template.render(&toy, tags), expected, "{}", template.name());
        }
        assert_eq!(
            DocumentTemplate::Sentence.render(&movie("Heat", &["Crime"]), []),
            "Heat: a crime film."
        );
        for template in DocumentTemplate::ALL {
            let parsed: DocumentTemplate =
                serde_json::from_value(serde_json::json!(template.name())).expect("name parses");
            assert_eq!(parsed, template);
        }
    }

    #[test]
    fn ties_keep_first_appearance() {
        assert_eq!(ranked_tags(["b", "a", "c", "a", "B"]), vec!["b", "a", "c"]);
    }
}
