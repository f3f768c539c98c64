//! Query intent: what a query asks for beyond its words, read by a few cheap rules. A query
//! that names a movie to start from ("movies like the matrix", "similar to amelie") is
//! answered like `similar`; decade words ("90s", "1980s", "the sixties") and genre words
//! ("sci-fi", "comedies", "animated") become soft boosts of the movies that match them, so a
//! description still decides what is relevant.

use serde::Serialize;

/// Relevance added to a movie from a decade the query names (relevance is a cosine, about
/// 0.3–0.7 for the candidates of a query); chosen on the tuning halves of `tests/queries/`.
pub const DECADE_BOOST: f32 = 0.1;
/// Relevance added to a movie having every genre the query names (a share of it for some).
pub const GENRE_BOOST: f32 = 0.15;

/// What the rules read in one query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueryIntent {
    /// The title text after "movies like …" / "similar to …", when the query starts so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub like: Option<String>,
    /// First years of the decades the query names (1990 for "90s").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decades: Vec<u16>,
    /// MovieLens genres the query names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub genres: Vec<&'static str>,
}

impl QueryIntent {
    /// Whether the query names decades or genres to boost.
    pub fn has_boosts(&self) -> bool {
        !self.decades.is_empty() || !self.genres.is_empty()
    }

    /// Whether no rule matched.
    pub fn is_empty(&self) -> bool {
        self.like.is_none() && !self.has_boosts()
    }

    /// The boost of a movie released in `year` with `genres`: `decade_boost` if it is from a
    /// named decade, plus `genre_boost` times the share of the named genres it has.
    pub fn boost(
        &self,
        year: Option<u16>,
        genres: &[String],
        decade_boost: f32,
        genre_boost: f32,
    ) -> f32 {
        let mut boost = 0.0;
        if let Some(year) = year {
            if self.decades.iter().any(|&d| (d..d + 10).contains(&year)) {
                boost += decade_boost;
            }
        }
        if !self.genres.is_empty() {
            let matched = self
                .genres
                .iter()
                .filter(|g| genres.iter().any(|h| h == *g))
                .count();
            boost += genre_boost * matched as f32 / self.genres.len() as f32;
        }
        boost
    }
}

/// Words that may open a "movies like X" query, before the word "like" or "similar to".
const LIKE_OPENERS: [&str; 16] = [
    "show",
    "me",
    "find",
    "recommend",
    "give",
    "i",
    "want",
    "some",
    "more",
    "other",
    "movies",
    "movie",
    "films",
    "film",
    "something",
    "anything",
];

/// Genre words and phrases (lower case, as whole words) and the MovieLens genre each names.
/// Ambiguous words are left out on purpose: "war" ("futuristic wars" is science fiction),
/// "family" ("a mafia family"), "action", "drama", "adventure" (too common in descriptions).
const GENRE_WORDS: [(&str, &str); 34] = [
    ("sci-fi", "Sci-Fi"),
    ("scifi", "Sci-Fi"),
    ("sci fi", "Sci-Fi"),
    ("science fiction", "Sci-Fi"),
    ("comedy", "Comedy"),
    ("comedies", "Comedy"),
    ("comedic", "Comedy"),
    ("horror", "Horror"),
    ("scary", "Horror"),
    ("animated", "Animation"),
    ("animation", "Animation"),
    ("cartoon", "Animation"),
    ("cartoons", "Animation"),
    ("anime", "Animation"),
    ("documentary", "Documentary"),
    ("documentaries", "Documentary"),
    ("romance", "Romance"),
    ("romantic", "Romance"),
    ("romcom", "Romance"),
    ("rom-com", "Romance"),
    ("thriller", "Thriller"),
    ("thrillers", "Thriller"),
    ("western", "Western"),
    ("westerns", "Western"),
    ("musical", "Musical"),
    ("musicals", "Musical"),
    ("film noir", "Film-Noir"),
    ("noir", "Film-Noir"),
    ("mystery", "Mystery"),
    ("mysteries", "Mystery"),
    ("whodunit", "Mystery"),
    ("fantasy", "Fantasy"),
    ("war movie", "War"),
    ("war film", "War"),
];

/// Decades written as words, with the first year of each.
const DECADE_WORDS: [(&str, u16); 6] = [
    ("forties", 1940),
    ("fifties", 1950),
    ("sixties", 1960),
    ("seventies", 1970),
    ("eighties", 1980),
    ("nineties", 1990),
];

/// Words after which a decade word speaks of an age ("in his forties"), not of films.
const POSSESSIVES: [&str; 7] = ["his", "her", "their", "my", "your", "its", "our"];

/// Reads the intent of `query`.
pub fn parse(query: &str) -> QueryIntent {
    let words = words(query);
    let mut intent = QueryIntent {
        like: like_title(&words),
        ..QueryIntent::default()
    };
    for (i, word) in words.iter().enumerate() {
        let after_possessive = i > 0 && POSSESSIVES.contains(&words[i - 1].as_str());
        let decade = decade_number(word).or_else(|| {
            DECADE_WORDS
                .iter()
                .find(|(w, _)| w == word)
                .filter(|_| !after_possessive)
                .map(|&(_, d)| d)
        });
        if let Some(decade) = decade {
            if !intent.decades.contains(&decade) {
                intent.decades.push(decade);
            }
        }
    }
    // Phrases are matched on the words joined by single spaces, at word boundaries.
    let text = format!(" {} ", words.join(" "));
    for (phrase, genre) in GENRE_WORDS {
        if text.contains(&format!(" {phrase} ")) && !intent.genres.contains(&genre) {
            intent.genres.push(genre);
        }
    }
    // "rom-com" and "romcom" name a comedy too.
    if (text.contains(" romcom ") || text.contains(" rom-com "))
        && !intent.genres.contains(&"Comedy")
    {
        intent.genres.push("Comedy");
    }
    intent
}

/// The query's words: lower case, split at whitespace and punctuation other than the hyphen
/// and the apostrophe inside a word ("sci-fi", "90's").
fn words(query: &str) -> Vec<String> {
    query
        .to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\''))
        .map(|w| w.trim_matches(|c| c == '-' || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The decade a word such as "90s", "90's", "'90s" or "1990s" names. Two-digit decades from
/// 30s to 90s are the 1900s and "00s"/"10s" the 2000s; "20s" is left alone (1920s or 2020s).
fn decade_number(word: &str) -> Option<u16> {
    let digits = word.strip_suffix("'s").or_else(|| word.strip_suffix('s'))?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !digits.ends_with('0') {
        return None;
    }
    let number: u16 = digits.parse().ok()?;
    match digits.len() {
        4 if (1880..=2090).contains(&number) => Some(number),
        2 if number >= 30 => Some(1900 + number),
        2 if number <= 10 => Some(2000 + number),
        _ => None,
    }
}

/// The title after an opening like "movies like" or "something similar to", if the query
/// opens so and names something after it.
fn like_title(words: &[String]) -> Option<String> {
    let mut i = 0;
    while i < words.len() && LIKE_OPENERS.contains(&words[i].as_str()) {
        i += 1;
    }
    let rest = match words.get(i).map(String::as_str) {
        Some("like") => &words[i + 1..],
        Some("similar") if words.get(i + 1).map(String::as_str) == Some("to") => &words[i + 2..],
        _ => return None,
    };
    (!rest.is_empty()).then(|| rest.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_movie_to_start_from() {
        assert_eq!(
            parse("movies like the matrix").like.as_deref(),
            Some("the matrix")
        );
        assert_eq!(parse("Similar to Amélie").like.as_deref(), Some("amélie"));
        assert_eq!(
            parse("show me some films similar to toy story 2")
                .like
                .as_deref(),
            Some("toy story 2")
        );
        assert_eq!(parse("like Heat").like.as_deref(), Some("heat"));
        // Not an opening: "like" in the middle of a description, or nothing after it.
        assert_eq!(parse("a dog that acts like a person").like, None);
        assert_eq!(parse("movies like").like, None);
        assert_eq!(parse("the matrix").like, None);
    }

    #[test]
    fn reads_decades_in_digits_and_words() {
        assert_eq!(parse("90s sci-fi comedies").decades, vec![1990]);
        assert_eq!(parse("films from the 1980s").decades, vec![1980]);
        assert_eq!(parse("'70s and 80's cop movies").decades, vec![1970, 1980]);
        assert_eq!(parse("2000s romance").decades, vec![2000]);
        assert_eq!(parse("set in the sixties").decades, vec![1960]);
        // An age, a year and an ambiguous decade are not decades.
        assert!(parse("a man in his forties").decades.is_empty());
        assert!(parse("released in 1995").decades.is_empty());
        assert!(parse("the roaring 20s").decades.is_empty());
        assert!(parse("ocean's 11").decades.is_empty());
    }

    #[test]
    fn reads_genre_words_and_leaves_ambiguous_ones() {
        assert_eq!(
            parse("90s sci-fi comedies").genres,
            vec!["Sci-Fi", "Comedy"]
        );
        assert_eq!(parse("Science Fiction classics").genres, vec!["Sci-Fi"]);
        assert_eq!(
            parse("a fish lost in the ocean, animated").genres,
            vec!["Animation"]
        );
        assert_eq!(
            parse("a rom-com in new york").genres,
            vec!["Romance", "Comedy"]
        );
        assert!(parse("space travel and futuristic wars").genres.is_empty());
        assert!(parse("mafia family crime saga").genres.is_empty());
        assert_eq!(parse("a world war two war film").genres, vec!["War"]);
    }

    #[test]
    fn boosts_by_the_share_of_named_genres_and_the_decade() {
        let intent = parse("90s sci-fi comedies");
        let genres = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let both = genres(&["Comedy", "Sci-Fi"]);
        assert!((intent.boost(Some(1997), &both, 0.1, 0.2) - 0.3).abs() < 1e-6);
        assert!((intent.boost(Some(1985), &genres(&["Comedy"]), 0.1, 0.2) - 0.1).abs() < 1e-6);
        assert_eq!(intent.boost(None, &genres(&["Drama"]), 0.1, 0.2), 0.0);
        assert_eq!(
            parse("a quiet story").boost(Some(1997), &both, 0.1, 0.2),
            0.0
        );
        assert!(parse("a quiet story").is_empty());
    }
}
