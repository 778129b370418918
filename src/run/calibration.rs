//! Station calibration in a run (`--station`): whether the calibration may
//! be used (made on the run's rig, no older than the profile allows), and
//! what each step's figures lose to it.
//!
//! Owns the check, the record of the calibration in report.json
//! (`station.calibration`), and the correction of a step's measured shots:
//! each calibrated term's share of the step's path, subtracted from every
//! shot's value, its uncertainty combined into the shot's (an expanded
//! k = 2 term in quadrature with the shot's own, the clock-sync half-width
//! still added linearly). It measures nothing (`certlab calibrate` does,
//! through `measure::rig_path`), reads no file (`station::audio_rig::
//! station_file` does) and judges nothing (the profile does, after it).
//!
//! **What each term means to a step.** The interface's loopback L (output
//! to input through a cable) is the sum of what its output and its input
//! add beyond their stamps. A round trip passes through both, so it loses
//! all of L, with L's uncertainty. Send, video and button steps pass
//! through the output only, receive steps through the input only; a
//! loopback cannot tell how L splits, so each loses L/2 with the split's
//! whole range as a rectangular distribution (each share lies in 0..L:
//! σ = L/(2√3)) besides half of L's own uncertainty. The speaker-to-
//! microphone term contains the air of the calibration jig, whose length
//! the file does not hold: it is recorded, and subtracted from nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::measure::measurement::{Measurement, ShotOutcome, K};
use crate::profile::StepKind;
use crate::station::audio_rig::station_file::{Calibrated, Calibration, Term};

/// Seconds in a day.
const DAY_S: f64 = 86_400.0;

/// One calibrated term as report.json records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermRecord {
    /// `loopback` or `acoustic`.
    pub name: String,
    pub latency_us: f64,
    /// Expanded (k = 2) uncertainty, µs.
    pub uncertainty_us: f64,
    #[serde(with = "crate::timestamp::serde_record")]
    pub measured: DateTime<Utc>,
    /// Its age at the start of the run, days.
    pub age_days: f64,
    pub shots: u32,
    /// What the run does with it.
    #[serde(rename = "use")]
    pub use_: TermUse,
}

/// What a run does with a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TermUse {
    /// Subtracted from the steps whose path holds it (`station_corrections`).
    Subtracted,
    /// Recorded only (the jig's air is in it).
    Recorded,
}

/// `station.calibration` in report.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRecord {
    /// The station file as given to `--station`.
    pub path: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// The rig it was measured on.
    pub rig_serial: String,
    pub terms: Vec<TermRecord>,
    /// The oldest term's age at the start of the run, days.
    pub age_days: f64,
    /// The profile's `calibration_max_age_days`, if it sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<f64>,
    /// Why the run could not use it: every step that crosses the rig is
    /// ERROR with this reason. Absent when it was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// One term subtracted from one step's shots (`steps[].station_corrections`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    /// The calibration term.
    pub term: String,
    /// Which share of it the step's path holds: `output`, `input` or `whole`.
    pub share: String,
    /// Subtracted from every measured shot, µs.
    pub subtracted_us: f64,
    /// Its expanded (k = 2) uncertainty, µs, combined into every shot's.
    pub uncertainty_us: f64,
}

/// What a run makes of the calibration it was given (or not given).
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// No calibration, and the profile needs none: figures stay as measured.
    None,
    /// Use it.
    Use(Calibration),
    /// Every step that crosses the rig is ERROR, the station's fault.
    Refuse(String),
}

/// Check `given` (from `--station`) for a run on the rig `rig_serial`
/// starting at `now`, under the profile's `max_age_days`; with its record.
pub fn check(
    given: Option<&Calibrated>,
    rig_serial: &str,
    max_age_days: Option<f64>,
    now: DateTime<Utc>,
) -> (Verdict, Option<CalibrationRecord>) {
    let Some(file) = given else {
        return match max_age_days {
            Some(d) => (
                Verdict::Refuse(format!(
                    "the profile requires a station calibration no older than {d} days; \
                     none was given (certlab calibrate, then run --station FILE)"
                )),
                None,
            ),
            None => (Verdict::None, None),
        };
    };
    let Some(cal) = &file.calibration else {
        let why = format!(
            "the station file {} has no [calibration] (certlab calibrate --station {0} --out {0})",
            file.path.display()
        );
        return match max_age_days {
            Some(_) => (Verdict::Refuse(why), None),
            None => (Verdict::None, None),
        };
    };
    let age = |t: &Term| (now - t.measured).num_milliseconds() as f64 / 1e3 / DAY_S;
    let terms: Vec<TermRecord> = [
        ("loopback", &cal.loopback, TermUse::Subtracted),
        ("acoustic", &cal.acoustic, TermUse::Recorded),
    ]
    .into_iter()
    .filter_map(|(name, t, use_)| {
        t.as_ref().map(|t| TermRecord {
            name: name.into(),
            latency_us: t.latency_us,
            uncertainty_us: t.uncertainty_us,
            measured: t.measured,
            age_days: age(t),
            shots: t.shots,
            use_,
        })
    })
    .collect();
    let oldest = terms.iter().map(|t| t.age_days).fold(0.0, f64::max);
    let refused = if cal.rig_serial != rig_serial {
        Some(format!(
            "the station calibration {} was made on the rig {:?}, not on this run's rig {:?}; \
             calibrate this rig (certlab calibrate)",
            file.path.display(),
            cal.rig_serial,
            rig_serial
        ))
    } else if let Some(t) = terms.iter().find(|t| t.age_days < -1.0 / 24.0) {
        Some(format!(
            "the station calibration {}'s {} term was measured at {}, after the run started: \
             is the host's clock right?",
            file.path.display(),
            t.name,
            crate::timestamp::record(t.measured)
        ))
    } else {
        match max_age_days {
            Some(max) if oldest > max => Some(format!(
                "the station calibration {} is {oldest:.1} days old; the profile allows \
                 {max} days (calibration_max_age_days): calibrate again (certlab calibrate)",
                file.path.display()
            )),
            _ => None,
        }
    };
    let record = CalibrationRecord {
        path: file.path.display().to_string(),
        sha256: file.sha256.clone(),
        rig_serial: cal.rig_serial.clone(),
        terms,
        age_days: oldest,
        max_age_days,
        refused: refused.clone(),
    };
    let verdict = match refused {
        Some(why) => Verdict::Refuse(why),
        None => Verdict::Use(cal.clone()),
    };
    (verdict, Some(record))
}

/// The corrections a step of `kind` takes from `cal`.
pub fn corrections(kind: StepKind, cal: &Calibration) -> Vec<Correction> {
    let Some(l) = &cal.loopback else {
        return Vec::new();
    };
    let share = match kind {
        StepKind::AudioRoundtripLatency => "whole",
        StepKind::AudioSendLatency | StepKind::VideoLatency | StepKind::ButtonHidLatency => {
            "output"
        }
        StepKind::AudioReceiveLatency => "input",
        StepKind::UsbConformance | StepKind::SerialConformance => return Vec::new(),
    };
    let (subtracted_us, uncertainty_us) = if share == "whole" {
        (l.latency_us, l.uncertainty_us)
    } else {
        let split_sd = l.latency_us / (2.0 * 3f64.sqrt());
        let own_sd = l.uncertainty_us / K / 2.0;
        (
            l.latency_us / 2.0,
            K * (split_sd.powi(2) + own_sd.powi(2)).sqrt(),
        )
    };
    vec![Correction {
        term: "loopback".into(),
        share: share.into(),
        subtracted_us,
        uncertainty_us,
    }]
}

/// Subtract `corr` from every measured shot of `m`: its value less the
/// sum, its uncertainty the clock-sync half-width plus the quadrature sum
/// of the rest and each correction's.
pub fn correct(m: &mut Measurement, corr: &[Correction]) {
    if corr.is_empty() {
        return;
    }
    let sub_ms: f64 = corr.iter().map(|c| c.subtracted_us).sum::<f64>() / 1e3;
    let u2_ms: f64 = corr.iter().map(|c| (c.uncertainty_us / 1e3).powi(2)).sum();
    for shot in &mut m.shots {
        let half_ms = shot.sync_bound_us.unwrap_or(0.0) / 2.0 / 1e3;
        if let ShotOutcome::Measured {
            value_ms,
            uncertainty_ms,
        } = &mut shot.outcome
        {
            let rest = (*uncertainty_ms - half_ms).max(0.0);
            *value_ms -= sub_ms;
            *uncertainty_ms = half_ms + (rest.powi(2) + u2_ms).sqrt();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::measurement::Shot;
    use crate::time::HostTime;
    use std::path::PathBuf;

    fn term(us: f64, u: f64, at: &str) -> Term {
        Term {
            latency_us: us,
            uncertainty_us: u,
            measured: crate::timestamp::parse(at).unwrap(),
            shots: 30,
        }
    }

    fn file(serial: &str, at: &str) -> Calibrated {
        Calibrated {
            path: PathBuf::from("station.toml"),
            sha256: "ab".repeat(32),
            calibration: Some(Calibration {
                rig_serial: serial.into(),
                loopback: Some(term(580.0, 8.0, at)),
                acoustic: Some(term(1092.0, 8.0, at)),
            }),
        }
    }

    fn now() -> DateTime<Utc> {
        crate::timestamp::parse("2026-12-04T12:00:00Z").unwrap()
    }

    #[test]
    fn another_rig_or_a_stale_calibration_is_refused_with_its_reason() {
        let f = file("RIG-A", "2026-10-01T12:00:00Z");
        let (v, rec) = check(Some(&f), "RIG-B", None, now());
        let Verdict::Refuse(why) = v else {
            panic!("{v:?}")
        };
        assert!(
            why.contains("\"RIG-A\", not on this run's rig \"RIG-B\""),
            "{why}"
        );
        assert_eq!(rec.unwrap().refused.as_deref(), Some(why.as_str()));
        // 64 days old against a 30-day limit; fine with no limit or 90 days.
        let (v, rec) = check(Some(&f), "RIG-A", Some(30.0), now());
        let Verdict::Refuse(why) = v else {
            panic!("{v:?}")
        };
        assert!(
            why.contains("is 64.0 days old; the profile allows 30 days"),
            "{why}"
        );
        assert!((rec.unwrap().age_days - 64.0).abs() < 1e-9);
        assert!(matches!(
            check(Some(&f), "RIG-A", None, now()).0,
            Verdict::Use(_)
        ));
        assert!(matches!(
            check(Some(&f), "RIG-A", Some(90.0), now()).0,
            Verdict::Use(_)
        ));
        // A profile that needs one, and none given.
        let (v, rec) = check(None, "RIG-A", Some(30.0), now());
        assert!(matches!(v, Verdict::Refuse(w) if w.contains("none was given")));
        assert!(rec.is_none());
        assert_eq!(check(None, "RIG-A", None, now()).0, Verdict::None);
        // Measured in the future: the host's clock is wrong.
        let f = file("RIG-A", "2026-12-06T12:00:00Z");
        assert!(
            matches!(check(Some(&f), "RIG-A", None, now()).0, Verdict::Refuse(w) if w.contains("after the run started"))
        );
    }

    #[test]
    fn each_step_kind_takes_its_share_of_the_loopback() {
        let Some(cal) = file("R", "2026-12-04T00:00:00Z").calibration else {
            unreachable!()
        };
        let rt = corrections(StepKind::AudioRoundtripLatency, &cal);
        assert_eq!((rt[0].subtracted_us, rt[0].uncertainty_us), (580.0, 8.0));
        for k in [
            StepKind::AudioSendLatency,
            StepKind::AudioReceiveLatency,
            StepKind::VideoLatency,
            StepKind::ButtonHidLatency,
        ] {
            let c = corrections(k, &cal);
            assert_eq!(c[0].subtracted_us, 290.0);
            // 2 √((580/(2√3))² + 2²) = 334.9 µs: the split dominates.
            assert!((c[0].uncertainty_us - 334.887).abs() < 0.001, "{c:?}");
        }
        assert!(corrections(StepKind::UsbConformance, &cal).is_empty());
        let no_loopback = Calibration {
            loopback: None,
            ..cal
        };
        assert!(corrections(StepKind::AudioSendLatency, &no_loopback).is_empty());
    }

    #[test]
    fn a_correction_moves_the_value_and_widens_only_the_rss_part() {
        let mut m = Measurement::default();
        // 0.2 ms of uncertainty: 0.05 of sync half-width, 0.15 of the rest.
        m.shots
            .push(Shot::measured(0, HostTime(0), 24.4, 0.2, String::new()).with_sync_bound(100.0));
        m.shots
            .push(Shot::missed_by_device(1, HostTime(0), String::new()));
        let c = Correction {
            term: "loopback".into(),
            share: "output".into(),
            subtracted_us: 400.0,
            uncertainty_us: 200.0,
        };
        correct(&mut m, &[c]);
        assert!((m.shots[0].value_ms().unwrap() - 24.0).abs() < 1e-12);
        let want = 0.05 + (0.15f64.powi(2) + 0.2f64.powi(2)).sqrt();
        assert!((m.shots[0].uncertainty_ms().unwrap() - want).abs() < 1e-12);
        assert_eq!(m.shots[1].outcome, ShotOutcome::MissedByDevice);
    }
}
