//! The simulated rig's firmware: protocol v1 over a byte stream (a pty), in
//! front of the simulated rig's hardware.
//!
//! Owns the firmware's I/O, as a real rig's main loop would: bytes from the
//! port go to the shared crate's `RigSession` stamped with the rig time of
//! their arrival (after the link's up-link delay), its output goes back
//! through the link (after the down-link delay, with the scenario's noise),
//! its timers run, and the microphone streams as sample blocks. What each
//! command does is the hardware's (`SimRig`), reached through
//! [`RigHandler`]. The link faults of the scenario (stalls, reboots, noise,
//! silence, another protocol version, an unplugged cable) happen here. The
//! host learns nothing here that a real rig would not tell it.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rig_protocol::codec::sensor;
use rig_protocol::{
    Command, ErrorCode, HelloReply, Rates, Refusal, RigConfig, RigHandler, RigSession, RigTime,
    StimulusStore,
};

use super::rig::{RigMic, SimRig};
use super::scenario::Fault;
use crate::sampling::{Block, BlockSource, Read as BlockRead};
use crate::station::serial_rig::f32_to_i16;
use crate::station::RigInfo;
use crate::time::Clock;

/// Stimulus memory of the simulated rig, samples (21 s at 48 kHz).
const STIMULUS_CAPACITY: usize = 1 << 20;

/// The rig's side of the link: the port, and the noise injected on it.
struct Link {
    port: Box<dyn Write + Send>,
    garbage: Option<(f64, usize)>,
    rng: crate::seeded::Rng,
    /// True-time windows in which the firmware is frozen (stalls, reboots).
    frozen: Arc<Vec<(f64, f64)>>,
    clock: Clock,
    /// Replies are waiting for their down-link delay: only the firmware's
    /// main loop may send now (a streaming thread would send them early).
    holding: bool,
}

/// The end of the frozen window `now` falls in, if any.
fn frozen_until(frozen: &[(f64, f64)], now: f64) -> Option<f64> {
    frozen
        .iter()
        .find(|(a, b)| (*a..*b).contains(&now))
        .map(|w| w.1)
}

impl Link {
    /// Write `bytes`, after a burst of noise now and then. `false` once the
    /// port is gone.
    fn write(&mut self, bytes: &[u8]) -> bool {
        use rand::Rng;
        if let Some((p, max)) = self.garbage {
            if self.rng.random_bool(p) {
                let n = self.rng.random_range(1..=max.max(1));
                let noise: Vec<u8> = (0..n).map(|_| self.rng.random()).collect();
                if self.port.write_all(&noise).is_err() {
                    return false;
                }
            }
        }
        self.port
            .write_all(bytes)
            .and_then(|_| self.port.flush())
            .is_ok()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Move everything the session has to send onto the link, in order (the
/// link's lock is held throughout, so two senders never interleave frames).
/// A frozen firmware sends nothing until it thaws (waited for before the
/// lock is taken: nobody waits on the clock holding it).
fn pump(session: &Mutex<RigSession>, link: &Mutex<Link>) -> bool {
    pump_as(session, link, false)
}

/// [`pump`] for a streaming thread: it sends nothing while the main loop
/// holds replies back for their link delay (the main loop sends the stream
/// after them).
fn pump_stream(session: &Mutex<RigSession>, link: &Mutex<Link>) -> bool {
    pump_as(session, link, true)
}

fn pump_as(session: &Mutex<RigSession>, link: &Mutex<Link>, streaming: bool) -> bool {
    let (frozen, clock) = {
        let l = lock(link);
        if streaming && l.holding {
            return true;
        }
        (l.frozen.clone(), l.clock.clone())
    };
    while let Some(end) = frozen_until(&frozen, clock.now().as_secs_f64()) {
        clock.sleep_until(crate::time::HostTime::from_secs_f64(end));
    }
    let mut l = lock(link);
    if streaming && l.holding {
        return true;
    }
    let mut buf = [0u8; 4096];
    loop {
        let n = lock(session).poll_transmit(&mut buf);
        if n == 0 {
            return true;
        }
        if !l.write(&buf[..n]) {
            return false;
        }
    }
}

/// A running firmware; dropping it stops it.
pub struct Firmware {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    clock: Clock,
}

impl Drop for Firmware {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = self.clock.blocking(|| t.join());
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
        let clock = rig.world.clock.clone();
        let thread = clock.spawn("certlab-sim-rig", move || serve(reader, writer, rig, st))?;
        Ok(Firmware {
            stop,
            thread: Some(thread),
            clock,
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

/// The microphone's streaming thread.
struct Streamer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// The firmware's hardware side, as the session drives it.
struct Hardware<'m> {
    rig: SimRig,
    info: RigInfo,
    store: StimulusStore<'m>,
    session: Arc<Mutex<RigSession>>,
    link: Arc<Mutex<Link>>,
    streamer: Option<Streamer>,
    /// Streamers stopped while the session was locked: joined after it is
    /// released (a streamer waits for that lock to send its last block).
    stopped: Vec<Streamer>,
    /// Actuator firings scheduled, reported as Onsets once their time has come.
    firing: Vec<(u8, RigTime)>,
}

impl Hardware<'_> {
    fn stop_stream(&mut self) {
        if let Some(s) = self.streamer.take() {
            s.stop.store(true, Ordering::Relaxed);
            self.stopped.push(s);
        }
    }

    fn join_stopped(&mut self) {
        let clock = self.rig.world.clock.clone();
        for s in self.stopped.drain(..) {
            let _ = clock.blocking(|| s.thread.join());
        }
    }

    /// Report the firings whose time has passed (the simulated actuators
    /// fire exactly on time).
    fn report_fired(&mut self) {
        let now = self.rig.now();
        if !self.firing.iter().any(|f| f.1 <= now) {
            return;
        }
        let mut s = lock(&self.session);
        self.firing.retain(|&(sensor, at)| {
            if at > now {
                return true;
            }
            s.send_onset(sensor, at, now);
            false
        });
    }
}

impl RigHandler for Hardware<'_> {
    fn hello(&self) -> HelloReply<'_> {
        HelloReply {
            sensors: (1 << sensor::MIC)
                | (1 << sensor::SPEAKER)
                | (1 << sensor::LED)
                | (1 << sensor::BUTTON),
            loopback_delay_us: self.info.loopback_delay_us as u32,
            stimulus_capacity: self.store.capacity(),
            mic_sample_rates: Rates::List(&self.info.mic_sample_rates),
            kind: &self.info.kind,
            firmware: &self.info.firmware,
            serial: &self.info.serial,
        }
    }

    fn new_session(&mut self) {
        // A new host session starts from a quiet rig: no stream, no loopback.
        self.stop_stream();
        self.rig.set_loopback(false);
    }

    fn command(&mut self, cmd: Command<'_>, _now: RigTime) -> Result<(), Refusal> {
        match cmd {
            Command::StimulusData {
                id,
                total,
                offset,
                samples,
            } => self
                .store
                .chunk(id, total, offset, &samples)
                .map_err(|c| Refusal::fmt(c, format_args!("stimulus {id} upload refused"))),
            Command::Play {
                at,
                sample_rate,
                id,
            } => {
                let pcm = self
                    .store
                    .play(id)
                    .map_err(|c| Refusal::fmt(c, format_args!("stimulus {id} cannot be played")))?;
                let samples: Arc<[f32]> = pcm.iter().map(|&v| v as f32 / 32768.0).collect();
                self.rig.play(samples, sample_rate, at)?;
                self.firing.push((sensor::SPEAKER, at));
                Ok(())
            }
            Command::FlashLed { at, duration_us } => {
                self.rig.flash_led(at, duration_us as u64)?;
                self.firing.push((sensor::LED, at));
                Ok(())
            }
            Command::PressButton { at, hold_us } => {
                self.rig.press_button(at, hold_us as u64)?;
                self.firing.push((sensor::BUTTON, at));
                Ok(())
            }
            Command::SetLoopback { on } => {
                self.rig.set_loopback(on);
                Ok(())
            }
            Command::StreamMic { sample_rate, on } => {
                self.stop_stream();
                if !on {
                    return Ok(());
                }
                let source = self.rig.mic_stream(sample_rate)?;
                let st = Arc::new(AtomicBool::new(false));
                let (sess, link, st2) = (self.session.clone(), self.link.clone(), st.clone());
                let thread = self
                    .rig
                    .world
                    .clock
                    .spawn("certlab-sim-rig-mic", move || {
                        stream_mic(source, sess, link, st2)
                    })
                    .map_err(|e| {
                        Refusal::fmt(
                            ErrorCode::Internal,
                            format_args!("cannot start the stream: {e}"),
                        )
                    })?;
                self.streamer = Some(Streamer { stop: st, thread });
                Ok(())
            }
            Command::StreamPhotodiode { .. } => Err(Refusal::new(
                ErrorCode::Unsupported,
                "the simulated rig has no photodiode stream",
            )),
        }
    }
}

fn serve(
    mut reader: Box<dyn Read + Send>,
    port: Box<dyn Write + Send>,
    rig: SimRig,
    stop: Arc<AtomicBool>,
) {
    let faults = rig.world.sc.faults.clone();
    let frozen: Arc<Vec<(f64, f64)>> = Arc::new(
        faults
            .iter()
            .filter_map(|f| match f {
                Fault::RigStall { at_s, duration_ms } => Some((*at_s, at_s + duration_ms * 1e-3)),
                Fault::RigReset { at_s, boot_ms } => Some((*at_s, at_s + boot_ms * 1e-3)),
                _ => None,
            })
            .collect(),
    );
    let mut resets: Vec<f64> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::RigReset { at_s, .. } => Some(*at_s),
            _ => None,
        })
        .collect();
    resets.sort_by(f64::total_cmp);
    let mut resets = resets.into_iter().peekable();
    let link = Arc::new(Mutex::new(Link {
        frozen: frozen.clone(),
        clock: rig.world.clock.clone(),
        holding: false,
        port,
        garbage: faults.iter().find_map(|f| match f {
            Fault::RigGarbage {
                probability,
                max_bytes,
            } => Some((*probability, *max_bytes)),
            _ => None,
        }),
        rng: crate::seeded::rng(rig.world.sc.seed ^ 0x6a7b),
    }));
    let config = RigConfig {
        version: faults
            .iter()
            .find_map(|f| match f {
                Fault::RigProtocol { version } => Some(*version),
                _ => None,
            })
            .unwrap_or(rig_protocol::PROTOCOL_VERSION),
        ..RigConfig::default()
    };
    let silent = faults.iter().any(|f| matches!(f, Fault::RigSilent));
    let unplug_at = faults.iter().find_map(|f| match f {
        Fault::RigDisconnect { at_s } => Some(*at_s),
        _ => None,
    });
    let session = Arc::new(Mutex::new(RigSession::new(config)));
    let mut memory = vec![0i16; STIMULUS_CAPACITY];
    let info = rig.info();
    let mut hw = Hardware {
        rig,
        info,
        store: StimulusStore::new(&mut memory),
        session: session.clone(),
        link: link.clone(),
        streamer: None,
        stopped: Vec::new(),
        firing: Vec::new(),
    };
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let now = hw.rig.world.now();
        if unplug_at.is_some_and(|t| now >= t) {
            break; // the port closes: the host sees the rig vanish
        }
        if resets.peek().is_some_and(|&t| now >= t) {
            resets.next();
            // Reboot: streams, stimuli, the session and the clock start over.
            hw.stop_stream();
            hw.join_stopped();
            hw.store.clear();
            hw.firing.clear();
            if let Some(end) = frozen_until(&frozen, now) {
                hw.rig.world.sleep_until(end);
            }
            // What arrived while it was down was lost with the reboot (drained
            // before it speaks, so the host's answer to it is not lost too).
            let mut sink = [0u8; 4096];
            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
            hw.rig.world.rig_reboot();
            {
                let mut s = lock(&session);
                *s = RigSession::new(config);
                s.announce_restart(hw.rig.now());
            }
            if !pump(&session, &link) {
                break;
            }
            continue;
        }
        if let Some(end) = frozen_until(&frozen, now) {
            hw.rig.world.sleep_until(end);
            continue;
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if crate::station::is_quiet(&e) => {
                // Quiet: only firings and the session's timers (the
                // Heartbeat) may speak.
                hw.report_fired();
                let t = hw.rig.now();
                lock(&session).handle_timeout(t);
                if !pump(&session, &link) {
                    break;
                }
                continue;
            }
            Err(_) => break,
        };
        if silent {
            continue;
        }
        lock(&link).holding = true;
        let arrived = hw.rig.arrive();
        lock(&session).handle_input(&buf[..n], arrived, &mut hw);
        hw.join_stopped();
        hw.report_fired();
        if lock(&session).wants_transmit() {
            hw.rig.depart();
        }
        lock(&link).holding = false;
        if !pump(&session, &link) {
            break;
        }
    }
    hw.stop_stream();
    hw.join_stopped();
}

fn stream_mic(
    mut source: RigMic,
    session: Arc<Mutex<RigSession>>,
    link: Arc<Mutex<Link>>,
    stop: Arc<AtomicBool>,
) {
    let mut block = Block::EMPTY;
    let mut pcm = [0i16; crate::sampling::BLOCK_LEN];
    while !stop.load(Ordering::Relaxed) {
        match source.read_block(&mut block) {
            Ok(BlockRead::Block) => {
                let n = block.len as usize;
                for (d, &v) in pcm.iter_mut().zip(&block.data[..n]) {
                    *d = f32_to_i16(v);
                }
                let t_first = RigTime((block.t_first_ns / 1000) as u64);
                let now = RigTime(source.world.rig_us(source.world.now()).floor() as u64);
                {
                    let mut s = lock(&session);
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    s.send_block(sensor::MIC, block.seq as u32, t_first, &pcm[..n], now);
                }
                if !pump_stream(&session, &link) {
                    return;
                }
            }
            Ok(BlockRead::Idle) => std::thread::yield_now(),
            Ok(BlockRead::End) | Err(_) => return,
        }
    }
}
