//! Aligned text tables (comfy-table: Unicode display width, so CJK titles and emoji stay
//! aligned) and Markdown tables.

use comfy_table::{CellAlignment, Table};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// No borders; a rule of dashes under the header (comfy-table's preset order: the sixth and
/// seventh characters are the header line and its intersections).
const PRESET: &str = "     --            ";

/// A column of a text table.
pub struct Column {
    header: String,
    width: usize,
    right: bool,
}

impl Column {
    /// A column titled `header`, at most `width` display columns wide, right-aligned if `right`.
    pub fn new(header: impl Into<String>, width: usize, right: bool) -> Column {
        Column {
            header: header.into(),
            width,
            right,
        }
    }
}

/// Cuts `text` to `width` display columns, marking the cut with an ellipsis. comfy-table would
/// wrap a long cell onto several lines; one result per line reads better in a terminal.
fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut cut = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        cut.push(c);
        used += w;
    }
    let mut cut = cut.trim_end().to_string();
    cut.push('…');
    cut
}

/// An aligned table: header, a rule, then the rows, columns two spaces apart; cells wider than
/// their column are cut.
pub fn render(columns: &[Column], rows: &[Vec<String>]) -> String {
    let mut table = Table::new();
    table.load_preset(PRESET);
    table.set_header(columns.iter().map(|c| c.header.clone()));
    for row in rows {
        table.add_row(row.iter().zip(columns).map(|(cell, c)| fit(cell, c.width)));
    }
    let last = columns.len().saturating_sub(1);
    for (i, column) in columns.iter().enumerate() {
        if let Some(c) = table.column_mut(i) {
            c.set_padding((0, if i == last { 0 } else { 2 }));
            if column.right {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    let mut out: String = table
        .lines()
        .map(|line| line.trim_end().to_string() + "\n")
        .collect();
    if out.is_empty() {
        out.push('\n');
    }
    out
}

/// A Markdown table; `|` inside a cell is escaped so that it stays one cell.
pub fn markdown_table(header: &[String], rows: &[Vec<String>]) -> String {
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = line(header);
    out.push_str(&format!("|{}|\n", vec![" --- "; header.len()].join("|")));
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_long_text_with_ellipsis_by_display_width() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(fit("Amélie", 6), "Amélie");
        // Each of these characters takes two columns.
        assert_eq!(fit("千と千尋の神隠し", 7), "千と千…");
    }

    #[test]
    fn aligns_columns_by_display_width() {
        let columns = [Column::new("a", 8, false), Column::new("n", 3, true)];
        let table = render(
            &columns,
            &[
                vec!["xy".into(), "7".into()],
                vec!["longer text".into(), "12".into()],
                vec!["千と千尋".into(), "3".into()],
                vec!["🎬 film".into(), "4".into()],
            ],
        );
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("a ") && lines[0].ends_with(" n"),
            "{table}"
        );
        assert!(lines[1].chars().all(|c| c == '-'), "{table}");
        assert!(
            lines[2].starts_with("xy ") && lines[2].ends_with(" 7"),
            "{table}"
        );
        assert!(
            lines[3].starts_with("longer… ") && lines[3].ends_with(" 12"),
            "{table}"
        );
        assert!(lines[4].starts_with("千と千尋 "), "{table}");
        // Every row ends in the same display column.
        for line in &lines[2..] {
            assert_eq!(line.width(), lines[0].width(), "{table}");
        }
    }

    #[test]
    fn markdown_cells_escape_pipes() {
        let md = markdown_table(
            &["model".into(), "genres".into()],
            &[vec!["x".into(), "Action|Drama".into()]],
        );
        assert_eq!(
            md,
            "| model | genres |\n| --- | --- |\n| x | Action\\|Drama |\n"
        );
    }
}
