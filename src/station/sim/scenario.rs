//! Scenario files: what a simulated station is like (fixtures/sim/*.toml).
//!
//! Owns the scenario schema and loading it, including resolving the DUT's
//! identity from the USB snapshot it names (`[identity] usb = "<fixture>"`,
//! read from `fixtures/usb/<fixture>` through [`crate::usb::sysfs`]): the
//! descriptors then give vid, pid, serial, firmware, strings and the
//! audio, HID and video capabilities. It must not simulate anything itself.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::profile::DeviceClass;
use crate::usb::identity::UsbIdentity;
use crate::usb::sysfs::{self, UsbDevice};
use crate::{Error, Result};

/// A simulated station: the DUT's identity and behaviour, the rig, and faults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub class: DeviceClass,
    /// What the scenario stands for, in words.
    #[serde(default)]
    pub description: String,
    /// Seed of every random draw (latencies, noise), so runs repeat.
    #[serde(default)]
    pub seed: u64,
    pub identity: Identity,
    #[serde(default)]
    pub capabilities: CapabilitiesSpec,
    #[serde(default)]
    pub clocks: Clocks,
    #[serde(default)]
    pub latency: Latencies,
    #[serde(default)]
    pub audio: AudioSpec,
    #[serde(default)]
    pub video: VideoSpec,
    /// The simulated audio interface of `--rig audio:sim`.
    #[serde(default)]
    pub interface: InterfaceSpec,
    #[serde(default)]
    pub link: LinkSpec,
    #[serde(default)]
    pub control: ControlSpec,
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// The USB device `identity.usb` names, parsed (set by [`Scenario::load`]).
    #[serde(skip)]
    pub usb_device: Option<Arc<UsbDevice>>,
}

/// Who the simulated DUT is: either `usb`, the name of a USB snapshot under
/// `fixtures/usb/` whose one device (root hubs aside) gives everything, or
/// the strings written out (then the capabilities are hand-written too). It
/// reads as its [`UsbIdentity`] (`identity.product`, ...).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "IdentityTable")]
pub struct Identity {
    pub usb: Option<String>,
    /// Written out, or (with `usb`) the snapshot's device's. VID and PID are
    /// lowercase; the descriptor digest is empty without descriptors.
    pub usb_identity: UsbIdentity,
}

impl std::ops::Deref for Identity {
    type Target = UsbIdentity;
    fn deref(&self) -> &UsbIdentity {
        &self.usb_identity
    }
}

/// The `[identity]` table as a scenario file writes it: the keys it may
/// hold, each optional (the descriptor digest is not one: it comes from
/// the descriptors of `usb`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct IdentityTable {
    usb: Option<String>,
    /// 4 hex digits, either case.
    vid: String,
    /// 4 hex digits, either case.
    pid: String,
    serial: String,
    firmware: String,
    manufacturer: String,
    product: String,
}

impl From<IdentityTable> for Identity {
    fn from(t: IdentityTable) -> Identity {
        Identity {
            usb: t.usb,
            usb_identity: UsbIdentity {
                vid: t.vid.to_lowercase(),
                pid: t.pid.to_lowercase(),
                serial: t.serial,
                firmware: t.firmware,
                manufacturer: t.manufacturer,
                product: t.product,
                descriptors_sha256: String::new(),
            },
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesSpec {
    #[serde(default)]
    pub audio_playback: bool,
    #[serde(default)]
    pub audio_capture: bool,
    #[serde(default)]
    pub playback_rates: Vec<u32>,
    #[serde(default)]
    pub capture_rates: Vec<u32>,
    /// "0xPP:0xUU" usage pairs.
    #[serde(default)]
    pub hid_usages: Vec<String>,
    #[serde(default)]
    pub video_modes: Vec<VideoModeSpec>,
    #[serde(default)]
    pub serial_port: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoModeSpec {
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

/// Clock offsets and rates. Host time is the simulation's true time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Clocks {
    /// Rig clock reading when the host clock reads 0, s.
    pub rig_offset_s: f64,
    /// Rig clock rate error, ppm (positive: fast).
    pub rig_drift_ppm: f64,
    /// DUT audio sample clock rate error, ppm.
    pub dut_audio_drift_ppm: f64,
    /// Camera frame clock rate error, ppm.
    pub camera_drift_ppm: f64,
    /// Standard deviation of the host's stamps of capture blocks, µs.
    pub stamp_jitter_us: f64,
}

impl Default for Clocks {
    fn default() -> Self {
        Clocks {
            rig_offset_s: 1000.0,
            rig_drift_ppm: 0.0,
            dut_audio_drift_ppm: 0.0,
            camera_drift_ppm: 0.0,
            stamp_jitter_us: 20.0,
        }
    }
}

/// A latency distribution.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dist {
    pub median_ms: f64,
    #[serde(default)]
    pub jitter_ms: f64,
    #[serde(default)]
    pub shape: Shape,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// Normal with standard deviation `jitter_ms`.
    #[default]
    Normal,
    /// Uniform over median ± jitter_ms.
    Uniform,
}

impl Dist {
    pub const fn fixed(ms: f64) -> Dist {
        Dist {
            median_ms: ms,
            jitter_ms: 0.0,
            shape: Shape::Normal,
        }
    }
    /// One draw, in seconds, never below 0.
    pub fn draw(&self, rng: &mut impl rand::Rng) -> f64 {
        let x = match self.shape {
            Shape::Normal => {
                let n: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, rng);
                self.median_ms + self.jitter_ms * n
            }
            Shape::Uniform => self.median_ms + self.jitter_ms * (2.0 * rng.random::<f64>() - 1.0),
        };
        x.max(0.0) * 1e-3
    }
}

/// The DUT's latency distributions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Latencies {
    /// Sound at the DUT microphone to its sample at the host.
    pub audio_send: Dist,
    /// A sample written by the host to its sound at the DUT speaker.
    pub audio_receive: Dist,
    /// Mid-exposure of a frame to its arrival at the host.
    pub video: Dist,
    /// Button press to the HID report at the host.
    pub hid: Dist,
    /// Command line written to reply line read, on the control port.
    pub control: Dist,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            audio_send: Dist::fixed(20.0),
            audio_receive: Dist::fixed(30.0),
            video: Dist::fixed(100.0),
            hid: Dist::fixed(10.0),
            control: Dist::fixed(15.0),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioSpec {
    /// Noise at the DUT's capture, dBFS RMS.
    pub capture_noise_dbfs: f64,
    /// Gain from the rig speaker to the DUT's capture, dB.
    pub capture_gain_db: f64,
    /// Noise at the rig's reference microphone, dBFS RMS.
    pub rig_mic_noise_dbfs: f64,
    /// Gain from the DUT's speaker to the rig microphone, dB.
    pub rig_mic_gain_db: f64,
    /// Polarity of the DUT's capture path (+1 or -1).
    pub capture_polarity: i8,
    /// The rig's own speaker-to-microphone path (electronics and air), µs:
    /// what a station calibration measures (the rig reports its loopback
    /// delay, not this).
    pub rig_acoustic_path_us: f64,
    /// Gain from the rig's speaker to its own microphone, dB.
    pub rig_acoustic_gain_db: f64,
}

impl Default for AudioSpec {
    fn default() -> Self {
        AudioSpec {
            capture_noise_dbfs: -60.0,
            capture_gain_db: -6.0,
            rig_mic_noise_dbfs: -60.0,
            rig_mic_gain_db: -10.0,
            capture_polarity: 1,
            rig_acoustic_path_us: 512.5,
            rig_acoustic_gain_db: -20.0,
        }
    }
}

/// The simulated USB audio interface behind `--rig audio:sim`: its
/// channels and rates, what its converters add beyond what ALSA's delay
/// counts (the station's own path, for calibration to measure), its sample
/// clock against the host's, the jitter of its stamps, and its inputs'
/// floors. The bench is wired as the station file says, but for inputs
/// listed in `silent_inputs` (nothing connected: the converter's floor).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterfaceSpec {
    pub inputs: u16,
    pub outputs: u16,
    /// Rates it accepts, Hz.
    pub rates: Vec<u32>,
    /// From the frame its frame clock says leaves to the sound at its
    /// output jack (DAC filter), µs.
    pub output_latency_us: f64,
    /// From the sound at its input jack to the frame its stamps place
    /// there (ADC filter), µs.
    pub input_latency_us: f64,
    /// Its sample clock against the host's, ppm.
    pub drift_ppm: f64,
    /// Standard deviation of its period and block stamps, µs.
    pub stamp_jitter_us: f64,
    /// The converters' own floor on every input, dBFS RMS.
    pub input_floor_dbfs: f64,
    /// From the LED output's burst to the light (rectifier and driver), µs.
    pub led_driver_delay_us: f64,
    /// Inputs (1-based) with nothing connected.
    pub silent_inputs: Vec<u16>,
}

impl Default for InterfaceSpec {
    fn default() -> Self {
        InterfaceSpec {
            inputs: 4,
            outputs: 4,
            rates: vec![44_100, 48_000, 96_000],
            output_latency_us: 310.0,
            input_latency_us: 270.0,
            drift_ppm: 42.0,
            stamp_jitter_us: 100.0,
            input_floor_dbfs: -110.0,
            led_driver_delay_us: 40.0,
            silent_inputs: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VideoSpec {
    pub fps: f64,
    pub width: u32,
    pub height: u32,
    /// Pixel noise standard deviation, in 8-bit levels.
    pub noise: f64,
    /// Background level, 0–255.
    pub background: f64,
    /// How much the lit LED adds to its pixels, 0–255.
    pub led_level: f64,
    /// Where the LED appears: [x, y, w, h] as fractions of the frame.
    pub led_region: [f64; 4],
}

impl Default for VideoSpec {
    fn default() -> Self {
        VideoSpec {
            fps: 30.0,
            width: 64,
            height: 36,
            noise: 2.0,
            background: 40.0,
            led_level: 160.0,
            led_region: [0.42, 0.40, 0.16, 0.2],
        }
    }
}

/// The rig's USB link. A transfer waits for the next bus slot (a 125 µs
/// microframe when the rig's full-speed port sits behind a high-speed hub;
/// 1000 for a 1 ms full-speed frame), then takes a driver and firmware delay
/// drawn from the range of its direction, and now and then stalls. The
/// directions differ, and the harness is not told how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkSpec {
    /// Bus slot period, µs (0: no framing).
    pub frame_us: f64,
    pub up_us: [f64; 2],
    pub down_us: [f64; 2],
    pub stall_probability: f64,
    pub stall_ms: [f64; 2],
}

impl Default for LinkSpec {
    fn default() -> Self {
        LinkSpec {
            frame_us: 125.0,
            up_us: [20.0, 80.0],
            down_us: [40.0, 250.0],
            stall_probability: 0.02,
            stall_ms: [2.0, 5.0],
        }
    }
}

impl LinkSpec {
    /// The delay of a transfer starting at true time `t` (s) in a direction
    /// whose driver and firmware delay lies in `range` (µs), in seconds.
    pub fn delay(&self, t: f64, range: [f64; 2], rng: &mut impl rand::Rng) -> f64 {
        let slot = self.frame_us * 1e-6;
        let to_slot = if slot > 0.0 {
            slot - t.rem_euclid(slot)
        } else {
            0.0
        };
        let mut d = to_slot + rng.random_range(range[0]..=range[1].max(range[0])) * 1e-6;
        if rng.random_bool(self.stall_probability.clamp(0.0, 1.0)) {
            d += rng.random_range(self.stall_ms[0]..=self.stall_ms[1].max(self.stall_ms[0])) * 1e-3;
        }
        d
    }
}

/// The room system's control port.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSpec {
    /// Software version it reports.
    pub software_version: String,
    /// Commands it does not understand (answers an error), for non-conforming devices.
    pub broken_commands: Vec<String>,
}

/// A fault the simulated station injects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// The DUT vanishes `at_s` seconds after the station opens.
    Disconnect { at_s: f64 },
    /// The DUT's capture drops each block with this probability.
    DropBlocks { probability: f64 },
    /// The rig never answers (a rig that hangs, or the wrong port).
    RigSilent,
    /// The rig's USB cable is pulled `at_s` seconds after the station opens.
    RigDisconnect { at_s: f64 },
    /// Before each frame it sends, the rig's link injects a burst of 1 to
    /// `max_bytes` random bytes with this probability (electrical noise).
    RigGarbage { probability: f64, max_bytes: usize },
    /// The rig speaks another version of the rig protocol.
    RigProtocol { version: u8 },
    /// The rig's firmware freezes for `duration_ms` from `at_s`: it reads
    /// nothing and sends nothing (a bus stall, a busy firmware); what it
    /// would have sent meanwhile follows at once afterwards.
    RigStall { at_s: f64, duration_ms: f64 },
    /// The rig reboots at `at_s` without its port going away: it is silent
    /// for `boot_ms`, then its clock starts again from zero, it has forgotten
    /// its stimuli and streams, and it says so (protocol error `restarted`).
    RigReset { at_s: f64, boot_ms: f64 },
}

impl Scenario {
    pub fn load(path: &Path) -> Result<(Scenario, String)> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::BadInput(format!("cannot read scenario {}: {e}", path.display()))
        })?;
        let text = String::from_utf8(bytes.clone()).map_err(|_| {
            Error::BadInput(format!("scenario {} is not UTF-8 text", path.display()))
        })?;
        let mut s: Scenario = toml::from_str(&text)
            .map_err(|e| Error::BadInput(format!("scenario {}: {e}", path.display())))?;
        s.resolve_usb()
            .map_err(|e| Error::BadInput(format!("scenario {}: {e}", path.display())))?;
        s.validate()
            .map_err(|e| Error::BadInput(format!("scenario {}: {e}", path.display())))?;
        use sha2::Digest;
        Ok((s, hex::encode(sha2::Sha256::digest(&bytes))))
    }

    /// With `identity.usb`, read that snapshot and take the identity and the
    /// audio, HID and video capabilities from its device's descriptors.
    fn resolve_usb(&mut self) -> std::result::Result<(), String> {
        let Some(name) = self.identity.usb.clone() else {
            return Ok(());
        };
        let id = &self.identity;
        for (k, v) in [
            ("vid", &id.vid),
            ("pid", &id.pid),
            ("serial", &id.serial),
            ("firmware", &id.firmware),
            ("manufacturer", &id.manufacturer),
            ("product", &id.product),
        ] {
            if !v.is_empty() {
                return Err(format!(
                    "identity.{k} is given, but identity.usb = {name:?} already says who the device is; remove identity.{k}"
                ));
            }
        }
        let c = &self.capabilities;
        for (k, given) in [
            ("audio_playback", c.audio_playback),
            ("audio_capture", c.audio_capture),
            ("playback_rates", !c.playback_rates.is_empty()),
            ("capture_rates", !c.capture_rates.is_empty()),
            ("hid_usages", !c.hid_usages.is_empty()),
            ("video_modes", !c.video_modes.is_empty()),
        ] {
            if given {
                return Err(format!(
                    "capabilities.{k} is given, but the descriptors of identity.usb = {name:?} say what the device offers; remove it"
                ));
            }
        }
        let safe = !name.is_empty()
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
        if !safe {
            return Err(format!(
                "identity.usb = {name:?} must be the name of a snapshot directory under fixtures/usb/"
            ));
        }
        let root = super::fixtures_dir().join("usb").join(&name);
        let devices = sysfs::scan(&root).map_err(|e| format!("identity.usb = {name:?}: {e}"))?;
        let mut devices: Vec<UsbDevice> = devices.into_iter().filter(|d| !d.is_hub()).collect();
        if devices.len() != 1 {
            return Err(format!(
                "identity.usb = {name:?}: {} holds {} devices besides root hubs; a DUT identity needs exactly one",
                root.display(),
                devices.len()
            ));
        }
        let dev = devices.remove(0);
        self.identity.usb_identity = dev.identity.clone();
        let caps = crate::station::Capabilities::from_usb(&dev);
        self.capabilities = CapabilitiesSpec {
            audio_playback: caps.audio_playback,
            audio_capture: caps.audio_capture,
            playback_rates: caps.playback_rates,
            capture_rates: caps.capture_rates,
            hid_usages: caps
                .hid_usages
                .iter()
                .map(|(p, u)| crate::profile::requirement::format_hid_usage(*p, *u))
                .collect(),
            video_modes: caps
                .video_modes
                .into_iter()
                .map(|m| VideoModeSpec {
                    format: m.format,
                    width: m.width,
                    height: m.height,
                    fps: m.fps,
                })
                .collect(),
            serial_port: self.capabilities.serial_port,
        };
        self.usb_device = Some(Arc::new(dev));
        Ok(())
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let hex4 = |s: &str| s.len() == 4 && u16::from_str_radix(s, 16).is_ok();
        if !hex4(&self.identity.vid) || !hex4(&self.identity.pid) {
            return Err("identity.vid and identity.pid must be 4 hex digits".into());
        }
        if !(1.0..=240.0).contains(&self.video.fps) {
            return Err("video.fps must be within 1..=240".into());
        }
        if self.video.width < 8
            || self.video.height < 8
            || self.video.width > 4096
            || self.video.height > 4096
        {
            return Err("video.width and video.height must be within 8..=4096".into());
        }
        if self.audio.capture_polarity.abs() != 1 {
            return Err("audio.capture_polarity must be 1 or -1".into());
        }
        for f in &self.faults {
            match f {
                Fault::Disconnect { at_s }
                | Fault::RigDisconnect { at_s }
                | Fault::RigStall { at_s, .. }
                | Fault::RigReset { at_s, .. }
                    if !(*at_s >= 0.0 && at_s.is_finite()) =>
                {
                    return Err("a fault's at_s must be a time ≥ 0".into())
                }
                Fault::RigStall { duration_ms: d, .. } | Fault::RigReset { boot_ms: d, .. }
                    if !(0.0..=60_000.0).contains(d) =>
                {
                    return Err(
                        "a rig stall's duration_ms and a reset's boot_ms must be within 0..=60000"
                            .into(),
                    )
                }
                Fault::DropBlocks { probability } | Fault::RigGarbage { probability, .. }
                    if !(0.0..=1.0).contains(probability) =>
                {
                    return Err("a fault's probability must be within 0..=1".into())
                }
                _ => {}
            }
        }
        for u in &self.capabilities.hid_usages {
            parse_usage(u)
                .ok_or_else(|| format!("bad HID usage {u:?}; write it as \"0xPP:0xUU\""))?;
        }
        Ok(())
    }
}

/// Parse "0xPP:0xUU" (the profile's own notation).
pub use crate::profile::requirement::parse_hid_usage as parse_usage;
