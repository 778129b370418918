//! The station's own paths through the rig, measured without a DUT: the
//! rig's reference speaker to its reference microphone.
//!
//! Owns the acoustic-path procedure that `certlab probe rig --acoustic`
//! runs (and a station calibration records): noise bursts played by the
//! rig at scheduled rig times, found in the rig's own microphone stream.
//! Both ends are stamped by the rig's clock, so no clock sync crosses the
//! result; the host's clock sync only schedules the shots. When the rig
//! reports when its speaker really started, that time is the emission. It
//! judges nothing and writes no file.

use std::sync::Arc;

use serde::Serialize;

use super::delay::Correlator;
use super::measurement::K;
use super::shots::{audio_shots, Arrival, AudioEmission, AudioWindow};
use super::stimulus::Stimulus;
use crate::profile::StimulusKind;
use crate::sampling::{Acquisition, Capture};
use crate::station::sync::ClockSync;
use crate::station::{fired_at, Rig, StationError};
use crate::time::{Clock, HostTime, RigTime};

/// Length of each burst, s.
const BURST_S: f64 = 0.05;
/// How long a path may be: the window after each emission, s (≈ 6.8 m of air).
const MAX_PATH_S: f64 = 0.02;
/// Commands go to the rig this long before their time, s.
const AHEAD_S: f64 = 0.06;
/// Exchanges that synchronise the clocks for scheduling.
const SYNC_EXCHANGES: usize = 32;

/// One burst through the acoustic path.
#[derive(Debug, Clone, Serialize)]
pub struct PathShot {
    pub shot: u32,
    /// The rig time the burst was scheduled for, µs (`None` when not emitted).
    pub at_us: Option<u64>,
    /// Speaker start to microphone arrival, µs; `None` when not found.
    pub delay_us: Option<f64>,
    /// Expanded (k = 2) uncertainty of `delay_us`, µs.
    pub uncertainty_us: Option<f64>,
    /// How far after its scheduled time the rig says the speaker started, µs.
    pub started_after_us: Option<f64>,
    pub detail: String,
}

/// The acoustic path's shots and their summary.
#[derive(Debug, Clone, Serialize)]
pub struct AcousticPath {
    pub sample_rate: u32,
    pub shots: Vec<PathShot>,
    /// Median of the measured delays, µs.
    pub median_us: Option<f64>,
    /// Expanded (k = 2) uncertainty of the median: the widest shot's,
    /// combined with the sampling error of a median, µs.
    pub median_uncertainty_us: Option<f64>,
    /// Blocks the rig's stream lost on the way (shots over them are not measured).
    pub gap_blocks: u64,
    pub overrun_blocks: u64,
}

/// Play `shots` bursts `interval_s` apart through the rig's speaker and find
/// each in its microphone at `rate`.
pub fn acoustic_path(
    rig: &mut dyn Rig,
    clock: &Clock,
    rate: u32,
    shots: u32,
    interval_s: f64,
    seed: u64,
) -> Result<AcousticPath, StationError> {
    let fail = |e: String| StationError::Other(e);
    let stim = Stimulus::new(StimulusKind::Noise, rate, BURST_S, seed);
    let samples: Arc<[f32]> = stim.samples().into();
    rig.load(&samples)?;
    let mut sync = ClockSync::new();
    for _ in 0..SYNC_EXCHANGES {
        sync.add(rig.sync_exchange()?);
    }
    let est = sync
        .estimate()
        .ok_or_else(|| fail("the rig's clock-sync exchanges do not fit one clock".into()))?;
    let source = rig.mic_stream(rate)?;
    let total_s = 0.3 + shots as f64 * interval_s + 0.5;
    let mut capture = Capture::new(rate, (total_s * rate as f64) as usize + 4096);
    let mut acq = Acquisition::start_on(clock, source, 2048)
        .map_err(|e| fail(format!("cannot start acquisition: {e}")))?;
    let t0 = clock.now().plus_secs(0.3);
    let mut emitted: Vec<Result<RigTime, String>> = Vec::with_capacity(shots as usize);
    let wait_until = |t: HostTime, acq: &mut Acquisition, capture: &mut Capture| {
        while clock.now() < t {
            acq.drain_into(capture);
            clock.sleep(std::time::Duration::from_millis(2));
        }
    };
    for k in 0..shots {
        let t_k = t0.plus_secs(k as f64 * interval_s);
        wait_until(t_k.plus_secs(-AHEAD_S), &mut acq, &mut capture);
        let at = est.host_to_rig(t_k);
        match rig.play(samples.clone(), rate, at) {
            Ok(()) => emitted.push(Ok(at)),
            Err(e @ StationError::RigRefused { .. }) => emitted.push(Err(e.to_string())),
            Err(e) => {
                let _ = acq.stop(&mut capture);
                let _ = rig.stop_streams();
                return Err(e);
            }
        }
    }
    let last = t0.plus_secs(shots.saturating_sub(1) as f64 * interval_s);
    let needed_us = est
        .host_to_rig(last.plus_secs(BURST_S + MAX_PATH_S + 0.02))
        .0;
    let give_up = clock.now().plus_secs(BURST_S + MAX_PATH_S + 2.0);
    while capture
        .end_time_ns()
        .is_none_or(|t| t < needed_us as i64 * 1000)
        && clock.now() < give_up
        && acq.error().is_none()
    {
        acq.drain_into(&mut capture);
        clock.sleep(std::time::Duration::from_millis(5));
    }
    let (stats, err) = acq.stop(&mut capture);
    let _ = rig.stop_streams();
    if let Some(e) = err {
        return Err(fail(format!("the rig's microphone stream: {e}")));
    }
    let onsets = rig.take_onsets();
    let map = capture
        .time_map()
        .ok_or_else(|| fail("the rig's microphone delivered nothing".into()))?;
    // Both ends are rig stamps: the shot analysis runs on the rig's clock
    // (in ns), and the rig's 1 µs tick bounds the emission's stamp.
    let starts: Vec<Option<RigTime>> = emitted
        .iter()
        .map(|e| {
            e.as_ref()
                .ok()
                .map(|at| fired_at(&onsets, rig_protocol::sensor::SPEAKER, *at))
        })
        .collect();
    let emissions: Vec<Result<AudioEmission, (HostTime, String)>> = emitted
        .iter()
        .zip(&starts)
        .map(|(e, start)| match (e, start) {
            (Ok(_), Some(st)) => Ok(AudioEmission {
                emitted: HostTime(st.0 as i64 * 1000),
                emit_hw_ns: 500.0,
                rig: None,
                at_capture_ns: st.0 as f64 * 1e3,
            }),
            (Err(why), _) => Err((HostTime(0), why.clone())),
            (Ok(_), None) => Err((HostTime(0), "no start time".into())),
        })
        .collect();
    let mut corr = Correlator::new(&samples, rate);
    let window = AudioWindow {
        len: ((BURST_S + MAX_PATH_S) * rate as f64).ceil() as usize,
        guard: (0.002 * rate as f64) as usize,
        subtract_s: 0.0,
    };
    // Both ends on the rig's clock: nothing crosses it.
    let (analysed, _) = audio_shots(
        &emissions,
        &capture,
        &map,
        &mut corr,
        window,
        Arrival::host_ns,
    );
    let out: Vec<PathShot> = analysed
        .into_iter()
        .zip(emitted.iter().zip(&starts))
        .map(|(s, (e, start))| PathShot {
            shot: s.index,
            at_us: e.as_ref().ok().map(|a| a.0),
            delay_us: s.value_ms().map(|v| v * 1e3),
            uncertainty_us: s.uncertainty_ms().map(|u| u * 1e3),
            started_after_us: e
                .as_ref()
                .ok()
                .zip(*start)
                .map(|(at, st)| st.0 as f64 - at.0 as f64),
            detail: s.detail,
        })
        .collect();
    let mut delays: Vec<f64> = out.iter().filter_map(|s| s.delay_us).collect();
    delays.sort_by(f64::total_cmp);
    let median = (!delays.is_empty()).then(|| {
        let n = delays.len();
        if n % 2 == 1 {
            delays[n / 2]
        } else {
            (delays[n / 2 - 1] + delays[n / 2]) / 2.0
        }
    });
    let widest = out
        .iter()
        .filter_map(|s| s.uncertainty_us)
        .fold(0.0, f64::max);
    let median_u = median.map(|_| {
        let n = delays.len() as f64;
        let mean = delays.iter().sum::<f64>() / n;
        let sd = if n > 1.0 {
            (delays.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        // The sampling error of a median, √(π/2)·s/√n, at k = 2.
        let sampling = K * (std::f64::consts::FRAC_PI_2).sqrt() * sd / n.sqrt();
        (widest.powi(2) + sampling.powi(2)).sqrt()
    });
    Ok(AcousticPath {
        sample_rate: rate,
        shots: out,
        median_us: median,
        median_uncertainty_us: median_u,
        gap_blocks: capture.gap_blocks,
        overrun_blocks: stats.overruns,
    })
}
