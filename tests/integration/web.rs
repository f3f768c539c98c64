//! The web page in a real browser: headless Chromium from Debian's packages, driven through
//! chromedriver (WebDriver, fantoccini) against `reelrank serve` on the real index. Screenshots
//! at desktop and phone width are saved under `target/tmp/screenshots/` (not committed).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::common::tempdir;
use crate::server::Server;

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_driver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start chromedriver ({e}): run the tests with scripts/test.sh, which \
                 installs Debian's chromium and chromium-driver"
            )
        });
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::blocking::get(format!("{url}/status")).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver { child, url }
}

async fn browser(driver: &Driver, profile_dir: &std::path::Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("REELRANK_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile_dir.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a headless Chromium session")
}

/// Runs `script` (a JavaScript expression body returning a value) until `done` accepts its
/// result, for up to 20 s.
async fn wait_for(
    client: &Client,
    script: &str,
    done: impl Fn(&Value) -> bool,
    what: &str,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let value = client.execute(script, Vec::new()).await.expect("script");
        if done(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: last {value}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A script returning the cards of the list `list` (a CSS selector): `[{id, genres: [..],
/// year}]`.
fn cards_script(list: &str) -> String {
    format!(
        "return [...document.querySelectorAll('{list} .card')].map(c => ({{id: \
         Number(c.dataset.movieId), genres: c.dataset.genres.split('|'), year: \
         Number(c.dataset.year)}}));"
    )
}

async fn cards(client: &Client, list: &str) -> Vec<Value> {
    client
        .execute(&cards_script(list), Vec::new())
        .await
        .expect("cards")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn with_genre(cards: &[Value], genre: &str) -> usize {
    cards
        .iter()
        .filter(|c| {
            c["genres"]
                .as_array()
                .is_some_and(|g| g.iter().any(|x| x == genre))
        })
        .count()
}

/// Types `text` into the search box (replacing what is there) and waits for the answer to it.
async fn type_query(client: &Client, text: &str) {
    let query = client.find(Locator::Id("q")).await.expect("search box");
    query.clear().await.expect("clear");
    query.send_keys(text).await.expect("type");
    wait_for(
        client,
        "return document.getElementById('results-section').dataset.query;",
        |v| v.as_str() == Some(text.trim()),
        "search results",
    )
    .await;
}

/// Clicks the Like button of the movie `id` in the results and waits for the For-you row to
/// count `ratings` ratings.
async fn like(client: &Client, id: u32, ratings: usize) {
    let button = client
        .find(Locator::Css(&format!(
            "#results .card[data-movie-id='{id}'] button.like"
        )))
        .await
        .unwrap_or_else(|_| panic!("movie {id} among the results"));
    button.click().await.expect("click like");
    let expected = format!("{ratings} rating");
    wait_for(
        client,
        "return document.getElementById('profile-line').textContent;",
        |v| v.as_str().is_some_and(|s| s.contains(&expected)),
        "the rating to be saved",
    )
    .await;
}

fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

#[test]
fn the_page_searches_rates_and_recommends_in_a_real_browser() {
    let dir = tempdir();
    // An A/A experiment: the For-you row is the candidate ranker's either way, and the page
    // must report what is done with it.
    let store = format!("sqlite://{}", dir.path().join("people.sqlite").display());
    let server = Server::start(
        &crate::common::real_data(),
        &crate::common::real_index_dir(),
        &store,
        &["--experiment", "page=A:candidate,B:candidate"],
    );
    let driver = start_driver();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = browser(&driver, &dir.path().join("chromium")).await;
        client.goto(&server.url("/")).await.expect("open the page");
        wait_for(&client, "return document.body.dataset.ready;", |v| v == "true", "the page").await;
        // First visit: a row of popular movies across genres to rate, the search box focused.
        let first = cards(&client, "#onboarding-list").await;
        assert!(first.len() >= 10, "{first:?}");
        let focused = client
            .execute("return document.activeElement.id;", Vec::new())
            .await
            .expect("focus");
        assert_eq!(focused, "q");

        // The notebook's query: mostly Sci-Fi.
        type_query(&client, "space travel and futuristic wars").await;
        let results = cards(&client, "#results").await;
        let top: Vec<Value> = results.iter().take(10).cloned().collect();
        assert!(with_genre(&top, "Sci-Fi") >= 7, "{top:?}");

        // A filter changes the results: every one a comedy of the 1990s.
        client
            .find(Locator::Id("genre"))
            .await
            .expect("genre filter")
            .select_by_value("Comedy")
            .await
            .expect("select Comedy");
        let from = client.find(Locator::Id("year-from")).await.expect("from");
        from.send_keys("1990").await.expect("type");
        let to = client.find(Locator::Id("year-to")).await.expect("to");
        to.send_keys("1999\t").await.expect("type");
        let filtered = wait_for(
            &client,
            &cards_script("#results"),
            |v| {
                v.as_array().is_some_and(|cards| {
                    !cards.is_empty()
                        && cards.iter().all(|c| {
                            c["genres"].as_array().is_some_and(|g| g.iter().any(|x| x == "Comedy"))
                                && (1990..=1999).contains(&c["year"].as_u64().unwrap_or(0))
                        })
                })
            },
            "filtered results",
        )
        .await;
        let filtered_ids: Vec<u64> = filtered
            .as_array()
            .expect("cards")
            .iter()
            .map(|c| c["id"].as_u64().expect("id"))
            .collect();
        let unfiltered_ids: Vec<u64> = results.iter().map(|c| c["id"].as_u64().expect("id")).collect();
        assert_ne!(filtered_ids, unfiltered_ids);
        client
            .find(Locator::Id("genre"))
            .await
            .expect("genre filter")
            .select_by_value("")
            .await
            .expect("any genre");
        for id in ["year-from", "year-to"] {
            client.find(Locator::Id(id)).await.expect("year").clear().await.expect("clear");
        }

        // Three Pixar films liked: the For-you row fills with animated films.
        for (query, id, count) in [("toy story", 1, 1), ("finding nemo", 6377, 2), ("monsters inc", 4886, 3)] {
            type_query(&client, query).await;
            like(&client, id, count).await;
        }
        wait_for(
            &client,
            "return document.getElementById('for-you').dataset.ratings;",
            |v| v == "3",
            "the For-you row of three ratings",
        )
        .await;
        let for_you = cards(&client, "#for-you-list").await;
        assert_eq!(for_you.len(), 10);
        assert!(with_genre(&for_you, "Animation") >= 5, "{for_you:?}");
        assert!(for_you.iter().all(|c| ![1, 6377, 4886].contains(&c["id"].as_u64().unwrap_or(0))));

        // "More like this" answers with the movie's neighbours.
        client
            .find(Locator::Css("#for-you-list .card button.more"))
            .await
            .expect("More like this")
            .click()
            .await
            .expect("click");
        wait_for(
            &client,
            "return document.getElementById('results-title').textContent;",
            |v| v.as_str().is_some_and(|s| s.starts_with("More like")),
            "More like this",
        )
        .await;

        // The ratings survive a reload: the profile id is kept by the browser.
        client.refresh().await.expect("reload");
        wait_for(&client, "return document.body.dataset.ready;", |v| v == "true", "the page").await;
        let line = client
            .execute("return document.getElementById('profile-line').textContent;", Vec::new())
            .await
            .expect("profile line");
        assert!(line.as_str().is_some_and(|s| s.contains("3 ratings")), "{line}");
        wait_for(
            &client,
            "return document.getElementById('for-you').dataset.ratings;",
            |v| v == "3",
            "the For-you row after the reload",
        )
        .await;
        let again = cards(&client, "#for-you-list").await;
        assert_eq!(again, for_you, "the same profile, the same recommendations");

        // Screenshots at desktop and phone width, then no error raised by the page.
        let shots = screenshot_dir();
        type_query(&client, "space travel and futuristic wars").await;
        std::fs::write(shots.join("desktop.png"), client.screenshot().await.expect("shot"))
            .expect("write");
        client.set_window_size(390, 844).await.expect("phone width");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let overflow = client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                Vec::new(),
            )
            .await
            .expect("width");
        assert!(overflow.as_i64().unwrap_or(1) <= 0, "the page scrolls sideways at phone width: {overflow}");
        std::fs::write(shots.join("phone.png"), client.screenshot().await.expect("shot"))
            .expect("write");
        let errors = client
            .execute("return window.reelrankErrors;", Vec::new())
            .await
            .expect("errors");
        assert_eq!(errors, json!([]));
        client.close().await.expect("close");
    });
    // The page's For-you rows were logged as impressions of the experiment, and its "More like
    // this" click as an event.
    let report = crate::common::json_output(crate::common::real_cli().args([
        "--store",
        &store,
        "experiment",
        "report",
        "page",
        "--json",
    ]));
    let arms = &report["segments"][0]["arms"];
    let lists = arms[0]["lists"].as_u64().unwrap_or(0) + arms[1]["lists"].as_u64().unwrap_or(0);
    let clicks = arms[0]["clicks"].as_u64().unwrap_or(0) + arms[1]["clicks"].as_u64().unwrap_or(0);
    assert!(lists >= 3, "{report}");
    assert_eq!(clicks, 1, "{report}");
}
