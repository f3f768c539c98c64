//! `reelrank evaluate` on the real ml-latest-small, and the split file round trip.

use std::sync::OnceLock;

use assert_cmd::Command;
use reelrank::data::split::Split;
use reelrank::data::Dataset;
use reelrank::eval::{evaluate_seed_protocol, EvalConfig, EvalReport};

use crate::common::{json_output, real_data, real_engine, real_index_dir, reelrank, tempdir, tiny};

fn real_dataset() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| Dataset::load(&real_data()).expect("load ml-latest-small"))
}

/// `reelrank evaluate ARGS` on the real data and index.
fn evaluate(args: &[&str]) -> Command {
    let mut command = reelrank();
    command
        .arg("evaluate")
        .args(args)
        .arg("--data")
        .arg(real_data())
        .arg("--index")
        .arg(real_index_dir());
    command
}

fn vectors() -> &'static reelrank::ann::FlatIndex {
    real_engine().index().flat()
}

fn real_report() -> &'static EvalReport {
    static REPORT: OnceLock<EvalReport> = OnceLock::new();
    REPORT.get_or_init(|| {
        let data = real_dataset();
        let split = Split::seeded(data.ratings.len(), 42);
        evaluate_seed_protocol(data, &split, vectors(), &EvalConfig::default())
    })
}

#[test]
fn every_model_beats_random_and_mf_rmse_is_sane() {
    let report = real_report();
    let row = |name: &str| {
        report
            .models
            .iter()
            .find(|m| m.model == name)
            .unwrap_or_else(|| panic!("no row {name}"))
    };
    let random = row("Random").metrics;
    let oracle = row("Oracle").metrics;
    assert!(
        random.hit_rate > 0.95,
        "the seed protocol's Random hit rate is ~0.99"
    );
    for name in [
        "Bias",
        "ItemKnn",
        "MatrixFactorization",
        "GenreContent",
        "ContentRidge",
        "SimpleAverage",
    ] {
        let m = row(name);
        assert!(
            m.metrics.precision > random.precision,
            "{name}: {:?}",
            m.metrics
        );
        assert!(m.metrics.precision <= oracle.precision, "{name}");
        assert!(m.ndcg_gap_closed > 0.0 && m.ndcg_gap_closed < 1.0, "{name}");
    }
    // The seed 000 stack beats every single base model on NDCG@10 (it does on seeds 42, 7, 2024).
    let best_base = [
        "Bias",
        "ItemKnn",
        "MatrixFactorization",
        "GenreContent",
        "ContentRidge",
    ]
    .iter()
    .map(|name| row(name).metrics.ndcg)
    .fold(0.0, f64::max);
    assert!(row("LogisticStack4").metrics.ndcg > best_base);
    for stack in [
        "LogisticStack",
        "LogisticStack-unscaled",
        "LogisticStackAll",
    ] {
        assert!(row(stack).metrics.precision > random.precision, "{stack}");
        assert!(
            row(stack).rmse.is_none(),
            "{stack} predicts relevance, not ratings"
        );
    }
    let mf = row("MatrixFactorization");
    assert!(
        mf.rmse.expect("MF predicts ratings") < 0.95,
        "{:?}",
        mf.rmse
    );
    assert!(row("ContentRidge").rmse.expect("ridge predicts ratings") < 1.0);
    assert!(row("GenreContent").rmse.is_none());
    assert_eq!(
        report.split.test,
        (report.split.base + report.split.meta + report.split.test) / 5 + 1
    );
    assert!(report.users_evaluated > 500);
}

#[test]
fn split_file_round_trips_and_reproduces_the_metrics() {
    let data = real_dataset();
    let split = Split::seeded(data.ratings.len(), 42);
    let dir = tempdir();
    let path = dir.path().join("split.csv");
    split.write(&path, data).expect("write");
    let read = Split::read(&path, data).expect("read");
    assert_eq!(
        (&read.base, &read.meta, &read.test),
        (&split.base, &split.meta, &split.test)
    );
    let again = evaluate_seed_protocol(data, &read, vectors(), &EvalConfig::default());
    for (a, b) in again.models.iter().zip(&real_report().models) {
        assert_eq!(a.metrics, b.metrics, "{}", a.model);
    }
}

#[test]
fn bad_split_files_are_refused() {
    let dir = tiny();
    let data = Dataset::load(dir.path()).expect("tiny");
    let file = dir.path().join("split.csv");
    let write = |text: &str| std::fs::write(&file, text).expect("write");
    write("userId,movieId,set\n1,1,train\n");
    let error = Split::read(&file, &data).expect_err("bad set").to_string();
    assert!(
        error.contains("line 2") && error.contains("'train'"),
        "{error}"
    );
    write("userId,movieId,set\n1,3,base\n");
    let error = Split::read(&file, &data)
        .expect_err("no such rating")
        .to_string();
    assert!(error.contains("user 1 has no rating of movie 3"), "{error}");
    write("userId,movieId,set\n1,1,base\n");
    let error = Split::read(&file, &data)
        .expect_err("incomplete")
        .to_string();
    assert!(error.contains("does not assign every rating"), "{error}");
}

#[test]
fn cli_json_and_report() {
    let out = tempdir();
    let report_dir = out.path().join("report");
    let json = json_output(
        evaluate(&["--json", "--seed", "7", "-k", "5"])
            .arg("--report")
            .arg(&report_dir),
    );
    assert_eq!(json["protocol"], "seed");
    assert_eq!(json["k"], 5);
    assert_eq!(json["seed"], 7);
    let models = json["models"].as_array().expect("models");
    // Nine base models, SimpleAverage, nine stacks, Random and Oracle.
    assert_eq!(models.len(), 21);
    assert!(models.iter().any(|m| m["model"] == "IALS"), "{models:?}");
    for key in [
        "model",
        "HitRate@5",
        "Precision@5",
        "Recall@5",
        "NDCG@5",
        "MAP@5",
        "RMSE",
        "MAE",
    ] {
        assert!(models[0].get(key).is_some(), "{key}");
    }
    assert_eq!(json["split"]["source"], "seed 7");
    assert!(json["timings_ms"]["total"].as_f64().is_some());
    for file in [
        "metrics.json",
        "report.md",
        "metrics.svg",
        "ratings.svg",
        "split.csv",
    ] {
        assert!(report_dir.join(file).is_file(), "{file}");
    }
    // The written split reproduces the run.
    let again = json_output(
        evaluate(&["--json", "--seed", "7", "-k", "5"])
            .arg("--split")
            .arg(report_dir.join("split.csv")),
    );
    assert_eq!(again["models"], json["models"]);
}

#[test]
fn several_seeds_give_mean_and_std() {
    let json = json_output(&mut evaluate(&["--json", "--seeds", "42,7"]));
    assert_eq!(json["seeds"], serde_json::json!([42, 7]));
    assert_eq!(json["runs"].as_array().map(Vec::len), Some(2));
    let bias = &json["summary"][0];
    assert_eq!(bias["model"], "Bias");
    let per_run: Vec<f64> = (0..2)
        .map(|r| {
            json["runs"][r]["models"][0]["NDCG@10"]
                .as_f64()
                .expect("ndcg")
        })
        .collect();
    let mean = bias["NDCG@10"]["mean"].as_f64().expect("mean");
    let std = bias["NDCG@10"]["std"].as_f64().expect("std");
    assert!((mean - (per_run[0] + per_run[1]) / 2.0).abs() < 1e-12);
    assert!((std - (per_run[0] - per_run[1]).abs() / 2f64.sqrt()).abs() < 1e-12);
    // A time split and a split file are two answers to one question: refused together.
    evaluate(&["--split-by", "time", "--split", "split.csv"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("--split-by"));
    // Only the seed protocol writes a report, with one seed or several: refused, not ignored.
    evaluate(&[
        "--seeds",
        "42,7",
        "--protocol",
        "full",
        "--report",
        "unused",
    ])
    .assert()
    .failure()
    .stderr(predicates::str::contains("--report"));
    // A sample of test users is a full-protocol option: refused elsewhere, and never zero.
    for args in [
        &["--sample-users", "50"][..],
        &["--protocol", "full", "--sample-users", "0"],
    ] {
        evaluate(args)
            .assert()
            .failure()
            .stderr(predicates::str::contains("--sample-users"));
    }
}

#[test]
fn the_full_protocol_evaluates_a_seeded_sample_of_test_users() {
    let json = json_output(&mut evaluate(&[
        "--json",
        "--protocol",
        "full",
        "--seed",
        "7",
        "--sample-users",
        "60",
    ]));
    assert_eq!(json["users_evaluated"], 60);
    let two_stage = json["models"]
        .as_array()
        .and_then(|m| m.iter().find(|r| r["model"] == "TwoStage"))
        .and_then(|r| r["NDCG@10"].as_f64())
        .expect("TwoStage");
    assert!(two_stage > 0.2, "{two_stage}");
}
