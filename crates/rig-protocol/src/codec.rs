//! The rig protocol's frames: messages to bytes, and a streaming decoder back.
//!
//! Wire format (docs/rig-protocol.md is the normative text):
//! `COBS(version u8 | type u8 | seq u16 | payload | CRC-32/ISO-HDLC u32) 0x00`,
//! all integers little-endian. Messages borrow their variable parts (samples,
//! strings) from the caller's data when encoding and from the decoder's
//! buffer when decoding, so neither direction allocates. The decoder never
//! panics and holds at most one frame of input in a fixed buffer.

use core::fmt;

use crate::time::RigTime;

/// The protocol version this code speaks (byte 0 of every frame).
pub const PROTOCOL_VERSION: u8 = 1;
/// Bytes before the payload: version, type, sequence.
pub const HEADER_LEN: usize = 4;
/// Bytes of the trailing CRC-32.
pub const CRC_LEN: usize = 4;
/// Largest decoded frame (header + payload + CRC) either side accepts.
pub const MAX_FRAME_LEN: usize = 600;
/// Largest decoded frame the host sends (a rig needs only this much receive buffer).
pub const MAX_HOST_FRAME_LEN: usize = 512;
/// Largest COBS-encoded frame, without its 0x00 delimiter.
pub const MAX_ENCODED_LEN: usize = cobs::max_encoding_length(MAX_FRAME_LEN);
/// Largest COBS-encoded host frame, without its delimiter: a rig's receive buffer.
pub const MAX_HOST_ENCODED_LEN: usize = cobs::max_encoding_length(MAX_HOST_FRAME_LEN);
/// Room for any encoded frame with its delimiter: the size of an encode buffer.
pub const MAX_WIRE_LEN: usize = MAX_ENCODED_LEN + 1;
/// Most samples in one `StimulusData` chunk (keeps host frames within 512 bytes).
pub const MAX_CHUNK_SAMPLES: usize = 240;
/// Most samples in one `SampleBlock`.
pub const MAX_BLOCK_SAMPLES: usize = 256;
/// Most sample rates listed in a `HelloReply`.
pub const MAX_RATES: usize = 16;
/// Longest identity string (kind, firmware, serial) in a `HelloReply`, bytes.
pub const MAX_IDENT_LEN: usize = 64;
/// Longest `Error` message, bytes.
pub const MAX_ERROR_TEXT_LEN: usize = 128;

/// CRC-32/ISO-HDLC (the zlib/Ethernet CRC): poly 0x04C11DB7, init 0xFFFFFFFF,
/// reflected in and out, xorout 0xFFFFFFFF, check("123456789") = 0xCBF43926.
pub const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Message type bytes. Host → rig below 0x80, rig → host from 0x80.
pub mod msg_type {
    pub const HELLO: u8 = 0x01;
    pub const SYNC_REQUEST: u8 = 0x02;
    pub const STIMULUS_DATA: u8 = 0x03;
    pub const PLAY: u8 = 0x04;
    pub const FLASH_LED: u8 = 0x05;
    pub const PRESS_BUTTON: u8 = 0x06;
    pub const SET_LOOPBACK: u8 = 0x07;
    pub const STREAM_MIC: u8 = 0x08;
    pub const STREAM_PHOTODIODE: u8 = 0x09;
    pub const HELLO_REPLY: u8 = 0x81;
    pub const SYNC_REPLY: u8 = 0x82;
    pub const ACK: u8 = 0x83;
    pub const ERROR: u8 = 0x84;
    pub const ONSET: u8 = 0x85;
    pub const SAMPLE_BLOCK: u8 = 0x86;
    pub const HEARTBEAT: u8 = 0x87;
}

/// Sensor and actuator ids (`Onset.sensor`, `SampleBlock.stream`); bit `1 << id`
/// of `HelloReply.sensors` says the rig has it.
pub mod sensor {
    pub const MIC: u8 = 0;
    pub const SPEAKER: u8 = 1;
    pub const PHOTODIODE: u8 = 2;
    pub const LED: u8 = 3;
    pub const BUTTON: u8 = 4;
}

/// Why the rig refused a command: the typed reason a host acts on (whose
/// fault a shot is follows from the code, never from the message text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The scheduled rig time had already passed when the command arrived.
    Late,
    /// The rig does not implement the message (or the sensor it names), or
    /// the frame was of another protocol version.
    Unsupported,
    /// A field is out of range (rate not offered, a chunk that does not
    /// continue its stimulus, Play of an incomplete stimulus).
    BadParameter,
    /// The rig has no room in its stimulus memory.
    BufferFull,
    /// The rig failed for a reason of its own.
    Internal,
    /// The rig has restarted since the host's Hello: its clock began again
    /// at zero and it forgot its stimuli and streams. Everything but Hello
    /// gets this answer until the next Hello.
    Restarted,
    /// Play named a stimulus id the rig does not hold.
    UnknownStimulus,
    /// The actuator or speaker is already scheduled at an overlapping time,
    /// or the schedule queue is full.
    Busy,
    /// A code this version does not know.
    Other(u16),
}

impl ErrorCode {
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::Late => 1,
            ErrorCode::Unsupported => 2,
            ErrorCode::BadParameter => 3,
            ErrorCode::BufferFull => 4,
            ErrorCode::Internal => 5,
            ErrorCode::Restarted => 6,
            ErrorCode::UnknownStimulus => 7,
            ErrorCode::Busy => 8,
            ErrorCode::Other(c) => c,
        }
    }
    pub fn from_code(c: u16) -> ErrorCode {
        match c {
            1 => ErrorCode::Late,
            2 => ErrorCode::Unsupported,
            3 => ErrorCode::BadParameter,
            4 => ErrorCode::BufferFull,
            5 => ErrorCode::Internal,
            6 => ErrorCode::Restarted,
            7 => ErrorCode::UnknownStimulus,
            8 => ErrorCode::Busy,
            c => ErrorCode::Other(c),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Late => f.write_str("late"),
            ErrorCode::Unsupported => f.write_str("unsupported"),
            ErrorCode::BadParameter => f.write_str("bad parameter"),
            ErrorCode::BufferFull => f.write_str("buffer full"),
            ErrorCode::Internal => f.write_str("internal"),
            ErrorCode::Restarted => f.write_str("restarted"),
            ErrorCode::UnknownStimulus => f.write_str("unknown stimulus"),
            ErrorCode::Busy => f.write_str("busy"),
            ErrorCode::Other(c) => write!(f, "error {c}"),
        }
    }
}

/// i16 PCM samples: the caller's (when encoding) or the wire's little-endian
/// bytes (when decoded). Two sample lists are equal when their values are.
#[derive(Debug, Clone, Copy)]
pub enum Samples<'a> {
    Pcm(&'a [i16]),
    /// `2 × n` bytes, little-endian.
    Wire(&'a [u8]),
}

impl<'a> Samples<'a> {
    pub fn len(&self) -> usize {
        match self {
            Samples::Pcm(s) => s.len(),
            Samples::Wire(b) => b.len() / 2,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, i: usize) -> Option<i16> {
        match self {
            Samples::Pcm(s) => s.get(i).copied(),
            Samples::Wire(b) => b
                .get(2 * i..2 * i + 2)
                .map(|p| i16::from_le_bytes([p[0], p[1]])),
        }
    }
    pub fn iter(&self) -> impl ExactSizeIterator<Item = i16> + 'a {
        let s = *self;
        (0..s.len()).map(move |i| s.get(i).unwrap_or(0))
    }
    /// Copy the samples into `out`; the number copied (the shorter length).
    pub fn copy_to(&self, out: &mut [i16]) -> usize {
        let n = self.len().min(out.len());
        for (i, d) in out[..n].iter_mut().enumerate() {
            *d = self.get(i).unwrap_or(0);
        }
        n
    }
}

impl PartialEq for Samples<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}
impl Eq for Samples<'_> {}

/// u32 sample rates: the caller's, or the wire's little-endian bytes.
#[derive(Debug, Clone, Copy)]
pub enum Rates<'a> {
    List(&'a [u32]),
    /// `4 × n` bytes, little-endian.
    Wire(&'a [u8]),
}

impl<'a> Rates<'a> {
    pub fn len(&self) -> usize {
        match self {
            Rates::List(r) => r.len(),
            Rates::Wire(b) => b.len() / 4,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, i: usize) -> Option<u32> {
        match self {
            Rates::List(r) => r.get(i).copied(),
            Rates::Wire(b) => b
                .get(4 * i..4 * i + 4)
                .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]])),
        }
    }
    pub fn iter(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let s = *self;
        (0..s.len()).map(move |i| s.get(i).unwrap_or(0))
    }
    pub fn contains(&self, rate: u32) -> bool {
        self.iter().any(|r| r == rate)
    }
}

impl PartialEq for Rates<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}
impl Eq for Rates<'_> {}

/// What the rig says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloReply<'a> {
    /// Bitmask of `1 << sensor::*`.
    pub sensors: u8,
    /// Calibrated delay of the acoustic loopback, µs.
    pub loopback_delay_us: u32,
    /// Stimulus memory, samples (the largest `StimulusData.total` it accepts).
    pub stimulus_capacity: u32,
    /// Sample rates the reference microphone streams at, Hz (at most [`MAX_RATES`]).
    pub mic_sample_rates: Rates<'a>,
    pub kind: &'a str,
    pub firmware: &'a str,
    pub serial: &'a str,
}

/// One protocol message. Field limits (strings, sample counts) are those of
/// docs/rig-protocol.md; encoding truncates anything longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    // host → rig
    Hello,
    SyncRequest {
        cookie: u32,
    },
    /// Samples `offset..offset + samples.len()` of stimulus `id`, `total` samples long.
    StimulusData {
        id: u16,
        total: u32,
        offset: u32,
        samples: Samples<'a>,
    },
    Play {
        at: RigTime,
        sample_rate: u32,
        id: u16,
    },
    FlashLed {
        at: RigTime,
        duration_us: u32,
    },
    PressButton {
        at: RigTime,
        hold_us: u32,
    },
    SetLoopback {
        on: bool,
    },
    StreamMic {
        sample_rate: u32,
        on: bool,
    },
    StreamPhotodiode {
        sample_rate: u32,
        on: bool,
    },
    // rig → host
    HelloReply(HelloReply<'a>),
    SyncReply {
        cookie: u32,
        rig: RigTime,
    },
    Ack {
        seq: u16,
    },
    Error {
        seq: u16,
        code: ErrorCode,
        message: &'a str,
    },
    Onset {
        sensor: u8,
        at: RigTime,
    },
    SampleBlock {
        stream: u8,
        seq: u32,
        t_first: RigTime,
        samples: Samples<'a>,
    },
    Heartbeat {
        now: RigTime,
    },
    /// A message type this version does not know (or any frame of another
    /// protocol version), with its payload as received.
    Unknown {
        msg_type: u8,
        payload: &'a [u8],
    },
}

/// A decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The sender's protocol version. When it is not [`PROTOCOL_VERSION`] the
    /// payload is not interpreted and `message` is `Unknown`.
    pub version: u8,
    /// The sender's frame sequence number.
    pub seq: u16,
    pub message: Message<'a>,
}

/// Why a frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    BadCobs,
    BadCrc,
    TooLong,
    Truncated,
    Malformed { msg_type: u8 },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadCobs => f.write_str("bad COBS encoding"),
            FrameError::BadCrc => f.write_str("bad CRC"),
            FrameError::TooLong => write!(f, "frame longer than {MAX_FRAME_LEN} bytes"),
            FrameError::Truncated => f.write_str("frame shorter than header and CRC"),
            FrameError::Malformed { msg_type } => {
                write!(f, "malformed payload for message type {msg_type:#04x}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

/// The buffer given to an encoder is too small for the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall;

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the buffer is too small for the frame")
    }
}

/// Counters of a [`Decoder`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DecoderStats {
    /// Frames decoded (including `Unknown` ones).
    pub frames: u64,
    pub bad_cobs: u64,
    pub bad_crc: u64,
    pub too_long: u64,
    pub truncated: u64,
    /// CRC-valid frames whose payload does not fit their type.
    pub malformed: u64,
    /// Bytes of dropped frames (delimiters not counted).
    pub skipped_bytes: u64,
}

impl DecoderStats {
    /// Frames dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.bad_cobs + self.bad_crc + self.too_long + self.truncated + self.malformed
    }
}

/// Appends to a fixed buffer; what does not fit is dropped (callers size
/// the buffer for the largest frame, so nothing is).
struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Out<'_> {
    fn bytes(&mut self, b: &[u8]) {
        let n = b.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
    }
    fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    fn str(&mut self, s: &str, max: usize) {
        let mut end = s.len().min(max).min(255);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u8(end as u8);
        self.bytes(&s.as_bytes()[..end]);
    }
    fn samples(&mut self, samples: &Samples<'_>, max: usize) {
        let n = samples.len().min(max);
        self.bytes(&(n as u16).to_le_bytes());
        match samples {
            Samples::Wire(b) => self.bytes(&b[..2 * n]),
            Samples::Pcm(s) => {
                for v in &s[..n] {
                    self.bytes(&v.to_le_bytes());
                }
            }
        }
    }
}

impl Message<'_> {
    /// The message type byte.
    pub fn msg_type(&self) -> u8 {
        use msg_type::*;
        match self {
            Message::Hello => HELLO,
            Message::SyncRequest { .. } => SYNC_REQUEST,
            Message::StimulusData { .. } => STIMULUS_DATA,
            Message::Play { .. } => PLAY,
            Message::FlashLed { .. } => FLASH_LED,
            Message::PressButton { .. } => PRESS_BUTTON,
            Message::SetLoopback { .. } => SET_LOOPBACK,
            Message::StreamMic { .. } => STREAM_MIC,
            Message::StreamPhotodiode { .. } => STREAM_PHOTODIODE,
            Message::HelloReply(_) => HELLO_REPLY,
            Message::SyncReply { .. } => SYNC_REPLY,
            Message::Ack { .. } => ACK,
            Message::Error { .. } => ERROR,
            Message::Onset { .. } => ONSET,
            Message::SampleBlock { .. } => SAMPLE_BLOCK,
            Message::Heartbeat { .. } => HEARTBEAT,
            Message::Unknown { msg_type, .. } => *msg_type,
        }
    }

    /// Whether the host sends this message (type below 0x80).
    pub fn is_from_host(&self) -> bool {
        self.msg_type() < 0x80
    }

    fn payload(&self, out: &mut Out<'_>) {
        match self {
            Message::Hello => {}
            Message::SyncRequest { cookie } => out.bytes(&cookie.to_le_bytes()),
            Message::StimulusData {
                id,
                total,
                offset,
                samples,
            } => {
                out.bytes(&id.to_le_bytes());
                out.bytes(&total.to_le_bytes());
                out.bytes(&offset.to_le_bytes());
                out.samples(samples, MAX_CHUNK_SAMPLES);
            }
            Message::Play {
                at,
                sample_rate,
                id,
            } => {
                out.bytes(&at.0.to_le_bytes());
                out.bytes(&sample_rate.to_le_bytes());
                out.bytes(&id.to_le_bytes());
            }
            Message::FlashLed { at, duration_us: d } | Message::PressButton { at, hold_us: d } => {
                out.bytes(&at.0.to_le_bytes());
                out.bytes(&d.to_le_bytes());
            }
            Message::SetLoopback { on } => out.u8(*on as u8),
            Message::StreamMic { sample_rate, on }
            | Message::StreamPhotodiode { sample_rate, on } => {
                out.bytes(&sample_rate.to_le_bytes());
                out.u8(*on as u8);
            }
            Message::HelloReply(h) => {
                out.u8(h.sensors);
                out.bytes(&h.loopback_delay_us.to_le_bytes());
                out.bytes(&h.stimulus_capacity.to_le_bytes());
                let n = h.mic_sample_rates.len().min(MAX_RATES);
                out.u8(n as u8);
                for r in h.mic_sample_rates.iter().take(n) {
                    out.bytes(&r.to_le_bytes());
                }
                out.str(h.kind, MAX_IDENT_LEN);
                out.str(h.firmware, MAX_IDENT_LEN);
                out.str(h.serial, MAX_IDENT_LEN);
            }
            Message::SyncReply { cookie, rig } => {
                out.bytes(&cookie.to_le_bytes());
                out.bytes(&rig.0.to_le_bytes());
            }
            Message::Ack { seq } => out.bytes(&seq.to_le_bytes()),
            Message::Error { seq, code, message } => {
                out.bytes(&seq.to_le_bytes());
                out.bytes(&code.code().to_le_bytes());
                out.str(message, MAX_ERROR_TEXT_LEN);
            }
            Message::Onset { sensor, at } => {
                out.u8(*sensor);
                out.bytes(&at.0.to_le_bytes());
            }
            Message::SampleBlock {
                stream,
                seq,
                t_first,
                samples,
            } => {
                out.u8(*stream);
                out.bytes(&seq.to_le_bytes());
                out.bytes(&t_first.0.to_le_bytes());
                out.samples(samples, MAX_BLOCK_SAMPLES);
            }
            Message::Heartbeat { now } => out.bytes(&now.0.to_le_bytes()),
            Message::Unknown { payload, .. } => {
                let n = payload.len().min(MAX_FRAME_LEN - HEADER_LEN - CRC_LEN);
                out.bytes(&payload[..n]);
            }
        }
    }

    /// Append one complete frame (COBS-encoded, 0x00-terminated) carrying
    /// this message with sequence number `seq`, in protocol version 1.
    #[cfg(feature = "alloc")]
    pub fn encode(&self, seq: u16, out: &mut alloc::vec::Vec<u8>) {
        encode_frame_vec(PROTOCOL_VERSION, seq, self, out)
    }

    /// The whole frame of this message as a new vector.
    #[cfg(feature = "alloc")]
    pub fn to_wire(&self, seq: u16) -> alloc::vec::Vec<u8> {
        let mut v = alloc::vec::Vec::with_capacity(32);
        self.encode(seq, &mut v);
        v
    }
}

/// The unencoded frame (header, payload, CRC) of a message in protocol
/// `version` (the payload layout is always version 1's): what COBS wraps.
/// `out` needs [`MAX_FRAME_LEN`] bytes; returns the length.
pub fn raw_frame_into(version: u8, seq: u16, msg: &Message<'_>, out: &mut [u8]) -> usize {
    let mut o = Out { buf: out, len: 0 };
    o.u8(version);
    o.u8(msg.msg_type());
    o.bytes(&seq.to_le_bytes());
    msg.payload(&mut o);
    let body = o.len;
    let crc = CRC.checksum(&o.buf[..body]);
    o.bytes(&crc.to_le_bytes());
    o.len
}

/// Encode one frame of protocol `version` into `out` (COBS, then the 0x00
/// delimiter); the number of bytes written. [`MAX_WIRE_LEN`] always suffices.
pub fn encode_frame(
    version: u8,
    seq: u16,
    msg: &Message<'_>,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut raw = [0u8; MAX_FRAME_LEN];
    let n = raw_frame_into(version, seq, msg, &mut raw);
    let k = cobs::try_encode(&raw[..n], out).map_err(|_| BufferTooSmall)?;
    *out.get_mut(k).ok_or(BufferTooSmall)? = 0;
    Ok(k + 1)
}

/// Append one frame of protocol `version` to `out`.
#[cfg(feature = "alloc")]
pub fn encode_frame_vec(version: u8, seq: u16, msg: &Message<'_>, out: &mut alloc::vec::Vec<u8>) {
    let mut buf = [0u8; MAX_WIRE_LEN];
    if let Ok(n) = encode_frame(version, seq, msg, &mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
}

/// The unencoded frame of a version-1 message as a vector.
#[cfg(feature = "alloc")]
pub fn raw_frame(seq: u16, msg: &Message<'_>) -> alloc::vec::Vec<u8> {
    let mut raw = [0u8; MAX_FRAME_LEN];
    let n = raw_frame_into(PROTOCOL_VERSION, seq, msg, &mut raw);
    raw[..n].to_vec()
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }
    fn time(&mut self) -> Option<RigTime> {
        self.u64().map(RigTime)
    }
    fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.u8()? as usize;
        core::str::from_utf8(self.take(n)?).ok()
    }
    fn samples(&mut self, max: usize) -> Option<Samples<'a>> {
        let n = self.u16()? as usize;
        if n > max {
            return None;
        }
        Some(Samples::Wire(self.take(2 * n)?))
    }
}

/// Parse a payload of version-1 message type `t`. Bytes after the fields a
/// type defines are ignored (room for compatible extensions).
pub fn parse_message(t: u8, payload: &[u8]) -> Result<Message<'_>, FrameError> {
    parse_payload(t, payload).ok_or(FrameError::Malformed { msg_type: t })
}

fn parse_payload(t: u8, payload: &[u8]) -> Option<Message<'_>> {
    use msg_type::*;
    let mut r = Reader(payload);
    Some(match t {
        HELLO => Message::Hello,
        SYNC_REQUEST => Message::SyncRequest { cookie: r.u32()? },
        STIMULUS_DATA => Message::StimulusData {
            id: r.u16()?,
            total: r.u32()?,
            offset: r.u32()?,
            samples: r.samples(MAX_FRAME_LEN / 2)?,
        },
        PLAY => Message::Play {
            at: r.time()?,
            sample_rate: r.u32()?,
            id: r.u16()?,
        },
        FLASH_LED => Message::FlashLed {
            at: r.time()?,
            duration_us: r.u32()?,
        },
        PRESS_BUTTON => Message::PressButton {
            at: r.time()?,
            hold_us: r.u32()?,
        },
        SET_LOOPBACK => Message::SetLoopback { on: r.bool()? },
        STREAM_MIC => Message::StreamMic {
            sample_rate: r.u32()?,
            on: r.bool()?,
        },
        STREAM_PHOTODIODE => Message::StreamPhotodiode {
            sample_rate: r.u32()?,
            on: r.bool()?,
        },
        HELLO_REPLY => {
            let sensors = r.u8()?;
            let loopback_delay_us = r.u32()?;
            let stimulus_capacity = r.u32()?;
            let n = r.u8()? as usize;
            if n > MAX_RATES {
                return None;
            }
            let mic_sample_rates = Rates::Wire(r.take(4 * n)?);
            Message::HelloReply(HelloReply {
                sensors,
                loopback_delay_us,
                stimulus_capacity,
                mic_sample_rates,
                kind: r.str()?,
                firmware: r.str()?,
                serial: r.str()?,
            })
        }
        SYNC_REPLY => Message::SyncReply {
            cookie: r.u32()?,
            rig: r.time()?,
        },
        ACK => Message::Ack { seq: r.u16()? },
        ERROR => Message::Error {
            seq: r.u16()?,
            code: ErrorCode::from_code(r.u16()?),
            message: r.str()?,
        },
        ONSET => Message::Onset {
            sensor: r.u8()?,
            at: r.time()?,
        },
        SAMPLE_BLOCK => Message::SampleBlock {
            stream: r.u8()?,
            seq: r.u32()?,
            t_first: r.time()?,
            samples: r.samples(MAX_BLOCK_SAMPLES)?,
        },
        HEARTBEAT => Message::Heartbeat { now: r.time()? },
        _ => Message::Unknown {
            msg_type: t,
            payload,
        },
    })
}

/// Decode one COBS-encoded frame, without its 0x00 delimiter. `buf` is
/// decoded in place (its contents are clobbered) and the frame borrows it.
pub fn decode_frame_in_place(buf: &mut [u8]) -> Result<Frame<'_>, FrameError> {
    if buf.len() > MAX_ENCODED_LEN {
        return Err(FrameError::TooLong);
    }
    if buf.contains(&0) {
        return Err(FrameError::BadCobs);
    }
    let n = cobs::decode_in_place(buf).map_err(|_| FrameError::BadCobs)?;
    let raw = buf.get(..n).ok_or(FrameError::BadCobs)?;
    if raw.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLong);
    }
    if raw.len() < HEADER_LEN + CRC_LEN {
        return Err(FrameError::Truncated);
    }
    let (body, crc) = raw.split_at(raw.len() - CRC_LEN);
    if CRC.checksum(body).to_le_bytes() != crc {
        return Err(FrameError::BadCrc);
    }
    let (version, t, seq) = (body[0], body[1], u16::from_le_bytes([body[2], body[3]]));
    let payload = &body[HEADER_LEN..];
    let message = if version == PROTOCOL_VERSION {
        parse_message(t, payload)?
    } else {
        Message::Unknown {
            msg_type: t,
            payload,
        }
    };
    Ok(Frame {
        version,
        seq,
        message,
    })
}

/// A streaming frame decoder over a fixed buffer of `N` bytes: the largest
/// encoded frame it accepts ([`MAX_ENCODED_LEN`] for a host,
/// [`MAX_HOST_ENCODED_LEN`] for a rig).
///
/// Bytes up to each 0x00 form one frame; empty frames (consecutive
/// delimiters) are ignored. A frame that fails COBS, length or CRC checks is
/// returned as an error, counted and skipped; decoding resumes after the next
/// delimiter. A frame growing beyond `N` bytes is reported as `TooLong` at
/// once and the rest of it is discarded unbuffered.
#[derive(Debug, Clone)]
pub struct Decoder<const N: usize = MAX_ENCODED_LEN> {
    buf: [u8; N],
    len: usize,
    discarding: bool,
    stats: DecoderStats,
}

impl<const N: usize> Default for Decoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Decoder<N> {
    pub const fn new() -> Self {
        Decoder {
            buf: [0; N],
            len: 0,
            discarding: false,
            stats: DecoderStats {
                frames: 0,
                bad_cobs: 0,
                bad_crc: 0,
                too_long: 0,
                truncated: 0,
                malformed: 0,
                skipped_bytes: 0,
            },
        }
    }

    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Bytes held for a frame not yet terminated.
    pub fn partial_len(&self) -> usize {
        self.len
    }

    /// Consume `input` up to the end of the next frame and return it (or
    /// why it was dropped), advancing `input` past what was consumed; `None`
    /// once `input` is used up with no frame completed (a partial frame is
    /// kept for the next call). The frame borrows the decoder's buffer:
    /// finish with it before the next call.
    pub fn decode<'d>(&'d mut self, input: &mut &[u8]) -> Option<Result<Frame<'d>, FrameError>> {
        while let Some((&b, rest)) = input.split_first() {
            *input = rest;
            if b == 0 {
                if self.discarding {
                    self.discarding = false;
                    continue;
                }
                if self.len == 0 {
                    continue;
                }
                let n = core::mem::replace(&mut self.len, 0);
                let r = decode_frame_in_place(&mut self.buf[..n]);
                match &r {
                    Ok(_) => self.stats.frames += 1,
                    Err(e) => {
                        count(&mut self.stats, *e);
                        self.stats.skipped_bytes += n as u64;
                    }
                }
                return Some(r);
            }
            if self.discarding {
                self.stats.skipped_bytes += 1;
            } else if self.len >= N {
                self.stats.skipped_bytes += self.len as u64 + 1;
                count(&mut self.stats, FrameError::TooLong);
                self.len = 0;
                self.discarding = true;
                return Some(Err(FrameError::TooLong));
            } else {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        None
    }
}

fn count(stats: &mut DecoderStats, e: FrameError) {
    let c = match e {
        FrameError::BadCobs => &mut stats.bad_cobs,
        FrameError::BadCrc => &mut stats.bad_crc,
        FrameError::TooLong => &mut stats.too_long,
        FrameError::Truncated => &mut stats.truncated,
        FrameError::Malformed { .. } => &mut stats.malformed,
    };
    *c += 1;
}

/// The `StimulusData` chunks that upload `samples` as stimulus `id`, in
/// order (one empty chunk for an empty stimulus).
pub fn stimulus_chunks(id: u16, samples: &[i16]) -> StimulusChunks<'_> {
    StimulusChunks {
        id,
        samples,
        offset: 0,
        done: false,
    }
}

/// Iterator of [`stimulus_chunks`].
#[derive(Debug, Clone)]
pub struct StimulusChunks<'a> {
    id: u16,
    samples: &'a [i16],
    offset: usize,
    done: bool,
}

impl<'a> Iterator for StimulusChunks<'a> {
    type Item = Message<'a>;
    fn next(&mut self) -> Option<Message<'a>> {
        if self.done {
            return None;
        }
        let end = (self.offset + MAX_CHUNK_SAMPLES).min(self.samples.len());
        let m = Message::StimulusData {
            id: self.id,
            total: self.samples.len() as u32,
            offset: self.offset as u32,
            samples: Samples::Pcm(&self.samples[self.offset..end]),
        };
        self.offset = end;
        self.done = end >= self.samples.len();
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(CRC.checksum(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_full_sample_block_round_trips_within_the_limits() {
        let pcm: [i16; 256] = core::array::from_fn(|i| (i as i16) * 100 - 12_800);
        let m = Message::SampleBlock {
            stream: sensor::MIC,
            seq: 7,
            t_first: RigTime(1_000_000),
            samples: Samples::Pcm(&pcm),
        };
        let mut out = [0u8; MAX_WIRE_LEN];
        let n = encode_frame(PROTOCOL_VERSION, 3, &m, &mut out).unwrap();
        assert!(n <= MAX_WIRE_LEN);
        assert_eq!(out[..n].iter().filter(|b| **b == 0).count(), 1);
        let mut d: Decoder = Decoder::new();
        let mut input = &out[..n];
        let f = d.decode(&mut input).unwrap().unwrap();
        assert_eq!((f.version, f.seq), (1, 3));
        assert_eq!(f.message, m);
        assert!(input.is_empty());
    }

    #[test]
    fn oversize_frame_is_dropped_and_resynced() {
        let mut d: Decoder = Decoder::new();
        let junk = [0x55u8; 5000];
        let mut input = &junk[..];
        assert_eq!(d.decode(&mut input), Some(Err(FrameError::TooLong)));
        assert_eq!(d.decode(&mut input), None);
        assert_eq!(d.partial_len(), 0);
        let mut ok = [0u8; MAX_WIRE_LEN + 1];
        let n = encode_frame(1, 1, &Message::Heartbeat { now: RigTime(5) }, &mut ok[1..]).unwrap();
        let mut input = &ok[..n + 1];
        assert_eq!(
            d.decode(&mut input).unwrap().unwrap().message,
            Message::Heartbeat { now: RigTime(5) }
        );
        assert_eq!(d.stats().too_long, 1);
        assert_eq!(d.stats().skipped_bytes, 5000);
    }

    #[test]
    fn a_rig_sized_decoder_refuses_frames_longer_than_a_host_sends() {
        let pcm = [1i16; 256];
        let m = Message::SampleBlock {
            stream: 0,
            seq: 0,
            t_first: RigTime(0),
            samples: Samples::Pcm(&pcm),
        };
        let mut out = [0u8; MAX_WIRE_LEN];
        let n = encode_frame(1, 0, &m, &mut out).unwrap();
        let mut d = Decoder::<MAX_HOST_ENCODED_LEN>::new();
        let mut input = &out[..n];
        assert_eq!(d.decode(&mut input), Some(Err(FrameError::TooLong)));
        // The rest of that frame, up to its delimiter, is thrown away.
        assert_eq!(d.decode(&mut input), None);
        assert!(input.is_empty());
        let chunk = [7i16; MAX_CHUNK_SAMPLES];
        let big_host = Message::StimulusData {
            id: 1,
            total: 240,
            offset: 0,
            samples: Samples::Pcm(&chunk),
        };
        let n = encode_frame(1, 1, &big_host, &mut out).unwrap();
        assert!(n - 1 <= MAX_HOST_ENCODED_LEN, "{n}");
        let mut input = &out[..n];
        assert_eq!(d.decode(&mut input).unwrap().unwrap().message, big_host);
    }

    #[test]
    fn chunks_cover_a_stimulus_exactly() {
        let s: [i16; 500] = core::array::from_fn(|i| i as i16);
        let chunks: [_; 3] = {
            let mut it = stimulus_chunks(9, &s);
            [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()]
        };
        assert!(stimulus_chunks(9, &s).nth(3).is_none());
        let offsets = chunks.map(|c| match c {
            Message::StimulusData {
                offset, samples, ..
            } => (offset, samples.len()),
            _ => (u32::MAX, 0),
        });
        assert_eq!(offsets, [(0, 240), (240, 240), (480, 20)]);
        assert_eq!(stimulus_chunks(1, &[]).count(), 1);
    }

    #[test]
    fn invalid_utf8_in_a_string_is_malformed() {
        let mut raw = [0u8; MAX_FRAME_LEN];
        let n = raw_frame_into(
            1,
            0,
            &Message::Error {
                seq: 1,
                code: ErrorCode::Late,
                message: "ab",
            },
            &mut raw,
        );
        // Replace the text with an invalid byte and fix the CRC.
        raw[HEADER_LEN + 5] = 0xff;
        let crc = CRC.checksum(&raw[..n - CRC_LEN]);
        raw[n - CRC_LEN..n].copy_from_slice(&crc.to_le_bytes());
        let mut enc = [0u8; MAX_WIRE_LEN];
        let k = cobs::encode(&raw[..n], &mut enc);
        assert_eq!(
            decode_frame_in_place(&mut enc[..k]),
            Err(FrameError::Malformed {
                msg_type: msg_type::ERROR
            })
        );
    }
}
