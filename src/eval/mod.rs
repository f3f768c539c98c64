//! Evaluation: metrics (defined once), the seeds' protocol (base models and stacks), the
//! full-catalogue protocol, and their reports. [`run`] is what `reelrank evaluate` does.

pub mod full;
pub mod metrics;
pub mod personal;
pub mod protocol;
pub mod report;
pub mod search;

use std::path::PathBuf;
use std::time::Instant;

pub use protocol::{evaluate_seed_protocol, EvalConfig, EvalReport, ModelResult};

use crate::config::Paths;
use crate::data::split::{Split, SplitBy};
use crate::data::{Dataset, RATING_RANGE};
use crate::engine::{BuildOptions, Engine};
use crate::error::{Error, Result};
use crate::fsutil::ms;

/// Which evaluation protocol runs (also the values of `--protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// The notebooks' protocol: each test user's own test rows ranked.
    Seed,
    /// Every unrated movie ranked, with the two-stage pipeline end to end.
    Full,
    /// Search quality on judged query sets, for each retrieval mode.
    Search,
    /// Personal search against plain search, on queries made from held-out liked movies.
    PersonalSearch,
}

/// One `reelrank evaluate` run.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRequest {
    /// The protocol.
    pub protocol: Protocol,
    /// Seed of the split, of MF and of the Random row.
    pub seed: u64,
    /// Several split seeds (seed and full protocols): one run each, then mean ± std.
    pub seeds: Vec<u64>,
    /// A split file to reuse instead of a seeded split.
    pub split: Option<PathBuf>,
    /// How a seeded split chooses its test part.
    pub split_by: SplitBy,
    /// Where to write the report files (seed protocol only).
    pub report: Option<PathBuf>,
    /// Cut-off of the ranking metrics.
    pub k: usize,
    /// Rating from which a test row is relevant.
    pub threshold: f32,
    /// The directory of the judged query sets (search protocol).
    pub queries: PathBuf,
    /// Test users sampled per split seed (personal-search protocol).
    pub test_users: usize,
    /// Test users sampled per split seed by the full protocol (all when `None`).
    pub sample_users: Option<usize>,
}

/// What an evaluation prints: a text table and the JSON document.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOutput {
    /// The aligned text table.
    pub text: String,
    /// The `--json` document.
    pub json: serde_json::Value,
}

/// Runs an evaluation on the data of `paths`, with the movie embeddings of its index (built
/// first, with a progress bar, if missing).
pub fn run(paths: &Paths, options: &BuildOptions, request: &EvalRequest) -> Result<EvalOutput> {
    let bad = |name: &str, message: String| Error::InvalidArgument {
        name: name.into(),
        message,
    };
    if !RATING_RANGE.contains(&request.threshold) {
        return Err(bad(
            "--threshold",
            format!(
                "{} is outside {}..={}",
                request.threshold,
                RATING_RANGE.start(),
                RATING_RANGE.end()
            ),
        ));
    }
    if matches!(request.protocol, Protocol::Full | Protocol::PersonalSearch)
        && request.report.is_some()
    {
        return Err(bad("--report", "is only written by --protocol seed".into()));
    }
    if request.sample_users.is_some() && request.protocol != Protocol::Full {
        return Err(bad(
            "--sample-users",
            "samples the test users of --protocol full only".into(),
        ));
    }
    if request.protocol == Protocol::Search {
        if request.report.is_some() || !request.seeds.is_empty() || request.split.is_some() {
            return Err(bad(
                "--protocol search",
                "takes no --report, --seeds or --split (it uses no rating split)".into(),
            ));
        }
        let engine = Engine::open_or_build(paths, options)?;
        let template = engine.index().manifest().document_template;
        let variants = search::default_variants(template);
        let rows = search::evaluate_search(&engine, &request.queries, &variants)?;
        return Ok(EvalOutput {
            text: format!(
                "documents: {} template\n{}",
                template.name(),
                report::search_table(&rows)
            ),
            json: serde_json::json!({
                "protocol": "search",
                "document_template": template,
                "k": search::SEARCH_K,
                "queries": request.queries.display().to_string(),
                "rows": rows,
            }),
        });
    }
    let started = Instant::now();
    let dataset = Dataset::load(&paths.data)?;
    let load_ms = ms(started);
    // The movie embeddings come from the index. Its manifest matches the dataset just loaded,
    // so rows follow `dataset.movies`.
    let engine = Engine::open_or_build(paths, options)?;
    let index = engine.index();
    let config = |seed: u64| EvalConfig {
        k: request.k,
        threshold: request.threshold,
        seed,
        ..EvalConfig::default()
    };
    if request.protocol == Protocol::PersonalSearch {
        let seeds = if request.seeds.is_empty() {
            vec![request.seed]
        } else {
            request.seeds.clone()
        };
        let mut reports = Vec::new();
        for seed in seeds {
            let split = match &request.split {
                Some(file) => Split::read(file, &dataset)?,
                None => Split::new(&dataset.ratings, request.split_by, seed),
            };
            reports.push(personal::evaluate_personal_search(
                &engine,
                paths,
                &dataset,
                &split,
                &config(seed),
                request.test_users,
            )?);
        }
        return Ok(EvalOutput {
            text: report::personal_search_table(&reports),
            json: report::personal_search_json(&reports),
        });
    }
    if !request.seeds.is_empty() {
        let split = |seed: u64| Split::new(&dataset.ratings, request.split_by, seed);
        let seeds = request.seeds.iter().copied();
        return Ok(if request.protocol == Protocol::Full {
            let reports = seeds
                .map(|seed| {
                    full::evaluate_full_protocol(
                        &dataset,
                        &split(seed),
                        index,
                        &config(seed),
                        request.sample_users,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            EvalOutput {
                text: report::full_seeds_table(&reports),
                json: report::full_seeds_json(&reports),
            }
        } else {
            let reports: Vec<_> = seeds
                .map(|seed| {
                    evaluate_seed_protocol(&dataset, &split(seed), index.flat(), &config(seed))
                })
                .collect();
            EvalOutput {
                text: report::seeds_table(&reports),
                json: report::seeds_json(&reports),
            }
        });
    }
    let split = match &request.split {
        Some(file) => Split::read(file, &dataset)?,
        None => Split::new(&dataset.ratings, request.split_by, request.seed),
    };
    match request.protocol {
        Protocol::Full => {
            let mut report = full::evaluate_full_protocol(
                &dataset,
                &split,
                index,
                &config(request.seed),
                request.sample_users,
            )?;
            report.timings_ms.insert("load_data".into(), load_ms);
            Ok(EvalOutput {
                text: report::full_table(&report),
                json: report.to_json(),
            })
        }
        // (Search and personal search returned above.)
        Protocol::Seed | Protocol::Search | Protocol::PersonalSearch => {
            let mut report =
                evaluate_seed_protocol(&dataset, &split, index.flat(), &config(request.seed));
            report.timings_ms.insert("load_data".into(), load_ms);
            if let Some(dir) = &request.report {
                report::write_report(dir, &report, &dataset, &split)?;
                tracing::info!("wrote the report into {}", dir.display());
            }
            Ok(EvalOutput {
                text: report::text_table(&report),
                json: report.to_json(),
            })
        }
    }
}
