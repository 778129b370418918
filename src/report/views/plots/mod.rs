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
//!
//! Here: which plots a step has, their words, the font, the colours and
//! the SVG and PNG canvases; `scale` the marks and axes they share;
//! `distribution` the histogram and CDF; `series` the shots, sync and
//! correlation plots.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

mod distribution;
mod scale;
mod series;

use super::glyphs;
use super::{Options, StepData};
use crate::report::Report;

/// DejaVu Sans (licence: assets/fonts/LICENSE-DejaVu.txt).
static FONT: &[u8] = include_bytes!("../../../../assets/fonts/DejaVuSans.ttf");

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
        Kind::Histogram => distribution::histogram(a, d),
        Kind::Cdf => distribution::cdf(a, d),
        Kind::Shots => series::shots(a, d),
        Kind::Sync => series::sync(a, d),
        Kind::Correlation => match &d.correlation {
            Some(Ok(c)) => series::correlation(a, c),
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
