//! A DUT's USB audio through ALSA (cargo feature `alsa`).
//!
//! Owns opening PCMs by ALSA name (`hw:1,0`, `plughw:CARD=Loopback,DEV=1`),
//! negotiating rate, format, channels and 5 ms periods, the capture source
//! and the playback scheduler. Time comes from ALSA's own high-resolution
//! timestamps on CLOCK_MONOTONIC (htstamp with the frames still available or
//! queued), never from buffer sizes: a capture block's first sample is
//! stamped `htstamp − (avail + frames)/rate`, and a playback frame `k` is
//! heard at `htstamp + (k − (written − delay))/rate`. Every xrun is counted.
//! The stamps are as fine as the driver's pointer: snd-usb-audio moves it
//! once per URB (1 ms), snd-aloop once per kernel tick (4 ms at HZ=250), so
//! single stamps jitter by that much; a capture's time map is a fit over all
//! its blocks. Playback runs with silence from the moment the capture is
//! opened, so a step's first stimulus never waits for the device to start.
//! It does not detect stimuli or judge.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use alsa::pcm::{Access, Format, HwParams, TstampType, PCM};
use alsa::{Direction, ValueOr};

use crate::sampling::{Block, BlockSource, Read, SourceError, BLOCK_LEN};
use crate::station::{AudioPath, StationError, StationResult};
use crate::time::{HostClock, HostTime};

/// Frames per period: 5 ms at 48 kHz.
const PERIOD_MS: f64 = 5.0;
/// Periods in the playback buffer (its latency, and the scheduling horizon:
/// a stimulus must be handed over more than this ahead, and steps hand
/// them 60 ms ahead). Fewer than 6 (30 ms) underran in the lab's emulated
/// guest.
const PLAYBACK_PERIODS: i64 = 6;
/// Periods in the capture buffer (headroom for a late reader).
const CAPTURE_PERIODS: i64 = 16;

/// Xruns and late stimuli, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct AudioStats {
    pub capture_xruns: AtomicU64,
    pub playback_xruns: AtomicU64,
    /// Stimuli whose start time had passed when the player reached them.
    pub late_stimuli: AtomicU64,
}

fn alsa_err(what: &str, name: &str, e: alsa::Error) -> StationError {
    if e.errno() == libc::ENODEV {
        StationError::Disconnected(format!("ALSA {name}: the device is gone ({what})"))
    } else {
        StationError::Other(format!("ALSA {name}: {what}: {e}"))
    }
}

/// Open `name` in `dir` at `rate`, S16 interleaved, the fewest channels it
/// allows, 5 ms periods; monotonic timestamps on. Returns the PCM and its
/// channel count.
fn open_pcm(name: &str, dir: Direction, rate: u32, periods: i64) -> StationResult<(PCM, u32)> {
    let pcm = PCM::new(name, dir, false).map_err(|e| alsa_err("open", name, e))?;
    let channels;
    {
        let hw = HwParams::any(&pcm).map_err(|e| alsa_err("hw params", name, e))?;
        hw.set_access(Access::RWInterleaved)
            .map_err(|e| alsa_err("interleaved access", name, e))?;
        hw.set_format(Format::s16())
            .map_err(|e| alsa_err("16-bit format", name, e))?;
        channels = hw.get_channels_min().unwrap_or(1).max(1);
        hw.set_channels(channels)
            .map_err(|e| alsa_err("channels", name, e))?;
        hw.set_rate(rate, ValueOr::Nearest)
            .map_err(|e| alsa_err("rate", name, e))?;
        let got = hw.get_rate().map_err(|e| alsa_err("rate", name, e))?;
        if got != rate {
            return Err(StationError::Other(format!(
                "ALSA {name}: runs at {got} Hz, not the {rate} Hz the step asks for"
            )));
        }
        let period = (rate as f64 * PERIOD_MS / 1e3).round() as alsa::pcm::Frames;
        hw.set_period_size_near(period, ValueOr::Nearest)
            .map_err(|e| alsa_err("period size", name, e))?;
        hw.set_buffer_size_near(period * periods)
            .map_err(|e| alsa_err("buffer size", name, e))?;
        pcm.hw_params(&hw)
            .map_err(|e| alsa_err("hw params", name, e))?;
    }
    {
        let sw = pcm
            .sw_params_current()
            .map_err(|e| alsa_err("sw params", name, e))?;
        sw.set_tstamp_mode(true)
            .map_err(|e| alsa_err("timestamps", name, e))?;
        sw.set_tstamp_type(TstampType::Monotonic)
            .map_err(|e| alsa_err("monotonic timestamps", name, e))?;
        if dir == Direction::Playback {
            // Start as soon as the first period is queued.
            let period = (rate as f64 * PERIOD_MS / 1e3).round() as alsa::pcm::Frames;
            sw.set_start_threshold(period)
                .map_err(|e| alsa_err("start threshold", name, e))?;
        }
        pcm.sw_params(&sw)
            .map_err(|e| alsa_err("sw params", name, e))?;
    }
    pcm.prepare().map_err(|e| alsa_err("prepare", name, e))?;
    Ok((pcm, channels))
}

// time_t and snd_pcm_sframes_t are not i64 on every target.
#[allow(clippy::unnecessary_cast)]
fn ts_ns(t: libc::timespec) -> i64 {
    t.tv_sec as i64 * 1_000_000_000 + t.tv_nsec as i64
}

/// The capture side: a block source stamped by ALSA's htstamp.
pub struct AlsaCapture {
    name: String,
    pcm: PCM,
    channels: usize,
    rate: u32,
    clock: HostClock,
    buf: Vec<i16>,
    seq: u64,
    /// Where the next block should start, ns (to find what an xrun lost).
    next_t: Option<i64>,
    /// An xrun restarted the stream since the last block.
    resumed: bool,
    stats: Arc<AudioStats>,
    started: bool,
}

impl AlsaCapture {
    pub fn open(
        name: &str,
        rate: u32,
        clock: HostClock,
        stats: Arc<AudioStats>,
    ) -> StationResult<Self> {
        let (pcm, channels) = open_pcm(name, Direction::Capture, rate, CAPTURE_PERIODS)?;
        Ok(AlsaCapture {
            name: name.to_string(),
            pcm,
            channels: channels as usize,
            rate,
            clock,
            buf: vec![0; BLOCK_LEN * channels as usize],
            seq: 0,
            next_t: None,
            resumed: false,
            stats,
            started: false,
        })
    }
}

impl BlockSource for AlsaCapture {
    fn read_block(&mut self, out: &mut Block) -> Result<Read, SourceError> {
        if !self.started {
            self.pcm
                .start()
                .map_err(|e| SourceError::Io(format!("ALSA {}: start: {e}", self.name)))?;
            self.started = true;
        }
        let io = self
            .pcm
            .io_i16()
            .map_err(|e| SourceError::Io(format!("ALSA {}: {e}", self.name)))?;
        let frames = match io.readi(&mut self.buf) {
            Ok(n) => n,
            Err(e) if e.errno() == libc::EPIPE || e.errno() == libc::ESTRPIPE => {
                self.stats.capture_xruns.fetch_add(1, Ordering::Relaxed);
                self.pcm.try_recover(e, true).map_err(|e| {
                    SourceError::Io(format!("ALSA {}: after an xrun: {e}", self.name))
                })?;
                let _ = self.pcm.start();
                self.resumed = true;
                return Ok(Read::Idle);
            }
            Err(e) if e.errno() == libc::ENODEV => {
                return Err(SourceError::Disconnected(format!("ALSA {}", self.name)))
            }
            Err(e) if e.errno() == libc::EAGAIN => return Ok(Read::Idle),
            Err(e) => return Err(SourceError::Io(format!("ALSA {}: read: {e}", self.name))),
        };
        if frames == 0 {
            return Ok(Read::Idle);
        }
        let status = self
            .pcm
            .status()
            .map_err(|e| SourceError::Io(format!("ALSA {}: status: {e}", self.name)))?;
        let ht = ts_ns(status.get_htstamp());
        let avail = status.get_avail().max(0) as f64;
        let t_end = ht - ((avail / self.rate as f64) * 1e9) as i64;
        let t_first_mono = t_end - ((frames as f64 / self.rate as f64) * 1e9) as i64;
        let t_first = self.clock.from_monotonic(t_first_mono).0;
        // After an xrun the stream resumed later: skip the sequence numbers
        // of the blocks that time held, so the capture keeps its alignment.
        // Only then: between xruns no frame is lost, and a stamp may lag by
        // as much as the driver's pointer granularity (a kernel tick for
        // snd-aloop), which must not be taken for lost blocks.
        if let (true, Some(expected)) = (std::mem::take(&mut self.resumed), self.next_t) {
            let block_ns = BLOCK_LEN as f64 * 1e9 / self.rate as f64;
            let lost = ((t_first - expected) as f64 / block_ns).round();
            if lost >= 1.0 {
                self.seq += lost as u64;
            }
        }
        out.seq = self.seq;
        self.seq += 1;
        out.t_first_ns = t_first;
        out.len = frames as u16;
        out.corrupt = false;
        for (i, s) in out.data.iter_mut().take(frames).enumerate() {
            *s = self.buf[i * self.channels] as f32 / 32768.0;
        }
        self.next_t = Some(t_first + (frames as f64 * 1e9 / self.rate as f64) as i64);
        Ok(Read::Block)
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }
}

/// A stimulus waiting to be played from a host time.
struct Scheduled {
    at: HostTime,
    samples: Arc<[f32]>,
    /// Frames of it already written.
    done: usize,
    /// Absolute frame index where it starts, once placed.
    start_frame: Option<i64>,
}

struct PlayerShared {
    queue: Mutex<VecDeque<Scheduled>>,
    stop: AtomicBool,
    error: Mutex<Option<StationError>>,
}

/// The playback side: a thread that keeps the PCM running with silence
/// and mixes each stimulus in at the frame its host time falls on.
struct Player {
    rate: u32,
    shared: Arc<PlayerShared>,
    thread: Option<JoinHandle<()>>,
}

impl Player {
    fn start(
        name: &str,
        rate: u32,
        clock: HostClock,
        stats: Arc<AudioStats>,
    ) -> StationResult<Player> {
        let (pcm, channels) = open_pcm(name, Direction::Playback, rate, PLAYBACK_PERIODS)?;
        let shared = Arc::new(PlayerShared {
            queue: Mutex::new(VecDeque::new()),
            stop: AtomicBool::new(false),
            error: Mutex::new(None),
        });
        let sh = shared.clone();
        let name = name.to_string();
        let thread = std::thread::Builder::new()
            .name("certlab-alsa-play".into())
            .spawn(move || {
                if let Err(e) = play_loop(&pcm, channels as usize, rate, clock, &sh, &stats, &name)
                {
                    *sh.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                }
            })
            .map_err(|e| StationError::Other(format!("cannot start the ALSA player: {e}")))?;
        Ok(Player {
            rate,
            shared,
            thread: Some(thread),
        })
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn play_loop(
    pcm: &PCM,
    channels: usize,
    rate: u32,
    clock: HostClock,
    sh: &PlayerShared,
    stats: &AudioStats,
    name: &str,
) -> StationResult<()> {
    let period = (rate as f64 * PERIOD_MS / 1e3).round() as usize;
    let mut buf = vec![0i16; period * channels];
    let mut written: i64 = 0;
    let io = pcm.io_i16().map_err(|e| alsa_err("io", name, e))?;
    while !sh.stop.load(Ordering::Relaxed) {
        // Where frame `written` will be heard, by ALSA's clock.
        let status = pcm.status().map_err(|e| alsa_err("status", name, e))?;
        let raw_ht = ts_ns(status.get_htstamp());
        let ht = clock.from_monotonic(raw_ht);
        #[allow(clippy::unnecessary_cast)]
        let delay = status.get_delay().max(0) as i64;
        // Until the stream runs, its timestamp and delay say nothing about
        // when a frame will be heard: stimuli wait (silence is written,
        // which starts it).
        let running = raw_ht != 0 && status.get_state() == alsa::pcm::State::Running;
        buf.iter_mut().for_each(|s| *s = 0);
        {
            let mut q = sh.queue.lock().unwrap_or_else(|p| p.into_inner());
            for s in q.iter_mut() {
                if s.start_frame.is_none() && running {
                    // Frame index heard at host time `at`.
                    let k = (written - delay) as f64 + s.at.secs_since(ht) * rate as f64;
                    let k = k.round() as i64;
                    if k < written {
                        stats.late_stimuli.fetch_add(1, Ordering::Relaxed);
                    }
                    s.start_frame = Some(k.max(written));
                }
                let Some(k0) = s.start_frame else { continue };
                // Mix its frames that fall in [written, written + period).
                for f in 0..period {
                    let abs = written + f as i64;
                    let i = abs - k0;
                    if i < 0 || i as usize >= s.samples.len() {
                        continue;
                    }
                    let v = (s.samples[i as usize].clamp(-1.0, 1.0) * 32767.0) as i16;
                    for c in 0..channels {
                        buf[f * channels + c] = v;
                    }
                    s.done = s.done.max(i as usize + 1);
                }
            }
            q.retain(|s| s.done < s.samples.len());
        }
        match io.writei(&buf) {
            Ok(n) => written += n as i64,
            Err(e) if e.errno() == libc::EPIPE || e.errno() == libc::ESTRPIPE => {
                stats.playback_xruns.fetch_add(1, Ordering::Relaxed);
                pcm.try_recover(e, true)
                    .map_err(|e| alsa_err("recover after an xrun", name, e))?;
                // The stream restarted: stimuli not yet begun are placed anew.
                let mut q = sh.queue.lock().unwrap_or_else(|p| p.into_inner());
                for s in q.iter_mut().filter(|s| s.done == 0) {
                    s.start_frame = None;
                }
            }
            Err(e) => return Err(alsa_err("write", name, e)),
        }
    }
    let _ = pcm.drop();
    Ok(())
}

/// A DUT's audio: capture from one ALSA device, playback to another (often
/// the same card).
pub struct AlsaAudio {
    capture_name: String,
    playback_name: String,
    clock: HostClock,
    pub stats: Arc<AudioStats>,
    player: Option<Player>,
}

impl AlsaAudio {
    pub fn new(capture_name: &str, playback_name: &str, clock: HostClock) -> AlsaAudio {
        AlsaAudio {
            capture_name: capture_name.to_string(),
            playback_name: playback_name.to_string(),
            clock,
            stats: Arc::new(AudioStats::default()),
            player: None,
        }
    }

    /// Start playing silence at `rate` now, so that the first stimulus does
    /// not wait for the device to open and start.
    pub fn start_playback(&mut self, rate: u32) -> StationResult<()> {
        self.player(rate).map(|_| ())
    }

    /// Stop the player (silence ends).
    pub fn stop_playback(&mut self) {
        self.player = None;
    }
}

impl AlsaAudio {
    /// The player at `rate`, started (silence) if it is not running.
    fn player(&mut self, rate: u32) -> StationResult<&Player> {
        if self.player.as_ref().is_some_and(|p| p.rate != rate) {
            self.player = None;
        }
        if self.player.is_none() {
            self.player = Some(Player::start(
                &self.playback_name,
                rate,
                self.clock,
                self.stats.clone(),
            )?);
        }
        Ok(self.player.as_ref().expect("started above"))
    }
}

impl AudioPath for AlsaAudio {
    fn capture_stream(&mut self, sample_rate: u32) -> StationResult<Box<dyn BlockSource>> {
        let capture = AlsaCapture::open(
            &self.capture_name,
            sample_rate,
            self.clock,
            self.stats.clone(),
        )?;
        // Playback runs (with silence) from the start of the step, as in a
        // call, so that the first stimulus does not wait for the device to
        // open and start. A device that cannot play fails at `play`, where
        // playing is asked for, not here.
        if let Err(e) = self.player(sample_rate) {
            tracing::debug!("ALSA playback not started with the capture: {e}");
        }
        Ok(Box::new(capture))
    }

    fn play(&mut self, samples: Arc<[f32]>, sample_rate: u32, at: HostTime) -> StationResult<()> {
        let p = self.player(sample_rate)?;
        let failed = p
            .shared
            .error
            .lock()
            .unwrap_or_else(|x| x.into_inner())
            .take();
        if let Some(e) = failed {
            self.player = None;
            return Err(e);
        }
        p.shared
            .queue
            .lock()
            .unwrap_or_else(|x| x.into_inner())
            .push_back(Scheduled {
                at,
                samples,
                done: 0,
                start_frame: None,
            });
        Ok(())
    }
}
