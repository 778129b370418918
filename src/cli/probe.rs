//! `certlab probe hid`: check a station's HID wiring before a run. It opens
//! a DUT's hidraw node (by USB identity or path), optionally writes an output
//! report (an LED), and prints every input change with its time since the
//! write. Printing only; the backend is `station::host::hidraw`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::station::host::{self, hidraw::Hidraw};
use crate::station::usb_dut;
use crate::station::{DeviceSpec, HidInput};
use crate::time::HostClock;
use crate::usb::hid::{usage_name, Usage, NAMED_USAGES};
use crate::usb::sysfs;
use crate::{Error, ExitStatus, Result};

/// A usage by name (`led-mute`, `hook-switch`, ...) or as `0xPP:0xUU`.
pub fn parse_usage(s: &str) -> Result<Usage> {
    if let Some((p, i, _)) = NAMED_USAGES.iter().find(|(_, _, n)| *n == s) {
        return Ok(Usage::new(*p, *i));
    }
    crate::profile::requirement::parse_hid_usage(s)
        .map(|(p, i)| Usage::new(p, i))
        .ok_or_else(|| {
            Error::BadInput(format!(
                "bad usage {s:?}: give a name ({}) or 0xPAGE:0xID",
                NAMED_USAGES
                    .iter()
                    .map(|(_, _, n)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// The device node a `--device` spec names: a `/dev/...` path as given,
/// or the node `pick` chooses among those sysfs shows for a
/// `usb:VID:PID[:SERIAL]` device; `what` names the node in messages.
fn node_of(
    device: &str,
    what: &str,
    pick: impl FnOnce(&sysfs::DeviceNodes, &sysfs::UsbDevice) -> Option<PathBuf>,
    why_none: &str,
) -> Result<PathBuf> {
    if device.starts_with("/dev/") {
        return Ok(PathBuf::from(device));
    }
    let DeviceSpec::Usb { vid, pid, serial } = DeviceSpec::parse(device)? else {
        return Err(Error::BadInput(format!(
            "--device {device}: give usb:VID:PID[:SERIAL] or a /dev/{what}N path"
        )));
    };
    let root = usb_dut::sysfs_root();
    let dev = usb_dut::find(&root, vid, pid, serial.as_deref(), device)?;
    let nodes = sysfs::device_nodes(&root, &dev.name)
        .map_err(|e| Error::Device(format!("{device}: {e}")))?;
    pick(&nodes, &dev)
        .ok_or_else(|| Error::Device(format!("{device} has no {what} node ({why_none})")))
}

/// A probe's result as pretty JSON on stdout.
fn print_json(o: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(o)
        .map_err(|e| Error::Harness(format!("cannot print: {e}")))?;
    println!("{text}");
    Ok(())
}

#[derive(Serialize)]
struct EventOut {
    usage: String,
    name: Option<&'static str>,
    value: i32,
    /// Since the output report was written (or since listening began), ms.
    t_ms: f64,
}

#[derive(Serialize)]
struct ProbeOut {
    node: String,
    vid: String,
    pid: String,
    bustype: u32,
    usages: Vec<String>,
    wrote: Option<String>,
    /// How long the write call took, ms.
    write_ms: Option<f64>,
    events: Vec<EventOut>,
    reports: u64,
    undecodable_reports: u64,
    dropped_events: u64,
}

pub fn hid(device: &str, set: Option<&str>, listen_ms: u64, json: bool) -> Result<ExitStatus> {
    let write = match set {
        Some(s) => {
            let (u, v) = s.split_once('=').ok_or_else(|| {
                Error::BadInput(format!(
                    "--set {s:?}: expected USAGE=VALUE, e.g. led-mute=1"
                ))
            })?;
            let v: i64 = v.trim().parse().map_err(|_| {
                Error::BadInput(format!("--set {s:?}: the value is not an integer"))
            })?;
            Some((parse_usage(u.trim())?, v))
        }
        None => None,
    };
    let node = node_of(
        device,
        "hidraw",
        host::pick_hidraw,
        "no HID interface, or usbhid is not bound",
    )?;
    let clock = HostClock::new();
    let mut h = Hidraw::open(&node, clock).map_err(|e| Error::Device(e.to_string()))?;
    let info = h.info().clone();
    let mut t0 = clock.now();
    let mut wrote = None;
    let mut write_ms = None;
    if let Some((u, v)) = write {
        let (before, after) = h
            .set_output(u, v)
            .map_err(|e| Error::Device(e.to_string()))?;
        t0 = before;
        write_ms = Some(after.secs_since(before) * 1e3);
        wrote = Some(format!("{u}={v}"));
    }
    let deadline = t0.plus_secs(listen_ms as f64 / 1e3);
    let mut events = Vec::new();
    loop {
        let now = clock.now();
        if now >= deadline {
            break;
        }
        let left = Duration::from_nanos((deadline.0 - now.0).max(0) as u64);
        match h.next_event(left) {
            Ok(Some(e)) => {
                let u = Usage::new(e.usage_page, e.usage);
                let ev = EventOut {
                    usage: u.to_string(),
                    name: usage_name(u),
                    value: e.value,
                    t_ms: e.host_time.secs_since(t0) * 1e3,
                };
                if !json {
                    println!(
                        "{:>10.3} ms  {} {} = {}",
                        ev.t_ms,
                        ev.usage,
                        ev.name.unwrap_or(""),
                        ev.value
                    );
                }
                events.push(ev);
            }
            Ok(None) => break,
            Err(e) => return Err(Error::Device(e.to_string())),
        }
    }
    let stats = &h.stats;
    use std::sync::atomic::Ordering::Relaxed;
    let out = ProbeOut {
        node: node.display().to_string(),
        vid: format!("{:04x}", info.vid),
        pid: format!("{:04x}", info.pid),
        bustype: info.bustype,
        usages: info.report.usages(),
        wrote,
        write_ms,
        events,
        reports: stats.reports.load(Relaxed),
        undecodable_reports: stats.undecodable_reports.load(Relaxed),
        dropped_events: stats.dropped_events.load(Relaxed),
    };
    if json {
        print_json(&out)?;
    } else {
        if let (Some(w), Some(ms)) = (&out.wrote, out.write_ms) {
            eprintln!("wrote {w}: the write took {ms:.3} ms");
        }
        eprintln!(
            "{} ({}:{}): {} reports, {} undecodable, {} events dropped; usages {}",
            out.node,
            out.vid,
            out.pid,
            out.reports,
            out.undecodable_reports,
            out.dropped_events,
            out.usages.join(" ")
        );
    }
    Ok(ExitStatus::Ok)
}

/// `probe audio` without a capture: play the bursts at their times and
/// count what the player could not do (xruns, bursts it reached too late).
#[cfg(feature = "alsa")]
fn play_only(
    playback: &str,
    rate: u32,
    shots: u32,
    interval_ms: f64,
    json: bool,
    samples: std::sync::Arc<[f32]>,
) -> Result<ExitStatus> {
    use crate::station::host::alsa_audio::AlsaAudio;
    use crate::station::AudioPath;
    use std::sync::atomic::Ordering::Relaxed;

    let clock = HostClock::new();
    let dev = |e: crate::station::StationError| Error::Device(e.to_string());
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

#[cfg(feature = "alsa")]
#[derive(Serialize)]
struct PlayOut {
    playback: String,
    sample_rate: u32,
    shots: u32,
    interval_ms: f64,
    playback_xruns: u64,
    late_stimuli: u64,
}

/// `probe audio`'s burst, and how far before its time its window opens
/// (and before the next shot's time it closes).
#[cfg(feature = "alsa")]
const PROBE_BURST_S: f64 = 0.05;
#[cfg(feature = "alsa")]
const PROBE_MARGIN_S: f64 = 0.02;

/// One loopback shot's result.
#[cfg(feature = "alsa")]
#[derive(Serialize)]
struct AudioShot {
    shot: u32,
    latency_ms: Option<f64>,
    detail: String,
}

#[cfg(feature = "alsa")]
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

/// What `certlab probe audio` was asked.
pub struct AudioArgs {
    pub playback: String,
    pub capture: Option<String>,
    pub rate: u32,
    pub shots: u32,
    pub interval_ms: f64,
    pub burst_out: Option<PathBuf>,
    pub json: bool,
}

/// `certlab probe audio`: play noise bursts on one ALSA device at scheduled
/// host times and find them in another's capture; print each latency.
pub fn audio(a: AudioArgs) -> Result<ExitStatus> {
    if !(8000..=192_000).contains(&a.rate)
        || a.shots == 0
        || a.shots > 1000
        || !(150.0..=10_000.0).contains(&a.interval_ms)
    {
        return Err(Error::BadInput(
            "--rate 8000..192000, --shots 1..1000 and --interval-ms 150..10000".into(),
        ));
    }
    let playback = alsa_name(&a.playback)?;
    let capture = a.capture.as_deref().map(alsa_name).transpose()?;
    audio_impl(&a, &playback, capture.as_deref())
}

/// An ALSA device name as given, or a USB device's first card as `hw:N,0`.
fn alsa_name(spec: &str) -> Result<String> {
    if !spec.starts_with("usb:") {
        return Ok(spec.to_string());
    }
    let DeviceSpec::Usb { vid, pid, serial } = DeviceSpec::parse(spec)? else {
        return Err(Error::BadInput(format!("{spec}: not usb:VID:PID[:SERIAL]")));
    };
    let root = usb_dut::sysfs_root();
    let dev = usb_dut::find(&root, vid, pid, serial.as_deref(), spec)?;
    let nodes =
        sysfs::device_nodes(&root, &dev.name).map_err(|e| Error::Device(format!("{spec}: {e}")))?;
    match nodes.sound_cards.first() {
        Some((_, card)) => Ok(format!("hw:{card},0")),
        None => Err(Error::Device(format!(
            "{spec} has no ALSA card (is snd-usb-audio bound?)"
        ))),
    }
}

/// The burst as a mono 16-bit WAV.
#[cfg(feature = "alsa")]
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

#[cfg(not(feature = "alsa"))]
fn audio_impl(args: &AudioArgs, _: &str, _: Option<&str>) -> Result<ExitStatus> {
    let _ = (&args.burst_out, args.json);
    Err(Error::Device(
        "certlab probe audio needs certlab built with `--features alsa` (and libasound2-dev)"
            .into(),
    ))
}

#[cfg(feature = "alsa")]
fn audio_impl(args: &AudioArgs, playback: &str, capture: Option<&str>) -> Result<ExitStatus> {
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::Arc;

    use crate::measure::delay::Correlator;
    use crate::measure::stimulus::Stimulus;
    use crate::profile::StimulusKind;
    use crate::sampling::{Acquisition, Capture};
    use crate::station::host::alsa_audio::AlsaAudio;
    use crate::station::AudioPath;

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
    let dev = |e: crate::station::StationError| Error::Device(e.to_string());
    let mut a = AlsaAudio::new(capture, playback, clock);
    let interval = interval_ms / 1e3;
    let total = 0.5 + shots as f64 * interval + 1.0;
    let source = a.capture_stream(rate).map_err(dev)?;
    let mut cap = Capture::new(rate, (total * rate as f64) as usize);
    let mut acq = Acquisition::start(source, 1024)
        .map_err(|e| Error::Harness(format!("cannot start acquisition: {e}")))?;
    let t0 = clock.now().plus_secs(0.5);
    let mut emitted = Vec::new();
    for k in 0..shots {
        let at = t0.plus_secs(k as f64 * interval);
        // Hand each shot to the player 60 ms ahead, as a step does.
        while clock.now() < at.plus_secs(-0.06) {
            acq.drain_into(&mut cap);
            std::thread::sleep(Duration::from_millis(2));
        }
        a.play(samples.clone(), rate, at).map_err(dev)?;
        emitted.push(at);
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
    let early = (PROBE_MARGIN_S * rate as f64) as usize;
    let window = ((interval - PROBE_MARGIN_S) * rate as f64) as usize + early;
    let mut out = Vec::new();
    let mut lat = Vec::new();
    for (k, at) in emitted.iter().enumerate() {
        let i = (map.index_of(at.0 as f64).round() as i64 - early as i64).max(0) as usize;
        let stop = (i + window).min(cap.samples.len());
        let shot = if stop <= i || stop - i < window {
            AudioShot {
                shot: k as u32,
                latency_ms: None,
                detail: "the capture ended before this shot's window".into(),
            }
        } else {
            match corr.estimate(&cap.samples[i..stop]) {
                Ok(d) => {
                    let t = map.time_of(i as f64 + d.delay_samples);
                    let ms = (t - at.0 as f64) / 1e6;
                    lat.push(ms);
                    AudioShot {
                        shot: k as u32,
                        latency_ms: Some(ms),
                        detail: format!("confidence {:.3}, SNR {:.1} dB", d.confidence, d.snr_db),
                    }
                }
                Err(e) => AudioShot {
                    shot: k as u32,
                    latency_ms: None,
                    detail: e.to_string(),
                },
            }
        };
        if !json {
            match shot.latency_ms {
                Some(ms) => println!("shot {:>3}: {ms:>9.3} ms  ({})", shot.shot, shot.detail),
                None => println!("shot {:>3}: missed ({})", shot.shot, shot.detail),
            }
        }
        out.push(shot);
    }
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
            o.median_ms.map(|v| format!("{v:.3}")).unwrap_or("-".into()),
            o.min_ms.map(|v| format!("{v:.3}")).unwrap_or("-".into()),
            o.max_ms.map(|v| format!("{v:.3}")).unwrap_or("-".into()),
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

#[derive(Serialize)]
struct FrameOut {
    seq: u64,
    /// Kernel timestamp, ms since the first frame.
    t_ms: f64,
    mean_luma: f64,
}

#[derive(Serialize)]
struct CameraOut {
    node: String,
    width: u32,
    height: u32,
    fps: f64,
    /// The first frame's kernel timestamp, CLOCK_MONOTONIC ns: where the
    /// frames' `t_ms` start.
    first_frame_ns: Option<i64>,
    frames: Vec<FrameOut>,
    interval_ms_mean: Option<f64>,
    interval_ms_min: Option<f64>,
    interval_ms_max: Option<f64>,
    dropped_frames: u64,
    error_frames: u64,
    unstamped_frames: u64,
}

/// `certlab probe camera`: stream N frames with their kernel timestamps.
pub fn camera(
    device: &str,
    frames: u32,
    width: u32,
    height: u32,
    fps: f64,
    json: bool,
) -> Result<ExitStatus> {
    use crate::station::host::v4l2::V4l2Camera;
    use crate::station::Camera;
    use std::sync::atomic::Ordering::Relaxed;
    if frames == 0 || frames > 10_000 {
        return Err(Error::BadInput("--frames 1..10000".into()));
    }
    let node = node_of(
        device,
        "video",
        |n, _| n.video.first().map(|(_, v)| PathBuf::from("/dev").join(v)),
        "is uvcvideo bound?",
    )?;
    let clock = HostClock::new();
    let dev = |e: crate::station::StationError| Error::Device(e.to_string());
    let mut cam = V4l2Camera::open(&node, width, height, fps, clock).map_err(dev)?;
    let (w, h, f) = cam.mode();
    cam.start().map_err(dev)?;
    let mut out = Vec::new();
    let mut first = None;
    while out.len() < frames as usize {
        let Some(fr) = cam.next_frame(Duration::from_secs(2)).map_err(dev)? else {
            return Err(Error::Device(format!(
                "{}: no frame within 2 s ({} received)",
                node.display(),
                out.len()
            )));
        };
        let t0 = *first.get_or_insert(fr.host_time);
        let mean = fr.luma.iter().map(|&v| f64::from(v)).sum::<f64>() / fr.luma.len().max(1) as f64;
        let o = FrameOut {
            seq: fr.seq,
            t_ms: fr.host_time.secs_since(t0) * 1e3,
            mean_luma: mean,
        };
        if !json {
            println!(
                "frame {:>6}  {:>10.3} ms  mean luma {:6.1}",
                o.seq, o.t_ms, o.mean_luma
            );
        }
        out.push(o);
    }
    cam.stop().map_err(dev)?;
    let gaps: Vec<f64> = out.windows(2).map(|p| p[1].t_ms - p[0].t_ms).collect();
    let o = CameraOut {
        node: node.display().to_string(),
        width: w,
        height: h,
        fps: f,
        first_frame_ns: first.map(|t| clock.to_monotonic(t)),
        interval_ms_mean: (!gaps.is_empty()).then(|| gaps.iter().sum::<f64>() / gaps.len() as f64),
        interval_ms_min: gaps.iter().copied().reduce(f64::min),
        interval_ms_max: gaps.iter().copied().reduce(f64::max),
        dropped_frames: cam.dropped_frames.load(Relaxed),
        error_frames: cam.error_frames.load(Relaxed),
        unstamped_frames: cam.unstamped_frames.load(Relaxed),
        frames: out,
    };
    if json {
        print_json(&o)?;
    } else {
        println!(
            "{} {}x{} at {:.2} fps: {} frames, interval {} ms mean ({}..{}), {} dropped, {} errors, {} without kernel stamps",
            o.node,
            o.width,
            o.height,
            o.fps,
            o.frames.len(),
            o.interval_ms_mean.map(|v| format!("{v:.3}")).unwrap_or("-".into()),
            o.interval_ms_min.map(|v| format!("{v:.3}")).unwrap_or("-".into()),
            o.interval_ms_max.map(|v| format!("{v:.3}")).unwrap_or("-".into()),
            o.dropped_frames,
            o.error_frames,
            o.unstamped_frames
        );
    }
    Ok(ExitStatus::Ok)
}

#[derive(Serialize)]
struct RigOut {
    port: String,
    rig: crate::station::RigInfo,
    exchanges: usize,
    seconds: f64,
    rtt_us_min: f64,
    rtt_us_median: f64,
    rtt_us_max: f64,
    offset_bound_us: Option<f64>,
    drift_ppm: Option<f64>,
    drift_bound_ppm: Option<f64>,
    link: crate::station::LinkStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    acoustic: Option<crate::measure::rig_path::AcousticPath>,
}

/// `certlab probe rig`: shake hands with a rig and synchronise clocks for a
/// while; print what it is and how well its clock is known; with
/// `acoustic` (shots, sample rate), measure its speaker-to-microphone path.
pub fn rig(
    spec: &str,
    seconds: f64,
    acoustic: Option<(u32, u32)>,
    json: bool,
) -> Result<ExitStatus> {
    use crate::station::sync::ClockSync;
    if !(0.1..=600.0).contains(&seconds) {
        return Err(Error::BadInput("--seconds 0.1..600".into()));
    }
    if let Some((shots, rate)) = acoustic {
        if !(1..=1000).contains(&shots) || !(8000..=192_000).contains(&rate) {
            return Err(Error::BadInput(
                "--shots 1..1000 and --rate 8000..192000".into(),
            ));
        }
    }
    let port = crate::station::parse_rig(spec)?.resolve(&usb_dut::sysfs_root(), spec)?;
    let clock = HostClock::new();
    let mut rig = crate::station::serial_rig::open_port(&port, clock.into())?;
    let info = rig.info();
    let mut sync = ClockSync::new();
    let start = clock.now();
    let mut rtts = Vec::new();
    while clock.now().secs_since(start) < seconds {
        let x = rig
            .sync_exchange()
            .map_err(|e| Error::Device(format!("rig on {port}: {e}")))?;
        rtts.push(x.host_recv.secs_since(x.host_send) * 1e6);
        sync.add(x);
        std::thread::sleep(Duration::from_millis(5));
    }
    rtts.sort_by(|a, b| a.total_cmp(b));
    let est = sync.estimate();
    let path = match acoustic {
        Some((shots, rate)) => Some(
            crate::measure::rig_path::acoustic_path(&mut *rig, &clock.into(), rate, shots, 0.25, 7)
                .map_err(|e| Error::Device(format!("rig on {port}: acoustic path: {e}")))?,
        ),
        None => None,
    };
    let o = RigOut {
        port: port.clone(),
        rig: info,
        exchanges: sync.len(),
        seconds,
        rtt_us_min: rtts.first().copied().unwrap_or(f64::NAN),
        rtt_us_median: rtts.get(rtts.len() / 2).copied().unwrap_or(f64::NAN),
        rtt_us_max: rtts.last().copied().unwrap_or(f64::NAN),
        offset_bound_us: est.as_ref().map(|e| e.bound_us()),
        drift_ppm: est.as_ref().map(|e| e.drift_ppm),
        drift_bound_ppm: est.as_ref().map(|e| e.drift_bound_ppm),
        link: rig.link_stats(),
        acoustic: path,
    };
    if json {
        print_json(&o)?;
    } else {
        println!(
            "{}: {} serial {} firmware {} (protocol {}), mic rates {:?}, loopback {} µs",
            o.port,
            o.rig.kind,
            o.rig.serial,
            o.rig.firmware,
            o.rig.protocol,
            o.rig.mic_sample_rates,
            o.rig.loopback_delay_us
        );
        println!(
            "{} exchanges in {:.1} s: round trip {:.0} / {:.0} / {:.0} µs (min / median / max)",
            o.exchanges, o.seconds, o.rtt_us_min, o.rtt_us_median, o.rtt_us_max
        );
        match (o.offset_bound_us, o.drift_ppm, o.drift_bound_ppm) {
            (Some(b), Some(d), Some(db)) => println!(
                "offset known to within {b:.1} µs (full width); drift {d:+.2} ± {db:.2} ppm"
            ),
            _ => println!("the exchanges do not fit one clock rate (the rig's clock stepped?)"),
        }
        if let Some(a) = &o.acoustic {
            for s in &a.shots {
                match (s.delay_us, s.uncertainty_us) {
                    (Some(d), Some(u)) => println!(
                        "acoustic shot {:>3}: {d:>9.1} ± {u:.1} µs  (speaker started {:+.0} µs after its time; {})",
                        s.shot,
                        s.started_after_us.unwrap_or(0.0),
                        s.detail
                    ),
                    _ => println!("acoustic shot {:>3}: missed ({})", s.shot, s.detail),
                }
            }
            match (a.median_us, a.median_uncertainty_us) {
                (Some(m), Some(u)) => println!(
                    "acoustic path (speaker to microphone): {m:.1} ± {u:.1} µs median of {} shots at {} Hz",
                    a.shots.iter().filter(|s| s.delay_us.is_some()).count(),
                    a.sample_rate
                ),
                _ => println!("acoustic path: no shot was found in the microphone"),
            }
        }
        // After the acoustic shots: the link counts include them.
        println!(
            "link: {} frames, {} corrupt, {} lost, {} restarts",
            o.link.frames, o.link.corrupt_frames, o.link.lost_frames, o.link.restarts
        );
    }
    let all_shots = o
        .acoustic
        .as_ref()
        .is_none_or(|a| a.shots.iter().all(|s| s.delay_us.is_some()));
    Ok(if est.is_some() && all_shots {
        ExitStatus::Ok
    } else {
        ExitStatus::Incomplete
    })
}
