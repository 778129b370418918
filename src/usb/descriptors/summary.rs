//! Summaries of what a device offers: its classes, its audio streams with
//! their directions and sample rates, its video formats, frame sizes and
//! frame rates.
//!
//! Owns the rules that turn the model into these summaries (docs/usb.md,
//! "Summaries"), each linear in the number of descriptors whatever the
//! input. It reads the model only: it must not parse bytes, nor judge
//! (whether a device passes a profile is `measure::conformance`'s).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::codes::{class, TERMINAL_USB_STREAMING};
use super::model::{
    AltSetting, AudioDescriptor, ClassDescriptor, Configuration, Descriptors, Endpoint,
    EndpointDirection, HidClassDescriptor, SampleRates, TransferType, UacVersion, VideoDescriptor,
};

/// Direction of an audio stream as seen from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioDirection {
    /// Host → device (the device plays it).
    Playback,
    /// Device → host (the device records it).
    Capture,
}

/// One audio streaming alternate setting with a format.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioStream {
    pub interface: u8,
    pub alternate: u8,
    pub uac: u8,
    pub direction: Option<AudioDirection>,
    pub channels: Option<u8>,
    pub subframe_size: u8,
    pub bit_resolution: u8,
    /// Empty when the descriptors do not give rates (UAC2).
    pub sample_rates: Vec<u32>,
    /// A UAC1 continuous range (min, max), when that is how rates are given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuous_range: Option<(u32, u32)>,
    /// UAC2: the clock entity (the terminal's bCSourceID) whose recorded
    /// rates (`uac2_clock_rates`, docs/usb.md) gave `sample_rates`; absent
    /// when the rates come from the descriptors themselves, or are unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rates_from_clock: Option<u8>,
    /// UAC2: the clock entity the stream's terminal names, if any.
    #[serde(skip)]
    pub clock_source: Option<u8>,
    /// Byte offset of the format type descriptor (for evidence).
    #[serde(skip)]
    pub format_offset: usize,
}

/// What a device offers as audio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioSummary {
    /// Highest USB Audio Class version among its audio functions (1 or 2).
    pub uac: u8,
    pub playback: bool,
    pub capture: bool,
    /// Sorted, without duplicates; see [`AudioSummary`]'s docs in docs/usb.md.
    pub sample_rates: Vec<u32>,
    pub streams: Vec<AudioStream>,
}

/// One video frame size and its rates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoFrameSummary {
    pub width: u16,
    pub height: u16,
    pub fps: Vec<f64>,
    /// Byte offset of the frame descriptor (for evidence).
    #[serde(skip)]
    pub offset: usize,
}

/// One video format and its frames.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoFormatSummary {
    pub format: String,
    pub frames: Vec<VideoFrameSummary>,
}

/// What a device offers as video.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoSummary {
    pub formats: Vec<VideoFormatSummary>,
}

/// Rates a UAC1 continuous range is taken to include, besides its bounds.
pub const STANDARD_RATES: [u32; 12] = [
    8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000,
];

impl Descriptors {
    /// abstract control model interface: what a rig's /dev/ttyACM is).
    pub fn classes(&self) -> Vec<&'static str> {
        let has = |c: u8| self.device.class == c || self.alt_settings().any(|a| a.class == c);
        let mut out = Vec::new();
        if has(class::AUDIO) {
            out.push("audio");
        }
        if has(class::VIDEO) {
            out.push("video");
        }
        if has(class::HID) {
            out.push("hid");
        }
        if self
            .alt_settings()
            .any(|a| a.class == class::CDC && a.subclass == class::CDC_ACM)
        {
            out.push("serial");
        }
        out
    }

    /// HID class descriptors with their interface numbers.
    pub fn hid_interfaces(&self) -> Vec<(u8, &HidClassDescriptor)> {
        let mut out = Vec::new();
        for a in self.alt_settings() {
            for c in &a.class_info {
                if let ClassDescriptor::Hid(h) = c {
                    out.push((a.interface, h));
                }
            }
        }
        out
    }

    /// The audio summary, or `None` without an audio interface.
    pub fn audio(&self) -> Option<AudioSummary> {
        self.audio_with_clock_rates(&BTreeMap::new())
    }

    /// The audio summary, with the sample rates of UAC2 clock entities
    /// (clock id → rates) as recorded outside the descriptors: a UAC2
    /// stream whose terminal names one of these clocks takes its rates.
    pub fn audio_with_clock_rates(
        &self,
        clock_rates: &BTreeMap<u8, Vec<u32>>,
    ) -> Option<AudioSummary> {
        let mut uac = 0u8;
        let mut playback = false;
        let mut capture = false;
        let mut rates = BTreeSet::new();
        let mut streams = Vec::new();
        let mut any = false;
        for cfg in &self.configurations {
            // Audio control interfaces: version and terminals.
            let acs: Vec<&AltSetting> = cfg
                .interfaces
                .iter()
                .flat_map(|i| i.alt_settings.iter())
                .filter(|a| a.class == class::AUDIO && a.subclass == 0x01)
                .collect();
            for ac in &acs {
                any = true;
                uac = uac.max(ac_version(ac) as u8);
                for d in &ac.class_info {
                    match d {
                        ClassDescriptor::Audio(AudioDescriptor::InputTerminal {
                            terminal_type: TERMINAL_USB_STREAMING,
                            ..
                        }) => playback = true,
                        ClassDescriptor::Audio(AudioDescriptor::OutputTerminal {
                            terminal_type: TERMINAL_USB_STREAMING,
                            ..
                        }) => capture = true,
                        _ => {}
                    }
                }
            }
            let index = AudioIndex::new(cfg, &acs);
            // Audio streaming alternate settings with a format.
            for a in cfg.interfaces.iter().flat_map(|i| i.alt_settings.iter()) {
                if a.class != class::AUDIO || a.subclass != 0x02 {
                    continue;
                }
                any = true;
                let version = as_version(a);
                uac = uac.max(version as u8);
                let mut link = None;
                let mut general_channels = None;
                let mut format = None;
                for d in &a.class_info {
                    match d {
                        ClassDescriptor::Audio(AudioDescriptor::StreamingGeneral {
                            terminal_link,
                            channels,
                            ..
                        }) => {
                            link = Some(*terminal_link);
                            general_channels = *channels;
                        }
                        ClassDescriptor::Audio(AudioDescriptor::FormatTypeI {
                            offset,
                            channels,
                            subframe_size,
                            bit_resolution,
                            rates,
                        }) => {
                            format =
                                Some((*channels, *subframe_size, *bit_resolution, rates, *offset))
                        }
                        _ => {}
                    }
                }
                let Some((channels, subframe_size, bit_resolution, srates, format_offset)) = format
                else {
                    continue;
                };
                let by_terminal = link.and_then(|l| {
                    index
                        .owner(a.interface)
                        .and_then(|ac| index.direction(ac, l))
                });
                let data_eps: Vec<&Endpoint> = a
                    .endpoints
                    .iter()
                    .filter(|e| !e.is_feedback() && e.transfer_type() != TransferType::Interrupt)
                    .collect();
                let by_endpoint = data_eps.first().map(|e| match e.direction() {
                    EndpointDirection::Out => AudioDirection::Playback,
                    EndpointDirection::In => AudioDirection::Capture,
                });
                let direction = by_terminal.or(by_endpoint);
                match direction {
                    Some(AudioDirection::Playback) => playback = true,
                    Some(AudioDirection::Capture) => capture = true,
                    None => {}
                }
                let clock_source = link.and_then(|l| {
                    index
                        .owner(a.interface)
                        .and_then(|ac| index.clocks.get(&(ac, l)).copied())
                });
                let mut rates_from_clock = None;
                let (list, range) = match srates {
                    SampleRates::Discrete(v) => (v.clone(), None),
                    SampleRates::Continuous { min, max } => {
                        let mut v = vec![*min];
                        v.extend(STANDARD_RATES.iter().filter(|r| **r > *min && **r < *max));
                        if max != min {
                            v.push(*max);
                        }
                        (v, Some((*min, *max)))
                    }
                    SampleRates::Unknown => match clock_source.and_then(|c| clock_rates.get(&c)) {
                        Some(v) => {
                            rates_from_clock = clock_source;
                            let mut v = v.clone();
                            v.sort_unstable();
                            v.dedup();
                            (v, None)
                        }
                        None => (Vec::new(), None),
                    },
                };
                rates.extend(list.iter().copied());
                streams.push(AudioStream {
                    interface: a.interface,
                    alternate: a.alternate,
                    uac: version as u8,
                    direction,
                    channels: channels.or(general_channels),
                    subframe_size,
                    bit_resolution,
                    sample_rates: list,
                    continuous_range: range,
                    rates_from_clock,
                    clock_source,
                    format_offset,
                });
            }
        }
        if !any {
            return None;
        }
        Some(AudioSummary {
            uac: uac.max(1),
            playback,
            capture,
            sample_rates: rates.into_iter().collect(),
            streams,
        })
    }

    /// The video summary, or `None` without a video streaming format.
    pub fn video(&self) -> Option<VideoSummary> {
        let mut formats = Vec::new();
        let mut any = false;
        for a in self.alt_settings() {
            if a.class != class::VIDEO {
                continue;
            }
            any = true;
            for d in &a.class_info {
                if let ClassDescriptor::Video(VideoDescriptor::Format(f)) = d {
                    formats.push(VideoFormatSummary {
                        format: f.name.clone(),
                        frames: f
                            .frames
                            .iter()
                            .map(|fr| VideoFrameSummary {
                                width: fr.width,
                                height: fr.height,
                                fps: fr.fps(),
                                offset: fr.offset,
                            })
                            .collect(),
                    });
                }
            }
        }
        if any {
            Some(VideoSummary { formats })
        } else {
            None
        }
    }
}

/// The UAC version of an audio control interface: its protocol (0x20 =
/// IP_VERSION_02_00), else its header's bcdADC.
fn ac_version(a: &AltSetting) -> UacVersion {
    if a.protocol == 0x20 {
        return UacVersion::Uac2;
    }
    for d in &a.class_info {
        if let ClassDescriptor::Audio(AudioDescriptor::Header { bcd_adc, .. }) = d {
            if *bcd_adc >= 0x0200 {
                return UacVersion::Uac2;
            }
        }
    }
    UacVersion::Uac1
}

fn as_version(a: &AltSetting) -> UacVersion {
    if a.protocol == 0x20 {
        UacVersion::Uac2
    } else {
        UacVersion::Uac1
    }
}

/// Which audio control interface owns which streaming interface, and what
/// its terminals mean, computed once per configuration so that the summary
/// stays linear in the number of descriptors whatever the input.
struct AudioIndex {
    /// Streaming interface number → AC index, from the AC headers' lists.
    listed: BTreeMap<u8, usize>,
    /// Interface number → the first AC alt setting with that number.
    by_number: BTreeMap<u8, usize>,
    /// Interface number → the AC in the same IAD.
    by_iad: BTreeMap<u8, usize>,
    /// (AC index, terminal id) → direction (first terminal with the id wins).
    terminals: BTreeMap<(usize, u8), Option<AudioDirection>>,
    /// (AC index, terminal id) → UAC2 bCSourceID (first terminal wins).
    clocks: BTreeMap<(usize, u8), u8>,
}

impl AudioIndex {
    fn new(cfg: &Configuration, acs: &[&AltSetting]) -> AudioIndex {
        let mut listed = BTreeMap::new();
        let mut by_number = BTreeMap::new();
        let mut terminals = BTreeMap::new();
        let mut clocks = BTreeMap::new();
        for (k, ac) in acs.iter().enumerate() {
            by_number.entry(ac.interface).or_insert(k);
            for d in &ac.class_info {
                let (id, dir, clock) = match d {
                    ClassDescriptor::Audio(AudioDescriptor::Header {
                        stream_interfaces, ..
                    }) => {
                        for n in stream_interfaces {
                            listed.entry(*n).or_insert(k);
                        }
                        continue;
                    }
                    // USB streaming input terminal = playback; USB streaming
                    // output terminal = capture; any other terminal linked to
                    // a stream = unknown.
                    ClassDescriptor::Audio(AudioDescriptor::InputTerminal {
                        id,
                        terminal_type,
                        clock_source,
                        ..
                    }) => (
                        *id,
                        (*terminal_type == TERMINAL_USB_STREAMING)
                            .then_some(AudioDirection::Playback),
                        *clock_source,
                    ),
                    ClassDescriptor::Audio(AudioDescriptor::OutputTerminal {
                        id,
                        terminal_type,
                        clock_source,
                        ..
                    }) => (
                        *id,
                        (*terminal_type == TERMINAL_USB_STREAMING)
                            .then_some(AudioDirection::Capture),
                        *clock_source,
                    ),
                    _ => continue,
                };
                terminals.entry((k, id)).or_insert(dir);
                if let Some(c) = clock {
                    clocks.entry((k, id)).or_insert(c);
                }
            }
        }
        let mut by_iad = BTreeMap::new();
        for iad in &cfg.associations {
            let first = iad.first_interface;
            let last = first.saturating_add(iad.interface_count.saturating_sub(1));
            if iad.interface_count == 0 {
                continue;
            }
            if let Some((_, &k)) = by_number.range(first..=last).next() {
                for n in first..=last {
                    by_iad.entry(n).or_insert(k);
                }
            }
        }
        AudioIndex {
            listed,
            by_number,
            by_iad,
            terminals,
            clocks,
        }
    }

    /// The AC a streaming interface belongs to: the one whose header lists
    /// it, else the one in the same IAD, else the nearest one before it.
    fn owner(&self, interface: u8) -> Option<usize> {
        self.listed
            .get(&interface)
            .or_else(|| self.by_iad.get(&interface))
            .or_else(|| {
                self.by_number
                    .range(..interface)
                    .next_back()
                    .map(|(_, k)| k)
            })
            .copied()
    }

    fn direction(&self, ac: usize, terminal: u8) -> Option<AudioDirection> {
        self.terminals.get(&(ac, terminal)).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::super::walk::parse;
    use super::*;

    /// A device with a CDC abstract control model interface (and its data
    /// interface) is a serial port; CDC without ACM (e.g. ethernet) is not.
    #[test]
    fn a_cdc_acm_interface_is_the_serial_class() {
        let with = |subclass: u8| {
            let mut d = vec![
                18, 1, 0, 2, 0xef, 2, 1, 64, 0x09, 0x12, 0x0c, 0, 0, 1, 1, 2, 3, 1,
            ];
            let total = 9 + 9 + 9 + 9;
            d.extend([9, 2, total, 0, 3, 1, 0, 0x80, 50]);
            d.extend([9, 4, 0, 0, 0, 3, 0, 0, 0]); // HID
            d.extend([9, 4, 1, 0, 0, 2, subclass, 1, 0]); // CDC communications
            d.extend([9, 4, 2, 0, 0, 0x0a, 0, 0, 0]); // CDC data
            parse(&d).unwrap()
        };
        assert_eq!(with(class::CDC_ACM).classes(), ["hid", "serial"]);
        assert_eq!(with(0x06).classes(), ["hid"]);
    }
}
