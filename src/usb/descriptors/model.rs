//! The model of a device's descriptors, and the errors and warnings of
//! reading them.
//!
//! Owns the types the walk fills in — [`Descriptors`], configurations,
//! interface associations, interfaces and their alternate settings,
//! endpoints, the class-specific descriptors of USB Audio, USB Video and
//! HID — and [`ParseError`] and [`Warning`]. It parses nothing (that is
//! `walk`, `uac` and `uvc`) and summarises nothing (that is `summary`); it
//! depends only on `codes` and `usb::at_byte`.

use std::fmt;

use serde::Serialize;

use super::codes::desc_type;
use crate::usb::at_byte::{write_at, AtByte};

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
        write_at(f, self.offset, &self.message)
    }
}

impl std::error::Error for ParseError {}

/// A recoverable oddity, with the byte offset of the descriptor it concerns.
pub type Warning = AtByte;

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

impl Descriptors {
    /// Every alternate setting of every interface of every configuration.
    pub fn alt_settings(&self) -> impl Iterator<Item = &AltSetting> {
        self.configurations
            .iter()
            .flat_map(|c| c.interfaces.iter())
            .flat_map(|i| i.alt_settings.iter())
    }
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
        assert_eq!(format_bcd(0x1a05), "1a.05");
    }
}
