//! The simulated rig's firmware: protocol v1 over a byte stream (a pty), in
//! front of the simulated rig's hardware.
//!
//! Owns the rig side of the wire: decoding host commands with the sans-IO
//! `RigSession`, answering them, and streaming the microphone as SampleBlock
//! frames. The hardware behaviour (clock, link delays, physics) stays in
//! `SimRig`. The host learns nothing here that a real rig would not tell it.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::SimRig;
use crate::sampling::{Block, Read as BlockRead};
use crate::station::rig::codec::{f32_to_i16, sensor, ErrorCode, HelloReply, Message};
use crate::station::rig::session::RigSession;
use crate::station::{Rig, StationError};

/// The rig's side of the link: the port, and the noise injected on it.
struct Link {
    port: Box<dyn Write + Send>,
    garbage: Option<(f64, usize)>,
    rng: rand::rngs::StdRng,
    /// True-time windows in which the firmware is frozen (stalls, reboots).
    frozen: Arc<Mutex<Vec<(f64, f64)>>>,
    clock: crate::time::HostClock,
}

/// The end of the frozen window `now` falls in, if any.
fn frozen_until(frozen: &Mutex<Vec<(f64, f64)>>, now: f64) -> Option<f64> {
    lock(frozen)
        .iter()
        .find(|(a, b)| (*a..*b).contains(&now))
        .map(|w| w.1)
}

type Writer = Arc<Mutex<Link>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running firmware; dropping it stops it.
pub struct Firmware {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Firmware {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Firmware {
    /// Serve the protocol on `reader`/`writer` (two handles of one port whose
    /// reads time out now and then) in front of `rig`.
    pub fn start(
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        rig: SimRig,
    ) -> std::io::Result<Firmware> {
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::Builder::new()
            .name("certlab-sim-rig".into())
            .spawn(move || serve(reader, writer, rig, st))?;
        Ok(Firmware {
            stop,
            thread: Some(thread),
        })
    }

    /// Serve until the port closes or `stop` is set (for `certlab sim rig`).
    pub fn run(
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        rig: SimRig,
        stop: Arc<AtomicBool>,
    ) {
        serve(reader, writer, rig, stop)
    }
}

struct Streamer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Streamer {
    fn halt(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

fn send(writer: &Writer, bytes: &[u8]) -> bool {
    use rand::Rng;
    let mut guard = lock(writer);
    let w = &mut *guard;
    // A frozen firmware sends nothing until it thaws.
    while let Some(end) = frozen_until(&w.frozen, w.clock.now().as_secs_f64()) {
        w.clock
            .sleep_until(crate::time::HostTime::from_secs_f64(end));
    }
    if let Some((p, max)) = w.garbage {
        if w.rng.random_bool(p) {
            let n = w.rng.random_range(1..=max.max(1));
            let noise: Vec<u8> = (0..n).map(|_| w.rng.random()).collect();
            if w.port.write_all(&noise).is_err() {
                return false;
            }
        }
    }
    w.port.write_all(bytes).and_then(|_| w.port.flush()).is_ok()
}

fn serve(
    mut reader: Box<dyn Read + Send>,
    port: Box<dyn Write + Send>,
    mut rig: SimRig,
    stop: Arc<AtomicBool>,
) {
    use super::scenario::Fault;
    use rand::SeedableRng;
    let faults = rig.world.sc.faults.clone();
    let frozen: Arc<Mutex<Vec<(f64, f64)>>> = Arc::new(Mutex::new(
        faults
            .iter()
            .filter_map(|f| match f {
                Fault::RigStall { at_s, duration_ms } => Some((*at_s, at_s + duration_ms * 1e-3)),
                Fault::RigReset { at_s, boot_ms } => Some((*at_s, at_s + boot_ms * 1e-3)),
                _ => None,
            })
            .collect(),
    ));
    let mut resets: Vec<f64> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::RigReset { at_s, .. } => Some(*at_s),
            _ => None,
        })
        .collect();
    resets.sort_by(f64::total_cmp);
    let mut resets = resets.into_iter().peekable();
    // Set by a reboot: everything but Hello is answered `restarted`.
    let mut restarted = false;
    let writer: Writer = Arc::new(Mutex::new(Link {
        frozen: frozen.clone(),
        clock: rig.world.clock,
        port,
        garbage: faults.iter().find_map(|f| match f {
            Fault::RigGarbage {
                probability,
                max_bytes,
            } => Some((*probability, *max_bytes)),
            _ => None,
        }),
        rng: rand::rngs::StdRng::seed_from_u64(rig.world.sc.seed ^ 0x6a7b),
    }));
    let version = faults.iter().find_map(|f| match f {
        Fault::RigProtocol { version } => Some(*version),
        _ => None,
    });
    let silent = faults.iter().any(|f| matches!(f, Fault::RigSilent));
    let unplug_at = faults.iter().find_map(|f| match f {
        Fault::RigDisconnect { at_s } => Some(*at_s),
        _ => None,
    });
    let session = Arc::new(Mutex::new(match version {
        Some(v) => RigSession::with_version(v),
        None => RigSession::new(),
    }));
    let mut store = crate::station::rig::session::StimulusStore::new(4 * 1024 * 1024);
    let mut streamer: Option<Streamer> = None;
    let mut last: Option<(u16, Vec<u8>)> = None;
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let now = rig.world.now();
        if unplug_at.is_some_and(|t| now >= t) {
            break; // the port closes: the host sees the rig vanish
        }
        if resets.peek().is_some_and(|&t| now >= t) {
            resets.next();
            // Reboot: streams, stimuli, the session and the clock start over.
            if let Some(s) = streamer.take() {
                s.halt();
            }
            *lock(&session) = match version {
                Some(v) => RigSession::with_version(v),
                None => RigSession::new(),
            };
            store = crate::station::rig::session::StimulusStore::new(4 * 1024 * 1024);
            last = None;
            if let Some(end) = frozen_until(&frozen, now) {
                rig.world.sleep_until(end);
            }
            // What arrived while it was down was lost with the reboot (drained
            // before it speaks, so the host's answer to it is not lost too).
            let mut sink = [0u8; 4096];
            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
            rig.world.rig_reboot();
            restarted = true;
            let hello = lock(&session).error(0, ErrorCode::Restarted, "the rig restarted");
            if !send(&writer, &hello) {
                break;
            }
            continue;
        }
        if let Some(end) = frozen_until(&frozen, now) {
            rig.world.sleep_until(end);
            continue;
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
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
            Err(_) => break,
        };
        let commands = lock(&session).receive(&buf[..n]);
        if silent {
            continue;
        }
        for cmd in commands {
            let seq = cmd.seq;
            // A repeat of the command just executed (its reply was lost): answer again.
            if let Some((last_seq, reply)) = &last {
                if *last_seq == seq
                    && !matches!(cmd.message, Message::Hello | Message::SyncRequest { .. })
                {
                    if !send(&writer, reply) {
                        return;
                    }
                    continue;
                }
            }
            if restarted && !matches!(cmd.message, Message::Hello) {
                let bytes = lock(&session).error(
                    seq,
                    ErrorCode::Restarted,
                    "the rig restarted; send Hello",
                );
                if !send(&writer, &bytes) {
                    break;
                }
                continue;
            }
            let result: Result<Option<Message>, (ErrorCode, String)> = match cmd.message {
                Message::Hello => {
                    restarted = false;
                    // A new host session starts from a quiet rig: no stream,
                    // no loopback, no remembered reply.
                    if let Some(s) = streamer.take() {
                        s.halt();
                    }
                    super::lock(&rig.world.medium).loopback = None;
                    last = None;
                    let info = rig.info();
                    Ok(Some(Message::HelloReply(HelloReply {
                        sensors: (1 << sensor::MIC)
                            | (1 << sensor::SPEAKER)
                            | (1 << sensor::LED)
                            | (1 << sensor::BUTTON),
                        loopback_delay_us: info.loopback_delay_us as u32,
                        stimulus_capacity: 4 * 1024 * 1024,
                        mic_sample_rates: info.mic_sample_rates.clone(),
                        kind: info.kind.clone(),
                        firmware: info.firmware.clone(),
                        serial: info.serial.clone(),
                    })))
                }
                Message::SyncRequest { cookie } => {
                    let at = rig.sync_receipt();
                    Ok(Some(Message::SyncReply { cookie, rig: at }))
                }
                Message::StimulusData {
                    id,
                    total,
                    offset,
                    samples,
                } => store
                    .chunk(id, total, offset, &samples)
                    .map(|_| None)
                    .map_err(|c| (c, "stimulus upload refused".into())),
                Message::Play {
                    at,
                    sample_rate,
                    id,
                } => match store.get(id) {
                    None => Err((
                        ErrorCode::BadParameter,
                        format!("no stimulus {id} was uploaded"),
                    )),
                    Some(pcm) => {
                        let samples: Arc<[f32]> = pcm.iter().map(|&v| v as f32 / 32768.0).collect();
                        station(rig.play(samples, sample_rate, at))
                    }
                },
                Message::FlashLed { at, duration_us } => {
                    station(rig.flash_led(at, duration_us as u64))
                }
                Message::PressButton { at, hold_us } => {
                    station(rig.press_button(at, hold_us as u64))
                }
                Message::SetLoopback { on } => station(rig.set_loopback(on)),
                Message::StreamMic { sample_rate, on } => {
                    if let Some(s) = streamer.take() {
                        s.halt();
                    }
                    if on {
                        match rig.mic_stream(sample_rate) {
                            Ok(source) => {
                                let st = Arc::new(AtomicBool::new(false));
                                let (w, sess, st2) = (writer.clone(), session.clone(), st.clone());
                                let thread =
                                    std::thread::spawn(move || stream_mic(source, w, sess, st2));
                                streamer = Some(Streamer { stop: st, thread });
                                Ok(None)
                            }
                            Err(e) => Err((ErrorCode::Unsupported, e.to_string())),
                        }
                    } else {
                        Ok(None)
                    }
                }
                Message::StreamPhotodiode { .. } => Err((
                    ErrorCode::Unsupported,
                    "the simulated rig has no photodiode stream".into(),
                )),
                other => Err((
                    ErrorCode::Unsupported,
                    format!("message type 0x{:02x} is not a command", other.msg_type()),
                )),
            };
            let bytes = match result {
                Ok(Some(reply)) => lock(&session).reply(&reply),
                Ok(None) => lock(&session).ack(seq),
                Err((code, msg)) => lock(&session).error(seq, code, &msg),
            };
            if !send(&writer, &bytes) {
                break;
            }
            last = Some((seq, bytes));
        }
    }
    if let Some(s) = streamer.take() {
        s.halt();
    }
}

/// Map a hardware result to the protocol's Ack or Error.
fn station(r: Result<(), StationError>) -> Result<Option<Message>, (ErrorCode, String)> {
    match r {
        Ok(()) => Ok(None),
        Err(StationError::Rig(m)) if m.contains("late") => Err((ErrorCode::Late, m)),
        Err(e) => Err((ErrorCode::Internal, e.to_string())),
    }
}

fn stream_mic(
    mut source: Box<dyn crate::sampling::BlockSource>,
    writer: Writer,
    session: Arc<Mutex<RigSession>>,
    stop: Arc<AtomicBool>,
) {
    let mut block = Block::EMPTY;
    let mut pcm = Vec::with_capacity(crate::sampling::BLOCK_LEN);
    while !stop.load(Ordering::Relaxed) {
        match source.read_block(&mut block) {
            Ok(BlockRead::Block) => {
                pcm.clear();
                pcm.extend(
                    block.data[..block.len as usize]
                        .iter()
                        .map(|&v| f32_to_i16(v)),
                );
                let msg = Message::SampleBlock {
                    stream: sensor::MIC,
                    seq: block.seq as u32,
                    t_first: crate::time::RigTime((block.t_first_ns / 1000) as u64),
                    samples: std::mem::take(&mut pcm),
                };
                let bytes = lock(&session).reply(&msg);
                if let Message::SampleBlock { samples, .. } = msg {
                    pcm = samples;
                }
                if !send(&writer, &bytes) {
                    return;
                }
            }
            Ok(BlockRead::Idle) => std::thread::yield_now(),
            Ok(BlockRead::End) | Err(_) => return,
        }
    }
}
