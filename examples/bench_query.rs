//! Warm, in-process query latency, HNSW recall and serving-stack scoring latency, for
//! `scripts/bench.sh`.
//!
//! `cargo run --release --example bench_query -- [--index DIR] [ROUNDS]` (data, model and index
//! resolved as by the CLI, from REELRANK_DATA / REELRANK_MODEL / REELRANK_INDEX).

use std::time::Instant;

use reelrank::ann::FlatIndex;
use reelrank::engine::{Engine, PersonSpec, RecommendRequest, SearchMode, SearchRequest};
use reelrank::rank::stack::{Person, StackKind};
use reelrank::Paths;

/// The allocator of the `reelrank` binary, so that these figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const QUERIES: [&str; 12] = [
    "space travel and futuristic wars",
    "animated movie about toys",
    "romantic comedy in paris",
    "a heist in las vegas",
    "serial killer detective thriller",
    "a boy wizard goes to a school of magic",
    "world war two soldiers behind enemy lines",
    "funny talking animals",
    "dystopian future where machines rule",
    "coming of age story in high school",
    "haunted house horror",
    "mafia family drama",
];

/// Prints a line, ending quietly if stdout is closed (`| head`).
fn say(line: String) {
    use std::io::Write;
    if writeln!(std::io::stdout(), "{line}").is_err() {
        std::process::exit(0);
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut index = std::env::var_os("REELRANK_INDEX").map(Into::into);
    let mut rounds = 20usize;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--index" => index = args.next().map(Into::into),
            n => rounds = n.parse()?,
        }
    }
    let paths = Paths::resolve(
        std::env::var_os("REELRANK_DATA").map(Into::into),
        std::env::var_os("REELRANK_MODEL").map(Into::into),
        index,
    );
    // No query cache: every search embeds its query, as a first-time query does.
    let engine = Engine::open(&paths)?.with_query_cache(0);
    // As the server does at start (`Engine::load_all`).
    let t = Instant::now();
    engine.index().flat().make_resident();
    engine.index().flat().prepare_fast_scan();
    say(format!(
        "vectors resident and half-precision scan prepared in {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    ));

    // Warm-up, then timed rounds over every query, for each retrieval mode.
    for query in QUERIES {
        engine.search(&SearchRequest::new(query))?;
    }
    for mode in [
        SearchMode::Semantic,
        SearchMode::Hybrid,
        SearchMode::Keyword,
    ] {
        let stages = ["embed", "keyword", "retrieve", "rerank"];
        let mut total = vec![];
        let mut stage_ms: Vec<Vec<f64>> = vec![vec![]; stages.len()];
        for _ in 0..rounds {
            for query in QUERIES {
                let mut request = SearchRequest::new(query);
                request.mode = mode;
                let t = Instant::now();
                let response = engine.search(&request)?;
                total.push(t.elapsed().as_secs_f64() * 1e3);
                for (times, stage) in stage_ms.iter_mut().zip(stages) {
                    times.push(response.timings_ms.get(stage).copied().unwrap_or(0.0));
                }
            }
        }
        say(format!(
            "warm search --mode {} ({} queries): p50 {:.2} ms, p95 {:.2} ms; stage medians: embed {:.2} ms, keyword {:.3} ms, retrieve {:.3} ms, rerank {:.3} ms",
            mode.name(),
            total.len(),
            median(&mut total),
            percentile(&mut total, 0.95),
            median(&mut stage_ms[0]),
            median(&mut stage_ms[1]),
            median(&mut stage_ms[2]),
            median(&mut stage_ms[3])
        ));
    }

    // Stage one alone: HNSW at several ef against the exact scan, 300 title queries.
    let catalog = &engine.index().catalog().movies;
    let vectors: Vec<Vec<f32>> = (0..300)
        .map(|i| {
            engine
                .encoder()
                .embed(&catalog[(i * 7919) % catalog.len()].movie.title)
        })
        .collect::<Result<_, _>>()?;
    // The f32 scan (what a one-shot process runs), then the prepared one.
    let f32_scan = FlatIndex::new(
        engine.index().flat().vectors().to_vec(),
        engine.index().flat().dim(),
    );
    let mut f32_ms = vec![];
    for v in &vectors {
        let t = Instant::now();
        f32_scan.search(v, 10, &|_| true);
        f32_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    say(format!(
        "exact scan, f32: {:.3} ms/query (median)",
        median(&mut f32_ms)
    ));
    let mut exact_ms = vec![];
    let exact: Vec<_> = vectors
        .iter()
        .map(|v| {
            let t = Instant::now();
            let hits = engine.index().flat().search(v, 10, &|_| true);
            exact_ms.push(t.elapsed().as_secs_f64() * 1e3);
            hits
        })
        .collect();
    say(format!(
        "exact scan, half precision then rescored: {:.3} ms/query (median)",
        median(&mut exact_ms)
    ));
    // Stage one as a plain search calls it: the engine's retriever (the scan or the graph, by
    // catalogue size) for the default number of candidates.
    let depth = reelrank::engine::DEFAULT_QUERY_CANDIDATES;
    let mut stage_one_ms = vec![];
    let mut how = "";
    for v in &vectors {
        let t = Instant::now();
        how = engine.retrieve(v, depth, &Default::default(), false).1;
        stage_one_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    say(format!(
        "stage one ({how}), {depth} candidates: {:.3} ms/query (median)",
        median(&mut stage_one_ms)
    ));
    let graph = engine.index().hnsw()?;
    for ef in [64, 128, 256, 400] {
        let mut ms = vec![];
        for v in &vectors {
            let t = Instant::now();
            graph.search_with_ef(v, 10, ef, None);
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        say(format!(
            "hnsw ef {ef}: recall@10 {:.4}, {:.3} ms/query (median)",
            graph.recall_at(&vectors, &exact, 10, ef),
            median(&mut ms)
        ));
    }

    // Stage two with the serving stack: load it, then score 100 candidates for one user
    // (every feature, then the meta-model), for 100 users × `rounds`.
    let t = Instant::now();
    let stack = engine.stack()?;
    say(format!(
        "stack: loaded in {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    ));
    let n = catalog.len() as u32;
    let candidates: Vec<u32> = (0..100u32).map(|i| (i * 97 + 13) % n).collect();
    let users: Vec<u32> = (1..=610)
        .step_by(6)
        .filter(|&u| stack.knows_user(u))
        .collect();
    for kind in StackKind::ALL {
        let mut ms = vec![];
        for _ in 0..rounds {
            for &user in &users {
                let t = Instant::now();
                let scores = stack.score_person(kind, &Person::User(user), &candidates);
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                assert_eq!(scores.len(), candidates.len());
            }
        }
        say(format!(
            "stack {}: 100 candidates for one user: p50 {:.3} ms, p95 {:.3} ms ({} calls)",
            kind.name(),
            median(&mut ms),
            percentile(&mut ms, 0.95),
            ms.len()
        ));
    }

    // Personalised: recommend, and search with and without the person, warm (query
    // embeddings cached, so the difference is what personalisation costs), same users.
    let (mut recommend_ms, mut plain_ms, mut personal_ms) = (vec![], vec![], vec![]);
    let mut recommend_stage_ms = [vec![], vec![]];
    for _ in 0..rounds {
        for (i, &user) in users.iter().enumerate() {
            let t = Instant::now();
            let response = engine.recommend(&RecommendRequest::new(PersonSpec::user(user)))?;
            recommend_ms.push(t.elapsed().as_secs_f64() * 1e3);
            for (stage, times) in ["candidates", "rerank"].iter().zip(&mut recommend_stage_ms) {
                times.push(response.timings_ms.get(*stage).copied().unwrap_or(0.0));
            }
            let mut request = SearchRequest::new(QUERIES[i % QUERIES.len()]);
            let t = Instant::now();
            engine.search(&request)?;
            plain_ms.push(t.elapsed().as_secs_f64() * 1e3);
            request.person = PersonSpec::user(user);
            let t = Instant::now();
            engine.search(&request)?;
            personal_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    say(format!(
        "recommend (warm): p50 {:.2} ms, p95 {:.2} ms; stage medians: candidates {:.2} ms, rerank {:.2} ms",
        median(&mut recommend_ms),
        percentile(&mut recommend_ms, 0.95),
        median(&mut recommend_stage_ms[0]),
        median(&mut recommend_stage_ms[1]),
    ));
    say(format!(
        "search, query embedded each time: plain p50 {:.2} ms, p95 {:.2} ms; --user p50 {:.2} ms, p95 {:.2} ms",
        median(&mut plain_ms),
        percentile(&mut plain_ms, 0.95),
        median(&mut personal_ms),
        percentile(&mut personal_ms, 0.95)
    ));
    Ok(())
}
