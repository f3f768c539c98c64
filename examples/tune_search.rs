//! Sweeps the request-level search weights on the tuning halves of `tests/queries/` (even
//! lines), one at a time, the others at their defaults: alpha (similarity against popularity),
//! the title-match weight of the fusion, and the rating-graph feedback. The chosen constants
//! live in `rank` and `rank::fusion`; the README reports the held-out halves.
//!
//! `cargo run --release --example tune_search` (REELRANK_DATA / REELRANK_MODEL / REELRANK_INDEX
//! as for the CLI).

use std::path::Path;

use reelrank::engine::{BuildOptions, Engine, SearchMode};
use reelrank::eval::search::{evaluate_search, SearchVariant};
use reelrank::rank::fusion::Fusion;
use reelrank::Paths;

fn main() -> anyhow::Result<()> {
    let env = |name: &str| std::env::var_os(name).map(std::path::PathBuf::from);
    let paths = Paths::resolve(
        env("REELRANK_DATA"),
        env("REELRANK_MODEL"),
        env("REELRANK_INDEX"),
    );
    let engine = Engine::open_or_build(&paths, &BuildOptions::default())?;
    let hybrid = SearchVariant::of("hybrid", SearchMode::Hybrid);
    let mut variants = Vec::new();
    for (name, alpha) in [("alpha 0.4", 0.4), ("alpha 0.5", 0.5), ("alpha 0.6", 0.6)]
        .into_iter()
        .chain([("alpha 0.7", 0.7), ("alpha 0.8", 0.8)])
    {
        variants.push(SearchVariant {
            alpha,
            ..hybrid.with_name(name)
        });
    }
    for (name, keyword_weight) in [("title 0.1", 0.1), ("title 0.2", 0.2), ("title 0.3", 0.3)] {
        variants.push(SearchVariant {
            fusion: Fusion::Convex { keyword_weight },
            ..hybrid.with_name(name)
        });
    }
    for (name, feedback) in [
        ("feedback 0.1", 0.1),
        ("feedback 0.2", 0.2),
        ("feedback 0.5", 0.5),
    ] {
        variants.push(SearchVariant {
            feedback,
            ..hybrid.with_name(name)
        });
    }
    let rows = evaluate_search(&engine, Path::new("tests/queries"), &variants)?;
    for row in rows.iter().filter(|r| r.half == "tune") {
        println!(
            "{:<13} {:<13} hit@1 {:.3} mrr {:.3} hit@10 {:.3} recall {:.3}",
            row.set, row.variant, row.hit_at_1, row.mrr_at_10, row.hit_at_10, row.recall_at_10
        );
    }
    Ok(())
}
