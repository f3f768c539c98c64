//! `reelrank serve`: the engine online. An axum server over one loaded [`Engine`] (model,
//! index and serving stack loaded once), the profile database, Prometheus metrics, and a
//! switch to a newly published index generation that drops no request.
//!
//! Handlers only parse, call the engine (on tokio's blocking pool: every engine call is CPU
//! work of milliseconds) and serialise; the result shape is the CLI's `--json`.

mod api;
mod error;
mod experiments;
mod metrics;
mod params;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::http::{HeaderName, StatusCode};
use axum::Router;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

use crate::config::Paths;
use crate::engine::{BuildOptions, Engine};
use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::profiles::ProfileStore;
use crate::store::MovieIndex;
use metrics::Metrics;

/// Largest request body accepted (a rating or a profile's first ratings).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A request taking longer is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served at once; more wait their turn (2 cores: more in flight only adds latency).
pub const MAX_IN_FLIGHT: usize = 64;
/// How often the server looks at the index's `CURRENT` pointer by default.
pub const DEFAULT_WATCH: Duration = Duration::from_secs(2);

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen (localhost unless told otherwise).
    pub addr: SocketAddr,
    /// The index, model, dataset and profile database.
    pub paths: Paths,
    /// How to build the index if there is none.
    pub build: BuildOptions,
    /// The bearer token of the administrative endpoints; without one they are refused.
    pub admin_token: Option<String>,
    /// How often to look for a newly published generation (None: only on `POST
    /// /v1/admin/reload`).
    pub watch: Option<Duration>,
    /// Query embeddings kept (0: none).
    pub query_cache: usize,
    /// The experiments running (`recommend?experiment=NAME`).
    pub experiments: Vec<Experiment>,
}

/// What every handler shares.
pub(crate) struct AppState {
    /// The engine of the generation in use; swapped whole on reload, so a request keeps the
    /// engine it started with.
    engine: ArcSwap<Engine>,
    store: Arc<ProfileStore>,
    paths: Paths,
    admin_token: Option<String>,
    experiments: Vec<Experiment>,
    metrics: Metrics,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl AppState {
    /// The engine a request should use from start to end.
    pub(crate) fn engine(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// Opens the current generation if it is not the one in use and switches to it. Returns
    /// the generation before and after.
    pub(crate) async fn reload(self: &Arc<Self>) -> Result<(String, String), ApiError> {
        let _one = self.reloading.lock().await;
        let current = self.engine();
        let before = current.index().generation().to_string();
        let published = MovieIndex::current_generation(&self.paths.index)?;
        if published == before {
            return Ok((before.clone(), before));
        }
        let paths = self.paths.clone();
        let engine = tokio::task::spawn_blocking(move || current.reopen(&paths))
            .await
            .map_err(|e| ApiError::internal(format!("the reload task failed: {e}")))??;
        let after = engine.index().generation().to_string();
        self.engine.store(Arc::new(engine));
        self.metrics.switched(&before, &after);
        tracing::info!("switched from {before} to {after}");
        Ok((before, after))
    }
}

/// Opens the profile database and the engine (building the index if there is none), binds,
/// prints `listening on http://ADDR` on standard output, and serves until SIGINT or SIGTERM.
pub fn serve(options: ServeOptions) -> Result<()> {
    let store = Arc::new(ProfileStore::open(&options.paths.store)?);
    tracing::info!("profiles in {}", store.url());
    let engine = Engine::open_or_build(&options.paths, &options.build)?
        .with_query_cache(options.query_cache);
    engine.load_all()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("reelrank-serve")
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    runtime.block_on(run(options, engine, store))
}

async fn run(options: ServeOptions, engine: Engine, store: Arc<ProfileStore>) -> Result<()> {
    let metrics = Metrics::new();
    metrics.switched("", engine.index().generation());
    let state = Arc::new(AppState {
        engine: ArcSwap::from_pointee(engine),
        store,
        paths: options.paths.clone(),
        admin_token: options.admin_token.clone(),
        experiments: options.experiments.clone(),
        metrics,
        reloading: tokio::sync::Mutex::new(()),
    });
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|e| Error::io(format!("bind {}", options.addr), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::io("local address", e))?;
    if let Some(every) = options.watch {
        tokio::spawn(watch_index(Arc::clone(&state), every));
    }
    // The line scripts and tests wait for: the port is bound and the engine is loaded.
    println!("listening on http://{local}");
    tracing::info!(
        "serving {} on http://{local}",
        options.paths.index.display()
    );
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| Error::io("serve", e))
}

/// The whole application: the routes inside [`layers`].
pub(crate) fn router(state: Arc<AppState>) -> Router {
    layers(api::routes(state))
}

/// Around `routes` (outermost first): request ids and tracing, JSON error bodies, panic
/// catching, the body limit, the timeout and the concurrency limit.
fn layers(routes: Router) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    // Router::layer turns each layer's response body back into axum's, so the JSON error
    // middleware can sit between the limits and the request ids.
    routes
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(error::panic_response))
                .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    REQUEST_TIMEOUT,
                ))
                .layer(GlobalConcurrencyLimitLayer::new(MAX_IN_FLIGHT)),
        )
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(
                    x_request_id.clone(),
                    MakeRequestUuid,
                ))
                .layer(PropagateRequestIdLayer::new(x_request_id))
                .layer(TraceLayer::new_for_http()),
        )
}

/// Switches to a newly published generation when the index's `CURRENT` changes.
async fn watch_index(state: Arc<AppState>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let in_use = state.engine().index().generation().to_string();
        match MovieIndex::current_generation(&state.paths.index) {
            Ok(published) if published != in_use => {
                if let Err(e) = state.reload().await {
                    state.metrics.reload_failed();
                    tracing::error!(
                        "could not switch to {published}: {}; still serving {in_use}",
                        e.message
                    );
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot read the index pointer: {e}"),
        }
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for SIGINT: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn call(app: Router, uri: &str) -> (StatusCode, serde_json::Value, bool) {
        let response = app
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let has_id = response.headers().contains_key("x-request-id");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or_default(),
            has_id,
        )
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_with_its_request_id_and_the_next_request_is_served() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        async fn fine() -> &'static str {
            "fine"
        }
        let app = layers(
            Router::new()
                .route("/boom", get(boom))
                .route("/fine", get(fine)),
        );
        let (status, body, has_id) = call(app.clone(), "/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(has_id);
        assert_eq!(body["error"]["code"], "internal", "{body}");
        assert!(
            body["error"]["request_id"]
                .as_str()
                .is_some_and(|id| id.len() == 36),
            "{body}"
        );
        let (status, _, _) = call(app.clone(), "/fine").await;
        assert_eq!(status, StatusCode::OK);
        let (status, body, _) = call(app, "/nowhere").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["status"], 404, "{body}");
    }
}
