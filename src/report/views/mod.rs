//! The human views of a report: plots/, report.html and junit.xml.
//!
//! Owns rendering them from a [`Report`] (report.json's record) and the files
//! beside it: measurements.csv (each shot) and raw/ (the captures behind the
//! correlation plot). A run renders them from its own directory just before
//! report.json is written; `certlab report render` renders them again from a
//! finished report into a new directory, so both go through the same reading
//! of the same files. Every file is written whole ([`AtomicFile`]).
//!
//! It must not measure, judge, sign or mark: it shows what the record says
//! (outcomes, limits, marking and its reasons) and never decides them. It
//! never writes report.json, measurements.csv or raw/, and writes nothing
//! into the report directory after `run` hands it back.

mod glyphs;
mod html;
mod junit;
mod plots;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Report, StepRecord};
use crate::files::AtomicFile;
use crate::{Error, Result};

/// What to render besides the defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Also write each plot as PNG next to its SVG.
    pub png: bool,
}

/// Render the views of the report in `dir` from its own measurements.csv and
/// raw/ into `dir`; returns the paths written, relative to `dir`.
pub fn write(dir: &Path, report: &Report) -> Result<Vec<String>> {
    let t0 = std::time::Instant::now();
    let written = render_views(dir, dir, report, Options::default(), true)?;
    tracing::info!(
        files = written.len(),
        seconds = t0.elapsed().as_secs_f64(),
        "report views written"
    );
    Ok(written)
}

/// Render the views of the report whose files are in `src` into `out`;
/// returns the paths written, relative to `out`. Missing or unreadable
/// inputs are bad input (exit 3); a file that cannot be written is the
/// harness's failure (exit 2).
///
/// When `out` is not `src`, it must be new or empty; it is created only once
/// every input has been read, so a refused render leaves nothing behind.
pub fn render(src: &Path, out: &Path, report: &Report, opts: Options) -> Result<Vec<String>> {
    render_views(src, out, report, opts, false)
}

/// `lenient`: a raw capture that cannot be read is shown as a plot not drawn
/// (a run must still write its report) rather than refused.
fn render_views(
    src: &Path,
    out: &Path,
    report: &Report,
    opts: Options,
    lenient: bool,
) -> Result<Vec<String>> {
    let data = load(src, report, lenient)?;
    if out != src {
        super::create_report_dir(out)?;
    }
    let mut written = Vec::new();
    let put = |rel: &str, bytes: &[u8], written: &mut Vec<String>| -> Result<()> {
        AtomicFile::write(&out.join(rel), bytes)
            .map_err(|e| Error::Harness(format!("cannot write {rel} in {}: {e}", out.display())))?;
        written.push(rel.to_string());
        Ok(())
    };
    let mut plots_of_steps = Vec::with_capacity(data.steps.len());
    for step in &data.steps {
        let plots = plots::for_step(report, step, opts);
        for p in &plots {
            if let Ok(svg) = &p.svg {
                put(&p.path_svg(), svg.as_bytes(), &mut written)?;
            }
            if let Some(Ok(png)) = &p.png {
                put(&p.path_png(), png, &mut written)?;
            }
        }
        plots_of_steps.push(plots);
    }
    let page = html::page(report, &data, &plots_of_steps);
    put("report.html", page.as_bytes(), &mut written)?;
    let xml = junit::document(report)
        .map_err(|e| Error::Harness(format!("cannot render junit.xml: {e}")))?;
    put("junit.xml", &xml, &mut written)?;
    Ok(written)
}

/// One row of measurements.csv, as read back.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ShotRow {
    pub step: String,
    pub shot: u32,
    #[serde(deserialize_with = "opt_f64")]
    pub value: Option<f64>,
    #[serde(deserialize_with = "opt_f64")]
    pub uncertainty: Option<f64>,
    pub status: String,
    #[serde(default)]
    pub detail: String,
    /// Absent from reports written before it was recorded.
    #[serde(default, deserialize_with = "opt_f64")]
    pub sync_bound_us: Option<f64>,
}

fn opt_f64<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<f64>, D::Error> {
    let s = String::deserialize(d)?;
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<f64>()
        .map(|v| v.is_finite().then_some(v))
        .map_err(serde::de::Error::custom)
}

/// The correlation of the stimulus over a typical shot's window.
#[derive(Debug, Clone)]
pub(crate) struct Correlation {
    pub shot: u32,
    /// Normalised correlation at each lag, from `start_ms` after the emission.
    pub rho: Vec<f32>,
    pub start_ms: f64,
    pub sample_rate: u32,
    /// Where the reported latency puts the peak, ms after the emission
    /// (the rig's loopback delay included for a round trip).
    pub expected_ms: f64,
}

/// A step's record with the data its plots need.
pub(crate) struct StepData<'a> {
    /// Position in the profile, for unique file names.
    pub index: usize,
    pub rec: &'a StepRecord,
    pub shots: Vec<ShotRow>,
    /// Why there is no correlation trace, or the trace.
    pub correlation: Option<std::result::Result<Correlation, String>>,
}

impl StepData<'_> {
    pub fn is_latency(&self) -> bool {
        self.rec.kind.ends_with("-latency")
    }
    pub fn is_audio(&self) -> bool {
        self.rec.kind.starts_with("audio-") && self.is_latency()
    }
    /// A file-name stem for this step's plots: its position and its id, with
    /// anything but ASCII letters, digits, '-' and '_' replaced (the id comes
    /// from the record, which `render` reads from a file).
    pub fn stem(&self) -> String {
        let id: String = self
            .rec
            .id
            .chars()
            .take(48)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{:02}-{id}", self.index + 1)
    }
}

pub(crate) struct Data<'a> {
    pub steps: Vec<StepData<'a>>,
}

fn bad(what: &Path, e: impl std::fmt::Display) -> Error {
    Error::BadInput(format!("{}: {e}", what.display()))
}

fn load<'a>(src: &Path, report: &'a Report, lenient: bool) -> Result<Data<'a>> {
    let csv_path = src.join("measurements.csv");
    let text = std::fs::read(&csv_path).map_err(|e| bad(&csv_path, e))?;
    let mut rd = csv::Reader::from_reader(text.as_slice());
    let mut by_step: BTreeMap<String, Vec<ShotRow>> = BTreeMap::new();
    for (i, row) in rd.deserialize::<ShotRow>().enumerate() {
        let row = row.map_err(|e| bad(&csv_path, format!("row {}: {e}", i + 2)))?;
        by_step.entry(row.step.clone()).or_default().push(row);
    }
    let mut steps = Vec::with_capacity(report.steps.len());
    for (index, rec) in report.steps.iter().enumerate() {
        let shots = by_step.remove(&rec.id).unwrap_or_default();
        let mut d = StepData {
            index,
            rec,
            shots,
            correlation: None,
        };
        if d.is_audio() && !d.shots.is_empty() {
            d.correlation = Some(match correlation(src, report, &d) {
                Ok(c) => c,
                // A run shows what it could not draw; a render refuses a
                // report whose raw data is missing or unreadable.
                Err(e) if lenient => Err(e.to_string()),
                Err(e) => return Err(e),
            });
        }
        steps.push(d);
    }
    Ok(Data { steps })
}

/// The shot to show: the measured one nearest the median.
pub(crate) fn typical_shot(shots: &[ShotRow]) -> Option<&ShotRow> {
    let mut v: Vec<f64> = shots.iter().filter_map(|s| s.value).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let median = v[v.len() / 2];
    shots.iter().filter(|s| s.value.is_some()).min_by(|a, b| {
        let da = (a.value.unwrap_or(f64::NAN) - median).abs();
        let db = (b.value.unwrap_or(f64::NAN) - median).abs();
        da.total_cmp(&db)
    })
}

#[derive(Deserialize)]
struct CaptureMeta {
    sample_rate: u32,
    #[serde(default)]
    emitted_at_samples: Vec<Option<f64>>,
}

fn read_wav(path: &Path) -> Result<(u32, Vec<f32>)> {
    let mut r = hound::WavReader::open(path).map_err(|e| bad(path, e))?;
    let spec = r.spec();
    if spec.channels != 1 || spec.sample_format != hound::SampleFormat::Float {
        return Err(bad(
            path,
            "expected the mono 32-bit float WAV certlab writes",
        ));
    }
    let samples = r
        .samples::<f32>()
        .collect::<std::result::Result<Vec<f32>, _>>()
        .map_err(|e| bad(path, e))?;
    Ok((spec.sample_rate, samples))
}

/// Recompute the correlation of a typical shot from the step's raw capture.
/// A missing raw file the record names is bad input; a step that kept no
/// capture, or no measured shot, has no trace and says why.
fn correlation(
    src: &Path,
    report: &Report,
    d: &StepData,
) -> Result<std::result::Result<Correlation, String>> {
    let own = |suffix: &str| {
        d.rec
            .raw
            .iter()
            .find(|r| r.ends_with(suffix) && !r.contains("-attempt"))
            .cloned()
    };
    let (Some(cap), Some(stim)) = (
        own(&format!("{}.wav", d.rec.id)).filter(|r| !r.ends_with("-stimulus.wav")),
        own("-stimulus.wav"),
    ) else {
        return Ok(Err("the step kept no capture and stimulus".into()));
    };
    let Some(shot) = typical_shot(&d.shots) else {
        return Ok(Err("no shot was measured".into()));
    };
    let value = shot.value.unwrap_or(0.0);
    let meta_path = src.join(PathBuf::from(&cap).with_extension("json"));
    let meta: CaptureMeta =
        serde_json::from_slice(&std::fs::read(&meta_path).map_err(|e| bad(&meta_path, e))?)
            .map_err(|e| bad(&meta_path, e))?;
    let (rate, capture) = read_wav(&src.join(&cap))?;
    let (_, stimulus) = read_wav(&src.join(&stim))?;
    if rate != meta.sample_rate || rate == 0 {
        return Err(bad(&meta_path, "its sample rate is not the capture's"));
    }
    let Some(Some(at)) = meta.emitted_at_samples.get(shot.shot as usize).copied() else {
        return Ok(Err(format!(
            "the capture does not say where shot {} was emitted",
            shot.shot
        )));
    };
    let loopback_ms = if d.rec.kind == "audio-roundtrip-latency" {
        report.station.rig.loopback_delay_us as f64 / 1e3
    } else {
        0.0
    };
    let expected_ms = value + loopback_ms;
    let per_ms = rate as f64 / 1e3;
    // From 5 ms before the emission to well past the peak.
    let lo_ms = -5.0;
    let hi_ms = (2.0 * expected_ms).max(expected_ms + 20.0);
    let start = (at + lo_ms * per_ms).floor().max(0.0) as usize;
    let stop = ((at + hi_ms * per_ms).ceil() as usize + stimulus.len()).min(capture.len());
    if stop <= start || stop - start <= stimulus.len() {
        return Ok(Err(format!(
            "shot {}'s window lies outside the capture",
            shot.shot
        )));
    }
    let rho = crate::measure::trace::correlation(&stimulus, &capture[start..stop]);
    if rho.is_empty() {
        return Ok(Err("the stimulus or the window is silent".into()));
    }
    Ok(Ok(Correlation {
        shot: shot.shot,
        rho,
        start_ms: (start as f64 - at) / per_ms,
        sample_rate: rate,
        expected_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::StepOutcome;
    use serde_json::json;

    /// A report whose every string holds markup, quotes and a control character.
    fn hostile() -> Report {
        let e = "<i>x</i>\"'&\u{1}";
        let mut v = json!({
            "schema": "certlab-report/1", "outcome": "FAIL", "reason": e,
            "marking": "UNOFFICIAL", "marking_reasons": [e], "notice": e,
            "profile": {"id": e, "version": e, "sha256": e, "program": e, "title": e},
            "vendor": e,
            "device": {"spec": e, "class": "speakerphone", "vid": e, "pid": e, "serial": e,
                       "firmware": e, "manufacturer": e, "product": e,
                       "descriptors_sha256": e, "simulated": true},
            "station": {"host": e, "os": e, "arch": e,
                        "rig": {"kind": e, "serial": e, "firmware": e, "protocol": 1,
                                "mic_sample_rates": [], "loopback_delay_us": 0},
                        "rig_link": {"frames": 0, "corrupt_frames": 0, "skipped_bytes": 0,
                                     "lost_frames": 0, "restarts": 0},
                        "scenario": {"path": e, "sha256": e}},
            "clock_sync": {"bound_us": 1.0, "drift_ppm": 0.0, "resyncs": 0, "exchanges": 0},
            "started_at": "2026-11-22T20:15:00.000000Z",
            "finished_at": "2026-11-22T20:16:00.000000Z",
            "harness": {"name": e, "version": e},
            "steps": [{
                "id": format!("../{e}"), "kind": e, "title": e, "outcome": "FAIL", "reason": e,
                "unit": "ms", "stats": null, "uncertainty_ms": null, "median_uncertainty_ms": null,
                "limits": [{"statistic": "median", "max": 1.0, "unit": "ms", "value": 2.0,
                            "verdict": "FAIL", "reason": e}],
                "requirements": [{"requirement": e, "met": false, "evidence": e}],
                "shots": {"planned": 0, "measured": 0, "missed": 0},
                "anomalies": {"gap_blocks": 0, "overrun_blocks": 0, "corrupt_blocks": 0,
                              "dropped_frames": 0, "missed_shots": 0, "station_missed_shots": 0,
                              "outlier_shots": [], "sync_bursts": 0, "rig_restarts": 0},
                "started_at": "2026-11-22T20:15:00.000000Z",
                "finished_at": "2026-11-22T20:16:00.000000Z", "raw": [e]
            }]
        });
        v["marking_notes"] = json!([e]);
        v["signer"] = json!({"kind": "lab", "key_id": e, "lab_id": e});
        v["trust"] = json!([{"name": e, "kind": e, "sha256": e}]);
        serde_json::from_value(v).expect("the hostile report deserializes")
    }

    #[test]
    fn every_record_string_is_escaped_in_the_page_and_the_xml() {
        let r = hostile();
        let data = Data {
            steps: vec![StepData {
                index: 0,
                rec: &r.steps[0],
                shots: Vec::new(),
                correlation: None,
            }],
        };
        let page = html::page(&r, &data, &[Vec::new()]);
        assert!(
            !page.contains("<i>"),
            "markup from the record reached the page"
        );
        assert!(
            !page.contains('\u{1}'),
            "a control character reached the page"
        );
        // Every string field shows up escaped (one each at least).
        assert!(
            page.matches("&lt;i&gt;x&lt;/i&gt;&quot;&#39;&amp;\u{FFFD}")
                .count()
                >= 30
        );
        // Tags are only the page's own.
        for tag in page.split('<').skip(1) {
            let name: String = tag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '!')
                .collect();
            assert!(name != "i" && name != "/i", "<{tag}");
        }
        let xml = junit::document(&r).unwrap();
        let text = String::from_utf8(xml).unwrap();
        let doc = roxmltree::Document::parse(&text).expect("junit.xml parses");
        let failures = doc
            .descendants()
            .filter(|n| n.has_tag_name("failure"))
            .count();
        assert_eq!(failures, 2, "the step and its requirement");
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        assert!(suite
            .attribute("name")
            .unwrap()
            .contains("<i>x</i>\"'&\u{FFFD}"));
    }

    #[test]
    fn junit_maps_each_outcome_to_its_element() {
        let mut r = hostile();
        let base = r.steps[0].clone();
        r.steps.clear();
        for (id, outcome) in [
            ("p", StepOutcome::Pass),
            ("m", StepOutcome::Marginal),
            ("f", StepOutcome::Fail),
            ("e", StepOutcome::Error),
            ("s", StepOutcome::Skipped),
        ] {
            let mut st = base.clone();
            st.id = id.into();
            st.outcome = outcome;
            st.requirements.clear();
            st.reason = (outcome != StepOutcome::Pass).then(|| format!("why {id}"));
            r.steps.push(st);
        }
        let xml = String::from_utf8(junit::document(&r).unwrap()).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let case = |id: &str| {
            doc.descendants()
                .find(|n| {
                    n.has_tag_name("testcase")
                        && n.attribute("name").unwrap().starts_with(&format!("{id}: "))
                })
                .unwrap()
        };
        let child = |id: &str| {
            case(id)
                .children()
                .find(|n| n.is_element())
                .map(|n| (n.tag_name().name().to_string(), n))
        };
        assert!(child("p").is_none_or(|(t, _)| t == "system-out"));
        let (t, n) = child("m").unwrap();
        assert_eq!(t, "system-out");
        assert!(n.text().unwrap().starts_with("MARGINAL: why m"));
        for (id, tag) in [("f", "failure"), ("e", "error"), ("s", "skipped")] {
            let (t, n) = child(id).unwrap();
            assert_eq!(t, tag);
            assert_eq!(n.attribute("message"), Some(format!("why {id}").as_str()));
        }
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        for (a, want) in [
            ("tests", "5"),
            ("failures", "1"),
            ("errors", "1"),
            ("skipped", "1"),
        ] {
            assert_eq!(suite.attribute(a), Some(want), "{a}");
        }
    }

    #[test]
    fn plot_file_names_stay_inside_plots() {
        let r = hostile();
        let d = StepData {
            index: 2,
            rec: &r.steps[0],
            shots: Vec::new(),
            correlation: None,
        };
        let stem = d.stem();
        assert!(stem.starts_with("03-"));
        assert!(stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
