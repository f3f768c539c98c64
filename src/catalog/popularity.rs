//! Popularity: per-movie rating statistics and the IMDB weighted rating
//! `WR = v/(v+m)·R + m/(v+m)·C`.

use serde::{Deserialize, Serialize};

use super::RatingStats;

/// The constants of the weighted rating.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PopularityParams {
    /// m: the 90th percentile of the rating counts of rated movies (linear interpolation).
    pub m: f64,
    /// C: the mean of the mean ratings of rated movies.
    pub c: f64,
}

/// The IMDB weighted rating of a movie with `count` ratings averaging `mean`.
pub fn weighted_rating(count: f64, mean: f64, params: PopularityParams) -> f64 {
    if count <= 0.0 {
        return params.c;
    }
    count / (count + params.m) * mean + params.m / (count + params.m) * params.c
}

/// m and C over the rated movies (pandas' `quantile(0.9)` and `mean()` semantics). With no
/// rating at all, m = 0 and C = 0.
pub fn popularity_params(stats: &[RatingStats]) -> PopularityParams {
    let rated: Vec<&RatingStats> = stats.iter().filter(|s| s.count > 0).collect();
    if rated.is_empty() {
        return PopularityParams { m: 0.0, c: 0.0 };
    }
    let mut counts: Vec<f64> = rated.iter().map(|s| f64::from(s.count)).collect();
    counts.sort_by(f64::total_cmp);
    let c = rated.iter().map(|s| s.mean).sum::<f64>() / rated.len() as f64;
    PopularityParams {
        m: quantile(&counts, 0.9),
        c,
    }
}

/// The q-quantile of sorted values with linear interpolation (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = q * (sorted.len() - 1) as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_like_numpy() {
        // numpy.quantile([1, 2, 3, 4, 10], 0.9) == 7.6
        assert!((quantile(&[1.0, 2.0, 3.0, 4.0, 10.0], 0.9) - 7.6).abs() < 1e-12);
        assert_eq!(quantile(&[5.0], 0.9), 5.0);
    }

    #[test]
    fn weighted_rating_by_hand() {
        let params = PopularityParams { m: 10.0, c: 3.0 };
        // 30 ratings averaging 4.5: 30/40·4.5 + 10/40·3 = 3.375 + 0.75
        assert!((weighted_rating(30.0, 4.5, params) - 4.125).abs() < 1e-12);
        assert_eq!(weighted_rating(0.0, 0.0, params), 3.0);
    }

    #[test]
    fn stats_and_params_from_ratings() {
        let stats = crate::catalog::movie_stats(&[0, 0, 1, 0], &[4.0, 5.0, 2.0, 3.0], 3);
        assert_eq!(stats[0].count, 3);
        assert!((stats[0].mean - 4.0).abs() < 1e-12);
        assert_eq!(stats[2].count, 0);
        let params = popularity_params(&stats);
        // rated counts [1, 3] → 0.9-quantile 1 + 0.9·2 = 2.8; C = (4 + 2) / 2
        assert!((params.m - 2.8).abs() < 1e-12);
        assert!((params.c - 3.0).abs() < 1e-12);
    }
}
