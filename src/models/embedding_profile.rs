//! EmbeddingProfile: the cosine between a movie's document embedding and the mean embedding of
//! the movies the user liked — GenreContent's idea over MiniLM vectors instead of genres.

use std::collections::HashMap;

use super::{Interactions, Scorer};
use crate::index::{dot, FlatIndex};

/// Unit-length taste vectors of users, over the index's movie vectors.
#[derive(Debug, Clone)]
pub struct EmbeddingProfile<'a> {
    vectors: &'a FlatIndex,
    profiles: HashMap<u32, Vec<f32>>,
}

impl<'a> EmbeddingProfile<'a> {
    /// Profiles of `train`'s users: the normalised mean vector of the movies rated ≥
    /// `threshold`. `vectors` holds one row per catalogue position.
    pub fn fit(train: &Interactions, vectors: &'a FlatIndex, threshold: f32) -> Self {
        let dim = vectors.dim();
        let mut sums: HashMap<u32, Vec<f32>> = HashMap::new();
        for ((&u, &m), &r) in train.user.iter().zip(&train.movie).zip(&train.rating) {
            if r < threshold || m as usize >= vectors.len() {
                continue;
            }
            let sum = sums.entry(u).or_insert_with(|| vec![0.0; dim]);
            for (s, v) in sum.iter_mut().zip(vectors.vector(m as usize)) {
                *s += v;
            }
        }
        let profiles = sums
            .into_iter()
            .filter_map(|(u, sum)| {
                let norm = dot(&sum, &sum).sqrt();
                (norm > 0.0).then(|| (u, sum.iter().map(|x| x / norm).collect()))
            })
            .collect();
        EmbeddingProfile { vectors, profiles }
    }
}

impl Scorer for EmbeddingProfile<'_> {
    fn name(&self) -> &'static str {
        "EmbeddingProfile"
    }

    /// 0 for a user without liked movies or a movie outside the index.
    fn score_one(&self, user: u32, movie: u32) -> f32 {
        match self.profiles.get(&user) {
            Some(profile) if (movie as usize) < self.vectors.len() => {
                dot(profile, self.vectors.vector(movie as usize))
            }
            _ => 0.0,
        }
    }

    fn predicts_ratings(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_with_the_liked_mean_by_hand() {
        // movies: e0, e1, (e0 + e1)/√2, e2
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let vectors = FlatIndex::new(
            vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, s, s, 0.0, 0.0, 0.0, 1.0],
            3,
        );
        let train = Interactions {
            user: vec![1, 1, 1, 2],
            movie: vec![0, 1, 3, 3],
            rating: vec![5.0, 4.0, 2.0, 1.0],
        };
        let model = EmbeddingProfile::fit(&train, &vectors, 4.0);
        // user 1 liked e0 and e1 → profile (e0 + e1)/√2
        assert!((model.score_one(1, 2) - 1.0).abs() < 1e-6);
        assert!((model.score_one(1, 0) - s).abs() < 1e-6);
        assert_eq!(model.score_one(1, 3), 0.0);
        // user 2 liked nothing; unknown user; movie outside the index
        assert_eq!(model.score_one(2, 0), 0.0);
        assert_eq!(model.score_one(9, 0), 0.0);
        assert_eq!(model.score_one(1, 99), 0.0);
    }
}
