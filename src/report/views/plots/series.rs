//! The plots over a step's shots in order: each shot's latency with its
//! uncertainty, the clock-sync bound at each shot, and the correlation of a
//! typical audio shot.
//!
//! Owns how those are drawn. Marks and axes are `scale`'s; it judges
//! nothing.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::scale::{
    axis, in_range, legend, legend_at, legend_line, marks, off_scale_entry, ticks, values, whole,
};
use super::{err, BAR, FAMILY, LIMIT, MISSED, OUTLIER, W};
use crate::report::views::{Correlation, StepData};

pub(super) fn shots<DB: DrawingBackend>(
    a: &DrawingArea<DB, Shift>,
    d: &StepData,
) -> Result<(), String> {
    let v = values(&d.shots);
    let (limits, _, _) = marks(d);
    let lows: Vec<f64> = d
        .shots
        .iter()
        .filter_map(|s| Some(s.value? - s.uncertainty.unwrap_or(0.0)))
        .chain(
            d.shots
                .iter()
                .filter_map(|s| Some(s.value? + s.uncertainty.unwrap_or(0.0))),
        )
        .chain(v.iter().copied())
        .collect();
    let r = axis(&lows, &limits);
    // Headroom above the shots for the legend.
    let r = (r.0, r.1 + 0.45 * (r.1 - r.0));
    let n = d.shots.iter().map(|s| s.shot).max().unwrap_or(0) as f64 + 1.0;
    let mut chart = ChartBuilder::on(a)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.5..n - 0.5, r.0..r.1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("shot")
        .y_desc("latency (ms)")
        .x_label_formatter(&whole)
        .y_label_formatter(&ticks(r.1 - r.0))
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(err)?;
    for m in &limits {
        if in_range(m.at, r) {
            chart
                .draw_series(LineSeries::new(
                    vec![(-0.5, m.at), (n - 0.5, m.at)],
                    m.color.stroke_width(2),
                ))
                .map_err(err)?
                .label(m.label.clone())
                .legend(legend_line(m.color));
        } else {
            off_scale_entry(&mut chart, m, r)?;
        }
    }
    let outliers = &d.rec.anomalies.outlier_shots;
    let measured = d.shots.iter().filter(|s| s.value.is_some());
    chart
        .draw_series(measured.clone().filter_map(|s| {
            let (v, u) = (s.value?, s.uncertainty.unwrap_or(0.0));
            Some(ErrorBar::new_vertical(
                s.shot as f64,
                v - u,
                v,
                v + u,
                BAR.mix(0.5).stroke_width(1),
                4,
            ))
        }))
        .map_err(err)?;
    chart
        .draw_series(
            measured
                .clone()
                .filter(|s| !outliers.contains(&s.shot))
                .filter_map(|s| Some(Circle::new((s.shot as f64, s.value?), 3, BAR.filled()))),
        )
        .map_err(err)?
        .label("measured shot ± uncertainty")
        .legend(|(x, y)| Circle::new((x + 9, y), 3, BAR.filled()));
    let out: Vec<_> = measured
        .filter(|s| outliers.contains(&s.shot))
        .filter_map(|s| Some((s.shot as f64, s.value?)))
        .collect();
    if !out.is_empty() {
        chart
            .draw_series(out.into_iter().map(|p| Circle::new(p, 4, OUTLIER.filled())))
            .map_err(err)?
            .label("outlier")
            .legend(|(x, y)| Circle::new((x + 9, y), 4, OUTLIER.filled()));
    }
    let missed: Vec<f64> = d
        .shots
        .iter()
        .filter(|s| s.value.is_none())
        .map(|s| s.shot as f64)
        .collect();
    if !missed.is_empty() {
        let y = r.0 + (r.1 - r.0) * 0.03;
        chart
            .draw_series(
                missed
                    .iter()
                    .map(|x| Cross::new((*x, y), 5, MISSED.stroke_width(2))),
            )
            .map_err(err)?
            .label(format!("missed ({})", missed.len()))
            .legend(|(x, y)| Cross::new((x + 9, y), 5, MISSED.stroke_width(2)));
    }
    legend(&mut chart)
}

pub(super) fn sync<DB: DrawingBackend>(
    a: &DrawingArea<DB, Shift>,
    d: &StepData,
) -> Result<(), String> {
    let pts: Vec<(f64, f64)> = d
        .shots
        .iter()
        .filter_map(|s| Some((s.shot as f64, s.sync_bound_us?)))
        .collect();
    let hi = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    let top = if hi > 0.0 { hi * 1.2 } else { 1.0 };
    let n = d.shots.iter().map(|s| s.shot).max().unwrap_or(0) as f64 + 1.0;
    let mut chart = ChartBuilder::on(a)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.5..n - 0.5, 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("shot")
        .y_desc("sync bound, full width (µs)")
        .x_label_formatter(&whole)
        .y_label_formatter(&ticks(top))
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(pts.clone(), BAR.mix(0.5).stroke_width(1)))
        .map_err(err)?;
    chart
        .draw_series(pts.iter().map(|p| Circle::new(*p, 3, BAR.filled())))
        .map_err(err)?
        .label(format!("widest {hi:.1} µs"))
        .legend(|(x, y)| Circle::new((x + 9, y), 3, BAR.filled()));
    legend(&mut chart)
}

pub(super) fn correlation<DB: DrawingBackend>(
    a: &DrawingArea<DB, Shift>,
    c: &Correlation,
) -> Result<(), String> {
    let per_ms = c.sample_rate as f64 / 1e3;
    let at = |i: usize| c.start_ms + i as f64 / per_ms;
    let (peak_i, _) = c
        .rho
        .iter()
        .enumerate()
        .max_by(|x, y| x.1.abs().total_cmp(&y.1.abs()))
        .ok_or("empty trace")?;
    let (left, right) = a.split_horizontally((W as f64 * 0.62) as u32);
    let x_hi = at(c.rho.len() - 1);
    let mut chart = ChartBuilder::on(&left)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(c.start_ms..x_hi, -1.05f64..1.05)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("delay after emission (ms)")
        .y_desc("correlation")
        .x_label_formatter(&ticks(x_hi - c.start_ms))
        .y_label_formatter(&ticks(1.0))
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(err)?;
    // Thin a long trace to the envelope of each pixel column, both signs.
    let cols = (W as usize).max(1);
    let per_col = c.rho.len().div_ceil(cols).max(1);
    let mut env = Vec::with_capacity(2 * cols);
    for (k, chunk) in c.rho.chunks(per_col).enumerate() {
        let x = at(k * per_col);
        let lo = chunk.iter().copied().fold(f32::INFINITY, f32::min) as f64;
        let hi = chunk.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        env.push((x, lo));
        env.push((x, hi));
    }
    chart
        .draw_series(LineSeries::new(env, BAR.stroke_width(1)))
        .map_err(err)?;
    chart
        .draw_series(DashedLineSeries::new(
            vec![(c.expected_ms, -1.05), (c.expected_ms, 1.05)],
            6,
            4,
            LIMIT.stroke_width(1),
        ))
        .map_err(err)?
        .label(format!("reported {:.3} ms", c.expected_ms))
        .legend(legend_line(LIMIT));
    legend_at(&mut chart, SeriesLabelPosition::LowerRight)?;
    // The zoom: ±1 ms around the peak, every sample.
    let half = per_ms.ceil() as usize;
    let i0 = peak_i.saturating_sub(half);
    let i1 = (peak_i + half).min(c.rho.len() - 1);
    let zoom: Vec<(f64, f64)> = (i0..=i1).map(|i| (at(i), c.rho[i] as f64)).collect();
    let (zlo, zhi) = zoom
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| {
            (l.min(p.1), h.max(p.1))
        });
    let pad = ((zhi - zlo) * 0.1).max(0.02);
    let mut z = ChartBuilder::on(&right)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(44)
        .build_cartesian_2d(at(i0)..at(i1).max(at(i0) + 1e-3), (zlo - pad)..(zhi + pad))
        .map_err(err)?;
    z.configure_mesh()
        .light_line_style(TRANSPARENT)
        .light_line_style(TRANSPARENT)
        .x_desc("around the peak (ms)")
        .x_labels(4)
        .x_label_formatter(&ticks(0.5))
        .y_label_formatter(&ticks(1.0))
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(err)?;
    z.draw_series(LineSeries::new(zoom.clone(), BAR.mix(0.6).stroke_width(1)))
        .map_err(err)?;
    z.draw_series(zoom.iter().map(|p| Circle::new(*p, 2, BAR.filled())))
        .map_err(err)?;
    Ok(())
}
