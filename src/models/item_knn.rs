//! ItemKnn: item-based collaborative filtering (seed 000 §3.2).
//!
//! Similarity is the cosine between item rating vectors (unrated = 0). A prediction for
//! (u, i) is the similarity-weighted mean of u's ratings on the k items u rated that are most
//! similar to i. The seed builds a dense n_items × n_items matrix (30 GB at 86k movies); here
//! each movie keeps its [`NEAREST_KEPT`] most similar movies, found at fit by exact sparse
//! products (Σ over i's raters of their rating rows) in parallel, so memory is
//! O(ratings + n_items · NEAREST_KEPT). A prediction walks i's kept list and stops at the
//! k-th movie the person rated: the same neighbours as the unpruned definition whenever k of
//! them are among the kept ones (the rest is estimated, see `predict`), and O(NEAREST_KEPT)
//! a candidate instead of the co-ratings of every rater (70 % of a 10M-rating build).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Interactions, Scorer, UserIndex};

/// Neighbours used per prediction in the seeds.
pub const DEFAULT_K: usize = 40;

/// Most similar movies kept per movie (86k movies: 138 MB).
pub const NEAREST_KEPT: usize = 200;

/// The similarity given to rated movies past a cut neighbour list, as a share of the last
/// kept one's: the middle of the range they can have.
pub const TAIL_SIMILARITY_SHARE: f64 = 0.5;

/// A fitted item-kNN model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemKnn {
    k: usize,
    default_rating: f64,
    users: UserIndex,
    /// Per dense user: (movie, rating) of every rating.
    user_rows: Vec<Vec<(u32, f32)>>,
    /// Per movie: (dense user, rating) of every rating.
    item_columns: Vec<Vec<(u32, f32)>>,
    /// Per movie: L2 norm of its rating column.
    item_norms: Vec<f32>,
    /// Per movie: its most similar movies (movie, cosine > 0), most similar first, ties to
    /// the lower catalogue position.
    nearest: Vec<Vec<(u32, f32)>>,
    /// The longest a list in `nearest` may be: a list this long was cut.
    kept: usize,
}

impl ItemKnn {
    /// Fits on `train`; `k` neighbours; unknown users and items get the training mean.
    pub fn fit(train: &Interactions, n_movies: usize, k: usize) -> ItemKnn {
        ItemKnn::fit_keeping(train, n_movies, k, NEAREST_KEPT)
    }

    /// [`ItemKnn::fit`] keeping the `kept` most similar movies of each movie.
    fn fit_keeping(train: &Interactions, n_movies: usize, k: usize, kept: usize) -> ItemKnn {
        let users = UserIndex::new(&train.user);
        let mut user_rows = vec![Vec::new(); users.len()];
        let mut item_columns = vec![Vec::new(); n_movies];
        for ((&u, &m), &r) in train.user.iter().zip(&train.movie).zip(&train.rating) {
            let dense = users.get(u).unwrap_or_default();
            user_rows[dense].push((m, r));
            item_columns[m as usize].push((dense as u32, r));
        }
        let item_norms = item_columns
            .iter()
            .map(|column| column.iter().map(|&(_, r)| r * r).sum::<f32>().sqrt())
            .collect();
        let mut model = ItemKnn {
            k,
            default_rating: train.mean(),
            users,
            user_rows,
            item_columns,
            item_norms,
            nearest: Vec::new(),
            kept,
        };
        model.nearest = (0..n_movies)
            .into_par_iter()
            .map_init(
                || (vec![0f32; n_movies], vec![0u32; n_movies + 1]),
                |buffers, item| model.most_similar(item, kept, buffers),
            )
            .collect();
        model
    }

    /// The `kept` movies most similar to `item` (cosine > 0), most similar first; the
    /// buffers of [`ItemKnn::dots`], whose sums are all zero on entry and on return.
    fn most_similar(
        &self,
        item: usize,
        kept: usize,
        (acc, touched): &mut (Vec<f32>, Vec<u32>),
    ) -> Vec<(u32, f32)> {
        let reached = self.dots(item, acc, touched);
        let touched = &touched[..reached];
        let similar: Vec<(u32, f32)> = touched
            .iter()
            .filter(|&&j| j as usize != item)
            .map(|&j| (j, self.cosine(acc[j as usize], item, j as usize)))
            .filter(|&(_, s)| s > 0.0)
            .collect();
        for &j in touched {
            acc[j as usize] = 0.0;
        }
        super::strongest(similar, kept, |s| s)
    }

    /// Unnormalised dot products of `item`'s column with every other column, into `acc`
    /// (all zero on entry); the touched positions go to `touched` (one slot longer than
    /// `acc`), and their number is returned.
    fn dots(&self, item: usize, acc: &mut [f32], touched: &mut [u32]) -> usize {
        let mut reached = 0;
        for &(user, r_ui) in &self.item_columns[item] {
            for &(j, r_uj) in &self.user_rows[user as usize] {
                reached = super::reach(acc, touched, reached, j, r_ui * r_uj);
            }
        }
        reached
    }

    /// Predictions on `movies` for one person whose ratings are `history` ((movie, rating),
    /// each movie once); `ratings` is a per-movie buffer, all NaN on entry and on return.
    fn predict_all(&self, history: &[(u32, f32)], movies: &[u32], ratings: &mut [f32]) -> Vec<f32> {
        let n_movies = self.item_columns.len();
        let history: Vec<(u32, f32)> = history
            .iter()
            .copied()
            .filter(|&(j, _)| (j as usize) < n_movies)
            .collect();
        let fallback = self.default_rating as f32;
        if history.is_empty() {
            return vec![fallback; movies.len()];
        }
        let person_mean =
            history.iter().map(|&(_, r)| f64::from(r)).sum::<f64>() / history.len() as f64;
        for &(j, r) in &history {
            ratings[j as usize] = r;
        }
        let out = movies
            .iter()
            .map(|&m| {
                let item = m as usize;
                if item >= n_movies || self.item_columns[item].is_empty() {
                    return fallback;
                }
                self.predict(item, ratings, history.len(), person_mean)
                    .unwrap_or(person_mean) as f32
            })
            .collect();
        for &(j, _) in &history {
            ratings[j as usize] = f32::NAN;
        }
        out
    }

    /// The similarity-weighted mean of the person's ratings (`ratings`, NaN = unrated, `rated`
    /// of them, mean `person_mean`) on the first k of `item`'s kept neighbours they rated;
    /// `None` when they rated none and the list was not cut.
    ///
    /// When the list was cut and holds fewer than k of their movies, the unpruned model would
    /// also weigh rated movies past the cut, each less similar than the last kept one: they
    /// enter as the person's mean at [`TAIL_SIMILARITY_SHARE`] of that similarity (without
    /// them, ml-latest-small's NDCG@10 fell 0.800 → 0.782; with them it is 0.801).
    fn predict(&self, item: usize, ratings: &[f32], rated: usize, person_mean: f64) -> Option<f64> {
        let (mut weight, mut total, mut found) = (0f64, 0f64, 0usize);
        let list = &self.nearest[item];
        for &(j, s) in list {
            let r = ratings[j as usize];
            if r.is_nan() {
                continue;
            }
            weight += f64::from(s);
            total += f64::from(s) * f64::from(r);
            found += 1;
            if found == self.k {
                break;
            }
        }
        if let Some(&(_, last)) = list.last() {
            if found < self.k && list.len() >= self.kept {
                let past_cut = (self.k - found).min(rated - found) as f64;
                let similarity = f64::from(last) * TAIL_SIMILARITY_SHARE;
                weight += past_cut * similarity;
                total += past_cut * similarity * person_mean;
            }
        }
        (weight > 0.0).then(|| total / weight)
    }

    /// Predictions on `movies` for one user whose ratings are `history` ((movie, rating), each
    /// movie once): a known user's training row, or a new user's profile. A person who rated
    /// none of a movie's kept neighbours gets their mean rating; an empty history, a movie
    /// nobody rated or out of the catalogue gets the training mean.
    pub fn score_history(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f32> {
        let mut ratings = vec![f32::NAN; self.item_columns.len()];
        self.predict_all(history, movies, &mut ratings)
    }

    /// The top-N affinity of one user with each of `movies`: the mean cosine similarity
    /// between the movie and the movies of `history` rated ≥ `liked` (classic item-based
    /// top-N scoring, divided by the number of liked movies so that users compare; 0 for an
    /// unrated movie or a history without a liked movie).
    ///
    /// Unlike the rating prediction, it grows with the number of liked movies a candidate is
    /// close to, which is what separates movies a person will watch from the rest.
    ///
    /// Computed in factorised form: `Σ_j cos(i, j) = (1/‖i‖) Σ_u r_ui · w_u` with
    /// `w_u = Σ_{j liked, rated by u} r_uj / ‖j‖`, so a movie costs one pass over its column
    /// (pairing every candidate's raters with the history cost O(raters × overlap) a movie:
    /// 95 % of a 10M-rating build's stack training went there).
    pub fn affinity(&self, history: &[(u32, f32)], movies: &[u32], liked: f32) -> Vec<f32> {
        let liked = self.liked_movies(history, liked);
        if liked.is_empty() {
            return vec![0.0; movies.len()];
        }
        let mut weights = vec![0f32; self.users.len()];
        for &j in &liked {
            let norm = self.item_norms[j as usize];
            if norm > 0.0 {
                for &(rater, r_uj) in &self.item_columns[j as usize] {
                    weights[rater as usize] += r_uj / norm;
                }
            }
        }
        let count = liked.len() as f32;
        // Over both cores: a request's 300 candidates read ~6M ratings at ml-latest's size.
        movies
            .par_iter()
            .with_min_len(AFFINITY_MOVIES_PER_TASK)
            .map(|&m| {
                let item = m as usize;
                let norm = self.item_norms.get(item).copied().unwrap_or(0.0);
                if norm <= 0.0 {
                    return 0.0;
                }
                weighted_column_sum(&self.item_columns[item], &weights) / norm / count
            })
            .collect()
    }

    /// The movies in the kept neighbour lists of the movies `history` rated ≥ `liked`, each
    /// with the sum of its similarities to them divided by their number: [`ItemKnn::affinity`]
    /// over the kept lists only (Deshpande & Karypis' item-based top-N), at O(liked ·
    /// [`NEAREST_KEPT`]) where the exact affinity of the whole catalogue is a pass over every
    /// rating (~30 ms a request at 33.8M ratings). For choosing candidates; their exact
    /// affinity is a feature.
    pub fn near_liked(&self, history: &[(u32, f32)], liked: f32) -> Vec<(u32, f32)> {
        let liked = self.liked_movies(history, liked);
        // Summed in a dense row, not a hash map: up to liked × 200 additions a request. The
        // kept similarities are positive, as `reach` needs.
        let n = self.item_columns.len();
        let (mut sums, mut touched) = (vec![0f32; n], vec![0u32; n + 1]);
        let mut reached = 0;
        for &j in &liked {
            for &(i, s) in &self.nearest[j as usize] {
                reached = super::reach(&mut sums, &mut touched, reached, i, s);
            }
        }
        touched.truncate(reached);
        touched.sort_unstable();
        let count = liked.len() as f32;
        touched
            .into_iter()
            .map(|i| (i, sums[i as usize] / count))
            .collect()
    }

    /// The movies of `history` rated ≥ `liked` that are in the catalogue.
    fn liked_movies(&self, history: &[(u32, f32)], liked: f32) -> Vec<u32> {
        let n_movies = self.item_columns.len();
        history
            .iter()
            .filter(|&&(j, r)| r >= liked && (j as usize) < n_movies)
            .map(|&(j, _)| j)
            .collect()
    }

    /// The cosine of items `i` and `j` from the dot product of their columns (0 for an
    /// all-zero column).
    fn cosine(&self, dot: f32, i: usize, j: usize) -> f32 {
        let denominator = self.item_norms[i] * self.item_norms[j];
        if denominator > 0.0 {
            dot / denominator
        } else {
            0.0
        }
    }

    /// The training ratings of `user` ((movie, rating)), if they are a training user.
    pub fn history(&self, user: u32) -> Option<&[(u32, f32)]> {
        self.users.get(user).map(|u| self.user_rows[u].as_slice())
    }

    /// The `n` movies most often rated together with `item`, best first: their rating cosine
    /// shrunk by the number of people who rated both, `cos · c / (c + shrink)`, so that two
    /// movies one person rated are not each other's nearest neighbours (Koren 2008).
    pub fn neighbours(&self, item: u32, n: usize, shrink: f32) -> Vec<(u32, f32)> {
        let item = item as usize;
        if item >= self.item_columns.len() {
            return Vec::new();
        }
        let mut dots = vec![0f32; self.item_columns.len()];
        let mut co_raters = vec![0u32; self.item_columns.len()];
        for &(user, r_ui) in &self.item_columns[item] {
            for &(j, r_uj) in &self.user_rows[user as usize] {
                dots[j as usize] += r_ui * r_uj;
                co_raters[j as usize] += 1;
            }
        }
        let scored: Vec<(u32, f32)> = (0..dots.len())
            .filter(|&j| j != item && co_raters[j] > 0)
            .map(|j| {
                let c = co_raters[j] as f32;
                (j as u32, self.cosine(dots[j], item, j) * c / (c + shrink))
            })
            .collect();
        crate::ann::top_by(scored, n, |&(j, s)| (f64::from(s), j as usize))
    }

    /// The exact cosine similarity of two items (for tests and explanations).
    pub fn similarity(&self, a: u32, b: u32) -> f32 {
        let n = self.item_columns.len();
        let (mut acc, mut touched) = (vec![0f32; n], vec![0u32; n + 1]);
        self.dots(a as usize, &mut acc, &mut touched);
        self.cosine(acc[b as usize], a as usize, b as usize)
    }
}

/// Fewest movies [`ItemKnn::affinity`] hands to one rayon task.
const AFFINITY_MOVIES_PER_TASK: usize = 32;

/// Σ r · weights[rater] over a movie's column ((rater, r) pairs), in eight running sums: one
/// running sum waits on each addition, and a popular movie's column at ml-latest's size holds
/// tens of thousands of raters (`recommend` at 86.5k movies, whose 300 candidates' affinity
/// was 60 % of `perf`'s samples: 27 → 22.5 ms a request, then 20 ms split over both cores).
fn weighted_column_sum(column: &[(u32, f32)], weights: &[f32]) -> f32 {
    crate::linalg::lane_sum(column, |(rater, r)| r * weights[rater as usize])
}

impl Scorer for ItemKnn {
    fn name(&self) -> &'static str {
        "ItemKnn"
    }

    fn score_one(&self, user: u32, movie: u32) -> f32 {
        self.score(&[user], &[movie])[0]
    }

    fn score_history(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f32> {
        ItemKnn::score_history(self, history, movies)
    }

    fn score(&self, users: &[u32], movies: &[u32]) -> Vec<f32> {
        // Grouped by user so that each history is spread into the rating buffer once.
        let mut by_user: Vec<(u32, usize)> =
            users.iter().enumerate().map(|(i, &u)| (u, i)).collect();
        by_user.sort_unstable();
        let groups: Vec<&[(u32, usize)]> = by_user.chunk_by(|a, b| a.0 == b.0).collect();
        let n_movies = self.item_columns.len();
        let scored: Vec<Vec<(usize, f32)>> = groups
            .par_iter()
            .map_init(
                || vec![f32::NAN; n_movies],
                |ratings, group| {
                    let history = self.history(group[0].0).unwrap_or(&[]);
                    let wanted: Vec<u32> = group.iter().map(|&(_, pair)| movies[pair]).collect();
                    let predicted = self.predict_all(history, &wanted, ratings);
                    group.iter().map(|&(_, pair)| pair).zip(predicted).collect()
                },
            )
            .collect();
        let mut out = vec![0f32; movies.len()];
        for (pair, score) in scored.into_iter().flatten() {
            out[pair] = score;
        }
        out
    }

    fn predicts_ratings(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// users 1, 2, 3; movies 0, 1, 2, 3 (3 is rated by nobody).
    fn train() -> Interactions {
        Interactions {
            user: vec![1, 1, 1, 2, 2, 3],
            movie: vec![0, 1, 2, 0, 1, 2],
            rating: vec![5.0, 3.0, 4.0, 4.0, 2.0, 1.0],
        }
    }

    #[test]
    fn cosine_similarity_by_hand() {
        let model = ItemKnn::fit(&train(), 4, 40);
        // columns over users (1, 2, 3): m0 = (5, 4, 0), m1 = (3, 2, 0), m2 = (4, 0, 1)
        let cos01 = (15.0 + 8.0) / ((41f32).sqrt() * (13f32).sqrt());
        assert!((model.similarity(0, 1) - cos01).abs() < 1e-6);
        let cos02 = 20.0 / ((41f32).sqrt() * (17f32).sqrt());
        assert!((model.similarity(0, 2) - cos02).abs() < 1e-6);
    }

    #[test]
    fn neighbours_are_shrunk_by_co_raters() {
        let model = ItemKnn::fit(&train(), 4, 40);
        // m0 and m1 share two raters, m0 and m2 one.
        let cos01 = model.similarity(0, 1) * 2.0 / 3.0;
        let cos02 = model.similarity(0, 2) * 1.0 / 2.0;
        let neighbours = model.neighbours(0, 5, 1.0);
        assert_eq!(neighbours.len(), 2, "m3 was rated by nobody who rated m0");
        assert_eq!(neighbours[0].0, 1);
        assert!((neighbours[0].1 - cos01).abs() < 1e-6);
        assert!((neighbours[1].1 - cos02).abs() < 1e-6);
        assert_eq!(model.neighbours(0, 1, 1.0).len(), 1);
        assert!(model.neighbours(99, 5, 1.0).is_empty());
    }

    #[test]
    fn predictions_by_hand() {
        let model = ItemKnn::fit(&train(), 4, 40);
        // user 2 on movie 2: neighbours m0 (r 4), m1 (r 2)
        let s0 = 20.0 / ((41f64).sqrt() * (17f64).sqrt());
        let s1 = 12.0 / ((13f64).sqrt() * (17f64).sqrt());
        let expected = (s0 * 4.0 + s1 * 2.0) / (s0 + s1);
        let got = model.score(&[2], &[2])[0] as f64;
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        // k = 1 keeps only the most similar rated item: m1 (0.807) over m0 (0.758)
        assert!(s1 > s0);
        let top1 = ItemKnn::fit(&train(), 4, 1).score(&[2], &[2])[0];
        assert!((top1 - 2.0).abs() < 1e-6);
    }

    #[test]
    fn affinity_by_hand() {
        let model = ItemKnn::fit(&train(), 4, 40);
        // Liked (≥ 4): movies 0 and 2; movie 1 (rated 3) does not count.
        let history = [(0, 5.0), (1, 3.0), (2, 4.0)];
        let got = model.affinity(&history, &[1, 3], 4.0);
        let expected = (model.similarity(1, 0) + model.similarity(1, 2)) / 2.0;
        assert!((got[0] - expected).abs() < 1e-6, "{got:?} vs {expected}");
        // Movie 3 has no rating: no affinity; nor has anything for a history without a like.
        assert_eq!(got[1], 0.0);
        assert_eq!(model.affinity(&[(0, 3.0)], &[1], 4.0), vec![0.0]);
        // The factorised form against the definition, for every movie and liked set.
        for liked in [&[0u32][..], &[1, 2], &[0, 1, 2], &[2, 3]] {
            let history: Vec<(u32, f32)> = liked.iter().map(|&j| (j, 5.0)).collect();
            let got = model.affinity(&history, &[0, 1, 2, 3], 4.0);
            for (i, g) in got.iter().enumerate() {
                let sum: f32 = liked.iter().map(|&j| model.similarity(i as u32, j)).sum();
                let expected = sum / liked.len() as f32;
                assert!(
                    (g - expected).abs() < 1e-6,
                    "{liked:?} {i}: {g} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn near_liked_sums_the_kept_lists() {
        let model = ItemKnn::fit(&train(), 4, 40);
        // Liked: movies 0 and 2 → their lists hold 1 (both), 2 (from 0) and 0 (from 2).
        let history = [(0, 5.0), (1, 3.0), (2, 4.0)];
        let near = model.near_liked(&history, 4.0);
        let exact = model.affinity(&history, &[0, 1, 2], 4.0);
        assert_eq!(near.iter().map(|n| n.0).collect::<Vec<_>>(), vec![0, 1, 2]);
        // With every neighbour kept, the sums are the exact affinity, except that a liked
        // movie is not its own neighbour.
        assert!((near[1].1 - exact[1]).abs() < 1e-6, "{near:?} vs {exact:?}");
        assert!((near[0].1 - model.similarity(0, 2) / 2.0).abs() < 1e-6);
        // One kept neighbour each: only the most similar movie of each liked one counts.
        // Movie 1 is the closest to both 0 (0.996 against 0.758 for 2) and 2 (0.807 against
        // 0.758 for 0).
        let pruned = ItemKnn::fit_keeping(&train(), 4, 40, 1);
        let near = pruned.near_liked(&history, 4.0);
        let expected = (model.similarity(1, 0) + model.similarity(1, 2)) / 2.0;
        assert_eq!(near.len(), 1, "{near:?}");
        assert_eq!(near[0].0, 1);
        assert!(
            (near[0].1 - expected).abs() < 1e-6,
            "{near:?} vs {expected}"
        );
        assert!(model.near_liked(&[(1, 3.0)], 4.0).is_empty());
    }

    #[test]
    fn fallbacks() {
        let model = ItemKnn::fit(&train(), 4, 40);
        let mean = 19.0 / 6.0;
        // unknown user, unknown (never rated) item
        assert!((model.score(&[9], &[0])[0] - mean).abs() < 1e-6);
        assert!((model.score(&[1], &[3])[0] - mean).abs() < 1e-6);
        // All-zero similarities: the target shares no rater with any item the user rated.
        let zero = Interactions {
            user: vec![1, 2, 2],
            movie: vec![0, 1, 2],
            rating: vec![5.0, 2.0, 4.0],
        };
        let model = ItemKnn::fit(&zero, 3, 40);
        // user 2 on movie 0: neighbours m1 (r 2), m2 (r 4), both similarity 0 → mean 3
        assert!((model.score(&[2], &[0])[0] - 3.0).abs() < 1e-6);
    }

    /// Generated (user, movie, half stars) triples as ratings, each pair once.
    fn interactions(ratings: Vec<(u32, u32, u8)>) -> Interactions {
        let mut seen = std::collections::HashSet::new();
        let ratings: Vec<_> = ratings
            .into_iter()
            .filter(|r| seen.insert((r.0, r.1)))
            .collect();
        Interactions {
            user: ratings.iter().map(|r| r.0).collect(),
            movie: ratings.iter().map(|r| r.1).collect(),
            rating: ratings.iter().map(|r| f32::from(r.2) / 2.0).collect(),
        }
    }

    proptest::proptest! {
        /// The one-user path and the batch path give bit-identical scores.
        #[test]
        fn one_user_path_equals_batch_path(
            ratings in proptest::collection::vec((0u32..8, 0u32..12, 1u8..=10), 1..120),
            k in 1usize..6,
        ) {
            let train = interactions(ratings);
            let model = ItemKnn::fit(&train, 13, k);
            let movies: Vec<u32> = (0..13).collect();
            for user in 0..9u32 {
                let mut users = vec![user; movies.len()];
                let one_user = model.score(&users, &movies);
                // A second user makes the batch path run.
                users.push(99);
                let batch = model.score(&users, &[movies.clone(), vec![0]].concat());
                proptest::prop_assert_eq!(&one_user[..], &batch[..movies.len()]);
            }
        }
    }

    /// The unpruned definition: the similarity-weighted mean of the user's ratings on the k
    /// rated movies most similar to `item` (ties to the lower position), the person's mean
    /// when those similarities are all zero.
    fn by_definition(model: &ItemKnn, history: &[(u32, f32)], item: u32) -> f64 {
        let mut rated: Vec<(f32, u32, f32)> = history
            .iter()
            .map(|&(j, r)| (model.similarity(item, j), j, r))
            .filter(|&(_, j, _)| j != item)
            .collect();
        rated.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        rated.truncate(model.k);
        let weight: f64 = rated.iter().map(|n| f64::from(n.0)).sum();
        if weight == 0.0 {
            let all: f64 = history.iter().map(|&(_, r)| f64::from(r)).sum();
            return all / history.len() as f64;
        }
        rated
            .iter()
            .map(|n| f64::from(n.0) * f64::from(n.2))
            .sum::<f64>()
            / weight
    }

    proptest::proptest! {
        /// Kept lists as long as the catalogue give the unpruned definition; short ones use
        /// only kept neighbours.
        #[test]
        fn predictions_follow_the_definition(
            ratings in proptest::collection::vec((0u32..8, 0u32..12, 1u8..=10), 1..120),
            k in 1usize..6,
            kept in 1usize..4,
        ) {
            let train = interactions(ratings);
            let full = ItemKnn::fit_keeping(&train, 12, k, 12);
            let pruned = ItemKnn::fit_keeping(&train, 12, k, kept);
            for user in 0..8u32 {
                let Some(history) = full.history(user) else { continue };
                for item in 0..12u32 {
                    if full.item_columns[item as usize].is_empty() {
                        continue;
                    }
                    let got = f64::from(full.score(&[user], &[item])[0]);
                    let expected = by_definition(&full, history, item);
                    proptest::prop_assert!((got - expected).abs() < 1e-4, "{got} vs {expected}");
                    // Pruned: the definition over the kept neighbours the user rated.
                    let kept_rated: Vec<(u32, f32)> = pruned.nearest[item as usize]
                        .iter()
                        .filter_map(|&(j, _)| history.iter().find(|h| h.0 == j).copied())
                        .collect();
                    proptest::prop_assert!(pruned.nearest[item as usize].len() <= kept);
                    let got = f64::from(pruned.score(&[user], &[item])[0]);
                    let list = &pruned.nearest[item as usize];
                    let mean = history.iter().map(|&(_, r)| f64::from(r)).sum::<f64>()
                        / history.len() as f64;
                    let mut expected_sum = 0.0;
                    let mut expected_weight = 0.0;
                    for &(j, r) in kept_rated.iter().take(k) {
                        let s = f64::from(pruned.similarity(item, j));
                        expected_sum += s * f64::from(r);
                        expected_weight += s;
                    }
                    if list.len() == kept && kept_rated.len() < k {
                        // Rated movies past the cut: the person's mean at half the last
                        // kept similarity.
                        let past = (k - kept_rated.len()).min(history.len() - kept_rated.len());
                        let s = f64::from(list[kept - 1].1) * 0.5 * past as f64;
                        expected_sum += s * mean;
                        expected_weight += s;
                    }
                    let expected = if expected_weight > 0.0 {
                        expected_sum / expected_weight
                    } else {
                        mean
                    };
                    proptest::prop_assert!((got - expected).abs() < 1e-4, "pruned {got} vs {expected}");
                }
            }
        }
    }

    #[test]
    fn scoring_order_does_not_matter() {
        let model = ItemKnn::fit(&train(), 4, 2);
        let users = [1, 2, 3, 2, 9, 1];
        let movies = [2, 2, 0, 1, 1, 3];
        let together = model.score(&users, &movies);
        for i in 0..users.len() {
            assert_eq!(model.score(&users[i..=i], &movies[i..=i])[0], together[i]);
        }
    }
}
