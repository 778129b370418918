//! Raw USB descriptor bytes → a typed model, and class summaries.
//!
//! Owns the parsing of the bytes in sysfs's `descriptors` file: the 18-byte
//! device descriptor followed by each configuration descriptor with
//! everything nested in it (interface associations, interfaces and their
//! alternate settings, endpoints, and the class-specific descriptors of USB
//! Audio 1.0/2.0, USB Video 1.1/1.5 and HID 1.11). It also summarises what a
//! device offers: its classes, its audio directions and sample rates, its
//! video formats, frame sizes and frame rates.
//!
//! It never panics and never loops on any input: every read is bounds
//! checked and every descriptor advances the cursor by at least two bytes.
//! Structural faults that leave the rest unreadable are a [`ParseError`]
//! naming the byte offset; recoverable oddities are [`Warning`]s.
//!
//! It parses only: it does no I/O and judges nothing (whether a device
//! passes a profile is `profile`'s business).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

/// Descriptor types (USB 2.0 table 9-5, class specs).
pub mod desc_type {
    pub const DEVICE: u8 = 0x01;
    pub const CONFIGURATION: u8 = 0x02;
    pub const INTERFACE: u8 = 0x04;
    pub const ENDPOINT: u8 = 0x05;
    pub const INTERFACE_ASSOCIATION: u8 = 0x0b;
    pub const HID: u8 = 0x21;
    pub const HID_REPORT: u8 = 0x22;
    pub const CS_INTERFACE: u8 = 0x24;
    pub const CS_ENDPOINT: u8 = 0x25;
}

/// Interface class codes.
pub mod class {
    pub const AUDIO: u8 = 0x01;
    pub const HID: u8 = 0x03;
    pub const VIDEO: u8 = 0x0e;
    /// Communications (CDC); with subclass `CDC_ACM`, a serial port.
    pub const CDC: u8 = 0x02;
    pub const CDC_ACM: u8 = 0x02;
}

/// USB streaming terminal type (UAC1 termt10 and UAC2 both 0x0101; UVC
/// TT_STREAMING is also 0x0101).
pub const TERMINAL_USB_STREAMING: u16 = 0x0101;
/// UVC camera input terminal type (ITT_CAMERA).
pub const TERMINAL_CAMERA: u16 = 0x0201;

// ---------------------------------------------------------------------------
// Errors and warnings

/// What kind of structural fault stopped the parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The data ends before something that must be there.
    Truncated,
    /// Bytes after the last configuration.
    TrailingBytes,
    /// A descriptor's bLength is 0 or 1: walking it would never advance.
    Loop,
    /// A descriptor runs past the end of its configuration (wTotalLength).
    Overrun,
    /// A descriptor shorter than the fields it must hold.
    TooShort,
    /// Fields that contradict each other (wTotalLength, bNumInterfaces, ...).
    Inconsistent,
    /// A descriptor of the wrong type where another is required.
    WrongType,
}

/// A structural fault: where (byte offset into the whole buffer) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParseError {
    pub offset: usize,
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for ParseError {}

fn fail<T>(offset: usize, kind: ErrorKind, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        offset,
        kind,
        message: message.into(),
    })
}

/// A recoverable oddity, with the byte offset of the descriptor it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

// ---------------------------------------------------------------------------
// Bounds-checked little-endian reads (out of range reads give 0; callers
// check lengths first, this is the belt to those braces).

fn b(d: &[u8], i: usize) -> u8 {
    d.get(i).copied().unwrap_or(0)
}
fn w(d: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b(d, i), b(d, i.saturating_add(1))])
}
fn t3(d: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([
        b(d, i),
        b(d, i.saturating_add(1)),
        b(d, i.saturating_add(2)),
        0,
    ])
}
fn dw(d: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([
        b(d, i),
        b(d, i.saturating_add(1)),
        b(d, i.saturating_add(2)),
        b(d, i.saturating_add(3)),
    ])
}
/// Little-endian unsigned of up to 4 bytes.
fn le_n(d: &[u8], i: usize, n: usize) -> u32 {
    let mut v = 0u32;
    for k in (0..n.min(4)).rev() {
        v = (v << 8) | u32::from(b(d, i.saturating_add(k)));
    }
    v
}

// ---------------------------------------------------------------------------
// The model

/// Everything parsed from one device's descriptor bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptors {
    pub device: DeviceDescriptor,
    pub configurations: Vec<Configuration>,
    pub warnings: Vec<Warning>,
}

/// The standard device descriptor (USB 2.0 §9.6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDescriptor {
    pub bcd_usb: u16,
    pub class: u8,
    pub subclass: u8,
    pub protocol: u8,
    pub max_packet_size0: u8,
    pub vendor_id: u16,
    pub product_id: u16,
    pub bcd_device: u16,
    pub i_manufacturer: u8,
    pub i_product: u8,
    pub i_serial: u8,
    pub num_configurations: u8,
}

/// A configuration with everything nested in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Configuration {
    /// Byte offset of the configuration descriptor.
    pub offset: usize,
    pub total_length: u16,
    pub num_interfaces: u8,
    pub value: u8,
    pub i_configuration: u8,
    pub attributes: u8,
    /// bMaxPower in its raw unit (2 mA at USB 2.0 speeds).
    pub max_power: u8,
    pub associations: Vec<InterfaceAssociation>,
    /// Interfaces in order of first appearance.
    pub interfaces: Vec<Interface>,
    /// Descriptors that belong to no interface.
    pub extra: Vec<RawDescriptor>,
}

/// An interface association (IAD): a function made of consecutive interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAssociation {
    pub offset: usize,
    pub first_interface: u8,
    pub interface_count: u8,
    pub class: u8,
    pub subclass: u8,
    pub protocol: u8,
    pub i_function: u8,
}

impl InterfaceAssociation {
    /// Whether the interface number belongs to this function.
    pub fn contains(&self, interface: u8) -> bool {
        let first = u16::from(self.first_interface);
        let i = u16::from(interface);
        i >= first && i < first + u16::from(self.interface_count)
    }
}

/// One interface number and its alternate settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    pub number: u8,
    pub alt_settings: Vec<AltSetting>,
}

/// One alternate setting of an interface: its endpoints and class descriptors.
#[derive(Debug, Clone, PartialEq)]
pub struct AltSetting {
    /// Byte offset of the interface descriptor.
    pub offset: usize,
    pub interface: u8,
    pub alternate: u8,
    pub num_endpoints: u8,
    pub class: u8,
    pub subclass: u8,
    pub protocol: u8,
    pub i_interface: u8,
    /// Class-specific interface descriptors, in order. Video frame
    /// descriptors are nested in their format.
    pub class_info: Vec<ClassDescriptor>,
    pub endpoints: Vec<Endpoint>,
    /// Descriptors of no known meaning here, kept raw.
    pub extra: Vec<RawDescriptor>,
}

/// Endpoint direction, from bit 7 of bEndpointAddress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointDirection {
    /// Host to device.
    Out,
    /// Device to host.
    In,
}

/// Transfer type, bits 1..0 of bmAttributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferType {
    Control,
    Isochronous,
    Bulk,
    Interrupt,
}

/// A standard endpoint descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub offset: usize,
    pub address: u8,
    pub attributes: u8,
    pub max_packet_size: u16,
    pub interval: u8,
    /// Class-specific endpoint and companion descriptors, kept raw.
    pub extra: Vec<RawDescriptor>,
}

impl Endpoint {
    pub fn number(&self) -> u8 {
        self.address & 0x0f
    }
    pub fn direction(&self) -> EndpointDirection {
        if self.address & 0x80 != 0 {
            EndpointDirection::In
        } else {
            EndpointDirection::Out
        }
    }
    pub fn transfer_type(&self) -> TransferType {
        match self.attributes & 0x03 {
            0 => TransferType::Control,
            1 => TransferType::Isochronous,
            2 => TransferType::Bulk,
            _ => TransferType::Interrupt,
        }
    }
    /// An isochronous explicit-feedback endpoint (usage type 01): it carries
    /// rate feedback, not samples.
    pub fn is_feedback(&self) -> bool {
        self.transfer_type() == TransferType::Isochronous && (self.attributes >> 4) & 0x03 == 0x01
    }
}

/// A descriptor kept as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDescriptor {
    pub offset: usize,
    pub descriptor_type: u8,
    pub bytes: Vec<u8>,
}

/// A class-specific descriptor of an interface.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassDescriptor {
    Audio(AudioDescriptor),
    Video(VideoDescriptor),
    Hid(HidClassDescriptor),
}

/// USB Audio Class version of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum UacVersion {
    Uac1 = 1,
    Uac2 = 2,
}

/// A sample rate set as the descriptors give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleRates {
    Discrete(Vec<u32>),
    /// UAC1 continuous range, inclusive.
    Continuous {
        min: u32,
        max: u32,
    },
    /// Not in the descriptors (UAC2: the clock source is asked at run time).
    Unknown,
}

/// Class-specific audio descriptors (UAC1 and UAC2 share the variants; the
/// fields a version lacks are `None`).
#[derive(Debug, Clone, PartialEq)]
pub enum AudioDescriptor {
    /// AC interface header: bcdADC and (UAC1) the streaming interfaces.
    Header {
        offset: usize,
        bcd_adc: u16,
        total_length: u16,
        stream_interfaces: Vec<u8>,
    },
    InputTerminal {
        offset: usize,
        id: u8,
        terminal_type: u16,
        assoc_terminal: u8,
        channels: u8,
        /// UAC2: bCSourceID.
        clock_source: Option<u8>,
    },
    OutputTerminal {
        offset: usize,
        id: u8,
        terminal_type: u16,
        assoc_terminal: u8,
        source: u8,
        /// UAC2: bCSourceID.
        clock_source: Option<u8>,
    },
    FeatureUnit {
        offset: usize,
        id: u8,
        source: u8,
        /// bmaControls per channel, master (0) first.
        controls: Vec<u32>,
    },
    /// UAC2 clock source.
    ClockSource {
        offset: usize,
        id: u8,
        attributes: u8,
        controls: u8,
        assoc_terminal: u8,
    },
    /// Mixer, selector, processing, extension units, clock selectors and
    /// multipliers: recognised, not detailed.
    Unit { offset: usize, subtype: u8, id: u8 },
    /// AS interface general descriptor.
    StreamingGeneral {
        offset: usize,
        terminal_link: u8,
        /// UAC1 wFormatTag (0x0001 PCM).
        format_tag: Option<u16>,
        /// UAC2 bmFormats.
        formats: Option<u32>,
        /// UAC2 bNrChannels (UAC1 has them in the format type).
        channels: Option<u8>,
    },
    /// Format type I.
    FormatTypeI {
        offset: usize,
        /// UAC1 only; UAC2 carries it in the AS general descriptor.
        channels: Option<u8>,
        /// Bytes per sample slot (bSubframeSize / bSubslotSize).
        subframe_size: u8,
        bit_resolution: u8,
        rates: SampleRates,
    },
    /// Format types II, III and others: recognised, not detailed.
    FormatOther { offset: usize, format_type: u8 },
    /// Any other class-specific interface descriptor.
    Other { offset: usize, subtype: u8 },
}

/// How a frame descriptor lists its frame intervals (100 ns units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameIntervals {
    Discrete(Vec<u32>),
    Continuous { min: u32, max: u32, step: u32 },
}

/// The kind of a UVC format descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UvcFormatKind {
    Uncompressed,
    Mjpeg,
    FrameBased,
}

/// A UVC format with its frames.
#[derive(Debug, Clone, PartialEq)]
pub struct UvcFormat {
    pub offset: usize,
    pub kind: UvcFormatKind,
    pub index: u8,
    /// Declared bNumFrameDescriptors.
    pub num_frames: u8,
    /// "MJPEG", or the FourCC of the GUID ("YUY2", "NV12", "H264"), or the
    /// GUID written out when it is not a FourCC GUID.
    pub name: String,
    pub guid: Option<[u8; 16]>,
    pub bits_per_pixel: Option<u8>,
    pub frames: Vec<UvcFrame>,
}

/// A UVC frame descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct UvcFrame {
    pub offset: usize,
    pub index: u8,
    pub width: u16,
    pub height: u16,
    pub default_interval: u32,
    pub intervals: FrameIntervals,
}

impl UvcFrame {
    /// Frame rates in frames per second, rounded to 0.01: each discrete
    /// interval in descriptor order, or for a continuous range the fastest
    /// and the slowest rate. Zero intervals are skipped.
    pub fn fps(&self) -> Vec<f64> {
        let mut out: Vec<f64> = Vec::new();
        let mut push = |iv: u32| {
            if iv != 0 {
                let f = (1e9 / f64::from(iv)).round() / 100.0;
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        };
        match &self.intervals {
            FrameIntervals::Discrete(v) => v.iter().for_each(|&iv| push(iv)),
            FrameIntervals::Continuous { min, max, .. } => {
                push(*min);
                push(*max);
            }
        }
        out
    }
}

/// Class-specific video descriptors.
#[derive(Debug, Clone, PartialEq)]
pub enum VideoDescriptor {
    /// VC interface header.
    Header {
        offset: usize,
        bcd_uvc: u16,
        total_length: u16,
        clock_frequency: u32,
        stream_interfaces: Vec<u8>,
    },
    InputTerminal {
        offset: usize,
        id: u8,
        terminal_type: u16,
        /// For a camera terminal: bmControls as a little-endian bit set.
        camera_controls: Option<u32>,
    },
    OutputTerminal {
        offset: usize,
        id: u8,
        terminal_type: u16,
        source: u8,
    },
    ProcessingUnit {
        offset: usize,
        id: u8,
        source: u8,
        controls: u32,
    },
    /// Selector, extension and encoding units: recognised, not detailed.
    Unit {
        offset: usize,
        subtype: u8,
        id: u8,
    },
    /// VS input header.
    InputHeader {
        offset: usize,
        num_formats: u8,
        endpoint: u8,
        terminal_link: u8,
    },
    Format(UvcFormat),
    /// Any other class-specific interface descriptor (output header, still
    /// image frame, color matching, ...).
    Other {
        offset: usize,
        subtype: u8,
    },
}

/// The HID class descriptor of a HID interface (HID 1.11 §6.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidClassDescriptor {
    pub offset: usize,
    pub bcd_hid: u16,
    pub country_code: u8,
    /// (bDescriptorType, wDescriptorLength) of each class descriptor.
    pub descriptors: Vec<(u8, u16)>,
}

impl HidClassDescriptor {
    /// wDescriptorLength of the report descriptor (type 0x22).
    pub fn report_descriptor_length(&self) -> Option<u16> {
        self.descriptors
            .iter()
            .find(|(t, _)| *t == desc_type::HID_REPORT)
            .map(|(_, l)| *l)
    }
}

// ---------------------------------------------------------------------------
// Summaries

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
    /// Every alternate setting of every interface of every configuration.
    pub fn alt_settings(&self) -> impl Iterator<Item = &AltSetting> {
        self.configurations
            .iter()
            .flat_map(|c| c.interfaces.iter())
            .flat_map(|i| i.alt_settings.iter())
    }

    /// Classes present, in the order audio, video, hid, serial (a CDC
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

// ---------------------------------------------------------------------------
// GUIDs

/// The suffix of FourCC-based format GUIDs (XXXXXXXX-0000-0010-8000-00AA00389B71),
/// as stored little-endian after the four FourCC bytes.
const FOURCC_GUID_SUFFIX: [u8; 12] = [
    0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];

/// A format GUID as a name: the FourCC ("YUY2", "NV12", "H264", ...) when it
/// is a FourCC GUID of printable characters, else the GUID in its usual form.
pub fn guid_name(g: &[u8; 16]) -> String {
    if g[4..] == FOURCC_GUID_SUFFIX && g[..4].iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        let s: String = g[..4].iter().map(|&c| c as char).collect();
        let s = s.trim_end().to_string();
        if !s.is_empty() {
            return s;
        }
    }
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        dw(g, 0),
        w(g, 4),
        w(g, 6),
        g[8],
        g[9],
        g[10],
        g[11],
        g[12],
        g[13],
        g[14],
        g[15]
    )
}

// ---------------------------------------------------------------------------
// The parser

/// Parse a `descriptors` buffer: the device descriptor followed by
/// bNumConfigurations configuration descriptors of wTotalLength bytes each.
pub fn parse(data: &[u8]) -> Result<Descriptors, ParseError> {
    let mut warnings = Vec::new();
    if data.is_empty() {
        return fail(
            0,
            ErrorKind::Truncated,
            "no data: the device descriptor is missing",
        );
    }
    let len0 = data[0];
    if len0 < 2 {
        return fail(
            0,
            ErrorKind::Loop,
            format!("device descriptor bLength is {len0}"),
        );
    }
    if data.len() < 2 {
        return fail(
            1,
            ErrorKind::Truncated,
            "the data ends inside the device descriptor",
        );
    }
    if data[1] != desc_type::DEVICE {
        return fail(
            1,
            ErrorKind::WrongType,
            format!(
                "expected a device descriptor (type 0x01), found type 0x{:02x}",
                data[1]
            ),
        );
    }
    if len0 != 18 {
        return fail(
            0,
            ErrorKind::Inconsistent,
            format!("device descriptor bLength is {len0}, must be 18"),
        );
    }
    if data.len() < 18 {
        return fail(
            data.len(),
            ErrorKind::Truncated,
            format!(
                "the device descriptor needs 18 bytes, the data has {}",
                data.len()
            ),
        );
    }
    let device = DeviceDescriptor {
        bcd_usb: w(data, 2),
        class: data[4],
        subclass: data[5],
        protocol: data[6],
        max_packet_size0: data[7],
        vendor_id: w(data, 8),
        product_id: w(data, 10),
        bcd_device: w(data, 12),
        i_manufacturer: data[14],
        i_product: data[15],
        i_serial: data[16],
        num_configurations: data[17],
    };
    if device.num_configurations == 0 {
        warnings.push(Warning {
            offset: 17,
            message: "bNumConfigurations is 0".into(),
        });
    }
    let mut pos = 18usize;
    let mut configurations = Vec::new();
    for n in 0..device.num_configurations {
        if pos >= data.len() {
            return fail(
                pos,
                ErrorKind::Truncated,
                format!(
                    "bNumConfigurations is {} but the data ends after {n} configuration(s)",
                    device.num_configurations
                ),
            );
        }
        let (cfg, end) = parse_configuration(data, pos, &mut warnings)?;
        configurations.push(cfg);
        pos = end;
    }
    if pos < data.len() {
        return fail(
            pos,
            ErrorKind::TrailingBytes,
            format!(
                "{} byte(s) after the last of {} configuration(s)",
                data.len() - pos,
                device.num_configurations
            ),
        );
    }
    Ok(Descriptors {
        device,
        configurations,
        warnings,
    })
}

/// Where the walk is inside a configuration.
struct Cursor {
    /// (index into interfaces, index into alt_settings).
    alt: Option<(usize, usize)>,
    endpoint: Option<usize>,
    /// Index in the current alt setting's class_info of the last video format.
    last_format: Option<usize>,
    /// (interface, alternate) pairs seen in this configuration.
    seen: BTreeSet<(u8, u8)>,
}

fn parse_configuration(
    data: &[u8],
    start: usize,
    warnings: &mut Vec<Warning>,
) -> Result<(Configuration, usize), ParseError> {
    let rest = &data[start..];
    let blen = b(rest, 0) as usize;
    if blen < 2 {
        return fail(
            start,
            ErrorKind::Loop,
            format!("configuration descriptor bLength is {blen}"),
        );
    }
    if rest.len() < 2 {
        return fail(
            start + rest.len(),
            ErrorKind::Truncated,
            "the data ends inside a configuration descriptor",
        );
    }
    if rest[1] != desc_type::CONFIGURATION {
        return fail(
            start + 1,
            ErrorKind::WrongType,
            format!(
                "expected a configuration descriptor (type 0x02), found type 0x{:02x}",
                rest[1]
            ),
        );
    }
    if blen < 9 {
        return fail(
            start,
            ErrorKind::TooShort,
            format!("configuration descriptor bLength is {blen}, needs 9"),
        );
    }
    if rest.len() < 9 {
        return fail(
            start + rest.len(),
            ErrorKind::Truncated,
            "the data ends inside a configuration descriptor",
        );
    }
    let total = w(rest, 2) as usize;
    if total < blen {
        return fail(
            start + 2,
            ErrorKind::Inconsistent,
            format!("wTotalLength {total} is shorter than the configuration descriptor ({blen})"),
        );
    }
    if total > rest.len() {
        return fail(
            start + 2,
            ErrorKind::Truncated,
            format!(
                "wTotalLength says {total} bytes but only {} remain (truncated, or wTotalLength lies)",
                rest.len()
            ),
        );
    }
    let end = start + total;
    let mut cfg = Configuration {
        offset: start,
        total_length: total as u16,
        num_interfaces: rest[4],
        value: rest[5],
        i_configuration: rest[6],
        attributes: rest[7],
        max_power: rest[8],
        associations: Vec::new(),
        interfaces: Vec::new(),
        extra: Vec::new(),
    };
    let mut cur = Cursor {
        alt: None,
        endpoint: None,
        last_format: None,
        seen: BTreeSet::new(),
    };
    let mut p = start + blen;
    while p < end {
        let dlen = data[p] as usize;
        if dlen < 2 {
            return fail(
                p,
                ErrorKind::Loop,
                format!("descriptor bLength is {dlen}: the walk would not advance"),
            );
        }
        if p + dlen > end {
            return fail(
                p,
                ErrorKind::Overrun,
                format!(
                    "descriptor of type 0x{:02x} with bLength {dlen} runs {} byte(s) past the end \
                     of the configuration at byte {end} (wTotalLength {total})",
                    b(data, p + 1),
                    p + dlen - end
                ),
            );
        }
        let d = &data[p..p + dlen];
        walk_descriptor(&mut cfg, &mut cur, d, p, start, warnings)?;
        p += dlen;
    }

    // Counts.
    let n_if = cfg.interfaces.len();
    if n_if != cfg.num_interfaces as usize {
        return fail(
            start + 4,
            ErrorKind::Inconsistent,
            format!(
                "bNumInterfaces is {} but the configuration has {n_if} interface(s)",
                cfg.num_interfaces
            ),
        );
    }
    for a in cfg.interfaces.iter().flat_map(|i| i.alt_settings.iter()) {
        if a.endpoints.len() != a.num_endpoints as usize {
            warnings.push(Warning {
                offset: a.offset + 4,
                message: format!(
                    "interface {} alt {}: bNumEndpoints is {} but {} endpoint descriptor(s) follow",
                    a.interface,
                    a.alternate,
                    a.num_endpoints,
                    a.endpoints.len()
                ),
            });
        }
        for c in &a.class_info {
            if let ClassDescriptor::Video(VideoDescriptor::Format(f)) = c {
                if f.frames.len() != f.num_frames as usize {
                    warnings.push(Warning {
                        offset: f.offset,
                        message: format!(
                            "format {} ({}): bNumFrameDescriptors is {} but {} frame descriptor(s) follow",
                            f.index,
                            f.name,
                            f.num_frames,
                            f.frames.len()
                        ),
                    });
                }
            }
        }
    }
    Ok((cfg, end))
}

fn too_short<T>(p: usize, what: &str, have: usize, need: usize) -> Result<T, ParseError> {
    fail(
        p,
        ErrorKind::TooShort,
        format!("{what} has bLength {have}, its fields need {need}"),
    )
}

fn raw(d: &[u8], p: usize) -> RawDescriptor {
    RawDescriptor {
        offset: p,
        descriptor_type: b(d, 1),
        bytes: d.to_vec(),
    }
}

fn walk_descriptor(
    cfg: &mut Configuration,
    cur: &mut Cursor,
    d: &[u8],
    p: usize,
    cfg_start: usize,
    warnings: &mut Vec<Warning>,
) -> Result<(), ParseError> {
    let dtype = d[1];
    match dtype {
        desc_type::DEVICE | desc_type::CONFIGURATION => {
            return fail(
                p,
                ErrorKind::Inconsistent,
                format!(
                    "a {} descriptor inside the configuration at byte {cfg_start} \
                     (its wTotalLength runs over into the next one?)",
                    if dtype == desc_type::DEVICE {
                        "device"
                    } else {
                        "configuration"
                    }
                ),
            );
        }
        desc_type::INTERFACE_ASSOCIATION => {
            if d.len() < 8 {
                return too_short(p, "interface association descriptor", d.len(), 8);
            }
            cfg.associations.push(InterfaceAssociation {
                offset: p,
                first_interface: d[2],
                interface_count: d[3],
                class: d[4],
                subclass: d[5],
                protocol: d[6],
                i_function: d[7],
            });
            cur.alt = None;
            cur.endpoint = None;
            cur.last_format = None;
        }
        desc_type::INTERFACE => {
            if d.len() < 9 {
                return too_short(p, "interface descriptor", d.len(), 9);
            }
            let alt = AltSetting {
                offset: p,
                interface: d[2],
                alternate: d[3],
                num_endpoints: d[4],
                class: d[5],
                subclass: d[6],
                protocol: d[7],
                i_interface: d[8],
                class_info: Vec::new(),
                endpoints: Vec::new(),
                extra: Vec::new(),
            };
            let ii = match cfg
                .interfaces
                .iter()
                .position(|i| i.number == alt.interface)
            {
                Some(ii) => ii,
                None => {
                    cfg.interfaces.push(Interface {
                        number: alt.interface,
                        alt_settings: Vec::new(),
                    });
                    cfg.interfaces.len() - 1
                }
            };
            if !cur.seen.insert((alt.interface, alt.alternate)) {
                warnings.push(Warning {
                    offset: p,
                    message: format!(
                        "interface {} alternate setting {} appears twice",
                        alt.interface, alt.alternate
                    ),
                });
            }
            cfg.interfaces[ii].alt_settings.push(alt);
            cur.alt = Some((ii, cfg.interfaces[ii].alt_settings.len() - 1));
            cur.endpoint = None;
            cur.last_format = None;
        }
        desc_type::ENDPOINT => {
            if d.len() < 7 {
                return too_short(p, "endpoint descriptor", d.len(), 7);
            }
            let ep = Endpoint {
                offset: p,
                address: d[2],
                attributes: d[3],
                max_packet_size: w(d, 4),
                interval: d[6],
                extra: Vec::new(),
            };
            match alt_mut(cfg, cur) {
                Some(a) => {
                    a.endpoints.push(ep);
                    cur.endpoint = Some(a.endpoints.len() - 1);
                }
                None => {
                    warnings.push(Warning {
                        offset: p,
                        message: "endpoint descriptor outside any interface".into(),
                    });
                    cfg.extra.push(raw(d, p));
                }
            }
        }
        desc_type::CS_ENDPOINT => {
            let ep = cur.endpoint;
            match alt_mut(cfg, cur) {
                Some(a) => match ep.and_then(|i| a.endpoints.get_mut(i)) {
                    Some(e) => e.extra.push(raw(d, p)),
                    None => a.extra.push(raw(d, p)),
                },
                None => cfg.extra.push(raw(d, p)),
            }
        }
        _ => {
            let Some(a) = alt_mut(cfg, cur) else {
                if dtype == desc_type::CS_INTERFACE {
                    warnings.push(Warning {
                        offset: p,
                        message: "class-specific interface descriptor outside any interface".into(),
                    });
                }
                cfg.extra.push(raw(d, p));
                return Ok(());
            };
            // Class-specific descriptors after an endpoint belong to the
            // interface still (UVC puts none there, UAC neither); keep them
            // with the interface.
            match (dtype, a.class) {
                (desc_type::CS_INTERFACE, class::AUDIO) => {
                    if let Some(c) = parse_audio(a, d, p, warnings)? {
                        a.class_info.push(ClassDescriptor::Audio(c));
                    }
                }
                (desc_type::CS_INTERFACE, class::VIDEO) => {
                    parse_video(a, d, p, warnings, &mut cur.last_format)?
                }
                (desc_type::HID, class::HID) => {
                    if d.len() < 6 {
                        return too_short(p, "HID descriptor", d.len(), 6);
                    }
                    let n = d[5] as usize;
                    let need = 6 + 3 * n;
                    if d.len() < need {
                        return too_short(p, "HID descriptor", d.len(), need);
                    }
                    if n == 0 {
                        warnings.push(Warning {
                            offset: p + 5,
                            message:
                                "HID descriptor lists no class descriptors (bNumDescriptors 0)"
                                    .into(),
                        });
                    }
                    let descriptors = (0..n).map(|k| (d[6 + 3 * k], w(d, 7 + 3 * k))).collect();
                    a.class_info.push(ClassDescriptor::Hid(HidClassDescriptor {
                        offset: p,
                        bcd_hid: w(d, 2),
                        country_code: d[4],
                        descriptors,
                    }));
                }
                _ => a.extra.push(raw(d, p)),
            }
        }
    }
    Ok(())
}

fn alt_mut<'a>(cfg: &'a mut Configuration, cur: &Cursor) -> Option<&'a mut AltSetting> {
    let (i, j) = cur.alt?;
    cfg.interfaces.get_mut(i)?.alt_settings.get_mut(j)
}

// ---------------------------------------------------------------------------
// Audio (UAC1: audio10.pdf §4.3, frmts10.pdf §2.2; UAC2: Audio20 §4.7, §4.9)

fn parse_audio(
    a: &AltSetting,
    d: &[u8],
    p: usize,
    warnings: &mut Vec<Warning>,
) -> Result<Option<AudioDescriptor>, ParseError> {
    if d.len() < 3 {
        return too_short(p, "audio class-specific descriptor", d.len(), 3);
    }
    let subtype = d[2];
    let v2 = match a.protocol {
        0x00 => false,
        0x20 => true,
        other => {
            warnings.push(Warning {
                offset: p,
                message: format!(
                    "audio interface {} protocol 0x{other:02x} (not UAC1 or UAC2): class descriptors kept raw",
                    a.interface
                ),
            });
            return Ok(Some(AudioDescriptor::Other { offset: p, subtype }));
        }
    };
    let need = |n: usize, what: &str| -> Result<(), ParseError> {
        if d.len() < n {
            too_short(p, what, d.len(), n)
        } else {
            Ok(())
        }
    };
    match a.subclass {
        // Audio control.
        0x01 => match (subtype, v2) {
            (0x01, false) => {
                need(8, "UAC1 AC header")?;
                let n = d[7] as usize;
                need(8 + n, "UAC1 AC header")?;
                Ok(Some(AudioDescriptor::Header {
                    offset: p,
                    bcd_adc: w(d, 3),
                    total_length: w(d, 5),
                    stream_interfaces: d[8..8 + n].to_vec(),
                }))
            }
            (0x01, true) => {
                need(9, "UAC2 AC header")?;
                Ok(Some(AudioDescriptor::Header {
                    offset: p,
                    bcd_adc: w(d, 3),
                    total_length: w(d, 6),
                    stream_interfaces: Vec::new(),
                }))
            }
            (0x02, false) => {
                need(12, "UAC1 input terminal")?;
                Ok(Some(AudioDescriptor::InputTerminal {
                    offset: p,
                    id: d[3],
                    terminal_type: w(d, 4),
                    assoc_terminal: d[6],
                    channels: d[7],
                    clock_source: None,
                }))
            }
            (0x02, true) => {
                need(17, "UAC2 input terminal")?;
                Ok(Some(AudioDescriptor::InputTerminal {
                    offset: p,
                    id: d[3],
                    terminal_type: w(d, 4),
                    assoc_terminal: d[6],
                    channels: d[8],
                    clock_source: Some(d[7]),
                }))
            }
            (0x03, false) => {
                need(9, "UAC1 output terminal")?;
                Ok(Some(AudioDescriptor::OutputTerminal {
                    offset: p,
                    id: d[3],
                    terminal_type: w(d, 4),
                    assoc_terminal: d[6],
                    source: d[7],
                    clock_source: None,
                }))
            }
            (0x03, true) => {
                need(12, "UAC2 output terminal")?;
                Ok(Some(AudioDescriptor::OutputTerminal {
                    offset: p,
                    id: d[3],
                    terminal_type: w(d, 4),
                    assoc_terminal: d[6],
                    source: d[7],
                    clock_source: Some(d[8]),
                }))
            }
            (0x06, false) => {
                // bUnitID, bSourceID, bControlSize, bmaControls(n*size)..., iFeature
                need(7, "UAC1 feature unit")?;
                let size = d[5] as usize;
                if size == 0 {
                    return fail(
                        p + 5,
                        ErrorKind::Inconsistent,
                        "UAC1 feature unit bControlSize is 0",
                    );
                }
                // The control bytes fill the space between byte 6 and iFeature.
                let n = (d.len() - 7) / size;
                if (d.len() - 7) % size != 0 {
                    warnings.push(Warning {
                        offset: p,
                        message: format!(
                            "UAC1 feature unit bLength {} leaves a partial control of bControlSize {size}",
                            d.len()
                        ),
                    });
                }
                let controls = (0..n).map(|k| le_n(d, 6 + k * size, size)).collect();
                Ok(Some(AudioDescriptor::FeatureUnit {
                    offset: p,
                    id: d[3],
                    source: d[4],
                    controls,
                }))
            }
            (0x06, true) => {
                // bUnitID, bSourceID, bmaControls(4 each)..., iFeature
                need(6, "UAC2 feature unit")?;
                let n = (d.len() - 6) / 4;
                if (d.len() - 6) % 4 != 0 {
                    warnings.push(Warning {
                        offset: p,
                        message: format!(
                            "UAC2 feature unit bLength {} is not 6 + 4 per channel",
                            d.len()
                        ),
                    });
                }
                let controls = (0..n).map(|k| dw(d, 5 + 4 * k)).collect();
                Ok(Some(AudioDescriptor::FeatureUnit {
                    offset: p,
                    id: d[3],
                    source: d[4],
                    controls,
                }))
            }
            (0x0a, true) => {
                need(8, "UAC2 clock source")?;
                Ok(Some(AudioDescriptor::ClockSource {
                    offset: p,
                    id: d[3],
                    attributes: d[4],
                    controls: d[5],
                    assoc_terminal: d[6],
                }))
            }
            (0x04 | 0x05 | 0x07 | 0x08, _) | (0x09 | 0x0b | 0x0c | 0x0d, true) => {
                need(4, "audio unit")?;
                Ok(Some(AudioDescriptor::Unit {
                    offset: p,
                    subtype,
                    id: d[3],
                }))
            }
            _ => Ok(Some(AudioDescriptor::Other { offset: p, subtype })),
        },
        // Audio streaming.
        0x02 => match (subtype, v2) {
            (0x01, false) => {
                need(7, "UAC1 AS general")?;
                Ok(Some(AudioDescriptor::StreamingGeneral {
                    offset: p,
                    terminal_link: d[3],
                    format_tag: Some(w(d, 5)),
                    formats: None,
                    channels: None,
                }))
            }
            (0x01, true) => {
                need(16, "UAC2 AS general")?;
                Ok(Some(AudioDescriptor::StreamingGeneral {
                    offset: p,
                    terminal_link: d[3],
                    format_tag: None,
                    formats: Some(dw(d, 6)),
                    channels: Some(d[10]),
                }))
            }
            (0x02, _) => {
                need(4, "audio format type descriptor")?;
                let format_type = d[3];
                if format_type != 0x01 {
                    return Ok(Some(AudioDescriptor::FormatOther {
                        offset: p,
                        format_type,
                    }));
                }
                if v2 {
                    need(6, "UAC2 format type I")?;
                    return Ok(Some(AudioDescriptor::FormatTypeI {
                        offset: p,
                        channels: None,
                        subframe_size: d[4],
                        bit_resolution: d[5],
                        rates: SampleRates::Unknown,
                    }));
                }
                need(8, "UAC1 format type I")?;
                let n = d[7] as usize;
                let rates = if n == 0 {
                    need(14, "UAC1 format type I with a continuous rate range")?;
                    let (lo, hi) = (t3(d, 8), t3(d, 11));
                    if lo > hi {
                        warnings.push(Warning {
                            offset: p + 8,
                            message: format!(
                                "continuous sample rate range {lo}..{hi} is upside down"
                            ),
                        });
                        SampleRates::Continuous { min: hi, max: lo }
                    } else {
                        SampleRates::Continuous { min: lo, max: hi }
                    }
                } else {
                    need(8 + 3 * n, "UAC1 format type I")?;
                    SampleRates::Discrete((0..n).map(|k| t3(d, 8 + 3 * k)).collect())
                };
                Ok(Some(AudioDescriptor::FormatTypeI {
                    offset: p,
                    channels: Some(d[4]),
                    subframe_size: d[5],
                    bit_resolution: d[6],
                    rates,
                }))
            }
            _ => Ok(Some(AudioDescriptor::Other { offset: p, subtype })),
        },
        _ => Ok(Some(AudioDescriptor::Other { offset: p, subtype })),
    }
}

// ---------------------------------------------------------------------------
// Video (UVC 1.5 §3.7, §3.9; payload specs for the formats)

fn parse_video(
    a: &mut AltSetting,
    d: &[u8],
    p: usize,
    warnings: &mut Vec<Warning>,
    last_format: &mut Option<usize>,
) -> Result<(), ParseError> {
    if d.len() < 3 {
        return too_short(p, "video class-specific descriptor", d.len(), 3);
    }
    let subtype = d[2];
    let need = |n: usize, what: &str| -> Result<(), ParseError> {
        if d.len() < n {
            too_short(p, what, d.len(), n)
        } else {
            Ok(())
        }
    };
    let push =
        |a: &mut AltSetting, v: VideoDescriptor| a.class_info.push(ClassDescriptor::Video(v));
    match a.subclass {
        // Video control.
        0x01 => match subtype {
            0x01 => {
                need(12, "VC header")?;
                let n = d[11] as usize;
                need(12 + n, "VC header")?;
                push(
                    a,
                    VideoDescriptor::Header {
                        offset: p,
                        bcd_uvc: w(d, 3),
                        total_length: w(d, 5),
                        clock_frequency: dw(d, 7),
                        stream_interfaces: d[12..12 + n].to_vec(),
                    },
                );
            }
            0x02 => {
                need(8, "VC input terminal")?;
                let terminal_type = w(d, 4);
                let camera_controls = if terminal_type == TERMINAL_CAMERA {
                    need(15, "camera terminal")?;
                    let n = d[14] as usize;
                    need(15 + n, "camera terminal")?;
                    Some(le_n(d, 15, n))
                } else {
                    None
                };
                push(
                    a,
                    VideoDescriptor::InputTerminal {
                        offset: p,
                        id: d[3],
                        terminal_type,
                        camera_controls,
                    },
                );
            }
            0x03 => {
                need(9, "VC output terminal")?;
                push(
                    a,
                    VideoDescriptor::OutputTerminal {
                        offset: p,
                        id: d[3],
                        terminal_type: w(d, 4),
                        source: d[7],
                    },
                );
            }
            0x05 => {
                need(8, "processing unit")?;
                let n = d[7] as usize;
                need(9 + n, "processing unit")?;
                push(
                    a,
                    VideoDescriptor::ProcessingUnit {
                        offset: p,
                        id: d[3],
                        source: d[4],
                        controls: le_n(d, 8, n),
                    },
                );
            }
            0x04 | 0x06 | 0x07 => {
                need(4, "video unit")?;
                push(
                    a,
                    VideoDescriptor::Unit {
                        offset: p,
                        subtype,
                        id: d[3],
                    },
                );
            }
            _ => push(a, VideoDescriptor::Other { offset: p, subtype }),
        },
        // Video streaming.
        0x02 => match subtype {
            0x01 => {
                need(13, "VS input header")?;
                let p_formats = d[3] as usize;
                let size = d[12] as usize;
                need(13 + p_formats * size, "VS input header")?;
                push(
                    a,
                    VideoDescriptor::InputHeader {
                        offset: p,
                        num_formats: d[3],
                        endpoint: d[6],
                        terminal_link: d[8],
                    },
                );
            }
            0x04 | 0x10 => {
                let frame_based = subtype == 0x10;
                need(
                    if frame_based { 28 } else { 27 },
                    if frame_based {
                        "frame-based format"
                    } else {
                        "uncompressed format"
                    },
                )?;
                let mut guid = [0u8; 16];
                guid.copy_from_slice(&d[5..21]);
                push(
                    a,
                    VideoDescriptor::Format(UvcFormat {
                        offset: p,
                        kind: if frame_based {
                            UvcFormatKind::FrameBased
                        } else {
                            UvcFormatKind::Uncompressed
                        },
                        index: d[3],
                        num_frames: d[4],
                        name: guid_name(&guid),
                        guid: Some(guid),
                        bits_per_pixel: Some(d[21]),
                        frames: Vec::new(),
                    }),
                );
                *last_format = Some(a.class_info.len() - 1);
            }
            0x06 => {
                need(11, "MJPEG format")?;
                push(
                    a,
                    VideoDescriptor::Format(UvcFormat {
                        offset: p,
                        kind: UvcFormatKind::Mjpeg,
                        index: d[3],
                        num_frames: d[4],
                        name: "MJPEG".into(),
                        guid: None,
                        bits_per_pixel: None,
                        frames: Vec::new(),
                    }),
                );
                *last_format = Some(a.class_info.len() - 1);
            }
            0x05 | 0x07 | 0x11 => {
                let frame = parse_frame(d, p, subtype == 0x11, warnings)?;
                let want = match subtype {
                    0x05 => UvcFormatKind::Uncompressed,
                    0x07 => UvcFormatKind::Mjpeg,
                    _ => UvcFormatKind::FrameBased,
                };
                let last =
                    last_format
                        .and_then(|i| a.class_info.get_mut(i))
                        .and_then(|c| match c {
                            ClassDescriptor::Video(VideoDescriptor::Format(f)) => Some(f),
                            _ => None,
                        });
                match last {
                    Some(f) => {
                        if f.kind != want {
                            warnings.push(Warning {
                                offset: p,
                                message: format!(
                                    "frame descriptor subtype 0x{subtype:02x} follows a {:?} format",
                                    f.kind
                                ),
                            });
                        }
                        f.frames.push(frame);
                    }
                    None => warnings.push(Warning {
                        offset: p,
                        message: "frame descriptor before any format descriptor: ignored".into(),
                    }),
                }
            }
            _ => push(a, VideoDescriptor::Other { offset: p, subtype }),
        },
        _ => push(a, VideoDescriptor::Other { offset: p, subtype }),
    }
    Ok(())
}

/// Uncompressed and MJPEG frames (UVC 1.5 §3.1.2 of the payload specs) and
/// frame-based frames share the interval layout from byte 26; they differ
/// in where the default interval and the interval type sit.
fn parse_frame(
    d: &[u8],
    p: usize,
    frame_based: bool,
    warnings: &mut Vec<Warning>,
) -> Result<UvcFrame, ParseError> {
    let what = if frame_based {
        "frame-based frame"
    } else {
        "video frame"
    };
    if d.len() < 26 {
        return too_short(p, what, d.len(), 26);
    }
    let (default_interval, n) = if frame_based {
        (dw(d, 17), d[21] as usize)
    } else {
        (dw(d, 21), d[25] as usize)
    };
    let intervals = if n == 0 {
        if d.len() < 38 {
            return too_short(p, &format!("{what} with continuous intervals"), d.len(), 38);
        }
        let (min, max, step) = (dw(d, 26), dw(d, 30), dw(d, 34));
        if min > max || min == 0 {
            warnings.push(Warning {
                offset: p + 26,
                message: format!(
                    "continuous frame intervals min {min} max {max} step {step} are odd"
                ),
            });
        }
        FrameIntervals::Continuous {
            min: min.min(max),
            max: max.max(min),
            step,
        }
    } else {
        let need = 26 + 4 * n;
        if d.len() < need {
            return too_short(p, what, d.len(), need);
        }
        let v: Vec<u32> = (0..n).map(|k| dw(d, 26 + 4 * k)).collect();
        if v.contains(&0) {
            warnings.push(Warning {
                offset: p + 26,
                message: "a frame interval of 0 (no frame rate)".into(),
            });
        }
        FrameIntervals::Discrete(v)
    };
    Ok(UvcFrame {
        offset: p,
        index: d[3],
        width: w(d, 5),
        height: w(d, 7),
        default_interval,
        intervals,
    })
}

/// bcdDevice as firmware text: the high byte's two BCD digits without a
/// leading zero, a dot, the low byte's two digits ("0x0123" → "1.23",
/// "0x1000" → "10.00"). Nibbles above 9 (not BCD) print as hex letters.
pub fn format_bcd(bcd: u16) -> String {
    format!("{:x}.{:02x}", bcd >> 8, bcd & 0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd() {
        assert_eq!(format_bcd(0x0123), "1.23");
        assert_eq!(format_bcd(0x1000), "10.00");
        assert_eq!(format_bcd(0x0002), "0.02");
    }

    #[test]
    fn guid_names() {
        let mut g = [0u8; 16];
        g[..4].copy_from_slice(b"YUY2");
        g[4..].copy_from_slice(&FOURCC_GUID_SUFFIX);
        assert_eq!(guid_name(&g), "YUY2");
        g[4] = 1;
        assert_eq!(guid_name(&g), "32595559-0001-0010-8000-00aa00389b71");
    }

    #[test]
    fn empty_and_loops() {
        assert_eq!(parse(&[]).unwrap_err().kind, ErrorKind::Truncated);
        assert_eq!(parse(&[0]).unwrap_err().kind, ErrorKind::Loop);
        let mut dev = vec![18, 1, 0, 2, 0, 0, 0, 64, 9, 18, 1, 0, 0, 1, 1, 2, 3, 1];
        dev.extend([9, 2, 11, 0, 0, 1, 0, 0x80, 50, 0, 4]);
        let e = parse(&dev).unwrap_err();
        assert_eq!((e.offset, e.kind), (27, ErrorKind::Loop));
    }

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
