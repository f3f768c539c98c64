//! Evaluation output: the terminal table, a Markdown report and SVG bar charts.

use std::fmt::Write as _;
use std::path::Path;

use super::full::FullReport;
use super::metrics::RankingMetrics;
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
    let columns = [
        Column::new("budget", 6, true),
        Column::new("mean candidates", 15, true),
        Column::new("recall of relevant test movies", 30, true),
    ];
    let rows: Vec<Vec<String>> = report
        .candidate_recall
        .iter()
        .map(|c| {
            vec![
                c.budget.to_string(),
                format!("{:.1}", c.mean_candidates),
                format!("{:.4}", c.recall),
            ]
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

/// Per model and metric, the mean and standard deviation over runs with different split seeds
/// (models in the order of the first run).
pub fn seeds_summary(reports: &[EvalReport]) -> Vec<(String, Vec<MetricSummary>)> {
    let Some(first) = reports.first() else {
        return Vec::new();
    };
    let k = first.config.k;
    first
        .models
        .iter()
        .map(|model| {
            let rows: Vec<&super::ModelResult> = reports
                .iter()
                .filter_map(|r| r.models.iter().find(|m| m.model == model.model))
                .collect();
            let mut metrics: Vec<MetricSummary> = (0..5)
                .map(|i| {
                    let values: Vec<f64> = rows.iter().map(|m| m.metrics.named(k)[i].1).collect();
                    let (mean, std) = mean_std(&values);
                    MetricSummary {
                        name: model.metrics.named(k)[i].0.clone(),
                        mean,
                        std,
                    }
                })
                .collect();
            let gaps: Vec<f64> = rows.iter().map(|m| m.ndcg_gap_closed).collect();
            let (mean, std) = mean_std(&gaps);
            metrics.push(MetricSummary {
                name: "NDCG gap closed".into(),
                mean,
                std,
            });
            (model.model.clone(), metrics)
        })
        .collect()
}

/// The multi-seed summary as aligned text.
pub fn seeds_table(reports: &[EvalReport]) -> String {
    let summary = seeds_summary(reports);
    let seeds: Vec<String> = reports.iter().map(|r| r.config.seed.to_string()).collect();
    let mut out = format!(
        "protocol seed · {} split seeds ({}) · mean ± std\n",
        reports.len(),
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

/// The multi-seed JSON: every run, and the summary.
pub fn seeds_json(reports: &[EvalReport]) -> serde_json::Value {
    let summary: Vec<serde_json::Value> = seeds_summary(reports)
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
        "protocol": "seed",
        "seeds": reports.iter().map(|r| r.config.seed).collect::<Vec<_>>(),
        "summary": summary,
        "runs": reports.iter().map(EvalReport::to_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        let (mean, std) = mean_std(&[1.0, 2.0, 3.0]);
        assert!((mean - 2.0).abs() < 1e-12 && (std - 1.0).abs() < 1e-12);
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
    }
}
