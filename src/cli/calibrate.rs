//! `certlab calibrate`: measure what the station itself adds and write it
//! into a station file (`[calibration]`), which runs then take with
//! `--station`.
//!
//! Owns the arguments, the choice of which terms a rig kind can measure,
//! the refusal of a calibration that found nothing, the atomic write of the
//! file and the printing. The measurements are `measure::rig_path`'s, the
//! file's format `station::audio_rig::station_file`'s, and what a run makes
//! of a calibration `run::calibration`'s; this module must not analyse a
//! capture itself.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use crate::cli::print_json;
use crate::measure::rig_path::{acoustic_path, AcousticPath};
use crate::station::audio_rig::station_file::{Calibration, Term};
use crate::station::Rig;
use crate::time::Clock;
use crate::{Error, ExitStatus, Result};

#[derive(Args)]
#[command(after_help = "\
Measures the station's own paths, each as the median of --shots noise bursts
with its expanded (k = 2) uncertainty, and writes them with the rig's serial
number and the time into the [calibration] table of --out:

  loopback   (audio-interface rigs) the interface's output-to-input latency
             through a cable from an output to an input (the station file's
             `loopback` channels, or --loopback OUT:IN);
  acoustic   the rig's reference speaker to its reference microphone, with
             the microphone in the calibration jig (docs/rig-hardware.md 7).

For an audio:… rig, --out is the station file (--station) with its
[calibration] replaced; for a serial rig it holds only the calibration. Runs
take the file with --station, record it, and subtract its terms in the
budget (docs/audio-rig.md). Exit 0 when every term was measured, 2 when a
term found no burst (a loose cable, a dead microphone); nothing is written
then.

Examples:
  certlab calibrate --rig audio:hw:CARD=Scarlett --station station.toml --out station.toml
  certlab calibrate --rig audio:sim --out /tmp/station.toml
  certlab calibrate --rig usb:1209:000e --out station.toml")]
pub struct CalibrateArgs {
    /// audio:ALSA_DEVICE (audio:sim), serial:PATH, usb:VID:PID[:SERIAL], or
    /// sim (the in-process simulated serial rig).
    #[arg(long, value_name = "SPEC")]
    rig: String,
    /// The station file (channel map) of an audio:… rig.
    #[arg(long, value_name = "FILE")]
    station: Option<PathBuf>,
    /// The loopback cable's ends, 1-based: output OUT to input IN (an
    /// audio:… rig; default: the station file's `loopback` channels).
    #[arg(long, value_name = "OUT:IN")]
    loopback: Option<String>,
    /// Bursts per term.
    #[arg(long, default_value_t = 30)]
    shots: u32,
    /// A simulated scenario (audio:sim and sim only).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Where to write the calibrated station file (may be --station itself).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Print one JSON object ({rig_serial, out, loopback, acoustic}, each
    /// term as `probe rig --acoustic` gives it).
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Out {
    rig_serial: String,
    out: String,
    loopback: Option<AcousticPath>,
    acoustic: Option<AcousticPath>,
}

/// Seconds between bursts.
const INTERVAL_S: f64 = 0.25;

pub fn run(a: CalibrateArgs) -> Result<ExitStatus> {
    if !(3..=1000).contains(&a.shots) {
        return Err(Error::BadInput("--shots 3..1000".into()));
    }
    let (serial, loopback, acoustic, base) = if a.rig.starts_with("audio:") {
        audio_rig(&a)?
    } else {
        if a.station.is_some() || a.loopback.is_some() {
            return Err(Error::BadInput(format!(
                "--station and --loopback name an audio-interface rig's channels (--rig audio:DEVICE); --rig {} has none",
                a.rig
            )));
        }
        let (serial, acoustic) = serial_rig(&a)?;
        (serial, None, Some(acoustic), None)
    };
    let cal = Calibration {
        rig_serial: serial.clone(),
        loopback: loopback.as_ref().map(term).transpose()?,
        acoustic: acoustic.as_ref().map(term).transpose()?,
    };
    let text = match &base {
        Some(station_text) => cal.replace_in(station_text),
        None => format!(
            "# A station calibration for the serial rig {serial} (certlab calibrate).\nformat = \"{}\"\n{}",
            crate::station::audio_rig::station_file::FORMAT,
            cal.to_toml()
        ),
    };
    write_atomically(&a.out, &text)?;
    let o = Out {
        rig_serial: serial,
        out: a.out.display().to_string(),
        loopback,
        acoustic,
    };
    if a.json {
        print_json(&o)?;
    } else {
        print_text(&o, &cal, base.is_some());
    }
    Ok(ExitStatus::Ok)
}

/// An `audio:` rig: its loopback cable (when the station file or
/// `--loopback` names one) and its acoustic path (when its microphone is live).
type Measured = (
    String,
    Option<AcousticPath>,
    Option<AcousticPath>,
    Option<String>,
);

fn audio_rig(a: &CalibrateArgs) -> Result<Measured> {
    let (mut rig, clock) = crate::station::open_audio_rig_alone(
        &a.rig,
        a.station.as_deref(),
        a.scenario.as_deref(),
        a.loopback.as_deref(),
    )?;
    let _part = clock.participate();
    let spec = &a.rig;
    let dev = |what: &str, e: crate::station::StationError| {
        Error::Device(format!("--rig {spec}: {what}: {e}"))
    };
    let rate = rig.interface().rate;
    let (levels, _, _) = rig.listen(0.5).map_err(|e| dev("listening", e))?;
    let loopback = match rig.loopback_cable() {
        Some(mut cable) => Some(
            acoustic_path(&mut cable, &clock, rate, a.shots, INTERVAL_S, 11)
                .map_err(|e| dev("loopback", e))?,
        ),
        None => None,
    };
    crate::station::audio_rig::AudioRig::check_microphone(&levels, rig.station())?;
    let acoustic = acoustic_path(&mut rig, &clock, rate, a.shots, INTERVAL_S, 7)
        .map_err(|e| dev("acoustic path", e))?;
    if loopback.is_none() {
        tracing::warn!("the station file names no loopback cable: the interface's own latency is not calibrated");
    }
    let serial = rig.info().serial;
    let text = rig.station().text.clone();
    Ok((serial, loopback, Some(acoustic), Some(text)))
}

/// A serial rig (or the in-process simulated one): its acoustic path.
fn serial_rig(a: &CalibrateArgs) -> Result<(String, AcousticPath)> {
    let rate = 48_000;
    let (mut rig, clock): (Box<dyn Rig>, Clock) = if a.rig == "sim" {
        let clock = Clock::new_virtual();
        let st = crate::station::sim::open(
            crate::profile::DeviceClass::Speakerphone,
            "sim",
            a.scenario.as_deref(),
            None,
            clock.clone(),
        )?;
        (st.rig, clock)
    } else {
        if a.scenario.is_some() {
            return Err(Error::BadInput(
                "--scenario applies only to simulated rigs (--rig sim, --rig audio:sim)".into(),
            ));
        }
        let port = crate::station::parse_rig(&a.rig)?
            .resolve(&crate::station::usb_dut::sysfs_root(), &a.rig)?;
        let host = crate::time::HostClock::new();
        (
            crate::station::serial_rig::open_port(&port, host.into())?,
            host.into(),
        )
    };
    let _part = clock.participate();
    let path = acoustic_path(&mut *rig, &clock, rate, a.shots, INTERVAL_S, 7)
        .map_err(|e| Error::Device(format!("--rig {}: acoustic path: {e}", a.rig)))?;
    Ok((rig.info().serial, path))
}

/// A measured path as a calibration term: refused (exit 2) unless at least
/// two thirds of its bursts were found.
fn term(p: &AcousticPath) -> Result<Term> {
    let found = p.shots.iter().filter(|s| s.delay_us.is_some()).count();
    let why = p
        .shots
        .iter()
        .find(|s| s.delay_us.is_none())
        .map_or(String::new(), |s| format!(" ({})", s.detail));
    match (p.median_us, p.median_uncertainty_us) {
        (Some(m), Some(u)) if found * 3 >= p.shots.len() * 2 => Ok(Term {
            latency_us: m,
            uncertainty_us: u,
            measured: crate::timestamp::whole_micros(chrono::Utc::now()),
            shots: found as u32,
        }),
        _ => Err(Error::Device(format!(
            "calibration: {found} of {} bursts found{why}; check the cable and the levels \
             (certlab probe rig), nothing was written",
            p.shots.len()
        ))),
    }
}

/// Write `text` to `path` through a temporary file in the same folder, so
/// that a station file is never left half written.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let io = |e: std::io::Error| Error::BadInput(format!("cannot write {}: {e}", path.display()));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

fn print_text(o: &Out, cal: &Calibration, audio_rig: bool) {
    let line = |what: &str, t: &Option<Term>| {
        if let Some(t) = t {
            println!(
                "{what}: {:.1} µs ± {:.1} µs (k = 2), median of {} bursts",
                t.latency_us, t.uncertainty_us, t.shots
            );
        }
    };
    println!("rig {}: calibrated", o.rig_serial);
    line("loopback (output to input)", &cal.loopback);
    if audio_rig && cal.loopback.is_none() {
        println!("loopback: not measured (no loopback cable named)");
    }
    line("acoustic (speaker to microphone)", &cal.acoustic);
    println!("written to {}", o.out);
}
