//! The serving stack saved by `build`: identical features at training and serving time, a
//! ranking that separates liked from disliked movies, and `reelrank explain`.

use reelrank::data::split::Split;
use reelrank::data::Dataset;
use reelrank::rank::features::{Feature, ALL_FEATURES};
use reelrank::rank::stack::{Person, ServingStack, StackKind};

use crate::common::{json_output, real_data, real_engine, real_index_dir, reelrank};

fn feature_index(feature: Feature) -> usize {
    ALL_FEATURES
        .iter()
        .position(|&f| f == feature)
        .expect("a feature of the list")
}

#[test]
fn serving_builds_the_features_training_builds() {
    let engine = real_engine();
    let index = engine.index();
    let loaded = engine.stack().expect("the stack saved in the index");
    let dataset = Dataset::load(&real_data()).expect("load");
    // Retraining with the manifest's seed gives the same models: builds are reproducible.
    let seed = index.manifest().stack["seed"].as_u64().expect("the seed");
    let embed = |texts: &[String]| engine.encoder().embed_texts(texts);
    let trained = ServingStack::fit(&dataset, index.flat(), &embed, seed).expect("fit");
    assert_eq!(trained.logistic, loaded.logistic);
    assert_eq!(trained.gbdt, loaded.gbdt);
    assert_eq!(trained.lambdamart, loaded.lambdamart);
    assert_eq!(trained.candidate_ranker, loaded.candidate_ranker);
    assert_eq!(trained.personal_ranker, loaded.personal_ranker);

    // Pairs of many users at once take the training path (ItemKnn's batch similarity rows);
    // one user's candidates take the serving path, after a save and a load.
    let users: Vec<u32> = (0..60).map(|i| 1 + (i * 37) % 610).collect();
    let movies: Vec<u32> = (0..60).map(|i| (i * 811) % 9742).collect();
    let d = ALL_FEATURES.len();
    let batch = trained.feature_rows(&users, &movies);
    for (i, (&user, &movie)) in users.iter().zip(&movies).enumerate() {
        let served = loaded.person_features(&Person::User(user), &[movie]);
        assert_eq!(
            served,
            batch[i * d..(i + 1) * d],
            "user {user}, movie {movie}"
        );
        let probability =
            loaded.score_person(StackKind::Logistic, &Person::User(user), &[movie])[0];
        assert_eq!(probability, trained.logistic.probability(&served));
    }

    // Serving statistics count every rating of the user.
    let user = users[3];
    let count = dataset.ratings.user.iter().filter(|&&u| u == user).count();
    let row = loaded.person_features(&Person::User(user), &[0]);
    assert_eq!(row[feature_index(Feature::UserRatingCount)], count as f64);
}

#[test]
fn the_stack_ranks_held_out_liked_movies_above_disliked_ones() {
    // Trained on the training part of a seeded split only; scored on the held-out test rows,
    // which neither the base models nor the stacks have seen.
    let engine = real_engine();
    let dataset = Dataset::load(&real_data()).expect("load");
    let split = Split::seeded(dataset.ratings.len(), 7);
    let train = split.train_full();
    let stack =
        ServingStack::fit_on(&dataset, &train, engine.index().flat(), None, 7).expect("fit");
    assert!(!stack.has_personal_ranker(), "fit without an encoder");
    let ratings = &dataset.ratings;
    let mut test_by_user: std::collections::BTreeMap<u32, Vec<(u32, f32)>> = Default::default();
    for &row in &split.test {
        test_by_user
            .entry(ratings.user[row])
            .or_default()
            .push((ratings.movie[row], ratings.rating[row]));
    }
    for kind in StackKind::ALL {
        // AUC between each user's held-out movies rated ≥ 4 and ≤ 2, pooled over users.
        let (mut above, mut pairs) = (0u64, 0u64);
        for (&user, rated) in test_by_user.iter().step_by(3) {
            let movies: Vec<u32> = rated.iter().map(|r| r.0).collect();
            let scores = stack.score_person(kind, &Person::User(user), &movies);
            for (a, &(_, ra)) in rated.iter().enumerate() {
                for (b, &(_, rb)) in rated.iter().enumerate() {
                    if ra >= 4.0 && rb <= 2.0 {
                        pairs += 1;
                        above += u64::from(scores[a] > scores[b]);
                    }
                }
            }
        }
        let auc = above as f64 / pairs as f64;
        // Measured: 0.82–0.84 for the three stacks; a random order gives 0.5.
        assert!(
            pairs > 1000 && auc > 0.75,
            "{kind:?}: held-out AUC {auc} over {pairs}"
        );
    }
}

#[test]
fn explain_prints_global_importances_and_exact_contributions() {
    let index = real_index_dir();
    let global = json_output(
        reelrank()
            .arg("--data")
            .arg(real_data())
            .arg("--index")
            .arg(&index)
            .args(["explain", "--json"]),
    );
    let features = global["features"].as_array().expect("features");
    assert_eq!(features.len(), ALL_FEATURES.len());
    // The logistic weights printed are the model's own.
    let stack = real_engine().stack().expect("stack");
    for (row, weight) in features.iter().zip(&stack.logistic.weights) {
        assert_eq!(row["logistic_weight"].as_f64(), Some(*weight), "{row}");
    }
    assert_eq!(global["training"]["seed"], 42);
    // The learned rankers' gain shares: each sums to one; the query features are the personal
    // ranker's alone, and it learned from the query (the similarity's rank above all).
    let rankers = global["rankers"].as_array().expect("rankers");
    let share = |row: &serde_json::Value, key: &str| row[key].as_f64();
    let total = |key: &str| rankers.iter().filter_map(|r| share(r, key)).sum::<f64>();
    assert!((total("candidate_ranker") - 1.0).abs() < 1e-9);
    assert!((total("personal_ranker") - 1.0).abs() < 1e-9);
    let query: Vec<&serde_json::Value> = rankers
        .iter()
        .filter(|r| r["candidate_ranker"].is_null())
        .collect();
    assert_eq!(query.len(), reelrank::rank::personal::QUERY_FEATURES.len());
    let from_query: f64 = query
        .iter()
        .filter_map(|r| share(r, "personal_ranker"))
        .sum();
    assert!(from_query > 0.05, "{rankers:?}");

    // User 1 and Star Wars (movieId 260).
    let local = json_output(
        reelrank()
            .arg("--data")
            .arg(real_data())
            .arg("--index")
            .arg(&index)
            .args(["explain", "--user", "1", "--movie", "260", "--json"]),
    );
    assert_eq!(local["title"], "Star Wars: Episode IV - A New Hope (1977)");
    let e = &local["explanation"];
    // The pair's probabilities are those the serving path scores the pair with.
    let star_wars = real_engine()
        .index()
        .catalog()
        .position(260)
        .expect("Star Wars") as u32;
    for (kind, field) in [
        (StackKind::Logistic, "logistic_probability"),
        (StackKind::Gbdt, "gbdt_probability"),
    ] {
        let served = stack.score_person(kind, &Person::User(1), &[star_wars])[0];
        let explained = e[field].as_f64().expect("a probability");
        assert!(
            (served - explained).abs() < 1e-12,
            "{field}: {explained} vs {served}"
        );
    }
    // The feature values shown are the served feature row.
    let row = stack.person_features(&Person::User(1), &[star_wars]);
    let shown: Vec<f64> = e["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| f["value"].as_f64().expect("a value"))
        .collect();
    assert_eq!(shown, row);
}

#[test]
fn explain_refuses_unknown_users_and_movies() {
    let index = real_index_dir();
    let run = |args: &[&str]| {
        let output = reelrank()
            .arg("--data")
            .arg(real_data())
            .arg("--index")
            .arg(&index)
            .arg("explain")
            .args(args)
            .output()
            .expect("run");
        assert!(!output.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let unknown_user = run(&["--user", "999999", "--movie", "1"]);
    assert!(
        unknown_user.contains("--user") && unknown_user.contains("999999"),
        "{unknown_user}"
    );
    let unknown_movie = run(&["--user", "1", "--movie", "999999"]);
    assert!(
        unknown_movie.contains("--movie") && unknown_movie.contains("999999"),
        "{unknown_movie}"
    );
    assert!(run(&["--user", "1"]).contains("--movie"));
}
