//! What a step measured: its shots, requirement verdicts, anomalies and raw
//! data, with the uncertainty conventions they carry.
//!
//! Owns the measurement's data types only. Producing them is the
//! procedures' (`measure::procedure`, `measure::conformance`), judging them
//! is `profile::judge`'s and recording them is `report`'s; this module
//! does none of those.

use serde::{Deserialize, Serialize};

use crate::station::sync::SyncEstimate;
use crate::time::{HostTime, RigTime};

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

/// Which side of a shot is on the rig's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RigSide {
    /// The rig emitted the stimulus (its speaker, LED or actuator); the host
    /// saw what came back: the value is the host time less the rig time's
    /// host time, and the shot's emission time is the rig time's host time.
    Emission,
    /// The host emitted; the rig's sensor captured it: the value is the rig
    /// time's host time less the host time.
    Capture,
}

/// The terms of a measured shot's value that do not depend on the clock sync.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossedValue {
    /// The host time on the other side of the shot (the host's arrival or
    /// emission).
    pub host: HostTime,
    /// Added to the difference of the two times, s: what the shot's analysis
    /// knows apart from them (a known path inside the station subtracted,
    /// the place of the flash within a camera frame's exposure).
    pub offset_s: f64,
    /// The expanded (k = 2) uncertainty apart from the clock sync's, s
    /// (detection, time stamps, thresholds); the sync's half-width is added
    /// to it linearly.
    pub other_uncertainty_s: f64,
}

/// What converting a shot across the rig's clock needs: where it crosses
/// the rig's clock and, for a measured shot, the rest of its value. Kept
/// with the shot, so that it can be converted again with a later estimate
/// of the same rig clock (one with more exchanges): that gives it the same
/// value up to the difference of the two central lines at `rig`, and a
/// bound that is no wider (the later polygon lies inside the earlier one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RigCrossing {
    /// The rig time where the shot crosses the rig's clock.
    pub rig: RigTime,
    /// Which side of the shot it is.
    pub side: RigSide,
    /// The value's other terms; `None` for a missed shot, of which only the
    /// emission time and the bound are converted.
    pub value: Option<CrossedValue>,
}

/// A shot's figures under one clock-sync estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Converted {
    /// The host time of the rig time.
    pub rig_host: HostTime,
    /// The half-width of its bound, ns.
    pub half_width_ns: f64,
    /// The latency and its expanded (k = 2) uncertainty, ms, for a measured shot.
    pub value_ms: Option<(f64, f64)>,
    /// Full width of the clock-sync bound at the rig time, µs.
    pub sync_bound_us: f64,
}

impl RigCrossing {
    /// The shot's figures with the rig time mapped by `est`.
    pub fn convert(&self, est: &SyncEstimate) -> Converted {
        self.convert_at(est.rig_to_host(self.rig))
    }

    /// The shot's figures given the rig time's host time and the half-width
    /// of its bound, ns (what [`SyncEstimate::rig_to_host`] returns for it).
    pub fn convert_at(&self, (rig_host, hw_ns): (HostTime, f64)) -> Converted {
        let value_ms = self.value.map(|v| {
            let between_s = match self.side {
                RigSide::Emission => v.host.secs_since(rig_host),
                RigSide::Capture => rig_host.secs_since(v.host),
            };
            let value_s = between_s + v.offset_s;
            let u_s = hw_ns * 1e-9 + v.other_uncertainty_s;
            (value_s * 1e3, u_s * 1e3)
        });
        Converted {
            rig_host,
            half_width_ns: hw_ns,
            value_ms,
            sync_bound_us: 2.0 * hw_ns * 1e-3,
        }
    }
}

/// Which clock-sync estimate a step's shots that cross the rig's clock were
/// converted with (what its record states).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncConversion {
    /// The step's own: every exchange up to the burst that closes it.
    #[default]
    Step,
    /// The run's final estimate of the same rig clock: every exchange since
    /// the rig last (re)started, before and after the step's shots.
    Run,
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
    /// What its conversion across the rig's clock needs, when it crosses it
    /// (see [`Shot::reconvert`]).
    pub crossing: Option<RigCrossing>,
    /// The host time of the crossing's rig time and the half-width of its
    /// bound, ns, under the estimate the shot was last converted with.
    pub crossed_at: Option<(HostTime, f64)>,
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
            crossing: None,
            crossed_at: None,
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
            crossing: None,
            crossed_at: None,
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
            crossing: None,
            crossed_at: None,
        }
    }

    /// The same shot with the sync bound of its conversion.
    pub fn with_sync_bound(mut self, us: f64) -> Shot {
        self.sync_bound_us = Some(us);
        self
    }

    /// A shot that crosses the rig's clock, converted with `rig_to_host`
    /// (the host time of `crossing.rig` and the half-width of its bound, ns,
    /// as [`SyncEstimate::rig_to_host`] gives them): measured when
    /// `crossing` has a value, missed by the device otherwise.
    pub fn crossing(
        index: u32,
        emitted: HostTime,
        crossing: RigCrossing,
        rig_to_host: (HostTime, f64),
        detail: String,
    ) -> Shot {
        let mut shot = Shot::missed_by_device(index, emitted, detail);
        shot.crossing = Some(crossing);
        shot.apply(crossing.convert_at(rig_to_host));
        shot
    }

    /// Convert the shot again with `est`, an estimate of the same rig clock
    /// as the one it was converted with (the rig did not restart in
    /// between): its value, uncertainty and sync bound follow, and so does
    /// its emission time when the rig emitted; whether it was measured and
    /// its detail stay. A shot that does not cross the rig's clock is left
    /// as it is.
    pub fn reconvert(&mut self, est: &SyncEstimate) {
        if let Some(c) = self.crossing {
            self.apply(c.convert(est));
        }
    }

    fn apply(&mut self, conv: Converted) {
        self.crossed_at = Some((conv.rig_host, conv.half_width_ns));
        if self.crossing.is_some_and(|c| c.side == RigSide::Emission) {
            self.emitted = conv.rig_host;
        }
        if let Some((value_ms, uncertainty_ms)) = conv.value_ms {
            self.outcome = ShotOutcome::Measured {
                value_ms,
                uncertainty_ms,
            };
        }
        self.sync_bound_us = Some(conv.sync_bound_us);
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
    /// Which one that is: the step's own, or the run's final estimate.
    pub sync_conversion: SyncConversion,
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
    use crate::station::sync::ClockSync;
    use crate::station::SyncExchange;
    use rand::Rng;

    /// Exchanges with a rig whose clock reads `offset_us + (1 + ppm) · t`,
    /// each trip out and back 20–300 µs, one every 5–15 ms from `t0` for `n`.
    fn exchanges(rng: &mut crate::seeded::Rng, t0: f64, n: usize) -> Vec<SyncExchange> {
        let rig_us = |t: f64| 5e8 + t * (1.0 + 35e-6) * 1e6;
        let mut t = t0;
        (0..n)
            .map(|_| {
                t += rng.random_range(0.005..0.015);
                let at = t + rng.random_range(20e-6..300e-6);
                let back = at + rng.random_range(20e-6..300e-6);
                SyncExchange {
                    host_send: HostTime::from_secs_f64(t),
                    rig: RigTime(rig_us(at).floor() as u64),
                    host_recv: HostTime::from_secs_f64(back),
                }
            })
            .collect()
    }

    /// A step's estimate (its exchanges only) and the run's (those and a
    /// later step's), of one rig clock.
    fn step_and_run(seed: u64) -> (SyncEstimate, SyncEstimate, RigTime) {
        let mut rng = crate::seeded::rng(seed);
        let mut sync = ClockSync::new();
        for x in exchanges(&mut rng, 1.0, 300) {
            sync.add(x);
        }
        let step = sync.estimate().unwrap();
        // A shot in the middle of the step's exchanges.
        let mid = sync.exchanges()[150].rig;
        for x in exchanges(&mut rng, 20.0, 300) {
            sync.add(x);
        }
        (step, sync.estimate().unwrap(), mid)
    }

    fn crossing(side: RigSide, rig: RigTime, measured: bool) -> RigCrossing {
        RigCrossing {
            rig,
            side,
            value: measured.then_some(CrossedValue {
                host: HostTime::from_secs_f64(2.5),
                offset_s: -0.0005,
                other_uncertainty_s: 40e-6,
            }),
        }
    }

    #[test]
    fn a_shot_converted_again_moves_by_the_central_lines_difference_and_never_widens() {
        for seed in 0..50 {
            let (step, run, rig) = step_and_run(seed);
            let ((h1, hw1), (h2, hw2)) = (step.rig_to_host(rig), run.rig_to_host(rig));
            // More exchanges of the same clock: a polygon inside the first.
            assert!(hw2 <= hw1 + 1e-6, "seed {seed}: {hw2} ns > {hw1} ns");
            let moved_ms = h2.secs_since(h1) * 1e3;
            for side in [RigSide::Emission, RigSide::Capture] {
                let c = crossing(side, rig, true);
                let mut shot = Shot::crossing(7, h1, c, step.rig_to_host(rig), "found".into());
                let (v1, u1, b1) = (
                    shot.value_ms().unwrap(),
                    shot.uncertainty_ms().unwrap(),
                    shot.sync_bound_us.unwrap(),
                );
                shot.reconvert(&run);
                let (v2, u2, b2) = (
                    shot.value_ms().unwrap(),
                    shot.uncertainty_ms().unwrap(),
                    shot.sync_bound_us.unwrap(),
                );
                // The rig emitted: a later host time of its emission is a
                // shorter latency; its sensor captured: a longer one.
                let want = match side {
                    RigSide::Emission => -moved_ms,
                    RigSide::Capture => moved_ms,
                };
                assert!((v2 - v1 - want).abs() < 1e-9, "seed {seed} {side:?}");
                assert!(b2 <= b1 + 1e-9 && u2 <= u1 + 1e-12, "seed {seed} {side:?}");
                // Only the sync's half-width changed in the uncertainty.
                assert!(((u1 - u2) - (hw1 - hw2) * 1e-6).abs() < 1e-12);
                assert!((b2 - 2.0 * hw2 * 1e-3).abs() < 1e-9);
                assert_eq!(shot.crossed_at, Some((h2, hw2)));
                assert_eq!((shot.index, shot.detail.as_str()), (7, "found"));
                // The emission time is the rig's when the rig emitted.
                let emitted = match side {
                    RigSide::Emission => h2,
                    RigSide::Capture => h1,
                };
                assert_eq!(shot.emitted, emitted);
            }
        }
    }

    #[test]
    fn converting_again_with_the_same_estimate_changes_nothing() {
        let (step, _, rig) = step_and_run(3);
        let c = crossing(RigSide::Emission, rig, true);
        let shot = Shot::crossing(0, HostTime(0), c, step.rig_to_host(rig), "x".into());
        let mut again = shot.clone();
        again.reconvert(&step);
        assert_eq!(again.outcome, shot.outcome);
        assert_eq!(
            (again.emitted, again.sync_bound_us, again.crossed_at),
            (shot.emitted, shot.sync_bound_us, shot.crossed_at)
        );
        assert_eq!(
            c.convert(&step),
            c.convert_at(step.rig_to_host(rig)),
            "convert is convert_at of the estimate's mapping"
        );
    }

    #[test]
    fn a_missed_shot_stays_missed_and_one_that_does_not_cross_stays_as_it_is() {
        let (step, run, rig) = step_and_run(11);
        let mut missed = Shot::crossing(
            1,
            HostTime(0),
            crossing(RigSide::Emission, rig, false),
            step.rig_to_host(rig),
            "LED not seen".into(),
        );
        assert_eq!(missed.outcome, ShotOutcome::MissedByDevice);
        let b1 = missed.sync_bound_us.unwrap();
        missed.reconvert(&run);
        assert_eq!(missed.outcome, ShotOutcome::MissedByDevice);
        assert!(missed.sync_bound_us.unwrap() <= b1 + 1e-9);
        assert_eq!(missed.emitted, run.rig_to_host(rig).0);

        // A round trip on the host's clock alone, and a station miss.
        let host_only =
            Shot::measured(2, HostTime(5), 80.0, 0.05, "rt".into()).with_sync_bound(0.0);
        let station = Shot::missed_by_station(3, HostTime(6), "behind".into());
        for shot in [host_only, station] {
            let mut again = shot.clone();
            again.reconvert(&run);
            assert_eq!(
                (again.outcome, again.emitted, again.sync_bound_us),
                (shot.outcome, shot.emitted, shot.sync_bound_us)
            );
            assert!(again.crossing.is_none() && again.crossed_at.is_none());
        }
    }

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
