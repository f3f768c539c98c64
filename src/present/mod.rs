//! Presentation: text tables, Markdown and SVG charts of plain data. The evaluation and the
//! front ends hand it results; it imports no evaluation code.

pub mod chart;
mod experiment;
pub mod table;

pub use experiment::{experiment_svg, experiment_text};

use std::path::Path;

use crate::engine::{Explanation, Response, VerifyReport};
use crate::rank::stack::{FeatureImportance, PairExplanation, RankerImportance};
use crate::rank::RankedMovie;
use crate::store::Manifest;
use chart::bar_chart_svg;
use table::{render, Column};

/// One line describing a finished build.
pub fn build_summary(dir: &Path, manifest: &Manifest) -> String {
    let seconds = |stage: &str| {
        manifest
            .timings_ms
            .get(stage)
            .map_or(f64::NAN, |ms| ms / 1e3)
    };
    format!(
        "built {} ({} movies, {} ratings, {} tags; {:.0} docs/s) in {:.1} s\n",
        dir.display(),
        manifest.counts.movies,
        manifest.counts.ratings,
        manifest.counts.tags,
        manifest.counts.movies as f64 / seconds("embed"),
        seconds("total")
    )
}

/// Ranked results as an aligned table: the similarity column when results have one, the
/// personal score when they were ranked for a person, and the sources when they came from
/// several retrievers (a person's candidates, or a hybrid search).
pub fn results_table(results: &[RankedMovie]) -> String {
    if results.is_empty() {
        return "no movie matches\n".to_string();
    }
    let similar = results.iter().any(|r| r.query_similarity.is_some());
    let personal = results.iter().any(|r| r.personal_score.is_some());
    let sources = personal || results.iter().any(|r| r.bm25.is_some());
    let mut columns = vec![
        Column::new("#", 4, true),
        Column::new("title", 44, false),
        Column::new("year", 4, true),
        Column::new("genres", 30, false),
    ];
    if similar {
        columns.push(Column::new("similarity", 10, true));
    }
    columns.push(Column::new("popularity", 10, true));
    if personal {
        columns.push(Column::new("personal", 8, true));
    }
    columns.push(Column::new("score", 6, true));
    if sources {
        columns.push(Column::new("sources", 24, false));
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let mut row = vec![
                r.rank.to_string(),
                r.title.clone(),
                r.year.map_or_else(String::new, |y| y.to_string()),
                r.genres.join("|"),
            ];
            let missing = || "—".to_string();
            if similar {
                row.push(
                    r.query_similarity
                        .map_or_else(missing, |q| format!("{q:.3}")),
                );
            }
            row.push(format!("{:.2}", r.popularity));
            if personal {
                row.push(r.personal_score.map_or_else(missing, |p| format!("{p:.3}")));
            }
            row.push(format!("{:.3}", r.score));
            if sources {
                row.push(r.sources.join(","));
            }
            row
        })
        .collect();
    render(&columns, &rows)
}

/// Ranked results as an aligned table, under a line naming the person and the ranker when
/// they were ranked for a person.
pub fn response_table(response: &Response) -> String {
    let mut heading = match (&response.person, response.stack) {
        (Some(person), Some(stack)) => format!("for {person} · ranked by {stack}\n"),
        _ => String::new(),
    };
    if let Some(intent) = &response.intent {
        if let Some(movie) = &intent.similar_to {
            heading.push_str(&format!("movies like {}\n", movie.title));
        }
        let mut boosts: Vec<String> = intent.decades.iter().map(|d| format!("{d}s")).collect();
        boosts.extend(intent.genres.iter().map(|g| g.to_string()));
        if !boosts.is_empty() {
            heading.push_str(&format!("boosted: {}\n", boosts.join(", ")));
        }
    }
    format!("{heading}{}", results_table(&response.results))
}

/// The global feature importances of the serving stacks as an aligned table.
pub fn importance_table(importance: &[FeatureImportance]) -> String {
    let columns = [
        Column::new("feature", 24, false),
        Column::new("logistic weight", 15, true),
        Column::new("|weight| share", 14, true),
        Column::new("gbdt gain share", 15, true),
        Column::new("lambdamart gain share", 21, true),
    ];
    let rows: Vec<Vec<String>> = importance
        .iter()
        .map(|f| {
            vec![
                f.feature.to_string(),
                format!("{:+.4}", f.logistic_weight),
                percent(f.logistic_weight_share),
                percent(f.gbdt_gain_share),
                percent(f.lambdamart_gain_share),
            ]
        })
        .collect();
    render(&columns, &rows)
}

/// A share as a percentage with one decimal: the importance tables' cells.
fn percent(share: f64) -> String {
    format!("{:.1} %", 100.0 * share)
}

/// The learned rankers' gain shares per feature.
pub fn ranker_table(importance: &[RankerImportance]) -> String {
    let columns = [
        Column::new("feature", 24, false),
        Column::new("candidate ranker", 16, true),
        Column::new("personal ranker", 15, true),
    ];
    let rows: Vec<Vec<String>> = importance
        .iter()
        .map(|f| {
            vec![
                f.feature.to_string(),
                f.candidate_ranker.map_or("—".into(), percent),
                f.personal_ranker.map_or("—".into(), percent),
            ]
        })
        .collect();
    render(&columns, &rows)
}

/// The global feature importances as an SVG bar chart (shares, so the stacks compare).
pub fn importance_svg(importance: &[FeatureImportance]) -> crate::error::Result<String> {
    let categories: Vec<String> = importance.iter().map(|f| f.feature.to_string()).collect();
    let series = vec![
        (
            "logistic |weight| share".to_string(),
            importance.iter().map(|f| f.logistic_weight_share).collect(),
        ),
        (
            "gbdt gain share".to_string(),
            importance.iter().map(|f| f.gbdt_gain_share).collect(),
        ),
        (
            "lambdamart gain share".to_string(),
            importance.iter().map(|f| f.lambdamart_gain_share).collect(),
        ),
    ];
    bar_chart_svg(
        "Feature importance of the serving stacks",
        "feature",
        "share",
        &categories,
        &series,
        &|v| format!("{:.0}%", 100.0 * v),
    )
}

/// One (user, movie) pair's feature values and contributions as an aligned table, with the
/// totals each stack adds them up to.
pub fn explanation_table(explanation: &PairExplanation, title: &str) -> String {
    let columns = [
        Column::new("feature", 24, false),
        Column::new("value", 10, true),
        Column::new("logistic", 9, true),
        Column::new("gbdt", 9, true),
        Column::new("lambdamart", 10, true),
    ];
    let signed = |v: f64| format!("{v:+.4}");
    let mut rows: Vec<Vec<String>> = explanation
        .features
        .iter()
        .map(|f| {
            vec![
                f.feature.to_string(),
                format!("{:.4}", f.value),
                signed(f.logistic),
                signed(f.gbdt),
                signed(f.lambdamart),
            ]
        })
        .collect();
    rows.push(vec![
        "(intercept / bias)".into(),
        String::new(),
        signed(explanation.logistic_intercept),
        signed(explanation.gbdt_bias),
        signed(explanation.lambdamart_bias),
    ]);
    rows.push(vec![
        "= score".into(),
        String::new(),
        signed(explanation.logistic_decision),
        signed(explanation.gbdt_decision),
        signed(explanation.lambdamart_score),
    ]);
    format!(
        "user {} · {title}\n{}P(liked): logistic {:.3}, gbdt {:.3}\n\
         logistic terms are exact (weight × standardised value); tree terms are path \
         contributions (changes of node value along each tree's path).\n",
        explanation.user,
        render(&columns, &rows),
        explanation.logistic_probability,
        explanation.gbdt_probability,
    )
}

/// An explanation as text: the importance table, or one pair's contributions under its title.
pub fn explanation_text(explanation: &Explanation) -> String {
    match explanation {
        Explanation::Global {
            features, rankers, ..
        } => format!(
            "{}\nthe learned rankers (share of tree gain):\n{}",
            importance_table(features),
            ranker_table(rankers)
        ),
        Explanation::Pair {
            movie_id,
            title,
            explanation,
            ..
        } => explanation_table(explanation, &format!("movie {movie_id} {title}")),
    }
}

/// What `reelrank verify` found, one line per file.
pub fn verify_summary(report: &VerifyReport) -> String {
    let mut out = format!(
        "index {} generation {}: every check passed{}\n",
        report.index.display(),
        report.generation,
        if report.dataset_checked {
            ""
        } else {
            " (the dataset directory is absent: not compared)"
        }
    );
    for file in &report.files {
        out.push_str(&format!(
            "  {:<18} {:>12} bytes  sha256 {}\n",
            file.name, file.size, file.sha256
        ));
    }
    out
}
