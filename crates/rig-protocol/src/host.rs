//! The host's side of the protocol: a sans-IO session with its own timers.
//!
//! [`HostSession`] owns the handshake, sequence numbers, the pairing of
//! sync replies with their requests (by cookie), of Acks and Errors with
//! their commands (by seq), the retries of the protocol's rules (a command
//! unanswered for 150 ms is sent again with the same seq, up to 4 tries; a
//! sync request is replaced by one with a new cookie), restart detection and
//! the counting of what the link lost. Like quinn-proto's connection it does
//! no I/O and reads no clock: the caller queues requests, feeds received
//! bytes with [`handle_input`](HostSession::handle_input), writes what
//! [`poll_transmit`](HostSession::poll_transmit) gives, runs
//! [`handle_timeout`](HostSession::handle_timeout) when
//! [`poll_timeout`](HostSession::poll_timeout) says, and takes
//! [`HostEvent`]s from [`poll_event`](HostSession::poll_event).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::codec::{
    encode_frame_vec, Decoder, DecoderStats, ErrorCode, HelloReply, Message, MAX_BLOCK_SAMPLES,
    PROTOCOL_VERSION,
};
use crate::time::{HostTime, RigTime, SyncExchange};

/// The host's timers and tries.
#[derive(Debug, Clone, Copy)]
pub struct HostConfig {
    /// How long one try of a command or sync request waits for its reply, ns.
    pub try_timeout_ns: i64,
    /// Tries of a command or sync request before it is given up.
    pub tries: u32,
    /// How long one Hello waits for its HelloReply, ns.
    pub hello_timeout_ns: i64,
    /// Hellos sent before the handshake is given up.
    pub hello_tries: u32,
    /// A connected rig that sends nothing for this long is reported silent
    /// (it sends a Heartbeat each second when idle), ns.
    pub silence_ns: i64,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            try_timeout_ns: 150_000_000,
            tries: 4,
            hello_timeout_ns: 250_000_000,
            hello_tries: 4,
            silence_ns: 3_000_000_000,
        }
    }
}

/// What the rig said about itself, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RigHello {
    /// The protocol version of its frames.
    pub protocol: u8,
    /// Bitmask of `1 << sensor::*`.
    pub sensors: u8,
    pub loopback_delay_us: u32,
    pub stimulus_capacity: u32,
    pub mic_sample_rates: Vec<u32>,
    pub kind: String,
    pub firmware: String,
    pub serial: String,
}

impl RigHello {
    fn from_reply(h: &HelloReply<'_>, protocol: u8) -> Self {
        RigHello {
            protocol,
            sensors: h.sensors,
            loopback_delay_us: h.loopback_delay_us,
            stimulus_capacity: h.stimulus_capacity,
            mic_sample_rates: h.mic_sample_rates.iter().collect(),
            kind: h.kind.to_string(),
            firmware: h.firmware.to_string(),
            serial: h.serial.to_string(),
        }
    }
}

/// A block of samples from one of the rig's streams, by value (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SampleBlock {
    pub stream: u8,
    /// The stream's own block counter (+1 per block; gaps are lost blocks).
    pub seq: u32,
    /// Rig time of the first sample.
    pub t_first: RigTime,
    pub len: u16,
    pub samples: [i16; MAX_BLOCK_SAMPLES],
}

impl SampleBlock {
    pub fn samples(&self) -> &[i16] {
        &self.samples[..self.len as usize]
    }
}

impl core::fmt::Debug for SampleBlock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SampleBlock")
            .field("stream", &self.stream)
            .field("seq", &self.seq)
            .field("t_first", &self.t_first)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Why a command did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The rig refused it: the typed code, and its text for people.
    Refused { code: ErrorCode, message: String },
    /// No Ack or Error came back after every try.
    Unanswered { tries: u32 },
    /// The rig restarted: the command (and everything it scheduled) is void.
    Restarted,
    /// There is no handshaken rig to send it to.
    NotConnected,
}

impl core::fmt::Display for CommandError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CommandError::Refused { code, message } => write!(f, "{code}: {message}"),
            CommandError::Unanswered { tries } => {
                write!(f, "no answer to {tries} tries")
            }
            CommandError::Restarted => f.write_str("the rig restarted"),
            CommandError::NotConnected => f.write_str("no rig is connected"),
        }
    }
}

/// What the host learns, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // a SampleBlock by value: no allocation per block
pub enum HostEvent {
    /// The rig answered Hello in protocol version 1.
    Connected(RigHello),
    /// The rig speaks another protocol version; nothing else it says is understood.
    VersionMismatch {
        rig: u8,
        host: u8,
    },
    /// No HelloReply after every Hello.
    HandshakeFailed {
        tries: u32,
    },
    /// The rig rebooted since the handshake (an unsolicited Error
    /// *restarted* or HelloReply): greet it again with `connect`.
    Restarted,
    /// A sync request answered.
    Sync {
        id: u64,
        exchange: SyncExchange,
    },
    /// A sync request unanswered after every try.
    SyncFailed {
        id: u64,
        tries: u32,
    },
    /// The command sent with this seq was answered, or given up.
    CommandDone {
        seq: u16,
        result: Result<(), CommandError>,
    },
    Onset {
        sensor: u8,
        at: RigTime,
    },
    Block(SampleBlock),
    Heartbeat(RigTime),
    /// A connected rig has sent nothing since `since`.
    Silent {
        since: HostTime,
    },
    /// A message type this version does not know; skipped.
    Unknown(u8),
    /// A host-to-rig message type arrived from the rig; ignored.
    Unexpected(u8),
}

impl HostEvent {
    /// The host's report of a version mismatch.
    pub fn mismatch_text(rig: u8, host: u8) -> String {
        alloc::format!("rig speaks protocol {rig}, certlab speaks {host}")
    }
}

/// Where the handshake stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// `connect` was not called.
    Idle,
    /// Hello sent, no HelloReply yet.
    Greeting,
    Connected,
    /// The rig speaks protocol `rig`.
    Mismatch {
        rig: u8,
    },
    /// No HelloReply came.
    Failed,
    /// The rig restarted since the handshake.
    Restarted,
}

#[derive(Debug)]
enum Outgoing {
    Hello,
    Sync { id: u64, cookie: u32 },
    Command { seq: u16 },
}

#[derive(Debug)]
struct PendingCommand {
    frame: Vec<u8>,
    tries: u32,
    deadline: Option<HostTime>,
}

#[derive(Debug)]
struct PendingSync {
    tries: u32,
    deadline: Option<HostTime>,
}

/// What the session counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    pub decoder: DecoderStats,
    /// Rig frames missing from the rig's sequence numbers (lost or corrupt).
    pub rig_frames_lost: u64,
    /// Sync replies, Acks and Errors that matched nothing outstanding.
    pub stale_replies: u64,
    /// Commands sent again for want of an answer.
    pub command_retries: u64,
    /// Sync requests replaced for want of a reply.
    pub sync_retries: u64,
    /// Times the rig said it had restarted.
    pub restarts: u64,
}

/// The host's side of the protocol (see the module documentation).
#[derive(Debug)]
pub struct HostSession {
    decoder: Decoder,
    s: Inner,
}

/// Everything but the decoder, so that a decoded frame (which borrows the
/// decoder) can be handled.
#[derive(Debug)]
struct Inner {
    cfg: HostConfig,
    state: LinkState,
    rig: Option<RigHello>,
    seq: u16,
    cookie: u32,
    next_sync: u64,
    hello_tries: u32,
    hello_deadline: Option<HostTime>,
    /// HelloReplies still owed to Hellos of the current greeting.
    hellos_unanswered: u32,
    out: VecDeque<Outgoing>,
    events: VecDeque<HostEvent>,
    commands: BTreeMap<u16, PendingCommand>,
    syncs: BTreeMap<u64, PendingSync>,
    /// cookie → (sync id, host_send once sent)
    cookies: BTreeMap<u32, (u64, Option<HostTime>)>,
    last_rig_seq: Option<u16>,
    last_rx: Option<HostTime>,
    silent_reported: bool,
    stats: HostStats,
}

impl Default for HostSession {
    fn default() -> Self {
        Self::new(HostConfig::default())
    }
}

impl HostSession {
    pub fn new(cfg: HostConfig) -> Self {
        HostSession {
            decoder: Decoder::new(),
            s: Inner::new(cfg),
        }
    }

    pub fn config(&self) -> &HostConfig {
        &self.s.cfg
    }

    pub fn state(&self) -> &LinkState {
        &self.s.state
    }

    /// The rig's description, once the handshake is done.
    pub fn rig(&self) -> Option<&RigHello> {
        self.s.rig.as_ref()
    }

    pub fn stats(&self) -> HostStats {
        HostStats {
            decoder: self.decoder.stats(),
            ..self.s.stats
        }
    }

    /// Greet the rig (again): a 0x00 that ends whatever partial frame the
    /// rig holds, then Hello. Everything outstanding from before is void.
    pub fn connect(&mut self) {
        self.s.connect()
    }

    /// Ask for one clock-sync exchange; its [`HostEvent::Sync`] (or
    /// `SyncFailed`) carries the returned id.
    pub fn sync(&mut self) -> u64 {
        self.s.sync()
    }

    /// Send a host-to-rig command; its [`HostEvent::CommandDone`] carries the
    /// returned seq.
    pub fn command(&mut self, msg: &Message<'_>) -> u16 {
        self.s.command(msg)
    }

    /// Whether anything waits to be written.
    pub fn wants_transmit(&self) -> bool {
        !self.s.out.is_empty()
    }

    /// Append the next frame to write to `out` and return `true`, or `false`
    /// when nothing waits. Write it at once: `now` is when it goes out (a
    /// SyncRequest's `host_send`, and the start of every reply timer).
    pub fn poll_transmit(&mut self, now: HostTime, out: &mut Vec<u8>) -> bool {
        self.s.poll_transmit(now, out)
    }

    /// The next event, in the order things happened.
    pub fn poll_event(&mut self) -> Option<HostEvent> {
        self.s.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should run next.
    pub fn poll_timeout(&self) -> Option<HostTime> {
        self.s.poll_timeout()
    }

    /// Run every timer due at `now`: resend, replace or give up.
    pub fn handle_timeout(&mut self, now: HostTime) {
        self.s.handle_timeout(now)
    }

    /// Feed bytes read from the rig at host time `now` (the read's time: it
    /// becomes `host_recv` of any sync exchange completed).
    pub fn handle_input(&mut self, bytes: &[u8], now: HostTime) {
        let mut input = bytes;
        while let Some(r) = self.decoder.decode(&mut input) {
            if let Ok(frame) = r {
                self.s
                    .on_frame(frame.version, frame.seq, frame.message, now);
            }
        }
    }
}

impl Inner {
    fn new(cfg: HostConfig) -> Self {
        Inner {
            cfg,
            state: LinkState::Idle,
            rig: None,
            seq: 0,
            cookie: 0,
            next_sync: 0,
            hello_tries: 0,
            hello_deadline: None,
            hellos_unanswered: 0,
            out: VecDeque::new(),
            events: VecDeque::new(),
            commands: BTreeMap::new(),
            syncs: BTreeMap::new(),
            cookies: BTreeMap::new(),
            last_rig_seq: None,
            last_rx: None,
            silent_reported: false,
            stats: HostStats::default(),
        }
    }

    fn connect(&mut self) {
        self.abandon_all(CommandError::NotConnected);
        self.state = LinkState::Greeting;
        self.rig = None;
        self.hello_tries = 0;
        self.hellos_unanswered = 0;
        self.hello_deadline = None;
        self.silent_reported = false;
        self.out.push_back(Outgoing::Hello);
    }

    fn sync(&mut self) -> u64 {
        let id = self.next_sync;
        self.next_sync += 1;
        if self.state != LinkState::Connected {
            self.events
                .push_back(HostEvent::SyncFailed { id, tries: 0 });
            return id;
        }
        self.syncs.insert(
            id,
            PendingSync {
                tries: 0,
                deadline: None,
            },
        );
        self.queue_sync(id);
        id
    }

    fn queue_sync(&mut self, id: u64) {
        let cookie = self.cookie;
        self.cookie = self.cookie.wrapping_add(1);
        self.cookies.insert(cookie, (id, None));
        // Replies to tries long given up can still pair; bound the memory.
        while self.cookies.len() > 1024 {
            self.cookies.pop_first();
        }
        self.out.push_back(Outgoing::Sync { id, cookie });
    }

    fn command(&mut self, msg: &Message<'_>) -> u16 {
        let seq = self.next_seq();
        if self.state != LinkState::Connected {
            let e = if self.state == LinkState::Restarted {
                CommandError::Restarted
            } else {
                CommandError::NotConnected
            };
            self.events.push_back(HostEvent::CommandDone {
                seq,
                result: Err(e),
            });
            return seq;
        }
        let mut frame = Vec::with_capacity(32);
        encode_frame_vec(PROTOCOL_VERSION, seq, msg, &mut frame);
        self.commands.insert(
            seq,
            PendingCommand {
                frame,
                tries: 0,
                deadline: None,
            },
        );
        self.out.push_back(Outgoing::Command { seq });
        seq
    }

    fn next_seq(&mut self) -> u16 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        s
    }

    fn poll_transmit(&mut self, now: HostTime, out: &mut Vec<u8>) -> bool {
        while let Some(o) = self.out.pop_front() {
            match o {
                Outgoing::Hello => {
                    if self.state != LinkState::Greeting {
                        continue;
                    }
                    out.push(0);
                    let seq = self.next_seq();
                    Message::Hello.encode(seq, out);
                    self.hello_tries += 1;
                    self.hellos_unanswered += 1;
                    self.hello_deadline = Some(now.plus_ns(self.cfg.hello_timeout_ns));
                    return true;
                }
                Outgoing::Sync { id, cookie } => {
                    let Some(p) = self.syncs.get_mut(&id) else {
                        continue;
                    };
                    p.tries += 1;
                    p.deadline = Some(now.plus_ns(self.cfg.try_timeout_ns));
                    if let Some(c) = self.cookies.get_mut(&cookie) {
                        c.1 = Some(now);
                    }
                    let seq = self.next_seq();
                    Message::SyncRequest { cookie }.encode(seq, out);
                    return true;
                }
                Outgoing::Command { seq } => {
                    let Some(p) = self.commands.get_mut(&seq) else {
                        continue;
                    };
                    p.tries += 1;
                    p.deadline = Some(now.plus_ns(self.cfg.try_timeout_ns));
                    out.extend_from_slice(&p.frame);
                    return true;
                }
            }
        }
        false
    }

    fn poll_timeout(&self) -> Option<HostTime> {
        let mut t: Option<HostTime> = None;
        let mut consider = |d: Option<HostTime>| {
            if let Some(d) = d {
                t = Some(t.map_or(d, |x| x.min(d)));
            }
        };
        if self.state == LinkState::Greeting {
            consider(self.hello_deadline);
        }
        for p in self.commands.values() {
            consider(p.deadline);
        }
        for p in self.syncs.values() {
            consider(p.deadline);
        }
        if self.state == LinkState::Connected && !self.silent_reported {
            consider(self.last_rx.map(|r| r.plus_ns(self.cfg.silence_ns)));
        }
        t
    }

    fn handle_timeout(&mut self, now: HostTime) {
        if self.state == LinkState::Greeting && self.hello_deadline.is_some_and(|d| now >= d) {
            self.hello_deadline = None;
            if self.hello_tries < self.cfg.hello_tries {
                self.out.push_back(Outgoing::Hello);
            } else {
                self.state = LinkState::Failed;
                self.events.push_back(HostEvent::HandshakeFailed {
                    tries: self.hello_tries,
                });
            }
        }
        let due: Vec<u16> = self
            .commands
            .iter()
            .filter(|(_, p)| p.deadline.is_some_and(|d| now >= d))
            .map(|(s, _)| *s)
            .collect();
        for seq in due {
            let Some(p) = self.commands.get_mut(&seq) else {
                continue;
            };
            p.deadline = None;
            if p.tries < self.cfg.tries {
                self.stats.command_retries += 1;
                self.out.push_back(Outgoing::Command { seq });
            } else {
                let tries = p.tries;
                self.commands.remove(&seq);
                self.events.push_back(HostEvent::CommandDone {
                    seq,
                    result: Err(CommandError::Unanswered { tries }),
                });
            }
        }
        let due: Vec<u64> = self
            .syncs
            .iter()
            .filter(|(_, p)| p.deadline.is_some_and(|d| now >= d))
            .map(|(i, _)| *i)
            .collect();
        for id in due {
            let Some(p) = self.syncs.get_mut(&id) else {
                continue;
            };
            p.deadline = None;
            if p.tries < self.cfg.tries {
                self.stats.sync_retries += 1;
                self.queue_sync(id);
            } else {
                let tries = p.tries;
                self.syncs.remove(&id);
                self.events.push_back(HostEvent::SyncFailed { id, tries });
            }
        }
        if self.state == LinkState::Connected && !self.silent_reported {
            if let Some(r) = self.last_rx {
                if now >= r.plus_ns(self.cfg.silence_ns) {
                    self.silent_reported = true;
                    self.events.push_back(HostEvent::Silent { since: r });
                }
            }
        }
    }

    fn abandon_all(&mut self, why: CommandError) {
        let seqs: Vec<u16> = self.commands.keys().copied().collect();
        for seq in seqs {
            self.commands.remove(&seq);
            self.events.push_back(HostEvent::CommandDone {
                seq,
                result: Err(why.clone()),
            });
        }
        let ids: Vec<u64> = self.syncs.keys().copied().collect();
        for id in ids {
            self.syncs.remove(&id);
            self.events
                .push_back(HostEvent::SyncFailed { id, tries: 0 });
        }
        self.cookies.clear();
        self.out.clear();
    }
}

impl Inner {
    /// The rig restarted: everything outstanding is void until a new handshake.
    fn restarted(&mut self) {
        self.state = LinkState::Restarted;
        self.stats.restarts += 1;
        let seqs: Vec<u16> = self.commands.keys().copied().collect();
        for seq in seqs {
            self.commands.remove(&seq);
            self.events.push_back(HostEvent::CommandDone {
                seq,
                result: Err(CommandError::Restarted),
            });
        }
        let ids: Vec<u64> = self.syncs.keys().copied().collect();
        for id in ids {
            self.syncs.remove(&id);
            self.events
                .push_back(HostEvent::SyncFailed { id, tries: 0 });
        }
        self.cookies.clear();
        self.out.clear();
        self.events.push_back(HostEvent::Restarted);
    }

    fn settle(&mut self, seq: u16, result: Result<(), CommandError>) {
        if self.commands.remove(&seq).is_some() {
            self.events
                .push_back(HostEvent::CommandDone { seq, result });
        } else {
            self.stats.stale_replies += 1;
        }
    }
}

impl Inner {
    fn on_frame(&mut self, version: u8, seq: u16, message: Message<'_>, now: HostTime) {
        let p = self;
        p.last_rx = Some(now);
        p.silent_reported = false;
        if version != PROTOCOL_VERSION {
            if !matches!(p.state, LinkState::Mismatch { rig } if rig == version) {
                p.state = LinkState::Mismatch { rig: version };
                p.hello_deadline = None;
                p.events.push_back(HostEvent::VersionMismatch {
                    rig: version,
                    host: PROTOCOL_VERSION,
                });
            }
            return;
        }
        if let Some(last) = p.last_rig_seq {
            let gap = seq.wrapping_sub(last).wrapping_sub(1);
            // A large jump backwards is a rig restart, not a loss.
            if gap < 0x8000 {
                p.stats.rig_frames_lost += gap as u64;
            }
        }
        p.last_rig_seq = Some(seq);
        match message {
            Message::HelloReply(h) => {
                if p.hellos_unanswered > 0 {
                    p.hellos_unanswered -= 1;
                    if p.state == LinkState::Greeting {
                        let hello = RigHello::from_reply(&h, version);
                        p.rig = Some(hello.clone());
                        p.state = LinkState::Connected;
                        p.hello_deadline = None;
                        p.events.push_back(HostEvent::Connected(hello));
                    }
                } else if p.state == LinkState::Connected {
                    // A HelloReply nobody asked for: the rig rebooted.
                    p.restarted();
                }
            }
            Message::SyncReply { cookie, rig } => match p.cookies.remove(&cookie) {
                Some((id, Some(host_send))) if p.syncs.remove(&id).is_some() => {
                    p.events.push_back(HostEvent::Sync {
                        id,
                        exchange: SyncExchange {
                            host_send,
                            rig,
                            host_recv: now,
                        },
                    });
                }
                _ => p.stats.stale_replies += 1,
            },
            Message::Ack { seq } => p.settle(seq, Ok(())),
            Message::Error {
                seq,
                code: ErrorCode::Restarted,
                ..
            } => {
                match p.state {
                    LinkState::Connected => p.restarted(),
                    // An announcement from before this handshake: the Hello
                    // that is on its way answers it.
                    _ => p.stats.stale_replies += 1,
                }
                let _ = seq;
            }
            Message::Error { seq, code, message } => p.settle(
                seq,
                Err(CommandError::Refused {
                    code,
                    message: message.to_string(),
                }),
            ),
            Message::Onset { sensor, at } => p.events.push_back(HostEvent::Onset { sensor, at }),
            Message::SampleBlock {
                stream,
                seq,
                t_first,
                samples,
            } => {
                let mut b = SampleBlock {
                    stream,
                    seq,
                    t_first,
                    len: 0,
                    samples: [0; MAX_BLOCK_SAMPLES],
                };
                b.len = samples.copy_to(&mut b.samples) as u16;
                p.events.push_back(HostEvent::Block(b));
            }
            Message::Heartbeat { now: t } => p.events.push_back(HostEvent::Heartbeat(t)),
            Message::Unknown { msg_type, .. } => p.events.push_back(HostEvent::Unknown(msg_type)),
            m => p.events.push_back(HostEvent::Unexpected(m.msg_type())),
        }
    }
}
