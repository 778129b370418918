//! The record of a run: report.json, measurements.csv, raw data, and the verdict table.
//!
//! Owns the report's schema (`SCHEMA`), naming step and run outcomes from
//! the verdicts `profile::judge` gives, and writing the report directory (each
//! file whole, through `files::AtomicFile`, report.json last). It does not
//! measure, compute statistics or uncertainties (`measure::stats`), or decide
//! limits or how missed shots count (`profile::judge`); it records what they
//! produced.

pub mod views;
mod write;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::measure::measurement::{
    Anomalies, Measurement, RawData, RequirementResult, RigSide, Shot, SyncConversion,
};
use crate::measure::stats::StepStatistics;
use crate::profile::judge::{judge, judge_step, LimitResult, StepFacts, StepVerdict, Verdict};
use crate::profile::{Profile, Step};
use crate::station::{DeviceIdentity, LinkStats, RigInfo};
use crate::statistic::Stats;
use crate::trust::statement::{SignerRecord, TrustRef};

pub use write::{create_report_dir, default_dir_name, write_files};

/// Version of report.json's layout.
pub const SCHEMA: &str = "certlab-report/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    Pass,
    Fail,
    Error,
    Aborted,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Error => "ERROR",
            Outcome::Aborted => "ABORTED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StepOutcome {
    Pass,
    Marginal,
    Fail,
    Error,
    Skipped,
}

impl StepOutcome {
    /// The outcome a judged step records.
    pub fn of(verdict: StepVerdict) -> StepOutcome {
        match verdict {
            StepVerdict::StationFault => StepOutcome::Error,
            StepVerdict::Judged(Verdict::Pass) => StepOutcome::Pass,
            StepVerdict::Judged(Verdict::Marginal) => StepOutcome::Marginal,
            StepVerdict::Judged(Verdict::Fail) => StepOutcome::Fail,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StepOutcome::Pass => "PASS",
            StepOutcome::Marginal => "MARGINAL",
            StepOutcome::Fail => "FAIL",
            StepOutcome::Error => "ERROR",
            StepOutcome::Skipped => "SKIPPED",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileRef {
    pub id: String,
    pub version: String,
    pub sha256: String,
    pub program: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Harness {
    pub name: String,
    pub version: String,
}

impl Default for Harness {
    fn default() -> Self {
        Harness {
            name: "certlab".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scenario {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StationRecord {
    pub host: String,
    pub os: String,
    pub arch: String,
    pub rig: RigInfo,
    /// Damage on the serial link to the rig over the run.
    pub rig_link: LinkStats,
    /// The scenario of a simulated station.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<Scenario>,
    /// "real" or "virtual" (the in-process simulated station's clock).
    #[serde(default = "real_clock")]
    pub clock: String,
    /// The station calibration the run was given (`--station`), whether it
    /// was used and why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<crate::run::calibration::CalibrationRecord>,
}

fn real_clock() -> String {
    "real".into()
}

/// Quality of the rig clock synchronisation over the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClockSyncRecord {
    /// Widest full width of the offset bound over the steps, µs.
    pub bound_us: f64,
    /// Rig clock rate against the host, ppm.
    pub drift_ppm: f64,
    /// Sync bursts after the first.
    pub resyncs: u32,
    pub exchanges: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShotCounts {
    pub planned: u32,
    pub measured: u32,
    pub missed: u32,
}

/// One step's outcome and everything it rests on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub outcome: StepOutcome,
    /// Why, when the outcome is not PASS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub unit: String,
    pub stats: Option<Stats>,
    /// Expanded (k = 2) instrument uncertainty of each statistic, ms: the
    /// widest shot uncertainty (clock-sync bound, detection, time stamps).
    pub uncertainty_ms: Option<f64>,
    /// Expanded uncertainty of the median as an estimate of the device's
    /// median latency: instrument and sampling (k = 2), ms.
    pub median_uncertainty_ms: Option<f64>,
    pub limits: Vec<LimitResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<RequirementResult>,
    pub shots: ShotCounts,
    pub anomalies: Anomalies,
    /// Rate of the captured stream's clock against its time stamps, ppm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_drift_ppm: Option<f64>,
    /// Which clock-sync estimate the shots that cross the rig's clock were
    /// converted with (and so their values, uncertainties, sync bounds and
    /// this step's verdict): `run`, the run's final estimate of the same
    /// rig clock, or `step`, the step's own (the rig restarted after it).
    /// Absent when no shot crosses the rig's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shots_converted_with: Option<SyncConversion>,
    /// The station calibration's terms subtracted from every measured shot
    /// (values, statistics and verdicts include it); absent when none was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub station_corrections: Vec<crate::run::calibration::Correction>,
    #[serde(with = "crate::timestamp::serde_record")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::timestamp::serde_record")]
    pub finished_at: DateTime<Utc>,
    /// Raw data files of this step, relative to the report directory.
    pub raw: Vec<String>,
}

/// report.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// OFFICIAL or UNOFFICIAL (`trust::marking`).
    pub marking: String,
    /// When UNOFFICIAL, every condition that failed; when OFFICIAL, its grounds.
    pub marking_reasons: Vec<String>,
    /// Facts about the trust documents that do not change the marking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marking_notes: Vec<String>,
    /// The UNOFFICIAL notice; absent from an OFFICIAL report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// Who signs the report (report.dsse.json).
    pub signer: SignerRecord,
    /// The trust documents the marking rests on, kept under trust/.
    pub trust: Vec<TrustRef>,
    pub profile: ProfileRef,
    pub vendor: String,
    pub device: DeviceIdentity,
    pub station: StationRecord,
    pub clock_sync: ClockSyncRecord,
    #[serde(with = "crate::timestamp::serde_record")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::timestamp::serde_record")]
    pub finished_at: DateTime<Utc>,
    pub harness: Harness,
    pub steps: Vec<StepRecord>,
}

impl ProfileRef {
    pub fn of(p: &Profile) -> Self {
        ProfileRef {
            id: p.id.clone(),
            version: p.version.clone(),
            sha256: p.sha256.clone(),
            program: p.program.clone(),
            title: p.title.clone(),
        }
    }
}

/// How a step ended, apart from its data.
pub enum Ending {
    /// It ran to the end (or stopped with an error the measurement reports).
    Finished,
    /// It was stopped by its timeout.
    TimedOut(f64),
    /// The operator aborted the run.
    Aborted,
}

/// Build a step's record from its measurement: the statistics and
/// uncertainties `measure` computes, and the verdicts `profile::judge` gives.
pub fn step_record(
    step: &Step,
    m: &Measurement,
    ending: Ending,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    raw: Vec<String>,
) -> StepRecord {
    let values: Vec<f64> = m.shots.iter().filter_map(|s| s.value_ms()).collect();
    let shot_u: Vec<f64> = m.shots.iter().filter_map(|s| s.uncertainty_ms()).collect();
    let StepStatistics {
        stats,
        uncertainty_ms,
        median_uncertainty_ms,
    } = StepStatistics::of(&values, &shot_u);
    let limits = match &stats {
        Some(s) => judge(&step.limits, s, uncertainty_ms.unwrap_or(0.0)),
        None => Vec::new(),
    };
    let planned = if step.kind.is_latency() {
        step.params.shots
    } else {
        m.shots.len() as u32
    };
    let missed = m.anomalies.missed_shots;
    let (outcome, reason) = match ending {
        Ending::Aborted => (
            StepOutcome::Error,
            Some("aborted by the operator (Ctrl-C)".to_string()),
        ),
        Ending::TimedOut(s) => (
            StepOutcome::Error,
            Some(format!(
                "timed out after {s:.0} s (timeout_s in the profile)"
            )),
        ),
        Ending::Finished => match &m.error {
            Some(e) => (StepOutcome::Error, Some(e.clone())),
            None => {
                let facts = StepFacts {
                    shots: m.shots.len(),
                    missed,
                    station_missed: m.anomalies.station_missed_shots,
                    measured: stats.is_some(),
                    unmet: m
                        .requirements
                        .iter()
                        .filter(|r| !r.met)
                        .map(|r| (r.requirement.as_str(), r.evidence.as_str()))
                        .collect(),
                };
                let (verdict, reason) = judge_step(step, &facts, &limits);
                (StepOutcome::of(verdict), reason)
            }
        },
    };
    StepRecord {
        id: step.id.clone(),
        kind: step.kind.name().into(),
        title: step.title.clone(),
        outcome,
        reason,
        unit: "ms".into(),
        stats,
        uncertainty_ms,
        median_uncertainty_ms,
        limits,
        requirements: m.requirements.clone(),
        shots: ShotCounts {
            planned,
            measured: values.len() as u32,
            missed,
        },
        anomalies: m.anomalies.clone(),
        stream_drift_ppm: m.stream_drift_ppm,
        shots_converted_with: m
            .shots
            .iter()
            .any(|s| s.crossing.is_some())
            .then_some(m.sync_conversion),
        station_corrections: Vec::new(),
        started_at,
        finished_at,
        raw,
    }
}

/// The raw table of a step's shots that cross the rig's clock
/// (`<step>-crossings.csv`): the rig time where each crosses it, and the
/// host time and bound half-width the estimate the step names in
/// `shots_converted_with` gives it, so that the conversion can be checked
/// or redone. `None` when no shot crosses the rig's clock.
pub fn crossings_table(step: &Step, m: &Measurement) -> Option<RawData> {
    let rows: Vec<Vec<String>> = m
        .shots
        .iter()
        .filter_map(|s| {
            let (c, (host, hw_ns)) = (s.crossing?, s.crossed_at?);
            Some(vec![
                s.index.to_string(),
                match c.side {
                    RigSide::Emission => "emission",
                    RigSide::Capture => "capture",
                }
                .into(),
                c.rig.0.to_string(),
                host.0.to_string(),
                format!("{hw_ns:.3}"),
                match m.sync_conversion {
                    SyncConversion::Run => "run",
                    SyncConversion::Step => "step",
                }
                .into(),
            ])
        })
        .collect();
    (!rows.is_empty()).then(|| RawData::Table {
        name: format!("{}-crossings.csv", step.id),
        header: vec![
            "shot",
            "rig_side",
            "rig_time_us",
            "host_time_ns",
            "sync_half_width_ns",
            "estimate",
        ],
        rows,
    })
}

/// A step that did not run.
pub fn skipped_record(step: &Step, why: &str, at: DateTime<Utc>) -> StepRecord {
    StepRecord {
        id: step.id.clone(),
        kind: step.kind.name().into(),
        title: step.title.clone(),
        outcome: StepOutcome::Skipped,
        reason: Some(why.to_string()),
        unit: "ms".into(),
        stats: None,
        uncertainty_ms: None,
        median_uncertainty_ms: None,
        limits: Vec::new(),
        requirements: Vec::new(),
        shots: ShotCounts {
            planned: if step.kind.is_latency() {
                step.params.shots
            } else {
                0
            },
            measured: 0,
            missed: 0,
        },
        anomalies: Anomalies::default(),
        stream_drift_ppm: None,
        shots_converted_with: None,
        station_corrections: Vec::new(),
        started_at: at,
        finished_at: at,
        raw: Vec::new(),
    }
}

/// The run's outcome from its steps' and how it ended.
pub fn overall(steps: &[StepRecord], aborted: bool) -> Outcome {
    if aborted {
        Outcome::Aborted
    } else if steps.iter().any(|s| s.outcome == StepOutcome::Error) {
        Outcome::Error
    } else if steps.iter().any(|s| s.outcome == StepOutcome::Fail) {
        Outcome::Fail
    } else {
        Outcome::Pass
    }
}

/// The verdict table printed at the end of a run.
pub fn verdict_table(r: &Report) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "STEP".into(),
        "KIND".into(),
        "STATISTIC".into(),
        "VALUE".into(),
        "LIMIT".into(),
        "OUTCOME".into(),
    ]];
    for s in &r.steps {
        let u = s
            .uncertainty_ms
            .map(|u| format!(" ± {u:.3}"))
            .unwrap_or_default();
        if s.limits.is_empty() {
            let (stat, value) = if !s.requirements.is_empty() {
                let met = s.requirements.iter().filter(|q| q.met).count();
                (
                    "requirements".to_string(),
                    format!("{met}/{} met", s.requirements.len()),
                )
            } else {
                ("-".to_string(), "-".to_string())
            };
            rows.push([
                s.id.clone(),
                s.kind.clone(),
                stat,
                value,
                "-".into(),
                s.outcome.name().into(),
            ]);
        }
        for (i, l) in s.limits.iter().enumerate() {
            let unit = l.limit.unit.name();
            let bound = match (l.limit.min, l.limit.max) {
                (Some(a), Some(b)) => format!("{a}..{b} {unit}"),
                (None, Some(b)) => format!("<= {b} {unit}"),
                (Some(a), None) => format!(">= {a} {unit}"),
                (None, None) => "-".into(),
            };
            let per = l.limit.unit.to_ms();
            let uu = s
                .uncertainty_ms
                .map(|u| format!(" ± {:.3}", u / per))
                .unwrap_or_default();
            let _ = &u;
            rows.push([
                if i == 0 { s.id.clone() } else { String::new() },
                if i == 0 {
                    s.kind.clone()
                } else {
                    String::new()
                },
                l.limit.statistic.name().into(),
                format!("{:.3}{uu} {unit}", l.value),
                bound,
                format!("{:?}", l.verdict).to_uppercase(),
            ]);
        }
        if !s.limits.is_empty() {
            rows.push([
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                "step".into(),
                s.outcome.name().into(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for s in &r.steps {
        if let Some(why) = &s.reason {
            out.push_str(&format!("{} {}: {why}\n", s.id, s.outcome.name()));
        }
    }
    out.push_str(&format!("\nOUTCOME: {}", r.outcome.name()));
    if let Some(why) = &r.reason {
        out.push_str(&format!(" ({why})"));
    }
    out.push_str(&format!("\nMARKING: {}\n", r.marking));
    for why in &r.marking_reasons {
        out.push_str(&format!("  - {why}\n"));
    }
    for n in &r.marking_notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    if let Some(n) = &r.notice {
        out.push_str(&format!("{n}.\n"));
    }
    out
}

/// measurements.csv's header (docs/report-format.md).
pub const CSV_HEADER: [&str; 9] = [
    "step",
    "shot",
    "value",
    "unit",
    "uncertainty",
    "timestamp",
    "status",
    "detail",
    "sync_bound_us",
];

/// One row of measurements.csv.
pub type CsvRow = [String; 9];

/// The rows of measurements.csv for a step's shots.
pub fn csv_rows(
    step: &Step,
    shots: &[Shot],
    utc_of: &dyn Fn(crate::time::HostTime) -> DateTime<Utc>,
) -> Vec<CsvRow> {
    shots
        .iter()
        .map(|s| {
            [
                step.id.clone(),
                s.index.to_string(),
                s.value_ms().map(|v| format!("{v:.6}")).unwrap_or_default(),
                "ms".into(),
                s.uncertainty_ms()
                    .map(|v| format!("{v:.6}"))
                    .unwrap_or_default(),
                crate::timestamp::record(utc_of(s.emitted)),
                if s.value_ms().is_some() {
                    "measured"
                } else {
                    "missed"
                }
                .into(),
                s.detail.clone(),
                s.sync_bound_us
                    .map(|v| format!("{v:.3}"))
                    .unwrap_or_default(),
            ]
        })
        .collect()
}
