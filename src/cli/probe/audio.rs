//! `certlab probe audio`: its arguments, their checks, and the ALSA names
//! of its devices.
//!
//! Owns what holds with or without the `alsa` feature; playing, capturing
//! and printing the shots is `alsa`'s (this module's sibling, built with the
//! feature). It must not analyse audio.

use std::path::PathBuf;

use clap::Args;

#[cfg(feature = "alsa")]
use super::alsa::play;
use super::usb_nodes;
use crate::{Error, ExitStatus, Result};

#[derive(Args)]
#[command(after_help = "\
Times come from ALSA's monotonic timestamps on both streams, not from buffer
sizes. Each shot is a 50 ms noise burst, looked for from 20 ms before its
scheduled time (a timestamp error can make a path look early; it is shown,
not hidden) to 20 ms before the next shot's: latencies from -20 ms to
INTERVAL - 90 ms are found. With snd-aloop, play to hw:Loopback,0,0 and
capture hw:Loopback,1,0; its positions move once per kernel tick, so expect
a few ms of spread about zero. Without --capture the bursts are only
played: with --burst-out, find them in the recording with `certlab analyze
audio`. Devices are ALSA names or usb:VID:PID[:SERIAL]. Exit 0 when every
shot was found (played on time, without --capture), 2 when one was not or a
device failed.

Example:
  certlab probe audio --playback hw:Loopback,0,0 --capture hw:Loopback,1,0 --shots 20")]
pub struct AudioArgs {
    /// ALSA playback device name, or usb:VID:PID[:SERIAL] (its card's hw:N,0).
    #[arg(long, value_name = "NAME")]
    pub(super) playback: String,
    /// ALSA capture device name, or usb:VID:PID[:SERIAL]. Without it the
    /// bursts are only played (and their xruns and lateness counted), for
    /// a path recorded elsewhere.
    #[arg(long, value_name = "NAME")]
    pub(super) capture: Option<String>,
    /// Also write the burst as a mono 16-bit WAV, to find it in a
    /// recording made elsewhere (`certlab analyze audio --stimulus`).
    #[arg(long, value_name = "FILE.wav")]
    pub(super) burst_out: Option<PathBuf>,
    #[arg(long, value_name = "HZ", default_value_t = 48000)]
    pub(super) rate: u32,
    #[arg(long, default_value_t = 10)]
    pub(super) shots: u32,
    #[arg(long, value_name = "MS", default_value_t = 300.0)]
    pub(super) interval_ms: f64,
    #[arg(long)]
    pub(super) json: bool,
}

/// `certlab probe audio`: play noise bursts on one ALSA device at scheduled
/// host times and find them in another's capture; print each latency.
pub fn run(a: AudioArgs) -> Result<ExitStatus> {
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
    play(&a, &playback, capture.as_deref())
}

/// An ALSA device name as given, or a USB device's first card as `hw:N,0`.
fn alsa_name(spec: &str) -> Result<String> {
    if !spec.starts_with("usb:") {
        return Ok(spec.to_string());
    }
    let (nodes, _) = usb_nodes(spec, || {
        Error::BadInput(format!("{spec}: not usb:VID:PID[:SERIAL]"))
    })?;
    match nodes.sound_cards.first() {
        Some((_, card)) => Ok(format!("hw:{card},0")),
        None => Err(Error::Device(format!(
            "{spec} has no ALSA card (is snd-usb-audio bound?)"
        ))),
    }
}

#[cfg(not(feature = "alsa"))]
fn play(_: &AudioArgs, _: &str, _: Option<&str>) -> Result<ExitStatus> {
    Err(Error::Device(
        "certlab probe audio needs certlab built with `--features alsa` (and libasound2-dev)"
            .into(),
    ))
}
