//! A USB audio interface as the rig, through ALSA (cargo feature `alsa`):
//! the real [`Interface`] behind `--rig audio:ALSA_DEVICE`.
//!
//! Owns opening the interface's capture and playback PCMs with the channels
//! the station file maps (S16 or S32 interleaved, 5 ms periods, monotonic
//! htstamps), the capture of every input stamped `htstamp − (avail +
//! frames)/rate`, and a player thread that keeps the output running with
//! silence, stamps each period (frame `written − delay` leaves at
//! `htstamp`) into the output's [`FrameClock`], and mixes each scheduled
//! buffer in on its channel from the frame the clock places its host time
//! on. Xruns of both directions are counted. It detects and judges nothing;
//! what the converters add beyond ALSA's delay is for calibration.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use alsa::pcm::{Access, Format, HwParams, TstampType, PCM};
use alsa::{Direction, ValueOr};

use crate::sampling::{SourceError, BLOCK_LEN};
use crate::station::audio_rig::{
    FrameClock, InputStream, Interface, InterfaceInfo, Passthrough, StationFile,
};
use crate::station::{StationError, StationResult};
use crate::time::{HostClock, HostTime};
use crate::{Error, Result};

const PERIOD_MS: f64 = 5.0;
/// Playback buffer: 6 periods (30 ms); steps hand stimuli 60 ms ahead.
const PLAYBACK_PERIODS: i64 = 6;
const CAPTURE_PERIODS: i64 = 16;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn err(name: &str, what: &str, e: alsa::Error) -> StationError {
    if e.errno() == libc::ENODEV {
        StationError::Disconnected(format!("ALSA {name}: the interface is gone ({what})"))
    } else {
        StationError::Other(format!("ALSA {name}: {what}: {e}"))
    }
}

#[allow(clippy::unnecessary_cast)]
fn ts_ns(t: libc::timespec) -> i64 {
    t.tv_sec as i64 * 1_000_000_000 + t.tv_nsec as i64
}

/// The sample format a PCM was opened with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sample {
    S16,
    S32,
}

struct Opened {
    pcm: PCM,
    channels: usize,
    max_channels: u16,
    sample: Sample,
}

/// Open `name` in `dir` at exactly `rate` with `want` channels (or its
/// minimum, or its maximum when it has fewer: the rig then names the
/// station file's entry the interface lacks).
fn open_pcm(name: &str, dir: Direction, rate: u32, want: u16, periods: i64) -> Result<Opened> {
    let pcm = PCM::new(name, dir, false).map_err(|e| {
        if e.errno() == libc::ENOENT || e.errno() == libc::ENODEV || e.errno() == libc::EINVAL {
            Error::Device(format!(
                "no ALSA device {name} ({e}); `arecord -l` and `aplay -l` list the cards, \
                 e.g. --rig audio:hw:CARD=Scarlett"
            ))
        } else {
            Error::Device(format!("ALSA {name}: cannot open: {e}"))
        }
    })?;
    let dev = |what: &str, e: alsa::Error| Error::Device(format!("ALSA {name}: {what}: {e}"));
    let (channels, max_channels, sample);
    {
        let hw = HwParams::any(&pcm).map_err(|e| dev("hw params", e))?;
        hw.set_access(Access::RWInterleaved)
            .map_err(|e| dev("interleaved access", e))?;
        sample = if hw.set_format(Format::s16()).is_ok() {
            Sample::S16
        } else {
            hw.set_format(Format::s32())
                .map_err(|e| dev("neither 16- nor 32-bit samples", e))?;
            Sample::S32
        };
        let min = hw.get_channels_min().unwrap_or(1).max(1);
        let max = hw.get_channels_max().unwrap_or(min).max(min);
        max_channels = max.min(u16::MAX as u32) as u16;
        channels = (want as u32).clamp(min, max);
        hw.set_channels(channels).map_err(|e| dev("channels", e))?;
        hw.set_rate(rate, ValueOr::Nearest)
            .map_err(|e| Error::Device(format!("ALSA {name} refuses {rate} Hz: {e}")))?;
        let got = hw.get_rate().map_err(|e| dev("rate", e))?;
        if got != rate {
            return Err(Error::Device(format!(
                "ALSA {name} refuses {rate} Hz (it offers {got} Hz nearest)"
            )));
        }
        let period = (rate as f64 * PERIOD_MS / 1e3).round() as alsa::pcm::Frames;
        hw.set_period_size_near(period, ValueOr::Nearest)
            .map_err(|e| dev("period size", e))?;
        hw.set_buffer_size_near(period * periods)
            .map_err(|e| dev("buffer size", e))?;
        pcm.hw_params(&hw).map_err(|e| dev("hw params", e))?;
    }
    {
        let sw = pcm.sw_params_current().map_err(|e| dev("sw params", e))?;
        sw.set_tstamp_mode(true).map_err(|e| dev("timestamps", e))?;
        sw.set_tstamp_type(TstampType::Monotonic)
            .map_err(|e| dev("monotonic timestamps", e))?;
        if dir == Direction::Playback {
            let period = (rate as f64 * PERIOD_MS / 1e3).round() as alsa::pcm::Frames;
            sw.set_start_threshold(period)
                .map_err(|e| dev("start threshold", e))?;
        }
        pcm.sw_params(&sw).map_err(|e| dev("sw params", e))?;
    }
    pcm.prepare().map_err(|e| dev("prepare", e))?;
    Ok(Opened {
        pcm,
        channels: channels as usize,
        max_channels,
        sample,
    })
}

/// A buffer waiting on an output channel from an absolute frame.
struct Queued {
    ch: usize,
    start: i64,
    samples: Arc<[f32]>,
}

struct Shared {
    queue: Mutex<VecDeque<Queued>>,
    clock: Mutex<FrameClock>,
    /// Frames written so far (none before it can be scheduled).
    written: AtomicI64,
    stop: AtomicBool,
    xruns: AtomicU64,
    error: Mutex<Option<StationError>>,
}

/// The interface.
pub struct AlsaInterface {
    name: String,
    rate: u32,
    clock: HostClock,
    inputs_wanted: u16,
    info: InterfaceInfo,
    shared: Arc<Shared>,
    player: Option<JoinHandle<()>>,
}

impl AlsaInterface {
    /// Open `name` for `station`'s channels and rate; the player starts
    /// (silence) at once, so that its frame clock has stamps before the
    /// first stimulus.
    pub fn open(name: &str, station: &StationFile, clock: HostClock) -> Result<AlsaInterface> {
        let need = |input: bool| {
            station
                .channels()
                .iter()
                .filter(|(i, _)| *i == input)
                .map(|(_, c)| c.index + 1)
                .max()
                .unwrap_or(1)
        };
        let at_rate = |e: Error| match e {
            Error::Device(m) if m.contains("refuses") => {
                Error::Device(format!("{}: {m}", station.at(&station.rate_span)))
            }
            e => e,
        };
        let cap = open_pcm(
            name,
            Direction::Capture,
            station.rate,
            need(true),
            CAPTURE_PERIODS,
        )
        .map_err(at_rate)?;
        let play = open_pcm(
            name,
            Direction::Playback,
            station.rate,
            need(false),
            PLAYBACK_PERIODS,
        )
        .map_err(at_rate)?;
        let info = InterfaceInfo {
            name: name.to_string(),
            driver: card_name(&play.pcm).unwrap_or_else(|| "ALSA".into()),
            serial: None,
            inputs: cap.max_channels,
            outputs: play.max_channels,
            rate: station.rate,
        };
        drop(cap);
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            clock: Mutex::new(FrameClock::new(station.rate)),
            written: AtomicI64::new(0),
            stop: AtomicBool::new(false),
            xruns: AtomicU64::new(0),
            error: Mutex::new(None),
        });
        let sh = shared.clone();
        let (n, rate) = (name.to_string(), station.rate);
        let player = std::thread::Builder::new()
            .name("certlab-rig-play".into())
            .spawn(move || {
                if let Err(e) = play_loop(&play, rate, clock, &sh, &n) {
                    *lock(&sh.error) = Some(e);
                }
            })
            .map_err(|e| Error::Harness(format!("cannot start the rig's player: {e}")))?;
        Ok(AlsaInterface {
            name: name.to_string(),
            rate: station.rate,
            clock,
            inputs_wanted: need(true),
            info,
            shared,
            player: Some(player),
        })
    }
}

fn card_name(pcm: &PCM) -> Option<String> {
    let info = pcm.info().ok()?;
    let card = alsa::Card::new(info.get_card());
    card.get_longname().ok().or_else(|| card.get_name().ok())
}

impl Drop for AlsaInterface {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.player.take() {
            let _ = t.join();
        }
    }
}

fn play_loop(
    o: &Opened,
    rate: u32,
    clock: HostClock,
    sh: &Shared,
    name: &str,
) -> StationResult<()> {
    let period = (rate as f64 * PERIOD_MS / 1e3).round() as usize;
    let ch = o.channels;
    let mut mix = vec![0f32; period * ch];
    let mut b16 = vec![0i16; period * ch];
    let mut b32 = vec![0i32; period * ch];
    let mut written: i64 = 0;
    while !sh.stop.load(Ordering::Relaxed) {
        let status = o.pcm.status().map_err(|e| err(name, "status", e))?;
        let raw = ts_ns(status.get_htstamp());
        #[allow(clippy::unnecessary_cast)]
        let delay = status.get_delay().max(0) as i64;
        if raw != 0 && status.get_state() == alsa::pcm::State::Running {
            lock(&sh.clock).push(written - delay, clock.from_monotonic(raw).0);
        }
        mix.iter_mut().for_each(|s| *s = 0.0);
        {
            let mut q = lock(&sh.queue);
            for s in q.iter() {
                for f in 0..period {
                    let i = written + f as i64 - s.start;
                    if i >= 0 && (i as usize) < s.samples.len() && s.ch < ch {
                        mix[f * ch + s.ch] += s.samples[i as usize];
                    }
                }
            }
            let end = written + period as i64;
            q.retain(|s| s.start + s.samples.len() as i64 > end);
        }
        let r = match o.sample {
            Sample::S16 => {
                for (d, s) in b16.iter_mut().zip(&mix) {
                    *d = (s.clamp(-1.0, 1.0) * 32767.0) as i16;
                }
                o.pcm.io_i16().and_then(|io| io.writei(&b16))
            }
            Sample::S32 => {
                for (d, s) in b32.iter_mut().zip(&mix) {
                    *d = (s.clamp(-1.0, 1.0) as f64 * 2_147_483_647.0) as i32;
                }
                o.pcm.io_i32().and_then(|io| io.writei(&b32))
            }
        };
        match r {
            Ok(n) => {
                written += n as i64;
                sh.written.store(written, Ordering::Release);
            }
            Err(e) if e.errno() == libc::EPIPE || e.errno() == libc::ESTRPIPE => {
                sh.xruns.fetch_add(1, Ordering::Relaxed);
                o.pcm
                    .try_recover(e, true)
                    .map_err(|e| err(name, "recover after an xrun", e))?;
                // The stream restarts: its old stamps say nothing of the new one.
                lock(&sh.clock).clear();
            }
            Err(e) => return Err(err(name, "write", e)),
        }
    }
    let _ = o.pcm.drop();
    Ok(())
}

impl Interface for AlsaInterface {
    fn info(&self) -> InterfaceInfo {
        self.info.clone()
    }

    fn open_capture(&mut self) -> StationResult<Box<dyn InputStream>> {
        let o = open_pcm(
            &self.name,
            Direction::Capture,
            self.rate,
            self.inputs_wanted,
            CAPTURE_PERIODS,
        )
        .map_err(|e| StationError::Other(e.to_string()))?;
        let n = BLOCK_LEN * o.channels;
        Ok(Box::new(AlsaInput {
            name: self.name.clone(),
            rate: self.rate,
            clock: self.clock,
            b16: vec![0; n],
            b32: vec![0; n],
            o,
            started: false,
            shared: self.shared.clone(),
        }))
    }

    fn schedule(&mut self, ch: u16, samples: Arc<[f32]>, at: HostTime) -> StationResult<HostTime> {
        if let Some(e) = lock(&self.shared.error).take() {
            return Err(e);
        }
        let (k, t) = {
            let mut c = lock(&self.shared.clock);
            let k = c.frame_at(at.0);
            k.and_then(|k| Some((k, c.time_of(k)?))).ok_or_else(|| {
                StationError::Rig(format!(
                    "ALSA {}: the output has not started (no stamps yet)",
                    self.name
                ))
            })?
        };
        if k < self.shared.written.load(Ordering::Acquire) {
            return Err(StationError::RigRefused {
                code: rig_protocol::ErrorCode::Late,
                message: format!(
                    "frame {k} on output {} is already written (the output runs {} ms ahead)",
                    ch + 1,
                    PERIOD_MS * PLAYBACK_PERIODS as f64
                ),
            });
        }
        lock(&self.shared.queue).push_back(Queued {
            ch: ch as usize,
            start: k,
            samples,
        });
        Ok(HostTime(t.round() as i64))
    }

    fn set_passthrough(&mut self, p: Option<Passthrough>) -> StationResult<()> {
        match p {
            None => Ok(()),
            Some(_) => Err(StationError::Rig(
                "the microphone-to-speaker loopback (round trips) is not yet implemented on a \
                 real audio interface"
                    .into(),
            )),
        }
    }

    fn xruns(&self) -> u64 {
        self.shared.xruns.load(Ordering::Relaxed)
    }

    fn placement_uncertainty_ns(&mut self) -> f64 {
        lock(&self.shared.clock).uncertainty_ahead_ns(crate::station::audio_rig::PLACEMENT_AHEAD_S)
    }
}

/// The capture of every input.
struct AlsaInput {
    name: String,
    rate: u32,
    clock: HostClock,
    o: Opened,
    b16: Vec<i16>,
    b32: Vec<i32>,
    started: bool,
    shared: Arc<Shared>,
}

impl InputStream for AlsaInput {
    fn channels(&self) -> usize {
        self.o.channels
    }

    fn rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut [f32]) -> std::result::Result<Option<(usize, i64)>, SourceError> {
        let io_err = |e: alsa::Error| SourceError::Io(format!("ALSA {}: {e}", self.name));
        if !self.started {
            self.o.pcm.start().map_err(io_err)?;
            self.started = true;
        }
        let r = match self.o.sample {
            Sample::S16 => self.o.pcm.io_i16().and_then(|io| io.readi(&mut self.b16)),
            Sample::S32 => self.o.pcm.io_i32().and_then(|io| io.readi(&mut self.b32)),
        };
        let frames = match r {
            Ok(n) => n,
            Err(e) if e.errno() == libc::EPIPE || e.errno() == libc::ESTRPIPE => {
                self.shared.xruns.fetch_add(1, Ordering::Relaxed);
                self.o.pcm.try_recover(e, true).map_err(io_err)?;
                let _ = self.o.pcm.start();
                return Ok(None);
            }
            Err(e) if e.errno() == libc::ENODEV => {
                return Err(SourceError::Disconnected(format!("ALSA {}", self.name)))
            }
            Err(e) if e.errno() == libc::EAGAIN => return Ok(None),
            Err(e) => return Err(io_err(e)),
        };
        if frames == 0 {
            return Ok(None);
        }
        let status = self.o.pcm.status().map_err(io_err)?;
        let ht = ts_ns(status.get_htstamp());
        let avail = status.get_avail().max(0) as f64;
        let first = ht - (((avail + frames as f64) / self.rate as f64) * 1e9) as i64;
        let n = frames * self.o.channels;
        match self.o.sample {
            Sample::S16 => {
                for (d, s) in out.iter_mut().zip(&self.b16[..n]) {
                    *d = *s as f32 / 32768.0;
                }
            }
            Sample::S32 => {
                for (d, s) in out.iter_mut().zip(&self.b32[..n]) {
                    *d = (*s as f64 / 2_147_483_648.0) as f32;
                }
            }
        }
        Ok(Some((frames, self.clock.from_monotonic(first).0)))
    }
}
