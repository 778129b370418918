//! The rig over a serial byte stream: the host adapter around the sans-IO
//! session of `station::rig`.
//!
//! Owns the I/O: a reader thread that feeds received bytes and their arrival
//! times to the session, routes sample blocks to the microphone stream's ring,
//! and hands replies to the command side; and the writes. It does not
//! interpret bytes itself (that is the session's) and knows nothing of
//! measurements.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::rig::codec::{f32_to_i16, stimulus_chunks, ErrorCode, Message};
use super::rig::session::{Event, HostSession};
use super::{LinkStats, Rig, RigInfo, StationError, StationResult, SyncExchange};
use crate::sampling::{Block, BlockSource, Read as BlockRead, SourceError};
use crate::time::{HostClock, RigTime};

/// How long the handshake may wait for the rig's answer.
const REPLY_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long one try of a command or sync request waits for its reply before
/// it is sent again (a frame damaged on the link is dropped, not repaired).
const TRY_TIMEOUT: Duration = Duration::from_millis(150);
/// Tries of a command or sync request before the rig is declared unresponsive.
const TRIES: u32 = 4;
/// Sample blocks the reader can hold for the microphone stream.
const MIC_RING: usize = 1024;

/// Open the rig on the serial port at `path` (a USB CDC-ACM port such as
/// /dev/ttyACM0, or the pseudo-terminal a `certlab sim rig` prints) and shake
/// hands with it.
pub fn open_port(path: &str, clock: HostClock) -> crate::Result<Box<dyn Rig>> {
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

/// A reply routed from the reader to the command side.
enum Reply {
    Handshake(Result<RigInfo, String>),
    Sync(SyncExchange),
    Ack(u16),
    Error(u16, String),
    Gone(String),
}

struct Shared {
    session: Mutex<HostSession>,
    mic: Mutex<Option<rtrb::Producer<Block>>>,
    mic_overruns: AtomicU64,
    stop: AtomicBool,
    /// The rig said it restarted, and has not been greeted since.
    restarted: AtomicBool,
    restarts: AtomicU64,
}

/// A rig on a serial port (or any byte stream), speaking protocol v1.
pub struct SerialRig {
    name: String,
    writer: Box<dyn Write + Send>,
    clock: HostClock,
    shared: Arc<Shared>,
    replies: Receiver<Reply>,
    reader: Option<JoinHandle<()>>,
    info: RigInfo,
    /// Stimuli in the rig's memory, by the address of their samples. The
    /// samples are held here so that the address cannot be reused by another
    /// stimulus while the rig still has this one under its id.
    uploaded: HashMap<usize, (Arc<[f32]>, u16)>,
    next_stimulus: u16,
}

impl SerialRig {
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

    /// Start the reader and shake hands. `reader` and `writer` are two handles
    /// of the same port; reads must time out now and then (so the reader can stop).
    pub fn connect(
        name: &str,
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        clock: HostClock,
    ) -> StationResult<SerialRig> {
        let shared = Arc::new(Shared {
            session: Mutex::new(HostSession::new()),
            mic: Mutex::new(None),
            mic_overruns: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            restarted: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("certlab-rig-reader".into())
            .spawn(move || reader_loop(reader, sh, tx, clock))
            .map_err(|e| StationError::Rig(format!("cannot start the rig reader: {e}")))?;
        let mut rig = SerialRig {
            name: name.to_string(),
            writer,
            clock,
            shared,
            replies: rx,
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
        };
        rig.handshake()?;
        Ok(rig)
    }

    fn handshake(&mut self) -> StationResult<()> {
        let name = self.name.clone();
        let bytes = lock(&self.shared.session).handshake(self.clock.now());
        self.write(&bytes)?;
        match self.wait_for(REPLY_TIMEOUT, true, |r| matches!(r, Reply::Handshake(_))) {
            Ok(Reply::Handshake(Ok(info))) => self.info = info,
            Ok(Reply::Handshake(Err(e))) => {
                return Err(StationError::Rig(format!("the rig on {name} cannot be used: {e}")))
            }
            Ok(_) => unreachable!("wait returns only what it was asked for"),
            Err(StationError::Rig(_)) => {
                return Err(StationError::Rig(format!(
                    "the rig on {name} did not answer the handshake within {} ms (is it a certlab rig, powered, on this port?)",
                    REPLY_TIMEOUT.as_millis()
                )))
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn restart_error(&self) -> StationError {
        StationError::RigRestarted(format!(
            "the rig on {} rebooted: its clock began again at zero and it forgot its stimuli and streams",
            self.name
        ))
    }

    fn write(&mut self, bytes: &[u8]) -> StationResult<()> {
        self.writer
            .write_all(bytes)
            .and_then(|_| self.writer.flush())
            .map_err(|e| {
                StationError::Disconnected(format!("rig {}: write failed: {e}", self.name))
            })
    }

    /// Wait for the reply `want` picks; errors and a vanished rig end the
    /// wait, and so does a restart of the rig unless this is the handshake
    /// (after a restart only a new handshake means anything).
    fn wait_for(
        &mut self,
        timeout: Duration,
        handshake: bool,
        want: impl Fn(&Reply) -> bool,
    ) -> StationResult<Reply> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if !handshake && self.shared.restarted.load(Ordering::Relaxed) {
                return Err(self.restart_error());
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.replies.recv_timeout(left) {
                Ok(Reply::Gone(why)) => {
                    return Err(StationError::Disconnected(format!(
                        "rig {}: {why}",
                        self.name
                    )))
                }
                Ok(r) if want(&r) => return Ok(r),
                Ok(_) => continue, // a late reply to an earlier request
                Err(RecvTimeoutError::Timeout) => {
                    return Err(StationError::Rig(format!(
                        "rig {} did not answer within {} ms",
                        self.name,
                        timeout.as_millis()
                    )))
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

    /// Send a command and wait for its Ack (or the rig's Error). Without a
    /// reply the same frame (same seq) is sent again: the rig answers a repeat
    /// of the command it last executed without executing it twice.
    fn command(&mut self, msg: &Message) -> StationResult<()> {
        let (seq, bytes) = lock(&self.shared.session).send_command(msg, self.clock.now());
        for _ in 0..TRIES {
            self.write(&bytes)?;
            match self.wait_for(
                TRY_TIMEOUT,
                false,
                |r| matches!(r, Reply::Ack(s) | Reply::Error(s, _) if *s == seq),
            ) {
                Ok(Reply::Ack(_)) => return Ok(()),
                Ok(Reply::Error(_, e)) => return Err(StationError::Rig(e)),
                Ok(_) => unreachable!("wait returns only what it was asked for"),
                Err(StationError::Rig(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(self.unresponsive())
    }

    fn unresponsive(&self) -> StationError {
        StationError::Rig(format!(
            "rig {} did not answer {TRIES} tries of {} ms each",
            self.name,
            TRY_TIMEOUT.as_millis()
        ))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn reader_loop(
    mut port: Box<dyn Read + Send>,
    sh: Arc<Shared>,
    tx: mpsc::Sender<Reply>,
    clock: HostClock,
) {
    let mut buf = [0u8; 4096];
    while !sh.stop.load(Ordering::Relaxed) {
        let n = match port.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Reply::Gone("the port closed".into()));
                return;
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                let _ = tx.send(Reply::Gone(format!("read failed: {e}")));
                return;
            }
        };
        let now = clock.now();
        let events = lock(&sh.session).receive(&buf[..n], now);
        for ev in events {
            let reply = match ev {
                Event::HandshakeDone { info, .. } => Reply::Handshake(Ok(info)),
                Event::VersionMismatch { rig, host } => {
                    Reply::Handshake(Err(Event::mismatch_text(rig, host)))
                }
                Event::SyncExchange(x) => Reply::Sync(x),
                Event::Ack(s) => Reply::Ack(s),
                Event::RigError { seq, code, msg } => {
                    if code == ErrorCode::Restarted && !sh.restarted.swap(true, Ordering::Relaxed) {
                        sh.restarts.fetch_add(1, Ordering::Relaxed);
                    }
                    Reply::Error(seq, format!("{code}: {msg}"))
                }
                Event::Block { block, .. } => {
                    if let Some(p) = lock(&sh.mic).as_mut() {
                        if p.push(block).is_err() {
                            sh.mic_overruns.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            if tx.send(reply).is_err() {
                return;
            }
        }
    }
}

impl Drop for SerialRig {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}

impl Rig for SerialRig {
    fn info(&self) -> RigInfo {
        self.info.clone()
    }

    fn sync_exchange(&mut self) -> StationResult<SyncExchange> {
        // A lost request or reply is just an exchange that did not happen:
        // send a new one (a late reply to the old cookie is counted as stale).
        for _ in 0..TRIES {
            let bytes = lock(&self.shared.session).send_sync(self.clock.now());
            self.write(&bytes)?;
            match self.wait_for(TRY_TIMEOUT, false, |r| matches!(r, Reply::Sync(_))) {
                Ok(Reply::Sync(x)) => return Ok(x),
                Ok(_) => unreachable!("wait returns only what it was asked for"),
                Err(StationError::Rig(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(self.unresponsive())
    }

    fn load(&mut self, samples: &Arc<[f32]>) -> StationResult<()> {
        self.upload(samples).map(|_| ())
    }

    fn play(&mut self, samples: Arc<[f32]>, sample_rate: u32, at: RigTime) -> StationResult<()> {
        let id = self.upload(&samples)?;
        self.command(&Message::Play {
            at,
            sample_rate,
            id,
        })
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
        let sess = lock(&self.shared.session);
        let d = sess.decoder_stats();
        LinkStats {
            frames: d.frames,
            corrupt_frames: d.dropped(),
            skipped_bytes: d.skipped_bytes,
            lost_frames: sess.rig_frames_lost(),
            restarts: self.shared.restarts.load(Ordering::Relaxed),
        }
    }

    fn restarted(&self) -> bool {
        self.shared.restarted.load(Ordering::Relaxed)
    }

    fn recover(&mut self) -> StationResult<()> {
        *lock(&self.shared.mic) = None;
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
                std::thread::sleep(Duration::from_micros(500));
                Ok(BlockRead::Idle)
            }
        }
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }
}
