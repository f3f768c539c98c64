//! Shared helpers: the real data and model from `../shared`, tiny MovieLens fixtures, and one
//! real index built once per test process.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use reelrank::engine::{build, BuildOptions, Engine};
use reelrank::Paths;

/// A variable set by `.cargo/config.toml` (or the shell), else the `../shared` default.
fn shared(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(fallback))
}

/// The real ml-latest-small.
pub fn real_data() -> PathBuf {
    shared("REELRANK_DATA", "../shared/data/ml-latest-small")
}

/// The real all-MiniLM-L6-v2.
pub fn real_model() -> PathBuf {
    shared("REELRANK_MODEL", "../shared/models/all-MiniLM-L6-v2")
}

/// The `reelrank` binary with the real model and no inherited log settings.
pub fn reelrank() -> assert_cmd::Command {
    let mut command = assert_cmd::Command::cargo_bin("reelrank").expect("binary");
    command
        .env("REELRANK_MODEL", real_model())
        .env_remove("RUST_LOG");
    command
}

/// `reelrank --data <real data> --index <the real index>`.
pub fn real_cli() -> assert_cmd::Command {
    let mut command = reelrank();
    command
        .arg("--data")
        .arg(real_data())
        .arg("--index")
        .arg(real_index_dir());
    command
}

/// Runs `command`, requires success, and parses its standard output as JSON.
pub fn json_output(command: &mut assert_cmd::Command) -> serde_json::Value {
    let output = command.output().expect("run reelrank");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

/// A temporary directory that lives as long as the value.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

pub const MOVIES: &str = "movieId,title,genres
1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy
2,Star Wars: Episode IV - A New Hope (1977),Action|Adventure|Sci-Fi
3,\"American President, The (1995)\",Comedy|Drama|Romance
4,Alien (1979),Horror|Sci-Fi
5,Heat (1995),Action|Crime|Thriller
6,Untitled Film,(no genres listed)
";

pub const RATINGS: &str = "userId,movieId,rating,timestamp
1,1,4.0,964982703
1,2,5.0,964981247
1,4,4.5,964982224
2,1,3.0,964982931
2,3,2.5,964983815
3,2,5.0,964982400
3,5,0.5,964980868
4,2,4.0,964982176
";

pub const TAGS: &str = "userId,movieId,tag,timestamp
1,1,pixar,1445714994
2,1,Pixar,1445714996
2,1,toys,1445714997
3,2,space opera,1445715000
3,4,\"xenomorph, scary\",1445715001
";

pub const LINKS: &str = "movieId,imdbId,tmdbId
1,0114709,862
2,0076759,11
3,0112346,9087
4,0078748,348
5,0113277,949
6,0000001,
";

/// A tiny, valid MovieLens directory; `edit` may change any file's text (or return None to
/// leave the file out) before it is written.
pub fn tiny_movielens(edit: impl Fn(&str, &str) -> Option<String>) -> tempfile::TempDir {
    let dir = tempdir();
    for (name, text) in [
        ("movies.csv", MOVIES),
        ("ratings.csv", RATINGS),
        ("tags.csv", TAGS),
        ("links.csv", LINKS),
    ] {
        if let Some(text) = edit(name, text) {
            std::fs::write(dir.path().join(name), text).expect("write fixture");
        }
    }
    dir
}

/// The unchanged tiny dataset.
pub fn tiny() -> tempfile::TempDir {
    tiny_movielens(|_, text| Some(text.to_string()))
}

/// The directory of the current generation of the index at `root`.
pub fn generation_dir(root: &Path) -> PathBuf {
    let current = std::fs::read_to_string(root.join("CURRENT")).expect("CURRENT");
    root.join(current.trim())
}

/// Paths for a dataset directory, the real model and an index under `index_root`.
pub fn paths(data: &Path, index_root: &Path) -> Paths {
    Paths::resolve(
        Some(data.to_path_buf()),
        Some(real_model()),
        Some(index_root.join("index")),
    )
}

fn real_index_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("real-index")
}

/// The directory of [`real_engine`]'s index (built by the first call of it).
pub fn real_index_dir() -> PathBuf {
    real_engine();
    real_index_root().join("index")
}

/// The index over the real ml-latest-small, built once per test process (a full build: the
/// same code path as `reelrank build`).
/// It lives under cargo's target tmp directory, replaced by each run, so no copy is leaked.
pub fn real_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let paths = paths(&real_data(), &real_index_root());
        build(&paths, &BuildOptions::default()).expect("build the real index");
        Engine::open(&paths).expect("open the real index")
    })
}

/// The real index opened again, walking the HNSW graph at any catalogue size (ml-latest-small
/// is small enough for the exact scan by default).
pub fn real_graph_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        real_engine();
        let paths = paths(&real_data(), &real_index_root());
        Engine::open(&paths)
            .expect("open the real index")
            .with_graph_from(0)
    })
}
