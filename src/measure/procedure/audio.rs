//! Audio latency steps: send (the rig's speaker to the DUT's microphone, as
//! the host captures it), receive (the host plays to the DUT, the rig's
//! microphone hears it) and round trip (the host plays, the DUT's speaker
//! reaches the rig, whose loopback plays it back into the DUT's microphone).

use std::sync::Arc;

use super::{drive_shots, need, schedule, shots_of, Ctx, Emit, LEAD_IN_S};
use crate::measure::delay::Correlator;
use crate::measure::measurement::{Measurement, RawData};
use crate::measure::shots::{audio_shots, Arrival, AudioEmission, AudioWindow};
use crate::measure::stimulus::Stimulus;
use crate::profile::{Step, StepKind};
use crate::sampling::{Acquisition, Capture};
use crate::time::{HostTime, RigTime};

/// How long after the last shot's window a lagging capture stream is waited for.
const STREAM_CATCH_UP_S: f64 = 2.0;

pub(super) fn latency(step: &Step, ctx: &mut Ctx, m: &mut Measurement) -> Result<(), String> {
    let p = &step.params;
    let stim = Stimulus::new(p.stimulus, p.sample_rate, p.stimulus_ms / 1e3, ctx.seed);
    let samples: Arc<[f32]> = stim.samples().into();
    let rig_mic = step.kind == StepKind::AudioReceiveLatency;
    let loopback_s = if step.kind == StepKind::AudioRoundtripLatency {
        ctx.station.rig.info().loopback_delay_us as f64 * 1e-6
    } else {
        0.0
    };
    let rig_plays = !(rig_mic || loopback_s > 0.0);
    if rig_plays {
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
    let est0 = ctx.estimate().map_err(|e| e.to_string())?;
    let t0 = ctx.station.clock.now().plus_secs(LEAD_IN_S);
    // No dither: an audio capture has no frame clock for shots to lock to.
    let times = schedule(t0, interval, n, 0.0, ctx.seed);
    let end = t0.plus_secs(n as f64 * interval + 0.05);
    let (sent, mut failure) = drive_shots(
        ctx,
        m,
        est0,
        &times,
        end,
        |st, t, at| {
            if rig_plays {
                st.rig
                    .play(samples.clone(), rate, at)
                    .map(|_| Emit::Rig(at))
            } else {
                match st.dut.audio.as_mut() {
                    Some(a) => a.play(samples.clone(), rate, t).map(|_| Emit::Host(t)),
                    None => Err(crate::station::StationError::Other(
                        "the device has no audio interface, which this step needs".into(),
                    )),
                }
            }
        },
        |st, wait| {
            acq.drain_into(&mut capture);
            if let Some(e) = acq.error() {
                return Err(e.to_string());
            }
            st.clock
                .sleep(wait.min(std::time::Duration::from_millis(10)));
            Ok(())
        },
    );
    // Let the last shot's window fill: the stream may lag behind the wall
    // clock (a loaded host), so wait until it has delivered samples that
    // far, for at most STREAM_CATCH_UP_S more.
    if failure.is_none() && !sent.is_empty() {
        let last = times[sent.len() - 1];
        let est = ctx.estimate().map_err(|e| e.to_string())?;
        let needed_host = last.plus_secs((p.stimulus_ms + p.max_latency_ms) / 1e3 + 0.02);
        let needed_ns = if rig_mic {
            est.host_to_rig(needed_host).0 as i64 * 1000
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
        failure = err.map(|e| e.to_string());
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
    let map = capture.time_map();
    m.stream_drift_ppm = map.as_ref().map(|t| t.drift_ppm);
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
    // Each emission in host time (with its bound) and on the capture's clock.
    let emissions: Vec<Result<AudioEmission, (HostTime, String)>> = sent
        .iter()
        .map(|s| {
            let (emitted, emit_hw_ns, rig) = match s {
                Ok(Emit::Rig(at)) => {
                    let fired =
                        crate::station::fired_at(&onsets, rig_protocol::sensor::SPEAKER, *at);
                    let (h, hw) = est.rig_to_host(fired);
                    (h, hw, Some(fired))
                }
                Ok(Emit::Host(t)) => (*t, 0.0, None),
                Err(e) => return Err(e.clone()),
            };
            let at_capture_ns = if rig_mic {
                est.host_to_rig(emitted).0 as f64 * 1e3
            } else {
                emitted.0 as f64
            };
            Ok(AudioEmission {
                emitted,
                emit_hw_ns,
                rig,
                at_capture_ns,
            })
        })
        .collect();
    let mut corr = Correlator::new(&samples, rate);
    let window = AudioWindow {
        len: ((p.stimulus_ms + p.max_latency_ms) / 1e3 * rate as f64).ceil() as usize,
        // A few milliseconds before the emission, for the clock-sync bound and the filters.
        guard: (0.005 * rate as f64) as usize,
        subtract_s: loopback_s,
    };
    let (shots, emitted_at) = audio_shots(&emissions, &capture, &map, &mut corr, window, |t| {
        if rig_mic {
            let rig = RigTime((t / 1e3).round() as u64);
            let (host, hw_ns) = est.rig_to_host(rig);
            Arrival {
                host,
                hw_ns,
                rig: Some(rig),
            }
        } else {
            Arrival::host_ns(t)
        }
    });
    m.shots = shots;
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
