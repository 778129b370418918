//! Test profiles: what to test and the limits, as declarative versioned TOML.
//!
//! Owns the profile schema, its validation (every problem reported with
//! `file:line:column`), the shipped profiles under `profiles/`, and judging
//! statistics against limits (`judge`). It does not measure anything and does
//! not touch hardware: a measurement hands it statistics, it hands back verdicts.

pub mod judge;
mod parse;
pub mod requirement;

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::statistic::Statistic;

pub use parse::{kind_keys, parse_profile, Diagnostic, FORMAT};
pub use requirement::Requirement;

/// A validated test profile.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// Profile format version (`format = 1`).
    pub format: u32,
    pub id: String,
    pub version: String,
    /// The certification program the profile belongs to, e.g. `teams-usb-audio`.
    pub program: String,
    pub device_class: DeviceClass,
    pub title: String,
    pub description: String,
    pub steps: Vec<Step>,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// Where it was loaded from (for messages).
    #[serde(skip)]
    pub source: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceClass {
    Speakerphone,
    Headset,
    Camera,
    RoomSystem,
}

impl DeviceClass {
    pub const ALL: [DeviceClass; 4] = [
        DeviceClass::Speakerphone,
        DeviceClass::Headset,
        DeviceClass::Camera,
        DeviceClass::RoomSystem,
    ];
    pub fn name(self) -> &'static str {
        match self {
            DeviceClass::Speakerphone => "speakerphone",
            DeviceClass::Headset => "headset",
            DeviceClass::Camera => "camera",
            DeviceClass::RoomSystem => "room-system",
        }
    }
    pub fn parse(s: &str) -> Option<DeviceClass> {
        DeviceClass::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// The measurement a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    AudioSendLatency,
    AudioReceiveLatency,
    AudioRoundtripLatency,
    VideoLatency,
    ButtonHidLatency,
    UsbConformance,
    SerialConformance,
}

impl StepKind {
    pub const ALL: [StepKind; 7] = [
        StepKind::AudioSendLatency,
        StepKind::AudioReceiveLatency,
        StepKind::AudioRoundtripLatency,
        StepKind::VideoLatency,
        StepKind::ButtonHidLatency,
        StepKind::UsbConformance,
        StepKind::SerialConformance,
    ];
    pub fn name(self) -> &'static str {
        match self {
            StepKind::AudioSendLatency => "audio-send-latency",
            StepKind::AudioReceiveLatency => "audio-receive-latency",
            StepKind::AudioRoundtripLatency => "audio-roundtrip-latency",
            StepKind::VideoLatency => "video-latency",
            StepKind::ButtonHidLatency => "button-hid-latency",
            StepKind::UsbConformance => "usb-conformance",
            StepKind::SerialConformance => "serial-conformance",
        }
    }
    pub fn parse(s: &str) -> Option<StepKind> {
        StepKind::ALL.into_iter().find(|k| k.name() == s)
    }
    /// Whether the step measures a latency in shots.
    pub fn is_latency(self) -> bool {
        !matches!(self, StepKind::UsbConformance | StepKind::SerialConformance)
    }
    /// The quantity its limits are expressed in.
    pub fn quantity(self) -> Quantity {
        Quantity::Time
    }
}

/// What a limit's unit must measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantity {
    Time,
}

/// A unit a limit may use. Every time is stored internally in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum Unit {
    #[serde(rename = "us")]
    Us,
    #[serde(rename = "ms")]
    Ms,
    #[serde(rename = "s")]
    S,
}

impl Unit {
    pub fn parse(s: &str) -> Option<Unit> {
        match s {
            "us" | "µs" => Some(Unit::Us),
            "ms" => Some(Unit::Ms),
            "s" => Some(Unit::S),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Unit::Us => "us",
            Unit::Ms => "ms",
            Unit::S => "s",
        }
    }
    pub fn quantity(self) -> Quantity {
        Quantity::Time
    }
    /// Milliseconds per one of this unit.
    pub fn to_ms(self) -> f64 {
        match self {
            Unit::Us => 1e-3,
            Unit::Ms => 1.0,
            Unit::S => 1e3,
        }
    }
}

/// One limit on one statistic of a step. `min` and/or `max` are in `unit`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Limit {
    pub statistic: Statistic,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    pub unit: Unit,
    /// Width of the marginal band inside each bound, in `unit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marginal: Option<f64>,
}

/// Audio stimulus a step plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StimulusKind {
    /// Exponential sine sweep.
    Sweep,
    /// Pseudo-random noise burst.
    Noise,
    /// Speech-like burst (harmonics with formants and a syllable envelope).
    Speech,
}

impl StimulusKind {
    pub fn name(self) -> &'static str {
        match self {
            StimulusKind::Sweep => "sweep",
            StimulusKind::Noise => "noise",
            StimulusKind::Speech => "speech",
        }
    }
}

/// Parameters of a step; which are meaningful depends on the kind.
/// The parser fills in the defaults listed in `docs/profiles.md`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Params {
    /// Number of shots (latency steps). Default 30.
    pub shots: u32,
    /// Time between shot starts, ms. Default depends on the kind (300 audio, 500 video, 250 HID).
    pub interval_ms: f64,
    /// Audio stimulus. Default `noise`.
    pub stimulus: StimulusKind,
    /// Stimulus length, ms. Default 100.
    pub stimulus_ms: f64,
    /// Audio sample rate, Hz. Default 48000.
    pub sample_rate: u32,
    /// Longest latency searched for after each stimulus, ms. Default 200 audio, 300 video, 100 HID.
    pub max_latency_ms: f64,
    /// Shots that may go undetected before the step fails. Default 10 % of shots.
    pub max_missed: u32,
    /// HID usage a button press must produce, "0xPP:0xUU". Default "0x0b:0x20".
    pub hid_usage: String,
    /// Region of the frame the LED lies in: [x, y, w, h] as fractions. Default the whole frame.
    pub led_roi: [f64; 4],
    /// USB conformance requirements, e.g. "audio-playback", "sample-rate:48000".
    pub requirements: Vec<Requirement>,
    /// Serial conformance exchanges.
    pub commands: Vec<SerialCommand>,
    /// Serial baud rate. Default 115200.
    pub baud: u32,
    /// Step timeout, s. Default 120.
    pub timeout_s: f64,
}

/// One command of a serial-conformance step and the reply it must get.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SerialCommand {
    /// Line sent (a line ending is added by the port).
    pub send: String,
    /// Regular expression the whole reply line must match.
    pub expect: String,
}

/// One step of a profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
    pub title: String,
    pub params: Params,
    pub limits: Vec<Limit>,
}

impl Profile {
    /// Load and validate a profile file. Every problem is reported.
    pub fn load(path: &Path) -> crate::Result<Profile> {
        let bytes = std::fs::read(path).map_err(|e| {
            crate::Error::BadInput(format!("cannot read profile {}: {e}", path.display()))
        })?;
        Profile::from_bytes(&bytes, path)
    }

    /// Validate a profile from its bytes; `path` is used in messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> crate::Result<Profile> {
        let text = std::str::from_utf8(bytes).map_err(|e| crate::Error::Profile {
            path: path.to_path_buf(),
            diagnostics: vec![format!(
                "{}:1:1: the file is not UTF-8 text ({e})",
                path.display()
            )],
        })?;
        match parse_profile(text) {
            Ok(mut p) => {
                p.sha256 = hex::encode(Sha256::digest(bytes));
                p.source = path.to_path_buf();
                Ok(p)
            }
            Err(diags) => Err(crate::Error::Profile {
                path: path.to_path_buf(),
                diagnostics: diags.iter().map(|d| d.render(path, text)).collect(),
            }),
        }
    }
}

/// The directory of shipped profiles: `CERTLAB_PROFILES`, else `profiles/`
/// beside the working directory, else the one in the source tree.
pub fn shipped_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CERTLAB_PROFILES") {
        return PathBuf::from(d);
    }
    let local = PathBuf::from("profiles");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

/// Every shipped profile, sorted by id. Files that fail to load are returned
/// as errors beside the good ones.
pub fn shipped() -> Vec<crate::Result<Profile>> {
    let dir = shipped_dir();
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    paths.sort();
    paths.iter().map(|p| Profile::load(p)).collect()
}

/// Resolve `PROFILE` on the command line: a path to a file, or a shipped id.
pub fn resolve(arg: &str) -> crate::Result<Profile> {
    let p = Path::new(arg);
    if p.exists() {
        return Profile::load(p);
    }
    let candidate = shipped_dir().join(format!("{arg}.toml"));
    if candidate.exists() {
        return Profile::load(&candidate);
    }
    Err(crate::Error::BadInput(format!(
        "no profile file or shipped profile named {arg:?} (see `certlab profiles list`)"
    )))
}
