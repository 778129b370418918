//! The rig's side of the protocol, for firmware and for a simulated rig.
//!
//! [`RigSession`] owns everything a rig must do by the protocol's rules:
//! decoding host frames, answering Hello and SyncRequest, refusing frames of
//! another version, unknown types and commands for the past, answering a
//! repeated command (same seq) with its first reply instead of executing it
//! twice, the *restarted* mode after a reboot, the Heartbeat timer, and
//! ordering its output (replies ahead of queued events). It allocates
//! nothing and does no I/O: bytes and the rig time of their arrival go in
//! ([`RigSession::handle_input`]), bytes to send come out
//! ([`RigSession::poll_transmit`]). What a command *does* is the
//! application's, behind [`RigHandler`].

use crate::codec::{
    encode_frame, msg_type, sensor, Decoder, DecoderStats, ErrorCode, HelloReply, Message, Samples,
    MAX_HOST_ENCODED_LEN, MAX_WIRE_LEN, PROTOCOL_VERSION,
};
use crate::text::Text;
use crate::time::RigTime;

/// Longest refusal text kept, bytes (the wire allows 128; 96 keeps a
/// `Result<(), Refusal>` small enough to return by value).
pub const MAX_REFUSAL_TEXT_LEN: usize = 96;

/// Why a command was refused: its code and a short text for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub text: Text<MAX_REFUSAL_TEXT_LEN>,
}

impl Refusal {
    pub fn new(code: ErrorCode, text: &str) -> Self {
        Refusal {
            code,
            text: Text::from_text(text),
        }
    }
    /// A refusal whose text is formatted: `Refusal::fmt(code, format_args!(..))`.
    pub fn fmt(code: ErrorCode, args: core::fmt::Arguments<'_>) -> Self {
        Refusal {
            code,
            text: Text::from_fmt(args),
        }
    }
}

/// A command from the host for the rig's hardware, as the session hands it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    StimulusData {
        id: u16,
        total: u32,
        offset: u32,
        samples: Samples<'a>,
    },
    /// Start stimulus `id` at rig time `at` (always in the future: the
    /// session refuses a time that has passed).
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
}

/// The rig's hardware, as the session drives it.
pub trait RigHandler {
    /// What the rig says about itself in a HelloReply.
    fn hello(&self) -> HelloReply<'_>;
    /// A new host session begins (a Hello): stop every stream, turn the
    /// loopback off, cancel what is scheduled. Stored stimuli stay.
    fn new_session(&mut self);
    /// Carry out `cmd`, which arrived at rig time `now`: `Ok` is acked,
    /// `Err` answered with the refusal.
    fn command(&mut self, cmd: Command<'_>, now: RigTime) -> Result<(), Refusal>;
}

/// How a rig session behaves.
#[derive(Debug, Clone, Copy)]
pub struct RigConfig {
    /// The protocol version the rig speaks (1; another only to test hosts).
    pub version: u8,
    /// A Heartbeat goes out when nothing has been sent for this long, µs.
    pub heartbeat_us: u64,
}

impl Default for RigConfig {
    fn default() -> Self {
        RigConfig {
            version: PROTOCOL_VERSION,
            heartbeat_us: 1_000_000,
        }
    }
}

/// What a rig session counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RigStats {
    /// The decoder's counts (frames, and those dropped as corrupt).
    pub decoder: DecoderStats,
    /// Commands answered again from the remembered reply (a host retry).
    pub duplicates: u64,
    /// Commands and requests refused (Error sent), by any code.
    pub refused: u64,
    /// Events (blocks, onsets, heartbeats) dropped because the output queue was full.
    pub events_dropped: u64,
    /// Replies dropped because the output queue was full (never expected).
    pub replies_dropped: u64,
}

/// Queue of encoded frames in a ring of bytes: `[len u16 LE][frame]...`.
/// A frame is written whole or not at all.
#[derive(Debug)]
struct FrameRing<const N: usize> {
    buf: [u8; N],
    head: usize,
    len: usize,
}

impl<const N: usize> FrameRing<N> {
    const fn new() -> Self {
        FrameRing {
            buf: [0; N],
            head: 0,
            len: 0,
        }
    }
    fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Copy `bytes` in at the tail (the caller checked the room), in at
    /// most two runs.
    fn put_all(&mut self, bytes: &[u8]) {
        let tail = (self.head + self.len) % N;
        let first = bytes.len().min(N - tail);
        self.buf[tail..tail + first].copy_from_slice(&bytes[..first]);
        self.buf[..bytes.len() - first].copy_from_slice(&bytes[first..]);
        self.len += bytes.len();
    }
    /// Copy `out.len()` bytes out from the head (the caller checked they
    /// are there), in at most two runs.
    fn get_all(&mut self, out: &mut [u8]) {
        let first = out.len().min(N - self.head);
        out[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        let rest = out.len() - first;
        out[first..].copy_from_slice(&self.buf[..rest]);
        self.head = (self.head + out.len()) % N;
        self.len -= out.len();
    }
    fn push(&mut self, frame: &[u8]) -> bool {
        if N - self.len < frame.len() + 2 {
            return false;
        }
        self.put_all(&(frame.len() as u16).to_le_bytes());
        self.put_all(frame);
        true
    }
    /// Length of the next frame, taking its length prefix.
    fn start_frame(&mut self) -> Option<usize> {
        if self.len < 2 {
            return None;
        }
        let mut n = [0u8; 2];
        self.get_all(&mut n);
        Some(u16::from_le_bytes(n) as usize)
    }
    /// Move up to `n` bytes of the current frame into `out`.
    fn take(&mut self, out: &mut [u8], n: usize) -> usize {
        let k = n.min(out.len()).min(self.len);
        self.get_all(&mut out[..k]);
        k
    }
}

/// Default output queue for replies (small, sent first), bytes.
pub const REPLY_RING: usize = 1024;
/// Default output queue for events (sample blocks, onsets), bytes: about
/// seven full sample blocks. A rig streaming two sensors gives it more.
pub const EVENT_RING: usize = 4096;

/// The reply remembered for the last command executed.
#[derive(Debug, Clone, Copy)]
enum LastReply {
    Ack,
    Error(Refusal),
}

/// Which queue the frame being transmitted comes from, and what is left of it.
#[derive(Debug, Clone, Copy)]
enum Sending {
    Idle,
    Reply(usize),
    Event(usize),
}

/// The rig's side of the protocol (see the module documentation).
#[derive(Debug)]
pub struct RigSession<const EVENTS: usize = EVENT_RING> {
    decoder: Decoder<MAX_HOST_ENCODED_LEN>,
    s: State<EVENTS>,
}

/// Everything but the decoder, so that a decoded frame (which borrows the
/// decoder) can be answered.
#[derive(Debug)]
struct State<const EVENTS: usize> {
    cfg: RigConfig,
    seq: u16,
    restarted: bool,
    last: Option<(u16, LastReply)>,
    replies: FrameRing<REPLY_RING>,
    events: FrameRing<EVENTS>,
    sending: Sending,
    /// Rig time of the last frame queued (the Heartbeat timer runs from it).
    last_output: Option<RigTime>,
    greeted: bool,
    stats: RigStats,
}

impl<const EVENTS: usize> Default for RigSession<EVENTS> {
    fn default() -> Self {
        Self::new(RigConfig::default())
    }
}

impl<const EVENTS: usize> RigSession<EVENTS> {
    pub fn new(cfg: RigConfig) -> Self {
        RigSession {
            decoder: Decoder::new(),
            s: State {
                cfg,
                seq: 0,
                restarted: false,
                last: None,
                replies: FrameRing::new(),
                events: FrameRing::new(),
                sending: Sending::Idle,
                last_output: None,
                greeted: false,
                stats: RigStats::default(),
            },
        }
    }

    /// The rig has just rebooted without its USB port going away (its clock
    /// began again and it forgot its stimuli and streams): tell the host
    /// once with an unsolicited Error *restarted*, and answer everything but
    /// Hello with *restarted* until a Hello arrives.
    pub fn announce_restart(&mut self, now: RigTime) {
        self.s.restarted = true;
        self.s.last = None;
        let r = Refusal::new(ErrorCode::Restarted, "the rig restarted");
        self.s.queue_error(0, &r, now);
    }

    /// Whether a host has greeted the rig since it started (streams are for
    /// a greeted host only).
    pub fn greeted(&self) -> bool {
        self.s.greeted()
    }

    pub fn stats(&self) -> RigStats {
        RigStats {
            decoder: self.decoder.stats(),
            ..self.s.stats
        }
    }

    /// Feed bytes from the host that arrived at rig time `now` (stamp it as
    /// close to their arrival as the hardware allows, e.g. in the USB
    /// interrupt: it becomes the SyncReply's time). Commands are carried
    /// out through `rig` in order; the replies are queued.
    pub fn handle_input(&mut self, bytes: &[u8], now: RigTime, rig: &mut impl RigHandler) {
        let mut input = bytes;
        // The frame borrows the decoder; the rest of the session answers it.
        while let Some(r) = self.decoder.decode(&mut input) {
            if let Ok(frame) = r {
                self.s
                    .on_frame(frame.version, frame.seq, frame.message, now, rig);
            }
        }
    }

    /// Report that `sensor` saw an onset (or an actuator fired) at rig time
    /// `at`; `false` (and counted) when the output queue is full.
    pub fn send_onset(&mut self, sensor: u8, at: RigTime, now: RigTime) -> bool {
        self.s.queue_event(&Message::Onset { sensor, at }, now)
    }

    /// Send a block of stream `stream` (a sensor id): its block counter, the
    /// rig time of its first sample and at most 256 samples. Dropped (and
    /// counted; the host sees the gap in `seq`) when the queue is full or no
    /// host has greeted the rig.
    pub fn send_block(
        &mut self,
        stream: u8,
        seq: u32,
        t_first: RigTime,
        samples: &[i16],
        now: RigTime,
    ) -> bool {
        if !self.s.greeted() {
            return false;
        }
        let m = Message::SampleBlock {
            stream,
            seq,
            t_first,
            samples: Samples::Pcm(samples),
        };
        self.s.queue_event(&m, now)
    }

    /// Whether a block of `n` samples would fit in the output queue now.
    pub fn has_room_for_block(&self, n: usize) -> bool {
        let raw = 23 + 2 * n.min(crate::codec::MAX_BLOCK_SAMPLES);
        EVENTS - self.s.events.len >= cobs::max_encoding_length(raw) + 1 + 2
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run next: the
    /// Heartbeat due after a quiet second. `None` before any host greeted.
    pub fn poll_timeout(&self) -> Option<RigTime> {
        if !self.s.greeted() {
            return None;
        }
        Some(
            self.s
                .last_output
                .unwrap_or(RigTime(0))
                .plus_us(self.s.cfg.heartbeat_us),
        )
    }

    /// Run the timers at rig time `now`.
    pub fn handle_timeout(&mut self, now: RigTime) {
        if self.poll_timeout().is_some_and(|t| now >= t) {
            self.s.queue_event(&Message::Heartbeat { now }, now);
        }
    }

    /// Whether any output is waiting.
    pub fn wants_transmit(&self) -> bool {
        !matches!(self.s.sending, Sending::Idle)
            || !self.s.replies.is_empty()
            || !self.s.events.is_empty()
    }

    /// Move output bytes into `out` (replies first, never splitting a frame
    /// between queues); the number written, 0 when nothing waits.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> usize {
        let s = &mut self.s;
        let mut n = 0;
        while n < out.len() {
            let (ring_is_reply, left) = match s.sending {
                Sending::Idle => {
                    if let Some(len) = s.replies.start_frame() {
                        s.sending = Sending::Reply(len);
                    } else if let Some(len) = s.events.start_frame() {
                        s.sending = Sending::Event(len);
                    } else {
                        break;
                    }
                    continue;
                }
                Sending::Reply(left) => (true, left),
                Sending::Event(left) => (false, left),
            };
            let k = if ring_is_reply {
                s.replies.take(&mut out[n..], left)
            } else {
                s.events.take(&mut out[n..], left)
            };
            n += k;
            s.sending = match (k == left || k == 0, ring_is_reply) {
                (true, _) => Sending::Idle,
                (false, true) => Sending::Reply(left - k),
                (false, false) => Sending::Event(left - k),
            };
        }
        n
    }
}

impl<const EVENTS: usize> State<EVENTS> {
    fn greeted(&self) -> bool {
        self.greeted && !self.restarted
    }

    fn on_frame(
        &mut self,
        version: u8,
        seq: u16,
        message: Message<'_>,
        now: RigTime,
        rig: &mut impl RigHandler,
    ) {
        // Every Hello gets a HelloReply in the rig's own version, whatever
        // the version it came in.
        if message.msg_type() == msg_type::HELLO {
            self.restarted = false;
            self.greeted = true;
            self.last = None;
            rig.new_session();
            self.queue_reply(&Message::HelloReply(rig.hello()), now);
            return;
        }
        if version != self.cfg.version {
            let r = Refusal::fmt(
                ErrorCode::Unsupported,
                format_args!(
                    "protocol {version} is not spoken here; this rig speaks {}",
                    self.cfg.version
                ),
            );
            self.queue_error(seq, &r, now);
            return;
        }
        if self.restarted {
            let r = Refusal::new(ErrorCode::Restarted, "the rig restarted; send Hello");
            self.queue_error(seq, &r, now);
            return;
        }
        if let Message::SyncRequest { cookie } = message {
            self.queue_reply(&Message::SyncReply { cookie, rig: now }, now);
            return;
        }
        // A repeat of the command just executed (its reply was lost): the
        // same answer again, without executing it twice.
        if let Some((last_seq, reply)) = self.last {
            if last_seq == seq {
                self.stats.duplicates += 1;
                self.answer(seq, reply, now);
                return;
            }
        }
        let result = match command_of(message) {
            Some(cmd) => match scheduled_at(&cmd) {
                Some(at) if at <= now => Err(Refusal::fmt(
                    ErrorCode::Late,
                    format_args!("late by {} us", now.0 - at.0),
                )),
                _ => rig.command(cmd, now),
            },
            None => Err(Refusal::fmt(
                ErrorCode::Unsupported,
                format_args!("message type 0x{:02x} is not a command", message.msg_type()),
            )),
        };
        let reply = match result {
            Ok(()) => LastReply::Ack,
            Err(r) => LastReply::Error(r),
        };
        self.last = Some((seq, reply));
        self.answer(seq, reply, now);
    }

    fn answer(&mut self, seq: u16, reply: LastReply, now: RigTime) {
        match reply {
            LastReply::Ack => self.queue_reply(&Message::Ack { seq }, now),
            LastReply::Error(r) => self.queue_error(seq, &r, now),
        }
    }

    fn queue_error(&mut self, seq: u16, r: &Refusal, now: RigTime) {
        self.stats.refused += 1;
        let m = Message::Error {
            seq,
            code: r.code,
            message: r.text.as_str(),
        };
        self.queue_reply(&m, now);
    }

    fn encode(&mut self, msg: &Message<'_>, buf: &mut [u8; MAX_WIRE_LEN]) -> usize {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        encode_frame(self.cfg.version, seq, msg, buf).unwrap_or(0)
    }

    fn queue_reply(&mut self, msg: &Message<'_>, now: RigTime) {
        let mut buf = [0u8; MAX_WIRE_LEN];
        let n = self.encode(msg, &mut buf);
        if self.replies.push(&buf[..n]) {
            self.last_output = Some(now);
        } else {
            self.stats.replies_dropped += 1;
        }
    }

    /// Queue an event; `false` (and counted) when the queue has no room.
    fn queue_event(&mut self, msg: &Message<'_>, now: RigTime) -> bool {
        let mut buf = [0u8; MAX_WIRE_LEN];
        let n = self.encode(msg, &mut buf);
        let ok = self.events.push(&buf[..n]);
        if ok {
            self.last_output = Some(now);
        } else {
            self.stats.events_dropped += 1;
        }
        ok
    }
}

/// The hardware command a message asks for, if it is one.
fn command_of(m: Message<'_>) -> Option<Command<'_>> {
    Some(match m {
        Message::StimulusData {
            id,
            total,
            offset,
            samples,
        } => Command::StimulusData {
            id,
            total,
            offset,
            samples,
        },
        Message::Play {
            at,
            sample_rate,
            id,
        } => Command::Play {
            at,
            sample_rate,
            id,
        },
        Message::FlashLed { at, duration_us } => Command::FlashLed { at, duration_us },
        Message::PressButton { at, hold_us } => Command::PressButton { at, hold_us },
        Message::SetLoopback { on } => Command::SetLoopback { on },
        Message::StreamMic { sample_rate, on } => Command::StreamMic { sample_rate, on },
        Message::StreamPhotodiode { sample_rate, on } => {
            Command::StreamPhotodiode { sample_rate, on }
        }
        _ => return None,
    })
}

fn scheduled_at(c: &Command<'_>) -> Option<RigTime> {
    match c {
        Command::Play { at, .. }
        | Command::FlashLed { at, .. }
        | Command::PressButton { at, .. } => Some(*at),
        _ => None,
    }
}

/// The sensors bitmask of a rig with these parts.
pub fn sensors_mask(ids: &[u8]) -> u8 {
    ids.iter().fold(0, |m, &id| m | (1u8 << (id & 7)))
}

/// The full sensor set of the reference rig.
pub const ALL_SENSORS: u8 = (1 << sensor::MIC)
    | (1 << sensor::SPEAKER)
    | (1 << sensor::PHOTODIODE)
    | (1 << sensor::LED)
    | (1 << sensor::BUTTON);

#[cfg(test)]
mod ring_tests {
    use super::FrameRing;

    #[test]
    fn frames_wrap_around_the_ring_whole_and_in_order() {
        let mut r = FrameRing::<16>::new();
        let mut out = [0u8; 16];
        for round in 0..40u8 {
            let len = (round % 7 + 1) as usize;
            let mut frame = [0u8; 7];
            for (i, b) in frame[..len].iter_mut().enumerate() {
                *b = round ^ i as u8;
            }
            let frame = &frame[..len];
            assert!(r.push(frame), "round {round}");
            let n = r.start_frame().unwrap();
            assert_eq!(n, frame.len());
            // Taken in two pieces, as a 64-byte USB packet might cut it.
            let a = r.take(&mut out[..2], n);
            let b = r.take(&mut out[a..], n - a);
            assert_eq!(&out[..a + b], frame);
            assert!(r.is_empty());
        }
        assert!(r.push(&[1; 14]));
        assert!(!r.push(&[1]), "no room for a frame and its length");
    }
}
