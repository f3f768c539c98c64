//! Fits one collaborative base model on every rating of a dataset and prints the seconds it
//! took: `scripts/bench_models.sh` runs it once per model under `/usr/bin/time` for the peak
//! memory, on a synthetic set of the size it is given.
//!
//! `cargo run --release --example bench_models -- DATA_DIR (ease|rp3beta|ials|mf|item_knn)`, or
//! `DATA_DIR all INDEX_DIR`: every base model as the serving stack fits them (the embedding
//! profile reads the vectors of the index built from DATA_DIR), one line per model.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use reelrank::data::Dataset;
use reelrank::models::{
    ease, item_knn, rp3beta, Ease, Ials, IalsConfig, Interactions, ItemKnn, MatrixFactorization,
    MfConfig, Rp3Beta,
};
use reelrank::rank::features::BaseModels;
use reelrank::store::MovieIndex;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(args.next().context("usage: bench_models DATA_DIR MODEL")?);
    let model = args.next().context("usage: bench_models DATA_DIR MODEL")?;
    let t = Instant::now();
    let dataset = Dataset::load(&data)?;
    let rows: Vec<usize> = (0..dataset.ratings.len()).collect();
    let train = Interactions::from_rows(&dataset.ratings, &rows);
    let n = dataset.movies.len();
    let load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    match model.as_str() {
        "ease" => {
            Ease::fit(
                &train,
                n,
                ease::DEFAULT_LAMBDA,
                ease::DEFAULT_MAX_ITEMS,
                ease::DEFAULT_KEPT_WEIGHTS,
            );
        }
        "rp3beta" => {
            Rp3Beta::fit(
                &train,
                n,
                rp3beta::DEFAULT_BETA,
                rp3beta::DEFAULT_KEPT_WEIGHTS,
            );
        }
        "ials" => {
            Ials::fit(&train, n, IalsConfig::default());
        }
        "mf" => {
            let mf = MatrixFactorization::fit(&train, n, MfConfig::default());
            // The training RMSE of every epoch (on stderr: one line a model on stdout): a
            // faster loop must leave it unchanged.
            eprintln!("mf\tepoch_rmse {:?}", mf.epoch_rmse());
        }
        "item_knn" => {
            ItemKnn::fit(&train, n, item_knn::DEFAULT_K);
        }
        "all" => {
            let index = MovieIndex::open(&PathBuf::from(
                args.next()
                    .context("usage: bench_models DATA_DIR all INDEX_DIR")?,
            ))?;
            let models = BaseModels::fit(&train, &dataset, index.flat(), 42);
            for (name, ms) in &models.fit_ms {
                println!("{name}	fit_s {:.1}", ms / 1e3);
            }
        }
        other => bail!("unknown model '{other}' (ease, rp3beta, ials, mf, item_knn, all)"),
    }
    println!(
        "{model}\tratings {}\tmovies {n}\tload_s {load_s:.1}\tfit_s {:.1}",
        train.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
