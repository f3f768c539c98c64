//! The features of the learned stack, defined once: training, evaluation and serving build
//! feature rows through [`FeatureBuilder`] only.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::ann::{top_by, FlatIndex};
use crate::catalog::{popularity_params, weighted_rating, PopularityParams};
use crate::data::{mean_release_year, Dataset, Movie, LIKED_THRESHOLD};
use crate::models::embedding_profile::EmbeddingProfile;
use crate::models::item_knn::DEFAULT_K;
use crate::models::{
    content_ridge, ease, history_stats, rp3beta, top_positive, Bias, ContentRidge, Ease,
    GenreContent, Ials, IalsConfig, Interactions, ItemKnn, MatrixFactorization, MfConfig,
    RatingStats, Rp3Beta, Scorer,
};

/// One input of a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Feature {
    /// Bias model score.
    Bias,
    /// ItemKnn score.
    ItemKnn,
    /// MatrixFactorization score.
    MatrixFactorization,
    /// GenreContent score.
    GenreContent,
    /// ContentRidge score.
    ContentRidge,
    /// EASE score (implicit: how strongly the user's history points at the movie).
    Ease,
    /// RP3β score (a random walk from the user's history, popularity-penalised).
    Rp3Beta,
    /// iALS score (implicit matrix factorisation over who rated what).
    Ials,
    /// Cosine between the movie's embedding and the user's liked-movie embedding profile.
    EmbeddingSimilarity,
    /// The user's number of ratings (0 when cold).
    UserRatingCount,
    /// The user's mean rating (global mean when cold).
    UserMeanRating,
    /// The movie's number of ratings (0 when cold).
    ItemRatingCount,
    /// The movie's mean rating (global mean when cold).
    ItemMeanRating,
    /// The spread (standard deviation) of the user's ratings (0 when cold).
    UserRatingSpread,
    /// The movie's mean rating shrunk toward the global mean by [`STATISTIC_PRIOR`] ratings.
    ItemShrunkMean,
    /// The movie's share of ratings ≥ 4, shrunk toward the global share by
    /// [`STATISTIC_PRIOR`] ratings.
    ItemLikedShare,
    /// The movie's IMDB weighted rating.
    WeightedRating,
    /// The movie's release year (the catalogue's mean year when unknown).
    ReleaseYear,
    /// Mean of the item-kNN cosines between the movie and the movies the user liked (top-N
    /// affinity; only the learned rankers read it).
    ItemKnnAffinity,
    /// The highest embedding cosine between the movie and a movie the user liked (a history
    /// aggregate; only the learned rankers read it).
    MaxLikedSimilarity,
}

impl Feature {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Bias => "score_bias",
            Feature::ItemKnn => "score_item_knn",
            Feature::MatrixFactorization => "score_mf",
            Feature::GenreContent => "score_genre",
            Feature::ContentRidge => "score_content_ridge",
            Feature::Ease => "score_ease",
            Feature::Rp3Beta => "score_rp3beta",
            Feature::Ials => "score_ials",
            Feature::EmbeddingSimilarity => "embedding_similarity",
            Feature::UserRatingCount => "user_n_ratings",
            Feature::UserMeanRating => "user_mean_rating",
            Feature::ItemRatingCount => "item_n_ratings",
            Feature::ItemMeanRating => "item_mean_rating",
            Feature::UserRatingSpread => "user_rating_spread",
            Feature::ItemShrunkMean => "item_shrunk_mean",
            Feature::ItemLikedShare => "item_liked_share",
            Feature::WeightedRating => "item_weighted_rating",
            Feature::ReleaseYear => "release_year",
            Feature::ItemKnnAffinity => "item_knn_affinity",
            Feature::MaxLikedSimilarity => "max_liked_similarity",
        }
    }
}

/// Who results are ranked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Person {
    /// A user of the ratings the stack was trained on (MovieLens userId).
    User(u32),
    /// A new person known by their ratings ((catalogue position, rating), each movie once),
    /// folded into the models at query time.
    Profile(Vec<(u32, f32)>),
}

/// The base models' scores, in report order.
pub const BASE_SCORES: [Feature; 9] = [
    Feature::Bias,
    Feature::ItemKnn,
    Feature::MatrixFactorization,
    Feature::GenreContent,
    Feature::ContentRidge,
    Feature::EmbeddingSimilarity,
    Feature::Ease,
    Feature::Rp3Beta,
    Feature::Ials,
];

/// The seed 000 stack: the four base scores.
pub const SEED_000_FEATURES: [Feature; 4] = [
    Feature::Bias,
    Feature::ItemKnn,
    Feature::MatrixFactorization,
    Feature::GenreContent,
];

/// The user and item rating statistics.
pub const USER_ITEM_STATISTICS: [Feature; 4] = [
    Feature::UserRatingCount,
    Feature::UserMeanRating,
    Feature::ItemRatingCount,
    Feature::ItemMeanRating,
];

/// The seed 001 stack: the four base scores and user/item statistics.
pub const SEED_001_FEATURES: [Feature; 8] = joined(SEED_000_FEATURES, USER_ITEM_STATISTICS);

/// Every base score and the user/item statistics.
const SCORES_AND_STATISTICS: [Feature; 13] = joined(BASE_SCORES, USER_ITEM_STATISTICS);

/// The rating-aware statistics beyond the seeds' counts and means.
const RATING_AWARE_STATISTICS: [Feature; 5] = [
    Feature::UserRatingSpread,
    Feature::ItemShrunkMean,
    Feature::ItemLikedShare,
    Feature::WeightedRating,
    Feature::ReleaseYear,
];

/// Every feature of the rating stacks.
pub const ALL_FEATURES: [Feature; 18] = joined(SCORES_AND_STATISTICS, RATING_AWARE_STATISTICS);

/// The learned rankers' per-pair features: every feature of the rating stacks, the top-N
/// affinity and the closest liked movie.
pub const CANDIDATE_FEATURES: [Feature; 20] = joined(
    ALL_FEATURES,
    [Feature::ItemKnnAffinity, Feature::MaxLikedSimilarity],
);

/// Pseudo-ratings at the global value that shrink a movie's mean and liked share: a movie
/// with one 5-star rating is not a sure thing.
pub const STATISTIC_PRIOR: f64 = 10.0;

/// The features of `a` followed by those of `b`; `N` must be `A + B` (checked when the
/// constant is evaluated, so a wrong length does not compile).
const fn joined<const A: usize, const B: usize, const N: usize>(
    a: [Feature; A],
    b: [Feature; B],
) -> [Feature; N] {
    assert!(A + B == N, "joined feature lists: N must be A + B");
    let mut out = [Feature::Bias; N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

/// The base models, fit on the same ratings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaseModels {
    /// μ + b_u + b_i.
    pub bias: Bias,
    /// Item-based kNN.
    pub item_knn: ItemKnn,
    /// Matrix factorisation.
    pub mf: MatrixFactorization,
    /// Genre profile cosine.
    pub genre: GenreContent,
    /// Ridge on content and numbers.
    pub content_ridge: ContentRidge,
    /// Embedding taste profiles over the index's movie vectors.
    pub embedding: EmbeddingProfile,
    /// EASE over the most-rated movies.
    pub ease: Ease,
    /// RP3β over the whole catalogue.
    pub rp3beta: Rp3Beta,
    /// iALS over the whole catalogue.
    pub ials: Ials,
    /// Milliseconds spent fitting each model (not saved).
    #[serde(skip)]
    pub fit_ms: Vec<(&'static str, f64)>,
}

impl BaseModels {
    /// Fits every base model on `train` (MF seeded with `seed`); `vectors` holds the movie
    /// embeddings in catalogue order.
    pub fn fit(
        train: &Interactions,
        dataset: &Dataset,
        vectors: &FlatIndex,
        seed: u64,
    ) -> BaseModels {
        let n_movies = dataset.movies.len();
        let mut fit_ms = Vec::new();
        // Fits one model and records how long it took.
        fn timed<T>(
            log: &mut Vec<(&'static str, f64)>,
            name: &'static str,
            fit: impl FnOnce() -> T,
        ) -> T {
            let started = std::time::Instant::now();
            let model = fit();
            let ms = started.elapsed().as_secs_f64() * 1e3;
            tracing::debug!("{name}: {:.1} s", ms / 1e3);
            log.push((name, ms));
            model
        }
        let log = &mut fit_ms;
        let bias = timed(log, "fit_bias", || Bias::fit(train, n_movies));
        let item_knn = timed(log, "fit_item_knn", || {
            ItemKnn::fit(train, n_movies, DEFAULT_K)
        });
        let mf = timed(log, "fit_mf", || {
            let config = MfConfig {
                seed,
                ..MfConfig::default()
            };
            MatrixFactorization::fit(train, n_movies, config)
        });
        let genre = timed(log, "fit_genre", || {
            GenreContent::fit(train, &dataset.movies, LIKED_THRESHOLD)
        });
        let content_ridge = timed(log, "fit_content_ridge", || {
            ContentRidge::fit(train, dataset, content_ridge::DEFAULT_ALPHA)
        });
        let embedding = timed(log, "fit_embedding_profile", || {
            EmbeddingProfile::fit(train, vectors, LIKED_THRESHOLD)
        });
        let ease = timed(log, "fit_ease", || {
            Ease::fit(
                train,
                n_movies,
                ease::DEFAULT_LAMBDA,
                ease::DEFAULT_MAX_ITEMS,
                ease::DEFAULT_KEPT_WEIGHTS,
            )
        });
        let rp3beta = timed(log, "fit_rp3beta", || {
            Rp3Beta::fit(
                train,
                n_movies,
                rp3beta::DEFAULT_BETA,
                rp3beta::DEFAULT_KEPT_WEIGHTS,
            )
        });
        let ials = timed(log, "fit_ials", || {
            let config = IalsConfig {
                seed,
                ..IalsConfig::default()
            };
            Ials::fit(train, n_movies, config)
        });
        BaseModels {
            bias,
            item_knn,
            mf,
            genre,
            content_ridge,
            embedding,
            ease,
            rp3beta,
            ials,
            fit_ms,
        }
    }

    /// The model whose score is `feature`, if it is a base score.
    pub fn scorer(&self, feature: Feature) -> Option<&dyn Scorer> {
        Some(match feature {
            Feature::Bias => &self.bias,
            Feature::ItemKnn => &self.item_knn,
            Feature::MatrixFactorization => &self.mf,
            Feature::GenreContent => &self.genre,
            Feature::ContentRidge => &self.content_ridge,
            Feature::EmbeddingSimilarity => &self.embedding,
            Feature::Ease => &self.ease,
            Feature::Rp3Beta => &self.rp3beta,
            Feature::Ials => &self.ials,
            _ => return None,
        })
    }
}

/// User and item statistics of the ratings the base models were fit on (never of the rows a
/// stack trains on: their own ratings would leak into the features), with the seeds'
/// fallbacks for cold users and items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    users: HashMap<u32, RatingStats>,
    items: Vec<RatingStats>,
    global_mean: f64,
    global_liked_share: f64,
    popularity: PopularityParams,
    years: Vec<Option<u16>>,
    mean_year: f64,
}

impl Statistics {
    /// Statistics of `train` over the catalogue `movies`.
    pub fn new(train: &Interactions, movies: &[Movie]) -> Statistics {
        let items = train.movie_stats(movies.len());
        Statistics {
            users: train.user_stats(),
            popularity: popularity_params(&items),
            items,
            global_mean: train.mean(),
            global_liked_share: train
                .rating
                .iter()
                .filter(|&&r| r >= LIKED_THRESHOLD)
                .count() as f64
                / train.len().max(1) as f64,
            years: movies.iter().map(|m| m.year).collect(),
            mean_year: mean_release_year(movies),
        }
    }

    /// The share of users who rated `movie`: how likely someone is to watch it at all.
    pub fn watch_share(&self, movie: u32) -> f64 {
        let count = self.items.get(movie as usize).map_or(0, |s| s.count);
        f64::from(count) / self.users.len().max(1) as f64
    }

    /// Whether `user` has a rating in the statistics.
    pub fn knows_user(&self, user: u32) -> bool {
        self.users.contains_key(&user)
    }

    /// The `n` movies with the highest weighted rating (ties: lower position first).
    pub fn popular(&self, n: usize, keep: &dyn Fn(u32) -> bool) -> Vec<u32> {
        let wr = |s: &RatingStats| weighted_rating(f64::from(s.count), s.mean, self.popularity);
        let scored: Vec<(u32, f64)> = (0..self.items.len() as u32)
            .zip(self.items.iter().map(wr))
            .filter(|&(m, _)| keep(m))
            .collect();
        top_by(scored, n, |&(m, w)| (w, m as usize))
            .into_iter()
            .map(|(m, _)| m)
            .collect()
    }

    /// Number of catalogue positions covered.
    pub fn movie_count(&self) -> usize {
        self.items.len()
    }
}

/// Builds feature rows for (user, movie) pairs.
pub struct FeatureBuilder<'a> {
    /// The fitted base models.
    pub models: &'a BaseModels,
    /// User and item statistics.
    pub statistics: &'a Statistics,
}

impl<'a> FeatureBuilder<'a> {
    /// Row-major feature rows (`users.len()` × `features.len()`).
    pub fn rows(&self, users: &[u32], movies: &[u32], features: &[Feature]) -> Vec<f64> {
        self.rows_with(
            movies,
            features,
            |model| model.score(users, movies),
            |feature| self.history_column_of_users(feature, users, movies),
            |i| {
                let user = self.statistics.users.get(&users[i]);
                user.copied().unwrap_or_default()
            },
        )
    }

    /// Row-major feature rows (`movies.len()` × `features.len()`) of a person who is not a
    /// training user, known by `history` ((movie, rating)): every model folds the history in
    /// (see [`Scorer::score_history`]), and the user statistics are the history's.
    pub fn rows_for_history(
        &self,
        history: &[(u32, f32)],
        movies: &[u32],
        features: &[Feature],
    ) -> Vec<f64> {
        let user = history_stats(history);
        self.rows_with(
            movies,
            features,
            |model| model.score_history(history, movies),
            |feature| self.history_column(feature, history, movies),
            |_| user,
        )
    }

    /// Feature rows of `person` with each of `movies`: a training user's through the training
    /// path, a profile's folded in.
    pub fn person_rows(&self, person: &Person, movies: &[u32], features: &[Feature]) -> Vec<f64> {
        match person {
            Person::User(user) => self.rows(&vec![*user; movies.len()], movies, features),
            Person::Profile(history) => self.rows_for_history(history, movies, features),
        }
    }

    /// The ratings of `person` the models know ((catalogue position, rating)).
    pub fn history<'p>(&self, person: &'p Person) -> &'p [(u32, f32)]
    where
        'a: 'p,
    {
        match person {
            Person::User(user) => self.models.item_knn.history(*user).unwrap_or(&[]),
            Person::Profile(history) => history,
        }
    }

    /// The embedding taste vector of `person` (unit mean of the movies they liked).
    pub fn taste_vector(&self, person: &Person) -> Option<Vec<f32>> {
        match person {
            Person::User(user) => self.models.embedding.profile(*user),
            Person::Profile(history) => self.models.embedding.history_profile(history),
        }
    }

    /// The `n` movies with the highest item-kNN affinity to `history` over the kept neighbour
    /// lists ([`ItemKnn::near_liked`]; ties: lower position), leaving out those `keep` refuses
    /// and movies without affinity.
    pub fn top_affinity(
        &self,
        history: &[(u32, f32)],
        n: usize,
        keep: &dyn Fn(u32) -> bool,
    ) -> Vec<u32> {
        let near = self.models.item_knn.near_liked(history, LIKED_THRESHOLD);
        top_positive(near, n, keep)
    }

    /// The `n` movies with the highest weighted rating over the training ratings among those
    /// to `keep`.
    pub fn popular(&self, n: usize, keep: &dyn Fn(u32) -> bool) -> Vec<u32> {
        self.statistics.popular(n, keep)
    }

    /// A column computed from a history ([`Feature::ItemKnnAffinity`],
    /// [`Feature::MaxLikedSimilarity`]) for `movies`.
    fn history_column(&self, feature: Feature, history: &[(u32, f32)], movies: &[u32]) -> Vec<f32> {
        match feature {
            Feature::ItemKnnAffinity => {
                self.models
                    .item_knn
                    .affinity(history, movies, LIKED_THRESHOLD)
            }
            Feature::MaxLikedSimilarity => {
                self.models.embedding.max_liked_similarity(history, movies)
            }
            _ => vec![f32::NAN; movies.len()],
        }
    }

    /// A history column of each pair (`users[i]`, `movies[i]`), each user's history read
    /// once.
    fn history_column_of_users(&self, feature: Feature, users: &[u32], movies: &[u32]) -> Vec<f32> {
        let mut by_user: Vec<(u32, usize)> =
            users.iter().enumerate().map(|(i, &u)| (u, i)).collect();
        by_user.sort_unstable();
        let mut out = vec![0f32; movies.len()];
        for group in by_user.chunk_by(|a, b| a.0 == b.0) {
            let history = self.models.item_knn.history(group[0].0).unwrap_or(&[]);
            let wanted: Vec<u32> = group.iter().map(|&(_, i)| movies[i]).collect();
            let scores = self.history_column(feature, history, &wanted);
            for (&(_, i), score) in group.iter().zip(scores) {
                out[i] = score;
            }
        }
        out
    }

    /// Rows for `movies`: base-score columns from `base`, history columns from `history`,
    /// statistic columns with the user statistics `user(i)` of row i.
    fn rows_with(
        &self,
        movies: &[u32],
        features: &[Feature],
        base: impl Fn(&dyn Scorer) -> Vec<f32>,
        history: impl Fn(Feature) -> Vec<f32>,
        user: impl Fn(usize) -> RatingStats,
    ) -> Vec<f64> {
        let d = features.len();
        let mut out = vec![0f64; movies.len() * d];
        for (j, &feature) in features.iter().enumerate() {
            let column: Vec<f64> = match (self.models.scorer(feature), feature) {
                (Some(model), _) => base(model).into_iter().map(f64::from).collect(),
                (None, Feature::ItemKnnAffinity | Feature::MaxLikedSimilarity) => {
                    history(feature).into_iter().map(f64::from).collect()
                }
                (None, _) => movies
                    .iter()
                    .enumerate()
                    .map(|(i, &m)| self.statistic(feature, user(i), m))
                    .collect(),
            };
            for (i, v) in column.into_iter().enumerate() {
                out[i * d + j] = v;
            }
        }
        out
    }

    fn statistic(&self, feature: Feature, user_stats: RatingStats, movie: u32) -> f64 {
        let s = self.statistics;
        let item = s.items.get(movie as usize).copied().unwrap_or_default();
        match feature {
            Feature::UserRatingCount => f64::from(user_stats.count),
            Feature::UserMeanRating => user_stats.mean_or(s.global_mean),
            Feature::ItemRatingCount => f64::from(item.count),
            Feature::ItemMeanRating => item.mean_or(s.global_mean),
            Feature::UserRatingSpread => user_stats.spread,
            Feature::ItemShrunkMean => item.shrunk_mean(s.global_mean, STATISTIC_PRIOR),
            Feature::ItemLikedShare => {
                item.shrunk_liked_share(s.global_liked_share, STATISTIC_PRIOR)
            }
            Feature::WeightedRating => {
                weighted_rating(f64::from(item.count), item.mean, s.popularity)
            }
            Feature::ReleaseYear => s
                .years
                .get(movie as usize)
                .copied()
                .flatten()
                .map_or(s.mean_year, f64::from),
            _ => f64::NAN,
        }
    }
}

/// The columns `subset` of rows built with the features `all`.
pub fn select_columns(rows: &[f64], all: &[Feature], subset: &[Feature]) -> Vec<f64> {
    let positions: Vec<usize> = subset
        .iter()
        .filter_map(|f| all.iter().position(|a| a == f))
        .collect();
    rows.chunks_exact(all.len())
        .flat_map(|row| positions.iter().map(move |&p| row[p]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_columns_by_feature() {
        let all = [Feature::Bias, Feature::ItemKnn, Feature::ReleaseYear];
        let rows = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(
            select_columns(&rows, &all, &[Feature::ReleaseYear, Feature::Bias]),
            vec![3.0, 1.0, 6.0, 4.0]
        );
    }

    #[test]
    fn seed_feature_sets_are_subsets_of_all() {
        for f in SEED_000_FEATURES.iter().chain(&SEED_001_FEATURES) {
            assert!(ALL_FEATURES.contains(f));
        }
        let mut names: Vec<&str> = ALL_FEATURES.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL_FEATURES.len());
    }
}
