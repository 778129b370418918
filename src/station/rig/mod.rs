//! The rig protocol: framing, messages and sans-IO sessions.
//!
//! Owns the bytes between the host and a rig on a USB serial port (CDC-ACM):
//! COBS frames with a CRC-32, the messages of docs/rig-protocol.md, a
//! streaming decoder that resynchronises after garbage, and the host's and
//! the rig's session state machines. It does no I/O and reads no clock: it
//! takes bytes and times and returns bytes and events, so the same code runs
//! against a serial port, a pseudo-terminal or a test's byte vectors.

pub mod codec;
pub mod session;

pub use codec::{
    decode_frame, stimulus_chunks, Decoder, DecoderStats, ErrorCode, Frame, FrameError, HelloReply,
    Message, PROTOCOL_VERSION,
};
pub use session::{Command, Event, HandshakeState, HostSession, RigSession, StimulusStore};
