//! The routes of `reelrank serve` and their handlers.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use super::params::Params;
use super::{experiments, web};
use super::{ApiError, AppState};
use crate::engine::person::{stored_ratings_known, DISLIKE_RATING, LIKE_RATING};
use crate::engine::{
    Engine, MovieRef, PersonSpec, Ranker, RecommendRequest, SearchMode, SearchRequest,
    SimilarRequest, DEFAULT_K, DEFAULT_QUERY_CANDIDATES,
};
use crate::onboard::{diverse_popular, OnboardConfig};
use crate::profiles::{check_profile_id, check_rating_value, ProfileRating};
use crate::rank::stack::StackKind;
use crate::rank::{Filters, YearRange};

/// The OpenAPI description of these routes, written by hand: the engine's request and
/// response types stay free of HTTP schema derives, and a test checks every route is in it.
const OPENAPI: &str = include_str!("openapi.json");

/// The header naming the index generation that answered.
const GENERATION_HEADER: &str = "x-reelrank-generation";

/// Most ratings a profile may be created with in one request.
const MAX_INITIAL_RATINGS: usize = 1000;

/// Every route; [`super::router`] adds the layers around them.
pub(crate) fn routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/search", get(search))
        .route("/v1/recommend", get(recommend))
        .route("/v1/similar", get(similar))
        .route("/v1/movies/{movie}", get(movie))
        .route("/v1/profiles", post(create_profile))
        .route("/v1/profiles/{profile}", get(profile))
        .route(
            "/v1/profiles/{profile}/ratings/{movie}",
            put(set_rating).delete(delete_rating),
        )
        .route("/v1/genres", get(genres))
        .route("/v1/onboarding", get(onboarding))
        .route("/v1/events", post(experiments::event))
        .route("/v1/experiments", get(experiments::list))
        .route("/v1/admin/reload", post(reload))
        .route("/v1/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(web::page))
        .route("/app.js", get(web::script))
        .route("/style.css", get(web::style))
        .route_layer(from_fn_with_state(Arc::clone(&state), observe))
        .fallback(no_route)
        .with_state(state)
}

/// Counts each answered request by its route (the pattern, not the path: ids stay out of
/// the labels).
async fn observe(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let method = request.method().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    app.metrics.request(
        &route,
        &method,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

async fn no_route(State(app): State<Arc<AppState>>, request: Request) -> ApiError {
    app.metrics
        .request("unmatched", request.method().as_str(), 404, 0.0);
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "no_route",
        parameter: None,
        message: format!(
            "no route {} {}; see /v1/openapi.json",
            request.method(),
            request.uri().path().chars().take(200).collect::<String>()
        ),
    }
}

/// Runs engine or store work on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the engine task failed: {e}")))?
        .map_err(ApiError::from)
}

/// An engine answer as JSON, its stage timings recorded, the generation in a header.
pub(super) fn answer(
    app: &AppState,
    engine: &Engine,
    response: crate::engine::Response,
) -> Response {
    app.metrics.stages(&response.timings_ms);
    with_generation(Json(response).into_response(), engine)
}

/// `http` with the header naming the generation that answered.
pub(super) fn with_generation(mut http: Response, engine: &Engine) -> Response {
    if let Ok(value) = HeaderValue::from_str(engine.index().generation()) {
        http.headers_mut().insert(GENERATION_HEADER, value);
    }
    http
}

fn filters(params: &Params) -> Result<Filters, ApiError> {
    Ok(Filters {
        genres: params.all("genre"),
        years: params
            .get("year")
            .map(YearRange::parse)
            .transpose()
            .map_err(ApiError::from)?,
    })
}

/// Who a request is for: `user=` (a MovieLens userId) or `profile=` (an id of the store,
/// whose ratings are read now, so a rating counts from the next request on).
async fn person(
    app: &Arc<AppState>,
    engine: &Engine,
    params: &Params,
) -> Result<PersonSpec, ApiError> {
    let user = params.parsed::<u32>("user", "a userId")?;
    match (user, params.get("profile")) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "profile",
            "give user or profile, not both",
        )),
        (Some(user), None) => Ok(PersonSpec::user(user)),
        (None, Some(id)) => {
            let ratings = profile_ratings(app, id).await?;
            Ok(PersonSpec {
                ratings: stored_ratings_known(engine.index().catalog(), ratings),
                ..PersonSpec::default()
            })
        }
        (None, None) => Ok(PersonSpec::default()),
    }
}

async fn profile_ratings(app: &Arc<AppState>, id: &str) -> Result<Vec<ProfileRating>, ApiError> {
    check_profile_id(id, "profile")?;
    let store = Arc::clone(&app.store);
    let key = id.to_string();
    blocking(move || store.ratings(&key))
        .await?
        .ok_or_else(|| ApiError::not_found("profile", format!("no profile '{id}'")))
}

/// The parameters search and similar share: [`Ranking`]'s and who the answer is for.
const RANKING_PARAMS: [&str; 9] = [
    "k",
    "candidates",
    "alpha",
    "genre",
    "year",
    "user",
    "profile",
    "personal_weight",
    "stack",
];

/// The ranking parameters search and similar share.
struct Ranking {
    k: usize,
    candidates: usize,
    alpha: f32,
    personal_weight: Option<f64>,
    stack: Option<StackKind>,
    filters: Filters,
}

impl Ranking {
    /// Reads `k`, `candidates`, `alpha`, `personal_weight`, `stack`, `genre` and `year`, with
    /// the request's default for alpha (the engine checks the ranges).
    fn of(params: &Params, alpha: f32) -> Result<Ranking, ApiError> {
        Ok(Ranking {
            k: params.parsed("k", "a count")?.unwrap_or(DEFAULT_K),
            candidates: params
                .parsed("candidates", "a count")?
                .unwrap_or(DEFAULT_QUERY_CANDIDATES),
            alpha: params.parsed("alpha", "a number")?.unwrap_or(alpha),
            personal_weight: params.parsed("personal_weight", "a number")?,
            stack: params.choice::<StackKind>("stack")?,
            filters: filters(params)?,
        })
    }
}

/// What search takes besides [`RANKING_PARAMS`].
const SEARCH_PARAMS: [&str; 5] = ["q", "mode", "exact", "intent", "feedback"];

async fn search(
    State(app): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(
        query.as_deref(),
        &[&RANKING_PARAMS[..], &SEARCH_PARAMS].concat(),
        &["genre"],
    )?;
    let engine = app.engine();
    let mut request = SearchRequest::new(params.required("q")?);
    let ranking = Ranking::of(&params, request.alpha)?;
    (request.k, request.candidates, request.alpha) = (ranking.k, ranking.candidates, ranking.alpha);
    (request.personal_weight, request.stack) = (ranking.personal_weight, ranking.stack);
    request.filters = ranking.filters;
    if let Some(weight) = params.parsed("feedback", "a number")? {
        request.feedback = weight;
    }
    request.mode = params.choice::<SearchMode>("mode")?.unwrap_or_default();
    request.exact = params.parsed("exact", "true or false")?.unwrap_or(false);
    request.intent = params.parsed("intent", "true or false")?.unwrap_or(true);
    // Refuse a bad query before reading the profile.
    request.validate().map_err(ApiError::from)?;
    request.person = person(&app, &engine, &params).await?;
    let worker = Arc::clone(&engine);
    let response = blocking(move || worker.search(&request)).await?;
    Ok(answer(&app, &engine, response))
}

/// What similar takes besides [`RANKING_PARAMS`].
const SIMILAR_PARAMS: [&str; 2] = ["movie", "title"];

async fn similar(
    State(app): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(
        query.as_deref(),
        &[&RANKING_PARAMS[..], &SIMILAR_PARAMS].concat(),
        &["genre"],
    )?;
    let engine = app.engine();
    let movie = match (
        params.parsed::<u32>("movie", "a movieId")?,
        params.get("title"),
    ) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("title", "give movie or title, not both"))
        }
        (Some(id), None) => MovieRef::Id(id),
        (None, Some(title)) => MovieRef::Title(title.to_string()),
        (None, None) => {
            return Err(ApiError::invalid(
                "movie",
                "give movie (a movieId) or title",
            ))
        }
    };
    let mut request = SimilarRequest::new(movie);
    let ranking = Ranking::of(&params, request.alpha)?;
    (request.k, request.candidates, request.alpha) = (ranking.k, ranking.candidates, ranking.alpha);
    (request.personal_weight, request.stack) = (ranking.personal_weight, ranking.stack);
    request.filters = ranking.filters;
    request.person = person(&app, &engine, &params).await?;
    let worker = Arc::clone(&engine);
    let response = blocking(move || worker.similar(&request)).await?;
    Ok(answer(&app, &engine, response))
}

const RECOMMEND_PARAMS: [&str; 7] = [
    "user",
    "profile",
    "k",
    "genre",
    "year",
    "ranker",
    "experiment",
];

async fn recommend(
    State(app): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref(), &RECOMMEND_PARAMS, &["genre"])?;
    let engine = app.engine();
    if params.get("user").is_none() && params.get("profile").is_none() {
        return Err(ApiError::invalid(
            "user",
            "give user (a userId) or profile (a profile id)",
        ));
    }
    let mut request = RecommendRequest::new(person(&app, &engine, &params).await?);
    if request.person.is_empty() {
        return Err(ApiError::invalid(
            "profile",
            "the profile has no rating yet: rate a movie first",
        ));
    }
    request.k = params.parsed("k", "a count")?.unwrap_or(DEFAULT_K);
    request.filters = filters(&params)?;
    if let Some(ranker) = params.get("ranker") {
        request.ranker = Ranker::parse(ranker, "ranker")?;
    }
    if let Some(name) = params.get("experiment") {
        if params.get("ranker").is_some() {
            return Err(ApiError::invalid(
                "ranker",
                "an experiment chooses the ranker: give ranker or experiment, not both",
            ));
        }
        // Checked above: one of the two is given.
        let subject = params
            .get("user")
            .map(|user| format!("user:{user}"))
            .or_else(|| params.get("profile").map(|id| format!("profile:{id}")))
            .unwrap_or_default();
        return experiments::recommend(&app, engine, request, name, subject).await;
    }
    let worker = Arc::clone(&engine);
    let response = blocking(move || worker.recommend(&request)).await?;
    Ok(answer(&app, &engine, response))
}

fn movie_id(text: &str) -> Result<u32, ApiError> {
    text.parse::<u32>().map_err(|_| {
        ApiError::invalid(
            "movie",
            format!(
                "'{}' is not a movieId",
                text.chars().take(40).collect::<String>()
            ),
        )
    })
}

async fn movie(
    State(app): State<Arc<AppState>>,
    Path(movie): Path<String>,
) -> Result<Response, ApiError> {
    let id = movie_id(&movie)?;
    let engine = app.engine();
    let details = engine.movie(id).map_err(ApiError::from)?;
    Ok(Json(details).into_response())
}

async fn genres(State(app): State<Arc<AppState>>) -> Response {
    let engine = app.engine();
    Json(serde_json::json!({ "genres": engine.index().catalog().genres() })).into_response()
}

/// Most movies the onboarding row may ask for.
const MAX_ONBOARDING: usize = 100;

/// Popular movies across genres for a first visit to rate (notebook 003's phase one, as
/// `reelrank onboard` shows them), leaving out what the profile rated.
async fn onboarding(
    State(app): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref(), &["k", "profile"], &[])?;
    let k: usize = params.parsed("k", "a count")?.unwrap_or(24);
    if !(1..=MAX_ONBOARDING).contains(&k) {
        return Err(ApiError::invalid(
            "k",
            format!("{k} is not within 1..={MAX_ONBOARDING}"),
        ));
    }
    let rated: Vec<u32> = match params.get("profile") {
        Some(id) => profile_ratings(&app, id)
            .await?
            .iter()
            .map(|r| r.movie_id)
            .collect(),
        None => Vec::new(),
    };
    let engine = app.engine();
    let worker = Arc::clone(&engine);
    let movies = blocking(move || {
        let catalog = worker.index().catalog();
        let exclude = rated
            .iter()
            .filter_map(|&id| catalog.position(id).map(|p| p as u32))
            .collect();
        let config = OnboardConfig {
            to_rate: k,
            ..OnboardConfig::default()
        };
        diverse_popular(worker.index(), worker.stack()?, &config, &exclude)
            .into_iter()
            .map(|p| worker.movie(catalog.movies[p as usize].movie.id))
            .collect::<crate::Result<Vec<_>>>()
    })
    .await?;
    Ok(Json(serde_json::json!({ "movies": movies })).into_response())
}

/// The optional body of `POST /v1/profiles`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewProfile {
    #[serde(default)]
    ratings: Vec<ProfileRating>,
}

/// The body of `PUT /v1/profiles/{id}/ratings/{movie}`: a rating, or a like (5) or dislike (1).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RatingBody {
    rating: Option<f32>,
    like: Option<bool>,
}

pub(super) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("malformed JSON: {e}")))
}

/// Refuses a movie the index in use does not hold.
fn known_movie(engine: &Engine, id: u32) -> Result<(), ApiError> {
    match engine.index().catalog().position(id) {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(
            "movie",
            format!("no movie with movieId {id}"),
        )),
    }
}

fn profile_json(id: &str, ratings: &[ProfileRating]) -> serde_json::Value {
    serde_json::json!({ "id": id, "ratings": ratings })
}

async fn create_profile(
    State(app): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let new: NewProfile = if body.iter().all(u8::is_ascii_whitespace) {
        NewProfile::default()
    } else {
        json_body(&body)?
    };
    if new.ratings.len() > MAX_INITIAL_RATINGS {
        return Err(ApiError::invalid(
            "ratings",
            format!(
                "{} ratings; at most {MAX_INITIAL_RATINGS} at once",
                new.ratings.len()
            ),
        ));
    }
    let engine = app.engine();
    for r in &new.ratings {
        known_movie(&engine, r.movie_id)?;
        check_rating_value(r.rating, "rating")?;
    }
    let store = Arc::clone(&app.store);
    let ratings = new.ratings.clone();
    let id = blocking(move || {
        let id = store.create_profile()?;
        store.set_ratings(&id, &ratings)?;
        Ok(id)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(profile_json(&id, &new.ratings))).into_response())
}

async fn profile(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let ratings = profile_ratings(&app, &id).await?;
    Ok(Json(profile_json(&id, &ratings)).into_response())
}

async fn set_rating(
    State(app): State<Arc<AppState>>,
    Path((id, movie)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_profile_id(&id, "profile")?;
    let movie_id = movie_id(&movie)?;
    known_movie(&app.engine(), movie_id)?;
    let body: RatingBody = json_body(&body)?;
    let rating = match (body.rating, body.like) {
        (Some(rating), None) => rating,
        (None, Some(true)) => LIKE_RATING,
        (None, Some(false)) => DISLIKE_RATING,
        _ => {
            return Err(ApiError::invalid(
                "body",
                "give {\"rating\": 0.5..5} or {\"like\": true|false}",
            ))
        }
    };
    check_rating_value(rating, "rating")?;
    let store = Arc::clone(&app.store);
    let key = id.clone();
    if !blocking(move || store.set_rating(&key, movie_id, rating)).await? {
        return Err(ApiError::not_found("profile", format!("no profile '{id}'")));
    }
    Ok(
        Json(serde_json::json!({ "id": id, "movie_id": movie_id, "rating": rating }))
            .into_response(),
    )
}

async fn delete_rating(
    State(app): State<Arc<AppState>>,
    Path((id, movie)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_profile_id(&id, "profile")?;
    let movie_id = movie_id(&movie)?;
    let store = Arc::clone(&app.store);
    let key = id.clone();
    match blocking(move || store.delete_rating(&key, movie_id)).await? {
        None => Err(ApiError::not_found("profile", format!("no profile '{id}'"))),
        Some(false) => Err(ApiError::not_found(
            "movie",
            format!("profile '{id}' has no rating of movie {movie_id}"),
        )),
        Some(true) => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Whether two byte strings are equal, in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn reload(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(token) = app.admin_token.as_deref() else {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "admin_disabled",
            parameter: None,
            message: "administrative endpoints are off: start the server with --admin-token".into(),
        });
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same_secret(given.as_bytes(), token.as_bytes()) {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            parameter: Some("authorization".into()),
            message: "a valid 'Authorization: Bearer TOKEN' header is required".into(),
        });
    }
    match app.reload().await {
        Ok((from, to)) => Ok(Json(serde_json::json!({
            "switched": from != to,
            "from": from,
            "to": to,
        }))
        .into_response()),
        Err(e) => {
            app.metrics.reload_failed();
            Err(e)
        }
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// Ready when the engine is loaded (always, once the server listens) and the database answers.
async fn readyz(State(app): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let store = Arc::clone(&app.store);
    blocking(move || store.schema_version()).await?;
    let engine = app.engine();
    Ok(Json(serde_json::json!({
        "status": "ready",
        "generation": engine.index().generation(),
        "movies": engine.index().catalog().movies.len(),
    }))
    .into_response())
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let text = app.metrics.encode(app.engine().query_cache_stats());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }

    #[test]
    fn every_route_is_described() {
        let spec: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        let paths = spec["paths"].as_object().expect("paths");
        for (path, methods) in [
            ("/v1/search", &["get"][..]),
            ("/v1/recommend", &["get"]),
            ("/v1/similar", &["get"]),
            ("/v1/movies/{movie}", &["get"]),
            ("/v1/profiles", &["post"]),
            ("/v1/profiles/{profile}", &["get"]),
            ("/v1/profiles/{profile}/ratings/{movie}", &["put", "delete"]),
            ("/v1/admin/reload", &["post"]),
            ("/v1/openapi.json", &["get"]),
            ("/healthz", &["get"]),
            ("/readyz", &["get"]),
            ("/metrics", &["get"]),
            ("/v1/genres", &["get"]),
            ("/v1/onboarding", &["get"]),
            ("/v1/events", &["post"]),
            ("/v1/experiments", &["get"]),
        ] {
            for method in methods {
                assert!(paths[path].get(method).is_some(), "{method} {path} missing");
            }
        }
        assert_eq!(paths.len(), 16, "a path described that the server lacks");
    }
}
