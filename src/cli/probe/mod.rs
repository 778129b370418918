//! `certlab probe`: check a station's wiring before a run, without a
//! profile: a DUT's HID interface (`hid`), a rig (`rig`), a camera
//! (`camera`) and an audio path (`audio`, which needs the `alsa` feature).
//!
//! Owns the probes' arguments, finding the device node a `--device` spec
//! names, and printing (human or JSON). The backends are `station::host`'s,
//! `station::serial_rig`'s and `station::audio_rig`'s, and the analysis of audio shots is
//! `measure::shots`'; this module must not hold measurement logic of its own.

#[cfg(feature = "alsa")]
mod alsa;
mod audio;
mod audio_rig;
mod camera;
mod hid;
mod rig;

use std::path::PathBuf;

use clap::Subcommand;

use crate::station::usb_dut;
use crate::station::DeviceSpec;
use crate::usb::sysfs;
use crate::{Error, ExitStatus, Result};

#[derive(Subcommand)]
pub enum ProbeCmd {
    /// Open a DUT's hidraw node, optionally write an output report (an
    /// LED), and print every input change with its time since the write.
    Hid(hid::HidArgs),
    /// Shake hands with a rig and synchronise clocks with it for a while:
    /// what it is, the round trips, the offset bound and the drift; with
    /// --acoustic, also its own speaker-to-microphone path.
    Rig(rig::RigArgs),
    /// Stream frames from a V4L2 camera and print each with its kernel
    /// timestamp, the frame interval and the frames the driver dropped.
    Camera(camera::CameraArgs),
    /// Play noise bursts to one ALSA device at scheduled times and find them
    /// in another's capture: the path's latency, shot by shot, and its xruns
    /// (needs the `alsa` feature).
    Audio(audio::AudioArgs),
}

pub fn run(cmd: ProbeCmd) -> Result<ExitStatus> {
    match cmd {
        ProbeCmd::Hid(a) => hid::run(a),
        ProbeCmd::Rig(a) => rig::run(a),
        ProbeCmd::Camera(a) => camera::run(a),
        ProbeCmd::Audio(a) => audio::run(a),
    }
}

/// The sysfs device (and its nodes) of a `usb:VID:PID[:SERIAL]` spec;
/// `not_usb` is the error for a spec of another kind.
fn usb_nodes(
    spec: &str,
    not_usb: impl FnOnce() -> Error,
) -> Result<(sysfs::DeviceNodes, sysfs::UsbDevice)> {
    let DeviceSpec::Usb { vid, pid, serial } = DeviceSpec::parse(spec)? else {
        return Err(not_usb());
    };
    let root = usb_dut::sysfs_root();
    let dev = usb_dut::find(&root, vid, pid, serial.as_deref(), spec)?;
    let nodes =
        sysfs::device_nodes(&root, &dev.name).map_err(|e| Error::Device(format!("{spec}: {e}")))?;
    Ok((nodes, dev))
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
    let (nodes, dev) = usb_nodes(device, || {
        Error::BadInput(format!(
            "--device {device}: give usb:VID:PID[:SERIAL] or a /dev/{what}N path"
        ))
    })?;
    pick(&nodes, &dev)
        .ok_or_else(|| Error::Device(format!("{device} has no {what} node ({why_none})")))
}

/// A figure of a summary line with three decimals, or "-" when there is none.
fn ms3(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or("-".into())
}
