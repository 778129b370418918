//! The plots of a latency step, drawn with plotters as SVG (and PNG on request).
//!
//! Owns what each plot shows: the histogram with the limits, their marginal
//! bands, the median and p95; the empirical CDF; each shot's latency over the
//! run; the clock-sync bound at each shot; and, for audio steps, the
//! correlation of a typical shot. Text is set in DejaVu Sans, which the
//! project ships (assets/fonts) and registers here, so a machine without
//! fontconfig or fonts draws the same plots; in the SVGs it is drawn as that
//! font's outlines (see `glyphs`), so no viewer swaps in another font. It must not judge: limits are
//! drawn as the record states them.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::glyphs;
use super::{Correlation, Options, ShotRow, StepData};
use crate::report::Report;
use crate::statistic::Statistic;

/// DejaVu Sans (licence: assets/fonts/LICENSE-DejaVu.txt).
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The family every plot's text is registered under. The PNG backend draws
/// it with the shipped font; in the SVG, [`glyphs`] replaces each text by
/// the same font's outlines, so no viewer substitutes its own.
const FAMILY: &str = "sans-serif";

const W: u32 = 640;
const H: u32 = 360;

static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The shipped font is a valid TrueType file; a failure would show as
        // a plot error on the page, never a panic.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

const BAR: RGBColor = RGBColor(70, 110, 170);
const LIMIT: RGBColor = RGBColor(200, 30, 30);
const BAND: RGBColor = RGBColor(245, 160, 40);
const MEDIAN: RGBColor = RGBColor(20, 130, 60);
const P95: RGBColor = RGBColor(130, 60, 170);
const MISSED: RGBColor = RGBColor(120, 120, 120);
const OUTLIER: RGBColor = RGBColor(220, 90, 0);

/// One plot of a step, rendered.
pub(crate) struct Plot {
    /// File stem under plots/, e.g. `01-send-latency-histogram`.
    pub stem: String,
    /// What it shows, for the page (HTML id and heading).
    pub kind: &'static str,
    pub title: String,
    pub caption: String,
    /// The SVG document, or why it could not be drawn.
    pub svg: Result<String, String>,
    pub png: Option<Result<Vec<u8>, String>>,
}

impl Plot {
    pub fn path_svg(&self) -> String {
        format!("plots/{}.svg", self.stem)
    }
    pub fn path_png(&self) -> String {
        format!("plots/{}.png", self.stem)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Histogram,
    Cdf,
    Shots,
    Sync,
    Correlation,
}

impl Kind {
    /// One letter, distinct for each kind.
    fn code(self) -> char {
        match self {
            Kind::Histogram => 'h',
            Kind::Cdf => 'c',
            Kind::Shots => 't',
            Kind::Sync => 'b',
            Kind::Correlation => 'x',
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Histogram => "histogram",
            Kind::Cdf => "cdf",
            Kind::Shots => "shots",
            Kind::Sync => "sync",
            Kind::Correlation => "correlation",
        }
    }
}

/// The plots of one step; none for a step without latency shots.
pub(crate) fn for_step(report: &Report, d: &StepData, opts: Options) -> Vec<Plot> {
    if !d.is_latency() || d.shots.is_empty() {
        return Vec::new();
    }
    register_font();
    let measured = d.shots.iter().filter(|s| s.value.is_some()).count();
    let mut kinds = Vec::new();
    if measured > 0 {
        kinds.extend([Kind::Histogram, Kind::Cdf]);
    }
    kinds.push(Kind::Shots);
    if crosses_rig_clock(d) {
        kinds.push(Kind::Sync);
    }
    if d.is_audio() {
        kinds.push(Kind::Correlation);
    }
    kinds
        .into_iter()
        .map(|k| {
            let (title, caption) = words(report, d, k);
            let stem = format!("{}-{}", d.stem(), k.name());
            // Glyph ids are short XML names, unique on the page.
            let ids = format!("s{}{}", d.index + 1, k.code());
            let svg = svg(|a| draw(a, k, d)).and_then(|s| glyphs::outline_text(&s, FONT, &ids));
            let png = opts.png.then(|| png(|a| draw(a, k, d)));
            Plot {
                stem,
                kind: k.name(),
                title,
                caption,
                svg,
                png,
            }
        })
        .collect()
}

/// Whether any shot crossed the rig's clock (a bound wider than zero).
pub(crate) fn crosses_rig_clock(d: &StepData) -> bool {
    d.shots
        .iter()
        .any(|s| s.sync_bound_us.is_some_and(|b| b > 0.0))
}

fn words(report: &Report, d: &StepData, k: Kind) -> (String, String) {
    let n = d.shots.iter().filter(|s| s.value.is_some()).count();
    match k {
        Kind::Histogram => (
            "Distribution of the shots".into(),
            format!(
                "{n} measured shots. Limits on a latency statistic are drawn as red lines with \
                 their marginal band shaded; the median and the 95th percentile are marked. \
                 When a limit lies beyond the histogram's range, the strip below it shows \
                 every shot (ticks), the median, the p95, the limits and their bands at \
                 true scale, from 0 ms: the headroom."
            ),
        ),
        Kind::Cdf => (
            "Empirical CDF".into(),
            "Fraction of the measured shots at or below each latency, with the limits, the \
             median and the 95th percentile."
                .into(),
        ),
        Kind::Shots => (
            "Latency of each shot over the run".into(),
            "Each shot in order, with its expanded (k = 2) uncertainty as an error bar. \
             Outliers (robust z > 3.5, kept in the statistics) are orange; shots that were \
             missed are grey crosses on the lower edge."
                .into(),
        ),
        Kind::Sync => (
            "Clock-sync bound at each shot".into(),
            format!(
                "Full width of the bound on the offset between the rig's clock and the host's \
                 where each shot crosses them, µs; half of it is added to the shot's \
                 uncertainty. The widest bound of the run was {:.1} µs after {} exchanges and \
                 {} re-syncs.",
                report.clock_sync.bound_us, report.clock_sync.exchanges, report.clock_sync.resyncs
            ),
        ),
        Kind::Correlation => match &d.correlation {
            Some(Ok(c)) => (
                format!("Correlation of a typical shot (shot {})", c.shot),
                format!(
                    "Normalised cross-correlation of the stimulus with the capture after shot \
                     {}'s emission, recomputed from raw/ at {} Hz (the shot nearest the \
                     median). Left: the whole window, the line marks where the reported \
                     latency{} puts the peak; right: ±1 ms around the peak, one point a \
                     sample. A clean, single, tall peak is a trustworthy detection; a negative \
                     peak is an inverted stimulus.",
                    c.shot,
                    c.sample_rate,
                    if d.rec.kind == "audio-roundtrip-latency" {
                        " plus the rig's loopback delay"
                    } else {
                        ""
                    }
                ),
            ),
            Some(Err(why)) => (
                "Correlation of a typical shot".into(),
                format!("Not drawn: {why}."),
            ),
            None => ("Correlation of a typical shot".into(), "Not drawn.".into()),
        },
    }
}

fn svg(
    f: impl Fn(&DrawingArea<SVGBackend, Shift>) -> Result<(), String>,
) -> Result<String, String> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        f(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(s)
}

fn png(
    f: impl Fn(&DrawingArea<BitMapBackend, Shift>) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; (W * H * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        f(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    let mut out = Vec::new();
    use image::ImageEncoder;
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&buf, W, H, image::ColorType::Rgb8)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn draw<DB: DrawingBackend>(
    a: &DrawingArea<DB, Shift>,
    k: Kind,
    d: &StepData,
) -> Result<(), String> {
    match k {
        Kind::Histogram => histogram(a, d),
        Kind::Cdf => cdf(a, d),
        Kind::Shots => shots(a, d),
        Kind::Sync => sync(a, d),
        Kind::Correlation => match &d.correlation {
            Some(Ok(c)) => correlation(a, c),
            Some(Err(why)) => note(a, &format!("not drawn: {why}")),
            None => note(a, "not drawn"),
        },
    }
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn note<DB: DrawingBackend>(a: &DrawingArea<DB, Shift>, text: &str) -> Result<(), String> {
    a.draw(&Text::new(
        text.to_string(),
        (20, (H / 2) as i32),
        (FAMILY, 16).into_font().color(&BLACK),
    ))
    .map_err(err)
}

/// A vertical (or, on the shots plot, horizontal) line at a latency.
struct Mark {
    at: f64,
    label: String,
    color: RGBColor,
    dashed: bool,
}

/// A limit's band: from `lo` to `hi`, ms.
struct Band {
    lo: f64,
    hi: f64,
}

fn is_location(s: Statistic) -> bool {
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

fn fmt_num(v: f64) -> String {
    let s = format!("{v}");
    if s.len() > 8 {
        format!("{v:.3}")
    } else {
        s
    }
}

/// The limits on location statistics and their bands, in ms; the median and p95.
fn marks(d: &StepData) -> (Vec<Mark>, Vec<Band>, Vec<Mark>) {
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
        if let Some(max) = l.limit.max {
            limits.push(Mark {
                at: max * per,
                label: format!("limit: {stat} ≤ {} {unit}", fmt_num(max)),
                color: LIMIT,
                dashed: false,
            });
            if band > 0.0 {
                bands.push(Band {
                    lo: (max - band) * per,
                    hi: max * per,
                });
            }
        }
        if let Some(min) = l.limit.min {
            limits.push(Mark {
                at: min * per,
                label: format!("limit: {stat} ≥ {} {unit}", fmt_num(min)),
                color: LIMIT,
                dashed: false,
            });
            if band > 0.0 {
                bands.push(Band {
                    lo: min * per,
                    hi: (min + band) * per,
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

fn values(shots: &[ShotRow]) -> Vec<f64> {
    shots.iter().filter_map(|s| s.value).collect()
}

/// The latency axis: the data, widened to take in each limit that lies near
/// it (within 1.5 times the data's span, or 2 ms), padded by 5 %.
fn axis(values: &[f64], limits: &[Mark]) -> (f64, f64) {
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
fn ticks(span: f64) -> impl Fn(&f64) -> String {
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

fn whole(v: &f64) -> String {
    format!("{v:.0}")
}

fn in_range(x: f64, r: (f64, f64)) -> bool {
    x >= r.0 && x <= r.1
}

fn off_scale_label(m: &Mark, r: (f64, f64)) -> String {
    if m.at > r.1 {
        format!("{} (off scale →)", m.label)
    } else {
        format!("{} (← off scale)", m.label)
    }
}

fn legend_line(c: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
}

fn histogram<DB: DrawingBackend>(a: &DrawingArea<DB, Shift>, d: &StepData) -> Result<(), String> {
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
    for m in limits {
        chart
            .draw_series(LineSeries::new(
                vec![(m.at, 0.0), (m.at, 1.0)],
                m.color.stroke_width(2),
            ))
            .map_err(err)?;
    }
    chart
        .draw_series(
            v.iter().map(|x| {
                PathElement::new(vec![(*x, 0.25), (*x, 0.75)], BAR.mix(0.6).stroke_width(1))
            }),
        )
        .map_err(err)?;
    for m in stats {
        chart
            .draw_series(LineSeries::new(
                vec![(m.at, 0.1), (m.at, 0.9)],
                m.color.stroke_width(2),
            ))
            .map_err(err)?;
    }
    Ok(())
}

type Chart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn vlines<'a, DB: DrawingBackend + 'a>(
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
            // Named in the legend only.
            chart
                .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
                .map_err(err)?
                .label(off_scale_label(m, r))
                .legend(legend_line(m.color));
        }
    }
    Ok(())
}

fn legend<'a, DB: DrawingBackend + 'a>(chart: &mut Chart<'a, DB>) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FAMILY, 12))
        .draw()
        .map_err(err)
}

fn cdf<DB: DrawingBackend>(a: &DrawingArea<DB, Shift>, d: &StepData) -> Result<(), String> {
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
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FAMILY, 12))
        .draw()
        .map_err(err)
}

fn shots<DB: DrawingBackend>(a: &DrawingArea<DB, Shift>, d: &StepData) -> Result<(), String> {
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
            chart
                .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
                .map_err(err)?
                .label(off_scale_label(m, r))
                .legend(legend_line(m.color));
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

fn sync<DB: DrawingBackend>(a: &DrawingArea<DB, Shift>, d: &StepData) -> Result<(), String> {
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

fn correlation<DB: DrawingBackend>(
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
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FAMILY, 12))
        .draw()
        .map_err(err)?;
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
