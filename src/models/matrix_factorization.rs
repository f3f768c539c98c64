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
        let dense_users: Vec<usize> = train
            .user
            .iter()
            .map(|&u| users.get(u).unwrap_or_default())
            .collect();
        for &m in &train.movie {
            item_known[m as usize] = true;
        }
        let mu = train.mean();
        let (lr, reg) = (config.learning_rate, config.regularization);
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut epoch_rmse = Vec::with_capacity(config.epochs);
        for epoch in 0..config.epochs {
            order.shuffle(&mut rng);
            let mut squared = 0.0;
            for &t in &order {
                let (u, i) = (dense_users[t], train.movie[t] as usize);
                let (pu, qi) = (u * f..(u + 1) * f, i * f..(i + 1) * f);
                let dot: f64 = p[pu.clone()]
                    .iter()
                    .zip(&q[qi.clone()])
                    .map(|(a, b)| a * b)
                    .sum();
                let err = f64::from(train.rating[t]) - (mu + user_bias[u] + item_bias[i] + dot);
                squared += err * err;
                user_bias[u] += lr * (err - reg * user_bias[u]);
                item_bias[i] += lr * (err - reg * item_bias[i]);
                for k in 0..f {
                    let (puk, qik) = (p[pu.start + k], q[qi.start + k]);
                    p[pu.start + k] = puk + lr * (err * qik - reg * puk);
                    q[qi.start + k] = qik + lr * (err * puk - reg * qik);
                }
            }
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
