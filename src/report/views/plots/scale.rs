//! What the plots share: the marks (limits, their marginal bands, the median
//! and p95) in ms, the latency axis and its ticks, vertical lines with their
//! legend entries, and the legend box.
//!
//! Owns turning the record's limits and statistics into marks, and the axis
//! rules (a limit far beyond the data is named "off scale" rather than
//! squeezing the plot). It draws no whole plot (`distribution`, `series`)
//! and judges nothing: the limits are the record's.

use plotters::prelude::*;

use super::{err, FAMILY, LIMIT, MEDIAN, P95};
use crate::report::views::{ShotRow, StepData};
use crate::statistic::Statistic;

/// A vertical (or, on the shots plot, horizontal) line at a latency.
pub(super) struct Mark {
    pub at: f64,
    pub label: String,
    pub color: RGBColor,
    pub dashed: bool,
}

/// A limit's band: from `lo` to `hi`, ms.
pub(super) struct Band {
    pub lo: f64,
    pub hi: f64,
}

pub(super) fn is_location(s: Statistic) -> bool {
    matches!(
        s,
        Statistic::Min
            | Statistic::Max
            | Statistic::Mean
            | Statistic::Median
            | Statistic::P95
            | Statistic::P99
    )
}

pub(super) fn fmt_num(v: f64) -> String {
    let s = format!("{v}");
    if s.len() > 8 {
        format!("{v:.3}")
    } else {
        s
    }
}

/// The limits on location statistics and their bands, in ms; the median and p95.
pub(super) fn marks(d: &StepData) -> (Vec<Mark>, Vec<Band>, Vec<Mark>) {
    let mut limits = Vec::new();
    let mut bands = Vec::new();
    for l in &d.rec.limits {
        if !is_location(l.limit.statistic) {
            continue;
        }
        let per = l.limit.unit.to_ms();
        let unit = l.limit.unit.name();
        let stat = l.limit.statistic.name();
        let band = l.limit.marginal.unwrap_or(0.0);
        // Each bound, and its marginal band on the inside of it.
        let bounds = [
            l.limit.max.map(|max| ('≤', max, (max - band, max))),
            l.limit.min.map(|min| ('≥', min, (min, min + band))),
        ];
        for (op, at, (lo, hi)) in bounds.into_iter().flatten() {
            limits.push(Mark {
                at: at * per,
                label: format!("limit: {stat} {op} {} {unit}", fmt_num(at)),
                color: LIMIT,
                dashed: false,
            });
            if band > 0.0 {
                bands.push(Band {
                    lo: lo * per,
                    hi: hi * per,
                });
            }
        }
    }
    let mut stats = Vec::new();
    if let Some(s) = &d.rec.stats {
        stats.push(Mark {
            at: s.median,
            label: format!("median {:.3} ms", s.median),
            color: MEDIAN,
            dashed: true,
        });
        stats.push(Mark {
            at: s.p95,
            label: format!("p95 {:.3} ms", s.p95),
            color: P95,
            dashed: true,
        });
    }
    (limits, bands, stats)
}

pub(super) fn values(shots: &[ShotRow]) -> Vec<f64> {
    shots.iter().filter_map(|s| s.value).collect()
}

/// The latency axis: the data, widened to take in each limit that lies near
/// it (within 1.5 times the data's span, or 2 ms), padded by 5 %.
pub(super) fn axis(values: &[f64], limits: &[Mark]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut lo, mut hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let reach = (1.5 * (hi - lo)).max(2.0);
    for m in limits {
        if m.at >= lo - reach && m.at <= hi + reach {
            lo = lo.min(m.at);
            hi = hi.max(m.at);
        }
    }
    let pad = ((hi - lo) * 0.05).max(0.25);
    (lo - pad, hi + pad)
}

/// Axis tick labels with as many decimals as the span needs.
pub(super) fn ticks(span: f64) -> impl Fn(&f64) -> String {
    let d = if span < 2.0 {
        2
    } else if span < 20.0 {
        1
    } else {
        0
    };
    move |v: &f64| {
        let s = format!("{v:.d$}");
        // No "-0.0".
        if s.trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            s.trim_start_matches('-').to_string()
        } else {
            s
        }
    }
}

pub(super) fn whole(v: &f64) -> String {
    format!("{v:.0}")
}

pub(super) fn in_range(x: f64, r: (f64, f64)) -> bool {
    x >= r.0 && x <= r.1
}

pub(super) fn off_scale_label(m: &Mark, r: (f64, f64)) -> String {
    if m.at > r.1 {
        format!("{} (off scale →)", m.label)
    } else {
        format!("{} (← off scale)", m.label)
    }
}

pub(super) fn legend_line(c: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
}

pub(super) type Chart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

pub(super) fn vlines<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    marks: &[Mark],
    r: (f64, f64),
    top: f64,
) -> Result<(), String> {
    for m in marks {
        let style = m.color.stroke_width(2);
        if in_range(m.at, r) {
            let pts = vec![(m.at, 0.0), (m.at, top)];
            let anno = if m.dashed {
                chart
                    .draw_series(DashedLineSeries::new(pts, 6, 4, style))
                    .map_err(err)?
            } else {
                chart
                    .draw_series(LineSeries::new(pts, style))
                    .map_err(err)?
            };
            anno.label(m.label.clone()).legend(legend_line(m.color));
        } else {
            off_scale_entry(chart, m, r)?;
        }
    }
    Ok(())
}

/// A mark outside the range `r`: named in the legend only.
pub(super) fn off_scale_entry<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    m: &Mark,
    r: (f64, f64),
) -> Result<(), String> {
    chart
        .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
        .map_err(err)?
        .label(off_scale_label(m, r))
        .legend(legend_line(m.color));
    Ok(())
}

/// Solid lines at each mark from `y0` to `y1`, without legend entries.
pub(super) fn lines_at<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    marks: &[Mark],
    (y0, y1): (f64, f64),
) -> Result<(), String> {
    for m in marks {
        chart
            .draw_series(LineSeries::new(
                vec![(m.at, y0), (m.at, y1)],
                m.color.stroke_width(2),
            ))
            .map_err(err)?;
    }
    Ok(())
}

/// The legend box, in the upper right corner.
pub(super) fn legend<'a, DB: DrawingBackend + 'a>(chart: &mut Chart<'a, DB>) -> Result<(), String> {
    legend_at(chart, SeriesLabelPosition::UpperRight)
}

/// The legend box at `position`.
pub(super) fn legend_at<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FAMILY, 12))
        .draw()
        .map_err(err)
}
