//! The encoder against its peer's method (`../shared/tools/ort_bench.py`): the same texts, the
//! same 12 queries, catalogue docs/s (median of runs after a warm-up) and query p50/p95; then
//! query latency by length (1, 7, 32 and 256 tokens) on one thread and split over the cores,
//! and the cosine to candle's stock `BertModel` on the reference texts. For
//! `scripts/bench_encoder.sh`, which runs ONNX Runtime right after it.
//!
//! `cargo run --release --example bench_encoder -- TEXTS.jsonl [RUNS]` (model resolved as by
//! the CLI, from REELRANK_MODEL).

use std::time::Instant;

use reelrank::embed::fused::{FusedBert, Parallelism, Precision};
use reelrank::embed::{model_files, Encoder, ModelSource, StockBert};
use reelrank::linalg::Team;

/// `ort_bench.py`'s queries, in its order.
const QUERIES: [&str; 12] = [
    "space travel and futuristic wars",
    "animated movie about toys",
    "a heist thriller with a twist ending",
    "romantic comedy in new york",
    "dark psychological thriller about memory",
    "documentary about climate change",
    "superhero team saves the world",
    "coming of age story in the 1980s",
    "zombie apocalypse survival",
    "courtroom drama about injustice",
    "jazz musician biopic",
    "samurai sword fighting epic",
];

fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

fn main() -> anyhow::Result<()> {
    // rayon's global pool keeps every core (gemm's split products use it); candle, read on
    // every product, keeps to the calling thread, as the encoder this replaced arranged.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .build_global()?;
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let mut args = std::env::args().skip(1);
    let texts_file = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: TEXTS.jsonl [RUNS]"))?;
    let runs: usize = args.next().map_or(Ok(3), |r| r.parse())?;
    let texts: Vec<String> = std::fs::read_to_string(&texts_file)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| -> anyhow::Result<String> {
            if l.starts_with('{') {
                let v: serde_json::Value = serde_json::from_str(l)?;
                Ok(v["text"].as_str().unwrap_or_default().to_string())
            } else {
                Ok(l.to_string())
            }
        })
        .collect::<anyhow::Result<_>>()?;
    let source = ModelSource::from_option(std::env::var_os("REELRANK_MODEL").map(Into::into));
    let files = model_files(&source)?;
    let t = Instant::now();
    let encoder = Encoder::load(&files)?;
    println!("load: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);

    // Catalogue: a warm-up on the 64 longest, then `runs` timed runs.
    let mut longest: Vec<String> = texts.clone();
    longest.sort_by_key(|t| std::cmp::Reverse(t.len()));
    encoder.embed_texts(&longest[..64.min(longest.len())])?;
    let mut walls = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        encoder.embed_texts(&texts)?;
        walls.push(t.elapsed().as_secs_f64());
    }
    let median = if walls.is_empty() {
        f64::NAN
    } else {
        percentile(&mut walls.clone(), 0.5)
    };
    println!(
        "reelrank: {:.0} docs/s (median of {runs}, {} texts; runs {:?} s)",
        texts.len() as f64 / median,
        texts.len(),
        walls
            .iter()
            .map(|w| (w * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );

    // The 12 queries alone, 3 warm-up rounds then 20 timed (tokenise + forward + pool).
    for _ in 0..3 {
        for q in QUERIES {
            encoder.embed(q)?;
        }
    }
    let mut latency = Vec::new();
    for _ in 0..20 {
        for q in QUERIES {
            let t = Instant::now();
            encoder.embed(q)?;
            latency.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    println!(
        "reelrank: query p50 {:.2} ms p95 {:.2} ms",
        percentile(&mut latency, 0.5),
        percentile(&mut latency, 0.95)
    );

    // By length, the forward alone, on one thread and split over the cores.
    let model: &FusedBert = encoder.model();
    let team = Team::new(cores, "bench-team")?;
    // BENCH_TOKENS=N times that length alone (for a profiler).
    let lengths: Vec<usize> = match std::env::var("BENCH_TOKENS") {
        Ok(n) => vec![n.parse()?],
        Err(_) => vec![1, 7, 32, 256],
    };
    for tokens in lengths {
        // [CLS] … [SEP] around `tokens − 2` ordinary word pieces ("movie", id 3185).
        let ids: Vec<u32> = std::iter::once(101)
            .chain(std::iter::repeat_n(3185, tokens.saturating_sub(2)))
            .chain(std::iter::once(102))
            .take(tokens)
            .collect();
        let mut line = format!("{tokens:>3} tokens:");
        for (name, parallelism, precision) in [
            ("f32 1 thread", Parallelism::Sequential, Precision::Full),
            ("f32 split", Parallelism::Team(&team), Precision::Full),
            (
                "f16w 1 thread",
                Parallelism::Sequential,
                Precision::HalfWeights,
            ),
            (
                "f16w split",
                Parallelism::Team(&team),
                Precision::HalfWeights,
            ),
        ] {
            let mut ms = Vec::new();
            for i in 0..60 {
                let t = Instant::now();
                model.embed(&[&ids], parallelism, precision);
                if i >= 10 {
                    ms.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            line.push_str(&format!(
                "  {name} p50 {:.2} ms p95 {:.2} ms",
                percentile(&mut ms.clone(), 0.5),
                percentile(&mut ms, 0.95)
            ));
        }
        println!("{line}");
    }

    if runs == 0 {
        // RUNS=0: the by-length table only (for quick comparisons while tuning).
        return Ok(());
    }

    // candle's stock BertModel, the encoder this replaced, in the same run: the queries, and
    // the catalogue once in batches of 32 by decreasing length, batches side by side on the
    // cores as the old encoder ran them (candle kept on one thread by RAYON_NUM_THREADS=1,
    // set at the start of `main`).
    let stock = StockBert::load(&files)?;
    let mut latency = Vec::new();
    for round in 0..8 {
        for q in QUERIES {
            let t = Instant::now();
            stock.embed(&[q])?;
            if round >= 2 {
                latency.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    let refs: Vec<&str> = longest.iter().map(String::as_str).collect();
    let t = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(cores).build()?;
    pool.install(|| {
        use rayon::prelude::*;
        refs.par_chunks(32)
            .map(|batch| stock.embed(batch).map(|_| ()))
            .collect::<reelrank::Result<Vec<()>>>()
    })?;
    println!(
        "stock candle BertModel: {:.0} docs/s (one run), query p50 {:.2} ms p95 {:.2} ms",
        texts.len() as f64 / t.elapsed().as_secs_f64(),
        percentile(&mut latency.clone(), 0.5),
        percentile(&mut latency, 0.95)
    );

    // Agreement with the stock model on short and long texts, alone and in one batch.
    let long = texts
        .iter()
        .max_by_key(|t| t.len())
        .cloned()
        .unwrap_or_default();
    let probes: Vec<&str> = QUERIES
        .iter()
        .copied()
        .chain([texts[0].as_str(), long.as_str(), "a"])
        .collect();
    let stock = stock.embed(&probes)?;
    let fused = encoder.embed_batch(&probes)?;
    let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let worst = stock
        .iter()
        .zip(&fused)
        .map(|(s, f)| cosine(s, f))
        .fold(f32::INFINITY, f32::min);
    println!(
        "cosine to candle's stock BertModel, worst of {} in one batch (f32 weights): {worst:.7}",
        probes.len()
    );
    // Each alone, as a query is embedded (half-precision weights up to its length limit).
    let mut worst_alone = f32::INFINITY;
    for (probe, want) in probes.iter().zip(&stock) {
        worst_alone = worst_alone.min(cosine(&encoder.embed(probe)?, want));
    }
    println!(
        "cosine to candle's stock BertModel, worst of {} alone (the query path): {worst_alone:.7}",
        probes.len()
    );
    Ok(())
}
