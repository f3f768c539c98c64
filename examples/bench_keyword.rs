//! Keyword index build time, size and query latency on a MovieLens directory (for the scale
//! row of the README: `examples/synth_movielens.rs` makes one of ML-latest's size). Medians over ROUNDS builds.
//!
//! `cargo run --release --example bench_keyword -- DIR [ROUNDS]`

use std::time::Instant;

use reelrank::data::Dataset;
use reelrank::engine::keyword_index;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: bench_keyword DIR [ROUNDS]"))?;
    let rounds: usize = args.next().map_or(Ok(3), |r| r.parse())?;
    let dataset = Dataset::load(std::path::Path::new(&dir))?;
    let mut build_ms = Vec::new();
    let mut bytes = 0;
    let mut index = None;
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        let built = keyword_index(&dataset)?;
        bytes = built.to_bytes()?.len();
        build_ms.push(t.elapsed().as_secs_f64() * 1e3);
        index = Some(built);
    }
    let index = index.ok_or_else(|| anyhow::anyhow!("no round ran"))?;
    let mut query_ms = Vec::new();
    for query in [
        "the matrix",
        "synthetic movie 4242",
        "funny space",
        "dark twist ending",
    ] {
        for _ in 0..20 {
            let t = Instant::now();
            index.search(query, 100, None)?;
            query_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{} movies, {} tags: keyword index built (and packed) in median {:.0} ms of {}, {:.2} MB; \
         query p50 {:.2} ms (100 hits)",
        dataset.movies.len(),
        dataset.tags.len(),
        median(&mut build_ms),
        build_ms.len(),
        bytes as f64 / 1e6,
        median(&mut query_ms)
    );
    Ok(())
}
