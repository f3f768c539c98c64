//! GenreContent: cosine between a movie's genres and the genres a user liked (seed 000 §4).

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::{Interactions, Scorer};
use crate::data::Movie;

/// User genre profiles and unit-length movie genre vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenreContent {
    /// Per movie: its genre indices (multi-hot), and 1/√(count) to normalise.
    movie_genres: Vec<Vec<u16>>,
    /// Per user: L2-normalised mean genre vector of the movies rated ≥ threshold.
    profiles: HashMap<u32, Vec<f32>>,
    genres: Vec<String>,
    /// Rating from which a movie counts as liked.
    threshold: f32,
}

impl GenreContent {
    /// Builds the genre vectors of `movies` and the profiles of `train`'s users.
    pub fn fit(train: &Interactions, movies: &[Movie], threshold: f32) -> GenreContent {
        let genres: Vec<String> = movies
            .iter()
            .flat_map(|m| m.genres.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let position: HashMap<&str, u16> = genres
            .iter()
            .enumerate()
            .map(|(i, g)| (g.as_str(), i as u16))
            .collect();
        let movie_genres: Vec<Vec<u16>> = movies
            .iter()
            .map(|m| {
                m.genres
                    .iter()
                    .filter_map(|g| position.get(g.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut model = GenreContent {
            movie_genres,
            profiles: HashMap::new(),
            genres,
            threshold,
        };
        let liked = train.movies_by_user(threshold);
        model.profiles = liked
            .into_iter()
            .map(|(u, movies)| (u, model.profile_of(&movies)))
            .collect();
        model
    }

    /// The genres (as indices) of the movie at `movie`; none for an unknown position.
    pub fn genres_of(&self, movie: u32) -> &[u16] {
        self.movie_genres
            .get(movie as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// The unit mean genre vector of the `liked` movies.
    fn profile_of(&self, liked: &[u32]) -> Vec<f32> {
        let mut sum = vec![0f32; self.genres.len()];
        for &m in liked {
            for &g in self
                .movie_genres
                .get(m as usize)
                .map_or(&[][..], Vec::as_slice)
            {
                sum[g as usize] += 1.0;
            }
        }
        // The mean and the sum have the same direction: normalising either gives the same
        // unit vector (a zero vector stays zero).
        let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            sum.iter().map(|x| x / norm).collect()
        } else {
            sum
        }
    }

    /// The genre vocabulary, sorted.
    pub fn genres(&self) -> &[String] {
        &self.genres
    }

    /// Cosine between the user's profile and the movie's genres; 0 when either is unknown or
    /// empty.
    pub fn predict(&self, user: u32, movie: u32) -> f32 {
        self.profiles
            .get(&user)
            .map_or(0.0, |profile| self.cosine(profile, movie))
    }

    /// Cosine between a unit `profile` and the movie's genres.
    fn cosine(&self, profile: &[f32], movie: u32) -> f32 {
        let Some(genres) = self.movie_genres.get(movie as usize) else {
            return 0.0;
        };
        if genres.is_empty() {
            return 0.0;
        }
        let dot: f32 = genres.iter().map(|&g| profile[g as usize]).sum();
        dot / (genres.len() as f32).sqrt()
    }
}

impl Scorer for GenreContent {
    fn name(&self) -> &'static str {
        "GenreContent"
    }

    fn score_one(&self, user: u32, movie: u32) -> f32 {
        self.predict(user, movie)
    }

    fn score_history(&self, history: &[(u32, f32)], movies: &[u32]) -> Vec<f32> {
        let liked: Vec<u32> = history
            .iter()
            .filter(|&&(_, r)| r >= self.threshold)
            .map(|&(m, _)| m)
            .collect();
        if liked.is_empty() {
            return vec![0.0; movies.len()];
        }
        let profile = self.profile_of(&liked);
        movies.iter().map(|&m| self.cosine(&profile, m)).collect()
    }

    fn predicts_ratings(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn movie(genres: &[&str]) -> Movie {
        Movie {
            id: 0,
            title: String::new(),
            year: None,
            genres: genres.iter().map(|g| g.to_string()).collect(),
            imdb_id: None,
            tmdb_id: None,
        }
    }

    #[test]
    fn cosine_by_hand() {
        let movies = vec![
            movie(&["Action", "Sci-Fi"]),
            movie(&["Action"]),
            movie(&["Comedy"]),
            movie(&[]),
        ];
        // user 1 liked m0 and m1 (m2 rated 3: not liked): profile ∝ (Action 2, Comedy 0, Sci-Fi 1)
        let train = Interactions {
            user: vec![1, 1, 1, 2],
            movie: vec![0, 1, 2, 2],
            rating: vec![5.0, 4.0, 3.0, 2.0],
        };
        let model = GenreContent::fit(&train, &movies, 4.0);
        assert_eq!(model.genres(), ["Action", "Comedy", "Sci-Fi"]);
        let norm = 5f32.sqrt();
        // m0 = (1, 0, 1)/√2 → (2 + 1)/(√5·√2)
        assert!((model.predict(1, 0) - 3.0 / (norm * 2f32.sqrt())).abs() < 1e-6);
        assert!((model.predict(1, 1) - 2.0 / norm).abs() < 1e-6);
        assert_eq!(model.predict(1, 2), 0.0);
        // no genres, no liked movie (user 2), unknown user → 0
        assert_eq!(model.predict(1, 3), 0.0);
        assert_eq!(model.predict(2, 0), 0.0);
        assert_eq!(model.predict(9, 0), 0.0);
    }
}
