//! certlab's rig protocol, version 1 (docs/rig-protocol.md is the normative
//! text), shared by the host (certlab) and the rig's firmware.
//!
//! Owns the bytes between a host and a rig on a USB serial port (CDC-ACM):
//! COBS frames with a CRC-32 and the messages they carry ([`codec`]), the
//! rig's session ([`rig`]) and its stimulus memory ([`store`]), and, with
//! the `alloc` feature, the host's session ([`host`]). The sessions are
//! sans-IO state machines in the manner of quinn-proto: they take bytes
//! and times, return bytes and events, and own their timers
//! (`poll_timeout`, `handle_timeout`, `poll_transmit`). Nothing here does
//! I/O, reads a clock, or knows the host's sampling core; without default
//! features it needs neither `std` nor an allocator, and builds for the
//! RP2040 (`thumbv6m-none-eabi`).

#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod codec;
#[cfg(feature = "alloc")]
pub mod host;
pub mod rig;
pub mod store;
pub mod text;
pub mod time;

pub use codec::{
    sensor, stimulus_chunks, Decoder, DecoderStats, ErrorCode, Frame, FrameError, HelloReply,
    Message, Rates, Samples, PROTOCOL_VERSION,
};
#[cfg(feature = "alloc")]
pub use host::{
    CommandError, HostConfig, HostEvent, HostSession, HostStats, LinkState, RigHello, SampleBlock,
};
pub use rig::{Command, Refusal, RigConfig, RigHandler, RigSession, RigStats};
pub use store::StimulusStore;
pub use time::{HostTime, RigTime, SyncExchange};
