//! Experiments between rankers, replayed with a click model driven by held-out ratings: each
//! simulated person is a new profile holding a real user's earlier ratings, and clicks, with a
//! position bias, the movies shown that the user rated 4 or more later on. Those later ratings
//! are held out of the index the server answers from (built by the test). The candidate
//! ranker must beat popularity (as it does offline, on the full-catalogue NDCG) under A/B and
//! under interleaving; an A/A test must come out not significant.

use std::collections::{HashMap, HashSet};

use rand::{Rng, SeedableRng};
use reelrank::data::Dataset;
use serde_json::{json, Value};

use std::path::Path;

use reelrank::engine::{build, BuildOptions};

use crate::common::{json_output, real_data, reelrank, tempdir};
use crate::server::Server;

/// Simulated people: MovieLens users with this many ratings (a profile takes half of them).
const RATINGS: std::ops::RangeInclusive<usize> = 40..=1000;
/// How many of them.
const PEOPLE: usize = 300;

/// A person of the simulation: the ratings the profile starts from, the movies liked later.
struct Person {
    user: u32,
    history: Vec<(u32, f32)>,
    later: HashSet<u32>,
    liked_later: HashSet<u64>,
}

/// Each user's ratings by time: the earlier half becomes the profile, the later half's
/// ratings ≥ 4 are what the person would click.
fn people() -> Vec<Person> {
    let data = Dataset::load(&real_data()).expect("data");
    let mut by_user: HashMap<u32, Vec<(i64, u32, f32)>> = HashMap::new();
    let r = &data.ratings;
    for i in 0..r.len() {
        let id = data.movies[r.movie[i] as usize].id;
        by_user
            .entry(r.user[i])
            .or_default()
            .push((r.timestamp[i], id, r.rating[i]));
    }
    let mut users: Vec<u32> = by_user
        .iter()
        .filter(|(_, v)| RATINGS.contains(&v.len()))
        .map(|(&u, _)| u)
        .collect();
    users.sort_unstable();
    users
        .into_iter()
        .take(PEOPLE)
        .map(|u| {
            let mut ratings = by_user.remove(&u).expect("user");
            ratings.sort_unstable_by_key(|&(t, m, _)| (t, m));
            let half = ratings.len() / 2;
            Person {
                user: u,
                history: ratings[..half].iter().map(|&(_, m, r)| (m, r)).collect(),
                later: ratings[half..].iter().map(|&(_, m, _)| m).collect(),
                liked_later: ratings[half..]
                    .iter()
                    .filter(|&&(_, _, r)| r >= 4.0)
                    .map(|&(_, m, _)| u64::from(m))
                    .collect(),
            }
        })
        .collect()
}

/// Position bias: the chance a person looks at position `p` (1-based).
fn examined(p: usize) -> f64 {
    1.0 / (p as f64).sqrt()
}

/// One session per person under `experiment`; clicks posted as events. Returns the clicks.
fn replay(
    server: &Server,
    experiment: &str,
    people: &[Person],
    profiles: &[String],
    seed: u64,
) -> usize {
    let client = reqwest::blocking::Client::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut clicks = 0;
    for (person, profile) in people.iter().zip(profiles) {
        let body: Value = client
            .get(server.url(&format!(
                "/v1/recommend?profile={profile}&experiment={experiment}&k=10"
            )))
            .send()
            .expect("recommend")
            .json()
            .expect("json");
        let list = body["experiment"]["list_id"]
            .as_str()
            .expect("list_id")
            .to_string();
        for (i, result) in body["results"]
            .as_array()
            .expect("results")
            .iter()
            .enumerate()
        {
            let movie = result["movie_id"].as_u64().expect("movie");
            let attractive = if person.liked_later.contains(&movie) {
                0.9
            } else {
                0.03
            };
            if rng.random::<f64>() < examined(i + 1) * attractive {
                let response = client
                    .post(server.url("/v1/events"))
                    .json(&json!({ "list_id": list, "movie_id": movie, "kind": "click" }))
                    .send()
                    .expect("event");
                assert_eq!(response.status(), reqwest::StatusCode::CREATED);
                clicks += 1;
            }
        }
    }
    clicks
}

/// A copy of ml-latest-small without the people's later ratings.
fn held_out_data(people: &[Person], dir: &Path) {
    let real = real_data();
    for name in ["movies.csv", "tags.csv", "links.csv"] {
        std::fs::copy(real.join(name), dir.join(name)).expect("copy");
    }
    let later: HashMap<u32, &HashSet<u32>> = people.iter().map(|p| (p.user, &p.later)).collect();
    let text = std::fs::read_to_string(real.join("ratings.csv")).expect("ratings");
    let mut kept = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split(',');
        let (user, movie) = (fields.next(), fields.next());
        let held = i > 0
            && match (
                user.and_then(|u| u.parse().ok()),
                movie.and_then(|m| m.parse().ok()),
            ) {
                (Some(u), Some(m)) => later.get(&u).is_some_and(|l| l.contains(&m)),
                _ => false,
            };
        if !held {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    std::fs::write(dir.join("ratings.csv"), kept).expect("write ratings");
}

/// `reelrank experiment report NAME` over the held-out data, its index and the database in
/// `dir`, with `extra` arguments.
fn report_command(
    data: &Path,
    index: &Path,
    dir: &Path,
    name: &str,
    extra: &[&str],
) -> assert_cmd::Command {
    let mut command = reelrank();
    command
        .arg("--data")
        .arg(data)
        .arg("--index")
        .arg(index)
        .arg("--store")
        .arg(format!("sqlite://{}", dir.join("people.sqlite").display()))
        .args(["experiment", "report", name])
        .args(extra);
    command
}

fn report(data: &Path, index: &Path, dir: &Path, name: &str) -> Value {
    json_output(&mut report_command(data, index, dir, name, &["--json"]))
}

#[test]
fn the_candidate_ranker_beats_popularity_under_a_b_and_interleaving_and_a_a_is_level() {
    let dir = tempdir();
    let store_url = format!("sqlite://{}", dir.path().join("people.sqlite").display());
    let people = people();
    assert_eq!(people.len(), PEOPLE);
    // The index the server answers from has never seen the later ratings.
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data directory");
    held_out_data(&people, &data);
    let paths = crate::common::paths(&data, dir.path());
    build(&paths, &BuildOptions::default()).expect("build the held-out index");
    let index = paths.index.clone();
    // Named profiles (as `onboard` makes), so that arms, clicks and p-values are the same on
    // every run: random ids would assign the people to other arms each time.
    let profiles: Vec<String> = {
        let store = reelrank::profiles::ProfileStore::open(
            &reelrank::profiles::StoreUrl::parse(&store_url).expect("url"),
        )
        .expect("store");
        people
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let id = format!("sim-{i:03}");
                store.ensure_profile(&id).expect("profile");
                let ratings: Vec<reelrank::profiles::ProfileRating> = p
                    .history
                    .iter()
                    .map(|&(movie_id, rating)| reelrank::profiles::ProfileRating {
                        movie_id,
                        rating,
                    })
                    .collect();
                assert!(store.set_ratings(&id, &ratings).expect("ratings"));
                id
            })
            .collect()
    };
    let server = Server::start(
        &data,
        &index,
        &store_url,
        &[
            "--experiment",
            "ab=A:candidate,B:popularity",
            "--experiment",
            "il=A:candidate,B:popularity,mode=interleave",
            "--experiment",
            "aa=A:candidate,B:candidate",
        ],
    );
    let client = reqwest::blocking::Client::new();

    // A click on a movie the list did not show is refused; nothing is written.
    let refused = client
        .post(server.url("/v1/events"))
        .json(&json!({ "list_id": "nope", "movie_id": 1, "kind": "click" }))
        .send()
        .expect("event");
    assert_eq!(refused.status(), reqwest::StatusCode::NOT_FOUND);

    assert!(replay(&server, "ab", &people, &profiles, 1) > 50);
    let ab = report(&data, &index, dir.path(), "ab");
    let all = &ab["segments"][0];
    assert_eq!(all["segment"], "all");
    let (a, b) = (&all["arms"][0], &all["arms"][1]);
    assert_eq!(
        (a["ranker"].as_str(), b["ranker"].as_str()),
        (Some("candidate"), Some("popularity"))
    );
    let lists = a["lists"].as_u64().unwrap_or(0) + b["lists"].as_u64().unwrap_or(0);
    assert_eq!(lists, PEOPLE as u64, "one list a person: {ab}");
    assert!(
        a["lists"].as_u64().unwrap_or(0) > 50 && b["lists"].as_u64().unwrap_or(0) > 50,
        "{ab}"
    );
    assert!(
        a["click_through"].as_f64() > b["click_through"].as_f64(),
        "{ab}"
    );
    assert!(
        all["click_through_p"].as_f64().unwrap_or(1.0) < 0.05,
        "{ab}"
    );
    assert_eq!(ab["winner"], "A");
    // Popularity shows no long-tail movie at all; the segments are there.
    assert_eq!(b["long_tail_share"], 0.0, "{ab}");
    let segments: Vec<&str> = ab["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| s["segment"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        segments,
        [
            "all",
            "new profiles",
            "known users",
            "light raters",
            "heavy raters"
        ]
    );

    replay(&server, "il", &people, &profiles, 2);
    let il = report(&data, &index, dir.path(), "il");
    let interleaving = &il["interleaving"];
    assert_eq!(interleaving["lists"], PEOPLE as u64);
    assert!(
        interleaving["wins_a"].as_u64() > interleaving["wins_b"].as_u64(),
        "{il}"
    );
    assert!(
        interleaving["p_value"].as_f64().unwrap_or(1.0) < 0.05,
        "{il}"
    );
    assert_eq!(il["winner"], "A");

    replay(&server, "aa", &people, &profiles, 3);
    let aa = report(&data, &index, dir.path(), "aa");
    assert!(
        aa["segments"][0]["click_through_p"].as_f64().unwrap_or(0.0) >= 0.05,
        "{aa}"
    );
    assert_eq!(aa["winner"], Value::Null);

    // How many sessions each design needs to call the winner: the first n sessions (in the
    // order they ran, in steps of 5) at which each reaches p < 0.05 (printed for the README).
    let store = reelrank::profiles::ProfileStore::open(&reelrank::profiles::StoreUrl::Sqlite(
        dir.path().join("people.sqlite"),
    ))
    .expect("store");
    let needed = |name: &str| -> Option<usize> {
        let events = store.experiment_events(name).expect("events");
        let mut lists: Vec<&str> = Vec::new();
        for e in &events {
            if !lists.contains(&e.list_id.as_str()) {
                lists.push(&e.list_id);
            }
        }
        (10..=lists.len()).step_by(5).find(|&n| {
            let first: HashSet<&str> = lists[..n].iter().copied().collect();
            let kept: Vec<_> = events
                .iter()
                .filter(|e| first.contains(e.list_id.as_str()))
                .cloned()
                .collect();
            let r = reelrank::experiment::report(name, &kept, &|_| false);
            match &r.interleaving {
                Some(i) => i.p_value < 0.05,
                None => r.segments[0].click_through_p < 0.05,
            }
        })
    };
    let (ab_sessions, il_sessions) = (needed("ab"), needed("il"));
    eprintln!("sessions to p < 0.05: A/B {ab_sessions:?}, interleaving {il_sessions:?}");
    eprintln!(
        "A/B {all}\ninterleaving {interleaving}\nA/A {}",
        aa["segments"][0]
    );
    assert!(il_sessions.is_some() && ab_sessions.is_some());

    // The text report and its chart.
    let svg = dir.path().join("ab.svg");
    let svg_arg = svg.display().to_string();
    let text = report_command(&data, &index, dir.path(), "ab", &["--svg", &svg_arg])
        .output()
        .expect("report");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("winner at p < 0.05: A"), "{text}");
    assert!(std::fs::read_to_string(&svg).expect("svg").contains("<svg"));
}
