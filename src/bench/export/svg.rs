//! The charts, drawn with plotters' SVG backend (text is left to the viewer's
//! fonts: nothing here needs a system font or library).

use plotters::prelude::*;

use crate::bench::analysis::{Chart, ChartData};
use crate::bench::format;
use crate::bench::results::Spread;

use super::{Output, Report};

const SIZE: (u32, u32) = (900, 520);

/// Series colours, distinguishable and readable on white.
const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Renders one SVG file per chart.
pub fn render(report: &Report<'_>) -> Result<Vec<Output>, String> {
    let draw = |chart: &Chart| {
        let (file, bytes) = (chart.file.to_string(), draw(chart)?.into_bytes());
        Ok(Output { file, bytes })
    };
    report.analysis.charts.iter().map(draw).collect()
}

/// Draws `chart` as an SVG document.
pub fn draw(chart: &Chart) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        match &chart.data {
            ChartData::Bars { categories, series } => bars(&root, chart, categories, series)?,
            ChartData::Lines {
                x_label,
                log_x,
                percentile_x,
                series,
            } => lines(&root, chart, x_label, (*log_x, *percentile_x), series)?,
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn err(e: impl std::fmt::Display) -> String {
    format!("drawing a chart: {e}")
}

fn no_data(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    chart: &Chart,
) -> Result<(), String> {
    root.draw(&Text::new(
        format!("{}: nothing was measured", chart.title),
        (20, 40),
        ("sans-serif", 18).into_font(),
    ))
    .map_err(err)
}

fn bars(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    chart: &Chart,
    categories: &[String],
    series: &[(String, Vec<Option<Spread>>)],
) -> Result<(), String> {
    let values = || series.iter().flat_map(|(_, v)| v.iter().flatten());
    let top = values().map(|s| s.max).fold(0.0f64, f64::max);
    let bottom = values()
        .map(|s| s.min)
        .filter(|v| *v > 0.0)
        .fold(f64::MAX, f64::min);
    if top <= 0.0 || categories.is_empty() {
        return no_data(root, chart);
    }
    let n = categories.len();
    let x = -0.5f64..(n as f64 - 0.5);
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80);
    let m = series.len().max(1) as f64;
    let width = 0.8 / m;
    // Linear and log y axes are two chart types; the bars start at the
    // axis' bottom.
    macro_rules! plot {
        ($y:expr, $base:expr) => {{
            let mut ctx = builder.build_cartesian_2d(x, $y).map_err(err)?;
            ctx.configure_mesh()
                .disable_x_mesh()
                .x_labels(n)
                .x_label_formatter(&|x| {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                        categories[i as usize].clone()
                    } else {
                        String::new()
                    }
                })
                .y_desc(chart.y_label)
                .y_label_formatter(&|y| format::axis(*y))
                .draw()
                .map_err(err)?;
            for (j, (label, values)) in series.iter().enumerate() {
                let colour = COLOURS[j % COLOURS.len()];
                let left = |i: usize| i as f64 - 0.4 + j as f64 * width;
                let boxes = values.iter().enumerate().filter_map(|(i, v)| {
                    let s = (*v)?;
                    Some(Rectangle::new(
                        [
                            (left(i) + width * 0.05, $base),
                            (left(i) + width * 0.95, s.median),
                        ],
                        colour.filled(),
                    ))
                });
                ctx.draw_series(boxes)
                    .map_err(err)?
                    .label(label.clone())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled())
                    });
                let whiskers = values.iter().enumerate().filter_map(|(i, v)| {
                    let s = (*v)?;
                    (s.runs > 1 && s.max > s.min).then(|| {
                        let mid = left(i) + width / 2.0;
                        PathElement::new(vec![(mid, s.min), (mid, s.max)], BLACK.stroke_width(2))
                    })
                });
                ctx.draw_series(whiskers).map_err(err)?;
            }
            ctx.configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(err)
        }};
    }
    if chart.log_y {
        let base = bottom / 2.0;
        plot!((base..top * 2.0).log_scale(), base)
    } else {
        plot!(0f64..top * 1.12, 0.0)
    }
}

fn lines(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    chart: &Chart,
    x_label: &str,
    (log_x, percentile_x): (bool, bool),
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), String> {
    let x_tick = |x: &f64| match percentile_x {
        true => format::percentile_tick(*x),
        false => format::axis(*x),
    };
    let (x0, mut x1, y0, y1) = series.iter().flat_map(|(_, p)| p).fold(
        (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
        |(x0, x1, y0, y1), &(x, y)| (x0.min(x), x1.max(x), y0.min(y), y1.max(y)),
    );
    if series.is_empty() || x0 > x1 {
        return no_data(root, chart);
    }
    if x1 <= x0 {
        x1 = x0 * 2.0 + 1.0;
    }
    let (y_lo, y_hi) = if chart.log_y {
        (y0.max(1e-3) / 1.5, y1.max(y0 * 2.0) * 1.5)
    } else {
        (0.0, y1.max(1e-9) * 1.12)
    };
    let (x_lo, x_hi) = if log_x {
        (x0.max(1e-3) / 1.2, x1 * 1.2)
    } else {
        ((x0 - (x1 - x0) * 0.05).max(0.0), x1 + (x1 - x0) * 0.05)
    };
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(80);
    // Four axis kinds (linear or log on each side) are four chart types.
    macro_rules! plot {
        ($x:expr, $y:expr) => {{
            let mut ctx = builder.build_cartesian_2d($x, $y).map_err(err)?;
            ctx.configure_mesh()
                .x_desc(x_label)
                .y_desc(chart.y_label)
                .x_label_formatter(&x_tick)
                .y_label_formatter(&|y| format::axis(*y))
                .draw()
                .map_err(err)?;
            for (j, (label, points)) in series.iter().enumerate() {
                let colour = COLOURS[j % COLOURS.len()];
                ctx.draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(err)?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                });
                ctx.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(err)?;
            }
            ctx.configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(err)
        }};
    }
    match (log_x, chart.log_y) {
        (true, true) => plot!((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale()),
        (true, false) => plot!((x_lo..x_hi).log_scale(), y_lo..y_hi),
        (false, true) => plot!(x_lo..x_hi, (y_lo..y_hi).log_scale()),
        (false, false) => plot!(x_lo..x_hi, y_lo..y_hi),
    }
}
