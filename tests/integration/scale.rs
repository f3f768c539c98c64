//! The whole pipeline on a small generated set in ml-latest's shape (every file, alternative
//! titles, a long tail of tags, users far apart in activity): the large sizes are benchmarks
//! (`scripts/bench_scale.sh`), this one is a test.

use reelrank::data::synthetic::{self, Shape};

use crate::common::{json_output, reelrank, tempdir};

#[test]
fn the_pipeline_runs_on_a_generated_set_in_ml_latest_shape() {
    let root = tempdir();
    let data = root.path().join("data");
    let index = root.path().join("index");
    let summary = synthetic::write(&Shape::ml_latest(40_000, 11), &data).expect("generate");
    assert!(summary.alternative_titles > 0 && summary.tagged_movies > 0);
    let cli = |args: &[&str]| {
        let mut command = reelrank();
        command.arg("--data").arg(&data).arg("--index").arg(&index);
        command.args(args);
        command
    };

    let manifest = json_output(&mut cli(&["-q", "build", "--json"]));
    let counts = &manifest["counts"];
    assert_eq!(counts["movies"], summary.movies);
    assert_eq!(counts["ratings"], summary.ratings);
    assert_eq!(counts["tags"], summary.tags);
    assert_eq!(counts["users"], summary.users);

    // A movie found by its alternative title alone (the longest one, least shared).
    let movies = std::fs::read_to_string(data.join("movies.csv")).expect("movies.csv");
    let mut reader = csv::Reader::from_reader(movies.as_bytes());
    let (id, alternative) = reader
        .records()
        .map(|r| r.expect("row"))
        .filter_map(|r| {
            let title = r[1].to_string();
            // "Main (Other words) (1990)": the first parenthesis that is not the year.
            let open = title.find(" (")?;
            let close = title[open..].find(')')? + open;
            let inner = title[open + 2..close]
                .trim_start_matches("a.k.a. ")
                .to_string();
            (!inner.chars().all(|c| c.is_ascii_digit())).then(|| (r[0].parse::<u64>().ok(), inner))
        })
        .filter_map(|(id, inner)| Some((id?, inner)))
        .max_by_key(|(id, inner)| (inner.split(' ').count(), std::cmp::Reverse(*id)))
        .expect("an alternative title");
    let found = json_output(&mut cli(&["-q", "search", &alternative, "--json"]));
    let ids: Vec<u64> = found["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["movie_id"].as_u64())
        .collect();
    assert!(ids.contains(&id), "{alternative:?} → {ids:?}, wanted {id}");

    // The most active user gets ten movies they have not rated.
    let ratings = std::fs::read_to_string(data.join("ratings.csv")).expect("ratings.csv");
    let mut rated: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    for line in ratings.lines().skip(1) {
        let mut fields = line.split(',');
        if let (Some(user), Some(movie)) = (fields.next(), fields.next()) {
            rated.entry(user).or_default().push(movie);
        }
    }
    let (user, theirs) = rated
        .iter()
        .max_by_key(|(user, movies)| (movies.len(), std::cmp::Reverse(**user)))
        .expect("a user");
    let recommended = json_output(&mut cli(&["-q", "recommend", "--user", user, "--json"]));
    let ids: Vec<String> = recommended["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["movie_id"].as_u64().map(|id| id.to_string()))
        .collect();
    assert_eq!(ids.len(), 10);
    assert!(ids.iter().all(|id| !theirs.contains(&id.as_str())));

    // New ratings by a new user leave every document as it was: a rebuild embeds nothing and
    // keeps the graph.
    let mut ratings_file = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("ratings.csv"))
        .expect("ratings.csv");
    let first_movies: Vec<String> = movies
        .lines()
        .skip(1)
        .take(20)
        .filter_map(|l| l.split(',').next().map(str::to_string))
        .collect();
    for movie in &first_movies {
        use std::io::Write;
        writeln!(ratings_file, "{},{movie},4.5,1700000000", summary.users + 1).expect("append");
    }
    drop(ratings_file);
    let rebuilt = json_output(&mut cli(&["-q", "build", "--json"]));
    assert_eq!(
        rebuilt["counts"]["ratings"],
        summary.ratings + first_movies.len()
    );
    assert_eq!(rebuilt["counts"]["reused_vectors"], summary.movies);
    assert_eq!(rebuilt["counts"]["reused_graph"], true);

    // The full protocol on a sample of users: the two-stage ranker learns the generated
    // tastes and beats popularity.
    let evaluation = json_output(&mut cli(&[
        "-q",
        "evaluate",
        "--protocol",
        "full",
        "--sample-users",
        "150",
        "--json",
    ]));
    let ndcg = |model: &str| {
        evaluation["models"]
            .as_array()
            .and_then(|m| m.iter().find(|r| r["model"] == model))
            .and_then(|r| r["NDCG@10"].as_f64())
            .unwrap_or_else(|| panic!("{model} in {evaluation}"))
    };
    assert!(
        ndcg("TwoStage") > ndcg("Popularity"),
        "TwoStage {} vs Popularity {}",
        ndcg("TwoStage"),
        ndcg("Popularity")
    );
}
