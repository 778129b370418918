//! The station: the hardware behind small traits.
//!
//! Owns the traits a measurement drives — [`Rig`], [`AudioPath`], [`Camera`],
//! [`HidInput`], [`ControlPort`] — the device identity, device specs
//! (`sim[:CLASS]`, `usb:VID:PID[:SERIAL]`, `serial:PATH`), the clock
//! synchronisation with the rig ([`sync`]), finding a USB DUT by its spec
//! and watching that it stays attached ([`usb_dut`]), and opening a station.
//! Real and simulated implementations are equals behind the same traits. It
//! measures nothing and judges nothing.

pub mod audio_rig;
pub mod host;
pub mod serial_rig;
pub mod sim;
pub mod sync;
pub mod usb_dut;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::profile::DeviceClass;
use crate::sampling::BlockSource;
use crate::time::{Clock, HostTime, RigTime};
use crate::usb::descriptors::AudioDirection;
use crate::usb::identity::UsbIdentity;
use crate::usb::sysfs::UsbDevice;
use crate::{Error, Result};

pub use audio_rig::StationFile;

/// A failure of a station part while a measurement drives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StationError {
    #[error("device disconnected: {0}")]
    Disconnected(String),
    #[error("rig error: {0}")]
    Rig(String),
    /// The rig refused a command: the protocol's typed reason (whose fault
    /// a shot is follows from `code`, never from the text).
    #[error("the rig refused: {code}: {message}")]
    RigRefused {
        code: rig_protocol::ErrorCode,
        message: String,
    },
    /// The rig rebooted: its clock and session started over (see
    /// [`Rig::recover`]).
    #[error("rig restarted: {0}")]
    RigRestarted(String),
    #[error("{0}")]
    Other(String),
}

pub type StationResult<T> = std::result::Result<T, StationError>;

/// One clock-sync exchange: the host sent at `host_send`, the rig stamped
/// `rig` on receipt, and the host received the reply at `host_recv`.
pub use rig_protocol::SyncExchange;

/// Damage on the link to the rig, counted by the host's decoder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LinkStats {
    /// Frames decoded.
    pub frames: u64,
    /// Frames dropped: bad COBS or CRC, too long, truncated, malformed.
    pub corrupt_frames: u64,
    /// Bytes thrown away with them.
    pub skipped_bytes: u64,
    /// Frames the rig sent that never arrived (gaps in its sequence numbers).
    pub lost_frames: u64,
    /// Times the rig said it had restarted.
    pub restarts: u64,
    /// Capture and playback xruns of an audio-interface rig (absent for a
    /// serial rig, which has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xruns: Option<u64>,
}

/// What a rig says about itself in its handshake.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RigInfo {
    pub kind: String,
    pub serial: String,
    pub firmware: String,
    pub protocol: u32,
    /// Sample rates the reference microphone can stream at, Hz.
    pub mic_sample_rates: Vec<u32>,
    /// Delay of the rig's acoustic loopback (microphone to speaker), µs, calibrated.
    pub loopback_delay_us: u64,
}

/// A sensor's onset, or an actuator's firing, as the rig reports it: the
/// rig time it actually happened (a scheduled command may fire a little
/// after its time; the rig knows by how much).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RigOnset {
    /// A `rig_protocol::sensor` id.
    pub sensor: u8,
    pub at: RigTime,
}

/// The measurement instrument: reference microphone and speaker, photodiode,
/// LED and button actuator, on its own microsecond clock.
pub trait Rig: Send {
    fn info(&self) -> RigInfo;
    /// One clock-sync exchange.
    fn sync_exchange(&mut self) -> StationResult<SyncExchange>;
    /// Put `samples` into the rig's memory ahead of the first `play`, so
    /// that no shot's command waits for the upload (over a slow link a 100 ms
    /// stimulus takes longer to send than a shot is scheduled ahead). A rig
    /// that plays from the host's memory does nothing.
    fn load(&mut self, samples: &Arc<[f32]>) -> StationResult<()> {
        let _ = samples;
        Ok(())
    }
    /// Play `samples` (at `sample_rate`) through the reference speaker at rig time `at`.
    fn play(&mut self, samples: Arc<[f32]>, sample_rate: u32, at: RigTime) -> StationResult<()>;
    /// Light the LED at rig time `at` for `duration_us`.
    fn flash_led(&mut self, at: RigTime, duration_us: u64) -> StationResult<()>;
    /// Press the button actuator at rig time `at`, holding it for `hold_us`.
    fn press_button(&mut self, at: RigTime, hold_us: u64) -> StationResult<()>;
    /// Route the reference microphone to the reference speaker (for round trips).
    fn set_loopback(&mut self, on: bool) -> StationResult<()>;
    /// The reference microphone stream at `sample_rate`, stamped in rig time (ns = µs × 1000).
    fn mic_stream(&mut self, sample_rate: u32) -> StationResult<Box<dyn BlockSource>>;
    /// Stop any sensor stream.
    fn stop_streams(&mut self) -> StationResult<()> {
        Ok(())
    }
    /// Whether the rig has restarted since the handshake (or the last
    /// `recover`): its clock began again, so every clock-sync exchange and
    /// scheduled command from before is void.
    fn restarted(&self) -> bool {
        false
    }
    /// Shake hands again after a restart; the caller starts a new clock sync.
    fn recover(&mut self) -> StationResult<()> {
        Err(StationError::Rig("this rig cannot be recovered".into()))
    }
    /// What the link to the rig lost or damaged so far.
    fn link_stats(&self) -> LinkStats {
        LinkStats::default()
    }
    /// The onsets and firings the rig reported since the last call (at most
    /// the last few thousand), oldest first. A rig that reports none
    /// leaves its commands' scheduled times as the best knowledge.
    fn take_onsets(&mut self) -> Vec<RigOnset> {
        Vec::new()
    }
}

/// Whether a read from a port that times out now and then merely found
/// nothing to read (timed out, would block, interrupted): read again.
pub fn is_quiet(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::Interrupted
    )
}

/// The rig time `sensor` actually fired for a command scheduled at `at`:
/// the first reported firing from `at` to `at` + 5 ms, else `at` itself.
pub fn fired_at(onsets: &[RigOnset], sensor: u8, at: RigTime) -> RigTime {
    onsets
        .iter()
        .find(|o| o.sensor == sensor && o.at >= at && o.at.0 - at.0 <= 5_000)
        .map_or(at, |o| o.at)
}

/// The host's audio connection to the DUT (USB audio class).
pub trait AudioPath: Send {
    /// The DUT's capture stream (what its microphone sends) at `sample_rate`, stamped in host time.
    fn capture_stream(&mut self, sample_rate: u32) -> StationResult<Box<dyn BlockSource>>;
    /// Play `samples` at `sample_rate` to the DUT so that the first reaches it at host time `at`.
    fn play(&mut self, samples: Arc<[f32]>, sample_rate: u32, at: HostTime) -> StationResult<()>;
}

/// A camera frame's luma plane with its host arrival time.
#[derive(Debug, Clone)]
pub struct Frame {
    pub seq: u64,
    pub host_time: HostTime,
    pub width: u32,
    pub height: u32,
    pub luma: Vec<u8>,
}

/// The DUT's camera (USB video class).
pub trait Camera: Send {
    fn start(&mut self) -> StationResult<()>;
    /// The next frame, or `None` after `timeout` with none.
    fn next_frame(&mut self, timeout: Duration) -> StationResult<Option<Frame>>;
    fn stop(&mut self) -> StationResult<()>;
}

/// A decoded HID input change with its host arrival time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HidEvent {
    pub host_time: HostTime,
    pub usage_page: u16,
    pub usage: u16,
    pub value: i32,
}

/// The DUT's HID interface (telephony buttons).
pub trait HidInput: Send {
    /// The next input change, or `None` after `timeout` with none.
    fn next_event(&mut self, timeout: Duration) -> StationResult<Option<HidEvent>>;
}

/// A line-oriented serial control port (room systems).
pub trait ControlPort: Send {
    /// Send one command line; returns the host time it was written.
    fn send_line(&mut self, line: &str) -> StationResult<HostTime>;
    /// The next reply line and its host arrival time, or `None` after `timeout`.
    fn read_line(&mut self, timeout: Duration) -> StationResult<Option<(String, HostTime)>>;
}

/// What the device says it offers, as read from its descriptors.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Capabilities {
    pub audio_playback: bool,
    pub audio_capture: bool,
    pub playback_rates: Vec<u32>,
    pub capture_rates: Vec<u32>,
    /// (usage page, usage) pairs of the HID report descriptors.
    pub hid_usages: Vec<(u16, u16)>,
    pub video_modes: Vec<VideoMode>,
    pub serial_port: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoMode {
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

impl Capabilities {
    /// What the parsed descriptors say: audio directions and the rates of
    /// each direction's streams, every HID usage of the report descriptors,
    /// and every video format, frame size and frame rate. `serial_port` is
    /// not a USB fact and stays false.
    pub fn from_usb(dev: &UsbDevice) -> Capabilities {
        let mut c = Capabilities::default();
        if let Some(a) = dev.audio() {
            c.audio_playback = a.playback;
            c.audio_capture = a.capture;
            for s in &a.streams {
                let rates = match s.direction {
                    Some(AudioDirection::Playback) => &mut c.playback_rates,
                    Some(AudioDirection::Capture) => &mut c.capture_rates,
                    None => continue,
                };
                rates.extend(s.sample_rates.iter().copied());
            }
            c.playback_rates.sort_unstable();
            c.playback_rates.dedup();
            c.capture_rates.sort_unstable();
            c.capture_rates.dedup();
        }
        c.hid_usages = dev.hid_usages().iter().map(|u| (u.page, u.id)).collect();
        if let Some(v) = dev.video() {
            for f in &v.formats {
                for fr in &f.frames {
                    for fps in &fr.fps {
                        c.video_modes.push(VideoMode {
                            format: f.format.clone(),
                            width: fr.width.into(),
                            height: fr.height.into(),
                            fps: *fps,
                        });
                    }
                }
            }
        }
        c
    }
}

/// Who the DUT is: how it was opened, its class, and its USB identity
/// (report.json's `device`: the identity's seven keys stand between `class`
/// and `simulated`). It reads as its [`UsbIdentity`] (`identity.vid`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DeviceIdentity {
    /// The spec it was opened with, e.g. `sim:headset`.
    pub spec: String,
    pub class: DeviceClass,
    /// vid, pid, serial, firmware, manufacturer, product, descriptors_sha256.
    #[serde(flatten)]
    pub usb_identity: UsbIdentity,
    pub simulated: bool,
    #[serde(skip)]
    pub capabilities: Capabilities,
    /// The parsed USB device the identity was read from (its sysfs snapshot
    /// for a simulated DUT); the USB conformance step judges it.
    #[serde(skip)]
    pub usb: Option<Arc<UsbDevice>>,
}

impl DeviceIdentity {
    /// The identity a USB device gives: vid, pid, serial, firmware,
    /// manufacturer, product and descriptor digest, with its capabilities.
    pub fn from_usb(spec: &str, class: DeviceClass, dev: Arc<UsbDevice>, simulated: bool) -> Self {
        DeviceIdentity {
            spec: spec.to_string(),
            class,
            usb_identity: dev.identity.clone(),
            simulated,
            capabilities: Capabilities::from_usb(&dev),
            usb: Some(dev),
        }
    }
}

impl std::ops::Deref for DeviceIdentity {
    type Target = UsbIdentity;
    fn deref(&self) -> &UsbIdentity {
        &self.usb_identity
    }
}

/// Whether the DUT is still attached (through the source it was found in,
/// e.g. its sysfs directory: [`usb_dut::SysfsWatch`]).
pub trait Presence: Send {
    /// `Err(Disconnected)` naming the device once it has vanished.
    fn check(&self) -> StationResult<()>;
}

/// The DUT's interfaces. A device has only those of its class.
#[derive(Default)]
pub struct Dut {
    pub audio: Option<Box<dyn AudioPath>>,
    pub camera: Option<Box<dyn Camera>>,
    pub hid: Option<Box<dyn HidInput>>,
    pub control: Option<Box<dyn ControlPort>>,
    /// Watches that the device stays attached; the run checks it around
    /// each step (a simulated DUT reports its unplugging through its I/O).
    pub presence: Option<Box<dyn Presence>>,
}

/// A station ready to run: the clock, the rig and the DUT.
pub struct Station {
    /// Real time for real stations and `--realtime`; virtual time for the
    /// in-process simulated station.
    pub clock: Clock,
    pub identity: DeviceIdentity,
    pub rig: Box<dyn Rig>,
    pub dut: Dut,
    /// For a simulated station: the scenario file and its SHA-256.
    pub scenario: Option<(PathBuf, String)>,
}

/// A `--rig` spec other than `sim`: `serial:PATH` or `usb:VID:PID[:SERIAL]`.
pub fn parse_rig(r: &str) -> Result<host::RigPort> {
    if let Some(p) = r.strip_prefix("serial:").filter(|p| !p.is_empty()) {
        return Ok(host::RigPort::Path(p.to_string()));
    }
    if r.starts_with("usb:") {
        if let Ok(DeviceSpec::Usb { vid, pid, serial }) = DeviceSpec::parse(r) {
            return Ok(host::RigPort::Usb { vid, pid, serial });
        }
    }
    Err(Error::BadInput(format!(
        "--rig {r}: expected sim, serial:PATH or usb:VID:PID[:SERIAL], or audio:ALSA_DEVICE"
    )))
}

/// A parsed `--device` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    Sim(DeviceClass),
    Usb {
        vid: u16,
        pid: u16,
        serial: Option<String>,
    },
    Serial(PathBuf),
}

impl DeviceSpec {
    pub fn parse(s: &str) -> Result<DeviceSpec> {
        let bad = |why: &str| {
            Error::BadInput(format!(
                "bad device spec {s:?}: {why} (expected sim[:CLASS], usb:VID:PID[:SERIAL] or serial:PATH)"
            ))
        };
        if s == "sim" {
            return Ok(DeviceSpec::Sim(DeviceClass::Speakerphone));
        }
        if let Some(class) = s.strip_prefix("sim:") {
            return DeviceClass::parse(class).map(DeviceSpec::Sim).ok_or_else(|| {
                bad(&format!(
                    "unknown simulated class {class:?}; the classes are speakerphone, headset, camera, room-system"
                ))
            });
        }
        if let Some(rest) = s.strip_prefix("usb:") {
            let mut parts = rest.splitn(3, ':');
            let hex = |p: Option<&str>, what: &str| -> Result<u16> {
                let p = p.ok_or_else(|| bad(&format!("missing {what}")))?;
                if p.len() != 4 {
                    return Err(bad(&format!("{what} must be 4 hex digits")));
                }
                u16::from_str_radix(p, 16).map_err(|_| bad(&format!("{what} must be 4 hex digits")))
            };
            let vid = hex(parts.next(), "VID")?;
            let pid = hex(parts.next(), "PID")?;
            let serial = parts.next().filter(|x| !x.is_empty()).map(String::from);
            return Ok(DeviceSpec::Usb { vid, pid, serial });
        }
        if let Some(path) = s.strip_prefix("serial:") {
            if path.is_empty() {
                return Err(bad("missing PATH"));
            }
            return Ok(DeviceSpec::Serial(PathBuf::from(path)));
        }
        Err(bad("unknown kind"))
    }
}

/// The clock a station for these specs runs on: virtual time for a
/// simulated device with the in-process simulated rig (unless `realtime`),
/// real time for everything else (real devices, a rig in another process).
/// The caller makes it before [`open`] and takes part in it, so that time
/// stands still from the station's first moment until the caller waits.
pub fn clock_for(spec_text: &str, rig: Option<&str>, realtime: bool) -> Result<Clock> {
    let sim = matches!(DeviceSpec::parse(spec_text)?, DeviceSpec::Sim(_));
    let own_rig = matches!(rig, None | Some("sim") | Some("audio:sim"));
    Ok(if sim && own_rig && !realtime {
        Clock::new_virtual()
    } else {
        Clock::Real(crate::time::HostClock::new())
    })
}

/// Open the station for a device spec on `clock` (from [`clock_for`]).
/// `scenario` picks a simulated scenario file; `class` is the profile's
/// device class (a real device is recorded as one).
pub fn open(
    spec_text: &str,
    rig: Option<&str>,
    scenario: Option<&std::path::Path>,
    class: DeviceClass,
    clock: Clock,
) -> Result<Station> {
    open_with(spec_text, rig, scenario, None, class, clock)
}

/// The station file an `audio:` rig runs with: `station` (`--station`),
/// else for `audio:sim` the shipped fixtures/sim/audio-station.toml.
fn station_file_for(audio: &str, station: Option<&std::path::Path>) -> Result<StationFile> {
    match station {
        Some(p) => StationFile::load(p),
        None if audio == "sim" => StationFile::load(&sim::fixtures_dir().join("sim/audio-station.toml")),
        None => Err(Error::BadInput(format!(
            "--rig audio:{audio} needs --station FILE: which of the interface's channels              drive the speaker, LED and actuator and read the microphone and photodiode              (docs/audio-rig.md)"
        ))),
    }
}

/// The ALSA name of an `audio:` rig spec: as given, or for
/// `audio:usb:VID:PID[:SERIAL]` the card sysfs shows bound to that device.
pub fn alsa_name(audio: &str, root: &std::path::Path) -> Result<String> {
    let Some(rest) = audio.strip_prefix("usb:") else {
        if audio.is_empty() {
            return Err(Error::BadInput(
                "--rig audio: needs an ALSA device (audio:hw:CARD=Name) or audio:usb:VID:PID[:SERIAL]".into(),
            ));
        }
        return Ok(audio.to_string());
    };
    let spec = format!("usb:{rest}");
    let DeviceSpec::Usb { vid, pid, serial } = DeviceSpec::parse(&spec)? else {
        unreachable!("a usb: spec parses as one");
    };
    let dev = usb_dut::find(root, vid, pid, serial.as_deref(), &format!("audio:{spec}"))?;
    let nodes = crate::usb::sysfs::device_nodes(root, &dev.name)
        .map_err(|e| Error::Device(format!("--rig audio:{spec}: {e}")))?;
    match nodes.sound_cards.first() {
        Some((_, card)) => Ok(format!("hw:{card},0")),
        None => Err(Error::Device(format!(
            "--rig audio:{spec}: no ALSA card is bound to {:04x}:{:04x} (is snd-usb-audio loaded?)",
            vid, pid
        ))),
    }
}

/// Open a real audio interface as the rig (feature `alsa`); with `live`,
/// a reference microphone with no signal is refused.
pub fn open_audio_rig(
    audio: &str,
    station: StationFile,
    root: &std::path::Path,
    clock: crate::time::HostClock,
    live: bool,
) -> Result<audio_rig::AudioRig> {
    let name = alsa_name(audio, root)?;
    #[cfg(feature = "alsa")]
    {
        let iface = Box::new(host::alsa_interface::AlsaInterface::open(
            &name, &station, clock,
        )?);
        if live {
            audio_rig::AudioRig::open_live(iface, station, clock.into())
        } else {
            audio_rig::AudioRig::open(iface, station, clock.into())
        }
    }
    #[cfg(not(feature = "alsa"))]
    {
        let _ = (station, clock, live);
        Err(Error::Device(format!(
            "--rig audio:{name}: an audio-interface rig needs certlab built with \
             `--features alsa` (and libasound2-dev)"
        )))
    }
}

/// An `audio:` rig on its own, for `certlab probe rig` (no DUT; the live
/// microphone check is the caller's): `audio:sim` on a virtual clock in a
/// simulated world (`scenario`, by default the speakerphone's), else a real
/// interface on the host clock; `loopback` (`OUT:IN`) moves the loopback
/// cable's ends. Returns the rig and its clock.
pub fn open_audio_rig_alone(
    spec: &str,
    station_file: Option<&std::path::Path>,
    scenario: Option<&std::path::Path>,
    loopback: Option<&str>,
) -> Result<(audio_rig::AudioRig, Clock)> {
    let Some(audio) = spec.strip_prefix("audio:") else {
        return Err(Error::BadInput(format!(
            "--rig {spec} is not an audio:… rig"
        )));
    };
    let mut station = station_file_for(audio, station_file)?;
    if let Some(l) = loopback {
        station = station.with_loopback(l)?;
    }
    if audio == "sim" {
        let clock = Clock::new_virtual();
        let rig = sim::interface_rig(station, scenario, clock.clone())?;
        return Ok((rig, clock));
    }
    let host_clock = crate::time::HostClock::new();
    let rig = open_audio_rig(audio, station, &usb_dut::sysfs_root(), host_clock, false)?;
    Ok((rig, host_clock.into()))
}

/// [`open`], with the station file (`--station`): an `audio:` rig's channel
/// map (another rig's holds only a calibration, which the run reads).
pub fn open_with(
    spec_text: &str,
    rig: Option<&str>,
    scenario: Option<&std::path::Path>,
    station_file: Option<&std::path::Path>,
    class: DeviceClass,
    clock: Clock,
) -> Result<Station> {
    let spec = DeviceSpec::parse(spec_text)?;
    let root = usb_dut::sysfs_root();
    if let Some(audio) = rig.and_then(|r| r.strip_prefix("audio:")) {
        let station = station_file_for(audio, station_file)?;
        return match spec {
            DeviceSpec::Sim(class) if audio == "sim" => sim::open_with(
                class,
                spec_text,
                scenario,
                sim::SimRigChoice::Interface(Box::new(station)),
                clock,
            ),
            DeviceSpec::Sim(_) => Err(Error::Device(format!(
                "--device {spec_text} is simulated: only a simulated rig can measure it                  (--rig sim or --rig audio:sim), not the audio interface {audio}"
            ))),
            DeviceSpec::Usb { .. } if audio == "sim" => Err(Error::Device(format!(
                "--rig audio:sim is simulated: it can measure only a simulated device, not {spec_text}"
            ))),
            DeviceSpec::Usb { vid, pid, serial } => {
                if scenario.is_some() {
                    return Err(Error::BadInput(
                        "--scenario applies only to simulated devices (--device sim[:CLASS])"
                            .into(),
                    ));
                }
                let dev = usb_dut::find(&root, vid, pid, serial.as_deref(), spec_text)?;
                let Some(host_clock) = clock.host() else {
                    return Err(Error::Harness(
                        "a real device cannot run on a virtual clock".into(),
                    ));
                };
                let rig = open_audio_rig(audio, station, &root, host_clock, true)?;
                host::open_usb(spec_text, class, dev, &root, Box::new(rig), host_clock)
            }
            DeviceSpec::Serial(_) => open(spec_text, None, scenario, class, clock),
        };
    }
    // Any other rig's station file holds only its calibration, which the
    // run reads (`run::calibration`); the rig itself takes nothing from it.
    let _ = station_file;
    let rig_port = match rig {
        None | Some("sim") => None,
        Some(r) => Some(parse_rig(r)?),
    };
    match spec {
        DeviceSpec::Sim(class) => {
            let port = match &rig_port {
                Some(p) => Some(p.resolve(&root, rig.unwrap_or_default())?),
                None => None,
            };
            sim::open(class, spec_text, scenario, port.as_deref(), clock)
        }
        DeviceSpec::Usb { vid, pid, serial } => {
            if scenario.is_some() {
                return Err(Error::BadInput(
                    "--scenario applies only to simulated devices (--device sim[:CLASS])".into(),
                ));
            }
            let dev = usb_dut::find(&root, vid, pid, serial.as_deref(), spec_text)?;
            let Some(rig_port) = rig_port else {
                return Err(Error::BadInput(format!(
                    "--device {spec_text} is a real device: name its rig with --rig serial:PATH \
                     or --rig usb:VID:PID[:SERIAL] (`certlab devices` lists the ports)"
                )));
            };
            let port = rig_port.resolve(&root, rig.unwrap_or_default())?;
            let Some(host_clock) = clock.host() else {
                return Err(Error::Harness(
                    "a real device cannot run on a virtual clock".into(),
                ));
            };
            let rig = serial_rig::open_port(&port, host_clock.into())?;
            tracing::info!(rig = %port, "opened the serial rig");
            host::open_usb(spec_text, class, dev, &root, rig, host_clock)
        }
        DeviceSpec::Serial(path) => {
            if scenario.is_some() {
                return Err(Error::BadInput(
                    "--scenario applies only to simulated devices (--device sim[:CLASS])".into(),
                ));
            }
            if !path.exists() {
                return Err(Error::Device(format!(
                    "no serial port at {} (device spec {spec_text}); `certlab devices` lists the ports",
                    path.display()
                )));
            }
            Err(Error::NotImplemented(format!(
                "--device {spec_text}: driving a room system over a serial port without a rig"
            )))
        }
    }
}
