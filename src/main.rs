//! The `reelrank` command line: parses arguments, calls the library, prints.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use reelrank::data::split::SplitBy;
use reelrank::data::LIKED_THRESHOLD;
use reelrank::documents::DocumentTemplate;
use reelrank::engine::{
    build, BuildOptions, Engine, ExplainRequest, Explanation, MovieRef, PersonSpec, Ranker,
    RecommendRequest, Response, SearchMode, SearchRequest, SimilarRequest, DEFAULT_K,
    DEFAULT_QUERY_CANDIDATES, DEFAULT_SEED,
};
use reelrank::eval::Protocol;
use reelrank::onboard::OnboardConfig;
use reelrank::profiles::{ProfileStore, StoreUrl};
use reelrank::rank::fusion::{Fusion, FEEDBACK_WEIGHT};
use reelrank::rank::stack::StackKind;
use reelrank::rank::{Filters, YearRange, DEFAULT_ALPHA};
use reelrank::server::ServeOptions;
use reelrank::{present, Paths};

/// mimalloc instead of glibc's allocator: opening ml-latest's catalogue allocates and frees
/// some 500,000 strings and vectors, a third of a fresh search there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Semantic two-stage movie search over MovieLens.
#[derive(Parser)]
#[command(name = "reelrank", version, about)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command shares.
#[derive(Args)]
struct Global {
    /// MovieLens directory (ratings.csv, movies.csv, tags.csv, links.csv) [default: data/ml-latest-small]
    #[arg(long, global = true, env = "REELRANK_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Local sentence-transformers model directory [default: sentence-transformers/all-MiniLM-L6-v2 from the hugging face cache]
    #[arg(long, global = true, env = "REELRANK_MODEL", value_name = "DIR")]
    model: Option<PathBuf>,
    /// Index directory [default: indexes/<dataset directory name>]
    #[arg(long, global = true, env = "REELRANK_INDEX", value_name = "DIR")]
    index: Option<PathBuf>,
    /// The profile database: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://<index>.profiles.sqlite, beside the index]
    #[arg(long, global = true, env = "REELRANK_STORE", value_name = "URL")]
    store: Option<String>,
    /// Only print errors
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More log output (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Build the index: load the data, embed every movie, build the HNSW graph, train the
    /// serving stack, publish a new generation
    Build {
        /// Seed of the serving stack's meta split, MF and trees
        #[arg(long, default_value_t = DEFAULT_SEED)]
        seed: u64,
        /// How each movie's document is written for the embedding model
        #[arg(long, value_enum, default_value_t = DocumentTemplate::default())]
        document_template: DocumentTemplate,
        /// Print the manifest as JSON
        #[arg(long)]
        json: bool,
    },
    /// Check the index in full: every file's sha256, the model and the dataset it was built from
    Verify {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Explain the serving stack: global feature importances, or one (user, movie) pair
    Explain(ExplainArgs),
    /// Recommend movies for a user or a new profile, without a query
    Recommend {
        #[command(flatten)]
        person: PersonArgs,
        /// Number of results
        #[arg(short, default_value_t = DEFAULT_K)]
        k: usize,
        #[command(flatten)]
        filters: FilterArgs,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Movies like one movie (embedding neighbours; reranked for a person if one is given)
    Similar(SimilarArgs),
    /// Create or extend a profile interactively: rate popular movies, refine on the first
    /// recommendations, save profiles/NAME.json
    Onboard {
        /// The profile to create or extend
        #[arg(long, value_name = "NAME")]
        profile: String,
        #[command(flatten)]
        profiles: ProfilesDir,
    },
    /// Search movies by free text (builds the index first if there is none)
    Search(SearchArgs),
    /// Serve the HTTP API (search, recommend, similar, movies, profiles, metrics), loading the
    /// model, index and stack once
    Serve {
        /// Address to listen on (localhost unless told otherwise; port 0 picks a free one)
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Bearer token of the administrative endpoints (POST /v1/admin/reload); without one
        /// they are refused
        #[arg(long, env = "REELRANK_ADMIN_TOKEN", value_name = "TOKEN")]
        admin_token: Option<String>,
        /// Seconds between looks at the index's CURRENT pointer for a new generation (0: only
        /// on POST /v1/admin/reload)
        #[arg(long, default_value_t = reelrank::server::DEFAULT_WATCH.as_secs_f64(), value_name = "SECS")]
        watch: f64,
        /// Query embeddings kept in memory (least recently used evicted; 0: embed every query)
        #[arg(long, default_value_t = reelrank::embed::DEFAULT_QUERY_CACHE, value_name = "N")]
        query_cache: usize,
        /// An experiment between two rankers (candidate, logistic, gbdt, lambdamart,
        /// popularity), repeatable: NAME=A:RANKER,B:RANKER[,mode=ab|interleave]
        #[arg(long = "experiment", value_name = "SPEC")]
        experiments: Vec<String>,
    },
    /// Online experiments: the report of one
    Experiment {
        #[command(subcommand)]
        action: ExperimentAction,
    },
    /// Print the embedding of a text
    Embed {
        /// The text to embed
        text: String,
        /// Print {"text", "embedding"} as JSON
        #[arg(long)]
        json: bool,
    },
    /// Evaluate the base models with the seed notebooks' protocol
    Evaluate(EvaluateArgs),
    /// Print the document embedded for a movie
    Docs {
        /// MovieLens movieId
        #[arg(long)]
        movie: u32,
        /// The document template to write it with
        #[arg(long, value_enum, default_value_t = DocumentTemplate::default())]
        document_template: DocumentTemplate,
        /// Print {"movie_id", "title", "document"} as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ExperimentAction {
    /// Per-arm click-through and liked rate with 95 % intervals and p-values (A/B), or wins,
    /// ties and losses with a sign test (interleaving); long-tail share; segments
    Report {
        /// The experiment's name (as given to `serve --experiment`)
        name: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// Write an SVG chart of the arms to FILE
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
}

/// Restrictions on the results, shared by search, similar and recommend.
#[derive(Args)]
struct FilterArgs {
    /// Keep only movies of this genre (repeatable: every genre must match)
    #[arg(long = "genre", value_name = "G")]
    genres: Vec<String>,
    /// Keep only movies released in FROM..TO (inclusive; FROM.., ..TO and YEAR work too)
    #[arg(long, value_name = "FROM..TO")]
    year: Option<String>,
}

impl FilterArgs {
    fn filters(&self) -> Result<Filters> {
        Ok(Filters {
            genres: self.genres.clone(),
            years: self.year.as_deref().map(YearRange::parse).transpose()?,
        })
    }
}

#[derive(Args)]
struct SearchArgs {
    /// What to look for, e.g. "space travel and futuristic wars"
    query: String,
    #[command(flatten)]
    filters: FilterArgs,
    /// Use the exact scan instead of HNSW
    #[arg(long)]
    exact: bool,
    /// Which retrievers answer: embeddings, BM25 keywords, or both fused
    #[arg(long, value_enum, default_value_t = SearchMode::Hybrid)]
    mode: SearchMode,
    /// Take the query literally: no "movies like X" answered as similar, no boost of the
    /// decades and genres it names
    #[arg(long)]
    no_intent: bool,
    /// Weight of the pseudo-relevance feedback through the rating graph (0 turns it off)
    #[arg(long, value_name = "W", default_value_t = FEEDBACK_WEIGHT)]
    feedback: f32,
    #[command(flatten)]
    rank: RankArgs,
}

/// How `search` and `similar` rank the nearest movies to a vector.
#[derive(Args)]
struct RankArgs {
    /// Number of results
    #[arg(short, default_value_t = DEFAULT_K)]
    k: usize,
    /// Candidates taken from the index before reranking
    #[arg(long, default_value_t = DEFAULT_QUERY_CANDIDATES)]
    candidates: usize,
    /// Without a person: weight of similarity against popularity (0..=1)
    #[arg(long, default_value_t = DEFAULT_ALPHA)]
    alpha: f32,
    /// With a person: order by (1 - w)·similarity + w·P(liked) of a rating stack (`--stack`,
    /// default logistic) instead of the personal ranker; w in 0..=1 (0.5 when only --stack
    /// is given)
    #[arg(long)]
    personal_weight: Option<f64>,
    #[command(flatten)]
    person: PersonArgs,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// Where saved profiles live.
#[derive(Args)]
struct ProfilesDir {
    /// Directory of saved profiles
    #[arg(
        long = "profiles",
        env = "REELRANK_PROFILES",
        default_value = "profiles",
        value_name = "DIR"
    )]
    dir: PathBuf,
}

/// Who to personalise for: a known user, or a new person's ratings.
#[derive(Args)]
struct PersonArgs {
    /// MovieLens userId to personalise for
    #[arg(long, conflicts_with_all = ["like", "dislike", "ratings", "profile"])]
    user: Option<u32>,
    /// A movie the new user likes (movieId or title; repeatable), rated 5
    #[arg(long, value_name = "ID|TITLE")]
    like: Vec<String>,
    /// A movie the new user dislikes (movieId or title; repeatable), rated 1
    #[arg(long, value_name = "ID|TITLE")]
    dislike: Vec<String>,
    /// The new user's ratings: CSV with a movieId,rating header
    #[arg(long, value_name = "FILE")]
    ratings: Option<PathBuf>,
    /// A saved profile: NAME in the profile database (--store), else profiles/NAME.json
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    #[command(flatten)]
    profiles: ProfilesDir,
    /// A rating stack to rank by instead of the learned ranker [search and similar default to
    /// their personal ranker; recommend to its candidate ranker]
    #[arg(long, value_enum, value_name = "STACK")]
    stack: Option<StackKind>,
}

impl PersonArgs {
    fn spec(&self) -> PersonSpec {
        PersonSpec {
            user: self.user,
            likes: self.like.clone(),
            dislikes: self.dislike.clone(),
            ratings: Vec::new(),
            ratings_file: self.ratings.clone(),
            profile: self.profile.clone(),
        }
    }
}

#[derive(Args)]
struct SimilarArgs {
    /// MovieLens movieId of the movie to start from
    #[arg(long, required_unless_present = "title", conflicts_with = "title")]
    movie: Option<u32>,
    /// Title of the movie to start from (case, articles and year are forgiven)
    #[arg(long)]
    title: Option<String>,
    #[command(flatten)]
    filters: FilterArgs,
    #[command(flatten)]
    rank: RankArgs,
}

#[derive(Args)]
struct ExplainArgs {
    /// MovieLens userId (with --movie: explain that pair)
    #[arg(long, requires = "movie")]
    user: Option<u32>,
    /// MovieLens movieId (with --user)
    #[arg(long, requires = "user")]
    movie: Option<u32>,
    /// Write the global importances as an SVG bar chart to FILE
    #[arg(long, value_name = "FILE", conflicts_with = "user")]
    svg: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EvaluateArgs {
    /// Seed of the split, of MF's initialisation and of the Random row
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Several split seeds, e.g. 42,7,2024: one run each, then mean ± std per model
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["split", "seed", "report"])]
    seeds: Vec<u64>,
    /// A split to reuse: CSV userId,movieId,set with set in {base, meta, test}
    #[arg(long, value_name = "FILE")]
    split: Option<PathBuf>,
    /// How the seeded split picks its test part: a random 20 %, or each user's latest 20 %
    #[arg(long, value_enum, default_value_t = SplitBy::Random, conflicts_with = "split")]
    split_by: SplitBy,
    /// Cut-off of the ranking metrics
    #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    k: u16,
    /// Rating from which a test row is relevant
    #[arg(long, default_value_t = LIKED_THRESHOLD)]
    threshold: f32,
    /// The protocol
    #[arg(long, value_enum, default_value = "seed")]
    protocol: Protocol,
    /// Print JSON
    #[arg(long)]
    json: bool,
    /// Write metrics.json, report.md, SVG charts and split.csv into DIR (seed protocol)
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// The judged query sets (navigational.jsonl, descriptive.jsonl) of --protocol search
    #[arg(long, value_name = "DIR", default_value = "tests/queries")]
    queries: PathBuf,
    /// Test users sampled per split seed by --protocol personal-search
    #[arg(long, value_name = "N", default_value_t = reelrank::eval::personal::DEFAULT_TEST_USERS as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    test_users: u32,
    /// --protocol full: evaluate a seeded sample of N test users (all by default), so that it
    /// finishes on the large sets
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    sample_users: Option<u32>,
}

fn init_logging(global: &Global) {
    let default = if global.quiet {
        "error"
    } else {
        match global.verbose {
            0 => "warn,reelrank=info",
            1 => "info,reelrank=debug",
            _ => "debug,reelrank=trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A closed pipe (`reelrank search … | head`) is not a failure.
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    print(&format!("{}\n", serde_json::to_string_pretty(value)?))
}

fn run(cli: Cli) -> Result<()> {
    let global = cli.global;
    let mut paths = Paths::resolve(global.data, global.model, global.index);
    if let Some(url) = &global.store {
        paths = paths.with_store(StoreUrl::parse(url)?);
    }
    let options = BuildOptions {
        progress: !global.quiet,
        ..BuildOptions::default()
    };
    match cli.command {
        Command::Build {
            seed,
            document_template,
            json,
        } => {
            let manifest = build(
                &paths,
                &BuildOptions {
                    seed,
                    document_template,
                    ..options
                },
            )?;
            if json {
                print_json(&manifest)
            } else {
                print(&present::build_summary(&paths.index, &manifest))
            }
        }
        Command::Verify { json } => {
            let report = reelrank::engine::verify(&paths)?;
            if json {
                print_json(&report)
            } else {
                print(&present::verify_summary(&report))
            }
        }
        Command::Search(args) => {
            let request = SearchRequest {
                query: args.query,
                k: args.rank.k,
                candidates: args.rank.candidates,
                filters: args.filters.filters()?,
                alpha: args.rank.alpha,
                exact: args.exact,
                person: args.rank.person.spec(),
                personal_weight: args.rank.personal_weight,
                stack: args.rank.person.stack,
                mode: args.mode,
                fusion: Fusion::default(),
                intent: !args.no_intent,
                feedback: args.feedback,
            };
            // Refuse a bad request before building a missing index for it.
            request.validate()?;
            let engine = open_engine(&paths, &options, &args.rank.person)?;
            print_response(&engine.search(&request)?, args.rank.json)
        }
        Command::Similar(args) => {
            let movie = match (args.movie, args.title) {
                (Some(id), _) => MovieRef::Id(id),
                (None, Some(title)) => MovieRef::Title(title),
                (None, None) => anyhow::bail!("give --movie ID or --title TITLE"),
            };
            let request = SimilarRequest {
                movie,
                k: args.rank.k,
                candidates: args.rank.candidates,
                filters: args.filters.filters()?,
                alpha: args.rank.alpha,
                person: args.rank.person.spec(),
                personal_weight: args.rank.personal_weight,
                stack: args.rank.person.stack,
            };
            let engine = open_engine(&paths, &options, &args.rank.person)?;
            print_response(&engine.similar(&request)?, args.rank.json)
        }
        Command::Recommend {
            person,
            k,
            filters,
            json,
        } => {
            let request = RecommendRequest {
                person: person.spec(),
                k,
                filters: filters.filters()?,
                ranker: person.stack.map_or(Ranker::Candidate, Ranker::Stack),
            };
            let engine = open_engine(&paths, &options, &person)?;
            print_response(&engine.recommend(&request)?, json)
        }
        Command::Explain(args) => {
            let engine = Engine::open_or_build(&paths, &options)?;
            let request = match (args.user, args.movie) {
                (Some(user), Some(movie_id)) => ExplainRequest::Pair { user, movie_id },
                _ => ExplainRequest::Global,
            };
            let explanation = engine.explain(&request)?;
            if let (Some(file), Explanation::Global { features, .. }) = (&args.svg, &explanation) {
                reelrank::fsutil::write_atomic(
                    file,
                    present::importance_svg(features)?.as_bytes(),
                )?;
                tracing::info!("wrote {}", file.display());
            }
            if args.json {
                print_json(&explanation)
            } else {
                print(&present::explanation_text(&explanation))
            }
        }
        Command::Serve {
            addr,
            admin_token,
            watch,
            query_cache,
            experiments,
        } => {
            let experiments = experiments
                .iter()
                .map(|spec| reelrank::experiment::Experiment::parse(spec))
                .collect::<reelrank::Result<Vec<_>>>()?;
            if !(watch.is_finite() && watch >= 0.0) {
                anyhow::bail!("--watch: {watch} is not a number of seconds ≥ 0");
            }
            if admin_token.as_deref().is_some_and(|t| t.len() < 16) {
                anyhow::bail!("--admin-token: use at least 16 characters");
            }
            reelrank::server::serve(ServeOptions {
                addr,
                paths,
                build: options,
                admin_token,
                watch: (watch > 0.0).then(|| std::time::Duration::from_secs_f64(watch)),
                query_cache,
                experiments,
            })?;
            Ok(())
        }
        Command::Experiment {
            action: ExperimentAction::Report { name, json, svg },
        } => {
            let store = ProfileStore::open_existing(&paths.store)?.ok_or_else(|| {
                anyhow::anyhow!("no profile database at {}", paths.store.display())
            })?;
            let events = store.experiment_events(&name)?;
            if events.is_empty() {
                anyhow::bail!("experiment '{name}': no event in {}", store.url());
            }
            let index = reelrank::engine::open_index(&paths)?;
            let head = reelrank::experiment::head_movies(index.catalog());
            let report = reelrank::experiment::report(&name, &events, &|m| !head.contains(&m));
            if let Some(file) = &svg {
                reelrank::fsutil::write_atomic(file, present::experiment_svg(&report)?.as_bytes())?;
            }
            if json {
                print_json(&report)
            } else {
                print(&present::experiment_text(&report))
            }
        }
        Command::Onboard { profile, profiles } => {
            if !std::io::stdin().is_terminal() {
                anyhow::bail!(
                    "onboard is interactive and standard input is not a terminal; without one, \
                     give ratings with --like/--dislike/--ratings, or write a profile file yourself"
                );
            }
            let engine = Engine::open_or_build(&paths, &options)?;
            let store = ProfileStore::open(&paths.store)?;
            let stdin = std::io::stdin();
            reelrank::onboard::onboard_profile(
                &engine,
                &store,
                &profiles.dir,
                &profile,
                &mut stdin.lock(),
                &mut std::io::stdout(),
                &OnboardConfig::default(),
            )?;
            Ok(())
        }
        Command::Embed { text, json } => {
            let embedding = reelrank::embed::embed_text(&paths.model, &text)?;
            if json {
                print_json(&serde_json::json!({ "text": text, "embedding": embedding }))
            } else {
                let values: Vec<String> = embedding.iter().map(|v| format!("{v:.6}")).collect();
                print(&format!("{}\n", values.join(" ")))
            }
        }
        Command::Evaluate(args) => {
            let request = reelrank::eval::EvalRequest {
                protocol: args.protocol,
                seed: args.seed,
                seeds: args.seeds,
                split: args.split,
                split_by: args.split_by,
                report: args.report,
                k: usize::from(args.k),
                threshold: args.threshold,
                queries: args.queries,
                test_users: args.test_users as usize,
                sample_users: args.sample_users.map(|n| n as usize),
            };
            let output = reelrank::eval::run(&paths, &options, &request)?;
            if args.json {
                print_json(&output.json)
            } else {
                print(&output.text)
            }
        }
        Command::Docs {
            movie,
            document_template,
            json,
        } => {
            let (title, document) =
                reelrank::documents::document_of(&paths.data, movie, document_template)?;
            if json {
                print_json(&serde_json::json!({
                    "movie_id": movie,
                    "title": title,
                    "document": document,
                }))
            } else {
                print(&format!("{document}\n"))
            }
        }
    }
}

/// Opens the engine (building the index first if there is none); a `--profile` is looked up
/// in the profile database, then in the person's `--profiles` directory.
fn open_engine(paths: &Paths, options: &BuildOptions, person: &PersonArgs) -> Result<Engine> {
    // One answer per process: scanning every vector (~6 ms at 86k movies) costs less than
    // loading the graph (~0.3 s), and is exact.
    let engine = Engine::open_or_build(paths, options)?
        .with_profiles_dir(&person.profiles.dir)
        .with_graph_from(usize::MAX);
    if person.profile.is_none() {
        return Ok(engine);
    }
    Ok(match ProfileStore::open_existing(&paths.store)? {
        Some(store) => engine.with_profile_store(std::sync::Arc::new(store)),
        None => engine,
    })
}

fn print_response(response: &Response, json: bool) -> Result<()> {
    if json {
        print_json(response)
    } else {
        print(&present::response_table(response))
    }
}
