//! Who a request is for: a known user, or a new person given by likes and dislikes (by
//! movieId or forgiving title), ratings (inline or a CSV file) and saved profiles — resolved
//! into the history the models fold in at query time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::profiles::ProfileRating;
use crate::profiles::ProfileStore;
use crate::rank::stack::{Person, ServingStack};
use crate::store::MovieIndex;

use crate::catalog::Catalog;
use crate::data::{split_year, RATING_RANGE};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// Where saved profiles live unless told otherwise.
pub const DEFAULT_PROFILES_DIR: &str = "profiles";

/// A movie named by a request: its MovieLens movieId, or a title matched forgivingly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovieRef {
    /// A movieId.
    Id(u32),
    /// A title (case, punctuation, articles and year forgiven).
    Title(String),
}

/// Who a request is for. Empty: nobody. A known `user` excludes every other field; the other
/// sources add up (the last rating of a movie wins).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersonSpec {
    /// A MovieLens userId of the index.
    pub user: Option<u32>,
    /// Movies liked (movieId or title), rated [`LIKE_RATING`].
    pub likes: Vec<String>,
    /// Movies disliked (movieId or title), rated [`DISLIKE_RATING`].
    pub dislikes: Vec<String>,
    /// Ratings given inline.
    pub ratings: Vec<ProfileRating>,
    /// A CSV file of `movieId,rating` lines (the CLI's `--ratings`; never set from a network
    /// request).
    pub ratings_file: Option<PathBuf>,
    /// A saved profile's name.
    pub profile: Option<String>,
}

impl PersonSpec {
    /// A known user.
    pub fn user(user: u32) -> PersonSpec {
        PersonSpec {
            user: Some(user),
            ..PersonSpec::default()
        }
    }

    /// Whether nobody is described.
    pub fn is_empty(&self) -> bool {
        self.user.is_none()
            && self.likes.is_empty()
            && self.dislikes.is_empty()
            && self.ratings.is_empty()
            && self.ratings_file.is_none()
            && self.profile.is_none()
    }

    /// Refuses a user combined with a new person's ratings, and inline ratings out of range.
    pub fn validate(&self) -> Result<()> {
        let new_person = PersonSpec {
            user: None,
            ..self.clone()
        };
        if self.user.is_some() && !new_person.is_empty() {
            return Err(Error::InvalidArgument {
                name: "--user".into(),
                message: "a known user cannot be combined with --like, --dislike, --ratings or \
                          --profile"
                    .into(),
            });
        }
        for (i, r) in self.ratings.iter().enumerate() {
            check_rating(r.rating, Path::new("ratings"), i + 1)?;
        }
        Ok(())
    }
}

/// Resolves `spec` (not empty) against `index`. A profile is looked up in `store` first, then
/// as a JSON file under `profiles`.
pub fn resolve(
    index: &MovieIndex,
    stack: &ServingStack,
    spec: &PersonSpec,
    profiles: &Path,
    store: Option<&ProfileStore>,
) -> Result<Person> {
    let catalog = index.catalog();
    if let Some(user) = spec.user {
        check_user(stack, user, index.dir())?;
        return Ok(Person::User(user));
    }
    // Each source is checked on its own, so that an unknown movie names its file.
    let mut history: Vec<(u32, f32)> = Vec::new();
    if let Some(name) = &spec.profile {
        let stored = match store {
            Some(store) => store
                .ratings(name)?
                .map(|r| (stored_ratings_known(catalog, r), store.url())),
            None => None,
        };
        let (ratings, source) = match stored {
            Some(found) => found,
            None => {
                let path = profile_path(profiles, name)?;
                if !path.is_file() {
                    let store = store
                        .map(|s| format!("no profile '{name}' in {} and ", s.url()))
                        .unwrap_or_default();
                    return Err(Error::InvalidArgument {
                        name: "--profile".into(),
                        message: format!(
                            "{store}no profile file {} (a JSON file {{\"name\", \"ratings\": \
                             [{{\"movie_id\", \"rating\"}}]}})",
                            path.display()
                        ),
                    });
                }
                (Profile::load(&path)?.ratings, path.display().to_string())
            }
        };
        history.extend(history_of(catalog, &ratings, &source)?);
    }
    if let Some(file) = &spec.ratings_file {
        let ratings = read_ratings_csv(file)?;
        history.extend(history_of(catalog, &ratings, &file.display().to_string())?);
    }
    history.extend(history_of(catalog, &spec.ratings, "ratings")?);
    for (flag, movies, rating) in [
        ("--like", &spec.likes, LIKE_RATING),
        ("--dislike", &spec.dislikes, DISLIKE_RATING),
    ] {
        for movie in movies {
            history.push((find_movie(catalog, movie, flag)? as u32, rating));
        }
    }
    if history.is_empty() {
        return Err(Error::InvalidArgument {
            name: "--profile".into(),
            message: "the person has no rating".into(),
        });
    }
    Ok(Person::Profile(latest_ratings(history)))
}

/// The ratings of a stored profile whose movies `catalog` holds. The store checked each movie
/// when it was rated; one gone from a newer generation is left out rather than refused, so a
/// rebuild never locks a person out of their profile.
pub fn stored_ratings_known(catalog: &Catalog, ratings: Vec<ProfileRating>) -> Vec<ProfileRating> {
    ratings
        .into_iter()
        .filter(|r| catalog.position(r.movie_id).is_some())
        .collect()
}

/// Refuses a `--user` the serving stack has no rating of.
pub fn check_user(stack: &ServingStack, user: u32, index: &Path) -> Result<()> {
    if stack.knows_user(user) {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name: "--user".into(),
            message: format!(
                "{user}: no such userId among the ratings of index {}",
                index.display()
            ),
        })
    }
}

/// The catalogue position of a movie given by id (`--movie`) or title (`--title`).
pub fn movie_position(index: &MovieIndex, movie: &MovieRef) -> Result<usize> {
    match movie {
        MovieRef::Id(id) => index
            .catalog()
            .position(*id)
            .ok_or_else(|| Error::InvalidArgument {
                name: "--movie".into(),
                message: format!("{id}: no such movieId in index {}", index.dir().display()),
            }),
        MovieRef::Title(title) => find_movie(index.catalog(), title, "--title"),
    }
}

/// Rating given by `--like`.
pub const LIKE_RATING: f32 = 5.0;
/// Rating given by `--dislike`.
pub const DISLIKE_RATING: f32 = 1.0;

/// A title reduced for comparison: lowercase words, a trailing article moved to the front
/// ("Matrix, The" → "the matrix"), alternative titles in parentheses and punctuation dropped.
fn normalize(title: &str) -> String {
    let lower = title.to_lowercase();
    // "City of Lost Children, The (Cité des enfants perdus, La)": keep the part before '('.
    let main = lower.split('(').next().unwrap_or("").trim();
    // MovieLens' trailing articles, German and Spanish included. Not the keyword index's
    // article list: that one drops words from title matching, where "die" is English.
    let main = [
        "the", "a", "an", "les", "la", "le", "l'", "der", "die", "das", "el",
    ]
    .iter()
    .find_map(|article| {
        main.strip_suffix(&format!(", {article}"))
            .map(|rest| format!("{article} {rest}"))
    })
    .unwrap_or_else(|| main.to_string());
    main.chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The catalogue position of a movie given by movieId or by title. Titles match ignoring
/// case, punctuation, a trailing article and alternative titles; the year is optional. An
/// unknown or ambiguous title is an error naming `flag` and the candidates.
pub fn find_movie(catalog: &Catalog, text: &str, flag: &str) -> Result<usize> {
    if let Ok(id) = text.trim().parse::<u32>() {
        if let Some(position) = catalog.position(id) {
            return Ok(position);
        }
    }
    let (title, year) = split_year(text);
    let wanted = normalize(title);
    let bad = |message: String| Error::InvalidArgument {
        name: flag.into(),
        message,
    };
    if wanted.is_empty() {
        return Err(bad(format!("'{text}' is neither a movieId nor a title")));
    }
    let matches: Vec<usize> = catalog
        .movies
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            let (own, own_year) = split_year(&e.movie.title);
            normalize(own) == wanted && year.is_none_or(|y| own_year == Some(y))
        })
        .map(|(p, _)| p)
        .collect();
    let describe = |p: &usize| {
        let m = &catalog.movies[*p].movie;
        format!("{} [movieId {}]", m.title, m.id)
    };
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => {
            let similar: Vec<String> = catalog
                .movies
                .iter()
                .enumerate()
                .filter(|(_, e)| normalize(&e.movie.title).contains(&wanted))
                .take(5)
                .map(|(p, _)| describe(&p))
                .collect();
            let hint = if similar.is_empty() {
                String::new()
            } else {
                format!("; titles containing it: {}", similar.join(", "))
            };
            Err(bad(format!("no movie titled '{text}'{hint}")))
        }
        many => Err(bad(format!(
            "'{text}' is ambiguous: {}; add the year or use the movieId",
            many.iter().map(describe).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A new user's saved ratings (`profiles/NAME.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// Ratings, later ones overriding earlier ones for the same movie.
    pub ratings: Vec<ProfileRating>,
}

/// The file of profile `name` under `dir`; names are letters, digits, '-' and '_'.
pub fn profile_path(dir: &Path, name: &str) -> Result<PathBuf> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(Error::InvalidArgument {
            name: "--profile".into(),
            message: format!("'{name}': use letters, digits, '-' and '_' only"),
        });
    }
    Ok(dir.join(format!("{name}.json")))
}

fn check_rating(rating: f32, path: &Path, line: usize) -> Result<()> {
    if RATING_RANGE.contains(&rating) {
        Ok(())
    } else {
        Err(Error::InvalidRow {
            file: path.to_path_buf(),
            line,
            field: "rating".into(),
            problem: format!(
                "{rating} is outside {}..={}",
                RATING_RANGE.start(),
                RATING_RANGE.end()
            ),
        })
    }
}

impl Profile {
    /// Writes the profile as JSON, atomically, creating its directory if needed.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::Json {
            path: path.to_path_buf(),
            error: e,
        })?;
        write_atomic(path, &json)
    }

    /// Reads a saved profile, checking every rating.
    pub fn load(path: &Path) -> Result<Profile> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let profile: Profile = serde_json::from_slice(&bytes).map_err(|e| Error::Json {
            path: path.to_path_buf(),
            error: e,
        })?;
        for (i, r) in profile.ratings.iter().enumerate() {
            check_rating(r.rating, path, i + 1)?;
        }
        Ok(profile)
    }
}

/// Reads `movieId,rating` lines (a header line first) from a CSV file.
pub fn read_ratings_csv(path: &Path) -> Result<Vec<ProfileRating>> {
    let mut ratings = Vec::new();
    crate::data::csv::for_each_row(path, &["movieId", "rating"], |line, fields| {
        let bad = |field: &str, problem: String| Error::InvalidRow {
            file: path.to_path_buf(),
            line,
            field: field.into(),
            problem,
        };
        let (id, rating) = (fields[0], fields[1]);
        let movie_id = id
            .parse()
            .map_err(|_| bad("movieId", format!("'{id}' is not a movieId")))?;
        let rating: f32 = rating
            .parse()
            .map_err(|_| bad("rating", format!("'{rating}' is not a number")))?;
        check_rating(rating, path, line)?;
        ratings.push(ProfileRating { movie_id, rating });
        Ok(())
    })?;
    Ok(ratings)
}

/// The history ((catalogue position, rating), each movie once, the last rating winning) of
/// `ratings`; an unknown movieId is an error naming `source`.
pub fn history_of(
    catalog: &Catalog,
    ratings: &[ProfileRating],
    source: &str,
) -> Result<Vec<(u32, f32)>> {
    let positions = ratings
        .iter()
        .map(|r| {
            let position = catalog
                .position(r.movie_id)
                .ok_or_else(|| Error::InvalidArgument {
                    name: source.into(),
                    message: format!("movieId {} is not in the catalogue", r.movie_id),
                })?;
            Ok((position as u32, r.rating))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(latest_ratings(positions))
}

/// Each movie of `entries` ((position, rating)) once, at its first place, with its last
/// rating.
pub fn latest_ratings(entries: impl IntoIterator<Item = (u32, f32)>) -> Vec<(u32, f32)> {
    let mut history: Vec<(u32, f32)> = Vec::new();
    let mut seen: HashMap<u32, usize> = HashMap::new();
    for (position, rating) in entries {
        match seen.get(&position) {
            Some(&i) => history[i].1 = rating,
            None => {
                seen.insert(position, history.len());
                history.push((position, rating));
            }
        }
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_titles_forgivingly() {
        assert_eq!(normalize("Matrix, The"), "the matrix");
        assert_eq!(normalize("the matrix"), "the matrix");
        assert_eq!(
            normalize("City of Lost Children, The (Cité des enfants perdus, La)"),
            "the city of lost children"
        );
        assert_eq!(normalize("Monsters, Inc."), "monsters inc");
    }

    #[test]
    fn reads_rating_files_with_located_errors() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let path = dir.path().join("r.csv");
        write_atomic(&path, b"movieId,rating\n1,4.5\n\n260,5\n")?;
        let ratings = read_ratings_csv(&path)?;
        assert_eq!(ratings.len(), 2);
        assert_eq!(ratings[1].movie_id, 260);
        // Columns in any order, extra columns, a BOM and quoted values are fine.
        write_atomic(
            &path,
            "\u{feff}userId,rating,movieId\n7,\"4.0\",\"318\"\n".as_bytes(),
        )?;
        let ratings = read_ratings_csv(&path)?;
        assert_eq!((ratings[0].movie_id, ratings[0].rating), (318, 4.0));
        write_atomic(&path, b"movieId,rating\n1,4.5\n2,9\n")?;
        let error = read_ratings_csv(&path).expect_err("out of range");
        assert!(error.to_string().contains("line 3"), "{error}");
        write_atomic(&path, b"id,score\n")?;
        let error = read_ratings_csv(&path).expect_err("no movieId column");
        assert!(error.to_string().contains("movieId"), "{error}");
        write_atomic(&path, b"movieId,rating\n1,4.5,3\n")?;
        let error = read_ratings_csv(&path).expect_err("three fields");
        assert!(error.to_string().contains("line 2"), "{error}");
        assert!(profile_path(dir.path(), "../x").is_err());
        Ok(())
    }

    #[test]
    fn the_last_rating_of_a_movie_wins_at_its_first_place() {
        let merged = latest_ratings([(7, 5.0), (3, 2.0), (7, 1.0), (9, 4.0)]);
        assert_eq!(merged, vec![(7, 1.0), (3, 2.0), (9, 4.0)]);
    }

    #[test]
    fn saved_profiles_load_back() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let path = profile_path(&dir.path().join("profiles"), "ana")?;
        let profile = Profile {
            name: "ana".into(),
            ratings: vec![ProfileRating {
                movie_id: 260,
                rating: 4.5,
            }],
        };
        profile.save(&path)?;
        assert_eq!(Profile::load(&path)?, profile);
        Ok(())
    }

    #[test]
    fn stored_ratings_of_movies_gone_from_the_index_are_left_out() {
        use crate::catalog::{test_entry, PopularityParams};
        let entry = |id| test_entry(id, 1);
        let catalog = Catalog::new(
            PopularityParams { m: 1.0, c: 3.0 },
            vec![entry(1), entry(3)],
        );
        let rating = |movie_id: u32| ProfileRating {
            movie_id,
            rating: 4.0,
        };
        let kept = stored_ratings_known(&catalog, vec![rating(3), rating(2), rating(1)]);
        assert_eq!(kept, vec![rating(3), rating(1)]);
    }
}
