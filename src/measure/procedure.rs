//! The measurement procedure of each step kind, driven against a station.
//!
//! A procedure schedules stimuli through the rig or the DUT, acquires what comes
//! back through the sampling core, and turns it into shots with uncertainties.
//! It never judges a value against a limit and never writes a file: it returns
//! a [`Measurement`] holding everything it saw, including the raw data.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::delay::Correlator;
use super::stimulus::Stimulus;
use crate::profile::{Step, StepKind};
use crate::sampling::{Acquisition, Capture};
use crate::station::sync::{ClockSync, SyncEstimate};
use crate::station::{Station, StationError};
use crate::time::{HostTime, RigTime};

/// Coverage factor of expanded uncertainties (about 95 %).
pub const K: f64 = 2.0;

/// Exchanges in the clock-sync burst that opens and closes each step.
pub const SYNC_BURST: usize = 96;

/// Exchanges in a top-up during a step (see [`Ctx::keep_synced`]).
pub const SYNC_TOPUP: usize = 8;

/// A top-up is due once this long has passed since the last exchange, s.
pub const SYNC_TOPUP_EVERY_S: f64 = 0.5;

/// A top-up is due when the bound predicted one second ahead is wider than this, µs.
pub const RESYNC_LIMIT_US: f64 = 200.0;

/// The random wait before each sync request spans a little over one USB frame, s.
const SYNC_PHASE_S: f64 = 0.0011;

/// One shot of a latency step.
#[derive(Debug, Clone, Serialize)]
pub struct Shot {
    pub index: u32,
    /// When the stimulus was emitted, host time.
    pub emitted: HostTime,
    /// The latency, ms; `None` when the shot was missed.
    pub value_ms: Option<f64>,
    /// Expanded (k = 2) uncertainty of the value, ms.
    pub uncertainty_ms: Option<f64>,
    /// How it was detected, or why it was not.
    pub detail: String,
    /// Missed through the station's fault (not emitted, or data lost on the
    /// way), not the device's: it does not count against the device.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub station_fault: bool,
    /// Full width of the clock-sync bound where the shot crosses the rig's
    /// clock, µs (its half is the sync term of `uncertainty_ms`); 0 when the
    /// shot does not cross it, `None` when there was no shot to convert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_bound_us: Option<f64>,
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

/// What a procedure needs from the run.
pub struct Ctx<'a> {
    pub station: &'a mut Station,
    pub sync: &'a mut ClockSync,
    pub cancel: &'a AtomicBool,
    /// Called with the number of shots done so far.
    pub progress: &'a (dyn Fn(u64) + Sync),
    /// Seed for stimuli, so a run repeats.
    pub seed: u64,
}

impl Ctx<'_> {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// One burst of clock-sync exchanges with the rig. Each request waits a
    /// random fraction of a USB frame first: requests at random phases of the
    /// (unseen) bus schedule include some that catch a frame at once, and the
    /// shortest delays are what tighten the bound.
    pub fn sync_burst(&mut self) -> Result<(), StationError> {
        self.exchanges(SYNC_BURST)
    }

    /// Re-synchronise when it is due: when the bound predicted a second ahead
    /// has grown past [`RESYNC_LIMIT_US`], or a second has passed since the
    /// last exchange. Returns whether it ran.
    pub fn keep_synced(&mut self) -> Result<bool, StationError> {
        let now = self.station.clock.now();
        let last = self.sync.exchanges().last().map(|x| x.host_recv);
        let stale = last.is_none_or(|t| now.secs_since(t) >= SYNC_TOPUP_EVERY_S);
        let wide = match self.sync.estimate() {
            Some(est) => est.bound_at_us(est.host_to_rig(now.plus_secs(1.0))) > RESYNC_LIMIT_US,
            None => true,
        };
        if stale || wide {
            self.exchanges(SYNC_TOPUP)?;
            return Ok(true);
        }
        Ok(false)
    }

    fn exchanges(&mut self, n: usize) -> Result<(), StationError> {
        use rand::Rng;
        let mut rng = crate::seeded::rng(self.seed ^ self.sync.len() as u64);
        for _ in 0..n {
            let now = self.station.clock.now();
            self.station
                .clock
                .sleep_until(now.plus_secs(rng.random_range(0.0..SYNC_PHASE_S)));
            let x = self.station.rig.sync_exchange()?;
            self.sync.add(x);
        }
        Ok(())
    }

    fn estimate(&self) -> Result<SyncEstimate, StationError> {
        self.sync
            .estimate()
            .ok_or_else(|| StationError::Rig("no clock-sync exchange with the rig".into()))
    }

    /// Sleep until `t` in small steps, calling `between` meanwhile; false if cancelled.
    fn wait_until(
        &self,
        t: HostTime,
        mut between: impl FnMut() -> Result<(), String>,
    ) -> Result<bool, String> {
        loop {
            between()?;
            if self.cancelled() {
                return Ok(false);
            }
            let now = self.station.clock.now();
            if now >= t {
                return Ok(true);
            }
            let step = HostTime((t.0 - now.0).min(10_000_000));
            self.station.clock.sleep_until(HostTime(now.0 + step.0));
        }
    }
}

/// Run the procedure of `step`.
pub fn run(step: &Step, ctx: &mut Ctx) -> Measurement {
    let mut m = Measurement::default();
    let r = match step.kind {
        StepKind::AudioSendLatency
        | StepKind::AudioReceiveLatency
        | StepKind::AudioRoundtripLatency => audio_latency(step, ctx, &mut m),
        StepKind::VideoLatency => video_latency(step, ctx, &mut m),
        StepKind::ButtonHidLatency => hid_latency(step, ctx, &mut m),
        StepKind::UsbConformance => super::conformance::usb(step, ctx, &mut m),
        StepKind::SerialConformance => super::conformance::serial(step, ctx, &mut m),
    };
    if let Err(e) = r {
        m.error = Some(e);
    }
    m.cancelled = ctx.cancelled();
    let values: Vec<f64> = m.shots.iter().filter_map(|s| s.value_ms).collect();
    let idx: Vec<u32> = m
        .shots
        .iter()
        .filter(|s| s.value_ms.is_some())
        .map(|s| s.index)
        .collect();
    m.anomalies.outlier_shots = super::stats::outliers(&values)
        .into_iter()
        .map(|i| idx[i])
        .collect();
    m.anomalies.missed_shots = m.shots.iter().filter(|s| s.value_ms.is_none()).count() as u32;
    m.anomalies.station_missed_shots = m.shots.iter().filter(|s| s.station_fault).count() as u32;
    m
}

fn need<T>(part: Option<T>, what: &str) -> Result<T, String> {
    part.ok_or_else(|| format!("the device has no {what}, which this step needs"))
}

fn shots_of(step: &Step) -> u32 {
    step.params.shots.max(1)
}

/// Time before the first shot, for the noise floor and settling.
const LEAD_IN_S: f64 = 0.3;
/// How long after the last shot's window a lagging capture stream is waited for.
const STREAM_CATCH_UP_S: f64 = 2.0;
/// How far ahead of its time a stimulus is scheduled.
const SCHEDULE_AHEAD_S: f64 = 0.06;

/// Shots whose command cannot reach the rig in time are not emitted: the
/// shot is recorded as missed with this reason, and the step goes on.
const MIN_LEAD_S: f64 = 0.010;

/// Whether the rig refused a shot's command for a reason that is the
/// station's, not the device's: its time had passed when the command
/// arrived (the harness fell behind), or the actuator was still busy.
fn is_late(e: &StationError) -> bool {
    matches!(
        e,
        StationError::RigRefused {
            code: rig_protocol::ErrorCode::Late | rig_protocol::ErrorCode::Busy,
            ..
        }
    )
}

/// A shot that was not emitted.
fn not_emitted(k: usize, at: HostTime, why: &str) -> Shot {
    Shot {
        index: k as u32,
        emitted: at,
        value_ms: None,
        uncertainty_ms: None,
        detail: format!("not emitted: {why}"),
        station_fault: true,
        sync_bound_us: None,
    }
}

const BEHIND: &str = "the harness fell behind its schedule (see run.log)";

/// Re-synchronise when due (see [`Ctx::keep_synced`]) and refresh the
/// estimate used for scheduling; returns whether it ran.
fn top_up(ctx: &mut Ctx, est: &mut SyncEstimate) -> Result<bool, StationError> {
    let ran = ctx.keep_synced()?;
    if ran {
        if let Ok(e) = ctx.estimate() {
            *est = e;
        }
    }
    Ok(ran)
}

/// Drive the rig through scheduled shots: `fire` sends shot k's command for its
/// rig time, and between shots `poll` waits up to the given time for what the
/// device sends back. A shot that cannot be sent in time is recorded as not
/// emitted; re-sync runs after each shot is sent. Returns each shot's rig time
/// (or why it was not emitted), and why the loop stopped early, if it did.
fn drive_shots(
    ctx: &mut Ctx,
    m: &mut Measurement,
    mut est: SyncEstimate,
    times: &[HostTime],
    end: HostTime,
    mut fire: impl FnMut(&mut Station, RigTime) -> Result<(), StationError>,
    mut poll: impl FnMut(&mut Station, Duration) -> Result<(), String>,
) -> (Vec<Result<RigTime, String>>, Option<String>) {
    let n = times.len();
    let mut sent: Vec<Result<RigTime, String>> = Vec::with_capacity(n);
    while !ctx.cancelled() {
        let now = ctx.station.clock.now();
        let k = sent.len();
        if k < n && now >= times[k].plus_secs(-SCHEDULE_AHEAD_S) {
            let at = est.host_to_rig(times[k]);
            if now > times[k].plus_secs(-MIN_LEAD_S) {
                sent.push(Err(BEHIND.to_string()));
            } else {
                match fire(ctx.station, at) {
                    Ok(()) => sent.push(Ok(at)),
                    Err(e) if is_late(&e) => sent.push(Err(e.to_string())),
                    Err(e) => return (sent, Some(format!("shot {k}: {e}"))),
                }
            }
            (ctx.progress)(k as u64 + 1);
            match top_up(ctx, &mut est) {
                Ok(ran) => m.anomalies.sync_bursts += ran as u32,
                Err(e) => return (sent, Some(format!("shot {k}: clock sync: {e}"))),
            }
            continue;
        }
        if k >= n && now >= end {
            break;
        }
        let until = if k < n {
            times[k].plus_secs(-SCHEDULE_AHEAD_S)
        } else {
            end
        };
        if let Err(e) = poll(
            ctx.station,
            Duration::from_secs_f64(until.secs_since(now).clamp(0.001, 0.05)),
        ) {
            return (sent, Some(e));
        }
    }
    (sent, None)
}

/// Replace each shot's scheduled rig time by the time the rig reports the
/// actuator actually fired (when it reports one).
fn as_fired(ctx: &mut Ctx, sensor: u8, shots: &mut [Result<RigTime, String>]) {
    let onsets = ctx.station.rig.take_onsets();
    for at in shots.iter_mut().flatten() {
        *at = crate::station::fired_at(&onsets, sensor, *at);
    }
}

/// Shot times: `t0 + k · interval` plus a pseudo-random dither in [0, dither),
/// so shots do not keep one phase against a frame or polling clock (which
/// would hide or bias the sub-frame interpolation).
fn schedule(t0: HostTime, interval: f64, n: u32, dither: f64, seed: u64) -> Vec<HostTime> {
    use rand::Rng;
    let mut rng = crate::seeded::rng(seed);
    (0..n)
        .map(|k| t0.plus_secs(k as f64 * interval + dither * rng.random::<f64>()))
        .collect()
}

enum Emit {
    Rig(RigTime),
    Host(HostTime),
}

fn audio_latency(step: &Step, ctx: &mut Ctx, m: &mut Measurement) -> Result<(), String> {
    let p = &step.params;
    let kind = step.kind;
    let stim = Stimulus::new(p.stimulus, p.sample_rate, p.stimulus_ms / 1e3, ctx.seed);
    let samples: Arc<[f32]> = stim.samples().into();
    let rig_mic = kind == StepKind::AudioReceiveLatency;
    let loopback_s = if kind == StepKind::AudioRoundtripLatency {
        ctx.station.rig.info().loopback_delay_us as f64 * 1e-6
    } else {
        0.0
    };
    if !(rig_mic || loopback_s > 0.0) {
        // Before the capture starts and the first shot is scheduled, so
        // that the upload takes nothing from the lead-in.
        ctx.station
            .rig
            .load(&samples)
            .map_err(|e| format!("cannot load the stimulus into the rig: {e}"))?;
    }
    ctx.sync_burst().map_err(|e| e.to_string())?;
    m.anomalies.sync_bursts += 1;
    let source = if rig_mic {
        ctx.station.rig.mic_stream(p.sample_rate)
    } else {
        need(ctx.station.dut.audio.as_mut(), "audio interface")?.capture_stream(p.sample_rate)
    }
    .map_err(|e| e.to_string())?;
    let rate = source.sample_rate();
    if rate != p.sample_rate {
        return Err(format!(
            "the capture runs at {rate} Hz but the step asks for {} Hz",
            p.sample_rate
        ));
    }
    let interval = p.interval_ms / 1e3;
    let n = shots_of(step);
    let total_s = LEAD_IN_S + n as f64 * interval + 0.2;
    let mut capture = Capture::new(rate, (total_s * rate as f64) as usize + 4096);
    let mut acq = Acquisition::start_on(&ctx.station.clock, source, 2048)
        .map_err(|e| format!("cannot start acquisition: {e}"))?;
    if loopback_s > 0.0 {
        ctx.station
            .rig
            .set_loopback(true)
            .map_err(|e| e.to_string())?;
    }
    let mut est0 = ctx.estimate().map_err(|e| e.to_string())?;
    let t0 = ctx.station.clock.now().plus_secs(LEAD_IN_S);
    let mut emits = Vec::with_capacity(n as usize);
    let mut failure = None;
    for k in 0..n {
        let t_k = t0.plus_secs(k as f64 * interval);
        let go = ctx.wait_until(t_k.plus_secs(-SCHEDULE_AHEAD_S), || {
            acq.drain_into(&mut capture);
            match acq.error() {
                Some(e) => Err(format!("{e} during shot {k}")),
                None => Ok(()),
            }
        });
        match go {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        let r = if ctx.station.clock.now() > t_k.plus_secs(-MIN_LEAD_S) {
            Ok(Err(BEHIND.to_string()))
        } else if rig_mic || loopback_s > 0.0 {
            need(ctx.station.dut.audio.as_mut(), "audio interface")
                .and_then(|a| {
                    a.play(samples.clone(), rate, t_k)
                        .map_err(|e| e.to_string())
                })
                .map(|_| Ok(Emit::Host(t_k)))
        } else {
            let at = est0.host_to_rig(t_k);
            match ctx.station.rig.play(samples.clone(), rate, at) {
                Ok(()) => Ok(Ok(Emit::Rig(at))),
                Err(e) if is_late(&e) => Ok(Err(e.to_string())),
                Err(e) => Err(e.to_string()),
            }
        };
        match r {
            Ok(e) => emits.push(e),
            Err(e) => {
                failure = Some(format!("shot {k}: {e}"));
                break;
            }
        }
        (ctx.progress)(k as u64 + 1);
        // Re-sync in the quiet time after a shot is scheduled, never before:
        // a lost sync reply costs a retry, which must not make a shot late.
        match top_up(ctx, &mut est0) {
            Ok(ran) => m.anomalies.sync_bursts += ran as u32,
            Err(e) => {
                failure = Some(format!("shot {k}: clock sync: {e}"));
                break;
            }
        }
    }
    // Let the last shot's window fill: until its end by the wall clock, then
    // until the stream has delivered samples that far (a stream that lags
    // behind, e.g. on a loaded host, still has them in flight), for at most
    // STREAM_CATCH_UP_S more.
    let end = t0.plus_secs(emits.len() as f64 * interval + 0.05);
    if failure.is_none() {
        let r = ctx.wait_until(end, || {
            acq.drain_into(&mut capture);
            match acq.error() {
                Some(e) => Err(e.to_string()),
                None => Ok(()),
            }
        });
        if let Err(e) = r {
            failure = Some(e);
        }
    }
    if failure.is_none() && !emits.is_empty() {
        let last = t0.plus_secs((emits.len() - 1) as f64 * interval);
        let needed_host = last.plus_secs((p.stimulus_ms + p.max_latency_ms) / 1e3 + 0.02);
        let needed_ns = if rig_mic {
            est0.host_to_rig(needed_host).0 as i64 * 1000
        } else {
            needed_host.0
        };
        let give_up = ctx.station.clock.now().plus_secs(STREAM_CATCH_UP_S);
        while capture.end_time_ns().is_none_or(|t| t < needed_ns)
            && ctx.station.clock.now() < give_up
            && !ctx.cancelled()
            && acq.error().is_none()
        {
            ctx.station.clock.sleep(std::time::Duration::from_millis(5));
            acq.drain_into(&mut capture);
        }
        if capture.end_time_ns().is_none_or(|t| t < needed_ns) {
            tracing::warn!(step = %step.id, "the capture stream lagged more than {STREAM_CATCH_UP_S} s behind");
        }
    }
    let (stats, err) = acq.stop(&mut capture);
    if rig_mic {
        let _ = ctx.station.rig.stop_streams();
    }
    if loopback_s > 0.0 {
        let _ = ctx.station.rig.set_loopback(false);
    }
    if failure.is_none() {
        if let Some(e) = err {
            failure = Some(e.to_string());
        }
    }
    m.anomalies.gap_blocks = capture.gap_blocks;
    m.anomalies.overrun_blocks = stats.overruns;
    m.anomalies.corrupt_blocks = capture.corrupt_blocks;
    // Close the sync bracket, unless the rig is gone.
    if ctx.sync_burst().is_ok() {
        m.anomalies.sync_bursts += 1;
    }
    let est = ctx.estimate().map_err(|e| e.to_string())?;
    m.sync = Some(est.clone());
    // When the rig's speaker really started (a rig that reports it).
    let onsets = ctx.station.rig.take_onsets();
    for e in emits.iter_mut().flatten() {
        if let Emit::Rig(at) = e {
            *at = crate::station::fired_at(&onsets, rig_protocol::sensor::SPEAKER, *at);
        }
    }
    let map = capture.time_map();
    m.stream_drift_ppm = map.map(|t| t.drift_ppm);
    m.raw.push(RawData::Audio {
        name: format!("{}-stimulus.wav", step.id),
        sample_rate: rate,
        clock: "none",
        t_first_ns: None,
        emitted_at_samples: Vec::new(),
        samples: samples.to_vec(),
    });
    let clock = if rig_mic { "rig" } else { "host" };
    let Some(map) = map else {
        m.raw.push(RawData::Audio {
            name: format!("{}.wav", step.id),
            sample_rate: rate,
            clock,
            t_first_ns: None,
            emitted_at_samples: Vec::new(),
            samples: capture.samples,
        });
        return Err(failure.unwrap_or_else(|| "no audio was captured".into()));
    };
    let mut emitted_at = Vec::with_capacity(emits.len());
    let mut corr = Correlator::new(&samples, rate);
    let window_len = ((p.stimulus_ms + p.max_latency_ms) / 1e3 * rate as f64).ceil() as usize;
    // A few milliseconds before the emission, for the clock-sync bound and the filters.
    let guard = (0.005 * rate as f64) as usize;
    for (k, emit) in emits.iter().enumerate() {
        let (emitted, emit_hw_ns) = match emit {
            Ok(Emit::Rig(r)) => est.rig_to_host(*r),
            Ok(Emit::Host(t)) => (*t, 0.0),
            Err(why) => {
                emitted_at.push(f64::NAN);
                m.shots
                    .push(not_emitted(k, t0.plus_secs(k as f64 * interval), why));
                continue;
            }
        };
        // Where the emission sits in the capture's own clock.
        let t_cap_ns = if rig_mic {
            est.host_to_rig(emitted).0 as f64 * 1e3
        } else {
            emitted.0 as f64
        };
        emitted_at.push(map.index_of(t_cap_ns));
        let i_emit = map.index_of(t_cap_ns).round() as i64;
        let start = (i_emit - guard as i64).max(0) as usize;
        let stop = (start + window_len + guard).min(capture.samples.len());
        let mut shot = Shot {
            index: k as u32,
            emitted,
            value_ms: None,
            uncertainty_ms: None,
            detail: String::new(),
            station_fault: false,
            sync_bound_us: None,
        };
        if stop <= start || stop - start < window_len {
            // The harness stopped listening too early: the station's fault.
            shot.detail = "the capture ended before this shot's window".into();
            shot.station_fault = true;
            m.shots.push(shot);
            continue;
        }
        let holed = capture.has_hole_in(start, stop);
        match corr.estimate(&capture.samples[start..stop]) {
            Err(e) if holed => {
                shot.detail =
                    format!("{e}; samples were lost in this shot's window (see gap_blocks)")
            }
            Err(e) => shot.detail = e.to_string(),
            // Lost samples inside the stimulus itself would bias it: not a number.
            Ok(d)
                if holed && {
                    let at = start + d.delay_samples.max(0.0) as usize;
                    capture.has_hole_in(at.saturating_sub(guard), at + samples.len() + guard)
                } =>
            {
                shot.detail = "samples were lost inside the stimulus (see gap_blocks)".into();
                shot.station_fault = true;
            }
            Ok(d) => {
                let idx = start as f64 + d.delay_samples;
                let t_arr = map.time_of(idx);
                let (arrival, arr_hw_ns) = if rig_mic {
                    est.rig_to_host(RigTime((t_arr / 1e3).round() as u64))
                } else {
                    (HostTime(t_arr.round() as i64), 0.0)
                };
                let latency_s = arrival.secs_since(emitted) - loopback_s;
                let detect_s = d.std_uncertainty_samples / rate as f64;
                let stamp_s = map.fit_uncertainty_ns * 1e-9;
                let u = (emit_hw_ns + arr_hw_ns) * 1e-9
                    + K * (detect_s.powi(2) + stamp_s.powi(2)).sqrt();
                shot.value_ms = Some(latency_s * 1e3);
                shot.uncertainty_ms = Some(u * 1e3);
                shot.sync_bound_us = Some(2.0 * (emit_hw_ns + arr_hw_ns) * 1e-3);
                shot.detail = format!(
                    "confidence {:.3}, peak SNR {:.1} dB, polarity {:+}",
                    d.confidence, d.snr_db, d.polarity
                );
            }
        }
        m.shots.push(shot);
    }
    m.raw.push(RawData::Audio {
        name: format!("{}.wav", step.id),
        sample_rate: rate,
        clock,
        t_first_ns: Some(map.time_of(0.0)),
        emitted_at_samples: emitted_at,
        samples: capture.samples,
    });
    match failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// Mean luma over a region given as fractions of the frame.
pub fn roi_mean(frame: &crate::station::Frame, roi: [f64; 4]) -> f64 {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let x0 = ((roi[0] * w as f64).floor() as usize).min(w.saturating_sub(1));
    let y0 = ((roi[1] * h as f64).floor() as usize).min(h.saturating_sub(1));
    let x1 = (((roi[0] + roi[2]) * w as f64).ceil() as usize).clamp(x0 + 1, w);
    let y1 = (((roi[1] + roi[3]) * h as f64).ceil() as usize).clamp(y0 + 1, h);
    let mut sum = 0u64;
    for y in y0..y1 {
        sum += frame.luma[y * w + x0..y * w + x1]
            .iter()
            .map(|&v| v as u64)
            .sum::<u64>();
    }
    sum as f64 / ((x1 - x0) * (y1 - y0)) as f64
}

fn video_latency(step: &Step, ctx: &mut Ctx, m: &mut Measurement) -> Result<(), String> {
    let p = &step.params;
    ctx.sync_burst().map_err(|e| e.to_string())?;
    m.anomalies.sync_bursts += 1;
    let est0 = ctx.estimate().map_err(|e| e.to_string())?;
    need(ctx.station.dut.camera.as_mut(), "camera")?
        .start()
        .map_err(|e| e.to_string())?;
    let n = shots_of(step);
    let interval = p.interval_ms / 1e3;
    let t0 = ctx.station.clock.now().plus_secs(LEAD_IN_S + 0.2);
    let end = t0.plus_secs(n as f64 * interval);
    let times = schedule(t0, interval, n, (interval * 0.1).min(0.04), ctx.seed);
    // Long enough to fully light at least two frames at 30 fps.
    let flash_us = 100_000;
    let mut frames: Vec<(u64, HostTime, f64)> =
        Vec::with_capacity((n as f64 * interval * 120.0) as usize + 64);
    let mut dropped = 0;
    let (mut flashes, failure) = drive_shots(
        ctx,
        m,
        est0,
        &times,
        end,
        |st, at| st.rig.flash_led(at, flash_us),
        |st, wait| {
            let cam = need(st.dut.camera.as_mut(), "camera")?;
            if let Some(f) = cam.next_frame(wait).map_err(|e| e.to_string())? {
                if let Some(&(last, ..)) = frames.last() {
                    dropped += f.seq.saturating_sub(last + 1);
                }
                frames.push((f.seq, f.host_time, roi_mean(&f, p.led_roi)));
            }
            Ok(())
        },
    );
    m.anomalies.dropped_frames += dropped;
    if let Some(cam) = ctx.station.dut.camera.as_mut() {
        let _ = cam.stop();
    }
    if ctx.sync_burst().is_ok() {
        m.anomalies.sync_bursts += 1;
    }
    as_fired(ctx, rig_protocol::sensor::LED, &mut flashes);
    let est = ctx.estimate().map_err(|e| e.to_string())?;
    m.sync = Some(est.clone());
    m.raw.push(RawData::Table {
        name: format!("{}-frames.csv", step.id),
        header: vec!["seq", "host_time_ns", "roi_mean"],
        rows: frames
            .iter()
            .map(|(s, t, b)| vec![s.to_string(), t.0.to_string(), format!("{b:.3}")])
            .collect(),
    });
    let mut intervals: Vec<f64> = frames
        .windows(2)
        .map(|w| w[1].1.secs_since(w[0].1))
        .collect();
    intervals.sort_by(f64::total_cmp);
    let period = intervals.get(intervals.len() / 2).copied().unwrap_or(0.0);
    let stamp_s = 20e-6;
    for (k, flash) in flashes.iter().enumerate() {
        let at = match flash {
            Ok(at) => *at,
            Err(why) => {
                m.shots.push(not_emitted(k, times[k], why));
                continue;
            }
        };
        let (t_f, hw_ns) = est.rig_to_host(at);
        let mut shot = Shot {
            index: k as u32,
            emitted: t_f,
            value_ms: None,
            uncertainty_ms: None,
            detail: String::new(),
            station_fault: false,
            sync_bound_us: Some(2.0 * hw_ns * 1e-3),
        };
        match locate_flash(&frames, t_f, period, p.max_latency_ms / 1e3) {
            Err(why) => shot.detail = why,
            Ok((arrival, f, noise_frac, thr_frac)) => {
                let latency = arrival.secs_since(t_f) - period * (f - 0.5);
                let u = hw_ns * 1e-9
                    + period * thr_frac
                    + K * ((period * noise_frac).powi(2) + stamp_s * stamp_s).sqrt();
                shot.value_ms = Some(latency * 1e3);
                shot.uncertainty_ms = Some(u * 1e3);
                shot.detail = format!("lit fraction {f:.3} of the first lit frame");
            }
        }
        m.shots.push(shot);
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// Find the first frame showing a flash at host time `t_f`. Returns its arrival,
/// the lit fraction of its exposure, the brightness noise as a fraction of the
/// step, and the threshold as a fraction of the step.
fn locate_flash(
    frames: &[(u64, HostTime, f64)],
    t_f: HostTime,
    period: f64,
    max_latency: f64,
) -> Result<(HostTime, f64, f64, f64), String> {
    if period <= 0.0 {
        return Err("too few frames to know the frame period".into());
    }
    // The dark level: the frames that arrived in the 200 ms before the flash,
    // summarised robustly (median, and MAD scaled to a standard deviation) so
    // that a late frame of the previous flash cannot raise it.
    let mut before: Vec<f64> = frames
        .iter()
        .filter(|(_, t, _)| *t <= t_f && t.secs_since(t_f) > -0.2)
        .map(|x| x.2)
        .collect();
    if before.len() < 3 {
        return Err("too few frames before the flash to measure the dark level".into());
    }
    before.sort_by(f64::total_cmp);
    let floor = before[before.len() / 2];
    let mut dev: Vec<f64> = before.iter().map(|b| (b - floor).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let sd = (1.4826 * dev[dev.len() / 2]).max(0.05);
    let after: Vec<&(u64, HostTime, f64)> = frames
        .iter()
        .filter(|(_, t, _)| *t > t_f && t.secs_since(t_f) <= max_latency + 2.0 * period)
        .collect();
    let high = after.iter().map(|x| x.2).fold(f64::NEG_INFINITY, f64::max);
    let step = high - floor;
    if !step.is_finite() || step < (10.0 * sd).max(2.0) {
        return Err(format!(
            "LED not seen: brightest frame {:.1} over a dark level of {floor:.1} ± {sd:.1} within {:.0} ms",
            if high.is_finite() { high } else { floor },
            (max_latency + 2.0 * period) * 1e3
        ));
    }
    let thr_frac = ((6.0 * sd) / step).max(0.03);
    let threshold = floor + thr_frac * step;
    let j = after
        .iter()
        .position(|x| x.2 > threshold)
        .expect("the brightest frame is above the threshold");
    // The fully lit level: the frame after the first lit one, when it is brighter.
    let full = after
        .get(j + 1)
        .map(|x| x.2)
        .unwrap_or(high)
        .max(after[j].2);
    let f = ((after[j].2 - floor) / (full - floor)).clamp(0.0, 1.0);
    let arrival = after[j].1;
    if arrival.secs_since(t_f) - period * (f - 0.5) > max_latency {
        return Err(format!(
            "the first lit frame arrived {:.1} ms after the flash, beyond max_latency_ms",
            arrival.secs_since(t_f) * 1e3
        ));
    }
    Ok((arrival, f, sd / step, thr_frac))
}

fn hid_latency(step: &Step, ctx: &mut Ctx, m: &mut Measurement) -> Result<(), String> {
    let p = &step.params;
    let (want_page, want_usage) = crate::profile::requirement::parse_hid_usage(&p.hid_usage)
        .ok_or_else(|| format!("bad hid_usage {:?}", p.hid_usage))?;
    need(ctx.station.dut.hid.as_mut(), "HID interface")?;
    ctx.sync_burst().map_err(|e| e.to_string())?;
    m.anomalies.sync_bursts += 1;
    let est0 = ctx.estimate().map_err(|e| e.to_string())?;
    let n = shots_of(step);
    let interval = p.interval_ms / 1e3;
    let hold_us = ((interval * 0.4) * 1e6) as u64;
    let t0 = ctx.station.clock.now().plus_secs(LEAD_IN_S);
    let end = t0.plus_secs(n as f64 * interval);
    let times = schedule(t0, interval, n, (interval * 0.1).min(0.02), ctx.seed);
    let mut events = Vec::with_capacity(2 * n as usize + 8);
    let (mut presses, failure) = drive_shots(
        ctx,
        m,
        est0,
        &times,
        end,
        |st, at| st.rig.press_button(at, hold_us),
        |st, wait| {
            let hid = need(st.dut.hid.as_mut(), "HID interface")?;
            if let Some(e) = hid.next_event(wait).map_err(|e| e.to_string())? {
                events.push(e);
            }
            Ok(())
        },
    );
    if ctx.sync_burst().is_ok() {
        m.anomalies.sync_bursts += 1;
    }
    as_fired(ctx, rig_protocol::sensor::BUTTON, &mut presses);
    let est = ctx.estimate().map_err(|e| e.to_string())?;
    m.sync = Some(est.clone());
    m.raw.push(RawData::Table {
        name: format!("{}-hid.csv", step.id),
        header: vec!["host_time_ns", "usage_page", "usage", "value"],
        rows: events
            .iter()
            .map(|e| {
                vec![
                    e.host_time.0.to_string(),
                    format!("0x{:02x}", e.usage_page),
                    format!("0x{:02x}", e.usage),
                    e.value.to_string(),
                ]
            })
            .collect(),
    });
    let max_latency = p.max_latency_ms / 1e3;
    for (k, press) in presses.iter().enumerate() {
        let at = match press {
            Ok(at) => *at,
            Err(why) => {
                m.shots.push(not_emitted(k, times[k], why));
                continue;
            }
        };
        let (t_p, hw_ns) = est.rig_to_host(at);
        let hit = events.iter().find(|e| {
            e.usage_page == want_page
                && e.usage == want_usage
                && e.value != 0
                && e.host_time.secs_since(t_p) >= -hw_ns * 1e-9
                && e.host_time.secs_since(t_p) <= max_latency
        });
        m.shots.push(match hit {
            Some(e) => Shot {
                index: k as u32,
                emitted: t_p,
                value_ms: Some(e.host_time.secs_since(t_p) * 1e3),
                uncertainty_ms: Some((hw_ns * 1e-9 + K * 1e-6) * 1e3),
                detail: format!("usage 0x{want_page:02x}:0x{want_usage:02x} pressed"),
                station_fault: false,
                sync_bound_us: Some(2.0 * hw_ns * 1e-3),
            },
            None => Shot {
                index: k as u32,
                emitted: t_p,
                value_ms: None,
                uncertainty_ms: None,
                detail: format!(
                    "no HID report of usage 0x{want_page:02x}:0x{want_usage:02x} within {:.0} ms",
                    max_latency * 1e3
                ),
                station_fault: false,
                sync_bound_us: Some(2.0 * hw_ns * 1e-3),
            },
        });
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}
