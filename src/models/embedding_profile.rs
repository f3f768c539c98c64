//! EmbeddingProfile: the cosine between a movie's document embedding and the mean embedding of
//! the movies the user liked — GenreContent's idea over MiniLM vectors instead of genres.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Interactions, Scorer};
use crate::ann::FlatIndex;
use crate::linalg::dot;

/// Liked movies [`EmbeddingProfile::max_liked_similarity`] compares with (bounds the cost of
/// a long history).
pub const MAX_COMPARED_LIKES: usize = 500;

/// Unit-length taste vectors of users, over the index's movie vectors.
///
/// The vectors are not serialised with the profiles: a loaded model gets them back from its
/// index through [`EmbeddingProfile::attach`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingProfile {
    #[serde(skip)]
    vectors: FlatIndex,
    /// Per user, the movies they liked: a taste vector is computed when needed (storing
    /// them took 0.5 GB at 331k users, in memory and in the index).
    liked: HashMap<u32, Vec<u32>>,
    /// Rating from which a movie counts as liked.
    threshold: f32,
}

impl EmbeddingProfile {
    /// Profiles of `train`'s users: the normalised mean vector of the movies rated ≥
    /// `threshold`. `vectors` holds one row per catalogue position.
    pub fn fit(train: &Interactions, vectors: &FlatIndex, threshold: f32) -> Self {
        EmbeddingProfile {
            vectors: vectors.clone(),
            liked: train.movies_by_user(threshold).into_iter().collect(),
            threshold,
        }
    }

    /// The taste vector of a person known by `history`, if they liked a movie.
    pub fn history_profile(&self, history: &[(u32, f32)]) -> Option<Vec<f32>> {
        let liked: Vec<u32> = history
            .iter()
            .filter(|&&(_, r)| r >= self.threshold)
            .map(|&(m, _)| m)
            .collect();
        profile_of(&self.vectors, &liked)
    }

    /// For each of `movies`, the highest cosine between it and a movie `history` liked (0
    /// without one): whether the person liked something very close, which a mean hides.
    /// Compares with at most [`MAX_COMPARED_LIKES`] liked movies, the highest rated.
    pub fn max_liked_similarity(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f32> {
        let n = self.vectors.len();
        let mut liked: Vec<(u32, f32)> = history
            .iter()
            .copied()
            .filter(|&(m, r)| r >= self.threshold && (m as usize) < n)
            .collect();
        liked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        liked.truncate(MAX_COMPARED_LIKES);
        if liked.is_empty() || movies.is_empty() {
            return vec![0.0; movies.len()];
        }
        let dim = self.vectors.dim();
        // One matrix product: movies × dim times dim × liked.
        let mut liked_t = vec![0f32; dim * liked.len()];
        for (j, &(m, _)) in liked.iter().enumerate() {
            for (k, &v) in self.vectors.vector(m as usize).iter().enumerate() {
                liked_t[k * liked.len() + j] = v;
            }
        }
        let zero = vec![0f32; dim];
        let candidates: Vec<f32> = movies
            .iter()
            .flat_map(|&m| {
                let v = if (m as usize) < n {
                    self.vectors.vector(m as usize)
                } else {
                    &zero
                };
                v.iter().copied()
            })
            .collect();
        let mut cosines = vec![0f32; movies.len() * liked.len()];
        crate::linalg::matmul_add(
            &mut cosines,
            &candidates,
            &liked_t,
            movies.len(),
            dim,
            liked.len(),
            crate::linalg::Parallelism::Sequential,
        );
        cosines
            .chunks_exact(liked.len())
            .zip(movies)
            .map(|(row, &m)| {
                if (m as usize) < n {
                    row.iter().copied().fold(f32::MIN, f32::max)
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Gives a deserialised model its movie vectors back.
    pub fn attach(&mut self, vectors: &FlatIndex) {
        self.vectors = vectors.clone();
    }

    /// The taste vector of `user`, if they liked a movie.
    pub fn profile(&self, user: u32) -> Option<Vec<f32>> {
        self.liked
            .get(&user)
            .and_then(|movies| profile_of(&self.vectors, movies))
    }
}

impl EmbeddingProfile {
    /// Cosine between a unit `profile` and the movie's vector (0 outside the index).
    fn cosine(&self, profile: &[f32], movie: u32) -> f32 {
        if (movie as usize) < self.vectors.len() {
            dot(profile, self.vectors.vector(movie as usize))
        } else {
            0.0
        }
    }
}

/// The unit mean vector of the `liked` movies (those inside `vectors`), or `None` when it is
/// zero.
fn profile_of(vectors: &FlatIndex, liked: &[u32]) -> Option<Vec<f32>> {
    let mut sum = vec![0f32; vectors.dim()];
    for &m in liked.iter().filter(|&&m| (m as usize) < vectors.len()) {
        for (s, v) in sum.iter_mut().zip(vectors.vector(m as usize)) {
            *s += v;
        }
    }
    let norm = dot(&sum, &sum).sqrt();
    (norm > 0.0).then(|| sum.iter().map(|x| x / norm).collect())
}

impl Scorer for EmbeddingProfile {
    fn name(&self) -> &'static str {
        "EmbeddingProfile"
    }

    /// 0 for a user without liked movies or a movie outside the index.
    fn score_one(&self, user: u32, movie: u32) -> f32 {
        self.profile(user)
            .map_or(0.0, |profile| self.cosine(&profile, movie))
    }

    /// Each user's taste vector computed once for all their pairs.
    fn score(&self, users: &[u32], movies: &[u32]) -> Vec<f32> {
        let mut by_user: Vec<(u32, usize)> =
            users.iter().enumerate().map(|(i, &u)| (u, i)).collect();
        by_user.sort_unstable();
        let mut out = vec![0f32; users.len()];
        for group in by_user.chunk_by(|a, b| a.0 == b.0) {
            if let Some(profile) = self.profile(group[0].0) {
                for &(_, pair) in group {
                    out[pair] = self.cosine(&profile, movies[pair]);
                }
            }
        }
        out
    }

    fn score_history(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f32> {
        match self.history_profile(history) {
            Some(profile) => movies.iter().map(|&m| self.cosine(&profile, m)).collect(),
            None => vec![0.0; movies.len()],
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
        // The closest liked movie: e0 and e1 liked, e3 (rated 2) not.
        let max = model.max_liked_similarity(&[(0, 5.0), (1, 4.0), (3, 2.0)], &[2, 3, 0, 99]);
        assert!((max[0] - s).abs() < 1e-6 && max[1].abs() < 1e-6);
        assert!((max[2] - 1.0).abs() < 1e-6 && max[3] == 0.0);
        assert_eq!(model.max_liked_similarity(&[(3, 2.0)], &[0]), vec![0.0]);
    }
}
