//! ItemKnn: item-based collaborative filtering (seed 000 §3.2).
//!
//! Similarity is the cosine between item rating vectors (unrated = 0). A prediction for
//! (u, i) is the similarity-weighted mean of u's ratings on the k items u rated that are most
//! similar to i. The seed builds a dense n_items × n_items matrix; here each needed similarity
//! row is an exact sparse product (Σ over i's raters of their rating rows), computed once per
//! target item and in parallel, so memory stays O(ratings + n_items) per thread.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Interactions, Scorer, UserIndex};

/// Neighbours used per prediction in the seeds.
pub const DEFAULT_K: usize = 40;

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
}

impl ItemKnn {
    /// Fits on `train`; `k` neighbours; unknown users and items get the training mean.
    pub fn fit(train: &Interactions, n_movies: usize, k: usize) -> ItemKnn {
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
        ItemKnn {
            k,
            default_rating: train.mean(),
            users,
            user_rows,
            item_columns,
            item_norms,
        }
    }

    /// Unnormalised dot products of `item`'s column with every other column, into `acc`
    /// (all zero on entry); returns the touched positions.
    fn dots(&self, item: usize, acc: &mut [f32]) -> Vec<u32> {
        let mut touched = Vec::new();
        for &(user, r_ui) in &self.item_columns[item] {
            for &(j, r_uj) in &self.user_rows[user as usize] {
                if acc[j as usize] == 0.0 {
                    touched.push(j);
                }
                acc[j as usize] += r_ui * r_uj;
            }
        }
        touched
    }

    /// The prediction on `item` from `(dot product with item's column, movie, rating)` of each
    /// movie the user rated.
    fn predict_from(&self, item: usize, rated: impl Iterator<Item = (f32, u32, f32)>) -> f64 {
        let mut neighbours: Vec<(f32, u32, f32)> = rated
            .map(|(dot, j, r)| (self.cosine(dot, item, j as usize), j, r))
            .collect();
        if neighbours.is_empty() {
            return self.default_rating;
        }
        // Top k by similarity; ties go to the lower catalogue position (deterministic).
        let order =
            |a: &(f32, u32, f32), b: &(f32, u32, f32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        let k = self.k.min(neighbours.len());
        if neighbours.len() > k {
            neighbours.select_nth_unstable_by(k - 1, order);
            neighbours.truncate(k);
        }
        let weight: f64 = neighbours.iter().map(|n| f64::from(n.0.abs())).sum();
        if weight == 0.0 {
            return neighbours.iter().map(|n| f64::from(n.2)).sum::<f64>() / k as f64;
        }
        neighbours
            .iter()
            .map(|n| f64::from(n.0) * f64::from(n.2))
            .sum::<f64>()
            / weight
    }

    /// Predictions on `movies` for one user whose ratings are `history` ((movie, rating), each
    /// movie once): a known user's training row, or a new user's profile.
    ///
    /// Serving scores a few candidates for one user, where computing whole similarity rows
    /// would be wasted: the user's rated columns are inverted once (rater → the history entries
    /// they rated), so a candidate costs only the co-ratings it shares with the history. Each
    /// dot product is summed over the candidate's column in stored order, as in
    /// [`Scorer::score`]'s batch path, so both give bit-identical scores.
    pub fn score_history(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f32> {
        let fallback = self.default_rating as f32;
        self.with_history_dots(history, movies, fallback, |item, history, dots| {
            let rated = history.iter().zip(dots).map(|(&(j, r), &d)| (d, j, r));
            self.predict_from(item, rated) as f32
        })
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
        let n_movies = self.item_columns.len();
        let liked: Vec<u32> = history
            .iter()
            .filter(|&&(j, r)| r >= liked && (j as usize) < n_movies)
            .map(|&(j, _)| j)
            .collect();
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
        movies
            .iter()
            .map(|&m| {
                let item = m as usize;
                let norm = self.item_norms.get(item).copied().unwrap_or(0.0);
                if norm <= 0.0 {
                    return 0.0;
                }
                let total: f32 = self.item_columns[item]
                    .iter()
                    .map(|&(rater, r_ui)| r_ui * weights[rater as usize])
                    .sum();
                total / norm / count
            })
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

    /// For each of `movies`, `score(item, history, dots)` with `dots[h]` the dot product of
    /// the item's rating column with that of `history[h]` (the history's movies out of the
    /// catalogue left out); movies out of the catalogue, unrated movies and an empty history
    /// get `fallback` instead.
    fn with_history_dots(
        &self,
        history: &[(u32, f32)],
        movies: &[u32],
        fallback: f32,
        score: impl Fn(usize, &[(u32, f32)], &[f32]) -> f32,
    ) -> Vec<f32> {
        let n_movies = self.item_columns.len();
        let history: Vec<(u32, f32)> = history
            .iter()
            .copied()
            .filter(|&(j, _)| (j as usize) < n_movies)
            .collect();
        // CSR over dense users: the history entries each rater rated, and the rating.
        let mut offsets = vec![0usize; self.users.len() + 1];
        for &(j, _) in &history {
            for &(rater, _) in &self.item_columns[j as usize] {
                offsets[rater as usize + 1] += 1;
            }
        }
        for u in 0..self.users.len() {
            offsets[u + 1] += offsets[u];
        }
        let mut fill = offsets.clone();
        let mut entries = vec![(0u32, 0f32); offsets[self.users.len()]];
        for (h, &(j, _)) in history.iter().enumerate() {
            for &(rater, r) in &self.item_columns[j as usize] {
                entries[fill[rater as usize]] = (h as u32, r);
                fill[rater as usize] += 1;
            }
        }
        let mut dots = vec![0f32; history.len()];
        movies
            .iter()
            .map(|&m| {
                let item = m as usize;
                if item >= n_movies || self.item_columns[item].is_empty() || history.is_empty() {
                    return fallback;
                }
                dots.fill(0.0);
                for &(rater, r_ui) in &self.item_columns[item] {
                    let rater = rater as usize;
                    for &(h, r_uj) in &entries[offsets[rater]..offsets[rater + 1]] {
                        dots[h as usize] += r_ui * r_uj;
                    }
                }
                score(item, &history, &dots)
            })
            .collect()
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
        let mut acc = vec![0f32; self.item_columns.len()];
        self.dots(a as usize, &mut acc);
        self.cosine(acc[b as usize], a as usize, b as usize)
    }
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
        // One user (serving): only the similarities to the user's own movies are needed.
        if let Some(&user) = users.first() {
            if users.iter().all(|&u| u == user) {
                let history = self.users.get(user).map_or(&[][..], |u| &self.user_rows[u]);
                return self.score_history(history, movies);
            }
        }
        // Group the pairs by target movie so that each similarity row is computed once.
        let mut by_movie: Vec<(u32, usize)> =
            movies.iter().enumerate().map(|(i, &m)| (m, i)).collect();
        by_movie.sort_unstable();
        let groups: Vec<&[(u32, usize)]> = by_movie.chunk_by(|a, b| a.0 == b.0).collect();
        let n_movies = self.item_columns.len();
        let scored: Vec<Vec<(usize, f32)>> = groups
            .par_iter()
            .map_init(
                || vec![0f32; n_movies],
                |acc, group| {
                    let item = group[0].0 as usize;
                    let known_item = item < n_movies && !self.item_columns[item].is_empty();
                    let touched = if known_item {
                        self.dots(item, acc)
                    } else {
                        Vec::new()
                    };
                    let out = group
                        .iter()
                        .map(|&(_, pair)| {
                            let prediction = match self.users.get(users[pair]) {
                                Some(user) if known_item => {
                                    let rated = self.user_rows[user]
                                        .iter()
                                        .map(|&(j, r)| (acc[j as usize], j, r));
                                    self.predict_from(item, rated)
                                }
                                _ => self.default_rating,
                            };
                            (pair, prediction as f32)
                        })
                        .collect();
                    for j in touched {
                        acc[j as usize] = 0.0;
                    }
                    out
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

    proptest::proptest! {
        /// The one-user path and the batch path give bit-identical scores.
        #[test]
        fn one_user_path_equals_batch_path(
            ratings in proptest::collection::vec((0u32..8, 0u32..12, 1u8..=10), 1..120),
            k in 1usize..6,
        ) {
            let mut seen = std::collections::HashSet::new();
            let ratings: Vec<_> = ratings.into_iter().filter(|r| seen.insert((r.0, r.1))).collect();
            let train = Interactions {
                user: ratings.iter().map(|r| r.0).collect(),
                movie: ratings.iter().map(|r| r.1).collect(),
                rating: ratings.iter().map(|r| f32::from(r.2) / 2.0).collect(),
            };
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
