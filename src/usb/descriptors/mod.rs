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
//!
//! The parts, each using only those listed before it: `codes` (descriptor
//! types, classes, terminal types), `model` (the types, errors and
//! warnings), `read` (bounds-checked field reads), `uac` and `uvc` (the
//! audio and video class-specific layouts), `walk` (the buffer, descriptor
//! by descriptor: [`parse`]), `summary` (classes, audio, video). This file
//! only names them.

mod codes;
mod model;
mod read;
mod summary;
mod uac;
mod uvc;
mod walk;

pub use codes::{class, desc_type, TERMINAL_CAMERA, TERMINAL_USB_STREAMING};
pub use model::{
    format_bcd, AltSetting, AudioDescriptor, ClassDescriptor, Configuration, Descriptors,
    DeviceDescriptor, Endpoint, EndpointDirection, ErrorKind, FrameIntervals, HidClassDescriptor,
    Interface, InterfaceAssociation, ParseError, RawDescriptor, SampleRates, TransferType,
    UacVersion, UvcFormat, UvcFormatKind, UvcFrame, VideoDescriptor, Warning,
};
pub use summary::{
    AudioDirection, AudioStream, AudioSummary, VideoFormatSummary, VideoFrameSummary, VideoSummary,
    STANDARD_RATES,
};
pub use uvc::guid_name;
pub use walk::parse;
