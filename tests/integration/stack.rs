//! The serving stack saved by `build`: identical features at training and serving time, a
//! ranking that separates liked from disliked movies, and `reelrank explain`.

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
    let trained = ServingStack::fit(&dataset, index.flat(), index.manifest().stack.seed);
    assert_eq!(trained.logistic, loaded.logistic);
    assert_eq!(trained.gbdt, loaded.gbdt);
    assert_eq!(trained.lambdamart, loaded.lambdamart);

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
fn the_stack_ranks_liked_movies_above_disliked_ones() {
    let engine = real_engine();
    let stack = engine.stack().expect("stack");
    let dataset = Dataset::load(&real_data()).expect("load");
    for kind in StackKind::ALL {
        // AUC between each user's movies rated ≥ 4 and ≤ 2, pooled over 40 users.
        let (mut above, mut pairs) = (0u64, 0u64);
        for user in (1..=610).step_by(15) {
            let rated: Vec<(u32, f32)> = (0..dataset.ratings.len())
                .filter(|&i| dataset.ratings.user[i] == user)
                .map(|i| (dataset.ratings.movie[i], dataset.ratings.rating[i]))
                .collect();
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
        assert!(
            pairs > 1000 && auc > 0.8,
            "{kind:?}: AUC {auc} over {pairs}"
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
    for share in [
        "logistic_weight_share",
        "gbdt_gain_share",
        "lambdamart_gain_share",
    ] {
        let total: f64 = features
            .iter()
            .map(|f| f[share].as_f64().expect("a share"))
            .sum();
        assert!((total - 1.0).abs() < 1e-9, "{share} sums to {total}");
    }
    assert_eq!(global["training"]["seed"], 42);

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
    let number = |v: &serde_json::Value| v.as_f64().expect("a number");
    let rows = e["features"].as_array().expect("features");
    for (column, bias, total) in [
        ("logistic", "logistic_intercept", "logistic_decision"),
        ("gbdt", "gbdt_bias", "gbdt_decision"),
        ("lambdamart", "lambdamart_bias", "lambdamart_score"),
    ] {
        let sum: f64 = number(&e[bias]) + rows.iter().map(|r| number(&r[column])).sum::<f64>();
        assert!((sum - number(&e[total])).abs() < 1e-9, "{column}: {sum}");
    }
    let p = 1.0 / (1.0 + (-number(&e["logistic_decision"])).exp());
    assert!((p - number(&e["logistic_probability"])).abs() < 1e-12);
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
    assert!(run(&["--user", "999999", "--movie", "1"]).contains("--user 999999"));
    assert!(run(&["--user", "1", "--movie", "999999"]).contains("--movie 999999"));
    assert!(run(&["--user", "1"]).contains("--movie"));
}
