//! What a step measured: its shots, requirement verdicts, anomalies and raw
//! data, with the uncertainty conventions they carry.
//!
//! Owns the measurement's data types only. Producing them is the
//! procedures' (`measure::procedure`, `measure::conformance`), judging them
//! is `profile::judge`'s and recording them is `report`'s; this module
//! does none of those.

use serde::{Deserialize, Serialize};

use crate::station::sync::SyncEstimate;
use crate::time::HostTime;

/// Coverage factor of expanded uncertainties (about 95 %).
pub const K: f64 = 2.0;

/// How a shot ended. A shot is measured, or missed by the device (it counts
/// against the device), or missed by the station (not emitted in time, or
/// its data lost on the way: it does not count against the device); no
/// other state exists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShotOutcome {
    Measured {
        /// The latency, ms.
        value_ms: f64,
        /// Expanded (k = 2) uncertainty of the value, ms.
        uncertainty_ms: f64,
    },
    /// The device did not deliver what the stimulus should have caused.
    MissedByDevice,
    /// The station could not emit the stimulus in time, or lost the data
    /// the shot needed.
    MissedByStation,
}

/// One shot of a latency step.
#[derive(Debug, Clone)]
pub struct Shot {
    pub index: u32,
    /// When the stimulus was emitted, host time.
    pub emitted: HostTime,
    pub outcome: ShotOutcome,
    /// How it was detected, or why it was not.
    pub detail: String,
    /// Full width of the clock-sync bound where the shot crosses the rig's
    /// clock, µs (its half is the sync term of the uncertainty); 0 when the
    /// shot does not cross it, `None` when there was no time to convert.
    pub sync_bound_us: Option<f64>,
}

impl Shot {
    /// A measured shot.
    pub fn measured(
        index: u32,
        emitted: HostTime,
        value_ms: f64,
        uncertainty_ms: f64,
        detail: String,
    ) -> Shot {
        Shot {
            index,
            emitted,
            outcome: ShotOutcome::Measured {
                value_ms,
                uncertainty_ms,
            },
            detail,
            sync_bound_us: None,
        }
    }

    /// A shot the device missed.
    pub fn missed_by_device(index: u32, emitted: HostTime, detail: String) -> Shot {
        Shot {
            index,
            emitted,
            outcome: ShotOutcome::MissedByDevice,
            detail,
            sync_bound_us: None,
        }
    }

    /// A shot the station missed.
    pub fn missed_by_station(index: u32, emitted: HostTime, detail: String) -> Shot {
        Shot {
            index,
            emitted,
            outcome: ShotOutcome::MissedByStation,
            detail,
            sync_bound_us: None,
        }
    }

    /// The same shot with the sync bound of its conversion.
    pub fn with_sync_bound(mut self, us: f64) -> Shot {
        self.sync_bound_us = Some(us);
        self
    }

    pub fn value_ms(&self) -> Option<f64> {
        match self.outcome {
            ShotOutcome::Measured { value_ms, .. } => Some(value_ms),
            _ => None,
        }
    }

    pub fn uncertainty_ms(&self) -> Option<f64> {
        match self.outcome {
            ShotOutcome::Measured { uncertainty_ms, .. } => Some(uncertainty_ms),
            _ => None,
        }
    }

    /// Missed through the station's fault: it does not count against the device.
    pub fn station_fault(&self) -> bool {
        self.outcome == ShotOutcome::MissedByStation
    }
}

/// A conformance requirement's verdict and evidence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequirementResult {
    pub requirement: String,
    pub met: bool,
    pub evidence: String,
}

/// Raw data kept for re-analysis.
#[derive(Debug, Clone)]
pub enum RawData {
    /// Mono audio; `clock` names the clock of `t_first_ns` ("host", "rig", or
    /// "none" for a stimulus). `emitted_at_samples`: where each shot's stimulus
    /// was emitted, as a fractional sample index of this capture.
    Audio {
        name: String,
        sample_rate: u32,
        clock: &'static str,
        t_first_ns: Option<f64>,
        emitted_at_samples: Vec<f64>,
        samples: Vec<f32>,
    },
    /// A table: header and rows, written as CSV.
    Table {
        name: String,
        header: Vec<&'static str>,
        rows: Vec<Vec<String>>,
    },
}

impl RawData {
    /// The same data under `stem-tag.ext`.
    pub fn renamed(self, tag: &str) -> RawData {
        let re = |name: String| match name.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}-{tag}.{ext}"),
            None => format!("{name}-{tag}"),
        };
        match self {
            RawData::Audio {
                name,
                sample_rate,
                clock,
                t_first_ns,
                emitted_at_samples,
                samples,
            } => RawData::Audio {
                name: re(name),
                sample_rate,
                clock,
                t_first_ns,
                emitted_at_samples,
                samples,
            },
            RawData::Table { name, header, rows } => RawData::Table {
                name: re(name),
                header,
                rows,
            },
        }
    }
}

/// Losses and irregularities seen during a step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Anomalies {
    /// Blocks missing from the device's sequence.
    pub gap_blocks: u64,
    /// Blocks dropped because the analysis fell behind the ring.
    pub overrun_blocks: u64,
    pub corrupt_blocks: u64,
    /// Camera frames whose sequence numbers skipped.
    pub dropped_frames: u64,
    /// Shots whose stimulus was not found.
    pub missed_shots: u32,
    /// Of those, shots missed through the station's fault (not emitted, or
    /// samples lost inside the stimulus); they do not count against the device.
    pub station_missed_shots: u32,
    /// Shots named as outliers (robust z > 3.5); they are kept in the statistics.
    pub outlier_shots: Vec<u32>,
    /// Clock-sync bursts during the step.
    pub sync_bursts: u32,
    /// Times the rig restarted during the step, each of which voided the
    /// attempt (kept in raw/ as `*-attempt1.*`) and ran the step again.
    pub rig_restarts: u32,
}

/// Everything a step measured.
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    pub shots: Vec<Shot>,
    pub requirements: Vec<RequirementResult>,
    pub anomalies: Anomalies,
    pub raw: Vec<RawData>,
    /// Why the step could not finish, if it could not.
    pub error: Option<String>,
    /// The step was stopped by a cancellation (Ctrl-C or timeout).
    pub cancelled: bool,
    /// The clock-sync estimate the shots were converted with.
    pub sync: Option<SyncEstimate>,
    /// Relative rate of the stream's clock, ppm, where one was fitted.
    pub stream_drift_ppm: Option<f64>,
}

impl Measurement {
    /// Count the missed shots and name the outliers, once the shots are in.
    pub fn tally(&mut self) {
        let measured: Vec<(u32, f64)> = self
            .shots
            .iter()
            .filter_map(|s| Some((s.index, s.value_ms()?)))
            .collect();
        let values: Vec<f64> = measured.iter().map(|m| m.1).collect();
        self.anomalies.outlier_shots = super::stats::outliers(&values)
            .into_iter()
            .map(|i| measured[i].0)
            .collect();
        self.anomalies.missed_shots =
            self.shots.iter().filter(|s| s.value_ms().is_none()).count() as u32;
        self.anomalies.station_missed_shots =
            self.shots.iter().filter(|s| s.station_fault()).count() as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shot_is_measured_or_missed_by_one_side_never_both() {
        let t = HostTime(5);
        let m = Shot::measured(0, t, 12.5, 0.1, "ok".into()).with_sync_bound(90.0);
        assert_eq!((m.value_ms(), m.uncertainty_ms()), (Some(12.5), Some(0.1)));
        assert!(!m.station_fault());
        let d = Shot::missed_by_device(1, t, "no report".into());
        assert_eq!((d.value_ms(), d.station_fault()), (None, false));
        let s = Shot::missed_by_station(2, t, "behind".into());
        assert_eq!((s.value_ms(), s.station_fault()), (None, true));
        let mut meas = Measurement {
            shots: vec![m, d, s],
            ..Measurement::default()
        };
        meas.tally();
        assert_eq!(
            (
                meas.anomalies.missed_shots,
                meas.anomalies.station_missed_shots
            ),
            (2, 1)
        );
    }
}
