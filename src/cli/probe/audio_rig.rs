//! `certlab probe rig --rig audio:…`: check an audio-interface rig before a
//! run: its channel map, the level on every input (so a lab engineer sees
//! the microphone is live), the xruns, and the interface's own
//! output-to-input latency through the loopback cable the station file
//! names (and with `--acoustic`, the speaker-to-microphone path). Printing
//! only: the rig is `station::audio_rig`, the measurement `measure::rig_path`.

use std::path::Path;

use serde::Serialize;

use crate::cli::print_json;
use crate::measure::rig_path::{acoustic_path, AcousticPath};
use crate::station::audio_rig::{AudioRig, InputLevel};
use crate::station::Rig;
use crate::{Error, ExitStatus, Result};

#[derive(Serialize)]
struct MapEntry {
    part: &'static str,
    direction: &'static str,
    /// 1-based.
    channel: u16,
}

#[derive(Serialize)]
struct Out {
    rig: crate::station::RigInfo,
    interface: String,
    inputs: u16,
    outputs: u16,
    sample_rate: u32,
    station_file: String,
    station_sha256: String,
    channels: Vec<MapEntry>,
    levels: Vec<InputLevel>,
    /// The interface's output-to-input latency through the loopback cable.
    loopback: Option<AcousticPath>,
    acoustic: Option<AcousticPath>,
    xruns: u64,
    microphone_live: bool,
}

/// Probe an `audio:` rig.
pub fn probe(
    spec: &str,
    station: Option<&Path>,
    seconds: f64,
    acoustic: Option<(u32, u32)>,
    json: bool,
) -> Result<ExitStatus> {
    if !(0.1..=600.0).contains(&seconds) {
        return Err(Error::BadInput("--seconds 0.1..600".into()));
    }
    let (mut rig, clock) = crate::station::open_audio_rig_alone(spec, station, None, None)?;
    let _part = clock.participate();
    let dev = |e: crate::station::StationError| Error::Device(format!("--rig {spec}: {e}"));
    let (levels, _, _) = rig.listen(seconds.min(2.0)).map_err(dev)?;
    let live = AudioRig::check_microphone(&levels, rig.station());
    let rate = rig.interface().rate;
    let shots = acoustic.map_or(10, |a| a.0);
    let loopback = match rig.loopback_cable() {
        Some(mut cable) => {
            Some(acoustic_path(&mut cable, &clock, rate, shots, 0.25, 11).map_err(dev)?)
        }
        None => None,
    };
    let acoustic = match acoustic {
        Some((shots, _)) if live.is_ok() => {
            Some(acoustic_path(&mut rig, &clock, rate, shots, 0.25, 7).map_err(dev)?)
        }
        _ => None,
    };
    let st = rig.station();
    let channels = st
        .channels()
        .into_iter()
        .map(|(input, c)| MapEntry {
            part: c.name,
            direction: if input { "input" } else { "output" },
            channel: c.index + 1,
        })
        .collect();
    let info = rig.interface().clone();
    let o = Out {
        rig: rig.info(),
        interface: info.name.clone(),
        inputs: info.inputs,
        outputs: info.outputs,
        sample_rate: info.rate,
        station_file: st.path.display().to_string(),
        station_sha256: st.sha256.clone(),
        channels,
        levels,
        loopback,
        acoustic,
        xruns: rig.link_stats().xruns.unwrap_or(0),
        microphone_live: live.is_ok(),
    };
    if json {
        print_json(&o)?;
    } else {
        print_text(&o);
    }
    live?;
    Ok(ExitStatus::Ok)
}

fn print_text(o: &Out) {
    println!(
        "{}: {} in, {} out at {} Hz; station file {} (sha256 {})",
        o.rig.kind,
        o.inputs,
        o.outputs,
        o.sample_rate,
        o.station_file,
        &o.station_sha256[..12]
    );
    println!("channel map:");
    for c in &o.channels {
        println!("  {:<7} {:>2}  {}", c.direction, c.channel, c.part);
    }
    println!("input levels (RMS / peak):");
    for l in &o.levels {
        println!(
            "  input {:>2} {:<12} {:>7.1} / {:>7.1} dBFS",
            l.channel,
            l.part.as_deref().unwrap_or("-"),
            l.rms_dbfs,
            l.peak_dbfs
        );
    }
    let path = |what: &str, p: &AcousticPath| match (p.median_us, p.median_uncertainty_us) {
        (Some(m), Some(u)) => println!(
            "{what}: {m:.1} µs ± {u:.1} µs (k = 2), median of {} of {} bursts",
            p.shots.iter().filter(|s| s.delay_us.is_some()).count(),
            p.shots.len()
        ),
        _ => println!(
            "{what}: not found ({})",
            p.shots.first().map_or("", |s| s.detail.as_str())
        ),
    };
    match &o.loopback {
        Some(p) => path("loopback (output to input)", p),
        None => println!("loopback: the station file names no loopback cable"),
    }
    if let Some(p) = &o.acoustic {
        path("speaker to microphone", p);
    }
    println!("xruns: {}", o.xruns);
}
