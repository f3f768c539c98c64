//! The text that represents a movie for the embedding model: title, genres as words, and the
//! movie's tags (deduplicated case-insensitively, most frequent first).

use std::collections::HashMap;

use crate::data::{Dataset, Movie};

/// The document of one movie, given the tags of that movie (in file order).
///
/// `"Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy. Tags: pixar, fun."`
pub fn movie_document<'a>(movie: &Movie, tags: impl IntoIterator<Item = &'a str>) -> String {
    let mut text = movie.title.clone();
    if !movie.genres.is_empty() {
        text.push_str(". Genres: ");
        text.push_str(&movie.genres.join(", "));
    }
    let tags = ranked_tags(tags);
    if !tags.is_empty() {
        text.push_str(". Tags: ");
        text.push_str(&tags.join(", "));
    }
    text.push('.');
    text
}

/// Tags deduplicated case-insensitively (after trimming), most frequent first; ties keep the
/// order of first appearance, and each tag is spelled as it first appeared.
pub fn ranked_tags<'a>(tags: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
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
    ranked.into_iter().map(|(tag, _, _)| tag).collect()
}

/// The document of the movie at `position` in [`Dataset::movies`].
pub fn document_for(dataset: &Dataset, position: usize) -> String {
    let tags = dataset
        .tags
        .iter()
        .filter(|t| t.movie as usize == position)
        .map(|t| t.text.as_str());
    movie_document(&dataset.movies[position], tags)
}

/// The title and document of the movie `movie_id` of the MovieLens directory `data`.
pub fn document_of(
    data: &std::path::Path,
    movie_id: u32,
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
        document_for(&dataset, position),
    ))
}

/// The documents of every movie of the dataset, in [`Dataset::movies`] order.
pub fn build_documents(dataset: &Dataset) -> Vec<String> {
    dataset
        .movies
        .iter()
        .zip(dataset.tags_by_movie())
        .map(|(movie, tags)| movie_document(movie, tags))
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
    fn fuses_title_genres_and_tags() {
        let doc = movie_document(
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
            movie_document(&movie("Heat (1995)", &[]), []),
            "Heat (1995)."
        );
        assert_eq!(
            movie_document(&movie("Heat (1995)", &["Crime"]), ["  "]),
            "Heat (1995). Genres: Crime."
        );
    }

    #[test]
    fn ties_keep_first_appearance() {
        assert_eq!(ranked_tags(["b", "a", "c", "a", "B"]), vec!["b", "a", "c"]);
    }
}
