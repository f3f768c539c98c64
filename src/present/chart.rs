//! SVG charts.

use std::fmt::Write as _;

/// Colours of the chart series (Tableau 20: distinct for up to 20 models).
const PALETTE: [&str; 20] = [
    "#4e79a7", "#a0cbe8", "#f28e2b", "#ffbe7d", "#59a14f", "#8cd17d", "#b6992d", "#f1ce63",
    "#499894", "#86bcb6", "#e15759", "#ff9d9a", "#79706e", "#bab0ac", "#d37295", "#fabfd2",
    "#b07aa1", "#d4a6c8", "#9d7660", "#d7b5a6",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A grouped bar chart: one group per category, one bar per series, values on the bars.
pub fn bar_chart_svg(
    title: &str,
    x_title: &str,
    y_title: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    value_format: &dyn Fn(f64) -> String,
) -> String {
    // At least 14 px per bar so that the rotated values stay readable.
    let bars = (categories.len() * series.len().max(1)) as f64;
    let (left, right, top) = (70.0, 190.0, 80.0);
    let width = (left + right + bars * 14.0 / 0.85).max(1100.0);
    // Category labels wider than their group (about 7 px a character) are slanted, and the
    // bottom margin grows to hold them.
    let longest = categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0) as f64;
    let slanted = longest * 7.0 > (width - left - right) / categories.len().max(1) as f64;
    let bottom = if slanted { 60.0 + longest * 5.0 } else { 70.0 };
    let height = (top + bottom + 20.0 * series.len() as f64 + 20.0).max(520.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let y_max = if max <= 1.0 { 1.0 } else { max * 1.1 };
    let y = |v: f64| top + plot_h * (1.0 - v / y_max);
    let group_w = plot_w / categories.len().max(1) as f64;
    let bar_w = group_w * 0.85 / series.len().max(1) as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="28" font-size="18" text-anchor="middle">{}</text>"#,
        left + plot_w / 2.0,
        escape(title)
    );
    for step in 0..=5 {
        let v = y_max * step as f64 / 5.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 6.0,
            y(v) + 4.0,
            value_format(v),
            y = y(v)
        );
    }
    for (c, category) in categories.iter().enumerate() {
        let x0 = left + group_w * c as f64 + group_w * 0.075;
        for (s, (_, values)) in series.iter().enumerate() {
            let v = values.get(c).copied().unwrap_or(0.0);
            let x = x0 + bar_w * s as f64;
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                y(v),
                bar_w * 0.92,
                (top + plot_h - y(v)).max(0.0),
                PALETTE[s % PALETTE.len()]
            );
            let (tx, ty) = (x + bar_w * 0.46 + 3.0, y(v) - 4.0);
            let _ = writeln!(
                svg,
                r#"<text x="{tx:.1}" y="{ty:.1}" font-size="9" transform="rotate(-90 {tx:.1} {ty:.1})">{}</text>"#,
                value_format(v)
            );
        }
        let (cx, cy) = (left + group_w * (c as f64 + 0.5), top + plot_h + 18.0);
        let placement = if slanted {
            format!(r#"text-anchor="end" transform="rotate(-35 {cx:.1} {cy:.1})""#)
        } else {
            r#"text-anchor="middle""#.to_string()
        };
        let _ = writeln!(
            svg,
            r#"<text x="{cx:.1}" y="{cy:.1}" font-size="12" {placement}>{}</text>"#,
            escape(category)
        );
    }
    let _ = writeln!(
        svg,
        r#"<line x1="{left}" x2="{left}" y1="{top}" y2="{}" stroke="black"/><line x1="{left}" x2="{}" y1="{b}" y2="{b}" stroke="black"/>"#,
        top + plot_h,
        left + plot_w,
        b = top + plot_h
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle">{}</text>"#,
        left + plot_w / 2.0,
        height - 20.0,
        escape(x_title)
    );
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{:.1}" font-size="13" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}</text>"#,
        top + plot_h / 2.0,
        top + plot_h / 2.0,
        escape(y_title)
    );
    for (s, (name, _)) in series.iter().enumerate() {
        let ly = top + 10.0 + 20.0 * s as f64;
        let lx = left + plot_w + 20.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{}" y="{:.1}" font-size="12">{}</text>"#,
            ly - 10.0,
            PALETTE[s % PALETTE.len()],
            lx + 18.0,
            ly,
            escape(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}
