//! Prometheus metrics (prometheus-client, the Prometheus project's own Rust client): requests by
//! route and status, latency histograms per route and per engine stage, the index generation
//! in use and its switches, the query-embedding cache.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Latency buckets in seconds: 0.25 ms to ~4 s, doubling.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GenerationLabels {
    generation: String,
}

/// The server's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    stages: Family<StageLabels, Histogram, fn() -> Histogram>,
    generation: Family<GenerationLabels, Gauge>,
    switches: Counter,
    failed_reloads: Counter,
    cache_hits: Gauge<u64, AtomicU64>,
    cache_misses: Gauge<u64, AtomicU64>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("reelrank");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_buckets,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route",
            latency.clone(),
        );
        let stages = Family::<StageLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_buckets,
        );
        registry.register(
            "stage_duration_seconds",
            "Time spent in each engine stage (embed, keyword, retrieve, rank, total)",
            stages.clone(),
        );
        let generation = Family::<GenerationLabels, Gauge>::default();
        registry.register(
            "index_generation",
            "1 for the index generation in use",
            generation.clone(),
        );
        let switches = Counter::default();
        registry.register(
            "index_switches",
            "Switches to a newly published generation",
            switches.clone(),
        );
        let failed_reloads = Counter::default();
        registry.register(
            "index_reload_failures",
            "Published generations that could not be opened",
            failed_reloads.clone(),
        );
        let cache_hits = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "query_cache_hits",
            "Query embeddings found in the cache",
            cache_hits.clone(),
        );
        let cache_misses = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "query_cache_misses",
            "Query embeddings computed",
            cache_misses.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            stages,
            generation,
            switches,
            failed_reloads,
            cache_hits,
            cache_misses,
        }
    }

    /// Counts one answered request.
    pub(crate) fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(seconds);
    }

    /// Records the engine's per-stage timings of one answer (milliseconds).
    pub(crate) fn stages<'a>(&self, timings_ms: impl IntoIterator<Item = (&'a String, &'a f64)>) {
        for (stage, ms) in timings_ms {
            self.stages
                .get_or_create(&StageLabels {
                    stage: stage.clone(),
                })
                .observe(ms / 1e3);
        }
    }

    /// Records a switch from generation `from` ("" at start) to `to`.
    pub(crate) fn switched(&self, from: &str, to: &str) {
        if !from.is_empty() {
            self.generation
                .get_or_create(&GenerationLabels {
                    generation: from.to_string(),
                })
                .set(0);
            self.switches.inc();
        }
        self.generation
            .get_or_create(&GenerationLabels {
                generation: to.to_string(),
            })
            .set(1);
    }

    /// Counts a published generation that could not be opened.
    pub(crate) fn reload_failed(&self) {
        self.failed_reloads.inc();
    }

    /// The Prometheus text exposition, with the cache counts of now.
    pub(crate) fn encode(&self, cache: (u64, u64)) -> String {
        self.cache_hits.set(cache.0);
        self.cache_misses.set(cache.1);
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.push_str("# encoding failed\n");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_requests_stages_and_the_generation_in_use() {
        let metrics = Metrics::new();
        metrics.switched("", "gen-000001");
        metrics.request("/v1/search", "GET", 200, 0.004);
        let timings = [("embed".to_string(), 3.0)];
        metrics.stages(timings.iter().map(|(k, v)| (k, v)));
        metrics.switched("gen-000001", "gen-000002");
        let text = metrics.encode((5, 2));
        for line in [
            "reelrank_http_requests_total{route=\"/v1/search\",method=\"GET\",status=\"200\"} 1",
            "reelrank_stage_duration_seconds_count{stage=\"embed\"} 1",
            "reelrank_index_generation{generation=\"gen-000001\"} 0",
            "reelrank_index_generation{generation=\"gen-000002\"} 1",
            "reelrank_index_switches_total 1",
            "reelrank_query_cache_hits 5",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
