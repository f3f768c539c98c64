//! Writes a synthetic MovieLens directory in the shape of ml-latest (seeded) and prints what
//! it wrote as JSON: the data of `scripts/bench_scale.sh` and `scripts/bench_models.sh`.
//!
//! `cargo run --release --example synth_movielens -- --ratings 33832162 --out DIR [--seed 42]`

use std::path::PathBuf;

use anyhow::{bail, Context};
use reelrank::data::synthetic::{self, Shape, ML_LATEST_RATINGS};

fn main() -> anyhow::Result<()> {
    let mut ratings = ML_LATEST_RATINGS;
    let mut seed = 42;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--ratings" => ratings = value.parse().context("--ratings: a count")?,
            "--seed" => seed = value.parse().context("--seed: an integer")?,
            "--out" => out = Some(PathBuf::from(value)),
            _ => bail!("unknown flag {flag} (--ratings N, --seed S, --out DIR)"),
        }
    }
    let out = out.context("--out DIR is required")?;
    let summary = synthetic::write(&Shape::ml_latest(ratings, seed), &out)?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
