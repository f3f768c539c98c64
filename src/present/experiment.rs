//! The experiment report as text and as an SVG chart.

use super::chart::bar_chart_svg;
use super::table::{render, Column};
use crate::experiment::ExperimentReport;

fn percent(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

fn interval(i: (f64, f64)) -> String {
    format!("{:.2}–{:.2}%", 100.0 * i.0, 100.0 * i.1)
}

/// The report as aligned text: one table per segment (A/B) or the wins (interleaving).
pub fn experiment_text(report: &ExperimentReport) -> String {
    let mut out = format!(
        "experiment {} ({}): A = {}, B = {}\n",
        report.experiment, report.mode, report.rankers.0, report.rankers.1
    );
    if let Some(i) = &report.interleaving {
        out += &format!(
            "\nlists {}: A won {}, B won {}, ties {}, no click {}; sign test p = {:.4}\n\
             long-tail share of the positions each team filled: A {}, B {}\n",
            i.lists,
            i.wins_a,
            i.wins_b,
            i.ties,
            i.no_click,
            i.p_value,
            percent(i.long_tail_share.0),
            percent(i.long_tail_share.1)
        );
    }
    let columns = [
        Column::new("arm", 3, false),
        Column::new("ranker", 12, false),
        Column::new("lists", 7, true),
        Column::new("shown", 8, true),
        Column::new("clicks", 7, true),
        Column::new("CTR", 7, true),
        Column::new("95% CI", 14, true),
        Column::new("liked", 7, true),
        Column::new("95% CI", 14, true),
        Column::new("long tail", 9, true),
    ];
    for segment in &report.segments {
        out += &format!(
            "\n{}: CTR p = {:.4}, liked p = {:.4}\n",
            segment.segment, segment.click_through_p, segment.liked_rate_p
        );
        let rows: Vec<Vec<String>> = segment
            .arms
            .iter()
            .map(|a| {
                vec![
                    a.arm.clone(),
                    a.ranker.clone(),
                    a.lists.to_string(),
                    a.impressions.to_string(),
                    a.clicks.to_string(),
                    percent(a.click_through),
                    interval(a.click_through_95),
                    percent(a.liked_rate),
                    interval(a.liked_rate_95),
                    percent(a.long_tail_share),
                ]
            })
            .collect();
        out += &render(&columns, &rows);
    }
    out += &match &report.winner {
        Some(arm) => format!("\nwinner at p < 0.05: {arm}\n"),
        None => "\nno significant difference at p < 0.05\n".to_string(),
    };
    out
}

/// A bar chart of the report: click-through and liked rate per arm and segment (A/B), or the
/// lists won (interleaving).
pub fn experiment_svg(report: &ExperimentReport) -> crate::error::Result<String> {
    let title = format!("Experiment {}", report.experiment);
    if let Some(i) = &report.interleaving {
        return bar_chart_svg(
            &title,
            "outcome",
            "lists",
            &["A won".into(), "B won".into(), "tie".into()],
            &[(
                "lists".into(),
                vec![i.wins_a as f64, i.wins_b as f64, i.ties as f64],
            )],
            &|v| format!("{v:.0}"),
        );
    }
    let categories: Vec<String> = report.segments.iter().map(|s| s.segment.clone()).collect();
    let series: Vec<(String, Vec<f64>)> = [0, 1]
        .into_iter()
        .flat_map(|arm| {
            let name = |what: &str| {
                let ranker = if arm == 0 {
                    &report.rankers.0
                } else {
                    &report.rankers.1
                };
                format!("{} {ranker} {what}", if arm == 0 { "A" } else { "B" })
            };
            [
                (
                    name("CTR"),
                    report
                        .segments
                        .iter()
                        .map(|s| s.arms[arm].click_through)
                        .collect(),
                ),
                (
                    name("liked"),
                    report
                        .segments
                        .iter()
                        .map(|s| s.arms[arm].liked_rate)
                        .collect(),
                ),
            ]
        })
        .collect();
    bar_chart_svg(&title, "segment", "rate", &categories, &series, &|v| {
        percent(v)
    })
}
