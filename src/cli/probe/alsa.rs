//! `certlab probe audio` with the `alsa` feature: play the bursts at their
//! host times and, with a capture device, find each in the capture.
//!
//! Owns the schedule of the bursts, gathering the capture, and printing
//! each shot and the summary. The devices are `station::host::alsa_audio`'s
//! and the analysis of each shot is `measure::shots::audio_shots`, as a
//! step's; this module must not correlate or time shots itself.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::audio::AudioArgs;
use super::ms3;
use crate::cli::print_json;
use crate::measure::delay::Correlator;
use crate::measure::shots::{audio_shots, Arrival, AudioEmission, AudioWindow};
use crate::measure::stimulus::Stimulus;
use crate::profile::StimulusKind;
use crate::sampling::{Acquisition, Capture};
use crate::station::host::alsa_audio::AlsaAudio;
use crate::station::{AudioPath, StationError};
use crate::time::HostClock;
use crate::{Error, ExitStatus, Result};

/// `probe audio`'s burst, and how far before its time its window opens
/// (and before the next shot's time it closes).
const PROBE_BURST_S: f64 = 0.05;
const PROBE_MARGIN_S: f64 = 0.02;

/// One loopback shot's result.
#[derive(Serialize)]
struct AudioShot {
    shot: u32,
    latency_ms: Option<f64>,
    detail: String,
}

#[derive(Serialize)]
struct AudioOut {
    playback: String,
    capture: String,
    sample_rate: u32,
    shots: Vec<AudioShot>,
    median_ms: Option<f64>,
    min_ms: Option<f64>,
    max_ms: Option<f64>,
    capture_xruns: u64,
    playback_xruns: u64,
    late_stimuli: u64,
    gap_blocks: u64,
    overrun_blocks: u64,
}

/// The burst as a mono 16-bit WAV.
fn write_burst(path: &std::path::Path, samples: &[f32], rate: u32) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let err = |e: &dyn std::fmt::Display| Error::BadInput(format!("{}: {e}", path.display()));
    let mut w = hound::WavWriter::create(path, spec).map_err(|e| err(&e))?;
    for &v in samples {
        // As the player writes it.
        w.write_sample((v.clamp(-1.0, 1.0) * 32767.0) as i16)
            .map_err(|e| err(&e))?;
    }
    w.finalize().map_err(|e| err(&e))
}

/// `probe audio` without a capture: play the bursts at their times and
/// count what the player could not do (xruns, bursts it reached too late).
fn play_only(
    playback: &str,
    rate: u32,
    shots: u32,
    interval_ms: f64,
    json: bool,
    samples: Arc<[f32]>,
) -> Result<ExitStatus> {
    let clock = HostClock::new();
    let dev = |e: StationError| Error::Device(e.to_string());
    let mut a = AlsaAudio::new(playback, playback, clock);
    a.start_playback(rate).map_err(dev)?;
    let t0 = clock.now().plus_secs(0.5);
    for k in 0..shots {
        let at = t0.plus_secs(k as f64 * interval_ms / 1e3);
        clock.sleep_until(at.plus_secs(-0.06));
        a.play(samples.clone(), rate, at).map_err(dev)?;
    }
    clock.sleep_until(t0.plus_secs(shots as f64 * interval_ms / 1e3 + 0.3));
    a.stop_playback();
    let o = PlayOut {
        playback: playback.into(),
        sample_rate: rate,
        shots,
        interval_ms,
        playback_xruns: a.stats.playback_xruns.load(Relaxed),
        late_stimuli: a.stats.late_stimuli.load(Relaxed),
    };
    if json {
        print_json(&o)?;
    } else {
        println!(
            "played {} bursts to {} every {} ms; xruns {}; {} late",
            o.shots, o.playback, o.interval_ms, o.playback_xruns, o.late_stimuli
        );
    }
    Ok(if o.playback_xruns == 0 && o.late_stimuli == 0 {
        ExitStatus::Ok
    } else {
        ExitStatus::Incomplete
    })
}

#[derive(Serialize)]
struct PlayOut {
    playback: String,
    sample_rate: u32,
    shots: u32,
    interval_ms: f64,
    playback_xruns: u64,
    late_stimuli: u64,
}

/// Play the bursts to `playback` and, with a `capture` device, find each
/// in its capture; print each shot's latency and the summary.
pub(super) fn play(args: &AudioArgs, playback: &str, capture: Option<&str>) -> Result<ExitStatus> {
    let (rate, shots, interval_ms, json) = (args.rate, args.shots, args.interval_ms, args.json);
    let stim = Stimulus::new(StimulusKind::Noise, rate, PROBE_BURST_S, 7);
    let samples: Arc<[f32]> = stim.samples().into();
    if let Some(p) = &args.burst_out {
        write_burst(p, &samples, rate)?;
    }
    let Some(capture) = capture else {
        return play_only(playback, rate, shots, interval_ms, json, samples);
    };
    let clock = HostClock::new();
    let dev = |e: StationError| Error::Device(e.to_string());
    let mut a = AlsaAudio::new(capture, playback, clock);
    let interval = interval_ms / 1e3;
    let total = 0.5 + shots as f64 * interval + 1.0;
    let source = a.capture_stream(rate).map_err(dev)?;
    let mut cap = Capture::new(rate, (total * rate as f64) as usize);
    let mut acq = Acquisition::start(source, 1024)
        .map_err(|e| Error::Harness(format!("cannot start acquisition: {e}")))?;
    let t0 = clock.now().plus_secs(0.5);
    let mut emissions = Vec::new();
    for k in 0..shots {
        let at = t0.plus_secs(k as f64 * interval);
        // Hand each shot to the player 60 ms ahead, as a step does.
        while clock.now() < at.plus_secs(-0.06) {
            acq.drain_into(&mut cap);
            std::thread::sleep(Duration::from_millis(2));
        }
        a.play(samples.clone(), rate, at).map_err(dev)?;
        // Played and captured on the host's clock: no clock-sync bound, and
        // the capture's time of the emission is its host time.
        emissions.push(Ok(AudioEmission {
            emitted: at,
            emit_hw_ns: 0.0,
            rig: None,
            at_capture_ns: at.0 as f64,
        }));
    }
    let end = t0.plus_secs(shots as f64 * interval + 0.5);
    while clock.now() < end {
        acq.drain_into(&mut cap);
        std::thread::sleep(Duration::from_millis(5));
    }
    a.stop_playback();
    let (stats, err) = acq.stop(&mut cap);
    if let Some(e) = err {
        return Err(Error::Device(format!("capture from {capture}: {e}")));
    }
    let map = cap
        .time_map()
        .ok_or_else(|| Error::Device(format!("nothing was captured from {capture}")))?;
    let mut corr = Correlator::new(&samples, rate);
    // From MARGIN before the shot to MARGIN before the next one: never two
    // bursts in one window, and an early-looking burst is still found.
    let window = AudioWindow {
        len: ((interval - PROBE_MARGIN_S) * rate as f64) as usize,
        guard: (PROBE_MARGIN_S * rate as f64) as usize,
        subtract_s: 0.0,
    };
    let (measured, _) = audio_shots(&emissions, &cap, &map, &mut corr, window, Arrival::host_ns);
    let out: Vec<AudioShot> = measured
        .into_iter()
        .map(|s| AudioShot {
            shot: s.index,
            latency_ms: s.value_ms(),
            detail: s.detail,
        })
        .collect();
    if !json {
        for shot in &out {
            match shot.latency_ms {
                Some(ms) => println!("shot {:>3}: {ms:>9.3} ms  ({})", shot.shot, shot.detail),
                None => println!("shot {:>3}: missed ({})", shot.shot, shot.detail),
            }
        }
    }
    let mut lat: Vec<f64> = out.iter().filter_map(|s| s.latency_ms).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let median = (!lat.is_empty()).then(|| lat[lat.len() / 2]);
    let o = AudioOut {
        playback: playback.into(),
        capture: capture.into(),
        sample_rate: rate,
        median_ms: median,
        min_ms: lat.first().copied(),
        max_ms: lat.last().copied(),
        capture_xruns: a.stats.capture_xruns.load(Relaxed),
        playback_xruns: a.stats.playback_xruns.load(Relaxed),
        late_stimuli: a.stats.late_stimuli.load(Relaxed),
        gap_blocks: cap.gap_blocks,
        overrun_blocks: stats.overruns,
        shots: out,
    };
    if json {
        print_json(&o)?;
    } else {
        println!(
            "{} of {} shots; median {} ms (min {}, max {}); xruns {} capture, {} playback; {} late",
            lat.len(),
            o.shots.len(),
            ms3(o.median_ms),
            ms3(o.min_ms),
            ms3(o.max_ms),
            o.capture_xruns,
            o.playback_xruns,
            o.late_stimuli
        );
    }
    Ok(if lat.len() == o.shots.len() {
        ExitStatus::Ok
    } else {
        ExitStatus::Incomplete
    })
}
