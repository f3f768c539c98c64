//! The `reelrank` binary: flags, exit codes, output shapes.

use predicates::prelude::*;

use crate::common::{json_output, reelrank, tempdir, tiny, tiny_movielens};

#[test]
fn search_builds_a_missing_index_then_answers_in_json() {
    let data = tiny();
    let out = tempdir();
    let index = out.path().join("idx");
    let json = json_output(
        reelrank()
            .args(["search", "a space opera with robots", "-k", "3", "--json"])
            .arg("--data")
            .arg(data.path())
            .arg("--index")
            .arg(&index),
    );
    assert!(crate::common::generation_dir(&index)
        .join("manifest.json")
        .is_file());
    assert_eq!(json["query"], "a space opera with robots");
    let results = json["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    for key in [
        "rank",
        "movie_id",
        "title",
        "year",
        "genres",
        "query_similarity",
        "personal_score",
        "popularity",
        "score",
        "sources",
    ] {
        assert!(results[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(results[0]["rank"], 1);
    assert_eq!(
        results[0]["title"],
        "Star Wars: Episode IV - A New Hope (1977)"
    );
    assert!(json["timings_ms"]["total"].as_f64().is_some());

    // The index now exists: the same search with the table output, from the variable.
    reelrank()
        .args(["search", "toys", "-k", "2"])
        .env("REELRANK_DATA", data.path())
        .env("REELRANK_INDEX", &index)
        .assert()
        .success()
        .stdout(predicate::str::contains("Toy Story (1995)"))
        .stdout(predicate::str::contains("similarity"));
}

#[test]
fn bad_data_exits_non_zero_naming_file_line_and_field() {
    let data = tiny_movielens(|name, text| {
        Some(if name == "ratings.csv" {
            text.replace("964983815", "noon")
        } else {
            text.to_string()
        })
    });
    let out = tempdir();
    reelrank()
        .arg("build")
        .arg("--data")
        .arg(data.path())
        .arg("--index")
        .arg(out.path().join("idx"))
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "ratings.csv, line 6, field 'timestamp'",
        ));
    assert!(!out.path().join("idx").exists());
}

#[test]
fn usage_errors_name_the_flag() {
    let data = tiny();
    reelrank()
        .args(["search", "war", "--year", "1999..1990"])
        .arg("--data")
        .arg(data.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("--year"));
    reelrank()
        .args(["search", "war", "-k", "0"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("-k"));
    reelrank()
        .args(["search", " "])
        .assert()
        .failure()
        .stderr(predicate::str::contains("query is empty"));
    reelrank()
        .args(["search", "war", "--feedback", "1.5"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--feedback"));
    reelrank()
        .args(["build", "--model", "/nonexistent/model"])
        .arg("--data")
        .arg(data.path())
        .arg("--index")
        .arg(tempdir().path().join("idx"))
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "/nonexistent/model lacks config.json",
        ));
}

#[test]
fn offline_hub_without_cache_fails_fast() {
    let empty_home = tempdir();
    let data = tiny();
    reelrank()
        .env_remove("REELRANK_MODEL")
        .env("HF_HOME", empty_home.path())
        .env("HF_HUB_OFFLINE", "1")
        .args(["embed", "hello"])
        .arg("--data")
        .arg(data.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("HF_HUB_OFFLINE"))
        .stderr(predicate::str::contains(
            empty_home.path().to_string_lossy().as_ref(),
        ));
}

#[test]
fn embed_prints_384_floats() {
    let json = json_output(reelrank().args(["embed", "some text", "--json"]));
    assert_eq!(json["text"], "some text");
    let embedding = json["embedding"].as_array().expect("array");
    assert_eq!(embedding.len(), 384);
    let norm: f64 = embedding
        .iter()
        .map(|v| v.as_f64().unwrap_or(0.0).powi(2))
        .sum();
    assert!((norm - 1.0).abs() < 1e-4);
}

#[test]
fn docs_prints_the_document() {
    let data = tiny();
    reelrank()
        .args(["docs", "--movie", "1"])
        .arg("--data")
        .arg(data.path())
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "Toy Story (1995) Adventure|Animation|Children|Comedy|Fantasy ",
        ));
    reelrank()
        .args(["docs", "--movie", "1", "--document-template", "labelled"])
        .arg("--data")
        .arg(data.path())
        .assert()
        .success()
        .stdout("Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy. Tags: pixar, toys.\n");
    reelrank()
        .args(["docs", "--movie", "1", "--document-template", "prose"])
        .arg("--data")
        .arg(data.path())
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("--document-template")
                .and(predicate::str::contains("labelled")),
        );
    reelrank()
        .args(["docs", "--movie", "42"])
        .arg("--data")
        .arg(data.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("--movie").and(predicate::str::contains("42")));
}
