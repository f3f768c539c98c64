//! Experiments online: `recommend` under an experiment (A/B or team-draft interleaving), the
//! impressions it shows logged to the store, and `POST /v1/events` for what people do.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::api::{blocking, json_body, with_generation};
use super::{ApiError, AppState};
use crate::engine::{Engine, Ranker, RecommendRequest};
use crate::experiment::{team_draft, Arm, Mode};
use crate::profiles::{check_rating_value, now_ms, random_id, ExperimentEvent, INTERACTIONS};

/// `recommend` for `subject` under experiment `name`: the arm's ranker (A/B), or both
/// rankers' lists merged by team draft (interleaving). Every movie shown is logged as an
/// impression of a new list id, which the answer carries for the events that follow.
pub(super) async fn recommend(
    app: &Arc<AppState>,
    engine: Arc<Engine>,
    request: RecommendRequest,
    name: &str,
    subject: String,
) -> Result<Response, ApiError> {
    let experiment = app
        .experiments
        .iter()
        .find(|e| e.name == name)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<&str> = app.experiments.iter().map(|e| e.name.as_str()).collect();
            ApiError::not_found(
                "experiment",
                format!(
                    "no experiment '{name}' running (running: {})",
                    known.join(", ")
                ),
            )
        })?;
    let list_id = random_id();
    let worker = Arc::clone(&engine);
    let person = subject.clone();
    let (response, shown, history) = {
        let experiment = experiment.clone();
        blocking(move || {
            let history = worker.rated_count(&request.person)?;
            let answer_of = |ranker: Ranker| {
                worker.recommend(&RecommendRequest {
                    ranker,
                    ..request.clone()
                })
            };
            match experiment.mode {
                Mode::Ab => {
                    let arm = experiment.assign(&person);
                    let response = answer_of(experiment.ranker(arm))?;
                    let shown: Vec<(u32, Option<Arm>, Arm)> = response
                        .results
                        .iter()
                        .map(|r| (r.movie_id, None, arm))
                        .collect();
                    Ok((response, shown, history))
                }
                Mode::Interleave => {
                    let (a, b) = (answer_of(experiment.a)?, answer_of(experiment.b)?);
                    let ids = |r: &crate::engine::Response| -> Vec<u32> {
                        r.results.iter().map(|m| m.movie_id).collect()
                    };
                    // The coin of each round is seeded by who asks in which state, so a
                    // replay interleaves alike.
                    let seed = format!("{}:{person}:{history}", experiment.name);
                    let merged = team_draft(&ids(&a), &ids(&b), request.k, &seed);
                    let mut response = a.clone();
                    response.results = merged
                        .iter()
                        .enumerate()
                        .filter_map(|(i, &(movie, team))| {
                            let from = if team == Arm::A { &a } else { &b };
                            let mut result =
                                from.results.iter().find(|r| r.movie_id == movie)?.clone();
                            result.rank = i + 1;
                            Some(result)
                        })
                        .collect();
                    response.stack = Some("interleaved");
                    let shown = merged.iter().map(|&(m, t)| (m, Some(t), t)).collect();
                    Ok((response, shown, history))
                }
            }
        })
        .await?
    };
    let at_ms = now_ms();
    let events: Vec<ExperimentEvent> = shown
        .iter()
        .enumerate()
        .map(|(i, &(movie_id, team, arm))| ExperimentEvent {
            experiment: experiment.name.clone(),
            arm: match experiment.mode {
                Mode::Ab => arm.name().to_string(),
                Mode::Interleave => "interleave".to_string(),
            },
            ranker: experiment.ranker(arm).name().to_string(),
            subject: subject.clone(),
            list_id: list_id.clone(),
            kind: crate::profiles::IMPRESSION.to_string(),
            movie_id,
            position: i as u32 + 1,
            team: team.map(|t| t.name().to_string()),
            history: history as u32,
            rating: None,
            at_ms,
        })
        .collect();
    let store = Arc::clone(&app.store);
    let logged = events.clone();
    blocking(move || store.record_events(&logged)).await?;
    let teams: Vec<Option<&'static str>> = shown.iter().map(|s| s.1.map(Arm::name)).collect();
    let arm = match experiment.mode {
        Mode::Ab => shown.first().map(|s| s.2.name()),
        Mode::Interleave => None,
    };
    // The answer as JSON, with the experiment and each result's team added.
    app.metrics.stages(&response.timings_ms);
    let mut json = serde_json::to_value(&response)
        .map_err(|e| ApiError::internal(format!("serialising the answer: {e}")))?;
    json["experiment"] = serde_json::json!({
        "name": experiment.name,
        "mode": experiment.mode,
        "arm": arm,
        "list_id": list_id,
    });
    if let Some(results) = json["results"].as_array_mut() {
        for (result, team) in results.iter_mut().zip(&teams) {
            if let Some(team) = team {
                result["team"] = serde_json::json!(team);
            }
        }
    }
    Ok(with_generation(Json(json).into_response(), &engine))
}

/// The experiments running: `{"experiments": [{"name", "a", "b", "mode"}]}` (the web page
/// runs its For-you row under the first).
pub(super) async fn list(State(app): State<Arc<AppState>>) -> Response {
    let experiments: Vec<serde_json::Value> = app
        .experiments
        .iter()
        .map(|e| {
            serde_json::json!({
                "name": e.name,
                "a": e.a.name(),
                "b": e.b.name(),
                "mode": e.mode,
            })
        })
        .collect();
    Json(serde_json::json!({ "experiments": experiments })).into_response()
}

/// The body of `POST /v1/events`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    list_id: String,
    movie_id: u32,
    kind: String,
    rating: Option<f32>,
}

/// Records what a person did with a movie an experiment showed them: `{"list_id",
/// "movie_id", "kind": "click"|"like"|"dislike"|"rating", "rating"}`.
pub(super) async fn event(
    State(app): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: EventBody = json_body(&body)?;
    if !INTERACTIONS.contains(&body.kind.as_str()) {
        return Err(ApiError::invalid(
            "kind",
            format!(
                "'{}' is not one of {}",
                body.kind.chars().take(40).collect::<String>(),
                INTERACTIONS.join(", ")
            ),
        ));
    }
    match (body.kind.as_str(), body.rating) {
        ("rating", Some(r)) => check_rating_value(r, "rating")?,
        ("rating", None) => {
            return Err(ApiError::invalid(
                "rating",
                "a rating event needs its rating",
            ))
        }
        (_, Some(_)) => {
            return Err(ApiError::invalid(
                "rating",
                "only a rating event has a rating",
            ))
        }
        _ => {}
    }
    let store = Arc::clone(&app.store);
    let shown: String = body.list_id.chars().take(40).collect();
    let movie = body.movie_id;
    let recorded =
        blocking(move || store.record_interaction(&body.list_id, movie, &body.kind, body.rating))
            .await?
            .ok_or_else(|| {
                ApiError::not_found(
                    "list_id",
                    format!("list '{shown}' did not show movie {movie}"),
                )
            })?;
    Ok((StatusCode::CREATED, Json(recorded)).into_response())
}
