//! SVG charts, drawn with plotters' SVG backend.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};

/// Colours of the chart series (Tableau 20: distinct for up to 20 models).
const PALETTE: [RGBColor; 20] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xa0, 0xcb, 0xe8),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xff, 0xbe, 0x7d),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0x8c, 0xd1, 0x7d),
    RGBColor(0xb6, 0x99, 0x2d),
    RGBColor(0xf1, 0xce, 0x63),
    RGBColor(0x49, 0x98, 0x94),
    RGBColor(0x86, 0xbc, 0xb6),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0xff, 0x9d, 0x9a),
    RGBColor(0x79, 0x70, 0x6e),
    RGBColor(0xba, 0xb0, 0xac),
    RGBColor(0xd3, 0x72, 0x95),
    RGBColor(0xfa, 0xbf, 0xd2),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xd4, 0xa6, 0xc8),
    RGBColor(0x9d, 0x76, 0x60),
    RGBColor(0xd7, 0xb5, 0xa6),
];

/// Share of a category's width that its bars fill (the rest separates the groups).
const GROUP_FILL: f64 = 0.85;

/// A grouped bar chart: one group per category, one bar per series, values on the bars.
pub fn bar_chart_svg(
    title: &str,
    x_title: &str,
    y_title: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    value_format: &dyn Fn(f64) -> String,
) -> Result<String> {
    let chart_error = |message: String| Error::Chart {
        title: title.to_string(),
        message,
    };
    // At least 14 px per bar so that the rotated values stay readable.
    let bars = (categories.len() * series.len().max(1)) as u32;
    let width = (260 + bars * 14 * 100 / 85).max(1100);
    // Category labels wider than their group (about 7 px a character) are turned upright and
    // the label area grows to hold them.
    let longest = categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0) as u32;
    let upright = longest * 7 > (width - 260) / categories.len().max(1) as u32;
    let label_area = if upright { 30 + longest * 7 } else { 40 };
    let height = (140 + label_area + 20 * series.len() as u32).max(520);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        draw_bars(
            &root,
            title,
            (x_title, y_title),
            categories,
            series,
            value_format,
            (upright, label_area),
        )
        .map_err(|e| chart_error(e.to_string()))?;
        root.present().map_err(|e| chart_error(e.to_string()))?;
    }
    Ok(svg)
}

/// Draws the chart of [`bar_chart_svg`] on `root`.
fn draw_bars(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    (x_title, y_title): (&str, &str),
    categories: &[String],
    series: &[(String, Vec<f64>)],
    value_format: &dyn Fn(f64) -> String,
    (upright, label_area): (bool, u32),
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    // Head room above the highest bar for its value, written upright on top of it.
    let y_max = max.max(f64::MIN_POSITIVE) * 1.15;
    let groups = categories.len().max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .margin_right(200)
        .x_label_area_size(label_area)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..groups, 0.0..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(6)
        .y_label_formatter(&|v| value_format(*v))
        .x_desc(x_title)
        .y_desc(y_title)
        .axis_desc_style(("sans-serif", 16))
        .draw()?;

    let bar_width = GROUP_FILL / series.len().max(1) as f64;
    let value_style = TextStyle::from(("sans-serif", 11).into_font())
        .transform(FontTransform::Rotate270)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (s, (_, values)) in series.iter().enumerate() {
        let colour = PALETTE[s % PALETTE.len()];
        let bars = values
            .iter()
            .enumerate()
            .take(categories.len())
            .map(|(c, &v)| {
                let x0 = c as f64 + (1.0 - GROUP_FILL) / 2.0 + bar_width * s as f64;
                Rectangle::new([(x0, 0.0), (x0 + bar_width * 0.92, v)], colour.filled())
            });
        chart.draw_series(bars)?;
        let labels = values
            .iter()
            .enumerate()
            .take(categories.len())
            .map(|(c, &v)| {
                let x = c as f64 + (1.0 - GROUP_FILL) / 2.0 + bar_width * (s as f64 + 0.46);
                Text::new(value_format(v), (x, v), value_style.clone())
            });
        chart.draw_series(labels)?;
    }
    // The legend in the right margin, where it hides no bar (plotters' series labels are drawn
    // inside the plotting area).
    let (right, top) = chart.backend_coord(&(groups, y_max));
    for (s, (name, _)) in series.iter().enumerate() {
        let (x, y) = (right + 20, top + 10 + 22 * s as i32);
        let colour = PALETTE[s % PALETTE.len()];
        root.draw(&Rectangle::new(
            [(x, y - 6), (x + 12, y + 6)],
            colour.filled(),
        ))?;
        root.draw(&Text::new(
            name.as_str(),
            (x + 18, y),
            TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    // Category names under their groups; drawn here rather than as mesh labels because the
    // mesh places labels at round numbers, not at group centres.
    let label_style = if upright {
        TextStyle::from(("sans-serif", 15).into_font())
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Right, VPos::Center))
    } else {
        TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Center, VPos::Top))
    };
    for (c, category) in categories.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(c as f64 + 0.5, 0.0));
        root.draw(&Text::new(
            category.as_str(),
            (x, y + 8),
            label_style.clone(),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of every `<text>` element, in order.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let start = t.find('>')? + 1;
                let end = t.find("</text>")?;
                Some(t[start..end].trim().to_string())
            })
            .collect()
    }

    #[test]
    fn chart_has_title_axes_legend_and_values() {
        let svg = bar_chart_svg(
            "T & co",
            "metric",
            "score",
            &["A".into(), "B".into()],
            &[
                ("m1".into(), vec![0.25, 0.5]),
                ("m2".into(), vec![0.75, 1.0]),
            ],
            &|v| format!("{v:.2}"),
        )
        .expect("chart");
        let texts = texts(&svg);
        for needle in [
            "T &amp; co",
            "metric",
            "score",
            "m1",
            "m2",
            "0.25",
            "0.75",
            "A",
            "B",
        ] {
            assert!(texts.iter().any(|t| t == needle), "{needle}: {texts:?}");
        }
        // One filled rectangle per bar, in its series' colour.
        assert_eq!(svg.matches(r##"fill="#4E79A7""##).count(), 2 + 1, "{svg}");
        assert_eq!(svg.matches(r##"fill="#A0CBE8""##).count(), 2 + 1, "{svg}");
    }

    #[test]
    fn long_category_names_stand_upright() {
        let long = "a category name far too long to fit".to_string();
        let svg = bar_chart_svg(
            "t",
            "x",
            "y",
            &vec![long.clone(); 8],
            &[("m".into(), vec![1.0; 8])],
            &|v| format!("{v}"),
        )
        .expect("chart");
        let upright = svg
            .split("<text")
            .filter(|t| t.contains(&long) && t.contains("rotate(270"))
            .count();
        assert_eq!(upright, 8);
    }
}
