//! The rig protocol's frames: messages to bytes and a streaming decoder back.
//!
//! Wire format (docs/rig-protocol.md is the normative text):
//! `COBS(version u8 | type u8 | seq u16 | payload | CRC-32/ISO-HDLC u32) 0x00`,
//! all integers little-endian. The decoder is sans-IO: push bytes in, pull
//! frames (or the reasons frames were dropped) out. It never panics and holds
//! at most one maximum-length frame of partial input besides what was pushed.

use crate::sampling::{Block, BLOCK_LEN};
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
/// Most samples in one `StimulusData` chunk (keeps host frames within 512 bytes).
pub const MAX_CHUNK_SAMPLES: usize = 240;
/// Most samples in one `SampleBlock` (one [`Block`]).
pub const MAX_BLOCK_SAMPLES: usize = BLOCK_LEN;
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

/// Why the rig refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The scheduled rig time had already passed when the command arrived.
    Late,
    /// The rig does not implement the message (or the sensor it names).
    Unsupported,
    /// A field is out of range (rate not offered, chunk beyond the stimulus, ...).
    BadParameter,
    /// The rig has no room (stimulus memory, schedule queue).
    BufferFull,
    /// The rig failed for a reason of its own.
    Internal,
    /// The rig has restarted since the host's Hello: its clock began again
    /// at zero and it forgot its stimuli and streams. Everything but Hello
    /// gets this answer until the next Hello.
    Restarted,
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
            c => ErrorCode::Other(c),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorCode::Late => f.write_str("late"),
            ErrorCode::Unsupported => f.write_str("unsupported"),
            ErrorCode::BadParameter => f.write_str("bad parameter"),
            ErrorCode::BufferFull => f.write_str("buffer full"),
            ErrorCode::Internal => f.write_str("internal"),
            ErrorCode::Restarted => f.write_str("restarted"),
            ErrorCode::Other(c) => write!(f, "error {c}"),
        }
    }
}

/// What the rig says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloReply {
    /// Bitmask of `1 << sensor::*`.
    pub sensors: u8,
    /// Calibrated delay of the acoustic loopback, µs.
    pub loopback_delay_us: u32,
    /// Stimulus memory, samples (the largest `StimulusData.total` it accepts).
    pub stimulus_capacity: u32,
    /// Sample rates the reference microphone streams at, Hz (at most [`MAX_RATES`]).
    pub mic_sample_rates: Vec<u32>,
    pub kind: String,
    pub firmware: String,
    pub serial: String,
}

/// One protocol message. Field limits (strings, sample counts) are those of
/// docs/rig-protocol.md; [`Message::encode`] truncates anything longer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
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
        samples: Vec<i16>,
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
    HelloReply(HelloReply),
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
        message: String,
    },
    Onset {
        sensor: u8,
        at: RigTime,
    },
    SampleBlock {
        stream: u8,
        seq: u32,
        t_first: RigTime,
        samples: Vec<i16>,
    },
    Heartbeat {
        now: RigTime,
    },
    /// A message type this version does not know (or any frame of another
    /// protocol version), with its payload as received.
    Unknown {
        msg_type: u8,
        payload: Vec<u8>,
    },
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The sender's protocol version. When it is not [`PROTOCOL_VERSION`] the
    /// payload is not interpreted and `message` is `Unknown`.
    pub version: u8,
    /// The sender's frame sequence number.
    pub seq: u16,
    pub message: Message,
}

/// Why a frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("bad COBS encoding")]
    BadCobs,
    #[error("bad CRC")]
    BadCrc,
    #[error("frame longer than {MAX_FRAME_LEN} bytes")]
    TooLong,
    #[error("frame shorter than header and CRC")]
    Truncated,
    #[error("malformed payload for message type {msg_type:#04x}")]
    Malformed { msg_type: u8 },
}

/// Counters of a [`Decoder`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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

fn put_str(out: &mut Vec<u8>, s: &str, max: usize) {
    let mut end = s.len().min(max).min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.push(end as u8);
    out.extend_from_slice(&s.as_bytes()[..end]);
}

fn put_samples(out: &mut Vec<u8>, samples: &[i16], max: usize) {
    let n = samples.len().min(max);
    out.extend_from_slice(&(n as u16).to_le_bytes());
    for s in &samples[..n] {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

impl Message {
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

    /// The payload bytes (fields over their limits truncated).
    pub fn payload(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello => {}
            Message::SyncRequest { cookie } => out.extend_from_slice(&cookie.to_le_bytes()),
            Message::StimulusData {
                id,
                total,
                offset,
                samples,
            } => {
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&total.to_le_bytes());
                out.extend_from_slice(&offset.to_le_bytes());
                put_samples(out, samples, MAX_CHUNK_SAMPLES);
            }
            Message::Play {
                at,
                sample_rate,
                id,
            } => {
                out.extend_from_slice(&at.0.to_le_bytes());
                out.extend_from_slice(&sample_rate.to_le_bytes());
                out.extend_from_slice(&id.to_le_bytes());
            }
            Message::FlashLed { at, duration_us: d } | Message::PressButton { at, hold_us: d } => {
                out.extend_from_slice(&at.0.to_le_bytes());
                out.extend_from_slice(&d.to_le_bytes());
            }
            Message::SetLoopback { on } => out.push(*on as u8),
            Message::StreamMic { sample_rate, on }
            | Message::StreamPhotodiode { sample_rate, on } => {
                out.extend_from_slice(&sample_rate.to_le_bytes());
                out.push(*on as u8);
            }
            Message::HelloReply(h) => {
                out.push(h.sensors);
                out.extend_from_slice(&h.loopback_delay_us.to_le_bytes());
                out.extend_from_slice(&h.stimulus_capacity.to_le_bytes());
                let rates = &h.mic_sample_rates[..h.mic_sample_rates.len().min(MAX_RATES)];
                out.push(rates.len() as u8);
                for r in rates {
                    out.extend_from_slice(&r.to_le_bytes());
                }
                put_str(out, &h.kind, MAX_IDENT_LEN);
                put_str(out, &h.firmware, MAX_IDENT_LEN);
                put_str(out, &h.serial, MAX_IDENT_LEN);
            }
            Message::SyncReply { cookie, rig } => {
                out.extend_from_slice(&cookie.to_le_bytes());
                out.extend_from_slice(&rig.0.to_le_bytes());
            }
            Message::Ack { seq } => out.extend_from_slice(&seq.to_le_bytes()),
            Message::Error { seq, code, message } => {
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&code.code().to_le_bytes());
                put_str(out, message, MAX_ERROR_TEXT_LEN);
            }
            Message::Onset { sensor, at } => {
                out.push(*sensor);
                out.extend_from_slice(&at.0.to_le_bytes());
            }
            Message::SampleBlock {
                stream,
                seq,
                t_first,
                samples,
            } => {
                out.push(*stream);
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&t_first.0.to_le_bytes());
                put_samples(out, samples, MAX_BLOCK_SAMPLES);
            }
            Message::Heartbeat { now } => out.extend_from_slice(&now.0.to_le_bytes()),
            Message::Unknown { payload, .. } => {
                let n = payload.len().min(MAX_FRAME_LEN - HEADER_LEN - CRC_LEN);
                out.extend_from_slice(&payload[..n]);
            }
        }
    }

    /// Append one complete frame (COBS-encoded, 0x00-terminated) carrying this
    /// message with sequence number `seq`, in protocol version 1.
    pub fn encode(&self, seq: u16, out: &mut Vec<u8>) {
        encode_frame(PROTOCOL_VERSION, seq, self, out)
    }

    /// Parse a payload of version-1 message type `msg_type`. Bytes after the
    /// fields a type defines are ignored (room for compatible extensions).
    pub fn parse(msg_type: u8, payload: &[u8]) -> Result<Message, FrameError> {
        parse_payload(msg_type, payload).ok_or(FrameError::Malformed { msg_type })
    }

    /// The samples of a `SampleBlock` as a [`Block`] stamped in rig time
    /// (`t_first_ns` = µs × 1000), f32 = i16 / 32768. `None` for other messages.
    pub fn to_block(&self) -> Option<Block> {
        match self {
            Message::SampleBlock {
                seq,
                t_first,
                samples,
                ..
            } => Some(samples_to_block(*seq, *t_first, samples)),
            _ => None,
        }
    }
}

/// A [`Block`] from the i16 samples of a `SampleBlock` (at most [`BLOCK_LEN`] used).
pub fn samples_to_block(seq: u32, t_first: RigTime, samples: &[i16]) -> Block {
    let mut b = Block::EMPTY;
    let n = samples.len().min(BLOCK_LEN);
    b.seq = seq as u64;
    b.t_first_ns = (t_first.0 as i64).saturating_mul(1000);
    b.len = n as u16;
    b.corrupt = false;
    for (d, s) in b.data.iter_mut().zip(&samples[..n]) {
        *d = *s as f32 / 32768.0;
    }
    b
}

/// An f32 sample (nominally in [-1, 1]) to i16 PCM, clamped: round(x × 32767)
/// (so +1.0 stays representable; decoding divides by 32768).
pub fn f32_to_i16(x: f32) -> i16 {
    if x.is_nan() {
        return 0;
    }
    (x.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// The `StimulusData` chunks that upload `samples` as stimulus `id`.
pub fn stimulus_chunks(id: u16, samples: &[i16]) -> Vec<Message> {
    let total = samples.len() as u32;
    if samples.is_empty() {
        return vec![Message::StimulusData {
            id,
            total: 0,
            offset: 0,
            samples: Vec::new(),
        }];
    }
    samples
        .chunks(MAX_CHUNK_SAMPLES)
        .enumerate()
        .map(|(i, c)| Message::StimulusData {
            id,
            total,
            offset: (i * MAX_CHUNK_SAMPLES) as u32,
            samples: c.to_vec(),
        })
        .collect()
}

/// Append one frame of protocol `version` (for tests of other versions; the
/// payload layout is always version 1's).
pub fn encode_frame(version: u8, seq: u16, msg: &Message, out: &mut Vec<u8>) {
    let mut raw = Vec::with_capacity(64);
    raw.push(version);
    raw.push(msg.msg_type());
    raw.extend_from_slice(&seq.to_le_bytes());
    msg.payload(&mut raw);
    let crc = CRC.checksum(&raw);
    raw.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&cobs::encode_vec(&raw));
    out.push(0);
}

/// The unencoded frame (header, payload, CRC) of a message: what COBS wraps.
pub fn raw_frame(seq: u16, msg: &Message) -> Vec<u8> {
    let mut raw = vec![PROTOCOL_VERSION, msg.msg_type()];
    raw.extend_from_slice(&seq.to_le_bytes());
    msg.payload(&mut raw);
    let crc = CRC.checksum(&raw);
    raw.extend_from_slice(&crc.to_le_bytes());
    raw
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
    fn str(&mut self) -> Option<String> {
        let n = self.u8()? as usize;
        Some(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn samples(&mut self, max: usize) -> Option<Vec<i16>> {
        let n = self.u16()? as usize;
        if n > max {
            return None;
        }
        let b = self.take(2 * n)?;
        Some(
            b.chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect(),
        )
    }
}

fn parse_payload(t: u8, payload: &[u8]) -> Option<Message> {
    use msg_type::*;
    let mut r = Reader(payload);
    Some(match t {
        HELLO => Message::Hello,
        SYNC_REQUEST => Message::SyncRequest { cookie: r.u32()? },
        STIMULUS_DATA => Message::StimulusData {
            id: r.u16()?,
            total: r.u32()?,
            offset: r.u32()?,
            samples: r.samples(MAX_FRAME_LEN)?,
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
            let mut mic_sample_rates = Vec::with_capacity(n);
            for _ in 0..n {
                mic_sample_rates.push(r.u32()?);
            }
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
            payload: payload.to_vec(),
        },
    })
}

/// Decode one COBS-encoded frame, without its 0x00 delimiter. `buf` is
/// decoded in place (its contents are clobbered).
pub fn decode_frame_in_place(buf: &mut [u8]) -> Result<Frame, FrameError> {
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
        Message::parse(t, payload)?
    } else {
        Message::Unknown {
            msg_type: t,
            payload: payload.to_vec(),
        }
    };
    Ok(Frame {
        version,
        seq,
        message,
    })
}

/// Decode one COBS-encoded frame; a trailing 0x00 delimiter is allowed.
pub fn decode_frame(encoded: &[u8]) -> Result<Frame, FrameError> {
    let body = encoded.strip_suffix(&[0]).unwrap_or(encoded);
    decode_frame_in_place(&mut body.to_vec())
}

/// A streaming frame decoder: [`push`](Decoder::push) bytes as they arrive,
/// then call [`next`](Decoder::next) until it gives `None`.
///
/// Bytes up to each 0x00 form one frame; empty frames (consecutive
/// delimiters) are ignored. A frame that fails COBS, length or CRC checks is
/// returned as an error, counted and skipped; decoding resumes after the next
/// delimiter. A frame growing beyond [`MAX_ENCODED_LEN`] is reported as
/// `TooLong` at once and the rest of it is discarded unbuffered.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    pending: Vec<u8>,
    pos: usize,
    frame: Vec<u8>,
    discarding: bool,
    stats: DecoderStats,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queue received bytes. They are held until [`next`](Decoder::next)
    /// consumes them: drain it after each push to keep memory bounded.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos >= self.pending.len() {
            self.pending.clear();
            self.pos = 0;
        } else if self.pos > 4096 {
            self.pending.drain(..self.pos);
            self.pos = 0;
        }
        self.pending.extend_from_slice(bytes);
    }

    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Bytes held for a frame not yet terminated.
    pub fn partial_len(&self) -> usize {
        self.frame.len()
    }

    /// The next frame, or why one was dropped; `None` when the queued bytes
    /// hold no further complete frame.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Frame, FrameError>> {
        while self.pos < self.pending.len() {
            let b = self.pending[self.pos];
            self.pos += 1;
            if b == 0 {
                if self.discarding {
                    self.discarding = false;
                    continue;
                }
                if self.frame.is_empty() {
                    continue;
                }
                let r = decode_frame_in_place(&mut self.frame);
                match r {
                    Ok(_) => self.stats.frames += 1,
                    Err(e) => {
                        self.count(e);
                        self.stats.skipped_bytes += self.frame.len() as u64;
                    }
                }
                self.frame.clear();
                return Some(r);
            }
            if self.discarding {
                self.stats.skipped_bytes += 1;
            } else if self.frame.len() >= MAX_ENCODED_LEN {
                self.stats.skipped_bytes += self.frame.len() as u64 + 1;
                self.count(FrameError::TooLong);
                self.frame.clear();
                self.discarding = true;
                return Some(Err(FrameError::TooLong));
            } else {
                self.frame.push(b);
            }
        }
        None
    }

    fn count(&mut self, e: FrameError) {
        let c = match e {
            FrameError::BadCobs => &mut self.stats.bad_cobs,
            FrameError::BadCrc => &mut self.stats.bad_crc,
            FrameError::TooLong => &mut self.stats.too_long,
            FrameError::Truncated => &mut self.stats.truncated,
            FrameError::Malformed { .. } => &mut self.stats.malformed,
        };
        *c += 1;
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
    fn round_trip_and_block() {
        let m = Message::SampleBlock {
            stream: sensor::MIC,
            seq: 7,
            t_first: RigTime(1_000_000),
            samples: (0..256).map(|i| (i * 100 - 12_800) as i16).collect(),
        };
        let mut out = Vec::new();
        m.encode(3, &mut out);
        assert!(out.len() <= MAX_ENCODED_LEN + 1);
        assert_eq!(out.iter().filter(|b| **b == 0).count(), 1);
        let f = decode_frame(&out).unwrap();
        assert_eq!((f.version, f.seq), (1, 3));
        assert_eq!(f.message, m);
        let b = f.message.to_block().unwrap();
        assert_eq!(
            (b.seq, b.t_first_ns, b.len, b.corrupt),
            (7, 1_000_000_000, 256, false)
        );
        assert_eq!(b.data[0], -0.390625);
    }

    #[test]
    fn oversize_frame_is_dropped_and_resynced() {
        let mut d = Decoder::new();
        d.push(&vec![0x55; 5000]);
        assert_eq!(d.next(), Some(Err(FrameError::TooLong)));
        assert_eq!(d.next(), None);
        assert_eq!(d.partial_len(), 0);
        let mut ok = vec![0];
        Message::Heartbeat { now: RigTime(5) }.encode(1, &mut ok);
        d.push(&ok);
        assert_eq!(
            d.next().unwrap().unwrap().message,
            Message::Heartbeat { now: RigTime(5) }
        );
        assert_eq!(d.stats().too_long, 1);
        assert_eq!(d.stats().skipped_bytes, 5000);
    }
}
