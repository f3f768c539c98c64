//! The index directory: manifest contents, and refusal of stale or damaged indexes.

use std::path::Path;

use reelrank::engine::{build, BuildOptions, Engine};
use reelrank::store::{Manifest, MovieIndex, FORMAT_VERSION};
use reelrank::Error;

use crate::common::{paths, tempdir, tiny};

fn edit_manifest(dir: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let path = dir.join("manifest.json");
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("parse");
    edit(&mut value);
    std::fs::write(&path, serde_json::to_vec(&value).expect("json")).expect("write");
}

#[test]
fn manifest_records_the_build() {
    let data = tiny();
    let out = tempdir();
    let paths = paths(data.path(), out.path());
    let manifest = build(&paths, &BuildOptions::default()).expect("build");
    assert_eq!(manifest.format_version, FORMAT_VERSION);
    assert_eq!(manifest.model.dim, 384);
    assert_eq!(manifest.model.max_seq_length, 256);
    assert_eq!(manifest.model.pooling, "mean");
    assert_eq!(
        manifest.model.weights.sha256,
        reelrank::fsutil::sha256_file(&crate::common::real_model().join("model.safetensors"))
            .expect("hash")
    );
    assert_eq!(manifest.hnsw.m, 16);
    assert_eq!(manifest.counts.movies, 6);
    assert_eq!(manifest.counts.ratings, 8);
    assert_eq!(manifest.counts.users, 4);
    let names: Vec<&str> = manifest
        .dataset
        .files
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["movies.csv", "ratings.csv", "tags.csv", "links.csv"]
    );
    for stage in ["load_data", "embed", "hnsw", "stack", "total"] {
        assert!(manifest.timings_ms.contains_key(stage), "{stage}");
    }
    assert!(
        manifest.timings_ms["total"] >= manifest.timings_ms["embed"] + manifest.timings_ms["hnsw"]
    );
    let mut names: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "catalog.json",
            "graph.hnsw.data",
            "graph.hnsw.graph",
            "keyword.bin",
            "stack.bin",
            "vectors.f32"
        ]
    );
    // The serving stack of the 8 ratings: 2 meta rows (ceil of 20 %), then all 8 refit.
    assert_eq!(
        (
            &manifest.stack["meta_rows"],
            &manifest.stack["base_rows"],
            &manifest.stack["serving_rows"],
            &manifest.stack["seed"]
        ),
        (
            &serde_json::json!(2),
            &serde_json::json!(6),
            &serde_json::json!(8),
            &serde_json::json!(42)
        )
    );
    // The catalogue carries popularity: movie 2 has 3 ratings averaging 14/3.
    let index = MovieIndex::open(&paths.index).expect("open");
    let star_wars = &index.catalog().movies[1];
    assert_eq!(star_wars.rating_count, 3);
    assert!((star_wars.mean_rating.expect("rated") - 14.0 / 3.0).abs() < 1e-5);
    assert_eq!(index.catalog().movies[5].rating_count, 0);
    assert!(
        (index.catalog().movies[5].weighted_rating as f64 - index.catalog().popularity.c).abs()
            < 1e-6
    );
    assert_eq!(
        Manifest::read(&crate::common::generation_dir(&paths.index)).expect("read"),
        manifest
    );
}

#[test]
fn stale_or_damaged_indexes_are_refused() {
    let data = tiny();
    let out = tempdir();
    let paths = paths(data.path(), out.path());
    build(&paths, &BuildOptions::default()).expect("build");
    Engine::open(&paths).expect("a fresh index opens");
    let generation = crate::common::generation_dir(&paths.index);
    let manifest_path = generation.join("manifest.json");
    let original = std::fs::read(&manifest_path).expect("read");
    let restore = || std::fs::write(&manifest_path, &original).expect("restore");

    // Another format version.
    edit_manifest(&generation, |m| {
        m["format_version"] = serde_json::json!(FORMAT_VERSION + 1)
    });
    let error = Engine::open(&paths).err().expect("format mismatch");
    assert!(matches!(error, Error::IndexIncompatible { .. }), "{error}");
    // The command it suggests rebuilds the index root, not the generation inside it.
    assert!(
        error.to_string().contains(&format!(
            "reelrank build --index {}`",
            paths.index.display()
        )),
        "{error}"
    );
    restore();

    // Another model.
    edit_manifest(&generation, |m| {
        m["model"]["weights"]["sha256"] = serde_json::json!("0".repeat(64));
        m["model"]["weights"]["modified_ns"] = serde_json::json!(0);
    });
    let error = Engine::open(&paths).err().expect("model mismatch");
    assert!(error.to_string().contains("built with model"), "{error}");
    restore();

    // A damaged file.
    let vectors = generation.join("vectors.f32");
    let mut bytes = std::fs::read(&vectors).expect("read");
    bytes[17] ^= 0xff;
    std::fs::write(&vectors, &bytes).expect("write");
    let error = Engine::open(&paths).err().expect("corrupt");
    assert!(matches!(error, Error::IndexCorrupt { .. }), "{error}");
    assert!(error.to_string().contains("vectors.f32"), "{error}");
    bytes[17] ^= 0xff;
    std::fs::write(&vectors, &bytes).expect("write");
    Engine::open(&paths).expect("repaired index opens");

    // A damaged serving stack.
    let stack = generation.join("stack.bin");
    let mut bytes = std::fs::read(&stack).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&stack, &bytes).expect("write");
    // Read only when a person is served: a plain search answers, the stack is refused.
    let engine = Engine::open(&paths).expect("the stack is read on first use");
    engine
        .search(&reelrank::engine::SearchRequest::new("space"))
        .expect("a plain search needs no stack");
    let Err(error) = engine.stack() else {
        panic!("a corrupt stack was read")
    };
    assert!(matches!(error, Error::IndexCorrupt { .. }), "{error}");
    assert!(error.to_string().contains("stack.bin"), "{error}");
    // Likewise the graph: refused when first walked (the exact scan answers meanwhile), and
    // by a server, which loads it at start.
    let graph = generation.join("graph.hnsw.data");
    let mut graph_bytes = std::fs::read(&graph).expect("read");
    graph_bytes[100] ^= 0xff;
    std::fs::write(&graph, &graph_bytes).expect("write");
    let index = MovieIndex::open(&paths.index).expect("open");
    let Err(error) = index.hnsw() else {
        panic!("a corrupt graph was loaded")
    };
    assert!(error.to_string().contains("graph.hnsw"), "{error}");
    graph_bytes[100] ^= 0xff;
    std::fs::write(&graph, &graph_bytes).expect("write");
    MovieIndex::open(&paths.index)
        .expect("open")
        .hnsw()
        .expect("repaired graph loads");
    bytes[last] ^= 0xff;
    std::fs::write(&stack, &bytes).expect("write");

    // A manifest that is not JSON.
    std::fs::write(&manifest_path, b"{ not json").expect("write");
    let error = Engine::open(&paths).err().expect("corrupt manifest");
    assert!(matches!(error, Error::IndexCorrupt { .. }), "{error}");
    restore();

    // Changed data: a rating edited in place.
    let ratings = data.path().join("ratings.csv");
    let text = std::fs::read_to_string(&ratings).expect("read");
    std::fs::write(&ratings, text.replace("1,1,4.0,", "1,1,3.0,")).expect("write");
    let error = Engine::open(&paths).err().expect("dataset changed");
    assert!(matches!(error, Error::IndexIncompatible { .. }), "{error}");
    assert!(error.to_string().contains("ratings.csv changed"), "{error}");

    // No index at all.
    let missing = reelrank::Paths {
        index: out.path().join("nothing"),
        ..paths.clone()
    };
    assert!(matches!(
        Engine::open(&missing).err(),
        Some(Error::IndexMissing { .. })
    ));
}

#[test]
fn a_rebuild_with_new_movies_appended_extends_the_previous_graph() {
    let data = tiny();
    let out = tempdir();
    let paths = paths(data.path(), out.path());
    build(&paths, &BuildOptions::default()).expect("build");
    // Gattaca arrives at the end of movies.csv: the six earlier vectors are the first rows.
    std::fs::write(
        data.path().join("movies.csv"),
        format!(
            "{}7,Gattaca (1997),Drama|Sci-Fi|Thriller\n",
            crate::common::MOVIES
        ),
    )
    .expect("write");
    let second = build(&paths, &BuildOptions::default()).expect("rebuild");
    assert_eq!(second.counts.movies, 7);
    assert_eq!(second.counts.reused_vectors, 6);
    assert!(!second.counts.reused_graph);
    assert_eq!(second.counts.extended_graph, 1, "one movie inserted");
    let index = MovieIndex::open(&paths.index).expect("open");
    let graph = index
        .hnsw()
        .expect("the extended graph loads and passes its checks");
    assert_eq!(graph.len(), 7);
    for position in 0..7 {
        let hits = graph.search(index.flat().vector(position), 1, None);
        assert_eq!(hits[0].position, position, "movie {position} finds itself");
    }
    drop(index);
    // A changed document in the middle is not an appended movie: the graph is built anew.
    std::fs::write(
        data.path().join("tags.csv"),
        format!("{}1,4,spaceship,1445715002\n", crate::common::TAGS),
    )
    .expect("write");
    let third = build(&paths, &BuildOptions::default()).expect("rebuild");
    assert_eq!(third.counts.extended_graph, 0);
    assert!(!third.counts.reused_graph);
}

#[test]
fn a_rebuild_reuses_unchanged_vectors_bit_for_bit_and_embeds_a_changed_document() {
    let data = tiny();
    let out = tempdir();
    let paths = paths(data.path(), out.path());
    let first = build(&paths, &BuildOptions::default()).expect("build");
    assert_eq!(
        first.counts.reused_vectors, 0,
        "nothing to reuse the first time"
    );
    let vectors = |paths: &reelrank::Paths| {
        MovieIndex::open(&paths.index)
            .expect("open")
            .flat()
            .vectors()
            .to_vec()
    };
    let before = vectors(&paths);
    // New ratings only: every document is unchanged, so every vector is copied.
    std::fs::write(
        data.path().join("ratings.csv"),
        format!("{}4,5,3.5,964982999\n", crate::common::RATINGS),
    )
    .expect("write");
    let graph_files = |paths: &reelrank::Paths| {
        let dir = crate::common::generation_dir(&paths.index);
        reelrank::ann::GRAPH_FILES.map(|name| std::fs::read(dir.join(name)).expect("graph file"))
    };
    assert!(!first.counts.reused_graph);
    let first_graph = graph_files(&paths);
    let second = build(&paths, &BuildOptions::default()).expect("rebuild");
    assert_eq!(second.counts.reused_vectors, 6);
    assert_eq!(second.counts.ratings, 9);
    assert_eq!(vectors(&paths), before, "bit for bit");
    // Same vectors in the same order: the graph is the previous one, which is the graph a
    // build from scratch makes, and it answers.
    assert!(second.counts.reused_graph);
    assert_eq!(graph_files(&paths), first_graph);
    let scratch = tempdir();
    let fresh_paths = crate::common::paths(data.path(), scratch.path());
    let fresh = build(&fresh_paths, &BuildOptions::default()).expect("build from scratch");
    assert!(!fresh.counts.reused_graph);
    assert_eq!(
        graph_files(&fresh_paths),
        first_graph,
        "deterministic graph"
    );
    let index = MovieIndex::open(&paths.index).expect("open");
    let hits = index
        .hnsw()
        .expect("graph")
        .search(index.flat().vector(3), 1, None);
    assert_eq!(hits[0].position, 3);
    // A new tag on Alien (position 3) changes its document: that vector alone is embedded.
    std::fs::write(
        data.path().join("tags.csv"),
        format!("{}1,4,spaceship,1445715002\n", crate::common::TAGS),
    )
    .expect("write");
    let third = build(&paths, &BuildOptions::default()).expect("rebuild");
    assert_eq!(third.counts.reused_vectors, 5);
    assert!(
        !third.counts.reused_graph,
        "a changed vector rebuilds the graph"
    );
    let after = vectors(&paths);
    let dim = 384;
    for movie in 0..6 {
        let (old, new) = (
            &before[movie * dim..(movie + 1) * dim],
            &after[movie * dim..(movie + 1) * dim],
        );
        assert_eq!(old == new, movie != 3, "movie {movie}");
    }
    // Vectors of other weights (here: a manifest that says so) are never reused.
    edit_manifest(&crate::common::generation_dir(&paths.index), |m| {
        m["model"]["weights"]["sha256"] = serde_json::json!("0".repeat(64));
    });
    let fourth = build(&paths, &BuildOptions::default()).expect("rebuild");
    assert_eq!(fourth.counts.reused_vectors, 0);
    assert_eq!(fourth.counts.movies, 6);
}
