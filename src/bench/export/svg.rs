//! The charts, drawn with plotters' SVG backend (text is left to the viewer's
//! fonts: nothing here needs a system font or library).

use plotters::prelude::*;

use crate::bench::format;
use crate::bench::results::{Chart, ChartData, Spread};

use super::{Exporter, Output, Report};

/// Writes one SVG file per chart.
pub struct Svg;

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

impl Exporter for Svg {
    fn render(&self, report: &Report<'_>) -> Result<Vec<Output>, String> {
        report
            .analysis
            .charts
            .iter()
            .map(|chart| {
                Ok(Output {
                    file: chart.file.clone(),
                    bytes: draw(chart)?.into_bytes(),
                })
            })
            .collect()
    }
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
                series,
            } => lines(&root, chart, x_label, *log_x, series)?,
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
    let top = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().map(|s| s.max))
        .fold(0.0f64, f64::max);
    if top <= 0.0 || categories.is_empty() {
        return no_data(root, chart);
    }
    let n = categories.len();
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top * 1.12)
        .map_err(err)?;
    let names = categories.to_vec();
    ctx.configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&move |x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                names[i as usize].clone()
            } else {
                String::new()
            }
        })
        .y_desc(&chart.y_label)
        .y_label_formatter(&|y| axis_number(*y))
        .draw()
        .map_err(err)?;
    let m = series.len().max(1) as f64;
    let width = 0.8 / m;
    for (j, (label, values)) in series.iter().enumerate() {
        let colour = COLOURS[j % COLOURS.len()];
        let left = |i: usize| i as f64 - 0.4 + j as f64 * width;
        let boxes = values.iter().enumerate().filter_map(|(i, v)| {
            let s = (*v)?;
            Some(Rectangle::new(
                [
                    (left(i) + width * 0.05, 0.0),
                    (left(i) + width * 0.95, s.median),
                ],
                colour.filled(),
            ))
        });
        ctx.draw_series(boxes)
            .map_err(err)?
            .label(label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
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
}

fn lines(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    chart: &Chart,
    x_label: &str,
    log_x: bool,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), String> {
    let pts = || series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
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
        .caption(&chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(80);
    // Four axis kinds (linear or log on each side) are four chart types.
    macro_rules! plot {
        ($x:expr, $y:expr) => {{
            let mut ctx = builder.build_cartesian_2d($x, $y).map_err(err)?;
            ctx.configure_mesh()
                .x_desc(x_label)
                .y_desc(&chart.y_label)
                .x_label_formatter(&|x| axis_number(*x))
                .y_label_formatter(&|y| axis_number(*y))
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

/// An axis tick: `120k`, `1.5M`, `250`, `0.5`.
fn axis_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else if a >= 1.0 || a == 0.0 {
        trim(v)
    } else {
        format::ratio(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}
