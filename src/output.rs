//! Human-readable renderings of results: aligned text tables.

use std::path::Path;

use crate::engine::SearchResponse;
use crate::eval::report::bar_chart_svg;
use crate::index::Manifest;
use crate::rank::stack::{FeatureImportance, PairExplanation};
use crate::rank::RankedMovie;
use crate::recommend::PersonalResponse;

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

/// A column of a text table.
pub(crate) struct Column {
    header: String,
    width: usize,
    right: bool,
}

impl Column {
    /// A column titled `header`, at most `width` characters wide, right-aligned if `right`.
    pub(crate) fn new(header: impl Into<String>, width: usize, right: bool) -> Column {
        Column {
            header: header.into(),
            width,
            right,
        }
    }
}

/// Cuts `text` to `width` characters, marking the cut with an ellipsis.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// An aligned table: header, a rule, then the rows; cells wider than their column are cut.
pub(crate) fn render(columns: &[Column], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([c.header.chars().count()])
                .max()
                .unwrap_or(0)
                .min(c.width)
        })
        .collect();
    let line = |cells: Vec<String>| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(columns)
            .zip(&widths)
            .map(|((cell, column), &width)| {
                let cell = fit(cell, width);
                let pad = " ".repeat(width - cell.chars().count());
                if column.right {
                    format!("{pad}{cell}")
                } else {
                    format!("{cell}{pad}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let mut out = line(columns.iter().map(|c| c.header.clone()).collect());
    out.push('\n');
    out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.clone()));
        out.push('\n');
    }
    out
}

/// The first cells of a result row: rank, title, year, genres.
fn movie_cells(rank: usize, title: &str, year: Option<u16>, genres: &[String]) -> Vec<String> {
    vec![
        rank.to_string(),
        title.to_string(),
        year.map_or_else(String::new, |y| y.to_string()),
        genres.join("|"),
    ]
}

/// Ranked results as an aligned table: the similarity column when results have one, the
/// personal score and the sources when they were ranked for a person.
pub fn results_table(results: &[RankedMovie]) -> String {
    if results.is_empty() {
        return "no movie matches\n".to_string();
    }
    let similar = results.iter().any(|r| r.query_similarity.is_some());
    let personal = results.iter().any(|r| r.personal_score.is_some());
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
    if personal {
        columns.push(Column::new("sources", 24, false));
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let mut row = movie_cells(r.rank, &r.title, r.year, &r.genres);
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
            if personal {
                row.push(r.sources.join(","));
            }
            row
        })
        .collect();
    render(&columns, &rows)
}

/// The results of a search as an aligned table.
pub fn search_table(response: &SearchResponse) -> String {
    results_table(&response.results)
}

/// Personalised results as an aligned table, under a line naming the person and the ranker.
pub fn personal_table(response: &PersonalResponse) -> String {
    // Without a person (plain `similar`) there is nobody to name.
    let heading = response.stack.map_or_else(String::new, |s| {
        format!("for {} · ranked by {s}\n", response.person)
    });
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
    let percent = |v: f64| format!("{:.1} %", 100.0 * v);
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

/// The global feature importances as an SVG bar chart (shares, so the stacks compare).
pub fn importance_svg(importance: &[FeatureImportance]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_long_text_with_ellipsis() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(fit("Amélie", 6), "Amélie");
    }

    #[test]
    fn aligns_columns() {
        let columns = [Column::new("a", 5, false), Column::new("n", 3, true)];
        let table = render(
            &columns,
            &[
                vec!["xy".into(), "7".into()],
                vec!["longer text".into(), "12".into()],
            ],
        );
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "a       n");
        assert_eq!(lines[2], "xy      7");
        assert_eq!(lines[3], "long…  12");
    }
}
