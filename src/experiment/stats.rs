//! The statistics of an experiment report (statrs for the normal and binomial distributions).

use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, Normal, StudentsT};

/// z of a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval (95 %) of `successes` out of `n`; (0, 0) when n is 0. Unlike the
/// normal interval it stays inside [0, 1] and behaves at rates near 0, as click-through is.
pub fn wilson_interval(successes: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let (n, p) = (n as f64, successes as f64 / n as f64);
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 * ((p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt()) / (1.0 + z2 / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The two-sided p-value of a standard normal statistic `z`.
pub fn normal_two_sided_p(z: f64) -> f64 {
    match Normal::new(0.0, 1.0) {
        Ok(normal) => (2.0 * (1.0 - normal.cdf(z.abs()))).clamp(0.0, 1.0),
        Err(_) => 1.0,
    }
}

/// The two-sided p-value of the difference between two proportions (pooled z-test); 1 when
/// either side is empty or nothing (or everything) succeeded.
pub fn two_proportion_p(s1: u64, n1: u64, s2: u64, n2: u64) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let pooled = (s1 + s2) as f64 / (n1f + n2f);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    if se == 0.0 {
        return 1.0;
    }
    normal_two_sided_p((s1 as f64 / n1f - s2 as f64 / n2f) / se)
}

/// Welch's two-sided t-test of the means of `a` and `b` (unequal variances; Student's t with
/// the Welch–Satterthwaite degrees of freedom); 1 when either has fewer than two values or
/// both are constant.
pub fn welch_p(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < 2 || b.len() < 2 {
        return 1.0;
    }
    let moments = |x: &[f64]| {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (n, mean, var)
    };
    let ((na, ma, va), (nb, mb, vb)) = (moments(a), moments(b));
    let (sa, sb) = (va / na, vb / nb);
    let se = (sa + sb).sqrt();
    if se == 0.0 {
        return if ma == mb { 1.0 } else { 0.0 };
    }
    let t = (ma - mb) / se;
    let df = (sa + sb).powi(2) / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0));
    match StudentsT::new(0.0, 1.0, df) {
        Ok(student) => (2.0 * (1.0 - student.cdf(t.abs()))).clamp(0.0, 1.0),
        Err(_) => 1.0,
    }
}

/// The exact two-sided sign test of `wins` against `losses` (ties left out): twice the
/// binomial(wins + losses, ½) tail of the smaller count, at most 1.
pub fn sign_test_p(wins: u64, losses: u64) -> f64 {
    let n = wins + losses;
    if n == 0 {
        return 1.0;
    }
    match Binomial::new(0.5, n) {
        Ok(binomial) => (2.0 * binomial.cdf(wins.min(losses))).min(1.0),
        Err(_) => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn agree_with_values_computed_by_hand() {
        // Wilson, 50 of 100: 0.5 ± 1.96·√(0.25/100 + 1.96²/40000) / (1 + 1.96²/100).
        let (lo, hi) = wilson_interval(50, 100);
        assert!(
            close(lo, 0.4038, 1e-3) && close(hi, 0.5962, 1e-3),
            "{lo} {hi}"
        );
        let (lo, hi) = wilson_interval(0, 20);
        assert!(lo == 0.0 && close(hi, 0.1611, 1e-3), "{lo} {hi}");
        // 60/100 against 40/100: z = 0.2 / √(0.5·0.5·0.02) = 2.828, p = 0.00468.
        assert!(close(two_proportion_p(60, 100, 40, 100), 0.00468, 1e-4));
        assert_eq!(two_proportion_p(0, 100, 0, 100), 1.0);
        assert_eq!(two_proportion_p(3, 0, 1, 10), 1.0);
        // 15 wins, 5 losses: 2·P(X ≤ 5 | 20, ½) = 2·21700/1048576 = 0.04139.
        assert!(close(sign_test_p(15, 5), 0.041_389, 1e-5));
        assert_eq!(sign_test_p(4, 4), 1.0);
        assert_eq!(sign_test_p(0, 0), 1.0);
        assert!(close(normal_two_sided_p(1.959_964), 0.05, 1e-6));
        // Welch: means 2 and 4, variances 2.5 and 2.5, n 5 and 5: t = −2, df = 8, p = 0.0805.
        let p = welch_p(&[0.0, 1.0, 2.0, 3.0, 4.0], &[2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(close(p, 0.0805, 1e-3), "{p}");
        assert_eq!(welch_p(&[1.0], &[2.0, 3.0]), 1.0);
    }

    /// A/A tests: the same people in both arms. Over many seeded replays the share the
    /// report's test (Welch over lists) calls significant at 5 % must be near 5 %. Clicks
    /// cluster by person (each has a propensity), which is why the unit is the list: the
    /// impression-level z-test rejects far more often than 5 % on the same data.
    #[test]
    fn a_a_tests_are_significant_about_one_time_in_twenty() {
        let runs: u32 = 400;
        let (mut welch, mut naive) = (0, 0);
        for seed in 0..runs {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(u64::from(seed));
            let mut arms: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            for arm in &mut arms {
                for _ in 0..200 {
                    let propensity = 0.3 * rng.random::<f64>().powi(2);
                    let clicks = (0..10).filter(|_| rng.random::<f64>() < propensity).count();
                    arm.push(clicks as f64);
                }
            }
            if welch_p(&arms[0], &arms[1]) < 0.05 {
                welch += 1;
            }
            let total = |a: &[f64]| a.iter().sum::<f64>() as u64;
            if two_proportion_p(total(&arms[0]), 2000, total(&arms[1]), 2000) < 0.05 {
                naive += 1;
            }
        }
        let rate = f64::from(welch) / f64::from(runs);
        eprintln!(
            "A/A false-positive rate over {runs} runs: {rate:.3} by lists (Welch), {:.3} by \
             impressions (z-test)",
            f64::from(naive) / f64::from(runs)
        );
        assert!(
            (0.025..=0.075).contains(&rate),
            "false-positive rate {rate}"
        );
        assert!(
            naive > welch,
            "impression-level {naive} vs list-level {welch}"
        );
    }
}
