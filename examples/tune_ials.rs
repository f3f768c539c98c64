//! Sweeps iALS's settings on the full-catalogue protocol of one split seed (1 by default, not
//! one of the reported seeds 42, 7 and 2024): fit on train_full, rank every movie a test user
//! has not rated, NDCG@10 and Precision@10 against their test movies rated ≥ 4. The chosen
//! settings are `IalsConfig::default()`; the README reports the sweep.
//!
//! `cargo run --release --example tune_ials [SEED]` (REELRANK_DATA as for the CLI).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;
use reelrank::ann::top_by;
use reelrank::data::split::{Split, SplitBy};
use reelrank::data::{Dataset, LIKED_THRESHOLD};
use reelrank::eval::metrics::ranking_metrics;
use reelrank::models::{Ials, IalsConfig, Interactions, Scorer};

fn main() -> anyhow::Result<()> {
    let data = std::env::var_os("REELRANK_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("data/ml-latest-small"));
    let seed: u64 = std::env::args().nth(1).map_or(Ok(1), |s| s.parse())?;
    let dataset = Dataset::load(&data)?;
    let split = Split::new(&dataset.ratings, SplitBy::Random, seed);
    let train = Interactions::from_rows(&dataset.ratings, &split.train_full());
    let test = Interactions::from_rows(&dataset.ratings, &split.test);
    let relevant = test.movies_by_user(LIKED_THRESHOLD);
    let rated: HashMap<u32, HashSet<u32>> = train
        .movies_by_user(f32::MIN)
        .into_iter()
        .map(|(u, m)| (u, m.into_iter().collect()))
        .collect();
    let n_movies = dataset.movies.len();
    let mut users: Vec<u32> = relevant.keys().copied().collect();
    users.sort_unstable();
    let base = IalsConfig::default();
    let mut configs = vec![base];
    for dim in [32, 128, 256] {
        configs.push(IalsConfig { dim, ..base });
    }
    for unobserved_weight in [0.1, 0.2, 0.5, 1.0] {
        configs.push(IalsConfig {
            unobserved_weight,
            ..base
        });
    }
    for regularization in [0.003, 0.005, 0.02, 0.03] {
        configs.push(IalsConfig {
            regularization,
            ..base
        });
    }
    for frequency_scaling in [0.0, 0.5] {
        configs.push(IalsConfig {
            frequency_scaling,
            ..base
        });
    }
    for epochs in [6, 8, 20] {
        configs.push(IalsConfig { epochs, ..base });
    }
    println!("split seed {seed}, {} test users", users.len());
    println!("dim\tα0\tλ\tν\tepochs\tfit s\tP@10\tNDCG@10");
    for config in configs {
        let t = Instant::now();
        let model = Ials::fit(&train, n_movies, config);
        let fit_s = t.elapsed().as_secs_f64();
        let per_user: Vec<(f64, f64)> = users
            .par_iter()
            .map(|&user| {
                let seen = rated.get(&user);
                let unrated: Vec<u32> = (0..n_movies as u32)
                    .filter(|m| seen.is_none_or(|s| !s.contains(m)))
                    .collect();
                let scores = model.score(&vec![user; unrated.len()], &unrated);
                let scored: Vec<(u32, f32)> = unrated.into_iter().zip(scores).collect();
                let top = top_by(scored, 10, |&(m, s)| (f64::from(s), m as usize));
                let wanted = &relevant[&user];
                let hits: Vec<bool> = top.iter().map(|(m, _)| wanted.contains(m)).collect();
                let m = ranking_metrics(&hits, wanted.len(), 10, 10).unwrap_or_default();
                (m.precision, m.ndcg)
            })
            .collect();
        let n = per_user.len().max(1) as f64;
        let precision = per_user.iter().map(|p| p.0).sum::<f64>() / n;
        let ndcg = per_user.iter().map(|p| p.1).sum::<f64>() / n;
        println!(
            "{}\t{}\t{}\t{}\t{}\t{fit_s:.2}\t{precision:.4}\t{ndcg:.4}",
            config.dim,
            config.unobserved_weight,
            config.regularization,
            config.frequency_scaling,
            config.epochs
        );
    }
    Ok(())
}
