#!/usr/bin/env python3
"""A synthetic MovieLens-format dataset for scale tests (seeded, long-tail popularity).

    python3 scripts/synth_movielens.py --ratings 10000000 --out /tmp/ml-synth-10m

Writes movies.csv, ratings.csv, tags.csv and links.csv in MovieLens' format. Movie popularity
follows a Zipf-like law (a few blockbusters, a long tail), user activity a log-normal law with at
least 20 ratings per user (as MovieLens), and ratings come from a small latent-factor model plus
noise, rounded to half stars. Needs numpy.
"""
import argparse
from pathlib import Path

import numpy as np

GENRES = ["Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance",
          "Sci-Fi", "Thriller", "War", "Western"]
TAGS = ["classic", "funny", "dark", "twist ending", "visually appealing", "atmospheric",
        "based on a book", "space", "romance", "violence", "cult film", "slow", "great soundtrack"]


def write_lines(path, header, columns, chunk=1_000_000):
    with open(path, "w", encoding="utf-8") as out:
        out.write(header + "\n")
        n = len(columns[0])
        for start in range(0, n, chunk):
            parts = [c[start:start + chunk] for c in columns]
            out.write("\n".join(",".join(map(str, row)) for row in zip(*parts)) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ratings", type=int, default=10_000_000)
    ap.add_argument("--users", type=int, default=0, help="default: ratings / 150")
    ap.add_argument("--movies", type=int, default=0, help="default: ratings / 350")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    n_users = a.users or max(50, a.ratings // 150)
    n_movies = a.movies or max(100, a.ratings // 350)
    a.out.mkdir(parents=True, exist_ok=True)

    # Movies: ids with gaps like MovieLens, years, 1-3 genres.
    movie_ids = np.sort(rng.choice(np.arange(1, n_movies * 3), size=n_movies, replace=False))
    years = rng.integers(1920, 2019, size=n_movies)
    genres = ["|".join(rng.choice(GENRES, size=rng.integers(1, 4), replace=False)) for _ in range(n_movies)]
    titles = [f"\"Synthetic Movie {i}, The ({y})\"" for i, y in zip(movie_ids, years)]
    write_lines(a.out / "movies.csv", "movieId,title,genres", [movie_ids, titles, genres])
    write_lines(a.out / "links.csv", "movieId,imdbId,tmdbId",
                [movie_ids, [f"{7_000_000 + i:07d}" for i in movie_ids], movie_ids + 100_000])

    # Popularity: Zipf-like over a random order of the movies.
    popularity = 1.0 / (np.arange(n_movies) + 10.0) ** 1.05
    popularity = popularity[rng.permutation(n_movies)]
    popularity /= popularity.sum()
    # Activity: log-normal, at least 20 ratings, at most half the catalogue.
    activity = rng.lognormal(mean=0.0, sigma=1.0, size=n_users)
    counts = np.clip((activity / activity.sum() * a.ratings * 1.3).astype(np.int64), 20, n_movies // 2)
    users = np.repeat(np.arange(1, n_users + 1), counts)
    movies = rng.choice(n_movies, size=len(users), p=popularity)
    # Drop repeated (user, movie) pairs, then trim to the target.
    key = users.astype(np.int64) * (n_movies + 1) + movies
    _, first = np.unique(key, return_index=True)
    keep = np.sort(first)[: a.ratings] if len(first) > a.ratings else np.sort(first)
    users, movies = users[keep], movies[keep]

    # Ratings from a latent model: biases + factors + noise, half stars in 0.5..5.
    f = 8
    user_bias = rng.normal(0, 0.45, n_users + 1)
    item_bias = rng.normal(0, 0.45, n_movies)
    p = rng.normal(0, 0.35, (n_users + 1, f))
    q = rng.normal(0, 0.35, (n_movies, f))
    raw = 3.5 + user_bias[users] + item_bias[movies] + np.einsum("ij,ij->i", p[users], q[movies])
    raw += rng.normal(0, 0.7, len(raw))
    ratings = np.clip(np.round(raw * 2) / 2, 0.5, 5.0)
    timestamps = rng.integers(828_000_000, 1_537_000_000, size=len(raw))
    write_lines(a.out / "ratings.csv", "userId,movieId,rating,timestamp",
                [users, movie_ids[movies], ratings, timestamps])

    n_tags = max(10, len(users) // 100)
    tag_rows = rng.choice(len(users), size=n_tags, replace=False)
    write_lines(a.out / "tags.csv", "userId,movieId,tag,timestamp",
                [users[tag_rows], movie_ids[movies[tag_rows]], rng.choice(TAGS, size=n_tags),
                 timestamps[tag_rows]])
    print(f"wrote {a.out}: {n_movies} movies, {len(users)} ratings by {n_users} users, {n_tags} tags")


if __name__ == "__main__":
    main()
