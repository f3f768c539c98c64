//! The index store's guarantees: foreign directories are never touched, builds are killed at
//! every stage without harming the published index, readers keep their generation, the file
//! list comes from the format, and one builder runs at a time.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use predicates::prelude::*;
use reelrank::engine::{build, BuildOptions, Engine, SearchRequest};
use reelrank::store::{BuildLock, MovieIndex};
use reelrank::Error;

use crate::common::{generation_dir, paths, real_model, reelrank, tempdir, tiny, tiny_movielens};

/// Every file under `dir` with its contents, relative paths sorted.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).expect("under root").to_path_buf();
                out.push((relative, std::fs::read(&path).expect("read")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The results of `search QUERY --json` on the index, without the timings.
fn answers(data: &Path, index: &Path, query: &str) -> serde_json::Value {
    let output = reelrank()
        .args(["search", query, "--json", "-k", "5"])
        .arg("--data")
        .arg(data)
        .arg("--index")
        .arg(index)
        .output()
        .expect("run search");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    json["results"].clone()
}

#[test]
fn a_foreign_directory_with_a_manifest_survives_byte_for_byte() {
    let data = tiny();
    let out = tempdir();
    let project = out.path().join("web-extension");
    std::fs::create_dir_all(project.join("src")).expect("mkdir");
    std::fs::write(
        project.join("manifest.json"),
        br#"{"manifest_version": 3, "name": "my extension", "version": "1.0"}"#,
    )
    .expect("write");
    std::fs::write(project.join("src/background.js"), b"console.log('hi');\n").expect("write");
    let before = snapshot(&project);
    for command in [vec!["build"], vec!["search", "space"]] {
        reelrank()
            .args(&command)
            .arg("--data")
            .arg(data.path())
            .arg("--index")
            .arg(&project)
            .assert()
            .failure()
            .stderr(predicate::str::contains("is not a reelrank index"));
        assert_eq!(snapshot(&project), before, "{command:?} touched it");
    }
}

#[test]
fn killed_builds_leave_the_previous_index_answering() {
    let data = tiny();
    let out = tempdir();
    let index = out.path().join("index");
    let binary = assert_cmd::cargo::cargo_bin("reelrank");
    let paths = paths(data.path(), out.path());
    build(&paths, &BuildOptions::default()).expect("first build");
    let expected = answers(data.path(), &index, "space adventure");
    assert_eq!(expected.as_array().map(Vec::len), Some(5));

    for point in ["embedding", "writing", "hnsw", "publish", "switch"] {
        let mut child = Command::new(&binary)
            .args(["build", "--quiet"])
            .arg("--data")
            .arg(data.path())
            .arg("--index")
            .arg(&index)
            .env("REELRANK_MODEL", real_model())
            .env("REELRANK_PAUSE_AT", point)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn build");
        let stderr = child.stderr.take().expect("stderr");
        let paused = BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains(&format!("paused at {point}")));
        assert!(paused, "the build never reached {point}");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        assert_eq!(
            answers(data.path(), &index, "space adventure"),
            expected,
            "killed at {point}"
        );
    }
    // The next build succeeds and leaves no stray directory: the current and the previous
    // generation only.
    build(&paths, &BuildOptions::default()).expect("build after the kills");
    assert_eq!(answers(data.path(), &index, "space adventure"), expected);
    let left = names(&index);
    let generations = left.iter().filter(|n| n.starts_with("gen-")).count();
    assert_eq!(generations, 2, "{left:?}");
    assert_eq!(
        left.iter()
            .filter(|n| !n.starts_with("gen-"))
            .collect::<Vec<_>>(),
        ["CURRENT", "LOCK", "REELRANK_INDEX"],
        "{left:?}"
    );
}

#[test]
fn an_open_index_keeps_its_generation_while_new_ones_are_published() {
    let data = tiny();
    let out = tempdir();
    let paths = paths(data.path(), out.path());
    build(&paths, &BuildOptions::default()).expect("build 1");
    let engine = Engine::open(&paths).expect("open");
    let mine = engine.index().generation().to_string();
    let before = engine
        .search(&SearchRequest::new("toys"))
        .expect("search")
        .results;
    build(&paths, &BuildOptions::default()).expect("build 2");
    build(&paths, &BuildOptions::default()).expect("build 3");
    // Neither current nor previous, but held by this reader: still there.
    assert!(paths.index.join(&mine).is_dir());
    assert_ne!(generation_dir(&paths.index), paths.index.join(&mine));
    // It answers, and loads its serving stack lazily from its own generation.
    assert_eq!(
        engine
            .search(&SearchRequest::new("toys"))
            .expect("search")
            .results,
        before
    );
    engine.stack().expect("the stack of the open generation");
    drop(engine);
    build(&paths, &BuildOptions::default()).expect("build 4");
    assert!(!paths.index.join(&mine).exists(), "released, then removed");
}

#[test]
fn an_empty_ratings_file_never_replaces_a_working_index() {
    let out = tempdir();
    let good = tiny();
    let good_paths = paths(good.path(), out.path());
    build(&good_paths, &BuildOptions::default()).expect("good build");
    let current = std::fs::read(good_paths.index.join("CURRENT")).expect("CURRENT");
    let empty = tiny_movielens(|name, text| {
        Some(if name == "ratings.csv" {
            "userId,movieId,rating,timestamp\n".to_string()
        } else {
            text.to_string()
        })
    });
    let error =
        build(&paths(empty.path(), out.path()), &BuildOptions::default()).expect_err("no ratings");
    assert!(matches!(error, Error::EmptyDataset { .. }), "{error}");
    assert!(error.to_string().contains("ratings.csv"), "{error}");
    assert_eq!(
        std::fs::read(good_paths.index.join("CURRENT")).expect("CURRENT"),
        current
    );
    MovieIndex::open(&good_paths.index).expect("the good index still opens");
    // A fresh index directory is not even created.
    let fresh = paths(empty.path(), &out.path().join("fresh"));
    build(&fresh, &BuildOptions::default()).expect_err("no ratings");
    assert!(!out.path().join("fresh").exists());
}

#[test]
fn the_file_list_comes_from_the_format_not_the_manifest() {
    let data = tiny();
    let out = tempdir();
    let paths = paths(data.path(), out.path());
    build(&paths, &BuildOptions::default()).expect("build");
    let manifest_path = generation_dir(&paths.index).join("manifest.json");
    let original = std::fs::read(&manifest_path).expect("read");
    let mut manifest: serde_json::Value = serde_json::from_slice(&original).expect("parse");
    let files = manifest["files"].as_array().expect("files").clone();

    // A file entry dropped: the file would go unchecked.
    manifest["files"] = serde_json::Value::Array(files[1..].to_vec());
    std::fs::write(&manifest_path, manifest.to_string()).expect("write");
    let error = MovieIndex::open(&paths.index).expect_err("missing entry");
    assert!(matches!(error, Error::IndexCorrupt { .. }), "{error}");
    assert!(error.to_string().contains("file list"), "{error}");

    // An extra entry.
    let mut extra = files.clone();
    extra.push(files[0].clone());
    manifest["files"] = serde_json::Value::Array(extra);
    std::fs::write(&manifest_path, manifest.to_string()).expect("write");
    assert!(matches!(
        MovieIndex::open(&paths.index),
        Err(Error::IndexCorrupt { .. })
    ));

    // A manifest without the format marker is not ours.
    std::fs::write(&manifest_path, &original).expect("restore");
    manifest = serde_json::from_slice(&original).expect("parse");
    manifest.as_object_mut().expect("object").remove("format");
    std::fs::write(&manifest_path, manifest.to_string()).expect("write");
    let error = MovieIndex::open(&paths.index).expect_err("no marker");
    assert!(
        error.to_string().contains("not a reelrank manifest"),
        "{error}"
    );
    std::fs::write(&manifest_path, &original).expect("restore");
    MovieIndex::open(&paths.index).expect("restored");
}

#[test]
fn verify_checks_every_hash_and_names_the_damaged_file() {
    let data = tiny();
    let out = tempdir();
    let paths = paths(data.path(), out.path());
    build(&paths, &BuildOptions::default()).expect("build");
    let verify = || {
        let mut command = reelrank();
        command
            .args(["verify", "--json"])
            .arg("--data")
            .arg(data.path())
            .arg("--index")
            .arg(&paths.index);
        command
    };
    let output = verify().output().expect("verify");
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["files"].as_array().map(Vec::len), Some(6));
    // A flipped byte in the graph: size unchanged, crc and sha256 differ.
    let graph = generation_dir(&paths.index).join("graph.hnsw.graph");
    let mut bytes = std::fs::read(&graph).expect("read");
    bytes[40] ^= 0x01;
    std::fs::write(&graph, &bytes).expect("write");
    verify()
        .assert()
        .failure()
        .stderr(predicate::str::contains("graph.hnsw.graph"))
        .stderr(predicate::str::contains("corrupt"))
        .stderr(predicate::str::contains(format!(
            "reelrank build --index {}`",
            paths.index.display()
        )));
}

#[test]
fn a_second_builder_waits_for_the_first() {
    let data = tiny();
    let out = tempdir();
    let paths = paths(data.path(), out.path());
    build(&paths, &BuildOptions::default()).expect("build");
    let lock = BuildLock::acquire(&paths.index).expect("lock");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("reelrank"))
        .arg("build")
        .arg("--data")
        .arg(data.path())
        .arg("--index")
        .arg(&paths.index)
        .env("REELRANK_MODEL", real_model())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn build");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let waiting = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("another build") && line.contains("waiting"));
    assert!(waiting, "the second build did not say it waits");
    let before = std::fs::read(paths.index.join("CURRENT")).expect("CURRENT");
    drop(lock);
    assert!(child.wait().expect("wait").success());
    assert_ne!(
        std::fs::read(paths.index.join("CURRENT")).expect("CURRENT"),
        before,
        "the waiting build published once the lock was free"
    );
}

#[test]
fn an_index_of_the_older_layout_is_replaced_file_by_file() {
    let data = tiny();
    let out = tempdir();
    let root = out.path().join("index");
    std::fs::create_dir_all(&root).expect("mkdir");
    let legacy = serde_json::json!({
        "format_version": 3,
        "crate_version": "0.1.0",
        "model": {"id": "m"},
        "files": [{"name": "catalog.json"}, {"name": "vectors.f32"}, {"name": "stack.bin"}]
    });
    std::fs::write(root.join("manifest.json"), legacy.to_string()).expect("write");
    for name in ["catalog.json", "vectors.f32", "stack.bin"] {
        std::fs::write(root.join(name), b"old").expect("write");
    }
    std::fs::write(root.join("notes.txt"), b"mine").expect("write");
    let paths = reelrank::Paths {
        index: root.clone(),
        ..paths(data.path(), out.path())
    };
    assert!(matches!(
        MovieIndex::open(&root),
        Err(Error::IndexIncompatible { .. })
    ));
    build(&paths, &BuildOptions::default()).expect("build over the old layout");
    let left = names(&root);
    for name in ["manifest.json", "catalog.json", "vectors.f32", "stack.bin"] {
        assert!(!left.contains(&name.to_string()), "{left:?}");
    }
    assert_eq!(
        std::fs::read(root.join("notes.txt")).ok(),
        Some(b"mine".to_vec())
    );
    MovieIndex::open(&root).expect("the new generation opens");
}
