//! L2-regularised logistic regression, solved to convergence by Newton's method.
//!
//! Minimises `½‖w‖² + C·Σ logloss(y_i, σ(w·x_i + b))` — sklearn's `LogisticRegression(C=…)`
//! objective, the intercept unpenalised. Stacks have a dozen features, so each Newton step
//! solves the (d+1)×(d+1) system exactly; a handful of steps reach machine precision.

use super::sigmoid;
use serde::{Deserialize, Serialize};

use super::solve_spd;

/// A fitted logistic regression over dense features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticRegression {
    /// Weights, one per feature (of the standardised features when `scale` is set).
    pub weights: Vec<f64>,
    /// Intercept.
    pub intercept: f64,
    /// Per-feature (mean, std) applied before the weights, when the model standardises.
    pub scale: Option<Vec<(f64, f64)>>,
    /// Newton steps taken.
    pub iterations: usize,
}

impl LogisticRegression {
    /// Fits on row-major `x` (`labels.len()` rows of `dim` features) with inverse penalty `c`;
    /// `standardize` rescales each feature to mean 0, std 1 first (stored with the model).
    pub fn fit(x: &[f64], labels: &[bool], dim: usize, c: f64, standardize: bool) -> Self {
        let n = labels.len();
        let scale = standardize.then(|| {
            (0..dim)
                .map(|j| {
                    let mean = (0..n).map(|i| x[i * dim + j]).sum::<f64>() / n.max(1) as f64;
                    let var = (0..n).map(|i| (x[i * dim + j] - mean).powi(2)).sum::<f64>()
                        / n.max(1) as f64;
                    (mean, if var > 0.0 { var.sqrt() } else { 1.0 })
                })
                .collect::<Vec<_>>()
        });
        let row = |i: usize| -> Vec<f64> {
            let raw = &x[i * dim..(i + 1) * dim];
            match &scale {
                Some(s) => raw.iter().zip(s).map(|(v, (m, sd))| (v - m) / sd).collect(),
                None => raw.to_vec(),
            }
        };
        let rows: Vec<Vec<f64>> = (0..n).map(row).collect();
        let p = dim + 1; // weights, then the intercept
        let mut theta = vec![0f64; p];
        let mut iterations = 0;
        for _ in 0..100 {
            iterations += 1;
            let mut gradient = vec![0f64; p];
            let mut hessian = vec![0f64; p * p];
            for (features, &label) in rows.iter().zip(labels) {
                let z = theta[dim] + features.iter().zip(&theta).map(|(a, b)| a * b).sum::<f64>();
                let prob = sigmoid(z);
                let residual = c * (prob - if label { 1.0 } else { 0.0 });
                let weight = c * prob * (1.0 - prob);
                let value = |j: usize| if j == dim { 1.0 } else { features[j] };
                for j in 0..p {
                    gradient[j] += residual * value(j);
                    for k in 0..=j {
                        hessian[j * p + k] += weight * value(j) * value(k);
                    }
                }
            }
            for j in 0..dim {
                gradient[j] += theta[j];
                hessian[j * p + j] += 1.0;
            }
            for j in 0..p {
                for k in 0..j {
                    hessian[k * p + j] = hessian[j * p + k];
                }
            }
            // A tiny ridge on the intercept keeps the system solvable on separable data.
            hessian[dim * p + dim] += 1e-12;
            let Some(step) = solve_spd(&hessian, &gradient, p) else {
                break;
            };
            let size = step.iter().map(|s| s * s).sum::<f64>().sqrt();
            for (t, s) in theta.iter_mut().zip(&step) {
                *t -= s;
            }
            if size < 1e-10 {
                break;
            }
        }
        LogisticRegression {
            intercept: theta[dim],
            weights: theta[..dim].to_vec(),
            scale,
            iterations,
        }
    }

    /// The linear score `w·x + b` of one raw feature row (standardised first if fitted so).
    pub fn decision(&self, features: &[f64]) -> f64 {
        self.intercept + self.contributions(features).iter().sum::<f64>()
    }

    /// Each feature's term `w_j·x_j` of the decision (of the standardised value when fitted
    /// so): with the intercept they add up to [`LogisticRegression::decision`].
    pub fn contributions(&self, features: &[f64]) -> Vec<f64> {
        let standardized = |j: usize, v: f64| match &self.scale {
            Some(s) => (v - s[j].0) / s[j].1,
            None => v,
        };
        features
            .iter()
            .enumerate()
            .map(|(j, &v)| self.weights[j] * standardized(j, v))
            .collect()
    }

    /// The probability of the positive class for one raw feature row.
    pub fn probability(&self, features: &[f64]) -> f64 {
        sigmoid(self.decision(features))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_symmetric_problem_with_a_known_optimum() {
        // x = +1 (label 1), x = −1 (label 0): by symmetry b = 0 and the optimum solves
        // w = 2C·σ(−w). Find it by bisection, independently of Newton.
        let c = 1.0;
        let (mut low, mut high) = (0.0f64, 10.0f64);
        for _ in 0..200 {
            let mid = (low + high) / 2.0;
            if mid - 2.0 * c * sigmoid(-mid) < 0.0 {
                low = mid;
            } else {
                high = mid;
            }
        }
        let model = LogisticRegression::fit(&[1.0, -1.0], &[true, false], 1, c, false);
        assert!(
            (model.weights[0] - low).abs() < 1e-9,
            "{} vs {low}",
            model.weights[0]
        );
        assert!(model.intercept.abs() < 1e-9);
        assert!(model.iterations < 20);
    }

    #[test]
    fn gradient_vanishes_at_the_solution() {
        let x = [
            0.5, 1.0, -1.5, 2.0, 0.3, -0.7, 1.1, 0.0, -2.0, 0.4, 0.9, -0.1,
        ];
        let labels = [true, false, true, false, true, false];
        let model = LogisticRegression::fit(&x, &labels, 2, 0.5, false);
        let mut gradient = [model.weights[0], model.weights[1], 0.0];
        for (i, &label) in labels.iter().enumerate() {
            let row = &x[i * 2..i * 2 + 2];
            let residual = 0.5 * (model.probability(row) - if label { 1.0 } else { 0.0 });
            gradient[0] += residual * row[0];
            gradient[1] += residual * row[1];
            gradient[2] += residual;
        }
        assert!(gradient.iter().all(|g| g.abs() < 1e-9), "{gradient:?}");
    }

    #[test]
    fn standardising_changes_weights_not_separation() {
        let x = [100.0, 1.0, 200.0, 0.0, 300.0, 1.0, 400.0, 0.0];
        let labels = [false, false, true, true];
        let raw = LogisticRegression::fit(&x, &labels, 2, 1.0, false);
        let scaled = LogisticRegression::fit(&x, &labels, 2, 1.0, true);
        assert!(scaled.scale.is_some() && raw.scale.is_none());
        for model in [&raw, &scaled] {
            assert!(model.probability(&x[6..8]) > model.probability(&x[0..2]));
        }
    }
}
