//! The engine API on the real index, and the CLI paths that had no test: explain --svg, the
//! stacks, --dislike, similar by movieId and for a person, filters on recommend and similar,
//! build --json, the filtered-HNSW fallback, onboarding an existing profile.

use predicates::prelude::*;
use reelrank::engine::person::{profile_path, Profile, ProfileRating};
use reelrank::engine::{MovieRef, PersonSpec, RecommendRequest, SimilarRequest, MAX_K};
use reelrank::onboard::{onboard_profile, OnboardConfig};
use reelrank::rank::{Filters, YearRange};
use reelrank::Error;

use crate::common::{json_output, real_engine, real_graph_engine, reelrank, tempdir, tiny};

fn cli() -> assert_cmd::Command {
    crate::common::real_cli()
}

fn titles(json: &serde_json::Value) -> Vec<String> {
    json["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["title"].as_str().expect("title").to_string())
        .collect()
}

#[test]
fn explain_svg_charts_every_feature() {
    let dir = tempdir();
    let svg = dir.path().join("importance.svg");
    cli()
        .args(["explain", "--svg"])
        .arg(&svg)
        .assert()
        .success();
    let text = std::fs::read_to_string(&svg).expect("svg written");
    assert!(text.starts_with("<svg"), "{}", &text[..80.min(text.len())]);
    for feature in reelrank::rank::features::ALL_FEATURES {
        assert!(text.contains(feature.name()), "{} missing", feature.name());
    }
}

#[test]
fn each_stack_ranks_and_a_bad_stack_is_refused() {
    let mut rankings = Vec::new();
    for stack in ["logistic", "gbdt", "lambdamart"] {
        let json =
            json_output(cli().args(["search", "heist", "--user", "1", "--stack", stack, "--json"]));
        assert_eq!(json["stack"], stack);
        rankings.push(titles(&json));
    }
    assert!(
        rankings[0] != rankings[1] || rankings[1] != rankings[2],
        "three stacks, one ranking: {rankings:?}"
    );
    cli()
        .args(["search", "heist", "--user", "1", "--stack", "forest"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--stack").and(predicate::str::contains("lambdamart")));
}

#[test]
fn a_dislike_counts_against_its_neighbours() {
    let liked = json_output(cli().args(["recommend", "--like", "Toy Story", "--json"]));
    let both = json_output(cli().args([
        "recommend",
        "--like",
        "Toy Story",
        "--dislike",
        "Toy Story 2",
        "--json",
    ]));
    assert_eq!(both["person"], "profile (2 ratings)");
    assert!(!titles(&both).contains(&"Toy Story 2 (1999)".to_string()));
    assert_ne!(titles(&liked), titles(&both));
}

#[test]
fn similar_by_movie_id_and_for_a_person() {
    let plain = json_output(cli().args(["similar", "--movie", "1", "--json"]));
    let plain_titles = titles(&plain);
    assert!(!plain_titles.contains(&"Toy Story (1995)".to_string()));
    assert!(plain.get("person").is_none(), "{plain}");
    let personal = json_output(cli().args(["similar", "--movie", "1", "--user", "1", "--json"]));
    assert_eq!(personal["person"], "user 1");
    assert_eq!(personal["stack"], "personal_ranker");
    // A stack named on the command line takes the older blend instead.
    let blend = json_output(cli().args([
        "similar", "--movie", "1", "--user", "1", "--stack", "gbdt", "--json",
    ]));
    assert_eq!(blend["stack"], "gbdt");
    // User 1's rated movies are left out.
    let engine = real_engine();
    let stack = engine.stack().expect("stack");
    let rated: Vec<u32> = stack
        .history(&reelrank::rank::stack::Person::User(1))
        .iter()
        .map(|&(m, _)| engine.index().catalog().movies[m as usize].movie.id)
        .collect();
    for r in personal["results"].as_array().expect("results") {
        let id = r["movie_id"].as_u64().expect("id") as u32;
        assert!(!rated.contains(&id), "user 1 rated {id}");
    }
}

#[test]
fn recommend_and_similar_take_the_search_filters() {
    let engine = real_engine();
    let filters = Filters {
        genres: vec!["Documentary".into()],
        years: Some(YearRange {
            from: Some(2000),
            to: None,
        }),
    };
    let mut request = RecommendRequest::new(PersonSpec::user(414));
    request.filters = filters.clone();
    let response = engine.recommend(&request).expect("recommend");
    assert_eq!(response.results.len(), 10);
    for r in &response.results {
        assert!(r.genres.iter().any(|g| g == "Documentary"), "{}", r.title);
        assert!(r.year >= Some(2000), "{}", r.title);
    }
    let mut similar = SimilarRequest::new(MovieRef::Title("Toy Story".into()));
    similar.filters = Filters {
        genres: vec![],
        years: Some(YearRange::parse("..1990").expect("range")),
    };
    let response = engine.similar(&similar).expect("similar");
    assert_eq!(response.results.len(), 10);
    assert!(response.results.iter().all(|r| r.year <= Some(1990)));
    // The same validation as search.
    similar.filters.genres = vec!["Cartoons".into()];
    let error = engine.similar(&similar).expect_err("unknown genre");
    assert!(error.to_string().contains("--genre"), "{error}");
    similar.filters.genres.clear();
    similar.k = MAX_K + 1;
    assert!(matches!(
        engine.similar(&similar),
        Err(Error::InvalidArgument { .. })
    ));
    cli()
        .args(["recommend", "--user", "1", "--genre", "Western", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Western"));
}

#[test]
fn filtered_retrieval_returns_every_match_it_is_asked_for() {
    // The graph-walk fallback itself is unit-tested with a stand-in graph in src/engine.
    let engine = real_graph_engine();
    let vector = engine.encoder().embed("a tense chase").expect("embed");
    // At ml-latest-small's size the default engine scans exactly, filtered or not.
    let thriller = Filters {
        genres: vec!["Thriller".into()],
        years: None,
    };
    assert_eq!(
        real_engine().retrieve(&vector, 20, &thriller, false).1,
        "exact"
    );
    for (genre, path) in [("Thriller", "hnsw"), ("Documentary", "exact")] {
        let filters = Filters {
            genres: vec![genre.into()],
            years: None,
        };
        let matching = engine
            .index()
            .catalog()
            .movies
            .iter()
            .filter(|e| filters.matches(&e.movie))
            .count();
        let (hits, how) = engine.retrieve(&vector, 20, &filters, false);
        assert_eq!((hits.len(), how), (20, path), "{genre}");
        let (all, _) = engine.retrieve(&vector, matching + 100, &filters, false);
        assert_eq!(all.len(), matching, "{genre}");
    }
}

#[test]
fn build_json_prints_the_manifest() {
    let data = tiny();
    let out = tempdir();
    let json = json_output(
        reelrank()
            .args(["build", "--json", "--seed", "7"])
            .arg("--data")
            .arg(data.path())
            .arg("--index")
            .arg(out.path().join("index")),
    );
    assert_eq!(json["format"], "reelrank-index");
    assert_eq!(json["counts"]["movies"], 6);
    assert_eq!(json["stack"]["seed"], 7);
    assert_eq!(json["files"].as_array().map(Vec::len), Some(6));
}

#[test]
fn onboarding_extends_an_existing_profile_without_asking_again() {
    let engine = real_engine();
    let dir = tempdir();
    let path = profile_path(dir.path(), "known").expect("path");
    let first_pool = reelrank::onboard::diverse_popular(
        engine.index(),
        engine.stack().expect("stack"),
        &OnboardConfig::default(),
        &Default::default(),
    );
    let already = engine.index().catalog().movies[first_pool[0] as usize]
        .movie
        .id;
    Profile {
        name: "known".into(),
        ratings: vec![ProfileRating {
            movie_id: already,
            rating: 4.5,
        }],
    }
    .save(&path)
    .expect("save");
    let mut output = Vec::new();
    let store = reelrank::profiles::ProfileStore::open(&reelrank::profiles::StoreUrl::Sqlite(
        dir.path().join("people.sqlite"),
    ))
    .expect("store");
    onboard_profile(
        engine,
        &store,
        dir.path(),
        "known",
        &mut "5\nq\n".as_bytes(),
        &mut output,
        &OnboardConfig::default(),
    )
    .expect("onboard");
    let transcript = String::from_utf8(output).expect("utf-8");
    assert!(transcript.contains("1 ratings so far"), "{transcript}");
    let title = &engine.index().catalog().movies[first_pool[0] as usize]
        .movie
        .title;
    assert!(!transcript.contains(title.as_str()), "asked again: {title}");
    // The file's profile was taken into the database and extended there; the file is left
    // as it was.
    let saved = store.ratings("known").expect("read").expect("saved");
    assert_eq!(saved.len(), 2);
    assert_eq!(saved[0].movie_id, already);
    assert_eq!(Profile::load(&path).expect("load").ratings.len(), 1);
}
