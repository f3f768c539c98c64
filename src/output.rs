//! Human-readable renderings of results: aligned text tables.

use std::path::Path;

use crate::engine::SearchResponse;
use crate::index::Manifest;

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

/// The results of a search as an aligned table.
pub fn search_table(response: &SearchResponse) -> String {
    let columns = [
        Column::new("#", 4, true),
        Column::new("title", 48, false),
        Column::new("year", 4, true),
        Column::new("genres", 36, false),
        Column::new("similarity", 10, true),
        Column::new("popularity", 10, true),
        Column::new("score", 6, true),
    ];
    let rows: Vec<Vec<String>> = response
        .results
        .iter()
        .map(|r| {
            vec![
                r.rank.to_string(),
                r.title.clone(),
                r.year.map_or_else(String::new, |y| y.to_string()),
                r.genres.join("|"),
                format!("{:.3}", r.similarity),
                format!("{:.2}", r.popularity),
                format!("{:.3}", r.score),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no movie matches\n".to_string();
    }
    render(&columns, &rows)
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
