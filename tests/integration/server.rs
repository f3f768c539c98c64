//! `reelrank serve` as a client sees it: the real binary on an ephemeral port, spoken to over
//! HTTP. Every endpoint, a corpus of malformed requests, durability after SIGKILL, concurrent
//! writers, a generation switch under load, and two replicas sharing one PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reelrank::engine::{build, BuildOptions};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{paths, real_data, real_index_dir, real_model, tempdir, tiny};

const TOKEN: &str = "test-admin-token-0123456789";

/// A running server, killed when dropped.
pub struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `reelrank serve` on a free port over `index` with the profile database `store`,
    /// and waits for its "listening on" line.
    pub fn start(data: &Path, index: &Path, store: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("reelrank"))
            .arg("--data")
            .arg(data)
            .arg("--model")
            .arg(real_model())
            .arg("--index")
            .arg(index)
            .args(["-q", "--store", store, "serve", "--addr", "127.0.0.1:0"])
            .args(["--admin-token", TOKEN])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start reelrank serve");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("listening on ") {
                    let _ = sender.send(address.trim().to_string());
                }
            }
        });
        let base = receiver
            .recv_timeout(Duration::from_secs(120))
            .expect("the server said where it listens");
        Server { child, base }
    }

    /// The real index with a fresh SQLite database under `dir`.
    pub fn real(dir: &Path) -> Server {
        Server::start(&real_data(), &real_index_dir(), &sqlite(dir), &[])
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn sqlite(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("people.sqlite").display())
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// GET `path`, returning the status and the JSON body.
fn get(server: &Server, path: &str) -> (StatusCode, Value) {
    let response = client().get(server.url(path)).send().expect("GET");
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

fn create_profile(server: &Server) -> String {
    let response = client()
        .post(server.url("/v1/profiles"))
        .send()
        .expect("POST");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().expect("json");
    body["id"].as_str().expect("id").to_string()
}

fn rate(server: &Server, profile: &str, movie: u32, rating: f32) -> StatusCode {
    client()
        .put(server.url(&format!("/v1/profiles/{profile}/ratings/{movie}")))
        .json(&json!({ "rating": rating }))
        .send()
        .expect("PUT")
        .status()
}

fn result_ids(body: &Value) -> Vec<u64> {
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["movie_id"].as_u64().expect("movie_id"))
        .collect()
}

fn genres_of(body: &Value) -> Vec<Vec<String>> {
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            r["genres"]
                .as_array()
                .expect("genres")
                .iter()
                .map(|g| g.as_str().expect("genre").to_string())
                .collect()
        })
        .collect()
}

#[test]
fn every_endpoint_answers_like_the_cli() {
    let dir = tempdir();
    let server = Server::real(dir.path());

    let (status, body) = get(&server, "/healthz");
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = get(&server, "/readyz");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["movies"].as_u64(), Some(9742));

    // Search: mostly Sci-Fi for the notebook's query, filters applied.
    let (status, body) = get(
        &server,
        "/v1/search?q=space%20travel%20and%20futuristic%20wars&k=10",
    );
    assert_eq!(status, StatusCode::OK);
    let scifi = genres_of(&body)
        .iter()
        .filter(|g| g.iter().any(|x| x == "Sci-Fi"))
        .count();
    assert!(scifi >= 7, "{scifi} Sci-Fi of 10: {body}");
    assert!(body["timings_ms"]["embed"].as_f64().is_some(), "{body}");
    let (_, body) = get(
        &server,
        "/v1/search?q=space%20travel&genre=Comedy&year=1990..1999&k=5",
    );
    for r in body["results"].as_array().expect("results") {
        assert!(
            r["genres"]
                .as_array()
                .expect("genres")
                .iter()
                .any(|g| g == "Comedy"),
            "{r}"
        );
        let year = r["year"].as_u64().expect("year");
        assert!((1990..=1999).contains(&year), "{r}");
    }

    // The same answer as the CLI's --json.
    let cli = crate::common::json_output(crate::common::real_cli().args([
        "search",
        "the matrix",
        "--json",
    ]));
    let (_, body) = get(&server, "/v1/search?q=the%20matrix");
    assert_eq!(result_ids(&body), result_ids(&cli));

    // Similar by id and by title; a movie's details.
    let (status, body) = get(&server, "/v1/similar?title=Toy%20Story&k=5");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(result_ids(&body).len(), 5);
    assert!(!result_ids(&body).contains(&1));
    let (_, by_id) = get(&server, "/v1/similar?movie=1&k=5");
    assert_eq!(result_ids(&by_id), result_ids(&body));
    let (status, body) = get(&server, "/v1/movies/1");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["title"], "Toy Story (1995)");
    assert!(
        body["document"]
            .as_str()
            .expect("document")
            .contains("Toy Story"),
        "{body}"
    );
    assert_eq!(body["imdb_url"], "https://www.imdb.com/title/tt0114709/");
    assert!(body["rating_count"].as_u64().expect("count") > 200);

    // Recommend for a known user, and the per-stage metrics it leaves.
    let (status, body) = get(&server, "/v1/recommend?user=1&k=10");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result_ids(&body).len(), 10);
    assert!(
        body["candidates"].as_u64().expect("candidates") >= 100,
        "{body}"
    );

    // A profile: created empty, rated, read back, used at once, a rating removed.
    let profile = create_profile(&server);
    assert_eq!(profile.len(), 32);
    for movie in [1, 2355, 3114, 4886, 6377] {
        // Toy Story, A Bug's Life, Toy Story 2, Monsters Inc., Finding Nemo.
        assert_eq!(rate(&server, &profile, movie, 5.0), StatusCode::OK);
    }
    let liked = client()
        .put(server.url(&format!("/v1/profiles/{profile}/ratings/2")))
        .json(&json!({ "like": false }))
        .send()
        .expect("PUT");
    assert_eq!(liked.status(), StatusCode::OK);
    let (status, body) = get(&server, &format!("/v1/profiles/{profile}"));
    assert_eq!(status, StatusCode::OK);
    let ratings = body["ratings"].as_array().expect("ratings");
    assert_eq!(ratings.len(), 6);
    assert!(
        ratings.contains(&json!({ "movie_id": 2, "rating": 1.0 })),
        "{body}"
    );
    let (status, body) = get(&server, &format!("/v1/recommend?profile={profile}&k=10"));
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids = result_ids(&body);
    assert!(
        ids.iter()
            .all(|id| ![1, 2, 2355, 3114, 4886, 6377].contains(id)),
        "{ids:?}"
    );
    let animated = genres_of(&body)
        .iter()
        .filter(|g| g.iter().any(|x| x == "Animation"))
        .count();
    assert!(
        animated >= 5,
        "{animated} animated of 10 for a Pixar fan: {body}"
    );
    let (status, _) = get(
        &server,
        &format!("/v1/search?q=funny%20movies&profile={profile}"),
    );
    assert_eq!(status, StatusCode::OK);
    let deleted = client()
        .delete(server.url(&format!("/v1/profiles/{profile}/ratings/2")))
        .send()
        .expect("DELETE");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (_, body) = get(&server, &format!("/v1/profiles/{profile}"));
    assert_eq!(body["ratings"].as_array().expect("ratings").len(), 5);

    // A profile created with ratings.
    let response = client()
        .post(server.url("/v1/profiles"))
        .json(&json!({ "ratings": [{ "movie_id": 260, "rating": 5.0 }] }))
        .send()
        .expect("POST");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().expect("json");
    assert_eq!(body["ratings"][0]["movie_id"], 260);

    // Metrics: requests by route and status, stage latencies, the generation in use.
    let text = client()
        .get(server.url("/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    for needle in [
        "reelrank_http_requests_total{route=\"/v1/search\",method=\"GET\",status=\"200\"}",
        "reelrank_stage_duration_seconds_count{stage=\"embed\"}",
        "reelrank_stage_duration_seconds_count{stage=\"retrieve\"}",
        "reelrank_index_generation{generation=\"gen-",
        "reelrank_query_cache_hits",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }

    // Every path of the OpenAPI description is served.
    let (status, spec) = get(&server, "/v1/openapi.json");
    assert_eq!(status, StatusCode::OK);
    for (path, methods) in spec["paths"].as_object().expect("paths") {
        let concrete = path.replace("{movie}", "1").replace("{profile}", &profile);
        for method in methods.as_object().expect("methods").keys() {
            let request = client().request(
                method.to_uppercase().parse().expect("method"),
                server.url(&concrete),
            );
            let response = request.send().expect("send");
            let status = response.status();
            let body: Value = response.json().unwrap_or(Value::Null);
            assert!(
                body["error"]["code"] != "no_route" && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {status} {body}"
            );
        }
    }
}

/// A refused request: method, path, body, the status and the parameter the error names.
type Malformed<'a> = (&'a str, String, Option<String>, u16, Option<&'a str>);

#[test]
fn malformed_requests_get_4xx_naming_the_parameter() {
    let dir = tempdir();
    let server = Server::real(dir.path());
    let profile = create_profile(&server);
    let long = "x".repeat(10_001);
    let big = format!("{{\"rating\": 4, \"pad\": \"{}\"}}", "y".repeat(70_000));
    let p = |path: &str| path.replace("PROFILE", &profile);
    let corpus: Vec<Malformed> = vec![
        ("GET", p("/v1/search"), None, 400, Some("q")),
        ("GET", p("/v1/search?q="), None, 400, Some("q")),
        ("GET", p("/v1/search?q=%20%20"), None, 400, Some("q")),
        ("GET", format!("/v1/search?q={long}"), None, 400, Some("q")),
        ("GET", p("/v1/search?q=alien&k=0"), None, 400, Some("k")),
        ("GET", p("/v1/search?q=alien&k=1001"), None, 400, Some("k")),
        ("GET", p("/v1/search?q=alien&k=ten"), None, 400, Some("k")),
        ("GET", p("/v1/search?q=alien&k=-1"), None, 400, Some("k")),
        ("GET", p("/v1/search?q=alien&k=1&k=2"), None, 400, Some("k")),
        (
            "GET",
            p("/v1/search?q=alien&alpha=2"),
            None,
            400,
            Some("alpha"),
        ),
        (
            "GET",
            p("/v1/search?q=alien&alpha=NaN"),
            None,
            400,
            Some("alpha"),
        ),
        (
            "GET",
            p("/v1/search?q=alien&candidates=0"),
            None,
            400,
            Some("candidates"),
        ),
        (
            "GET",
            p("/v1/search?q=alien&genre=Westerns"),
            None,
            400,
            Some("genre"),
        ),
        (
            "GET",
            p("/v1/search?q=alien&year=19x0"),
            None,
            400,
            Some("year"),
        ),
        (
            "GET",
            p("/v1/search?q=alien&year=2000..1990"),
            None,
            400,
            Some("year"),
        ),
        (
            "GET",
            p("/v1/search?q=alien&mode=fuzzy"),
            None,
            400,
            Some("mode"),
        ),
        (
            "GET",
            p("/v1/search?q=alien&stack=forest"),
            None,
            400,
            Some("stack"),
        ),
        (
            "GET",
            p("/v1/search?q=alien&exact=maybe"),
            None,
            400,
            Some("exact"),
        ),
        ("GET", p("/v1/search?q=alien&kk=3"), None, 400, Some("kk")),
        (
            "GET",
            p("/v1/search?q=alien&user=99999999"),
            None,
            404,
            Some("user"),
        ),
        (
            "GET",
            p("/v1/search?q=alien&user=1&profile=PROFILE"),
            None,
            400,
            Some("profile"),
        ),
        (
            "GET",
            p("/v1/search?q=alien&profile=00000000000000000000000000000000"),
            None,
            404,
            Some("profile"),
        ),
        (
            "GET",
            p("/v1/search?q=alien&profile=..%2Fetc%2Fpasswd"),
            None,
            400,
            Some("profile"),
        ),
        ("GET", p("/v1/recommend"), None, 400, Some("user")),
        ("GET", p("/v1/recommend?user=abc"), None, 400, Some("user")),
        (
            "GET",
            p("/v1/recommend?profile=PROFILE"),
            None,
            400,
            Some("profile"),
        ),
        ("GET", p("/v1/similar"), None, 400, Some("movie")),
        (
            "GET",
            p("/v1/similar?movie=999999999"),
            None,
            404,
            Some("movie"),
        ),
        (
            "GET",
            p("/v1/similar?title=Hamlet"),
            None,
            400,
            Some("title"),
        ),
        (
            "GET",
            p("/v1/similar?title=No%20Such%20Film%20Ever"),
            None,
            404,
            Some("title"),
        ),
        (
            "GET",
            p("/v1/similar?movie=1&title=Heat"),
            None,
            400,
            Some("title"),
        ),
        ("GET", p("/v1/movies/abc"), None, 400, Some("movie")),
        ("GET", p("/v1/movies/999999999"), None, 404, Some("movie")),
        ("GET", p("/v1/profiles/nobody"), None, 404, Some("profile")),
        ("GET", p("/v1/profiles/a%20b"), None, 400, Some("profile")),
        (
            "PUT",
            p("/v1/profiles/PROFILE/ratings/1"),
            Some("{\"rating\": 4".into()),
            400,
            Some("body"),
        ),
        (
            "PUT",
            p("/v1/profiles/PROFILE/ratings/1"),
            Some("{\"rating\": 7}".into()),
            400,
            Some("rating"),
        ),
        (
            "PUT",
            p("/v1/profiles/PROFILE/ratings/1"),
            Some("{\"rating\": 0}".into()),
            400,
            Some("rating"),
        ),
        (
            "PUT",
            p("/v1/profiles/PROFILE/ratings/1"),
            Some("{\"stars\": 4}".into()),
            400,
            Some("body"),
        ),
        (
            "PUT",
            p("/v1/profiles/PROFILE/ratings/1"),
            Some("{}".into()),
            400,
            Some("body"),
        ),
        (
            "PUT",
            p("/v1/profiles/PROFILE/ratings/1"),
            Some("[4]".into()),
            400,
            Some("body"),
        ),
        (
            "PUT",
            p("/v1/profiles/PROFILE/ratings/1"),
            Some(big),
            413,
            Some("body"),
        ),
        (
            "PUT",
            p("/v1/profiles/PROFILE/ratings/999999999"),
            Some("{\"rating\": 4}".into()),
            404,
            Some("movie"),
        ),
        (
            "PUT",
            p("/v1/profiles/PROFILE/ratings/x"),
            Some("{\"rating\": 4}".into()),
            400,
            Some("movie"),
        ),
        (
            "PUT",
            p("/v1/profiles/nobody/ratings/1"),
            Some("{\"rating\": 4}".into()),
            404,
            Some("profile"),
        ),
        (
            "DELETE",
            p("/v1/profiles/PROFILE/ratings/1"),
            None,
            404,
            Some("movie"),
        ),
        (
            "DELETE",
            p("/v1/profiles/nobody/ratings/1"),
            None,
            404,
            Some("profile"),
        ),
        (
            "POST",
            p("/v1/profiles"),
            Some("{\"ratings\": [{\"movie_id\": 1}]}".into()),
            400,
            Some("body"),
        ),
        (
            "POST",
            p("/v1/profiles"),
            Some("{\"ratings\": [{\"movie_id\": 999999999, \"rating\": 4}]}".into()),
            404,
            Some("movie"),
        ),
        (
            "POST",
            p("/v1/profiles"),
            Some("not json".into()),
            400,
            Some("body"),
        ),
        (
            "POST",
            p("/v1/admin/reload"),
            None,
            401,
            Some("authorization"),
        ),
        (
            "GET",
            p("/v1/recommend?user=1&ranker=forest"),
            None,
            400,
            Some("ranker"),
        ),
        (
            "GET",
            p("/v1/recommend?user=1&experiment=nope"),
            None,
            404,
            Some("experiment"),
        ),
        (
            "GET",
            p("/v1/recommend?user=1&experiment=x&ranker=candidate"),
            None,
            400,
            Some("ranker"),
        ),
        ("GET", p("/v1/onboarding?k=0"), None, 400, Some("k")),
        ("GET", p("/v1/onboarding?k=101"), None, 400, Some("k")),
        (
            "GET",
            p("/v1/onboarding?profile=nobody"),
            None,
            404,
            Some("profile"),
        ),
        (
            "POST",
            p("/v1/events"),
            Some("{}".into()),
            400,
            Some("body"),
        ),
        (
            "POST",
            p("/v1/events"),
            Some("{\"list_id\": \"x\", \"movie_id\": 1, \"kind\": \"stare\"}".into()),
            400,
            Some("kind"),
        ),
        (
            "POST",
            p("/v1/events"),
            Some("{\"list_id\": \"x\", \"movie_id\": 1, \"kind\": \"rating\"}".into()),
            400,
            Some("rating"),
        ),
        (
            "POST",
            p("/v1/events"),
            Some(
                "{\"list_id\": \"x\", \"movie_id\": 1, \"kind\": \"click\", \"rating\": 4}".into(),
            ),
            400,
            Some("rating"),
        ),
        (
            "POST",
            p("/v1/events"),
            Some("{\"list_id\": \"x\", \"movie_id\": 1, \"kind\": \"click\"}".into()),
            404,
            Some("list_id"),
        ),
        ("GET", p("/v1/nothing"), None, 404, None),
        ("DELETE", p("/v1/search?q=x"), None, 405, None),
    ];
    for (method, path, body, status, parameter) in corpus {
        let mut request = client().request(method.parse().expect("method"), server.url(&path));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().expect("send");
        let got = response.status().as_u16();
        let json: Value = response.json().expect("every error body is JSON");
        let shown = &path[..path.len().min(120)];
        assert_eq!(got, status, "{method} {shown}: {json}");
        assert_eq!(json["error"]["status"], status, "{method} {shown}: {json}");
        assert!(
            !json["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{method} {shown}: {json}"
        );
        if let Some(parameter) = parameter {
            assert_eq!(
                json["error"]["parameter"], parameter,
                "{method} {shown}: {json}"
            );
        }
    }
    // Nothing was written by the refused requests, and the server still answers.
    let (_, body) = get(&server, &format!("/v1/profiles/{profile}"));
    assert_eq!(body["ratings"], json!([]));
    let (status, _) = get(&server, "/v1/search?q=alien");
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn an_acknowledged_rating_survives_sigkill() {
    let dir = tempdir();
    let server = Server::real(dir.path());
    let profile = create_profile(&server);
    assert_eq!(rate(&server, &profile, 296, 4.5), StatusCode::OK);
    // Killed the instant after the acknowledgement: no shutdown, no flush.
    drop(server);
    let server = Server::real(dir.path());
    let (status, body) = get(&server, &format!("/v1/profiles/{profile}"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ratings"], json!([{ "movie_id": 296, "rating": 4.5 }]));
}

#[test]
fn concurrent_writers_to_one_profile_lose_nothing() {
    let dir = tempdir();
    let server = Arc::new(Server::real(dir.path()));
    let profile = create_profile(&server);
    let movies: Vec<u32> = {
        let (_, body) = get(&server, "/v1/search?q=adventure&k=120");
        result_ids(&body).iter().map(|&id| id as u32).collect()
    };
    assert_eq!(movies.len(), 120);
    let threads: Vec<_> = movies
        .chunks(15)
        .map(|chunk| {
            let (server, profile, chunk) = (Arc::clone(&server), profile.clone(), chunk.to_vec());
            std::thread::spawn(move || {
                for movie in chunk {
                    assert_eq!(rate(&server, &profile, movie, 3.5), StatusCode::OK);
                    // Everyone also rewrites one shared movie.
                    assert_eq!(rate(&server, &profile, 1, 4.0), StatusCode::OK);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("writer");
    }
    let (_, body) = get(&server, &format!("/v1/profiles/{profile}"));
    let stored: Vec<u64> = body["ratings"]
        .as_array()
        .expect("ratings")
        .iter()
        .map(|r| r["movie_id"].as_u64().expect("id"))
        .collect();
    let mut expected: Vec<u64> = movies.iter().map(|&m| u64::from(m)).collect();
    expected.push(1);
    expected.sort_unstable();
    expected.dedup();
    let mut got = stored.clone();
    got.sort_unstable();
    assert_eq!(got, expected);
}

/// A build of the tiny fixture published while a client keeps querying: no request fails,
/// and the server moves to the new generation on its own.
#[test]
fn a_published_generation_is_switched_to_without_a_failed_request() {
    let data = tiny();
    let out = tempdir();
    let paths = paths(data.path(), out.path());
    build(&paths, &BuildOptions::default()).expect("first build");
    let server = Arc::new(Server::start(
        data.path(),
        &paths.index,
        &sqlite(out.path()),
        &["--watch", "0.2"],
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let generations = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (server, stop, answered, failed, generations) = (
                Arc::clone(&server),
                Arc::clone(&stop),
                Arc::clone(&answered),
                Arc::clone(&failed),
                Arc::clone(&generations),
            );
            std::thread::spawn(move || {
                let client = client();
                while !stop.load(Ordering::Relaxed) {
                    match client.get(server.url("/v1/search?q=toy&k=3")).send() {
                        Ok(r) if r.status() == StatusCode::OK => {
                            let generation = r
                                .headers()
                                .get("x-reelrank-generation")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string();
                            let mut seen = generations.lock().expect("lock");
                            if seen.last() != Some(&generation) {
                                seen.push(generation);
                            }
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    build(&paths, &BuildOptions::default()).expect("second build");
    let published = std::fs::read_to_string(paths.index.join("CURRENT")).expect("CURRENT");
    let deadline = Instant::now() + Duration::from_secs(30);
    let switched = loop {
        let (_, ready) = get(&server, "/readyz");
        if ready["generation"] == published.trim() || Instant::now() > deadline {
            break ready["generation"] == published.trim();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client");
    }
    assert!(switched, "the server did not move to {published}");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed requests");
    assert!(answered.load(Ordering::Relaxed) > 20);
    let seen = generations.lock().expect("lock").clone();
    assert!(seen.len() >= 2, "answers came from {seen:?}");
    let text = client()
        .get(server.url("/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    assert!(text.contains("reelrank_index_switches_total 1"), "{text}");
    assert!(
        text.contains(&format!(
            "reelrank_index_generation{{generation=\"{}\"}} 1",
            published.trim()
        )),
        "{text}"
    );

    // The admin endpoint: nothing newer to switch to now; a wrong token is refused.
    let response = client()
        .post(server.url("/v1/admin/reload"))
        .bearer_auth(TOKEN)
        .send()
        .expect("reload");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().expect("json");
    assert_eq!(body["switched"], false);
    let response = client()
        .post(server.url("/v1/admin/reload"))
        .bearer_auth("wrong-token-of-some-length")
        .send()
        .expect("reload");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// `build` takes the store's profiles in as users of the next index (the offline loop).
#[test]
fn build_takes_in_the_profiles_of_the_store() {
    let data = tiny();
    let out = tempdir();
    let paths = paths(data.path(), out.path());
    let store = reelrank::profiles::ProfileStore::open(&paths.store).expect("store");
    store.ensure_profile("alice").expect("profile");
    store.set_rating("alice", 1, 5.0).expect("rate");
    store
        .set_rating("alice", 999_999, 4.0)
        .expect("rate an unknown movie");
    let manifest = build(&paths, &BuildOptions::default()).expect("build");
    let people = manifest.people.expect("people recorded");
    assert_eq!(
        (
            people.added.people,
            people.added.ratings,
            people.added.dropped
        ),
        (1, 1, 1)
    );
    let engine = reelrank::Engine::open(&paths).expect("open");
    let stack = engine.stack().expect("stack");
    assert!(stack.knows_user(people.added.first_user));
}

/// The URL of the PostgreSQL the test script started.
fn postgres_url() -> String {
    std::env::var("REELRANK_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "REELRANK_TEST_POSTGRES is not set: run the tests with scripts/test.sh, which installs \
             and starts PostgreSQL (Debian's postgresql package) and sets it"
        )
    })
}

#[test]
fn two_replicas_share_one_postgres() {
    let url = postgres_url();
    let a = Server::start(&real_data(), &real_index_dir(), &url, &[]);
    let b = Server::start(&real_data(), &real_index_dir(), &url, &[]);
    let profile = create_profile(&a);
    for movie in [1, 2355, 3114, 4886, 6377] {
        assert_eq!(rate(&a, &profile, movie, 5.0), StatusCode::OK);
    }
    let (status, body) = get(&b, &format!("/v1/profiles/{profile}"));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ratings"].as_array().expect("ratings").len(), 5);
    let (status, body) = get(&b, &format!("/v1/recommend?profile={profile}"));
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids = result_ids(&body);
    assert!(ids
        .iter()
        .all(|id| ![1, 2355, 3114, 4886, 6377].contains(id)));
    // A rating written through B is seen by A's next answer.
    assert_eq!(rate(&b, &profile, 260, 1.0), StatusCode::OK);
    let (_, body) = get(&a, &format!("/v1/profiles/{profile}"));
    assert!(body["ratings"]
        .as_array()
        .expect("ratings")
        .contains(&json!({ "movie_id": 260, "rating": 1.0 })));
    let (_, body) = get(&a, &format!("/v1/recommend?profile={profile}&k=50"));
    assert!(!result_ids(&body).contains(&260));
}
