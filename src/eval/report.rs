//! Evaluation output: the terminal table, a Markdown report and SVG bar charts.

use std::fmt::Write as _;
use std::path::Path;

use super::full::FullReport;
use super::metrics::RankingMetrics;
use super::personal::PersonalSearchReport;
use super::protocol::EvalReport;
use crate::data::split::Split;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::present::chart::bar_chart_svg;
use crate::present::table::{markdown_table, render, Column};

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_string(), |v| format!("{v:.4}"))
}

/// Header and rows of the metric table (shared by the terminal and Markdown renderings).
fn table(report: &EvalReport) -> (Vec<String>, Vec<Vec<String>>) {
    let k = report.config.k;
    let mut header = vec!["model".to_string()];
    header.extend(RankingMetrics::names(k));
    header.extend(["RMSE", "MAE", "NDCG gap closed"].map(String::from));
    let rows = report
        .models
        .iter()
        .map(|m| {
            let mut row = metric_cells(&m.model, &m.metrics, k);
            row.push(cell(m.rmse));
            row.push(cell(m.mae));
            row.push(format!("{:.1} %", 100.0 * m.ndcg_gap_closed));
            row
        })
        .collect();
    (header, rows)
}

/// The metric table as aligned text, with the protocol on the first line.
pub fn text_table(report: &EvalReport) -> String {
    let (header, rows) = table(report);
    let mut out = format!(
        "protocol {} · K {} · relevant: rating ≥ {} · split {} (base {}, meta {}, test {}) · {} users\n",
        report.protocol,
        report.config.k,
        report.config.threshold,
        report.split.source,
        report.split.base,
        report.split.meta,
        report.split.test,
        report.users_evaluated
    );
    out.push_str(&render(&metric_columns(header), &rows));
    out
}

/// The full-catalogue report as aligned text: the rankers, then stage one's recall.
pub fn full_table(report: &FullReport) -> String {
    let k = report.config.k;
    let mut header = vec!["model".to_string()];
    header.extend(RankingMetrics::names(k));
    let rows: Vec<Vec<String>> = report
        .models
        .iter()
        .map(|m| metric_cells(&m.model, &m.metrics, k))
        .collect();
    let mut out = format!(
        "protocol full · K {k} · relevant: test rating ≥ {} · split {} (train_full {}, test {}) · {} users · every unrated movie ranked\n",
        report.config.threshold,
        report.split.source,
        report.split.base + report.split.meta,
        report.split.test,
        report.users_evaluated
    );
    out.push_str(&render(&metric_columns(header), &rows));
    out.push_str("\nstage one alone (recommend's candidate sources):\n");
    let mut columns = vec![
        Column::new("budget", 6, true),
        Column::new("mean candidates", 15, true),
        Column::new("recall of the union", 19, true),
    ];
    if let Some(first) = report.candidate_recall.first() {
        for (source, _) in &first.by_source {
            columns.push(Column::new(format!("{source} alone"), 14, true));
        }
    }
    let rows: Vec<Vec<String>> = report
        .candidate_recall
        .iter()
        .map(|c| {
            let mut row = vec![
                c.budget.to_string(),
                format!("{:.1}", c.mean_candidates),
                format!("{:.4}", c.recall),
            ];
            row.extend(c.by_source.iter().map(|(_, r)| format!("{r:.4}")));
            row
        })
        .collect();
    out.push_str(&render(&columns, &rows));
    out
}

/// A table row: the model's name, then its ranking metrics to 4 decimals.
fn metric_cells(model: &str, metrics: &RankingMetrics, k: usize) -> Vec<String> {
    std::iter::once(model.to_string())
        .chain(metrics.named(k).iter().map(|(_, v)| format!("{v:.4}")))
        .collect()
}

/// Columns for a model name followed by right-aligned metrics.
fn metric_columns(header: Vec<String>) -> Vec<Column> {
    header
        .into_iter()
        .enumerate()
        .map(|(i, h)| Column::new(h, usize::MAX, i > 0))
        .collect()
}

fn markdown(report: &EvalReport) -> String {
    let (header, rows) = table(report);
    let mut out = String::new();
    let _ = writeln!(out, "# reelrank evaluation\n");
    let _ = writeln!(
        out,
        "Protocol **{}**: base models fit on base_train; each test user's own test rows ranked \
         by the model's score (ties: lower catalogue position first); relevant = rating ≥ {}; \
         users without a relevant test row skipped ({} users evaluated). Split: {} \
         (base {}, meta {}, test {}). Random = mean of {} seeded shuffles; Oracle = ranked by \
         the true rating. *NDCG gap closed* = (model − Random) / (Oracle − Random).\n",
        report.protocol,
        report.config.threshold,
        report.users_evaluated,
        report.split.source,
        report.split.base,
        report.split.meta,
        report.split.test,
        report.config.random_shuffles
    );
    out.push_str(&markdown_table(&header, &rows));
    let _ = writeln!(
        out,
        "\n![metrics by model](metrics.svg)\n\n![rating distribution](ratings.svg)\n"
    );
    let _ = writeln!(out, "## Timings (ms)\n");
    for (stage, value) in &report.timings_ms {
        let _ = writeln!(out, "- {stage}: {value:.1}");
    }
    let _ = writeln!(
        out,
        "\nMF training RMSE per epoch: {}",
        report
            .mf_epoch_rmse
            .iter()
            .map(|r| format!("{r:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out
}

/// Writes `metrics.json`, `report.md`, `metrics.svg`, `ratings.svg` and the `split.csv` used
/// into `dir`.
pub fn write_report(
    dir: &Path,
    report: &EvalReport,
    dataset: &Dataset,
    split: &Split,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let json = serde_json::to_vec_pretty(&report.to_json()).map_err(|e| Error::Json {
        path: dir.join("metrics.json"),
        error: e,
    })?;
    write_atomic(&dir.join("metrics.json"), &json)?;
    write_atomic(&dir.join("report.md"), markdown(report).as_bytes())?;

    let k = report.config.k;
    let categories: Vec<String> = report.models[0]
        .metrics
        .named(k)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let series: Vec<(String, Vec<f64>)> = report
        .models
        .iter()
        .map(|m| {
            (
                m.model.clone(),
                m.metrics.named(k).into_iter().map(|(_, v)| v).collect(),
            )
        })
        .collect();
    let chart = bar_chart_svg(
        &format!("Ranking metrics by model (K = {k}, seed protocol)"),
        "metric",
        "score",
        &categories,
        &series,
        &|v| format!("{v:.3}"),
    )?;
    write_atomic(&dir.join("metrics.svg"), chart.as_bytes())?;

    let mut counts = [0f64; 10];
    for &r in &dataset.ratings.rating {
        let bin = ((r * 2.0).round() as usize).clamp(1, 10) - 1;
        counts[bin] += 1.0;
    }
    let labels: Vec<String> = (1..=10).map(|b| format!("{:.1}", b as f64 / 2.0)).collect();
    let chart = bar_chart_svg(
        &format!("Rating distribution ({} ratings)", dataset.ratings.len()),
        "rating",
        "number of ratings",
        &labels,
        &[("ratings".to_string(), counts.to_vec())],
        &|v| format!("{v:.0}"),
    )?;
    write_atomic(&dir.join("ratings.svg"), chart.as_bytes())?;
    split.write(&dir.join("split.csv"), dataset)
}

/// The search quality table of `evaluate --protocol search`.
pub fn search_table(rows: &[crate::eval::search::SearchQuality]) -> String {
    let columns = [
        Column::new("set", 12, false),
        Column::new("half", 8, false),
        Column::new("mode", 16, false),
        Column::new("queries", 7, true),
        Column::new("Hit@1", 6, true),
        Column::new("MRR@10", 6, true),
        Column::new("Hit@10", 6, true),
        Column::new("Recall@10", 9, true),
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.set.to_string(),
                r.half.to_string(),
                r.variant.to_string(),
                r.queries.to_string(),
                format!("{:.3}", r.hit_at_1),
                format!("{:.3}", r.mrr_at_10),
                format!("{:.3}", r.hit_at_10),
                format!("{:.3}", r.recall_at_10),
            ]
        })
        .collect();
    format!(
        "protocol search · K {} · tune = even lines, held-out = odd lines\n{}",
        crate::eval::search::SEARCH_K,
        render(&columns, &cells)
    )
}

/// Mean and sample standard deviation.
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n.max(1.0);
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// One metric of one model over several runs.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSummary {
    /// Metric name ("NDCG@10").
    pub name: String,
    /// Mean over runs.
    pub mean: f64,
    /// Sample standard deviation over runs.
    pub std: f64,
}

/// One run's rows: each model with its named metrics.
type NamedRows = Vec<(String, Vec<(String, f64)>)>;

/// The rows of a seed-protocol run: the five ranking metrics and the NDCG gap closed.
fn seed_rows(report: &EvalReport) -> NamedRows {
    let k = report.config.k;
    report
        .models
        .iter()
        .map(|m| {
            let mut metrics = m.metrics.named(k).to_vec();
            metrics.push(("NDCG gap closed".into(), m.ndcg_gap_closed));
            (m.model.clone(), metrics)
        })
        .collect()
}

/// The rows of a full-protocol run: the five ranking metrics.
fn full_rows(report: &FullReport) -> NamedRows {
    let k = report.config.k;
    report
        .models
        .iter()
        .map(|m| (m.model.clone(), m.metrics.named(k).to_vec()))
        .collect()
}

/// Per model and metric, the mean and standard deviation over runs with different split seeds
/// (models and metrics in the order of the first run).
fn summarize(runs: &[NamedRows]) -> Vec<(String, Vec<MetricSummary>)> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|(model, metrics)| {
            let rows: Vec<&Vec<(String, f64)>> = runs
                .iter()
                .filter_map(|run| run.iter().find(|(m, _)| m == model).map(|(_, v)| v))
                .collect();
            let summaries = metrics
                .iter()
                .enumerate()
                .map(|(i, (name, _))| {
                    let values: Vec<f64> =
                        rows.iter().filter_map(|r| r.get(i)).map(|v| v.1).collect();
                    let (mean, std) = mean_std(&values);
                    MetricSummary {
                        name: name.clone(),
                        mean,
                        std,
                    }
                })
                .collect();
            (model.clone(), summaries)
        })
        .collect()
}

/// Per model and metric of the seed protocol, the mean and standard deviation over runs with
/// different split seeds.
fn seeds_summary(reports: &[EvalReport]) -> Vec<(String, Vec<MetricSummary>)> {
    summarize(&reports.iter().map(seed_rows).collect::<Vec<_>>())
}

/// A multi-seed summary as aligned text.
fn summary_table(
    protocol: &str,
    seeds: &[u64],
    summary: &[(String, Vec<MetricSummary>)],
) -> String {
    let seeds: Vec<String> = seeds.iter().map(u64::to_string).collect();
    let mut out = format!(
        "protocol {protocol} · {} split seeds ({}) · mean ± std\n",
        seeds.len(),
        seeds.join(", ")
    );
    let Some((_, first)) = summary.first() else {
        return out;
    };
    let header = std::iter::once("model".to_string())
        .chain(first.iter().map(|m| m.name.clone()))
        .collect();
    let rows: Vec<Vec<String>> = summary
        .iter()
        .map(|(model, metrics)| {
            std::iter::once(model.clone())
                .chain(
                    metrics
                        .iter()
                        .map(|m| format!("{:.4} ± {:.4}", m.mean, m.std)),
                )
                .collect()
        })
        .collect();
    out.push_str(&render(&metric_columns(header), &rows));
    out
}

/// A multi-seed JSON: every run, and the summary.
fn summary_json(
    protocol: &str,
    seeds: &[u64],
    summary: Vec<(String, Vec<MetricSummary>)>,
    runs: Vec<serde_json::Value>,
) -> serde_json::Value {
    let summary: Vec<serde_json::Value> = summary
        .into_iter()
        .map(|(model, metrics)| {
            let mut row = serde_json::Map::new();
            row.insert("model".into(), model.into());
            for m in metrics {
                row.insert(m.name, serde_json::json!({ "mean": m.mean, "std": m.std }));
            }
            row.into()
        })
        .collect();
    serde_json::json!({
        "protocol": protocol,
        "seeds": seeds,
        "summary": summary,
        "runs": runs,
    })
}

/// The seed protocol's multi-seed summary as aligned text.
pub fn seeds_table(reports: &[EvalReport]) -> String {
    let seeds: Vec<u64> = reports.iter().map(|r| r.config.seed).collect();
    summary_table("seed", &seeds, &seeds_summary(reports))
}

/// The seed protocol's multi-seed JSON: every run, and the summary.
pub fn seeds_json(reports: &[EvalReport]) -> serde_json::Value {
    let seeds: Vec<u64> = reports.iter().map(|r| r.config.seed).collect();
    let runs = reports.iter().map(EvalReport::to_json).collect();
    summary_json("seed", &seeds, seeds_summary(reports), runs)
}

/// The full protocol's multi-seed summary as aligned text.
pub fn full_seeds_table(reports: &[FullReport]) -> String {
    let seeds: Vec<u64> = reports.iter().map(|r| r.config.seed).collect();
    let summary = summarize(&reports.iter().map(full_rows).collect::<Vec<_>>());
    summary_table("full", &seeds, &summary)
}

/// The full protocol's multi-seed JSON: every run, and the summary.
pub fn full_seeds_json(reports: &[FullReport]) -> serde_json::Value {
    let seeds: Vec<u64> = reports.iter().map(|r| r.config.seed).collect();
    let summary = summarize(&reports.iter().map(full_rows).collect::<Vec<_>>());
    let runs = reports.iter().map(FullReport::to_json).collect();
    summary_json("full", &seeds, summary, runs)
}

/// The rows of a personal-search run, named "kind · variant".
fn personal_search_rows(report: &PersonalSearchReport) -> NamedRows {
    let k = report.config.k;
    report
        .rows
        .iter()
        .map(|r| {
            let metrics = vec![
                (format!("Hit@{k}"), r.metrics.hit_rate),
                (format!("Recall@{k}"), r.metrics.recall),
                (format!("NDCG@{k}"), r.metrics.ndcg),
                (format!("on-topic Hit@{k}"), r.on_topic_hit_rate),
                ("topic precision".to_string(), r.topic_precision),
            ];
            (format!("{} · {}", r.queries, r.variant), metrics)
        })
        .collect()
}

/// The personal-search protocol's table: per query kind and variant, mean ± std over the
/// split seeds.
pub fn personal_search_table(reports: &[PersonalSearchReport]) -> String {
    let seeds: Vec<u64> = reports.iter().map(|r| r.config.seed).collect();
    let summary = summarize(&reports.iter().map(personal_search_rows).collect::<Vec<_>>());
    let queries: Vec<String> = reports
        .iter()
        .map(|r| {
            let all = r.rows.iter().filter(|row| row.queries == "all");
            let count = all.map(|row| row.count).max().unwrap_or(0);
            format!("{} users, {count} queries", r.users)
        })
        .collect();
    format!(
        "{}queries per seed: {}\n",
        summary_table("personal-search", &seeds, &summary),
        queries.join("; ")
    )
}

/// The personal-search protocol's JSON: every run, and the summary over the seeds.
pub fn personal_search_json(reports: &[PersonalSearchReport]) -> serde_json::Value {
    let seeds: Vec<u64> = reports.iter().map(|r| r.config.seed).collect();
    let summary = summarize(&reports.iter().map(personal_search_rows).collect::<Vec<_>>());
    let runs = reports.iter().map(|r| serde_json::json!(r)).collect();
    summary_json("personal-search", &seeds, summary, runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_follow_the_first_run_and_match_models_by_name() {
        let run = |a: f64, b: f64| -> NamedRows {
            vec![
                (
                    "A".into(),
                    vec![("NDCG@10".into(), a), ("MAP@10".into(), a / 2.0)],
                ),
                (
                    "B".into(),
                    vec![("NDCG@10".into(), b), ("MAP@10".into(), b / 2.0)],
                ),
            ]
        };
        let mut second = run(0.3, 0.5);
        second.reverse();
        let summary = summarize(&[run(0.1, 0.7), second]);
        assert_eq!(summary.len(), 2);
        assert_eq!(summary[0].0, "A");
        let ndcg = &summary[0].1[0];
        assert_eq!(ndcg.name, "NDCG@10");
        assert!((ndcg.mean - 0.2).abs() < 1e-12);
        assert!(
            (ndcg.std - 2f64.sqrt() / 10.0).abs() < 1e-12,
            "sample std of 0.1 and 0.3"
        );
        assert!(
            (summary[1].1[1].mean - 0.3).abs() < 1e-12,
            "B's MAP: (0.35 + 0.25) / 2"
        );
        assert!(summarize(&[]).is_empty());
    }

    #[test]
    fn mean_and_sample_std() {
        let (mean, std) = mean_std(&[1.0, 2.0, 3.0]);
        assert!((mean - 2.0).abs() < 1e-12 && (std - 1.0).abs() < 1e-12);
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
    }
}
