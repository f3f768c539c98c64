//! Sweeps the search weights on the tuning halves of `tests/queries/` (even lines): the
//! rating-graph feedback weight, with and without the query rules. The chosen constants live
//! in `rank::fusion` and `intent`; the README reports the held-out halves.
//!
//! `cargo run --release --example tune_search` (REELRANK_DATA / REELRANK_MODEL / REELRANK_INDEX
//! as for the CLI).

use std::path::Path;

use reelrank::engine::{BuildOptions, Engine, SearchMode};
use reelrank::eval::search::{evaluate_search, SearchVariant};
use reelrank::Paths;

fn main() -> anyhow::Result<()> {
    let env = |name: &str| std::env::var_os(name).map(std::path::PathBuf::from);
    let paths = Paths::resolve(
        env("REELRANK_DATA"),
        env("REELRANK_MODEL"),
        env("REELRANK_INDEX"),
    );
    let engine = Engine::open_or_build(&paths, &BuildOptions::default())?;
    let weights = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5];
    let names = [
        ["semantic fb 0", "hybrid fb 0"],
        ["semantic fb 0.05", "hybrid fb 0.05"],
        ["semantic fb 0.1", "hybrid fb 0.1"],
        ["semantic fb 0.2", "hybrid fb 0.2"],
        ["semantic fb 0.3", "hybrid fb 0.3"],
        ["semantic fb 0.5", "hybrid fb 0.5"],
    ];
    let mut variants = Vec::new();
    for (names, weight) in names.iter().zip(weights) {
        for (name, mode) in names.iter().zip([SearchMode::Semantic, SearchMode::Hybrid]) {
            variants.push(SearchVariant {
                feedback: weight,
                ..SearchVariant::of(name, mode)
            });
        }
    }
    let rows = evaluate_search(&engine, Path::new("tests/queries"), &variants)?;
    for row in rows.iter().filter(|r| r.half == "tune") {
        println!(
            "{:<13} {:<17} hit@1 {:.3} mrr {:.3} hit@10 {:.3} recall {:.3}",
            row.set, row.variant, row.hit_at_1, row.mrr_at_10, row.hit_at_10, row.recall_at_10
        );
    }
    Ok(())
}
