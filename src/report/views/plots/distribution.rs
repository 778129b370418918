//! The distribution plots of a step's measured shots: the histogram (with
//! the headroom strip when a limit lies beyond it) and the empirical CDF.
//!
//! Owns how those two are drawn. Marks and axes are `scale`'s; it judges
//! nothing.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::scale::{
    axis, in_range, legend, legend_at, legend_line, lines_at, marks, ticks, values, vlines, whole,
    Band, Mark,
};
use super::{err, BAND, BAR, FAMILY, H};
use crate::report::views::StepData;

pub(super) fn histogram<DB: DrawingBackend>(
    a: &DrawingArea<DB, Shift>,
    d: &StepData,
) -> Result<(), String> {
    let v = values(&d.shots);
    let (limits, bands, stats) = marks(d);
    let r = axis(&v, &limits);
    // Freedman–Diaconis width, kept between 8 and 40 bins over the data.
    let mut sorted = v.clone();
    sorted.sort_by(f64::total_cmp);
    let q = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    let (dmin, dmax) = (sorted[0], sorted[sorted.len() - 1]);
    let span = (dmax - dmin).max(1e-6);
    let iqr = q(0.75) - q(0.25);
    let fd = 2.0 * iqr / (sorted.len() as f64).cbrt();
    let nbins = if fd > 0.0 {
        (span / fd).ceil() as usize
    } else {
        10
    }
    .clamp(8, 40);
    let width = span / nbins as f64;
    let mut counts = vec![0u32; nbins];
    for x in &v {
        let i = (((x - dmin) / width) as usize).min(nbins - 1);
        counts[i] += 1;
    }
    // Headroom above the bars for the legend.
    let top = counts.iter().copied().max().unwrap_or(1) as f64 * 1.9;
    // When a limit lies off the histogram's scale, a strip below it shows
    // the shots against every limit at true scale: the headroom.
    let off_scale = limits.iter().any(|m| !in_range(m.at, r));
    let (a, strip_area) = if off_scale {
        let (top_part, bottom) = a.split_vertically(H - 76);
        (top_part, Some(bottom))
    } else {
        (a.clone(), None)
    };
    if let Some(sa) = &strip_area {
        strip(sa, &v, &limits, &bands, &stats)?;
    }
    let a = &a;
    let mut chart = ChartBuilder::on(a)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(r.0..r.1, 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .disable_x_mesh()
        .x_desc("latency (ms)")
        .y_desc("shots")
        .x_label_formatter(&ticks(r.1 - r.0))
        .y_label_formatter(&whole)
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(err)?;
    for b in &bands {
        let (lo, hi) = (b.lo.max(r.0), b.hi.min(r.1));
        if lo < hi {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(lo, 0.0), (hi, top)],
                    BAND.mix(0.25).filled(),
                )))
                .map_err(err)?;
        }
    }
    chart
        .draw_series(counts.iter().enumerate().map(|(i, c)| {
            let x0 = dmin + i as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width, *c as f64)], BAR.mix(0.8).filled())
        }))
        .map_err(err)?
        .label(format!("{} shots", v.len()))
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], BAR.mix(0.8).filled()));
    vlines(&mut chart, &limits, r, top)?;
    vlines(&mut chart, &stats, r, top)?;
    legend(&mut chart)
}

/// The shots, the limits and their bands on one axis from 0 (or the lowest
/// of them) to the highest, at true scale.
fn strip<DB: DrawingBackend>(
    a: &DrawingArea<DB, Shift>,
    v: &[f64],
    limits: &[Mark],
    bands: &[Band],
    stats: &[Mark],
) -> Result<(), String> {
    let all = v
        .iter()
        .copied()
        .chain(limits.iter().map(|m| m.at))
        .chain(bands.iter().flat_map(|b| [b.lo, b.hi]));
    let (lo, hi) = all.fold((0.0f64, f64::NEG_INFINITY), |(l, h), x| {
        (l.min(x), h.max(x))
    });
    let hi = hi + (hi - lo) * 0.04;
    let mut chart = ChartBuilder::on(a)
        .margin_left(12)
        .margin_right(12)
        .margin_bottom(4)
        .x_label_area_size(32)
        .y_label_area_size(48)
        .build_cartesian_2d(lo..hi, 0f64..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_y_axis()
        .x_desc("latency at the limits' scale (ms)")
        .x_label_formatter(&ticks(hi - lo))
        .x_labels(8)
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 12))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(
            bands
                .iter()
                .map(|b| Rectangle::new([(b.lo, 0.05), (b.hi, 0.95)], BAND.mix(0.35).filled())),
        )
        .map_err(err)?;
    lines_at(&mut chart, limits, (0.0, 1.0))?;
    chart
        .draw_series(
            v.iter().map(|x| {
                PathElement::new(vec![(*x, 0.25), (*x, 0.75)], BAR.mix(0.6).stroke_width(1))
            }),
        )
        .map_err(err)?;
    lines_at(&mut chart, stats, (0.1, 0.9))
}

pub(super) fn cdf<DB: DrawingBackend>(
    a: &DrawingArea<DB, Shift>,
    d: &StepData,
) -> Result<(), String> {
    let mut v = values(&d.shots);
    v.sort_by(f64::total_cmp);
    let (limits, _, stats) = marks(d);
    let r = axis(&v, &limits);
    let mut chart = ChartBuilder::on(a)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(r.0..r.1, 0f64..1.02)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("latency (ms)")
        .y_desc("fraction of shots ≤ x")
        .x_label_formatter(&ticks(r.1 - r.0))
        .y_label_formatter(&ticks(1.0))
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(err)?;
    let n = v.len() as f64;
    let mut pts = vec![(r.0, 0.0)];
    for (i, x) in v.iter().enumerate() {
        pts.push((*x, i as f64 / n));
        pts.push((*x, (i + 1) as f64 / n));
    }
    pts.push((r.1, 1.0));
    chart
        .draw_series(LineSeries::new(pts, BAR.stroke_width(2)))
        .map_err(err)?
        .label("empirical CDF")
        .legend(legend_line(BAR));
    vlines(&mut chart, &limits, r, 1.02)?;
    vlines(&mut chart, &stats, r, 1.02)?;
    legend_at(&mut chart, SeriesLabelPosition::LowerRight)
}
