//! The onboarding flow driven by a script instead of a terminal: a saved profile that
//! `--profile` reads back, and a refusal without a terminal.

use std::collections::HashSet;
use std::path::Path;

use reelrank::engine::person::Profile;
use reelrank::onboard::{diverse_popular, onboard, OnboardConfig, Onboarded, ProfileHome};
use reelrank::profiles::{ProfileRating, ProfileStore, StoreUrl};

use crate::common::{json_output, real_data, real_engine, real_index_dir, reelrank, tempdir};

/// The profile database of a test directory.
fn store_url(dir: &Path) -> StoreUrl {
    StoreUrl::Sqlite(dir.join("people.sqlite"))
}

/// Runs the flow for a new profile `name` saved in the database under `dir`, answering with
/// `script`; returns the outcome and the transcript.
fn run_script(script: &str, name: &str, dir: &Path) -> (Onboarded, String) {
    let engine = real_engine();
    let store = ProfileStore::open(&store_url(dir)).expect("store");
    let profile = Profile {
        name: name.into(),
        ratings: Vec::new(),
    };
    let mut output = Vec::new();
    let outcome = onboard(
        engine.index(),
        engine.stack().expect("stack"),
        profile,
        &ProfileHome::Store(&store),
        &mut script.as_bytes(),
        &mut output,
        &OnboardConfig::default(),
    )
    .expect("onboard");
    (outcome, String::from_utf8(output).expect("utf-8"))
}

/// The ratings profile `name` has in the database under `dir`.
fn stored(dir: &Path, name: &str) -> Vec<ProfileRating> {
    ProfileStore::open(&store_url(dir))
        .expect("store")
        .ratings(name)
        .expect("read")
        .expect("the profile exists")
}

#[test]
fn phase_one_spreads_popular_movies_across_genres() {
    let engine = real_engine();
    let stack = engine.stack().expect("stack");
    let config = OnboardConfig::default();
    let pool = diverse_popular(engine.index(), stack, &config, &HashSet::new());
    assert_eq!(pool.len(), config.to_rate);
    assert_eq!(pool.iter().collect::<HashSet<_>>().len(), pool.len());
    let movies = &engine.index().catalog().movies;
    let first_genres: HashSet<&str> = pool
        .iter()
        .map(|&p| movies[p as usize].movie.genres[0].as_str())
        .collect();
    assert!(first_genres.len() >= 5, "{first_genres:?}");
    for &p in &pool {
        assert!(movies[p as usize].movie.year >= Some(config.min_year));
    }
    // Already rated movies are not asked again.
    let again = diverse_popular(
        engine.index(),
        stack,
        &config,
        &pool[..5].iter().copied().collect(),
    );
    assert!(again.iter().all(|p| !pool[..5].contains(p)));
}

#[test]
fn a_scripted_session_saves_a_profile_that_recommend_reads() {
    let dir = tempdir();
    // Phase one: 5, 4, a typo (asked again), skip, 1, then next phase; phase two: rate the
    // first recommendation 4, then done.
    let (outcome, transcript) = run_script("5\n4\nsix\ns\n1\nd\n4\nd\n", "scripted", dir.path());
    assert!(transcript.contains("'six': answer 1-5"), "{transcript}");
    assert!(transcript.contains("Phase 2 of 2"), "{transcript}");
    let ratings: Vec<f32> = outcome.profile.ratings.iter().map(|r| r.rating).collect();
    assert_eq!(ratings, [5.0, 4.0, 1.0, 4.0]);

    let saved = stored(dir.path(), "scripted");
    assert_eq!(saved, outcome.profile.ratings);
    let final_ids: Vec<u64> = outcome
        .recommendations
        .expect("recommendations")
        .results
        .iter()
        .map(|r| u64::from(r.movie_id))
        .collect();
    let json = json_output(
        reelrank()
            .arg("--data")
            .arg(real_data())
            .arg("--index")
            .arg(real_index_dir())
            .args(["recommend", "--profile", "scripted", "--store"])
            .arg(format!(
                "sqlite://{}",
                dir.path().join("people.sqlite").display()
            ))
            .arg("--json"),
    );
    let ids: Vec<u64> = json["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["movie_id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, final_ids);
    let rated: HashSet<u64> = saved.iter().map(|r| u64::from(r.movie_id)).collect();
    assert!(ids.iter().all(|id| !rated.contains(id)));
}

#[test]
fn quitting_keeps_what_was_rated_and_the_end_of_input_quits() {
    let dir = tempdir();
    for (script, expected) in [("3\nq\n", 1), ("4.5\n2\n", 2)] {
        let name = format!("quitter{expected}");
        let (outcome, _) = run_script(script, &name, dir.path());
        assert_eq!(outcome.profile.ratings.len(), expected, "{script:?}");
        assert_eq!(stored(dir.path(), &name).len(), expected);
    }
}

#[test]
fn onboarding_without_a_terminal_fails_clearly() {
    let dir = tempdir();
    reelrank()
        .args(["onboard", "--profile", "piped", "--store"])
        .arg(format!(
            "sqlite://{}",
            dir.path().join("people.sqlite").display()
        ))
        .write_stdin("5\n5\n")
        .assert()
        .failure()
        .stderr(predicates::str::contains("not a terminal"));
    assert!(!dir.path().join("people.sqlite").exists());
}
