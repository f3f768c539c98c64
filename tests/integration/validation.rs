//! Bad MovieLens input: every rule gives an error naming file, line and field, and no index.

use reelrank::data::Dataset;
use reelrank::engine::{build, BuildOptions};
use reelrank::Error;

use crate::common::{paths, tempdir, tiny, tiny_movielens};

/// Loads a tiny dataset with one file replaced, expecting an error.
fn load_error(file: &str, text: &str) -> String {
    let dir = tiny_movielens(|name, original| {
        Some(if name == file {
            text.to_string()
        } else {
            original.to_string()
        })
    });
    let error = Dataset::load(dir.path()).expect_err("invalid input must be refused");
    error.to_string()
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "'{part}' missing from: {message}");
    }
}

#[test]
fn tiny_dataset_loads() {
    let dir = tiny();
    let data = Dataset::load(dir.path()).expect("valid fixture");
    assert_eq!(data.movies.len(), 6);
    assert_eq!(data.ratings.len(), 8);
    assert_eq!(data.tags.len(), 5);
    assert_eq!(data.movies[2].title, "American President, The (1995)");
    assert_eq!(data.movies[2].year, Some(1995));
    assert!(data.movies[5].genres.is_empty());
    assert_eq!(data.movies[0].imdb_id.as_deref(), Some("0114709"));
    assert_eq!(data.movies[5].tmdb_id, None);
    assert_eq!(data.tags[4].text, "xenomorph, scary");
    // ratings hold catalogue positions: movieId 5 is the fifth movie
    assert_eq!(data.ratings.movie[6], 4);
    assert_eq!(data.ratings.rating[6], 0.5);
}

#[test]
fn missing_file() {
    let dir = tiny_movielens(|name, text| (name != "ratings.csv").then(|| text.to_string()));
    let message = Dataset::load(dir.path())
        .expect_err("no ratings")
        .to_string();
    assert_mentions(&message, &["ratings.csv", "not found"]);
    // links.csv is optional
    let dir = tiny_movielens(|name, text| (name != "links.csv").then(|| text.to_string()));
    assert!(Dataset::load(dir.path()).is_ok());
}

#[test]
fn missing_directory_says_how_to_get_movielens() {
    let message = Dataset::load(std::path::Path::new("/nonexistent/ml-latest-small"))
        .expect_err("no directory")
        .to_string();
    assert_mentions(
        &message,
        &["/nonexistent/ml-latest-small", "grouplens", "--data"],
    );
}

#[test]
fn missing_column() {
    let message = load_error("ratings.csv", "userId,movieId,score,timestamp\n1,1,4.0,1\n");
    assert_mentions(
        &message,
        &["ratings.csv", "missing column 'rating'", "score"],
    );
}

#[test]
fn unparsable_id() {
    let bad = crate::common::RATINGS.replace("2,1,3.0,964982931", "abc,1,3.0,964982931");
    let message = load_error("ratings.csv", &bad);
    assert_mentions(&message, &["ratings.csv", "line 5", "'userId'", "'abc'"]);
}

#[test]
fn negative_id() {
    let bad = crate::common::TAGS.replace("3,4,", "3,-4,");
    let message = load_error("tags.csv", &bad);
    assert_mentions(&message, &["tags.csv", "line 6", "'movieId'", "'-4'"]);
}

#[test]
fn unparsable_rating() {
    let bad = crate::common::RATINGS.replace("1,2,5.0,", "1,2,five,");
    let message = load_error("ratings.csv", &bad);
    assert_mentions(
        &message,
        &[
            "ratings.csv",
            "line 3",
            "'rating'",
            "'five'",
            "not a number",
        ],
    );
}

#[test]
fn rating_out_of_range() {
    for (value, line) in [("5.5", "line 3"), ("0.0", "line 3"), ("-1", "line 3")] {
        let bad = crate::common::RATINGS.replace("1,2,5.0,", &format!("1,2,{value},"));
        let message = load_error("ratings.csv", &bad);
        assert_mentions(
            &message,
            &["ratings.csv", line, "'rating'", "outside 0.5..=5"],
        );
    }
}

#[test]
fn unparsable_timestamp() {
    let bad = crate::common::RATINGS.replace("964983815", "yesterday");
    let message = load_error("ratings.csv", &bad);
    assert_mentions(
        &message,
        &["ratings.csv", "line 6", "'timestamp'", "'yesterday'"],
    );
}

#[test]
fn empty_value() {
    let bad = crate::common::MOVIES.replace("5,Heat (1995),", "5,,");
    let message = load_error("movies.csv", &bad);
    assert_mentions(
        &message,
        &["movies.csv", "line 6", "'title'", "empty value"],
    );
}

#[test]
fn duplicate_movie_id() {
    let bad = format!("{}4,Alien again (1979),Horror\n", crate::common::MOVIES);
    let message = load_error("movies.csv", &bad);
    assert_mentions(
        &message,
        &["movies.csv", "line 8", "duplicate movieId 4", "line 5"],
    );
}

#[test]
fn orphans_are_skipped_and_counted() {
    let dir = tiny_movielens(|name, text| {
        Some(match name {
            "ratings.csv" => format!("{text}9,99,4.0,1\n9,98,3.0,1\n"),
            "tags.csv" => format!("{text}9,77,lost,1\n"),
            _ => text.to_string(),
        })
    });
    let data = Dataset::load(dir.path()).expect("orphans are not an error");
    assert_eq!(data.skipped.orphan_ratings, 2);
    assert_eq!(data.skipped.orphan_tags, 1);
    assert_eq!(data.ratings.len(), 8);
    assert!(!data.ratings.user.contains(&9));
}

#[test]
fn failed_build_writes_nothing_and_keeps_the_old_index() {
    let out = tempdir();
    let bad = tiny_movielens(|name, text| {
        Some(if name == "ratings.csv" {
            text.replace("4.5", "7")
        } else {
            text.to_string()
        })
    });
    let bad_paths = paths(bad.path(), out.path());
    let error = build(&bad_paths, &BuildOptions::default()).expect_err("bad rating");
    assert!(
        matches!(error, Error::InvalidRow { line: 4, .. }),
        "{error}"
    );
    assert!(!bad_paths.index.exists());
    assert_eq!(
        std::fs::read_dir(out.path()).expect("list").count(),
        0,
        "no leftovers"
    );

    // A good build, then a failing rebuild: the good index stays whole.
    let good = tiny();
    let good_paths = paths(good.path(), out.path());
    build(&good_paths, &BuildOptions::default()).expect("good build");
    let manifest = crate::common::generation_dir(&good_paths.index).join("manifest.json");
    let before = std::fs::read(&manifest).expect("manifest");
    build(&bad_paths, &BuildOptions::default()).expect_err("bad rebuild");
    let after = std::fs::read(&manifest).expect("manifest");
    assert_eq!(before, after);
    reelrank::store::MovieIndex::open(&good_paths.index).expect("old index still opens");
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "index")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn malformed_lines_are_located() {
    let extra = crate::common::RATINGS.replace("2,3,2.5,964983815", "2,3,2.5,964983815,oops");
    let message = load_error("ratings.csv", &extra);
    assert_mentions(
        &message,
        &["ratings.csv", "line 6", "5 fields, but the header has 4"],
    );
    let unclosed = crate::common::MOVIES.replace("5,Heat (1995)", "5,\"Heat (1995)");
    let message = load_error("movies.csv", &unclosed);
    assert_mentions(&message, &["movies.csv", "line 6", "unclosed double quote"]);
}
