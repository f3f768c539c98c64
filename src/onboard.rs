//! `reelrank onboard`: the new-user flow of notebook 003 in a terminal. Phase one shows
//! popular movies spread across genres to rate; phase two shows the first recommendations to
//! refine; then the final recommendations are shown and the profile is saved in the profile
//! database, so that `--profile NAME` works with `search` and `recommend` afterwards.
//!
//! The flow reads lines from any [`BufRead`] and writes to any [`Write`]: the CLI passes the
//! terminal, tests a script.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::Path;

use crate::engine::person::{history_of, profile_path, Profile, ProfileRating};
use crate::engine::recommend::recommend;
use crate::engine::Response;
use crate::error::{Error, Result};
use crate::present::response_table;
use crate::profiles::ProfileStore;
use crate::rank::stack::{Person, ServingStack};
use crate::store::MovieIndex;

/// The rating "interested" stands for (the notebook's ~4 stars).
const INTERESTED: f32 = 4.0;
/// The rating "not interested" stands for (the notebook's ~2 stars).
const NOT_INTERESTED: f32 = 2.0;
/// Genres that are not a taste.
const NO_GENRE: &str = "(no genres listed)";

/// How many movies each phase shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnboardConfig {
    /// Movies to rate in phase one.
    pub to_rate: usize,
    /// Genres phase one draws from (the most watched ones).
    pub genres: usize,
    /// Earliest release year in phase one (the notebook's 1990: recognisable films).
    pub min_year: u16,
    /// Recommendations shown to refine in phase two.
    pub to_refine: usize,
    /// Final recommendations.
    pub recommendations: usize,
}

impl Default for OnboardConfig {
    fn default() -> Self {
        OnboardConfig {
            to_rate: 30,
            genres: 8,
            min_year: 1990,
            to_refine: 20,
            recommendations: 10,
        }
    }
}

/// One answer to "how did you like it?".
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    /// A rating in 0.5..=5.
    Rate(f32),
    /// Not seen, or no opinion.
    Skip,
    /// End this phase.
    Next,
    /// End the flow now (what was rated is kept).
    Quit,
}

/// Reads one answer: `1`–`5` (decimals allowed), `i` interested (4), `n` not interested (2),
/// `s` or an empty line to skip, `d` for the next phase, `q` to quit.
pub fn parse_answer(line: &str) -> Option<Answer> {
    let text = line.trim().to_lowercase();
    match text.as_str() {
        "" | "s" | "skip" => Some(Answer::Skip),
        "d" | "done" | "next" => Some(Answer::Next),
        "q" | "quit" => Some(Answer::Quit),
        "i" => Some(Answer::Rate(INTERESTED)),
        "n" => Some(Answer::Rate(NOT_INTERESTED)),
        _ => text
            .parse::<f32>()
            .ok()
            .filter(|r| (0.5..=5.0).contains(r))
            .map(Answer::Rate),
    }
}

/// How the flow ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Onboarded {
    /// The saved profile.
    pub profile: Profile,
    /// The final recommendations (absent when nothing was rated).
    pub recommendations: Option<Response>,
}

/// Popular movies spread across genres: the `config.genres` most watched genres take turns,
/// each giving its most watched movie not yet chosen, released in `config.min_year` or later,
/// and not in `exclude`.
pub fn diverse_popular(
    index: &MovieIndex,
    stack: &ServingStack,
    config: &OnboardConfig,
    exclude: &HashSet<u32>,
) -> Vec<u32> {
    let movies = &index.catalog().movies;
    let watched = |p: usize| stack.watch_share(p as u32);
    let mut genres: Vec<(String, f64)> = Vec::new();
    for (p, entry) in movies.iter().enumerate() {
        for genre in entry.movie.genres.iter().filter(|g| *g != NO_GENRE) {
            match genres.iter_mut().find(|(g, _)| g == genre) {
                Some(slot) => slot.1 += watched(p),
                None => genres.push((genre.clone(), watched(p))),
            }
        }
    }
    genres.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    genres.truncate(config.genres);
    let mut by_popularity: Vec<usize> = (0..movies.len())
        .filter(|&p| {
            movies[p].movie.year.is_some_and(|y| y >= config.min_year)
                && !exclude.contains(&(p as u32))
                && watched(p) > 0.0
        })
        .collect();
    by_popularity.sort_by(|&a, &b| watched(b).total_cmp(&watched(a)).then(a.cmp(&b)));
    let mut queues: Vec<std::collections::VecDeque<usize>> = genres
        .iter()
        .map(|(genre, _)| {
            by_popularity
                .iter()
                .copied()
                .filter(|&p| movies[p].movie.genres.contains(genre))
                .collect()
        })
        .collect();
    let mut chosen: Vec<u32> = Vec::new();
    let mut seen: HashSet<u32> = HashSet::new();
    while chosen.len() < config.to_rate && queues.iter().any(|q| !q.is_empty()) {
        for queue in &mut queues {
            while let Some(p) = queue.pop_front() {
                if seen.insert(p as u32) {
                    chosen.push(p as u32);
                    break;
                }
            }
            if chosen.len() == config.to_rate {
                break;
            }
        }
    }
    chosen
}

/// The terminal side of the flow: prompts out, answers in.
struct Dialogue<'a> {
    input: &'a mut dyn BufRead,
    output: &'a mut dyn Write,
}

impl Dialogue<'_> {
    fn say(&mut self, text: &str) -> Result<()> {
        writeln!(self.output, "{text}").map_err(|e| Error::io("<stdout>", e))
    }

    /// Asks until the answer parses; the end of the input counts as quitting.
    fn ask(&mut self, prompt: &str) -> Result<Answer> {
        loop {
            write!(self.output, "{prompt} ").map_err(|e| Error::io("<stdout>", e))?;
            self.output.flush().map_err(|e| Error::io("<stdout>", e))?;
            let mut line = String::new();
            let read = self
                .input
                .read_line(&mut line)
                .map_err(|e| Error::io("<stdin>", e))?;
            if read == 0 {
                self.say("")?;
                return Ok(Answer::Quit);
            }
            match parse_answer(&line) {
                Some(answer) => return Ok(answer),
                None => self.say(&format!(
                    "'{}': answer 1-5 (decimals allowed), i(nterested), n(ot interested), s(kip), d(one with this phase) or q(uit)",
                    line.trim()
                ))?,
            }
        }
    }
}

/// Asks for a rating of each of `movies`, recording answers in `ratings`; returns whether
/// the person quit.
fn rate_movies(
    dialogue: &mut Dialogue,
    index: &MovieIndex,
    movies: &[u32],
    ratings: &mut Vec<ProfileRating>,
) -> Result<bool> {
    let catalog = &index.catalog().movies;
    for (i, &p) in movies.iter().enumerate() {
        let movie = &catalog[p as usize].movie;
        let prompt = format!(
            "[{}/{}] {} — {} · rating?",
            i + 1,
            movies.len(),
            movie.title,
            movie.genres.join(", ")
        );
        match dialogue.ask(&prompt)? {
            Answer::Rate(rating) => {
                ratings.retain(|r| r.movie_id != movie.id);
                ratings.push(ProfileRating {
                    movie_id: movie.id,
                    rating,
                });
            }
            Answer::Skip => {}
            Answer::Next => return Ok(false),
            Answer::Quit => return Ok(true),
        }
    }
    Ok(false)
}

/// Where onboarding keeps the profile it makes.
pub enum ProfileHome<'a> {
    /// The profile database (what the CLI uses).
    Store(&'a ProfileStore),
    /// A JSON file (`profiles/NAME.json`, the format before the database).
    File(&'a Path),
}

impl ProfileHome<'_> {
    /// Where it is, for messages.
    fn describe(&self) -> String {
        match self {
            ProfileHome::Store(store) => store.url(),
            ProfileHome::File(path) => path.display().to_string(),
        }
    }

    /// Saves `profile` whole: its ratings in one transaction of the database, or the file
    /// replaced atomically.
    fn save(&self, profile: &Profile) -> Result<()> {
        match self {
            ProfileHome::Store(store) => {
                store.ensure_profile(&profile.name)?;
                store.set_ratings(&profile.name, &profile.ratings)?;
                Ok(())
            }
            ProfileHome::File(path) => profile.save(path),
        }
    }
}

/// Runs [`onboard`] for the profile `name` of `store` (created, or extended if it exists
/// there; a profile file of that name under `dir` is taken in if the store has none) with the
/// engine's index and serving stack.
pub fn onboard_profile(
    engine: &crate::engine::Engine,
    store: &ProfileStore,
    dir: &Path,
    name: &str,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    config: &OnboardConfig,
) -> Result<Onboarded> {
    let ratings = match store.ratings(name)? {
        Some(ratings) => ratings,
        None => {
            let path = profile_path(dir, name)?;
            if path.is_file() {
                Profile::load(&path)?.ratings
            } else {
                Vec::new()
            }
        }
    };
    let profile = Profile {
        name: name.to_string(),
        ratings,
    };
    onboard(
        engine.index(),
        engine.stack()?,
        profile,
        &ProfileHome::Store(store),
        input,
        output,
        config,
    )
}

/// Runs the flow for `profile` (new, or loaded to be extended) and saves it to `home` at the
/// end, whether the person finished or quit.
pub fn onboard(
    index: &MovieIndex,
    stack: &ServingStack,
    mut profile: Profile,
    home: &ProfileHome,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    config: &OnboardConfig,
) -> Result<Onboarded> {
    let catalog = index.catalog();
    let mut dialogue = Dialogue { input, output };
    dialogue.say(&format!(
        "Profile '{}': {} ratings so far. Rate movies you have seen: 1-5 (decimals allowed), i = interested, n = not interested, s = skip (not seen), d = next phase, q = quit.",
        profile.name,
        profile.ratings.len()
    ))?;
    let rated = |ratings: &[ProfileRating]| -> Result<Vec<(u32, f32)>> {
        history_of(catalog, ratings, &home.describe())
    };
    let exclude: HashSet<u32> = rated(&profile.ratings)?.iter().map(|h| h.0).collect();
    let pool = diverse_popular(index, stack, config, &exclude);
    dialogue.say(&format!(
        "\nPhase 1 of 2: {} popular movies across genres.",
        pool.len()
    ))?;
    let mut quit = rate_movies(&mut dialogue, index, &pool, &mut profile.ratings)?;
    if !quit && !profile.ratings.is_empty() {
        let person = Person::Profile(rated(&profile.ratings)?);
        let first = recommend(index, stack, &person, config.to_refine, None);
        let movies: Vec<u32> = first
            .results
            .iter()
            .filter_map(|r| catalog.position(r.movie_id).map(|p| p as u32))
            .collect();
        dialogue.say(&format!(
            "\nPhase 2 of 2: your first {} recommendations. Rate those you have seen to refine them.",
            movies.len()
        ))?;
        quit = rate_movies(&mut dialogue, index, &movies, &mut profile.ratings)?;
    }
    let recommendations = if profile.ratings.is_empty() {
        dialogue.say("\nNo ratings yet: nothing to recommend from.")?;
        None
    } else {
        let person = Person::Profile(rated(&profile.ratings)?);
        let response = recommend(index, stack, &person, config.recommendations, None);
        if !quit {
            dialogue.say("\nYour recommendations:")?;
            dialogue.say(&response_table(&response))?;
        }
        Some(response)
    };
    home.save(&profile)?;
    dialogue.say(&format!(
        "Saved {} ratings to {} (use --profile {} with search and recommend).",
        profile.ratings.len(),
        home.describe(),
        profile.name
    ))?;
    Ok(Onboarded {
        profile,
        recommendations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_answers() {
        assert_eq!(parse_answer("4\n"), Some(Answer::Rate(4.0)));
        assert_eq!(parse_answer(" 3.5 "), Some(Answer::Rate(3.5)));
        assert_eq!(parse_answer("I"), Some(Answer::Rate(INTERESTED)));
        assert_eq!(parse_answer("n"), Some(Answer::Rate(NOT_INTERESTED)));
        assert_eq!(parse_answer(""), Some(Answer::Skip));
        assert_eq!(parse_answer("d"), Some(Answer::Next));
        assert_eq!(parse_answer("quit"), Some(Answer::Quit));
        assert_eq!(parse_answer("6"), None);
        assert_eq!(parse_answer("0"), None);
        assert_eq!(parse_answer("great"), None);
    }
}
