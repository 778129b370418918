//! The rig over a serial byte stream: the host's thin adapter around the
//! sans-IO session of the `rig-protocol` crate.
//!
//! Owns the I/O and nothing else: a reader thread that stamps each read
//! with host time as it returns, feeds it to the session and routes sample
//! blocks (converted to the sampling core's [`Block`]) into the microphone
//! ring; the writes, stamped as they go out; and the waits, which run the
//! session's timers. Retries, pairing and restart detection are the
//! session's; this adapter interprets no bytes and knows no measurement.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rig_protocol::codec::sensor;
use rig_protocol::{
    stimulus_chunks, CommandError, ErrorCode, HostEvent, HostSession, LinkState, Message, RigHello,
    SampleBlock,
};

use super::{LinkStats, Rig, RigInfo, RigOnset, StationError, StationResult, SyncExchange};
use crate::sampling::{Block, BlockSource, Read as BlockRead, SourceError, BLOCK_LEN};
use crate::time::wait::{self, Receiver, RecvTimeoutError};
use crate::time::{Clock, RigTime};

/// Sample blocks the reader can hold for the microphone stream.
const MIC_RING: usize = 1024;
/// The longest a wait sleeps without looking at the session's timers.
const MAX_WAIT: Duration = Duration::from_millis(250);

/// Open the rig on the serial port at `path` (a USB CDC-ACM port such as
/// /dev/ttyACM0, or the pseudo-terminal a `certlab sim rig` prints) and shake
/// hands with it.
pub fn open_port(path: &str, clock: Clock) -> crate::Result<Box<dyn Rig>> {
    use crate::Error;
    use serialport::SerialPort;
    if !std::path::Path::new(path).exists() {
        return Err(Error::Device(format!(
            "no serial port at {path} for the rig; `certlab devices` lists the ports"
        )));
    }
    let fail =
        |e: &dyn std::fmt::Display| Error::Device(format!("cannot open the rig on {path}: {e}"));
    let port = serialport::new(path, 115_200)
        .timeout(Duration::from_millis(50))
        .open_native()
        .map_err(|e| fail(&e))?;
    // Whatever the rig sent before this run (a stream a crashed run left on)
    // is stale; the codec would skip it, but it need not be read at all.
    let _ = port.clear(serialport::ClearBuffer::Input);
    let reader = port.try_clone_native().map_err(|e| fail(&e))?;
    let rig = SerialRig::connect(path, Box::new(reader), Box::new(port), clock)
        .map_err(|e| Error::Device(format!("rig on {path}: {e}")))?;
    Ok(Box::new(rig))
}

/// What the reader hands the waiting side.
enum Incoming {
    /// Boxed: a block-sized event never goes this way, only replies.
    Event(Box<HostEvent>),
    Gone(String),
}

struct Shared {
    session: Mutex<HostSession>,
    mic: Mutex<Option<rtrb::Producer<Block>>>,
    mic_overruns: AtomicU64,
    stop: AtomicBool,
    /// The rig said it restarted, and has not been greeted since.
    restarted: AtomicBool,
    /// Onsets and firings reported, not yet taken.
    onsets: Mutex<std::collections::VecDeque<RigOnset>>,
    /// Given when microphone blocks arrive, so the stream's reader waits
    /// instead of polling.
    mic_ready: wait::Notify,
}

/// Onsets kept for `take_onsets` (older ones are dropped).
const MAX_ONSETS: usize = 4096;

/// A rig on a serial port (or any byte stream), speaking protocol v1.
pub struct SerialRig {
    name: String,
    writer: Box<dyn Write + Send>,
    clock: Clock,
    shared: Arc<Shared>,
    incoming: Receiver<Incoming>,
    reader: Option<JoinHandle<()>>,
    info: RigInfo,
    /// Stimuli in the rig's memory, by the address of their samples. The
    /// samples are held here so that the address cannot be reused by another
    /// stimulus while the rig still has this one under its id.
    uploaded: HashMap<usize, (Arc<[f32]>, u16)>,
    next_stimulus: u16,
    tx: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The station's description of a rig from its HelloReply.
fn rig_info(h: &RigHello) -> RigInfo {
    RigInfo {
        kind: h.kind.clone(),
        serial: h.serial.clone(),
        firmware: h.firmware.clone(),
        protocol: h.protocol as u32,
        mic_sample_rates: h.mic_sample_rates.clone(),
        loopback_delay_us: h.loopback_delay_us as u64,
    }
}

/// A rig block as the sampling core's [`Block`]: `t_first_ns` = µs × 1000,
/// samples i16 / 32768. A CRC-checked block is never corrupt.
pub fn to_block(b: &SampleBlock) -> Block {
    let mut out = Block::EMPTY;
    let n = (b.len as usize).min(BLOCK_LEN);
    out.seq = b.seq as u64;
    out.t_first_ns = (b.t_first.0 as i64).saturating_mul(1000);
    out.len = n as u16;
    out.corrupt = false;
    for (d, s) in out.data.iter_mut().zip(&b.samples[..n]) {
        *d = *s as f32 / 32768.0;
    }
    out
}

/// An f32 sample (nominally in [-1, 1]) to i16 PCM, clamped: round(x × 32767)
/// (so +1.0 stays representable; decoding divides by 32768).
pub fn f32_to_i16(x: f32) -> i16 {
    if x.is_nan() {
        return 0;
    }
    (x.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

impl SerialRig {
    /// Start the reader and shake hands. `reader` and `writer` are two handles
    /// of the same port; reads must time out now and then (so the reader can stop).
    pub fn connect(
        name: &str,
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        clock: Clock,
    ) -> StationResult<SerialRig> {
        let _p = clock.participate();
        let shared = Arc::new(Shared {
            session: Mutex::new(HostSession::default()),
            mic: Mutex::new(None),
            mic_overruns: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            restarted: AtomicBool::new(false),
            onsets: Mutex::new(std::collections::VecDeque::new()),
            mic_ready: wait::Notify::new(&clock),
        });
        let (tx, rx) = wait::channel(&clock);
        let sh = shared.clone();
        let c = clock.clone();
        let thread = clock
            .spawn("certlab-rig-reader", move || reader_loop(reader, sh, tx, c))
            .map_err(|e| StationError::Rig(format!("cannot start the rig reader: {e}")))?;
        let mut rig = SerialRig {
            name: name.to_string(),
            writer,
            clock,
            shared,
            incoming: rx,
            reader: Some(thread),
            info: RigInfo {
                kind: String::new(),
                serial: String::new(),
                firmware: String::new(),
                protocol: 0,
                mic_sample_rates: Vec::new(),
                loopback_delay_us: 0,
            },
            uploaded: HashMap::new(),
            next_stimulus: 1,
            tx: Vec::with_capacity(1024),
        };
        rig.handshake()?;
        Ok(rig)
    }

    fn handshake(&mut self) -> StationResult<()> {
        lock(&self.shared.session).connect();
        let name = self.name.clone();
        let hello_ms = {
            let s = lock(&self.shared.session);
            let c = s.config();
            c.hello_timeout_ns * c.hello_tries as i64 / 1_000_000
        };
        self.wait(true, |ev| match ev {
            HostEvent::Connected(h) => Some(Ok(rig_info(h))),
            HostEvent::VersionMismatch { rig, host } => Some(Err(StationError::Rig(format!(
                "the rig on {name} cannot be used: {}",
                HostEvent::mismatch_text(*rig, *host)
            )))),
            HostEvent::HandshakeFailed { .. } => Some(Err(StationError::Rig(format!(
                "the rig on {name} did not answer the handshake within {hello_ms} ms \
                 (is it a certlab rig, powered, on this port?)"
            )))),
            _ => None,
        })
        .and_then(|r| r)
        .map(|info| self.info = info)
    }

    fn restart_error(&self) -> StationError {
        StationError::RigRestarted(format!(
            "the rig on {} rebooted: its clock began again at zero and it forgot its stimuli and streams",
            self.name
        ))
    }

    /// Write everything the session has to send, each frame stamped as it
    /// is taken (a SyncRequest's send time is that stamp).
    fn flush(&mut self) -> StationResult<()> {
        loop {
            self.tx.clear();
            let more = {
                let mut s = lock(&self.shared.session);
                s.poll_transmit(self.clock.now(), &mut self.tx)
            };
            if !more {
                return Ok(());
            }
            self.writer
                .write_all(&self.tx)
                .and_then(|_| self.writer.flush())
                .map_err(|e| {
                    StationError::Disconnected(format!("rig {}: write failed: {e}", self.name))
                })?;
        }
    }

    /// Send what is queued and wait for the event `want` picks, running the
    /// session's timers meanwhile (its retries and give-ups end every wait).
    /// A vanished rig ends the wait, and so does a restart of the rig unless
    /// this is the handshake (after a restart only a handshake means anything).
    fn wait<R>(
        &mut self,
        handshake: bool,
        mut want: impl FnMut(&HostEvent) -> Option<R>,
    ) -> StationResult<R> {
        let _p = self.clock.participate();
        loop {
            self.flush()?;
            if !handshake && self.shared.restarted.load(Ordering::Relaxed) {
                return Err(self.restart_error());
            }
            let next = lock(&self.shared.session).poll_timeout();
            let wait = next.map_or(MAX_WAIT, |t| {
                Duration::from_nanos((t.0 - self.clock.now().0).max(0) as u64).min(MAX_WAIT)
            });
            match self.incoming.recv_timeout(wait) {
                Ok(Incoming::Gone(why)) => {
                    return Err(StationError::Disconnected(format!(
                        "rig {}: {why}",
                        self.name
                    )))
                }
                Ok(Incoming::Event(ev)) => {
                    if let Some(r) = want(&ev) {
                        return Ok(r);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    // The timers' verdicts (a give-up, a retry's silence)
                    // come from no byte the reader saw: take them here.
                    let mut due = Vec::new();
                    {
                        let mut s = lock(&self.shared.session);
                        s.handle_timeout(self.clock.now());
                        while let Some(ev) = s.poll_event() {
                            due.push(ev);
                        }
                    }
                    let mut found = None;
                    for ev in due {
                        if let Some(ev) = route(&self.shared, ev) {
                            if found.is_none() {
                                found = want(&ev);
                            }
                        }
                    }
                    if let Some(r) = found {
                        return Ok(r);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(StationError::Disconnected(format!(
                        "rig {}: the reader stopped",
                        self.name
                    )))
                }
            }
        }
    }

    /// Send a command and wait for its Ack, the rig's typed refusal, or the
    /// session giving up after its tries.
    fn command(&mut self, msg: &Message<'_>) -> StationResult<()> {
        let seq = lock(&self.shared.session).command(msg);
        let result = self.wait(false, |ev| match ev {
            HostEvent::CommandDone { seq: s, result } if *s == seq => Some(result.clone()),
            _ => None,
        })?;
        match result {
            Ok(()) => Ok(()),
            Err(CommandError::Refused { code, message }) => {
                Err(StationError::RigRefused { code, message })
            }
            Err(CommandError::Restarted) => Err(self.restart_error()),
            Err(e @ CommandError::Unanswered { .. }) => Err(self.unresponsive(&e)),
            Err(CommandError::NotConnected) => Err(StationError::Rig(format!(
                "rig {}: no handshake with the rig",
                self.name
            ))),
        }
    }

    fn unresponsive(&self, e: &CommandError) -> StationError {
        let ms = lock(&self.shared.session).config().try_timeout_ns / 1_000_000;
        StationError::Rig(format!(
            "rig {} did not answer: {e} of {ms} ms each",
            self.name
        ))
    }

    /// The rig's id for `samples`, uploading them first if it does not
    /// have them: once per stimulus, whatever the number of shots.
    fn upload(&mut self, samples: &Arc<[f32]>) -> StationResult<u16> {
        let key = Arc::as_ptr(samples) as *const f32 as usize;
        if let Some((_, id)) = self.uploaded.get(&key) {
            return Ok(*id);
        }
        let id = self.next_stimulus;
        self.next_stimulus = self.next_stimulus.wrapping_add(1).max(1);
        let pcm: Vec<i16> = samples.iter().map(|&s| f32_to_i16(s)).collect();
        for chunk in stimulus_chunks(id, &pcm) {
            self.command(&chunk)?;
        }
        self.uploaded.insert(key, (samples.clone(), id));
        Ok(id)
    }
}

/// Deliver an event where it belongs: microphone blocks into the ring
/// (never through a channel), a restart into the flag; what a waiting
/// command may want is given back.
fn route(sh: &Shared, ev: HostEvent) -> Option<HostEvent> {
    match ev {
        HostEvent::Block(b) => {
            if b.stream == sensor::MIC {
                if let Some(p) = lock(&sh.mic).as_mut() {
                    if p.push(to_block(&b)).is_err() {
                        sh.mic_overruns.fetch_add(1, Ordering::Relaxed);
                    }
                }
                sh.mic_ready.notify();
            }
            None
        }
        HostEvent::Onset { sensor, at } => {
            let mut q = lock(&sh.onsets);
            if q.len() >= MAX_ONSETS {
                q.pop_front();
            }
            q.push_back(RigOnset { sensor, at });
            None
        }
        HostEvent::Heartbeat(_) | HostEvent::Unknown(_) => None,
        ev => {
            if matches!(ev, HostEvent::Restarted) {
                sh.restarted.store(true, Ordering::Relaxed);
            }
            Some(ev)
        }
    }
}

fn reader_loop(
    mut port: Box<dyn Read + Send>,
    sh: Arc<Shared>,
    tx: wait::Sender<Incoming>,
    clock: Clock,
) {
    let mut buf = [0u8; 4096];
    let mut out: Vec<HostEvent> = Vec::with_capacity(64);
    while !sh.stop.load(Ordering::Relaxed) {
        let n = match port.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Incoming::Gone("the port closed".into()));
                return;
            }
            Ok(n) => n,
            Err(e) if crate::station::is_quiet(&e) => continue,
            Err(e) => {
                let _ = tx.send(Incoming::Gone(format!("read failed: {e}")));
                return;
            }
        };
        // Stamped as the read returns, before any lock: a sync reply's
        // receive time is this.
        let now = clock.now();
        {
            let mut s = lock(&sh.session);
            s.handle_input(&buf[..n], now);
            while let Some(ev) = s.poll_event() {
                out.push(ev);
            }
        }
        for ev in out.drain(..) {
            if let Some(ev) = route(&sh, ev) {
                if tx.send(Incoming::Event(Box::new(ev))).is_err() {
                    return;
                }
            }
        }
    }
}

impl Drop for SerialRig {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.reader.take() {
            let _ = self.clock.blocking(|| t.join());
        }
    }
}

impl Rig for SerialRig {
    fn info(&self) -> RigInfo {
        self.info.clone()
    }

    fn sync_exchange(&mut self) -> StationResult<SyncExchange> {
        let id = lock(&self.shared.session).sync();
        let r = self.wait(false, |ev| match ev {
            HostEvent::Sync { id: i, exchange } if *i == id => Some(Ok(*exchange)),
            HostEvent::SyncFailed { id: i, tries } if *i == id => Some(Err(*tries)),
            _ => None,
        })?;
        r.map_err(|tries| {
            if lock(&self.shared.session).state() == &LinkState::Restarted {
                self.restart_error()
            } else {
                self.unresponsive(&CommandError::Unanswered { tries })
            }
        })
    }

    fn load(&mut self, samples: &Arc<[f32]>) -> StationResult<()> {
        self.upload(samples).map(|_| ())
    }

    fn play(&mut self, samples: Arc<[f32]>, sample_rate: u32, at: RigTime) -> StationResult<()> {
        let id = self.upload(&samples)?;
        let play = Message::Play {
            at,
            sample_rate,
            id,
        };
        match self.command(&play) {
            // The rig made room for another stimulus by forgetting this one:
            // upload it again (under a new id) and play that.
            Err(StationError::RigRefused {
                code: ErrorCode::UnknownStimulus,
                ..
            }) => {
                self.uploaded
                    .remove(&(Arc::as_ptr(&samples) as *const f32 as usize));
                let id = self.upload(&samples)?;
                self.command(&Message::Play {
                    at,
                    sample_rate,
                    id,
                })
            }
            r => r,
        }
    }

    fn flash_led(&mut self, at: RigTime, duration_us: u64) -> StationResult<()> {
        self.command(&Message::FlashLed {
            at,
            duration_us: duration_us.min(u32::MAX as u64) as u32,
        })
    }

    fn press_button(&mut self, at: RigTime, hold_us: u64) -> StationResult<()> {
        self.command(&Message::PressButton {
            at,
            hold_us: hold_us.min(u32::MAX as u64) as u32,
        })
    }

    fn set_loopback(&mut self, on: bool) -> StationResult<()> {
        self.command(&Message::SetLoopback { on })
    }

    fn link_stats(&self) -> LinkStats {
        let st = lock(&self.shared.session).stats();
        LinkStats {
            frames: st.decoder.frames,
            corrupt_frames: st.decoder.dropped(),
            skipped_bytes: st.decoder.skipped_bytes,
            lost_frames: st.rig_frames_lost,
            restarts: st.restarts,
            ..LinkStats::default()
        }
    }

    fn restarted(&self) -> bool {
        self.shared.restarted.load(Ordering::Relaxed)
    }

    fn take_onsets(&mut self) -> Vec<RigOnset> {
        lock(&self.shared.onsets).drain(..).collect()
    }

    fn recover(&mut self) -> StationResult<()> {
        *lock(&self.shared.mic) = None;
        // Onsets of the old clock mean nothing in the new one.
        lock(&self.shared.onsets).clear();
        self.uploaded.clear();
        self.handshake()?;
        self.shared.restarted.store(false, Ordering::Relaxed);
        Ok(())
    }

    fn stop_streams(&mut self) -> StationResult<()> {
        self.command(&Message::StreamMic {
            sample_rate: 0,
            on: false,
        })?;
        *lock(&self.shared.mic) = None;
        Ok(())
    }

    fn mic_stream(&mut self, sample_rate: u32) -> StationResult<Box<dyn BlockSource>> {
        let (p, c) = rtrb::RingBuffer::new(MIC_RING);
        *lock(&self.shared.mic) = Some(p);
        self.command(&Message::StreamMic {
            sample_rate,
            on: true,
        })?;
        Ok(Box::new(MicStream {
            consumer: c,
            rate: sample_rate,
            shared: self.shared.clone(),
            name: self.name.clone(),
        }))
    }
}

/// The rig's microphone stream as the reader thread delivers it.
struct MicStream {
    consumer: rtrb::Consumer<Block>,
    rate: u32,
    shared: Arc<Shared>,
    name: String,
}

impl BlockSource for MicStream {
    fn read_block(&mut self, out: &mut Block) -> Result<BlockRead, SourceError> {
        match self.consumer.pop() {
            Ok(b) => {
                *out = b;
                Ok(BlockRead::Block)
            }
            Err(_) if self.shared.stop.load(Ordering::Relaxed) || self.consumer.is_abandoned() => {
                Err(SourceError::Disconnected(format!(
                    "rig {}: the stream ended",
                    self.name
                )))
            }
            Err(_) => {
                // Until the reader brings a block (a 256-sample block is 5 ms
                // at 48 kHz), or a little while.
                self.shared.mic_ready.wait(Duration::from_millis(2));
                Ok(BlockRead::Idle)
            }
        }
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }
}
