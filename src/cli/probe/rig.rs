//! `certlab probe rig`: shake hands with a rig and synchronise clocks with
//! it for a while; with `--acoustic`, measure its own speaker-to-microphone
//! path.
//!
//! Owns the arguments and the printing; the rig is `station::serial_rig`'s,
//! the clock sync `station::sync`'s and the acoustic path
//! `measure::rig_path`'s, and this module must not analyse either itself.

use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::cli::print_json;
use crate::station::usb_dut;
use crate::time::HostClock;
use crate::{Error, ExitStatus, Result};

#[derive(Args)]
#[command(after_help = "\
With --acoustic the rig plays noise bursts through its reference speaker at
scheduled rig times and finds them in its own microphone stream: the delay
of the speaker-to-microphone path (electronics and air), each shot with its
expanded uncertainty (k = 2). Both ends are the rig's stamps, so no clock
sync enters the figure. Exit 0 when every shot was measured, 2 otherwise.

Examples:
  certlab probe rig --rig usb:1209:000e --seconds 10
  certlab probe rig --rig serial:/dev/ttyACM0 --json
  certlab probe rig --rig usb:1209:000e --acoustic --shots 20")]
pub struct RigArgs {
    /// serial:PATH, usb:VID:PID[:SERIAL] or audio:ALSA_DEVICE (audio:sim).
    #[arg(long, value_name = "SPEC")]
    rig: String,
    /// The station file of an audio:… rig (docs/audio-rig.md).
    #[arg(long, value_name = "FILE")]
    station: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Also measure the rig's speaker-to-microphone path.
    #[arg(long)]
    acoustic: bool,
    /// Bursts for --acoustic.
    #[arg(long, default_value_t = 10)]
    shots: u32,
    /// Microphone sample rate for --acoustic, Hz.
    #[arg(long, default_value_t = 48_000)]
    rate: u32,
    /// Print one JSON object (with `acoustic` {sample_rate, shots
    /// [{shot, at_us, delay_us, uncertainty_us, started_after_us, detail}],
    /// median_us, median_uncertainty_us, gap_blocks, overrun_blocks}).
    #[arg(long)]
    json: bool,
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
pub fn run(a: RigArgs) -> Result<ExitStatus> {
    let (spec, seconds, json) = (a.rig.as_str(), a.seconds, a.json);
    let acoustic = a.acoustic.then_some((a.shots, a.rate));
    if spec.starts_with("audio:") {
        return super::audio_rig::probe(spec, a.station.as_deref(), seconds, acoustic, json);
    }
    if a.station.is_some() {
        return Err(Error::BadInput(
            "--station FILE is the channel map of an audio-interface rig (--rig audio:DEVICE)"
                .into(),
        ));
    }
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
