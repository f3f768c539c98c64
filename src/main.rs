//! The `reelrank` command line: parses arguments, calls the library, prints.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use reelrank::data::split::Split;
use reelrank::data::Dataset;
use reelrank::documents::document_for;
use reelrank::embed::{model_files, Encoder};
use reelrank::engine::{
    build, open_or_build_index, BuildOptions, Engine, SearchRequest, DEFAULT_SEED,
};
use reelrank::eval::full::evaluate_full_protocol;
use reelrank::eval::report::{seeds_json, seeds_table, text_table, write_report};
use reelrank::eval::{evaluate_seed_protocol, EvalConfig};
use reelrank::index::MovieIndex;
use reelrank::onboard::{onboard, OnboardConfig};
use reelrank::profile::{
    find_movie, history_of, latest_ratings, profile_path, read_ratings_csv, Profile,
    DISLIKE_RATING, LIKE_RATING,
};
use reelrank::rank::stack::{Person, ServingStack, StackKind};
use reelrank::rank::{check_alpha, check_weight, Filters, YearRange, DEFAULT_ALPHA};
use reelrank::recommend::{
    rank_by_vector, recommend, PersonalResponse, VectorRequest, DEFAULT_PERSONAL_WEIGHT,
};
use reelrank::Paths;

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
    /// Only print errors
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More log output (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Build the index: load the data, embed every movie, build the HNSW graph
    Build {
        /// Seed of the serving stack's meta split, MF and trees
        #[arg(long, default_value_t = DEFAULT_SEED)]
        seed: u64,
        /// Print the manifest as JSON
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
        #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
        k: u16,
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
        /// Print {"movie_id", "title", "document"} as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct SearchArgs {
    /// What to look for, e.g. "space travel and futuristic wars"
    query: String,
    /// Keep only movies of this genre (repeatable: every genre must match)
    #[arg(long = "genre", value_name = "G")]
    genres: Vec<String>,
    /// Keep only movies released in FROM..TO (inclusive; FROM.., ..TO and YEAR work too)
    #[arg(long, value_name = "FROM..TO")]
    year: Option<String>,
    /// Use the exact scan instead of HNSW
    #[arg(long)]
    exact: bool,
    #[command(flatten)]
    rank: RankArgs,
}

/// How `search` and `similar` rank the nearest movies to a vector.
#[derive(Args)]
struct RankArgs {
    /// Number of results
    #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    k: u16,
    /// Candidates taken from the index before reranking
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=10000))]
    candidates: u16,
    /// Without a person: weight of similarity against popularity (0..=1)
    #[arg(long, default_value_t = DEFAULT_ALPHA)]
    alpha: f32,
    /// With a person: weight of the personal score against the similarity (0..=1)
    #[arg(long, default_value_t = DEFAULT_PERSONAL_WEIGHT)]
    personal_weight: f64,
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
    /// A saved profile: profiles/NAME.json, {"name", "ratings": [{"movie_id", "rating"}]}
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    #[command(flatten)]
    profiles: ProfilesDir,
    /// The rating stack that ranks: logistic, gbdt or lambdamart [search and similar default
    /// to logistic; recommend to its candidate ranker]
    #[arg(long, value_name = "STACK")]
    stack: Option<String>,
}

impl PersonArgs {
    /// The rating stack asked for with `--stack`, if any.
    fn stack_kind(&self) -> Result<Option<StackKind>> {
        Ok(self.stack.as_deref().map(str::parse).transpose()?)
    }

    /// The rating stack for `search` and `similar`: `--stack`, else logistic.
    fn rating_stack(&self) -> Result<StackKind> {
        Ok(self.stack_kind()?.unwrap_or(StackKind::Logistic))
    }

    fn is_set(&self) -> bool {
        self.user.is_some()
            || !self.like.is_empty()
            || !self.dislike.is_empty()
            || self.ratings.is_some()
            || self.profile.is_some()
    }

    /// The person these flags describe, if any (their movies resolved in `index`).
    fn resolve(&self, index: &MovieIndex, stack: &ServingStack) -> Result<Option<Person>> {
        if let Some(user) = self.user {
            check_user(index, stack, user)?;
            return Ok(Some(Person::User(user)));
        }
        let catalog = index.catalog();
        // Each source is checked on its own, so that an unknown movie names its file.
        let mut history: Vec<(u32, f32)> = Vec::new();
        if let Some(name) = &self.profile {
            let path = profile_path(&self.profiles.dir, name)?;
            if !path.is_file() {
                anyhow::bail!(
                    "--profile {name}: no profile at {} (a JSON file {{\"name\", \"ratings\": [{{\"movie_id\", \"rating\"}}]}})",
                    path.display()
                );
            }
            let ratings = Profile::load(&path)?.ratings;
            history.extend(history_of(catalog, &ratings, &path.display().to_string())?);
        }
        if let Some(file) = &self.ratings {
            let ratings = read_ratings_csv(file)?;
            history.extend(history_of(catalog, &ratings, &file.display().to_string())?);
        }
        for (flag, movies, rating) in [
            ("--like", &self.like, LIKE_RATING),
            ("--dislike", &self.dislike, DISLIKE_RATING),
        ] {
            for movie in movies {
                history.push((find_movie(catalog, movie, flag)? as u32, rating));
            }
        }
        if history.is_empty() {
            return Ok(None);
        }
        Ok(Some(Person::Profile(latest_ratings(history))))
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
    /// Cut-off of the ranking metrics
    #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    k: u16,
    /// Rating from which a test row is relevant
    #[arg(long, default_value_t = 4.0)]
    threshold: f32,
    /// seed: the notebooks' protocol (each user's test rows ranked); full: every unrated movie
    /// ranked, with the two-stage pipeline end to end
    #[arg(long, default_value = "seed", value_parser = ["seed", "full"])]
    protocol: String,
    /// Print JSON
    #[arg(long)]
    json: bool,
    /// Write metrics.json, report.md, SVG charts and split.csv into DIR
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
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
    // Before any thread exists: it sets candle's thread variables.
    reelrank::embed::prefer_batch_parallelism();
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
    let paths = Paths::resolve(global.data, global.model, global.index);
    let progress = !global.quiet;
    match cli.command {
        Command::Build { seed, json } => {
            let options = BuildOptions {
                progress,
                seed,
                ..BuildOptions::default()
            };
            let manifest = build(&paths, &options)?;
            if json {
                print_json(&manifest)?;
            } else {
                print(&reelrank::output::build_summary(&paths.index, &manifest))?;
            }
        }
        Command::Search(args) => {
            let filters = Filters {
                genres: args.genres,
                years: args.year.as_deref().map(YearRange::parse).transpose()?,
            };
            let request = SearchRequest {
                query: args.query,
                k: usize::from(args.rank.k),
                candidates: usize::from(args.rank.candidates),
                filters,
                alpha: args.rank.alpha,
                exact: args.exact,
            };
            // Refuse a bad request before building a missing index for it.
            request.validate()?;
            check_weight("--personal-weight", args.rank.personal_weight)?;
            let kind = args.rank.person.rating_stack()?;
            let options = BuildOptions {
                progress,
                ..BuildOptions::default()
            };
            let engine = Engine::open_or_build(&paths, &options)?;
            if args.rank.person.is_set() {
                let stack = engine.stack()?;
                if let Some(person) = args.rank.person.resolve(engine.index(), stack)? {
                    let weight = args.rank.personal_weight;
                    let response = engine.search_for(&request, (stack, &person, kind), weight)?;
                    return print_personal(&response, args.rank.json);
                }
            }
            let response = engine.search(&request)?;
            if args.rank.json {
                print_json(&response)?;
            } else {
                print(&reelrank::output::search_table(&response))?;
            }
        }
        Command::Embed { text, json } => {
            let files = model_files(&paths.model)?;
            let encoder = Encoder::load(&files)?;
            let embedding = encoder.embed(reelrank::engine::check_query(&text)?)?;
            if json {
                print_json(&serde_json::json!({ "text": text, "embedding": embedding }))?;
            } else {
                let values: Vec<String> = embedding.iter().map(|v| format!("{v:.6}")).collect();
                print(&format!("{}\n", values.join(" ")))?;
            }
        }
        Command::Evaluate(args) => {
            if !(0.5..=5.0).contains(&args.threshold) {
                anyhow::bail!("--threshold {} is outside 0.5..=5.0", args.threshold);
            }
            if !args.seeds.is_empty() && args.protocol == "full" {
                anyhow::bail!(
                    "--seeds runs the seed protocol only; run --protocol full once per --seed"
                );
            }
            let started = std::time::Instant::now();
            let dataset = Dataset::load(&paths.data)?;
            let load_ms = started.elapsed().as_secs_f64() * 1e3;
            // The movie embeddings come from the index (built first if missing). Its manifest
            // matches the dataset just loaded, so rows follow `dataset.movies`.
            let index = open_index(&paths, progress)?;
            let vectors = index.flat();
            if !args.seeds.is_empty() {
                let reports: Vec<_> = args
                    .seeds
                    .iter()
                    .map(|&seed| {
                        let split = Split::seeded(dataset.ratings.len(), seed);
                        let config = EvalConfig {
                            k: usize::from(args.k),
                            threshold: args.threshold,
                            seed,
                            ..EvalConfig::default()
                        };
                        evaluate_seed_protocol(&dataset, &split, vectors, &config)
                    })
                    .collect();
                if args.json {
                    print_json(&seeds_json(&reports))?;
                } else {
                    print(&seeds_table(&reports))?;
                }
                return Ok(());
            }
            let split = match &args.split {
                Some(file) => Split::read(file, &dataset)?,
                None => Split::seeded(dataset.ratings.len(), args.seed),
            };
            let config = EvalConfig {
                k: usize::from(args.k),
                threshold: args.threshold,
                seed: args.seed,
                ..EvalConfig::default()
            };
            if args.protocol == "full" {
                if args.report.is_some() {
                    anyhow::bail!("--report is only written by --protocol seed");
                }
                let mut report = evaluate_full_protocol(&dataset, &split, &index, &config);
                report.timings_ms.insert("load_data".into(), load_ms);
                if args.json {
                    print_json(&report.to_json())?;
                } else {
                    print(&reelrank::eval::report::full_table(&report))?;
                }
                return Ok(());
            }
            let mut report = evaluate_seed_protocol(&dataset, &split, vectors, &config);
            report.timings_ms.insert("load_data".into(), load_ms);
            if let Some(dir) = &args.report {
                write_report(dir, &report, &dataset, &split)?;
                tracing::info!("wrote the report into {}", dir.display());
            }
            if args.json {
                print_json(&report.to_json())?;
            } else {
                print(&text_table(&report))?;
            }
        }
        Command::Explain(args) => explain(&paths, progress, &args)?,
        Command::Recommend { person, k, json } => {
            let ranker = person.stack_kind()?;
            if !person.is_set() {
                anyhow::bail!(
                    "recommend needs a person: --user, --like, --dislike, --ratings or --profile"
                );
            }
            let (index, stack) = open_with_stack(&paths, progress)?;
            let person = person
                .resolve(&index, &stack)?
                .context("recommend needs at least one rating")?;
            let response = recommend(&index, &stack, &person, usize::from(k), ranker);
            print_personal(&response, json)?;
        }
        Command::Similar(args) => similar(&paths, progress, &args)?,
        Command::Onboard { profile, profiles } => {
            onboard_terminal(&paths, progress, &profile, &profiles.dir)?
        }
        Command::Docs { movie, json } => {
            let dataset = Dataset::load(&paths.data)?;
            let position = dataset.position(movie).with_context(|| {
                format!(
                    "--movie {movie}: no such movieId in {}",
                    paths.data.display()
                )
            })?;
            let document = document_for(&dataset, position);
            if json {
                print_json(&serde_json::json!({
                    "movie_id": movie,
                    "title": dataset.movies[position].title,
                    "document": document,
                }))?;
            } else {
                print(&format!("{document}\n"))?;
            }
        }
    }
    Ok(())
}

/// `reelrank explain`: the serving stack's global importances, or one pair's contributions.
fn explain(paths: &Paths, progress: bool, args: &ExplainArgs) -> Result<()> {
    let (index, stack) = open_with_stack(paths, progress)?;
    let (Some(user), Some(movie_id)) = (args.user, args.movie) else {
        let importance = stack.importance();
        if let Some(file) = &args.svg {
            reelrank::fsutil::write_atomic(
                file,
                reelrank::output::importance_svg(&importance).as_bytes(),
            )?;
            tracing::info!("wrote {}", file.display());
        }
        if args.json {
            print_json(&serde_json::json!({
                "training": stack.training,
                "features": importance,
            }))?;
        } else {
            print(&reelrank::output::importance_table(&importance))?;
        }
        return Ok(());
    };
    check_user(&index, &stack, user)?;
    let position = movie_position(&index, movie_id)?;
    let entry = &index.catalog().movies[position];
    let explanation = stack.explain(user, position as u32);
    if args.json {
        print_json(&serde_json::json!({
            "user": user,
            "movie_id": movie_id,
            "title": entry.movie.title,
            "explanation": explanation,
        }))?;
    } else {
        let title = format!("movie {movie_id} {}", entry.movie.title);
        print(&reelrank::output::explanation_table(&explanation, &title))?;
    }
    Ok(())
}

/// `reelrank onboard`: the interactive flow on the terminal; refuses to run without one.
fn onboard_terminal(paths: &Paths, progress: bool, name: &str, dir: &Path) -> Result<()> {
    let path = profile_path(dir, name)?;
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "onboard is interactive and standard input is not a terminal; without one, give \
             ratings with --like/--dislike/--ratings, or write {} yourself",
            path.display()
        );
    }
    let profile = if path.is_file() {
        Profile::load(&path)?
    } else {
        Profile {
            name: name.to_string(),
            ratings: Vec::new(),
        }
    };
    let (index, stack) = open_with_stack(paths, progress)?;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut output = std::io::stdout();
    onboard(
        &index,
        &stack,
        profile,
        &path,
        &mut input,
        &mut output,
        &OnboardConfig::default(),
    )?;
    Ok(())
}

fn print_personal(response: &PersonalResponse, json: bool) -> Result<()> {
    if json {
        print_json(response)
    } else {
        print(&reelrank::output::personal_table(response))
    }
}

/// `reelrank similar`: the nearest movies to one movie, for a person if one is given.
fn similar(paths: &Paths, progress: bool, args: &SimilarArgs) -> Result<()> {
    check_alpha(args.rank.alpha)?;
    check_weight("--personal-weight", args.rank.personal_weight)?;
    let kind = args.rank.person.rating_stack()?;
    let index = open_index(paths, progress)?;
    let position = match (args.movie, &args.title) {
        (Some(id), _) => movie_position(&index, id)?,
        (None, Some(title)) => find_movie(index.catalog(), title, "--title")?,
        (None, None) => anyhow::bail!("give --movie ID or --title TITLE"),
    };
    let stack = args
        .rank
        .person
        .is_set()
        .then(|| ServingStack::open(&index))
        .transpose()?;
    let person = match &stack {
        Some(stack) => args.rank.person.resolve(&index, stack)?,
        None => None,
    };
    let vector = index.flat().vector(position).to_vec();
    let personal = stack
        .as_ref()
        .zip(person.as_ref())
        .map(|(s, p)| (s, p, kind));
    let response = rank_by_vector(
        &index,
        personal,
        &VectorRequest {
            vector: &vector,
            k: usize::from(args.rank.k),
            candidates: usize::from(args.rank.candidates),
            alpha: args.rank.alpha,
            personal_weight: args.rank.personal_weight,
            exclude: Some(position as u32),
            source: "movie",
        },
        &|v, n| index.hnsw().search(v, n, None),
    );
    print_personal(&response, args.rank.json)
}

/// Opens the index, building it first if there is none.
fn open_index(paths: &Paths, progress: bool) -> Result<MovieIndex> {
    let options = BuildOptions {
        progress,
        ..BuildOptions::default()
    };
    Ok(open_or_build_index(paths, &options)?)
}

/// Opens the index (building it first if there is none) and its serving stack.
fn open_with_stack(paths: &Paths, progress: bool) -> Result<(MovieIndex, ServingStack)> {
    let index = open_index(paths, progress)?;
    let stack = ServingStack::open(&index)?;
    Ok((index, stack))
}

/// Refuses a `--user` the serving stack has no rating of.
fn check_user(index: &MovieIndex, stack: &ServingStack, user: u32) -> Result<()> {
    if !stack.knows_user(user) {
        anyhow::bail!(
            "--user {user}: no such userId among the ratings of index {}",
            index.dir().display()
        );
    }
    Ok(())
}

/// The catalogue position of `--movie ID`.
fn movie_position(index: &MovieIndex, movie_id: u32) -> Result<usize> {
    index.catalog().position(movie_id).with_context(|| {
        format!(
            "--movie {movie_id}: no such movieId in index {}",
            index.dir().display()
        )
    })
}
