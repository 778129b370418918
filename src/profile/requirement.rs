//! The vocabulary of USB conformance requirements a profile can list.
//!
//! Each requirement is written as a short string in a profile
//! (`requirements = ["audio-playback", "sample-rate:48000"]`); this module
//! parses those strings into [`Requirement`] and prints them back in canonical
//! form. It does not check devices: the USB conformance measurement does.
//! It must not depend on the profile schema (`profile::parse`), which uses it.

use std::fmt;
use std::str::FromStr;

use super::suggest::did_you_mean;

/// One thing a device's USB descriptors must show.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Requirement {
    /// `audio-playback`: an audio output (speaker) interface.
    AudioPlayback,
    /// `audio-capture`: an audio input (microphone) interface.
    AudioCapture,
    /// `sample-rate:<hz>`: the rate is supported for playback and for capture.
    SampleRate(u32),
    /// `hid-usage:0xPP:0xUU`, or one of the aliases `hid-hook-switch`,
    /// `hid-phone-mute`, `hid-mute-led`: the HID report descriptor declares the usage.
    HidUsage(HidUsage),
    /// `video-mode:<W>x<H>@<FPS>[:<FMT>[,<FMT>...]]`: a video mode of that size
    /// with at least that frame rate, in any of the listed formats (none = any).
    VideoMode(VideoMode),
    /// `serial-number`: a non-empty serial number string descriptor.
    SerialNumber,
}

/// A HID usage (page and usage id), remembering the alias it was written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HidUsage {
    pub page: u16,
    pub usage: u16,
    /// The alias it was written as (`hid-hook-switch`, ...), kept for display.
    pub alias: Option<HidAlias>,
}

/// Named HID usages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HidAlias {
    /// Telephony page 0x0b, Hook Switch 0x20.
    HookSwitch,
    /// Telephony page 0x0b, Phone Mute 0x2f.
    PhoneMute,
    /// LED page 0x08, Mute 0x09.
    MuteLed,
}

impl HidAlias {
    pub const ALL: [HidAlias; 3] = [HidAlias::HookSwitch, HidAlias::PhoneMute, HidAlias::MuteLed];
    /// The requirement string, e.g. `hid-hook-switch`.
    pub fn name(self) -> &'static str {
        match self {
            HidAlias::HookSwitch => "hid-hook-switch",
            HidAlias::PhoneMute => "hid-phone-mute",
            HidAlias::MuteLed => "hid-mute-led",
        }
    }
    /// (usage page, usage id).
    pub fn usage(self) -> (u16, u16) {
        match self {
            HidAlias::HookSwitch => (0x0b, 0x20),
            HidAlias::PhoneMute => (0x0b, 0x2f),
            HidAlias::MuteLed => (0x08, 0x09),
        }
    }
}

/// A required video mode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VideoMode {
    pub width: u32,
    pub height: u32,
    /// Minimum frame rate, frames per second.
    pub fps: u32,
    /// Acceptable formats; empty means any.
    pub formats: Vec<VideoFormat>,
}

/// Video formats a mode can be offered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoFormat {
    Mjpeg,
    Yuy2,
    Nv12,
    H264,
}

impl VideoFormat {
    pub const ALL: [VideoFormat; 4] = [
        VideoFormat::Mjpeg,
        VideoFormat::Yuy2,
        VideoFormat::Nv12,
        VideoFormat::H264,
    ];
    pub fn name(self) -> &'static str {
        match self {
            VideoFormat::Mjpeg => "MJPEG",
            VideoFormat::Yuy2 => "YUY2",
            VideoFormat::Nv12 => "NV12",
            VideoFormat::H264 => "H264",
        }
    }
    /// Case-insensitive.
    pub fn parse(s: &str) -> Option<VideoFormat> {
        VideoFormat::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
    }
}

/// Why a requirement string was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementError(pub String);

impl fmt::Display for RequirementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RequirementError {}

/// The forms a requirement may take, for messages and docs.
pub const VOCABULARY: &str = "audio-playback, audio-capture, sample-rate:<hz>, \
hid-usage:0xPP:0xUU, hid-hook-switch, hid-phone-mute, hid-mute-led, \
video-mode:<W>x<H>@<FPS>[:<FMT>[,<FMT>...]] (FMT one of MJPEG, YUY2, NV12, H264), serial-number";

/// Parse `0xPP:0xUU` (hex, either case, 1 to 4 digits each) into (page, usage).
pub fn parse_hid_usage(s: &str) -> Option<(u16, u16)> {
    let (p, u) = s.split_once(':')?;
    Some((hex16(p)?, hex16(u)?))
}

/// The normalized form of a HID usage: `0x0b:0x20`.
pub fn format_hid_usage(page: u16, usage: u16) -> String {
    format!("0x{page:02x}:0x{usage:02x}")
}

fn hex16(s: &str) -> Option<u16> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if digits.is_empty() || digits.len() > 4 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(digits, 16).ok()
}

impl Requirement {
    /// Parse a requirement string; the error says what is allowed.
    pub fn parse(s: &str) -> Result<Requirement, RequirementError> {
        let err = |m: String| Err(RequirementError(m));
        match s {
            "audio-playback" => return Ok(Requirement::AudioPlayback),
            "audio-capture" => return Ok(Requirement::AudioCapture),
            "serial-number" => return Ok(Requirement::SerialNumber),
            _ => {}
        }
        if let Some(alias) = HidAlias::ALL.into_iter().find(|a| a.name() == s) {
            let (page, usage) = alias.usage();
            return Ok(Requirement::HidUsage(HidUsage {
                page,
                usage,
                alias: Some(alias),
            }));
        }
        if let Some(rest) = s.strip_prefix("sample-rate:") {
            return match rest.parse::<u32>() {
                Ok(hz) if (8000..=192_000).contains(&hz) => Ok(Requirement::SampleRate(hz)),
                Ok(hz) => err(format!(
                    "sample rate {hz} Hz in requirement {s:?} is out of range; use 8000 to 192000 Hz"
                )),
                Err(_) => err(format!(
                    "requirement {s:?} needs a whole number of hertz, e.g. \"sample-rate:48000\""
                )),
            };
        }
        if let Some(rest) = s.strip_prefix("hid-usage:") {
            return match parse_hid_usage(rest) {
                Some((page, usage)) => Ok(Requirement::HidUsage(HidUsage {
                    page,
                    usage,
                    alias: None,
                })),
                None => err(format!(
                    "requirement {s:?} needs a usage page and usage in hex, e.g. \"hid-usage:0x0b:0x20\""
                )),
            };
        }
        if let Some(rest) = s.strip_prefix("video-mode:") {
            return parse_video_mode(rest)
                .map(Requirement::VideoMode)
                .map_err(|why| {
                    RequirementError(format!(
                        "requirement {s:?}: {why}; write video-mode:<W>x<H>@<FPS>[:<FMT>[,<FMT>...]], \
                         e.g. \"video-mode:1920x1080@30:MJPEG,H264\" (formats MJPEG, YUY2, NV12, H264)"
                    ))
                });
        }
        let known = [
            "audio-playback",
            "audio-capture",
            "serial-number",
            "hid-hook-switch",
            "hid-phone-mute",
            "hid-mute-led",
            "sample-rate:",
            "hid-usage:",
            "video-mode:",
        ];
        let hint = did_you_mean(s, known.iter().copied());
        err(format!(
            "unknown requirement {s:?}{hint}; requirements are: {VOCABULARY}"
        ))
    }

    /// The HID usage, if this is a HID requirement.
    pub fn hid_usage(&self) -> Option<(u16, u16)> {
        match self {
            Requirement::HidUsage(h) => Some((h.page, h.usage)),
            _ => None,
        }
    }
}

fn parse_video_mode(s: &str) -> Result<VideoMode, String> {
    let (mode, formats) = match s.split_once(':') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    let (size, fps) = mode
        .split_once('@')
        .ok_or_else(|| "the frame rate is missing (\"@<FPS>\")".to_string())?;
    let (w, h) = size
        .split_once('x')
        .ok_or_else(|| "the size must be <W>x<H>".to_string())?;
    let num = |t: &str, what: &str| -> Result<u32, String> {
        match t.parse::<u32>() {
            Ok(v) if v > 0 && v <= 100_000 => Ok(v),
            _ => Err(format!("{what} {t:?} is not a positive whole number")),
        }
    };
    let width = num(w, "width")?;
    let height = num(h, "height")?;
    let fps = match fps.parse::<u32>() {
        Ok(v) if (1..=1000).contains(&v) => v,
        _ => {
            return Err(format!(
                "frame rate {fps:?} is not a whole number from 1 to 1000"
            ))
        }
    };
    let mut list = Vec::new();
    if let Some(f) = formats {
        for name in f.split(',') {
            let fmt = VideoFormat::parse(name.trim())
                .ok_or_else(|| format!("unknown video format {name:?}"))?;
            if !list.contains(&fmt) {
                list.push(fmt);
            }
        }
    }
    Ok(VideoMode {
        width,
        height,
        fps,
        formats: list,
    })
}

impl FromStr for Requirement {
    type Err = RequirementError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Requirement::parse(s)
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::AudioPlayback => f.write_str("audio-playback"),
            Requirement::AudioCapture => f.write_str("audio-capture"),
            Requirement::SerialNumber => f.write_str("serial-number"),
            Requirement::SampleRate(hz) => write!(f, "sample-rate:{hz}"),
            Requirement::HidUsage(h) => match h.alias {
                Some(a) => f.write_str(a.name()),
                None => write!(f, "hid-usage:{}", format_hid_usage(h.page, h.usage)),
            },
            Requirement::VideoMode(m) => {
                write!(f, "video-mode:{}x{}@{}", m.width, m.height, m.fps)?;
                for (i, fmt) in m.formats.iter().enumerate() {
                    f.write_str(if i == 0 { ":" } else { "," })?;
                    f.write_str(fmt.name())?;
                }
                Ok(())
            }
        }
    }
}

impl serde::Serialize for Requirement {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Requirement {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Requirement::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_canonical_strings() {
        for s in [
            "audio-playback",
            "audio-capture",
            "serial-number",
            "sample-rate:48000",
            "hid-hook-switch",
            "hid-phone-mute",
            "hid-mute-led",
            "hid-usage:0x0b:0x21",
            "video-mode:1920x1080@30",
            "video-mode:1280x720@60:MJPEG,H264",
        ] {
            assert_eq!(Requirement::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn normalizes_and_aliases() {
        let r: Requirement = "hid-usage:0X0B:0x2F".parse().unwrap();
        assert_eq!(r.to_string(), "hid-usage:0x0b:0x2f");
        assert_eq!(r.hid_usage(), Some((0x0b, 0x2f)));
        let a: Requirement = "hid-phone-mute".parse().unwrap();
        assert_eq!(a.hid_usage(), r.hid_usage());
        assert_eq!(
            Requirement::parse("video-mode:640x480@15:mjpeg")
                .unwrap()
                .to_string(),
            "video-mode:640x480@15:MJPEG"
        );
    }

    #[test]
    fn clear_errors() {
        let e = Requirement::parse("audio-playbak").unwrap_err().0;
        assert!(e.contains("did you mean `audio-playback`"), "{e}");
        let e = Requirement::parse("sample-rate:4000").unwrap_err().0;
        assert!(e.contains("8000 to 192000"), "{e}");
        let e = Requirement::parse("video-mode:1920x1080@30:AV1")
            .unwrap_err()
            .0;
        assert!(e.contains("unknown video format \"AV1\""), "{e}");
        assert!(Requirement::parse("hid-usage:0x0b").is_err());
        assert!(Requirement::parse("video-mode:1920x1080").is_err());
        assert!(Requirement::parse("").is_err());
    }
}
