//! Sans-IO sessions over the rig protocol: the host's and the rig's.
//!
//! They take bytes and times and return bytes to send and events; they never
//! read a port, sleep or look at a clock. The caller stamps `now` as close to
//! the actual write/read as it can: a sync exchange's precision is that of
//! those stamps.

use std::collections::{HashMap, VecDeque};

use super::codec::{
    encode_frame, Decoder, DecoderStats, ErrorCode, Frame, HelloReply, Message, PROTOCOL_VERSION,
};
use crate::sampling::Block;
use crate::station::{RigInfo, SyncExchange};
use crate::time::{HostTime, RigTime};

/// Sync requests remembered while awaiting their replies; older ones are forgotten.
const MAX_PENDING_SYNCS: usize = 256;
/// Commands remembered while awaiting their Ack or Error.
const MAX_PENDING_COMMANDS: usize = 1024;

/// What the host learns from the rig's bytes.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // a Block by value: no allocation per block
pub enum Event {
    /// The rig answered Hello in protocol version 1.
    HandshakeDone {
        info: RigInfo,
        /// Bitmask of `1 << sensor::*`.
        sensors: u8,
        /// Stimulus memory, samples.
        stimulus_capacity: u32,
    },
    /// The rig speaks another protocol version; nothing else it says is understood.
    VersionMismatch {
        rig: u8,
        host: u8,
    },
    /// A sync reply matched to its request.
    SyncExchange(SyncExchange),
    /// The command sent with this sequence number was accepted.
    Ack(u16),
    /// The command sent with sequence number `seq` was refused.
    RigError {
        seq: u16,
        code: ErrorCode,
        msg: String,
    },
    /// A sensor (or actuator confirmation) saw an onset at rig time `at`.
    Onset {
        sensor: u8,
        at: RigTime,
    },
    /// Samples of stream `stream`, stamped in rig time (ns = µs × 1000).
    Block {
        stream: u8,
        block: Block,
    },
    Heartbeat(RigTime),
    /// A message type this version does not know; skipped.
    Unknown(u8),
    /// A host-to-rig message type arrived from the rig; ignored.
    Unexpected(u8),
    /// Frames dropped (bad COBS, CRC or length) in this call's bytes.
    Corrupt(u64),
}

impl Event {
    /// The host's report of a version mismatch.
    pub fn mismatch_text(rig: u8, host: u8) -> String {
        format!("rig speaks protocol {rig}, certlab speaks {host}")
    }
}

/// Where the handshake stands.
#[derive(Debug, Clone, PartialEq)]
pub enum HandshakeState {
    NotStarted,
    AwaitingReply { sent: HostTime },
    Done(Box<RigInfo>),
    Mismatch { rig: u8 },
}

/// The host's side of the protocol.
#[derive(Debug, Clone)]
pub struct HostSession {
    decoder: Decoder,
    seq: u16,
    cookie: u32,
    state: HandshakeState,
    syncs: HashMap<u32, HostTime>,
    sync_order: VecDeque<u32>,
    commands: HashMap<u16, HostTime>,
    command_order: VecDeque<u16>,
    last_rig_seq: Option<u16>,
    rig_frames_lost: u64,
    stale_replies: u64,
}

impl Default for HostSession {
    fn default() -> Self {
        Self::new()
    }
}

impl HostSession {
    pub fn new() -> Self {
        HostSession {
            decoder: Decoder::new(),
            seq: 0,
            cookie: 0,
            state: HandshakeState::NotStarted,
            syncs: HashMap::new(),
            sync_order: VecDeque::new(),
            commands: HashMap::new(),
            command_order: VecDeque::new(),
            last_rig_seq: None,
            rig_frames_lost: 0,
            stale_replies: 0,
        }
    }

    fn next_seq(&mut self) -> u16 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        s
    }

    /// The bytes of Hello, led by a 0x00 that ends whatever partial frame the
    /// rig holds from before.
    pub fn handshake(&mut self, now: HostTime) -> Vec<u8> {
        let seq = self.next_seq();
        let mut out = vec![0];
        Message::Hello.encode(seq, &mut out);
        self.state = HandshakeState::AwaitingReply { sent: now };
        out
    }

    /// The bytes of a SyncRequest. `now` must be the host time the bytes are
    /// written: it becomes the exchange's `host_send`.
    pub fn send_sync(&mut self, now: HostTime) -> Vec<u8> {
        let cookie = self.cookie;
        self.cookie = self.cookie.wrapping_add(1);
        if self.syncs.len() >= MAX_PENDING_SYNCS {
            if let Some(old) = self.sync_order.pop_front() {
                self.syncs.remove(&old);
            }
        }
        self.syncs.insert(cookie, now);
        self.sync_order.push_back(cookie);
        let seq = self.next_seq();
        let mut out = Vec::with_capacity(16);
        Message::SyncRequest { cookie }.encode(seq, &mut out);
        out
    }

    /// The bytes of a command, and the sequence number its Ack or Error will echo.
    pub fn send_command(&mut self, cmd: &Message, now: HostTime) -> (u16, Vec<u8>) {
        let seq = self.next_seq();
        if self.commands.len() >= MAX_PENDING_COMMANDS {
            if let Some(old) = self.command_order.pop_front() {
                self.commands.remove(&old);
            }
        }
        self.commands.insert(seq, now);
        self.command_order.push_back(seq);
        let mut out = Vec::with_capacity(32);
        cmd.encode(seq, &mut out);
        (seq, out)
    }

    /// Commands sent at or before `deadline` and not yet answered, oldest first.
    pub fn unanswered(&self, deadline: HostTime) -> Vec<u16> {
        self.command_order
            .iter()
            .copied()
            .filter(|s| self.commands.get(s).is_some_and(|t| *t <= deadline))
            .collect()
    }

    pub fn state(&self) -> &HandshakeState {
        &self.state
    }

    /// The rig's description, once the handshake is done.
    pub fn rig_info(&self) -> Option<&RigInfo> {
        match &self.state {
            HandshakeState::Done(i) => Some(i),
            _ => None,
        }
    }

    pub fn decoder_stats(&self) -> DecoderStats {
        self.decoder.stats()
    }

    /// Rig frames missing from the rig's sequence numbers (lost or corrupt).
    pub fn rig_frames_lost(&self) -> u64 {
        self.rig_frames_lost
    }

    /// Sync replies and acks that matched nothing outstanding.
    pub fn stale_replies(&self) -> u64 {
        self.stale_replies
    }

    /// Feed bytes read from the rig at host time `now` (the read's time: it
    /// becomes `host_recv` of any sync exchange completed).
    pub fn receive(&mut self, bytes: &[u8], now: HostTime) -> Vec<Event> {
        self.decoder.push(bytes);
        let mut events = Vec::new();
        let mut corrupt = 0u64;
        while let Some(r) = self.decoder.next() {
            match r {
                Ok(frame) => self.on_frame(frame, now, &mut events),
                Err(_) => corrupt += 1,
            }
        }
        if corrupt > 0 {
            events.push(Event::Corrupt(corrupt));
        }
        events
    }

    fn on_frame(&mut self, frame: Frame, now: HostTime, events: &mut Vec<Event>) {
        if frame.version != PROTOCOL_VERSION {
            if !matches!(self.state, HandshakeState::Mismatch { rig } if rig == frame.version) {
                self.state = HandshakeState::Mismatch { rig: frame.version };
                events.push(Event::VersionMismatch {
                    rig: frame.version,
                    host: PROTOCOL_VERSION,
                });
            }
            return;
        }
        if let Some(last) = self.last_rig_seq {
            let gap = frame.seq.wrapping_sub(last).wrapping_sub(1);
            // A large jump backwards is a rig restart, not a loss.
            if gap < 0x8000 {
                self.rig_frames_lost += gap as u64;
            }
        }
        self.last_rig_seq = Some(frame.seq);
        match frame.message {
            Message::HelloReply(h) => {
                let (sensors, stimulus_capacity) = (h.sensors, h.stimulus_capacity);
                let info = rig_info(h, frame.version);
                self.state = HandshakeState::Done(Box::new(info.clone()));
                events.push(Event::HandshakeDone {
                    info,
                    sensors,
                    stimulus_capacity,
                });
            }
            Message::SyncReply { cookie, rig } => match self.syncs.remove(&cookie) {
                Some(host_send) => {
                    self.sync_order.retain(|c| *c != cookie);
                    events.push(Event::SyncExchange(SyncExchange {
                        host_send,
                        rig,
                        host_recv: now,
                    }));
                }
                None => self.stale_replies += 1,
            },
            Message::Ack { seq } => {
                self.settle(seq);
                events.push(Event::Ack(seq));
            }
            Message::Error { seq, code, message } => {
                self.settle(seq);
                events.push(Event::RigError {
                    seq,
                    code,
                    msg: message,
                });
            }
            Message::Onset { sensor, at } => events.push(Event::Onset { sensor, at }),
            Message::SampleBlock {
                stream,
                seq,
                t_first,
                samples,
            } => events.push(Event::Block {
                stream,
                block: super::codec::samples_to_block(seq, t_first, &samples),
            }),
            Message::Heartbeat { now } => events.push(Event::Heartbeat(now)),
            Message::Unknown { msg_type, .. } => events.push(Event::Unknown(msg_type)),
            m => events.push(Event::Unexpected(m.msg_type())),
        }
    }

    fn settle(&mut self, seq: u16) {
        if self.commands.remove(&seq).is_some() {
            self.command_order.retain(|s| *s != seq);
        } else {
            self.stale_replies += 1;
        }
    }
}

fn rig_info(h: HelloReply, version: u8) -> RigInfo {
    RigInfo {
        kind: h.kind,
        serial: h.serial,
        firmware: h.firmware,
        protocol: version as u32,
        mic_sample_rates: h.mic_sample_rates,
        loopback_delay_us: h.loopback_delay_us as u64,
    }
}

/// A command from the host, as the rig receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The host's sequence number: echo it in Ack or Error.
    pub seq: u16,
    /// The host's protocol version (a Hello of another version still gets a HelloReply).
    pub version: u8,
    pub message: Message,
}

/// The rig's side of the protocol, for a simulated rig (and as a model for firmware).
#[derive(Debug, Clone, Default)]
pub struct RigSession {
    decoder: Decoder,
    seq: u16,
    version: Option<u8>,
}

impl RigSession {
    pub fn new() -> Self {
        Self::default()
    }

    /// A rig session that speaks another protocol version (to test the host's mismatch report).
    pub fn with_version(version: u8) -> Self {
        RigSession {
            version: Some(version),
            ..Self::default()
        }
    }

    /// Feed bytes from the host; the commands they complete, in order.
    /// Dropped frames are counted in [`decoder_stats`](Self::decoder_stats).
    pub fn receive(&mut self, bytes: &[u8]) -> Vec<Command> {
        self.decoder.push(bytes);
        let mut out = Vec::new();
        while let Some(r) = self.decoder.next() {
            if let Ok(f) = r {
                out.push(Command {
                    seq: f.seq,
                    version: f.version,
                    message: f.message,
                });
            }
        }
        out
    }

    /// The bytes of a message from the rig, with the rig's next sequence number.
    pub fn reply(&mut self, msg: &Message) -> Vec<u8> {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let mut out = Vec::with_capacity(32);
        encode_frame(self.version.unwrap_or(PROTOCOL_VERSION), seq, msg, &mut out);
        out
    }

    /// The bytes of an Ack of command `seq`.
    pub fn ack(&mut self, seq: u16) -> Vec<u8> {
        self.reply(&Message::Ack { seq })
    }

    /// The bytes of an Error answering command `seq`.
    pub fn error(&mut self, seq: u16, code: ErrorCode, message: &str) -> Vec<u8> {
        self.reply(&Message::Error {
            seq,
            code,
            message: message.into(),
        })
    }

    pub fn decoder_stats(&self) -> DecoderStats {
        self.decoder.stats()
    }
}

/// Assembles uploaded stimuli on the rig side from `StimulusData` chunks.
#[derive(Debug, Clone)]
pub struct StimulusStore {
    capacity: u32,
    slots: HashMap<u16, (Vec<i16>, u32)>,
}

impl StimulusStore {
    /// A store holding at most `capacity` samples over all stimuli.
    pub fn new(capacity: u32) -> Self {
        StimulusStore {
            capacity,
            slots: HashMap::new(),
        }
    }

    /// Take one chunk. A chunk at offset 0 starts the stimulus anew; others
    /// must continue it exactly.
    pub fn chunk(
        &mut self,
        id: u16,
        total: u32,
        offset: u32,
        samples: &[i16],
    ) -> Result<(), ErrorCode> {
        if offset == 0 {
            let used: u64 = self
                .slots
                .iter()
                .filter(|(k, _)| **k != id)
                .map(|(_, (v, _))| v.capacity() as u64)
                .sum();
            if used + total as u64 > self.capacity as u64 {
                return Err(ErrorCode::BufferFull);
            }
            self.slots
                .insert(id, (Vec::with_capacity(total as usize), total));
        }
        let (data, t) = self.slots.get_mut(&id).ok_or(ErrorCode::BadParameter)?;
        if *t != total
            || offset as usize != data.len()
            || data.len() + samples.len() > total as usize
        {
            return Err(ErrorCode::BadParameter);
        }
        data.extend_from_slice(samples);
        Ok(())
    }

    /// A complete stimulus.
    pub fn get(&self, id: u16) -> Option<&[i16]> {
        self.slots
            .get(&id)
            .filter(|(d, t)| d.len() == *t as usize)
            .map(|(d, _)| d.as_slice())
    }
}
