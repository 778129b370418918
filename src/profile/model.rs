//! The profile model: what a validated profile holds.
//!
//! Owns the types a profile is made of — [`Profile`], its [`Step`]s with
//! their [`StepKind`] and [`Params`], [`Limit`]s with their [`Unit`], the
//! [`DeviceClass`] — and the names they are written with. It reads no TOML
//! (that is `profile::parse`) and loads no files (that is `profile`); it
//! must not depend on either, so that both can use it.

use std::path::PathBuf;

use serde::Serialize;

use super::requirement::Requirement;
use crate::statistic::Statistic;

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
    /// A station calibration no older than this is required of every step
    /// that crosses the rig (`calibration_max_age_days`); `None`: none is.
    pub calibration_max_age_days: Option<f64>,
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
    /// Every kind, in the order the docs list them.
    pub const ALL: [StimulusKind; 3] = [
        StimulusKind::Sweep,
        StimulusKind::Noise,
        StimulusKind::Speech,
    ];

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
