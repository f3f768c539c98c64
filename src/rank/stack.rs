//! The learned stack: meta-models over the feature rows of ratings the base models did not see
//! (logistic regression, gradient-boosted trees, LambdaMART), and the [`ServingStack`] that
//! `build` trains on every rating and saves in the index.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::fsutil::ms;

use serde::{Deserialize, Serialize};

pub use super::features::Person;
use super::features::{
    select_columns, BaseModels, Feature, FeatureBuilder, Statistics, ALL_FEATURES,
};
use super::personal::{
    column_name, fit_personal_ranker, personal_rows, sample_people, EmbedQueries, PersonalTraining,
    PoolEntry, PERSONAL_COLUMNS,
};
use super::topn::{
    candidate_column_name, candidate_rows, fit_candidate_ranker, CandidateTraining,
    CANDIDATE_COLUMNS,
};
use crate::ann::FlatIndex;
use crate::data::split::Split;
use crate::data::Dataset;
use crate::data::LIKED_THRESHOLD;
use crate::error::{Error, Result};
use crate::models::gbdt::{Gbdt, GbdtConfig, Objective};
use crate::models::logistic::LogisticRegression;
use crate::models::{sigmoid, Interactions};
use crate::store::{MovieIndex, STACK_FILE};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Inverse L2 penalty of the logistic stacks (the seeds' C).
pub const LOGISTIC_C: f64 = 1.0;

/// Users whose meta_train ratings train the meta-models and the rankers: a seeded sample, so
/// that the training cost stops growing with the number of users (the candidate ranker's rows
/// are 300 a user). ml-latest-small's 610 users all fit; README, Performance, measures what a
/// smaller sample costs there.
pub const STACK_TRAINING_USERS: usize = 2000;

/// Shrinkage of [`ServingStack::co_rated`]: a pair rated by this many people keeps half its
/// cosine.
pub const CO_RATED_SHRINK: f32 = 10.0;

/// The feature rows of meta_train (every feature of [`ALL_FEATURES`]) with their labels, and
/// the same rows ordered by user for the tree stacks (LambdaRank needs each user's rows
/// together).
pub struct MetaRows {
    rows: Vec<f64>,
    labels: Vec<bool>,
    by_user_rows: Vec<f64>,
    by_user_labels: Vec<bool>,
    groups: Vec<u32>,
}

impl MetaRows {
    /// The rows of `meta`, labelled "rating ≥ `threshold`".
    pub fn new(builder: &FeatureBuilder, meta: &Interactions, threshold: f32) -> MetaRows {
        let labels: Vec<bool> = meta.rating.iter().map(|&r| r >= threshold).collect();
        let rows = builder.rows(&meta.user, &meta.movie, &ALL_FEATURES);
        let mut by_user: Vec<usize> = (0..meta.len()).collect();
        by_user.sort_by_key(|&i| (meta.user[i], i));
        let d = ALL_FEATURES.len();
        MetaRows {
            by_user_rows: by_user
                .iter()
                .flat_map(|&i| rows[i * d..(i + 1) * d].iter().copied())
                .collect(),
            by_user_labels: by_user.iter().map(|&i| labels[i]).collect(),
            groups: by_user.iter().map(|&i| meta.user[i]).collect(),
            rows,
            labels,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Share of positive labels.
    pub fn positive_share(&self) -> f64 {
        self.labels.iter().filter(|&&l| l).count() as f64 / self.len().max(1) as f64
    }

    /// L2 logistic regression (C = [`LOGISTIC_C`]) on the columns `features`.
    pub fn logistic(&self, features: &[Feature], standardize: bool) -> LogisticRegression {
        let x = select_columns(&self.rows, &ALL_FEATURES, features);
        LogisticRegression::fit(&x, &self.labels, features.len(), LOGISTIC_C, standardize)
    }

    /// Gradient-boosted trees (the seeds' settings, seeded) on the columns `features`, with
    /// binary log-loss or, if `ranking`, LambdaRank grouped by user.
    pub fn trees(&self, features: &[Feature], ranking: bool, seed: u64) -> Gbdt {
        let x = select_columns(&self.by_user_rows, &ALL_FEATURES, features);
        let objective = if ranking {
            Objective::LambdaRank {
                groups: &self.groups,
            }
        } else {
            Objective::LogLoss
        };
        let config = GbdtConfig {
            seed,
            ..GbdtConfig::default()
        };
        Gbdt::fit(&x, &self.by_user_labels, features.len(), objective, &config)
    }
}

/// Which meta-model ranks (also the values of `--stack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum StackKind {
    /// Logistic regression on every feature (the best stack under the seed protocol).
    Logistic,
    /// Gradient-boosted trees, log-loss.
    Gbdt,
    /// Gradient-boosted trees, LambdaRank.
    LambdaMart,
}

impl StackKind {
    /// Every kind.
    pub const ALL: [StackKind; 3] = [StackKind::Logistic, StackKind::Gbdt, StackKind::LambdaMart];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            StackKind::Logistic => "logistic",
            StackKind::Gbdt => "gbdt",
            StackKind::LambdaMart => "lambdamart",
        }
    }
}

/// How the serving stack was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackTraining {
    /// Seed of the meta split, MF and the trees.
    pub seed: u64,
    /// Rating from which a meta row is a positive.
    pub threshold: f32,
    /// Ratings the stack's base models were fit on.
    pub base_rows: usize,
    /// Ratings the meta-models were fit on.
    pub meta_rows: usize,
    /// Users whose meta ratings trained the meta-models and the rankers (at most
    /// [`STACK_TRAINING_USERS`], a seeded sample).
    pub meta_users: usize,
    /// Share of positive meta rows.
    pub meta_positive_share: f64,
    /// Ratings the serving base models were refit on (all of them).
    pub serving_rows: usize,
    /// How the candidate ranker was trained.
    pub candidates: CandidateTraining,
    /// How the personal ranker of search was trained (absent from a stack fit without it).
    pub personal: Option<PersonalTraining>,
    /// Milliseconds per stage.
    pub timings_ms: BTreeMap<String, f64>,
}

/// Records a fit of the base models under `stage`: its milliseconds, and each model's as
/// `stage.fit_<model>`.
fn record_fits(
    timings: &mut BTreeMap<String, f64>,
    stage: &str,
    total_ms: f64,
    models: &BaseModels,
) {
    timings.insert(stage.into(), total_ms);
    for (model, model_ms) in &models.fit_ms {
        timings.insert(format!("{stage}.{model}"), *model_ms);
    }
}

/// Every stack trained for serving, with the base models and statistics it reads.
///
/// Trained like the seed protocol, on every rating: a seeded 80/20 split into base_train and
/// meta_train, base models on base_train, meta-models on meta_train's feature rows; then the
/// base models and statistics are refit on all ratings, so that serving knows every rating
/// (`evaluate` reports the effect of that refit as its `LogisticStackAll-refit` row).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServingStack {
    /// The feature list the meta-models were trained on ([`ALL_FEATURES`] at build time).
    pub features: Vec<Feature>,
    models: BaseModels,
    statistics: Statistics,
    /// Logistic regression on every feature, standardised.
    pub logistic: LogisticRegression,
    /// Gradient-boosted trees, log-loss.
    pub gbdt: Gbdt,
    /// Gradient-boosted trees, LambdaRank.
    pub lambdamart: Gbdt,
    /// Log-loss trees over stage one's candidates ([`CANDIDATE_FEATURES`]), which rank
    /// `recommend` (see [`super::topn`]).
    pub candidate_ranker: Gbdt,
    /// Log-loss trees over a query's candidates for a person (see [`super::personal`]), which
    /// rank personal `search` and `similar`; absent from the stacks of the full-catalogue
    /// evaluation, which never searches.
    pub personal_ranker: Option<Gbdt>,
    /// How it was trained.
    pub training: StackTraining,
}

impl ServingStack {
    /// Trains every stack on all of `dataset`'s ratings; `vectors` are the movie embeddings in
    /// catalogue order, `embed` embeds the personal ranker's training queries.
    pub fn fit(
        dataset: &Dataset,
        vectors: &FlatIndex,
        embed: EmbedQueries,
        seed: u64,
    ) -> Result<ServingStack> {
        let all: Vec<usize> = (0..dataset.ratings.len()).collect();
        ServingStack::fit_on(dataset, &all, vectors, Some(embed), seed)
    }

    /// Trains every stack on the rating rows `rows` of `dataset` (the evaluations pass
    /// train_full); the personal ranker only with an encoder for its training queries.
    pub fn fit_on(
        dataset: &Dataset,
        rows: &[usize],
        vectors: &FlatIndex,
        embed: Option<EmbedQueries>,
        seed: u64,
    ) -> Result<ServingStack> {
        let mut timings = BTreeMap::new();
        let ratings = &dataset.ratings;
        let split = Split::serving(rows.len(), seed);
        let pick = |part: &[usize]| -> Vec<usize> { part.iter().map(|&i| rows[i]).collect() };
        let base = Interactions::from_rows(ratings, &pick(&split.base));
        let all_meta = Interactions::from_rows(ratings, &pick(&split.meta));
        // The meta-models and the rankers learn from a seeded sample of meta_train's users.
        let mut meta_users = all_meta.user.clone();
        meta_users.sort_unstable();
        meta_users.dedup();
        let sampled = sample_people(
            meta_users,
            STACK_TRAINING_USERS,
            &mut ChaCha8Rng::seed_from_u64(seed),
        );
        let meta = all_meta.of_users(|u| sampled.binary_search(&u).is_ok());

        let t = Instant::now();
        let base_models = BaseModels::fit(&base, dataset, vectors, seed);
        let base_statistics = Statistics::new(&base, &dataset.movies);
        record_fits(&mut timings, "fit_base_models", ms(t), &base_models);
        let t = Instant::now();
        let builder = FeatureBuilder {
            models: &base_models,
            statistics: &base_statistics,
        };
        let meta_rows = MetaRows::new(&builder, &meta, LIKED_THRESHOLD);
        timings.insert("meta_features".into(), ms(t));
        let t = Instant::now();
        let logistic = meta_rows.logistic(&ALL_FEATURES, true);
        timings.insert("fit_logistic".into(), ms(t));
        let t = Instant::now();
        let gbdt = meta_rows.trees(&ALL_FEATURES, false, seed);
        timings.insert("fit_gbdt".into(), ms(t));
        let t = Instant::now();
        let lambdamart = meta_rows.trees(&ALL_FEATURES, true, seed);
        timings.insert("fit_lambdamart".into(), ms(t));
        let t = Instant::now();
        let exact = |taste: &[f32], n: usize| vectors.search(taste, n, &|_| true);
        let (candidate_ranker, candidate_training) =
            fit_candidate_ranker(&builder, &meta, LIKED_THRESHOLD, &exact, seed);
        timings.insert("fit_candidate_ranker".into(), ms(t));
        let (personal_ranker, personal_training) = match embed {
            Some(embed) => {
                let t = Instant::now();
                let tags = dataset.tags_by_movie();
                let (ranker, training) = fit_personal_ranker(
                    &builder,
                    &meta,
                    vectors,
                    &dataset.movies,
                    &tags,
                    embed,
                    seed,
                )?;
                timings.insert("fit_personal_ranker".into(), ms(t));
                (Some(ranker), Some(training))
            }
            None => (None, None),
        };

        // The first-level models and their rows go before the refit: at 33.8M ratings two
        // sets of base models side by side were 3 GB of the build's peak.
        let (base_rows, meta_rows_count, meta_positive_share) =
            (base.len(), meta_rows.len(), meta_rows.positive_share());
        drop((
            meta_rows,
            base_models,
            base_statistics,
            base,
            all_meta,
            meta,
        ));

        let t = Instant::now();
        let all = Interactions::from_rows(ratings, rows);
        let models = BaseModels::fit(&all, dataset, vectors, seed);
        let statistics = Statistics::new(&all, &dataset.movies);
        record_fits(&mut timings, "refit_base_models", ms(t), &models);
        Ok(ServingStack {
            features: ALL_FEATURES.to_vec(),
            models,
            statistics,
            logistic,
            gbdt,
            lambdamart,
            candidate_ranker,
            personal_ranker,
            training: StackTraining {
                seed,
                threshold: LIKED_THRESHOLD,
                base_rows,
                meta_rows: meta_rows_count,
                meta_users: sampled.len(),
                meta_positive_share,
                serving_rows: all.len(),
                candidates: candidate_training,
                personal: personal_training,
                timings_ms: timings,
            },
        })
    }

    /// The stack serialised for the index.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        postcard::to_stdvec(self).map_err(|e| Error::InvalidArgument {
            name: "stack".into(),
            message: format!("cannot serialise the stack: {e}"),
        })
    }

    /// Loads the stack saved in an opened index (whose files were checked on open).
    pub fn open(index: &MovieIndex) -> Result<ServingStack> {
        let bytes = index.stack_bytes()?;
        let dir = index.dir();
        let vectors = index.flat();
        let corrupt = |reason: String| Error::IndexCorrupt {
            path: dir.join(index.generation()).join(STACK_FILE),
            dir: dir.to_path_buf(),
            reason,
        };
        let mut stack: ServingStack =
            postcard::from_bytes(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if stack.features != ALL_FEATURES {
            return Err(Error::IndexIncompatible {
                path: dir.to_path_buf(),
                reason: "its stack was trained on another feature list".into(),
            });
        }
        if stack.statistics.movie_count() != vectors.len() {
            return Err(corrupt(format!(
                "the stack knows {} movies, the index {}",
                stack.statistics.movie_count(),
                vectors.len()
            )));
        }
        stack.models.embedding.attach(vectors);
        Ok(stack)
    }

    /// The base models and statistics serving reads, as a feature builder.
    pub fn builder(&self) -> FeatureBuilder<'_> {
        FeatureBuilder {
            models: &self.models,
            statistics: &self.statistics,
        }
    }

    /// The `n` movies most often rated together with `movie` (shrunk rating cosine, best
    /// first): the rating graph's neighbours, for pseudo-relevance feedback.
    pub fn co_rated(&self, movie: u32, n: usize) -> Vec<(u32, f32)> {
        self.models.item_knn.neighbours(movie, n, CO_RATED_SHRINK)
    }

    /// The share of users who rated `movie` in the training ratings.
    pub fn watch_share(&self, movie: u32) -> f64 {
        self.statistics.watch_share(movie)
    }

    /// The ratings of `person` the models know ((catalogue position, rating)).
    pub fn history<'a>(&'a self, person: &'a Person) -> &'a [(u32, f32)] {
        self.builder().history(person)
    }

    /// The report name of the base model behind a base-score feature.
    pub fn model_name(&self, feature: Feature) -> &'static str {
        self.models
            .scorer(feature)
            .map_or(feature.name(), |m| m.name())
    }

    /// Feature rows of `person` with each of `movies` ([`ALL_FEATURES`]): a training user's
    /// through the training path, a profile's folded in.
    pub fn person_features(&self, person: &Person, movies: &[u32]) -> Vec<f64> {
        self.builder().person_rows(person, movies, &ALL_FEATURES)
    }

    /// The candidate ranker's probability that `person` watches and likes each of `movies`.
    pub fn rank_candidates(&self, person: &Person, movies: &[u32]) -> Vec<f64> {
        candidate_rows(&self.builder(), person, movies)
            .chunks_exact(CANDIDATE_COLUMNS)
            .map(|row| sigmoid(self.candidate_ranker.predict(row)))
            .collect()
    }

    /// The personal ranker's probability that `person` watches and likes each entry of a
    /// query's `pool`; `None` when the stack was fit without one.
    pub fn rank_personal(&self, person: &Person, pool: &[PoolEntry]) -> Option<Vec<f64>> {
        let ranker = self.personal_ranker.as_ref()?;
        let rows = personal_rows(&self.builder(), person, pool);
        Some(
            rows.chunks_exact(PERSONAL_COLUMNS)
                .map(|row| sigmoid(ranker.predict(row)))
                .collect(),
        )
    }

    /// Whether the stack has a personal ranker.
    pub fn has_personal_ranker(&self) -> bool {
        self.personal_ranker.is_some()
    }

    /// Scores of `person` for each of `movies` by the stack `kind`.
    pub fn score_person(&self, kind: StackKind, person: &Person, movies: &[u32]) -> Vec<f64> {
        self.person_features(person, movies)
            .chunks_exact(ALL_FEATURES.len())
            .map(|row| self.score_row(kind, row))
            .collect()
    }

    /// Whether `user` has ratings the stack was trained on.
    pub fn knows_user(&self, user: u32) -> bool {
        self.statistics.knows_user(user)
    }

    /// The feature rows (row-major, [`ALL_FEATURES`] order) of the pairs (`users[i]`,
    /// `movies[i]`), movies as catalogue positions: the same [`FeatureBuilder`] as training
    /// and evaluation.
    pub fn feature_rows(&self, users: &[u32], movies: &[u32]) -> Vec<f64> {
        self.builder().rows(users, movies, &ALL_FEATURES)
    }

    /// The score of `kind` for one feature row: the probability of "liked" for the logistic
    /// and log-loss stacks, a ranking score for LambdaMART.
    pub fn score_row(&self, kind: StackKind, row: &[f64]) -> f64 {
        match kind {
            StackKind::Logistic => self.logistic.probability(row),
            StackKind::Gbdt => sigmoid(self.gbdt.predict(row)),
            StackKind::LambdaMart => self.lambdamart.predict(row),
        }
    }

    /// The global importance of each feature in each stack.
    pub fn importance(&self) -> Vec<FeatureImportance> {
        let share = |values: &[f64]| -> Vec<f64> {
            let total: f64 = values.iter().map(|v| v.abs()).sum();
            values
                .iter()
                .map(|v| if total > 0.0 { v.abs() / total } else { 0.0 })
                .collect()
        };
        let weight_share = share(&self.logistic.weights);
        let gbdt_share = share(&self.gbdt.feature_gain);
        let lambdamart_share = share(&self.lambdamart.feature_gain);
        ALL_FEATURES
            .iter()
            .enumerate()
            .map(|(j, feature)| FeatureImportance {
                feature: feature.name(),
                logistic_weight: self.logistic.weights[j],
                logistic_weight_share: weight_share[j],
                gbdt_gain_share: gbdt_share[j],
                lambdamart_gain_share: lambdamart_share[j],
            })
            .collect()
    }

    /// The share of tree gain per column of the two learned rankers, the candidate ranker's
    /// columns first, then the personal ranker's query columns.
    pub fn ranker_importance(&self) -> Vec<RankerImportance> {
        let share = |gains: &[f64]| -> Vec<f64> {
            let total: f64 = gains.iter().sum();
            gains
                .iter()
                .map(|g| if total > 0.0 { g / total } else { 0.0 })
                .collect()
        };
        let candidate = share(&self.candidate_ranker.feature_gain);
        let personal = self
            .personal_ranker
            .as_ref()
            .map_or_else(Vec::new, |r| share(&r.feature_gain));
        let candidate_names: Vec<&'static str> =
            (0..CANDIDATE_COLUMNS).map(candidate_column_name).collect();
        let personal_names: Vec<&'static str> = if personal.is_empty() {
            Vec::new()
        } else {
            (0..PERSONAL_COLUMNS).map(column_name).collect()
        };
        let mut names = candidate_names.clone();
        names.extend(
            personal_names
                .iter()
                .filter(|n| !candidate_names.contains(n)),
        );
        names
            .into_iter()
            .map(|name| {
                let of = |names: &[&str], shares: &[f64]| {
                    let j = names.iter().position(|n| *n == name)?;
                    Some(shares.get(j).copied().unwrap_or(0.0))
                };
                RankerImportance {
                    feature: name,
                    candidate_ranker: of(&candidate_names, &candidate),
                    personal_ranker: of(&personal_names, &personal),
                }
            })
            .collect()
    }

    /// Every feature's value and its contribution to each stack's score for (`user`, `movie`).
    pub fn explain(&self, user: u32, movie: u32) -> PairExplanation {
        let row = self.person_features(&Person::User(user), &[movie]);
        let logistic = self.logistic.contributions(&row);
        let (gbdt_bias, gbdt) = self.gbdt.contributions(&row);
        let (lambdamart_bias, lambdamart) = self.lambdamart.contributions(&row);
        let features = ALL_FEATURES
            .iter()
            .enumerate()
            .map(|(j, feature)| FeatureContribution {
                feature: feature.name(),
                value: row[j],
                logistic: logistic[j],
                gbdt: gbdt[j],
                lambdamart: lambdamart[j],
            })
            .collect();
        PairExplanation {
            user,
            features,
            logistic_intercept: self.logistic.intercept,
            gbdt_bias,
            lambdamart_bias,
            logistic_decision: self.logistic.decision(&row),
            logistic_probability: self.logistic.probability(&row),
            gbdt_decision: self.gbdt.predict(&row),
            gbdt_probability: sigmoid(self.gbdt.predict(&row)),
            lambdamart_score: self.lambdamart.predict(&row),
        }
    }
}

/// How much one feature matters to the learned rankers (shares of their trees' gain).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankerImportance {
    /// Feature name.
    pub feature: &'static str,
    /// Share of the candidate ranker's gain; `None` for a query feature it does not read.
    pub candidate_ranker: Option<f64>,
    /// Share of the personal ranker's gain; `None` for a column it does not read.
    pub personal_ranker: Option<f64>,
}

/// How much one feature matters to each stack, over all rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureImportance {
    /// Feature name.
    pub feature: &'static str,
    /// Logistic weight of the standardised feature (log-odds per standard deviation).
    pub logistic_weight: f64,
    /// |weight| over the sum of |weights|.
    pub logistic_weight_share: f64,
    /// Share of the log-loss trees' total split gain.
    pub gbdt_gain_share: f64,
    /// Share of the LambdaMART trees' total split gain.
    pub lambdamart_gain_share: f64,
}

/// One feature of one (user, movie) pair: its value and its additive contributions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureContribution {
    /// Feature name.
    pub feature: &'static str,
    /// The raw value.
    pub value: f64,
    /// weight × standardised value (exact: the terms and the intercept sum to the log-odds).
    pub logistic: f64,
    /// Path contribution in the log-loss trees (sums with the bias to their log-odds).
    pub gbdt: f64,
    /// Path contribution in the LambdaMART trees (sums with the bias to their score).
    pub lambdamart: f64,
}

/// Why the stacks score one (user, movie) pair as they do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairExplanation {
    /// The userId.
    pub user: u32,
    /// Per feature, in [`ALL_FEATURES`] order.
    pub features: Vec<FeatureContribution>,
    /// The logistic intercept.
    pub logistic_intercept: f64,
    /// The log-loss trees' base score plus their root values.
    pub gbdt_bias: f64,
    /// The LambdaMART trees' base score plus their root values.
    pub lambdamart_bias: f64,
    /// Logistic log-odds.
    pub logistic_decision: f64,
    /// Logistic probability of "liked".
    pub logistic_probability: f64,
    /// Log-loss trees' log-odds.
    pub gbdt_decision: f64,
    /// Log-loss trees' probability of "liked".
    pub gbdt_probability: f64,
    /// LambdaMART's ranking score.
    pub lambdamart_score: f64,
}
