//! iALS (Hu, Koren & Volinsky 2008), in the formulation and tuning of Rendle et al. 2021
//! ("Revisiting the Performance of iALS on Item Recommendation Benchmarks"): user and item
//! factors minimising
//!
//! ```text
//! Σ_{(u,i) rated} (w_u·h_i − 1)²  +  α₀ Σ_u Σ_i (w_u·h_i)²
//!   + λ Σ_u (|I_u| + α₀|I|)^ν ‖w_u‖²  +  λ Σ_i (|U_i| + α₀|U|)^ν ‖h_i‖²
//! ```
//!
//! over who rated what (every rating is an interaction). Alternating least squares: each
//! side's rows are independent given the other side, and the unobserved term is the same
//! Gramian `G = Σ h hᵀ` for every row, so one user costs `O(|I_u|·d + d²)` per
//! conjugate-gradient step (Takács et al. 2011: a few warm-started steps per sweep, instead
//! of a `d³` factorisation per row). Rows are solved in parallel on rayon's pool.
//!
//! A person who is not a training user is folded in: their factors solve the same user
//! equation against the fixed item factors, run to convergence.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::matrix_factorization::standard_normal;
use super::{Interactions, Scorer, UserIndex};
use crate::ann::top_by;
use crate::linalg::dot;

/// The settings of [`Ials::fit`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IalsConfig {
    /// Factors per user and item.
    pub dim: usize,
    /// Alternating sweeps (users, then items).
    pub epochs: usize,
    /// α₀, the weight of every unobserved pair.
    pub unobserved_weight: f32,
    /// λ, the L2 weight.
    pub regularization: f32,
    /// ν, how strongly λ scales with a row's number of interactions (0: not at all).
    pub frequency_scaling: f32,
    /// Conjugate-gradient steps per row and sweep (warm-started from the previous sweep).
    pub cg_steps: usize,
    /// Standard deviation of the initial factors, times 1/√dim.
    pub init_std: f32,
    /// Seed of the initial factors.
    pub seed: u64,
}

impl Default for IalsConfig {
    /// Chosen on the full-catalogue protocol of split seed 1 (`examples/tune_ials.rs`; README,
    /// Evaluation). 96 or 128 factors scored a little higher alone and on seed 1, but the
    /// two-stage pipeline was level over seeds 42, 7 and 2024 at two to four times the cost.
    fn default() -> Self {
        IalsConfig {
            dim: 64,
            epochs: 8,
            unobserved_weight: 0.3,
            regularization: 0.01,
            frequency_scaling: 1.0,
            cg_steps: 4,
            init_std: 0.1,
            seed: 42,
        }
    }
}

/// Fitted iALS factors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ials {
    config: IalsConfig,
    users: UserIndex,
    /// Row-major users × dim.
    user_factors: Vec<f32>,
    /// Row-major catalogue positions × dim (zero for a movie nobody rated).
    item_factors: Vec<f32>,
    /// `Σ_i h_i h_iᵀ` of the final item factors (row-major dim × dim), for folding in.
    item_gramian: Vec<f32>,
}

impl IalsConfig {
    /// The L2 weight of a row with `count` interactions when the other side has `others`
    /// rows: `λ·(count + α₀·others)^ν`. One formula for the users, the items and fold-in.
    fn row_regularization(&self, count: usize, others: usize) -> f32 {
        self.regularization
            * (count as f32 + self.unobserved_weight * others as f32).powf(self.frequency_scaling)
    }
}

/// Sparse rows: for each row, the columns it interacted with.
struct Adjacency {
    offsets: Vec<usize>,
    columns: Vec<u32>,
}

impl Adjacency {
    fn new(rows: usize, pairs: impl Iterator<Item = (usize, u32)> + Clone) -> Adjacency {
        let mut offsets = vec![0usize; rows + 1];
        for (r, _) in pairs.clone() {
            offsets[r + 1] += 1;
        }
        for r in 0..rows {
            offsets[r + 1] += offsets[r];
        }
        let mut next = offsets.clone();
        let mut columns = vec![0u32; offsets[rows]];
        for (r, c) in pairs {
            columns[next[r]] = c;
            next[r] += 1;
        }
        Adjacency { offsets, columns }
    }

    fn row(&self, r: usize) -> &[u32] {
        &self.columns[self.offsets[r]..self.offsets[r + 1]]
    }
}

/// `Σ_r x_r x_rᵀ` over the rows of a row-major `[n, dim]` matrix.
fn gramian(x: &[f32], dim: usize) -> Vec<f32> {
    // Partial sums per block, added in block order: the same factors give the same bits
    // whatever rayon's scheduling.
    let partials: Vec<Vec<f64>> = x
        .par_chunks(dim * 1024)
        .map(|block| {
            let mut g = vec![0f64; dim * dim];
            for row in block.chunks_exact(dim) {
                for (a, &ra) in row.iter().enumerate() {
                    if ra == 0.0 {
                        continue;
                    }
                    let ga = &mut g[a * dim..(a + 1) * dim];
                    for (gab, &rb) in ga.iter_mut().zip(row) {
                        *gab += f64::from(ra * rb);
                    }
                }
            }
            g
        })
        .collect();
    let mut total = vec![0f64; dim * dim];
    for partial in partials {
        total.iter_mut().zip(&partial).for_each(|(t, p)| *t += p);
    }
    total.into_iter().map(|v| v as f32).collect()
}

/// One row's normal equations `A x = b` with `A = Σ_{c ∈ observed} y_c y_cᵀ + α₀ G + reg·I`
/// and `b = Σ_{c ∈ observed} y_c`, where `y_c` are rows of `other`.
struct RowSystem<'a> {
    observed: &'a [u32],
    other: &'a [f32],
    gramian: &'a [f32],
    unobserved_weight: f32,
    reg: f32,
    dim: usize,
}

impl RowSystem<'_> {
    fn other_row(&self, c: u32) -> &[f32] {
        let c = c as usize;
        &self.other[c * self.dim..(c + 1) * self.dim]
    }

    /// `out = A v`.
    fn apply(&self, v: &[f32], out: &mut [f32]) {
        for (a, o) in out.iter_mut().enumerate() {
            let g = &self.gramian[a * self.dim..(a + 1) * self.dim];
            *o = self.unobserved_weight * dot(g, v) + self.reg * v[a];
        }
        for (k, &c) in self.observed.iter().enumerate() {
            if let Some(&ahead) = self.observed.get(k + PREFETCH_AHEAD) {
                crate::linalg::prefetch(self.other_row(ahead));
            }
            let y = self.other_row(c);
            let yv = dot(y, v);
            out.iter_mut().zip(y).for_each(|(o, &yi)| *o += yv * yi);
        }
    }

    /// Improves `x` by at most `steps` conjugate-gradient steps, stopping early once the
    /// residual is [`RESIDUAL_TOLERANCE`] of `b`'s norm.
    fn solve(&self, x: &mut [f32], steps: usize) {
        let d = self.dim;
        let mut b = vec![0f32; d];
        for (k, &c) in self.observed.iter().enumerate() {
            if let Some(&ahead) = self.observed.get(k + PREFETCH_AHEAD) {
                crate::linalg::prefetch(self.other_row(ahead));
            }
            b.iter_mut()
                .zip(self.other_row(c))
                .for_each(|(bi, &yi)| *bi += yi);
        }
        let mut r = vec![0f32; d];
        self.apply(x, &mut r);
        r.iter_mut().zip(&b).for_each(|(ri, &bi)| *ri = bi - *ri);
        let mut p = r.clone();
        let mut rs = dot(&r, &r);
        let converged = (RESIDUAL_TOLERANCE * RESIDUAL_TOLERANCE * dot(&b, &b)).max(1e-30);
        let mut ap = vec![0f32; d];
        for _ in 0..steps {
            if rs <= converged {
                break;
            }
            self.apply(&p, &mut ap);
            let pap = dot(&p, &ap);
            if pap <= 0.0 {
                break;
            }
            let alpha = rs / pap;
            x.iter_mut().zip(&p).for_each(|(xi, &pi)| *xi += alpha * pi);
            r.iter_mut().zip(&ap).for_each(|(ri, &a)| *ri -= alpha * a);
            let next = dot(&r, &r);
            let beta = next / rs;
            p.iter_mut()
                .zip(&r)
                .for_each(|(pi, &ri)| *pi = ri + beta * *pi);
            rs = next;
        }
    }
}

/// How many observed rows ahead of the current one a pass over a row's system asks for the
/// row it will read: the rows of a popular movie's or an active user's system lie scattered over
/// tens of megabytes, and each step of the solver reads them all again.
const PREFETCH_AHEAD: usize = 8;

/// The residual, relative to the right-hand side, at which a row's system counts as solved:
/// a few times single precision's resolution. Running the last, exact user sweep to `dim + 8`
/// steps regardless was half of a fit's arithmetic, though most rows converge in a fraction.
const RESIDUAL_TOLERANCE: f32 = 1e-6;

/// Steps that solve a row's system to convergence (CG is exact after `dim` steps in exact
/// arithmetic; a few more absorb rounding).
fn exact_steps(dim: usize) -> usize {
    dim + 8
}

impl Ials {
    /// Fits on `train` over `n_movies` catalogue positions.
    pub fn fit(train: &Interactions, n_movies: usize, config: IalsConfig) -> Ials {
        Ials::fit_tracking_loss(train, n_movies, config, false).0
    }

    /// [`Ials::fit`], and with `track` the loss after each sweep (an extra pass over every
    /// interaction a sweep, so only where it is looked at).
    pub fn fit_tracking_loss(
        train: &Interactions,
        n_movies: usize,
        config: IalsConfig,
        track: bool,
    ) -> (Ials, Vec<f64>) {
        let d = config.dim;
        let users = UserIndex::new(&train.user);
        let n_users = users.len();
        let mut pairs: Vec<(u32, u32)> = train
            .user
            .iter()
            .zip(&train.movie)
            .filter_map(|(&u, &m)| {
                let user = users.get(u)? as u32;
                ((m as usize) < n_movies).then_some((user, m))
            })
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let by_user = Adjacency::new(n_users, pairs.iter().map(|&(u, m)| (u as usize, m)));
        let by_item = Adjacency::new(n_movies, pairs.iter().map(|&(u, m)| (m as usize, u)));

        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let scale = config.init_std / (d as f32).sqrt();
        let mut user_factors: Vec<f32> = (0..n_users * d)
            .map(|_| scale * standard_normal(&mut rng) as f32)
            .collect();
        let mut item_factors: Vec<f32> = (0..n_movies * d)
            .map(|_| scale * standard_normal(&mut rng) as f32)
            .collect();
        // A movie nobody rated has no signal: its factors stay zero, so it scores 0.
        for m in 0..n_movies {
            if by_item.row(m).is_empty() {
                item_factors[m * d..(m + 1) * d].fill(0.0);
            }
        }

        let user_reg = |count: usize| config.row_regularization(count, n_movies);
        let item_reg = |count: usize| config.row_regularization(count, n_users);
        let mut losses = Vec::new();
        for _ in 0..config.epochs {
            let g = gramian(&item_factors, d);
            sweep(
                &mut user_factors,
                &by_user,
                &item_factors,
                &g,
                &config,
                &user_reg,
                config.cg_steps,
            );
            let g = gramian(&user_factors, d);
            sweep(
                &mut item_factors,
                &by_item,
                &user_factors,
                &g,
                &config,
                &item_reg,
                config.cg_steps,
            );
            if track {
                losses.push(loss(
                    &user_factors,
                    &item_factors,
                    &by_user,
                    &by_item,
                    &config,
                    &user_reg,
                    &item_reg,
                ));
            }
        }
        // A last, exact user sweep: the training users' factors are then exactly what folding
        // in their history gives.
        let item_gramian = gramian(&item_factors, d);
        sweep(
            &mut user_factors,
            &by_user,
            &item_factors,
            &item_gramian,
            &config,
            &user_reg,
            exact_steps(d),
        );
        let model = Ials {
            config,
            users,
            user_factors,
            item_factors,
            item_gramian,
        };
        (model, losses)
    }

    /// The factors of a training user.
    fn user_row(&self, user: u32) -> Option<&[f32]> {
        let d = self.config.dim;
        self.users
            .get(user)
            .map(|u| &self.user_factors[u * d..(u + 1) * d])
    }

    /// The factors of a person known by `history` ((catalogue position, rating)): their user
    /// equation solved against the fixed item factors.
    pub fn fold_in(&self, history: &[(u32, f32)]) -> Vec<f32> {
        let d = self.config.dim;
        let n_movies = self.item_factors.len() / d.max(1);
        let mut observed: Vec<u32> = history
            .iter()
            .map(|&(m, _)| m)
            .filter(|&m| (m as usize) < n_movies)
            .collect();
        observed.sort_unstable();
        observed.dedup();
        let reg = self.config.row_regularization(observed.len(), n_movies);
        let system = RowSystem {
            observed: &observed,
            other: &self.item_factors,
            gramian: &self.item_gramian,
            unobserved_weight: self.config.unobserved_weight,
            reg,
            dim: d,
        };
        let mut x = vec![0f32; d];
        if !observed.is_empty() {
            system.solve(&mut x, exact_steps(d));
        }
        x
    }

    /// Every catalogue position's score for user factors `w`.
    fn all_scores(&self, w: &[f32]) -> Vec<f32> {
        crate::linalg::matvec(&self.item_factors, w)
    }

    /// The scores of a person over the whole catalogue: a training user's own factors, any
    /// other history folded in.
    pub fn scores_for(&self, user: Option<u32>, history: &[(u32, f32)]) -> Vec<f32> {
        match user.and_then(|u| self.user_row(u)) {
            Some(w) => self.all_scores(w),
            None => self.all_scores(&self.fold_in(history)),
        }
    }

    /// The `n` movies with the highest score among those `keep` lets through (best first;
    /// ties to the lower position): a candidate source. `user` is a training user's id, if
    /// the person is one.
    pub fn top_for(
        &self,
        user: Option<u32>,
        history: &[(u32, f32)],
        n: usize,
        keep: &dyn Fn(u32) -> bool,
    ) -> Vec<u32> {
        if history.is_empty() {
            return Vec::new();
        }
        let scored: Vec<(u32, f32)> = self
            .scores_for(user, history)
            .into_iter()
            .enumerate()
            .map(|(m, s)| (m as u32, s))
            .filter(|&(m, _)| keep(m))
            .collect();
        top_by(scored, n, |&(m, s)| (f64::from(s), m as usize))
            .into_iter()
            .map(|(m, _)| m)
            .collect()
    }

    fn item_row(&self, movie: u32) -> Option<&[f32]> {
        let d = self.config.dim;
        let m = movie as usize;
        self.item_factors.get(m * d..(m + 1) * d)
    }
}

/// One ALS half-sweep: every row of `rows` re-solved against `other` in parallel.
fn sweep(
    rows: &mut [f32],
    adjacency: &Adjacency,
    other: &[f32],
    gramian: &[f32],
    config: &IalsConfig,
    reg: &(dyn Fn(usize) -> f32 + Sync),
    steps: usize,
) {
    let d = config.dim;
    rows.par_chunks_mut(d).enumerate().for_each(|(r, x)| {
        let observed = adjacency.row(r);
        if observed.is_empty() {
            return;
        }
        RowSystem {
            observed,
            other,
            gramian,
            unobserved_weight: config.unobserved_weight,
            reg: reg(observed.len()),
            dim: d,
        }
        .solve(x, steps);
    });
}

/// The objective of the module documentation, computed with the Gramian trick:
/// `Σ_u Σ_i (w_u·h_i)² = ⟨W_G, H_G⟩` (Frobenius product of the two Gramians).
fn loss(
    user_factors: &[f32],
    item_factors: &[f32],
    by_user: &Adjacency,
    by_item: &Adjacency,
    config: &IalsConfig,
    user_reg: &dyn Fn(usize) -> f32,
    item_reg: &dyn Fn(usize) -> f32,
) -> f64 {
    let d = config.dim;
    let mut total = 0f64;
    for (u, w) in user_factors.chunks_exact(d).enumerate() {
        let observed = by_user.row(u);
        for &m in observed {
            let h = &item_factors[m as usize * d..(m as usize + 1) * d];
            total += f64::from(dot(w, h) - 1.0).powi(2);
        }
        total += f64::from(user_reg(observed.len())) * f64::from(dot(w, w));
    }
    for (m, h) in item_factors.chunks_exact(d).enumerate() {
        total += f64::from(item_reg(by_item.row(m).len())) * f64::from(dot(h, h));
    }
    let gw = gramian(user_factors, d);
    let gh = gramian(item_factors, d);
    total + f64::from(config.unobserved_weight) * f64::from(dot(&gw, &gh))
}

impl Scorer for Ials {
    fn name(&self) -> &'static str {
        "IALS"
    }

    fn score_one(&self, user: u32, movie: u32) -> f32 {
        match (self.user_row(user), self.item_row(movie)) {
            (Some(w), Some(h)) => dot(w, h),
            _ => 0.0,
        }
    }

    fn score_history(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f32> {
        let w = self.fold_in(history);
        movies
            .iter()
            .map(|&m| self.item_row(m).map_or(0.0, |h| dot(&w, h)))
            .collect()
    }

    fn predicts_ratings(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two taste groups: users 0–3 watch movies 0–2, users 4–7 watch movies 3–5; movie 6 is
    /// unrated.
    fn train() -> Interactions {
        let mut triples = Vec::new();
        for u in 0..8u32 {
            let movies = if u < 4 { 0..3 } else { 3..6 };
            for m in movies {
                // Each user skips one movie of their group, so there is something to predict.
                if m % 3 != u % 3 {
                    triples.push((u, m, 4.0));
                }
            }
        }
        Interactions::of(&triples)
    }

    fn config() -> IalsConfig {
        IalsConfig {
            dim: 4,
            epochs: 8,
            unobserved_weight: 0.1,
            regularization: 0.01,
            frequency_scaling: 1.0,
            cg_steps: 3,
            init_std: 0.1,
            seed: 7,
        }
    }

    #[test]
    fn loss_decreases_and_matches_the_definition() {
        let train = train();
        let (model, losses) = Ials::fit_tracking_loss(&train, 7, config(), true);
        assert_eq!(losses.len(), 8);
        assert_eq!(
            model,
            Ials::fit(&train, 7, config()),
            "tracking changes nothing"
        );
        for pair in losses.windows(2) {
            assert!(pair[1] <= pair[0] * (1.0 + 1e-5), "{losses:?}");
        }
        // The loss of the returned factors by brute force over every (user, movie) pair,
        // against the Gramian formula the fit reports.
        let c = config();
        let d = c.dim;
        let rated = |u: u32, m: u32| train.user.iter().zip(&train.movie).any(|p| p == (&u, &m));
        let mut brute = 0f64;
        for u in 0..8u32 {
            let w = model.user_row(u).unwrap_or(&[]);
            let count = (0..7).filter(|&m| rated(u, m)).count() as f32;
            brute += f64::from(c.regularization * (count + c.unobserved_weight * 7.0) * dot(w, w));
            for m in 0..7u32 {
                let h = &model.item_factors[m as usize * d..(m as usize + 1) * d];
                let y = f64::from(dot(w, h));
                brute += if rated(u, m) { (y - 1.0).powi(2) } else { 0.0 };
                brute += f64::from(c.unobserved_weight) * y * y;
            }
        }
        for m in 0..7u32 {
            let h = &model.item_factors[m as usize * d..(m as usize + 1) * d];
            let count = (0..8).filter(|&u| rated(u, m)).count() as f32;
            brute += f64::from(c.regularization * (count + c.unobserved_weight * 8.0) * dot(h, h));
        }
        let users: Vec<usize> = (0..8).map(|u| model.users.get(u).unwrap_or(0)).collect();
        assert_eq!(users, (0..8).collect::<Vec<_>>());
        let by_user = Adjacency::new(
            8,
            train
                .user
                .iter()
                .zip(&train.movie)
                .map(|(&u, &m)| (u as usize, m)),
        );
        let by_item = Adjacency::new(
            7,
            train
                .user
                .iter()
                .zip(&train.movie)
                .map(|(&u, &m)| (m as usize, u)),
        );
        let formula = loss(
            &model.user_factors,
            &model.item_factors,
            &by_user,
            &by_item,
            &c,
            &|n| c.regularization * (n as f32 + c.unobserved_weight * 7.0),
            &|n| c.regularization * (n as f32 + c.unobserved_weight * 8.0),
        );
        assert!(
            (brute - formula).abs() < 1e-4 * brute.max(1.0),
            "{brute} vs {formula}"
        );
        assert!(formula <= losses[losses.len() - 1] * (1.0 + 1e-5));
    }

    #[test]
    fn user_factors_solve_their_normal_equations() {
        let train = train();
        let model = Ials::fit(&train, 7, config());
        let c = config();
        let d = c.dim;
        // The gradient of the loss in w_u, by its definition over every movie, vanishes.
        for u in 0..8u32 {
            let w = model.user_row(u).unwrap_or(&[]).to_vec();
            let rated: Vec<u32> = (0..7)
                .filter(|&m| train.user.iter().zip(&train.movie).any(|p| p == (&u, &m)))
                .collect();
            let reg = c.regularization * (rated.len() as f32 + c.unobserved_weight * 7.0);
            let mut gradient: Vec<f64> = w.iter().map(|&x| f64::from(reg * x)).collect();
            for m in 0..7u32 {
                let h = &model.item_factors[m as usize * d..(m as usize + 1) * d];
                let y = dot(&w, h);
                let coefficient =
                    c.unobserved_weight * y + if rated.contains(&m) { y - 1.0 } else { 0.0 };
                for (g, &hk) in gradient.iter_mut().zip(h) {
                    *g += f64::from(coefficient * hk);
                }
            }
            let norm = gradient.iter().map(|g| g * g).sum::<f64>().sqrt();
            assert!(norm < 1e-4, "user {u}: gradient {norm}");
        }
    }

    #[test]
    fn folding_in_reproduces_a_user_and_ranks_their_group_first() {
        let train = train();
        let model = Ials::fit(&train, 7, config());
        // User 0 rated 1 and 2; folding in the same history gives the same scores.
        let history = [(1, 4.0), (2, 4.0)];
        let movies: Vec<u32> = (0..7).collect();
        let trained = model.score(&[0; 7], &movies);
        let folded = model.score_history(&history, &movies);
        for (a, b) in trained.iter().zip(&folded) {
            assert!((a - b).abs() < 1e-4, "{trained:?} vs {folded:?}");
        }
        // The skipped movie of the group outranks every movie of the other group.
        assert!((3..6).all(|m| folded[0] > folded[m]), "{folded:?}");
        assert_eq!(folded[6], 0.0, "an unrated movie scores 0");
        let top = model.top_for(None, &history, 2, &|m| m != 1 && m != 2);
        assert_eq!(top[0], 0);
        assert!(model.top_for(None, &[], 2, &|_| true).is_empty());
        // Unknown users score 0; the same seed gives the same factors.
        assert_eq!(model.score_one(99, 0), 0.0);
        assert_eq!(Ials::fit(&train, 7, config()), model);
    }
}
