//! The station's real host I/O: the DUT's kernel interfaces on Linux.
//!
//! Owns the backends that implement the station traits over real device
//! nodes — [`hidraw`] (HID input and output reports) and, with the cargo
//! feature `alsa`, `alsa_audio` (USB audio through ALSA), and [`v4l2`]
//! (cameras), with the file-descriptor calls they share in `fd` (ioctl
//! requests, polling) — and assembling a
//! station for a `usb:VID:PID[:SERIAL]` DUT from the nodes its interfaces
//! expose in sysfs, with the rig on a real serial port. Each backend stamps
//! what it reads with CLOCK_MONOTONIC (the host clock) as close to the
//! kernel as it can, and counts what it loses. None of them measures or
//! judges.

#[cfg(feature = "alsa")]
pub mod alsa_audio;
#[cfg(feature = "alsa")]
pub mod alsa_interface;
mod fd;
pub mod hidraw;
pub mod v4l2;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::usb_dut::{self, SysfsWatch};
use super::{
    AudioPath, Camera, DeviceIdentity, Dut, HidInput, Station, StationError, StationResult,
};
use crate::profile::DeviceClass;
use crate::sampling::BlockSource;
use crate::time::{HostClock, HostTime};
use crate::usb::sysfs::{self, DeviceNodes, UsbDevice};
use crate::{Error, Result};

/// Where the rig is: a serial port by path, or a USB CDC-ACM device by identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RigPort {
    Path(String),
    Usb {
        vid: u16,
        pid: u16,
        serial: Option<String>,
    },
}

impl RigPort {
    /// The serial port's path: a `usb:` rig is found in sysfs (under `root`)
    /// and its tty node taken.
    pub fn resolve(&self, root: &Path, spec: &str) -> Result<String> {
        match self {
            RigPort::Path(p) => Ok(p.clone()),
            RigPort::Usb { vid, pid, serial } => {
                let dev = usb_dut::find(root, *vid, *pid, serial.as_deref(), spec)?;
                let nodes = sysfs::device_nodes(root, &dev.name)
                    .map_err(|e| Error::Device(format!("rig {spec}: {e}")))?;
                match nodes.tty.first() {
                    Some((_, tty)) => Ok(format!("/dev/{tty}")),
                    None => Err(Error::Device(format!(
                        "rig {spec}: the device {}:{} has no serial port (no tty under its \
                         interfaces; is cdc_acm bound?)",
                        dev.identity.vid, dev.identity.pid
                    ))),
                }
            }
        }
    }
}

/// A DUT interface certlab cannot drive here, and why: every call says so,
/// so that a step needing it ends in ERROR with the reason.
pub struct Unavailable(pub String);

impl AudioPath for Unavailable {
    fn capture_stream(&mut self, _: u32) -> StationResult<Box<dyn BlockSource>> {
        Err(StationError::Other(self.0.clone()))
    }
    fn play(&mut self, _: Arc<[f32]>, _: u32, _: HostTime) -> StationResult<()> {
        Err(StationError::Other(self.0.clone()))
    }
}

impl Camera for Unavailable {
    fn start(&mut self) -> StationResult<()> {
        Err(StationError::Other(self.0.clone()))
    }
    fn next_frame(&mut self, _: Duration) -> StationResult<Option<super::Frame>> {
        Err(StationError::Other(self.0.clone()))
    }
    fn stop(&mut self) -> StationResult<()> {
        Ok(())
    }
}

impl HidInput for Unavailable {
    fn next_event(&mut self, _: Duration) -> StationResult<Option<super::HidEvent>> {
        Err(StationError::Other(self.0.clone()))
    }
}

/// The hidraw node of a device to read telephony buttons from: the first
/// whose report descriptor declares a Telephony (0x0B) input, else the first.
pub fn pick_hidraw(nodes: &DeviceNodes, dev: &UsbDevice) -> Option<PathBuf> {
    let telephony_intf: Vec<u8> = dev
        .hid
        .iter()
        .filter(|h| {
            h.report.as_ref().is_ok_and(|r| {
                r.fields.iter().any(|f| {
                    f.kind == crate::usb::hid::ReportKind::Input
                        && f.usage().is_some_and(|u| u.page == 0x0b)
                })
            })
        })
        .map(|h| h.interface)
        .collect();
    nodes
        .hidraw
        .iter()
        .find(|(i, _)| telephony_intf.contains(i))
        .or(nodes.hidraw.first())
        .map(|(_, n)| PathBuf::from("/dev").join(n))
}

/// The camera mode to ask for: the highest frame rate of an uncompressed
/// format at 640×480 or the nearest size below it, else the first mode.
fn preferred_mode(modes: &[super::VideoMode]) -> (u32, u32, f64) {
    // UVC names formats by their GUID's FourCC (YUY2 is V4L2's YUYV).
    let readable = |f: &str| matches!(f, "YUY2" | "YUYV" | "UYVY" | "NV12" | "Y800" | "GREY");
    modes
        .iter()
        .filter(|m| readable(&m.format) && m.width <= 640 && m.height <= 480)
        .max_by(|a, b| {
            (a.width * a.height, a.fps)
                .partial_cmp(&(b.width * b.height, b.fps))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .or(modes.first())
        .map(|m| (m.width, m.height, m.fps))
        .unwrap_or((640, 480, 30.0))
}

/// The DUT's audio: its ALSA card (`hw:N,0`) for both directions, when
/// certlab is built with the `alsa` feature and a card is bound.
fn audio_path(spec: &str, nodes: &DeviceNodes, clock: HostClock) -> Box<dyn AudioPath> {
    let Some((_, card)) = nodes.sound_cards.first() else {
        return Box::new(Unavailable(format!(
            "{spec} declares USB audio but no ALSA card is bound to it (is snd-usb-audio loaded?)"
        )));
    };
    #[cfg(feature = "alsa")]
    {
        let name = format!("hw:{card},0");
        Box::new(alsa_audio::AlsaAudio::new(&name, &name, clock))
    }
    #[cfg(not(feature = "alsa"))]
    {
        let _ = clock;
        Box::new(Unavailable(format!(
            "{spec}'s USB audio (ALSA card hw:{card}) needs certlab built with `--features alsa` \
             (and libasound2-dev)"
        )))
    }
}

/// Open a station for a real USB DUT found in sysfs at `root`, measured by
/// `rig`. Interfaces certlab cannot drive yet are there as
/// [`Unavailable`], naming why.
pub fn open_usb(
    spec: &str,
    class: DeviceClass,
    dev: UsbDevice,
    root: &Path,
    rig: Box<dyn super::Rig>,
    clock: HostClock,
) -> Result<Station> {
    let nodes = sysfs::device_nodes(root, &dev.name)
        .map_err(|e| Error::Device(format!("--device {spec}: {e}")))?;
    let dev = Arc::new(dev);
    let identity = DeviceIdentity::from_usb(spec, class, dev.clone(), false);
    let caps = &identity.capabilities;
    let hid: Option<Box<dyn HidInput>> = match pick_hidraw(&nodes, &dev) {
        Some(path) => Some(Box::new(
            hidraw::Hidraw::open(&path, clock)
                .map_err(|e| Error::Device(format!("--device {spec}: {e}")))?,
        )),
        None if !caps.hid_usages.is_empty() => Some(Box::new(Unavailable(format!(
            "{spec} declares HID usages but no hidraw node is bound to it (is usbhid loaded?)"
        )))),
        None => None,
    };
    let audio: Option<Box<dyn AudioPath>> =
        (caps.audio_playback || caps.audio_capture).then(|| audio_path(spec, &nodes, clock));
    let camera: Option<Box<dyn Camera>> = if caps.video_modes.is_empty() {
        None
    } else {
        Some(match nodes.video.first() {
            Some((_, v)) => {
                let (w, h, fps) = preferred_mode(&caps.video_modes);
                Box::new(
                    v4l2::V4l2Camera::open(&PathBuf::from("/dev").join(v), w, h, fps, clock)
                        .map_err(|e| Error::Device(format!("--device {spec}: {e}")))?,
                )
            }
            None => Box::new(Unavailable(format!(
                "{spec} declares USB video but no V4L2 node is bound to it (is uvcvideo loaded?)"
            ))),
        })
    };
    let watch = SysfsWatch::new(root, &dev);
    tracing::info!(?nodes, "opened a USB DUT");
    Ok(Station {
        clock: clock.into(),
        identity,
        rig,
        dut: Dut {
            audio,
            camera,
            hid,
            control: None,
            presence: Some(Box::new(watch.spawn(Duration::from_millis(200)))),
        },
        scenario: None,
    })
}
