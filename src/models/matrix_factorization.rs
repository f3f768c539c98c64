//! MatrixFactorization: `μ + b_u + b_i + p_u·q_i` trained by SGD (seed 000 §3.3).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{solve_spd, Interactions, RatingModel, UserIndex};

/// Hyper-parameters of the factorisation (the seeds' values by default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MfConfig {
    /// Latent factors.
    pub factors: usize,
    /// Passes over the ratings.
    pub epochs: usize,
    /// SGD step.
    pub learning_rate: f64,
    /// L2 regularisation.
    pub regularization: f64,
    /// Seed of the initialisation and of each epoch's shuffle.
    pub seed: u64,
}

impl Default for MfConfig {
    fn default() -> Self {
        MfConfig {
            factors: 30,
            epochs: 8,
            learning_rate: 0.01,
            regularization: 0.05,
            seed: 42,
        }
    }
}

/// A fitted factorisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixFactorization {
    config: MfConfig,
    mu: f64,
    users: UserIndex,
    user_bias: Vec<f64>,
    item_bias: Vec<f64>,
    /// Row-major n_users × factors.
    p: Vec<f64>,
    /// Row-major n_movies × factors.
    q: Vec<f64>,
    item_known: Vec<bool>,
    epoch_rmse: Vec<f64>,
}

/// A standard normal draw (Box–Muller), so the crate needs no distribution dependency.
pub(crate) fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl MatrixFactorization {
    /// Fits on `train` over `n_movies` catalogue positions.
    pub fn fit(train: &Interactions, n_movies: usize, config: MfConfig) -> MatrixFactorization {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let users = UserIndex::new(&train.user);
        let f = config.factors;
        let mut p: Vec<f64> = (0..users.len() * f)
            .map(|_| 0.1 * standard_normal(&mut rng))
            .collect();
        let mut q: Vec<f64> = (0..n_movies * f)
            .map(|_| 0.1 * standard_normal(&mut rng))
            .collect();
        let mut user_bias = vec![0f64; users.len()];
        let mut item_bias = vec![0f64; n_movies];
        let mut item_known = vec![false; n_movies];
        for &m in &train.movie {
            item_known[m as usize] = true;
        }
        let mu = train.mean();
        // Each rating as one step reads it, shuffled in place below: the same swaps as
        // shuffling the rating positions, so the same order, but a step reads its user, movie
        // and rating from one place instead of three arrays at a random position.
        let mut entries: Vec<Entry> = train
            .user
            .iter()
            .zip(&train.movie)
            .zip(&train.rating)
            .map(|((&u, &movie), &rating)| Entry {
                user: users.get(u).unwrap_or_default() as u32,
                movie,
                rating,
            })
            .collect();
        // DSGD (Gemulla et al. 2011): users and movies are each cut in two halves of about
        // equal ratings, and an epoch is two sub-epochs that each update two blocks
        // (users half h, movies half (h + s) mod 2) on two threads. The blocks share no user
        // and no movie, so the result does not depend on thread timing; within a block the
        // ratings keep the epoch's shuffled order. Plain SGD was one core's 112 s of a
        // 33.8M-rating build, twice.
        let user_cut = halfway(entries.iter().map(|e| e.user as usize), users.len());
        let movie_cut = halfway(entries.iter().map(|e| e.movie as usize), n_movies);
        let mut blocks: [Vec<Entry>; 4] = Default::default();
        let mut epoch_rmse = Vec::with_capacity(config.epochs);
        let step = Step {
            lr: config.learning_rate,
            reg: config.regularization,
            mu,
            factors: f,
        };
        for epoch in 0..config.epochs {
            entries.shuffle(&mut rng);
            for block in &mut blocks {
                block.clear();
            }
            for &entry in &entries {
                let upper_user = entry.user as usize >= user_cut;
                let upper_movie = entry.movie as usize >= movie_cut;
                blocks[2 * usize::from(upper_user) + usize::from(upper_movie)].push(entry);
            }
            let (p_low, p_high) = p.split_at_mut(user_cut * f);
            let (q_low, q_high) = q.split_at_mut(movie_cut * f);
            let (bu_low, bu_high) = user_bias.split_at_mut(user_cut);
            let (bi_low, bi_high) = item_bias.split_at_mut(movie_cut);
            let mut low_users = Side::new(p_low, bu_low, 0);
            let mut high_users = Side::new(p_high, bu_high, user_cut);
            let mut low_movies = Side::new(q_low, bi_low, 0);
            let mut high_movies = Side::new(q_high, bi_high, movie_cut);
            let (a, b) = rayon::join(
                || step.block(&blocks[0], &mut low_users, &mut low_movies),
                || step.block(&blocks[3], &mut high_users, &mut high_movies),
            );
            let (c, d) = rayon::join(
                || step.block(&blocks[1], &mut low_users, &mut high_movies),
                || step.block(&blocks[2], &mut high_users, &mut low_movies),
            );
            let squared = a + b + c + d;
            let rmse = (squared / train.len().max(1) as f64).sqrt();
            tracing::debug!(
                "MF epoch {}/{}: train RMSE {rmse:.4}",
                epoch + 1,
                config.epochs
            );
            epoch_rmse.push(rmse);
        }
        MatrixFactorization {
            config,
            mu,
            users,
            user_bias,
            item_bias,
            p,
            q,
            item_known,
            epoch_rmse,
        }
    }

    /// Training RMSE after each epoch.
    pub fn epoch_rmse(&self) -> &[f64] {
        &self.epoch_rmse
    }
}

/// The first index of the second half of `0..n` when each index weighs its number of
/// occurrences in `items` (the halves hold about equal ratings).
fn halfway(items: impl Iterator<Item = usize> + Clone, n: usize) -> usize {
    let mut counts = vec![0usize; n];
    let mut total = 0;
    for i in items {
        counts[i] += 1;
        total += 1;
    }
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        if 2 * seen >= total {
            return i;
        }
        seen += c;
    }
    n
}

/// One half of the users or of the movies: its factor rows and biases, from index `first`.
struct Side<'a> {
    factors: &'a mut [f64],
    bias: &'a mut [f64],
    first: usize,
}

impl<'a> Side<'a> {
    fn new(factors: &'a mut [f64], bias: &'a mut [f64], first: usize) -> Side<'a> {
        Side {
            factors,
            bias,
            first,
        }
    }
}

/// One training rating as an SGD step reads it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Dense user index.
    user: u32,
    /// Catalogue position.
    movie: u32,
    rating: f32,
}

/// How many ratings ahead of the current one an SGD step asks for the factor rows it will
/// read: the rows sit at random places in memory, and waiting for each in turn was most of
/// the epoch's time.
const PREFETCH_AHEAD: usize = 8;

/// What every SGD step reads.
struct Step {
    lr: f64,
    reg: f64,
    mu: f64,
    factors: usize,
}

impl Step {
    /// SGD over the ratings `block` (in order), whose users are all in `users` and movies all
    /// in `movies`; returns the sum of squared errors.
    fn block(&self, block: &[Entry], users: &mut Side<'_>, movies: &mut Side<'_>) -> f64 {
        let (f, lr, reg) = (self.factors, self.lr, self.reg);
        let mut squared = 0.0;
        for (j, entry) in block.iter().enumerate() {
            if let Some(ahead) = block.get(j + PREFETCH_AHEAD) {
                let (u, i) = (
                    ahead.user as usize - users.first,
                    ahead.movie as usize - movies.first,
                );
                crate::linalg::prefetch(&users.factors[u * f..(u + 1) * f]);
                crate::linalg::prefetch(&movies.factors[i * f..(i + 1) * f]);
                crate::linalg::prefetch(&users.bias[u..=u]);
                crate::linalg::prefetch(&movies.bias[i..=i]);
            }
            let u = entry.user as usize - users.first;
            let i = entry.movie as usize - movies.first;
            let pu = &mut users.factors[u * f..(u + 1) * f];
            let qi = &mut movies.factors[i * f..(i + 1) * f];
            let dot: f64 = pu.iter().zip(qi.iter()).map(|(a, b)| a * b).sum();
            let err = f64::from(entry.rating) - (self.mu + users.bias[u] + movies.bias[i] + dot);
            squared += err * err;
            users.bias[u] += lr * (err - reg * users.bias[u]);
            movies.bias[i] += lr * (err - reg * movies.bias[i]);
            for (puk, qik) in pu.iter_mut().zip(qi.iter_mut()) {
                let (a, b) = (*puk, *qik);
                *puk = a + lr * (err * b - reg * a);
                *qik = b + lr * (err * a - reg * b);
            }
        }
        squared
    }
}

impl RatingModel for MatrixFactorization {
    const NAME: &'static str = "MatrixFactorization";

    /// μ for an unknown user or item.
    fn predict(&self, user: u32, movie: u32) -> f64 {
        match self.users.get(user) {
            Some(u) => {
                let f = self.config.factors;
                self.predict_with(self.user_bias[u], &self.p[u * f..(u + 1) * f], movie)
            }
            None => self.mu,
        }
    }

    /// The history's bias and factors are solved against the fixed item biases and factors.
    fn predict_history(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f64> {
        match self.fold_in(history) {
            Some((bias, factors)) => movies
                .iter()
                .map(|&m| self.predict_with(bias, &factors, m))
                .collect(),
            None => vec![self.mu; movies.len()],
        }
    }
}

impl MatrixFactorization {
    /// μ + b_u + b_i + p_u·q_i for a user with bias `bias` and factors `factors`; μ for an
    /// item unseen in training.
    fn predict_with(&self, bias: f64, factors: &[f64], movie: u32) -> f64 {
        let i = movie as usize;
        if !self.item_known.get(i).copied().unwrap_or(false) {
            return self.mu;
        }
        let f = self.config.factors;
        let dot: f64 = factors
            .iter()
            .zip(&self.q[i * f..(i + 1) * f])
            .map(|(a, b)| a * b)
            .sum();
        self.mu + bias + self.item_bias[i] + dot
    }

    /// The bias and factors of a new user that best explain `history` with the items held
    /// fixed: ridge regression of r − μ − b_i on [1, q_i], penalty `regularization` per rating
    /// (what SGD's per-step shrinkage amounts to). `None` without a rating of a known item.
    pub fn fold_in(&self, history: &[(u32, f32)]) -> Option<(f64, Vec<f64>)> {
        let f = self.config.factors;
        let p = f + 1;
        let mut a = vec![0f64; p * p];
        let mut b = vec![0f64; p];
        let mut n = 0usize;
        for &(m, r) in history {
            let i = m as usize;
            if !self.item_known.get(i).copied().unwrap_or(false) {
                continue;
            }
            n += 1;
            let target = f64::from(r) - self.mu - self.item_bias[i];
            let x = |k: usize| if k == 0 { 1.0 } else { self.q[i * f + k - 1] };
            for j in 0..p {
                b[j] += target * x(j);
                for k in 0..p {
                    a[j * p + k] += x(j) * x(k);
                }
            }
        }
        if n == 0 {
            return None;
        }
        let penalty = self.config.regularization * n as f64;
        for j in 0..p {
            a[j * p + j] += penalty;
        }
        let theta = solve_spd(&a, &b, p)?;
        Some((theta[0], theta[1..].to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train() -> Interactions {
        Interactions {
            user: vec![1, 1, 2, 2, 3],
            movie: vec![0, 1, 0, 2, 1],
            rating: vec![5.0, 1.0, 4.0, 2.0, 3.0],
        }
    }

    #[test]
    fn one_sgd_step_by_hand() {
        // With zero factors MF is bias SGD. One rating: err = r − μ = 0, nothing moves.
        let single = Interactions {
            user: vec![1],
            movie: vec![0],
            rating: vec![4.0],
        };
        let config = MfConfig {
            factors: 0,
            epochs: 1,
            ..MfConfig::default()
        };
        let model = MatrixFactorization::fit(&single, 1, config);
        assert_eq!(model.predict(1, 0), 4.0);
        let two = Interactions {
            user: vec![1, 2],
            movie: vec![0, 0],
            rating: vec![5.0, 3.0],
        };
        let model = MatrixFactorization::fit(&two, 1, config);
        // Two ratings, μ = 4, each step b += lr·(err − reg·b): replay both shuffle orders.
        let replay = |first: f64, second: f64| {
            let (mut bu1, mut bu2, mut bi) = (0.0, 0.0, 0.0);
            let step = |b: f64, err: f64| b + 0.01 * (err - 0.05 * b);
            let e1 = first - (4.0 + bu1 + bi);
            bu1 = step(bu1, e1);
            bi = step(bi, e1);
            let e2 = second - (4.0 + bu2 + bi);
            bu2 = step(bu2, e2);
            bi = step(bi, e2);
            (bu1, bu2, bi)
        };
        let got_user1 = model.predict(1, 0);
        let (a1, a2, ai) = replay(5.0, 3.0);
        let (b2, b1, bi) = replay(3.0, 5.0);
        let candidates = [
            (4.0 + a1 + ai, 4.0 + a2 + ai),
            (4.0 + b1 + bi, 4.0 + b2 + bi),
        ];
        assert!(
            candidates
                .iter()
                .any(|&(u1, u2)| (got_user1 - u1).abs() < 1e-12
                    && (model.predict(2, 0) - u2).abs() < 1e-12),
            "{got_user1} not in {candidates:?}"
        );
    }

    #[test]
    fn the_fit_does_not_depend_on_threads_and_halves_balance_ratings() {
        let n = 2_000;
        let train = Interactions {
            user: (0..n).map(|t| (t * 7 % 61) as u32).collect(),
            movie: (0..n).map(|t| (t * 13 % 47) as u32).collect(),
            rating: (0..n).map(|t| (t % 9) as f32 / 2.0 + 0.5).collect(),
        };
        let fit_on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            pool.install(|| MatrixFactorization::fit(&train, 47, MfConfig::default()))
        };
        assert_eq!(fit_on(1), fit_on(2));
        // Four movies rated 1, 1, 1, 3 times: the second half starts at the fourth.
        assert_eq!(halfway([0, 1, 2, 3, 3, 3].into_iter(), 4), 3);
        assert_eq!(halfway([0, 0, 1, 1].into_iter(), 2), 1);
    }

    #[test]
    fn learns_and_is_reproducible() {
        let config = MfConfig {
            epochs: 30,
            learning_rate: 0.05,
            ..MfConfig::default()
        };
        let model = MatrixFactorization::fit(&train(), 4, config);
        let rmse = model.epoch_rmse();
        assert!(rmse[rmse.len() - 1] < rmse[0], "{rmse:?}");
        assert_eq!(MatrixFactorization::fit(&train(), 4, config), model);
        let other = MatrixFactorization::fit(&train(), 4, MfConfig { seed: 7, ..config });
        assert_ne!(other.predict(1, 2), model.predict(1, 2));
        // unknown user, never-rated item → μ
        assert_eq!(model.predict(9, 0), 3.0);
        assert_eq!(model.predict(1, 3), 3.0);
    }
}
