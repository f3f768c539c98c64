//! Models that score movies from ratings. So far: popularity (the weighted rating).

pub mod popularity;
