//! The audio-interface rig (`--rig audio:ALSA_DEVICE`): a class-compliant
//! USB audio interface whose outputs drive the reference speaker, the LED
//! and the button actuator, and whose inputs read the reference microphone,
//! the photodiode and a loopback cable, all on the host's clock.
//!
//! Owns the [`Rig`] implementation over a small hardware trait,
//! [`Interface`] (open the capture of the input channels, schedule output
//! buffers at host times, report xruns), whose real implementation is
//! `station::host::alsa_interface` (feature `alsa`) and whose simulated one
//! is `station::sim::interface`, as equals; the [`FrameClock`] both use to
//! place a host time on an output frame (a fit over the interface's stamps,
//! which absorbs its clock drift and averages the stamps' jitter); the
//! station file ([`station_file`]); and the check that the reference
//! microphone is live. It detects no stimulus and judges nothing.
//!
//! **Same clock.** The rig's clock *is* the host's: a rig time is the host
//! time in whole µs (rig time R stands for host times [R, R + 1) µs). A
//! clock-sync exchange is therefore one host instant, widened by no link
//! but by the output frame clock's placement error (k = 2): the bound says
//! how well a command for rig time R is known to act at host time R. What the interface itself adds
//! (converter latency, which ALSA's delay does not count) is not a clock
//! error: it is the station's own path, for calibration to measure.

pub mod station_file;

use std::collections::VecDeque;
use std::sync::Arc;

use crate::sampling::{Block, BlockSource, Read, SourceError, BLOCK_LEN};
use crate::station::{
    LinkStats, Rig, RigInfo, RigOnset, StationError, StationResult, SyncExchange,
};
use crate::time::{Clock, HostTime, RigTime};
use crate::{Error, Result};

pub use station_file::{Drive, DriveSpec, StationFile};

/// What an interface is, as it opened.
#[derive(Debug, Clone, PartialEq)]
pub struct InterfaceInfo {
    /// The ALSA name it was opened by (`hw:CARD=Scarlett`), or `sim`.
    pub name: String,
    /// Its card's long name or driver, for the record.
    pub driver: String,
    /// A serial number, if the interface tells one.
    pub serial: Option<String>,
    pub inputs: u16,
    pub outputs: u16,
    pub rate: u32,
}

/// Software routing of an input channel to an output channel with a fixed
/// delay (the rig's microphone-to-speaker loopback for round trips).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Passthrough {
    pub input: u16,
    pub output: u16,
    pub delay_s: f64,
}

/// An open capture of every input channel, interleaved.
pub trait InputStream: Send {
    fn channels(&self) -> usize;
    fn rate(&self) -> u32;
    /// Read up to [`BLOCK_LEN`] frames into `out` (at least
    /// `BLOCK_LEN × channels` long), interleaved: `Some((frames, t_first_ns))`
    /// with the host time of the first frame, `None` when there was nothing
    /// yet. May block for about a block's duration. Never allocates.
    fn read(&mut self, out: &mut [f32]) -> std::result::Result<Option<(usize, i64)>, SourceError>;
}

/// The audio interface's hardware, behind the rig.
pub trait Interface: Send {
    fn info(&self) -> InterfaceInfo;
    /// Open the capture of every input channel.
    fn open_capture(&mut self) -> StationResult<Box<dyn InputStream>>;
    /// Play `samples` on output channel `ch` (0-based) from the first frame
    /// that leaves the interface at or after host time `at`; returns that
    /// frame's host time on the interface's frame clock.
    fn schedule(&mut self, ch: u16, samples: Arc<[f32]>, at: HostTime) -> StationResult<HostTime>;
    /// Route an input to an output with a delay, or stop (`None`).
    fn set_passthrough(&mut self, p: Option<Passthrough>) -> StationResult<()>;
    /// Capture and playback xruns so far.
    fn xruns(&self) -> u64;
    /// Expanded (k = 2) uncertainty, ns, of the host time a buffer handed
    /// over now is placed at (its frame clock's prediction error some
    /// [`PLACEMENT_AHEAD_S`] ahead); infinite before the output has stamps.
    fn placement_uncertainty_ns(&mut self) -> f64;
}

/// How far ahead a buffer is placed, for [`Interface::placement_uncertainty_ns`]:
/// steps schedule their stimuli 60 ms ahead.
pub const PLACEMENT_AHEAD_S: f64 = 0.06;

/// An output's frame clock: which host time each frame leaves the
/// interface at, from the stamps it gives (frame `k` left at host time
/// `t`), fitted by least squares over the last [`FrameClock::KEEP`]. The
/// fit's slope is the interface's sample clock against the host's (its
/// drift), and its averaging removes the stamps' jitter (snd-usb-audio
/// moves its pointer once per 1 ms URB).
#[derive(Debug, Clone)]
pub struct FrameClock {
    rate: u32,
    stamps: VecDeque<(i64, i64)>,
    fit: Option<(f64, f64, f64, f64)>,
    /// Of the last fit: the stamps' residual standard deviation, ns, the
    /// mean frame offset and Σ(x − x̄)².
    spread: Option<(f64, f64, f64)>,
}

impl FrameClock {
    /// Stamps kept: 2 s of 5 ms periods.
    pub const KEEP: usize = 400;

    pub fn new(rate: u32) -> Self {
        FrameClock {
            rate,
            stamps: VecDeque::with_capacity(Self::KEEP),
            fit: None,
            spread: None,
        }
    }

    /// Frame `frame` left the interface at host time `t_ns`.
    pub fn push(&mut self, frame: i64, t_ns: i64) {
        if self.stamps.len() == Self::KEEP {
            self.stamps.pop_front();
        }
        self.stamps.push_back((frame, t_ns));
        self.fit = None;
        self.spread = None;
    }

    /// Forget every stamp (the stream restarted after an xrun).
    pub fn clear(&mut self) {
        self.stamps.clear();
        self.fit = None;
        self.spread = None;
    }

    pub fn len(&self) -> usize {
        self.stamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stamps.is_empty()
    }

    /// (frame0, t0, ns per frame, mean frame offset) of the fit.
    fn line(&mut self) -> Option<(f64, f64, f64, f64)> {
        if self.fit.is_none() {
            let &(f0, t0) = self.stamps.front()?;
            let nominal = 1e9 / self.rate as f64;
            let pts = self
                .stamps
                .iter()
                .map(|&(f, t)| ((f - f0) as f64, (t - t0) as f64));
            let fit = crate::dsp::LineFit::of(pts)?;
            // Within ±1000 ppm of nominal, else the nominal rate through
            // the centroid (too few stamps, or a stream that restarted).
            let slope = fit
                .slope()
                .filter(|s| (s / nominal - 1.0).abs() < 1e-3)
                .unwrap_or(nominal);
            let a = fit.mean_y - slope * fit.mean_x;
            let n = self.stamps.len();
            let ss: f64 = self
                .stamps
                .iter()
                .map(|&(f, t)| ((t - t0) as f64 - a - slope * (f - f0) as f64).powi(2))
                .sum();
            let sd = if n > 2 {
                (ss / (n - 2) as f64).sqrt()
            } else {
                f64::INFINITY
            };
            self.spread = Some((sd, fit.mean_x, fit.sxx));
            self.fit = Some((f0 as f64, t0 as f64 + a, slope, fit.mean_x));
        }
        self.fit
    }

    /// Expanded (k = 2) uncertainty of [`time_of`](Self::time_of) for
    /// `frame`, ns: the fit's prediction error from the stamps' scatter
    /// (`2 s √(1/n + (x − x̄)²/Sxx)`). Infinite with fewer than three stamps.
    pub fn uncertainty_ns(&mut self, frame: i64) -> f64 {
        let Some((f0, ..)) = self.line() else {
            return f64::INFINITY;
        };
        let Some((sd, mean_x, sxx)) = self.spread else {
            return f64::INFINITY;
        };
        let n = self.stamps.len() as f64;
        let dx = frame as f64 - f0 - mean_x;
        let lever = if sxx > 0.0 {
            dx * dx / sxx
        } else {
            f64::INFINITY
        };
        2.0 * sd * (1.0 / n + lever).sqrt()
    }

    /// [`uncertainty_ns`](Self::uncertainty_ns) of a frame `ahead_s` after the last stamp.
    pub fn uncertainty_ahead_ns(&mut self, ahead_s: f64) -> f64 {
        let Some(&(last, _)) = self.stamps.back() else {
            return f64::INFINITY;
        };
        self.uncertainty_ns(last + (ahead_s * self.rate as f64) as i64)
    }

    /// Host ns frame `frame` leaves at.
    pub fn time_of(&mut self, frame: i64) -> Option<f64> {
        let (f0, t0, s, _) = self.line()?;
        Some(t0 + (frame as f64 - f0) * s)
    }

    /// The first frame leaving at or after host ns `t`.
    pub fn frame_at(&mut self, t_ns: i64) -> Option<i64> {
        let (f0, t0, s, _) = self.line()?;
        Some((f0 + (t_ns as f64 - t0) / s - 1e-9).ceil() as i64)
    }

    /// The interface's clock against the host's, ppm (positive: fast).
    pub fn drift_ppm(&mut self) -> Option<f64> {
        let (_, _, s, _) = self.line()?;
        Some((1e9 / self.rate as f64 / s - 1.0) * 1e6)
    }
}

/// An input level, for the probe and the live-microphone check.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InputLevel {
    /// 1-based channel.
    pub channel: u16,
    /// What the station file connects there (`microphone`, ...), if anything.
    pub part: Option<String>,
    pub rms_dbfs: f64,
    pub peak_dbfs: f64,
}

/// An input quieter than this carries no signal: even a microphone in a
/// quiet room, through a preamp at its lowest gain, shows its self-noise
/// well above it; an unplugged input or a muted channel reads digital
/// silence or the converter's own floor (−110 dBFS and below).
pub const NO_SIGNAL_DBFS: f64 = -96.0;

/// How long the live-microphone check listens, s.
pub const LIVE_CHECK_S: f64 = 0.25;

fn dbfs(x: f64) -> f64 {
    if x > 0.0 {
        20.0 * x.log10()
    } else {
        f64::NEG_INFINITY
    }
}

/// The rig: an [`Interface`] and its station file.
pub struct AudioRig {
    iface: Box<dyn Interface>,
    station: StationFile,
    clock: Clock,
    info: InterfaceInfo,
    /// Firings as the frame clock placed them.
    onsets: Vec<RigOnset>,
    scheduled: u64,
}

/// Host time as rig time: whole µs (never negative: host time counts from
/// the station's epoch).
pub fn rig_of(t: HostTime) -> RigTime {
    RigTime(t.0.max(0) as u64 / 1000)
}

/// Rig time as host time: its first ns.
pub fn host_of(r: RigTime) -> HostTime {
    HostTime(r.0 as i64 * 1000)
}

impl AudioRig {
    /// The rig over an opened interface: its channels checked against the
    /// station file (a channel it lacks, or another rate, is the station's
    /// error, exit 2, named at the file's position).
    pub fn open(iface: Box<dyn Interface>, station: StationFile, clock: Clock) -> Result<AudioRig> {
        let info = iface.info();
        if info.rate != station.rate {
            return Err(Error::Device(format!(
                "{}: the audio interface {} runs at {} Hz, not the {} Hz the station file asks for",
                station.at(&station.rate_span),
                info.name,
                info.rate,
                station.rate
            )));
        }
        for (input, c) in station.channels() {
            let (have, dir) = if input {
                (info.inputs, "input")
            } else {
                (info.outputs, "output")
            };
            if c.index >= have {
                return Err(Error::Device(format!(
                    "{}: `{}` is {dir} channel {}, but the audio interface {} has {have} {dir} channel{}",
                    station.at(&c.span),
                    c.name,
                    c.index + 1,
                    info.name,
                    if have == 1 { "" } else { "s" }
                )));
            }
        }
        Ok(AudioRig {
            iface,
            station,
            clock,
            info,
            onsets: Vec::new(),
            scheduled: 0,
        })
    }

    /// [`open`](Self::open), then listen to every input for a quarter of a
    /// second: a reference microphone with no signal stops here (exit 2),
    /// before any step blames the device for what a dead microphone missed.
    pub fn open_live(
        iface: Box<dyn Interface>,
        station: StationFile,
        clock: Clock,
    ) -> Result<AudioRig> {
        let mut rig = Self::open(iface, station, clock)?;
        let (levels, _, _) = rig
            .listen(LIVE_CHECK_S)
            .map_err(|e| Error::Device(format!("audio interface {}: {e}", rig.info.name)))?;
        Self::check_microphone(&levels, &rig.station)?;
        Ok(rig)
    }

    pub fn interface(&self) -> &InterfaceInfo {
        &self.info
    }

    pub fn station(&self) -> &StationFile {
        &self.station
    }

    /// Capture every input for `seconds` and return each one's level, and
    /// the interleaved samples with the host time of the first frame.
    pub fn listen(&mut self, seconds: f64) -> StationResult<(Vec<InputLevel>, Vec<f32>, i64)> {
        let mut s = self.iface.open_capture()?;
        let ch = s.channels();
        let want = (seconds * s.rate() as f64) as usize;
        let mut buf = vec![0.0f32; BLOCK_LEN * ch];
        let mut all = Vec::with_capacity(want * ch);
        let mut t0 = None;
        let give_up = self.clock.now().plus_secs(seconds + 2.0);
        while all.len() < want * ch {
            if self.clock.now() > give_up {
                return Err(StationError::Rig(format!(
                    "the audio interface {} delivered {} of {want} frames in {:.1} s",
                    self.info.name,
                    all.len() / ch.max(1),
                    seconds + 2.0
                )));
            }
            match s
                .read(&mut buf)
                .map_err(|e| StationError::Rig(e.to_string()))?
            {
                Some((n, t)) => {
                    t0.get_or_insert(t);
                    all.extend_from_slice(&buf[..n * ch]);
                }
                None => self.clock.sleep(std::time::Duration::from_millis(1)),
            }
        }
        let parts = self.parts_by_input();
        let levels = (0..ch)
            .map(|c| {
                let (mut sq, mut peak) = (0.0f64, 0.0f64);
                let mut n = 0usize;
                for v in all.iter().skip(c).step_by(ch) {
                    sq += (*v as f64).powi(2);
                    peak = peak.max(v.abs() as f64);
                    n += 1;
                }
                InputLevel {
                    channel: c as u16 + 1,
                    part: parts.get(c).cloned().flatten(),
                    rms_dbfs: dbfs((sq / n.max(1) as f64).sqrt()),
                    peak_dbfs: dbfs(peak),
                }
            })
            .collect();
        Ok((levels, all, t0.unwrap_or(0)))
    }

    /// What the station file connects to each input.
    fn parts_by_input(&self) -> Vec<Option<String>> {
        let mut v = vec![None; self.info.inputs as usize];
        for (input, c) in self.station.channels() {
            if input {
                if let Some(slot) = v.get_mut(c.index as usize) {
                    *slot = Some(c.name.trim_start_matches("inputs.").to_string());
                }
            }
        }
        v
    }

    /// Fail unless the reference microphone shows a signal: a run on a
    /// dead microphone would measure nothing and blame the device.
    pub fn check_microphone(levels: &[InputLevel], station: &StationFile) -> Result<()> {
        let mic = station.microphone.index as usize;
        match levels.get(mic) {
            Some(l) if l.rms_dbfs >= NO_SIGNAL_DBFS => Ok(()),
            Some(l) => Err(Error::Device(format!(
                "no signal on the reference microphone (input {} reads {:.1} dBFS, below {NO_SIGNAL_DBFS} dBFS): \
                 check its cable, its phantom power and the input's gain ({})",
                mic + 1,
                l.rms_dbfs,
                station.at(&station.microphone.span)
            ))),
            None => Err(Error::Device(format!(
                "no signal on the reference microphone: input {} was not captured",
                mic + 1
            ))),
        }
    }

    /// Schedule `samples` on `ch` at rig time `at`, recording when it fires.
    fn emit(&mut self, ch: u16, sensor: u8, samples: Arc<[f32]>, at: RigTime) -> StationResult<()> {
        let now = self.clock.now();
        let t = host_of(at);
        if t < now {
            return Err(StationError::RigRefused {
                code: rig_protocol::ErrorCode::Late,
                message: format!(
                    "scheduled for {} us, {:.1} ms ago",
                    at.0,
                    now.secs_since(t) * 1e3
                ),
            });
        }
        let fired = self.iface.schedule(ch, samples, t)?;
        self.scheduled += 1;
        if self.onsets.len() >= 4096 {
            self.onsets.drain(..2048);
        }
        // Rig time R stands for [R, R + 1) µs: round up, so that the firing
        // is never before the frame.
        self.onsets.push(RigOnset {
            sensor,
            at: RigTime((fired.0.max(0) as u64).div_ceil(1000)),
        });
        Ok(())
    }

    /// A burst driving an actuator output for `dur_s`.
    fn drive(&self, spec: DriveSpec, dur_s: f64) -> Arc<[f32]> {
        let rate = self.info.rate as f64;
        let n = ((dur_s * rate).round() as usize).max(1);
        match spec.drive {
            Drive::Dc => vec![spec.level; n].into(),
            Drive::Tone { hz } => (0..n)
                .map(|i| {
                    spec.level * (2.0 * std::f64::consts::PI * hz * i as f64 / rate).sin() as f32
                })
                .collect(),
        }
    }

    fn play_on(
        &mut self,
        ch: u16,
        samples: Arc<[f32]>,
        rate: u32,
        at: RigTime,
    ) -> StationResult<()> {
        if rate != self.info.rate {
            return Err(self.refuse_rate("play", rate));
        }
        self.emit(ch, rig_protocol::sensor::SPEAKER, samples, at)
    }

    /// Input channel `ch` as a block source stamped in rig (= host) time.
    fn stream_of(&mut self, ch: u16, rate: u32) -> StationResult<Box<dyn BlockSource>> {
        if rate != self.info.rate {
            return Err(self.refuse_rate("an input stream", rate));
        }
        let stream = self.iface.open_capture()?;
        let channels = stream.channels();
        Ok(Box::new(ChannelSource {
            stream,
            channel: ch as usize,
            channels,
            buf: vec![0.0; BLOCK_LEN * channels],
            seq: 0,
            next_t: None,
        }))
    }

    /// The rig seen through its loopback cable (when the station file names
    /// one): its "speaker" is the cable's output and its "microphone" the
    /// cable's input, so that the procedures that measure the speaker-to-
    /// microphone path (`measure::rig_path`) measure the interface's own
    /// output-to-input latency unchanged.
    pub fn loopback_cable(&mut self) -> Option<CableRig<'_>> {
        let out = self.station.loopback_out.as_ref()?.index;
        let input = self.station.loopback_in.as_ref()?.index;
        Some(CableRig {
            rig: self,
            out,
            input,
        })
    }

    fn refuse_rate(&self, what: &str, rate: u32) -> StationError {
        StationError::RigRefused {
            code: rig_protocol::ErrorCode::BadParameter,
            message: format!(
                "{what} at {rate} Hz: the audio interface {} runs at {} Hz (the station file's rate)",
                self.info.name, self.info.rate
            ),
        }
    }
}

impl Rig for AudioRig {
    fn info(&self) -> RigInfo {
        RigInfo {
            kind: format!("audio interface {} ({})", self.info.name, self.info.driver),
            serial: self
                .station
                .serial
                .clone()
                .or_else(|| self.info.serial.clone())
                .unwrap_or_else(|| self.info.name.clone()),
            firmware: format!("certlab {} on the host clock", env!("CARGO_PKG_VERSION")),
            protocol: 0,
            mic_sample_rates: vec![self.info.rate],
            loopback_delay_us: (self.station.round_trip_delay_s * 1e6).round() as u64,
        }
    }

    /// The same clock on both sides: one instant, stamped once, widened by
    /// what the rig's outputs add to it: a command for rig time R acts on
    /// the frame the output's frame clock places at R, which is known to
    /// within its fit's prediction error. So R lies within ± that of the
    /// host instant, and every shot's budget carries it (a capture's own
    /// stamps need it not, so for receive steps it is conservative).
    fn sync_exchange(&mut self) -> StationResult<SyncExchange> {
        let t = self.clock.now();
        let u = self.iface.placement_uncertainty_ns();
        if !u.is_finite() {
            return Err(StationError::Rig(format!(
                "the audio interface {}'s output has no stamps yet",
                self.info.name
            )));
        }
        let u = u.ceil() as i64;
        Ok(SyncExchange {
            host_send: HostTime(t.0 - u),
            rig: rig_of(t),
            host_recv: HostTime(t.0 + u),
        })
    }

    fn play(&mut self, samples: Arc<[f32]>, sample_rate: u32, at: RigTime) -> StationResult<()> {
        let ch = self.station.speaker.index;
        self.play_on(ch, samples, sample_rate, at)
    }

    fn flash_led(&mut self, at: RigTime, duration_us: u64) -> StationResult<()> {
        let Some(ch) = self.station.led.as_ref().map(|c| c.index) else {
            return Err(StationError::Rig(format!(
                "the station file {} connects no LED (`outputs.led`)",
                self.station.path.display()
            )));
        };
        let burst = self.drive(self.station.led_drive, duration_us as f64 * 1e-6);
        self.emit(ch, rig_protocol::sensor::LED, burst, at)
    }

    fn press_button(&mut self, at: RigTime, hold_us: u64) -> StationResult<()> {
        let Some(ch) = self.station.actuator.as_ref().map(|c| c.index) else {
            return Err(StationError::Rig(format!(
                "the station file {} connects no button actuator (`outputs.actuator`)",
                self.station.path.display()
            )));
        };
        let burst = self.drive(self.station.actuator_drive, hold_us as f64 * 1e-6);
        self.emit(ch, rig_protocol::sensor::BUTTON, burst, at)
    }

    fn set_loopback(&mut self, on: bool) -> StationResult<()> {
        let p = on.then_some(Passthrough {
            input: self.station.microphone.index,
            output: self.station.speaker.index,
            delay_s: self.station.round_trip_delay_s,
        });
        self.iface.set_passthrough(p)
    }

    fn mic_stream(&mut self, sample_rate: u32) -> StationResult<Box<dyn BlockSource>> {
        let ch = self.station.microphone.index;
        self.stream_of(ch, sample_rate)
    }

    fn link_stats(&self) -> LinkStats {
        LinkStats {
            frames: self.scheduled,
            xruns: Some(self.iface.xruns()),
            ..LinkStats::default()
        }
    }

    fn take_onsets(&mut self) -> Vec<RigOnset> {
        std::mem::take(&mut self.onsets)
    }
}

/// An [`AudioRig`] through its loopback cable ([`AudioRig::loopback_cable`]).
pub struct CableRig<'a> {
    rig: &'a mut AudioRig,
    out: u16,
    input: u16,
}

impl Rig for CableRig<'_> {
    fn info(&self) -> RigInfo {
        self.rig.info()
    }
    fn sync_exchange(&mut self) -> StationResult<SyncExchange> {
        self.rig.sync_exchange()
    }
    fn play(&mut self, samples: Arc<[f32]>, sample_rate: u32, at: RigTime) -> StationResult<()> {
        let out = self.out;
        self.rig.play_on(out, samples, sample_rate, at)
    }
    fn flash_led(&mut self, _: RigTime, _: u64) -> StationResult<()> {
        Err(StationError::Rig("a loopback cable has no LED".into()))
    }
    fn press_button(&mut self, _: RigTime, _: u64) -> StationResult<()> {
        Err(StationError::Rig("a loopback cable has no actuator".into()))
    }
    fn set_loopback(&mut self, _: bool) -> StationResult<()> {
        Err(StationError::Rig("a loopback cable has no routing".into()))
    }
    fn mic_stream(&mut self, sample_rate: u32) -> StationResult<Box<dyn BlockSource>> {
        let input = self.input;
        self.rig.stream_of(input, sample_rate)
    }
    fn link_stats(&self) -> LinkStats {
        self.rig.link_stats()
    }
    fn take_onsets(&mut self) -> Vec<RigOnset> {
        self.rig.take_onsets()
    }
}

/// One input channel of a capture as a block source, stamped in rig time
/// (which is host time: ns = µs × 1000 = host ns).
struct ChannelSource {
    stream: Box<dyn InputStream>,
    channel: usize,
    channels: usize,
    buf: Vec<f32>,
    seq: u64,
    next_t: Option<i64>,
}

impl BlockSource for ChannelSource {
    fn read_block(&mut self, out: &mut Block) -> std::result::Result<Read, SourceError> {
        let Some((n, t)) = self.stream.read(&mut self.buf)? else {
            return Ok(Read::Idle);
        };
        let rate = self.stream.rate() as f64;
        // A stream that resumed after an xrun skips the blocks it lost.
        if let Some(expected) = self.next_t {
            let block_ns = BLOCK_LEN as f64 * 1e9 / rate;
            let lost = ((t - expected) as f64 / block_ns).round();
            if lost >= 1.0 {
                self.seq += lost as u64;
            }
        }
        out.seq = self.seq;
        self.seq += 1;
        out.t_first_ns = t;
        out.len = n as u16;
        out.corrupt = false;
        for (i, s) in out.data.iter_mut().take(n).enumerate() {
            *s = self.buf[i * self.channels + self.channel];
        }
        self.next_t = Some(t + (n as f64 * 1e9 / rate) as i64);
        Ok(Read::Block)
    }

    fn sample_rate(&self) -> u32 {
        self.stream.rate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_clock_fits_drift_through_jittered_stamps() {
        // 48 kHz at +80 ppm, stamps jittered by ±500 µs (1 ms pointer steps).
        let rate = 48_000;
        let mut fc = FrameClock::new(rate);
        let ns_per = 1e9 / (rate as f64 * (1.0 + 80e-6));
        let mut rng = crate::seeded::rng(7);
        for p in 0..FrameClock::KEEP as i64 {
            let k = p * 240;
            let jitter: f64 = rand::Rng::random_range(&mut rng, -500e3..500e3);
            fc.push(k, 5_000_000_000 + (k as f64 * ns_per + jitter) as i64);
        }
        let drift = fc.drift_ppm().unwrap();
        assert!((drift - 80.0).abs() < 10.0, "drift {drift} ppm");
        let k = 400 * 240 + 4800;
        let want = 5_000_000_000.0 + k as f64 * ns_per;
        let err = fc.time_of(k).unwrap() - want;
        assert!(err.abs() < 60e3, "a frame 100 ms ahead placed {err} ns off");
        let u = fc.uncertainty_ns(k);
        assert!(u > 10e3 && u < 100e3, "placement uncertainty {u} ns");
        assert!(err.abs() <= u, "error {err} ns outside ±{u} ns (k = 2)");
        let t = want as i64;
        let f = fc.frame_at(t).unwrap();
        assert!(fc.time_of(f).unwrap() >= t as f64 - 1.0 && fc.time_of(f - 1).unwrap() < t as f64);
    }

    /// The stated placement uncertainty (k = 2) holds the true error in
    /// about 95 % of trials: over 200 seeds, at least 180.
    #[test]
    fn the_placement_uncertainty_covers_the_error() {
        let rate = 48_000;
        let ns_per = 1e9 / (rate as f64 * (1.0 - 75e-6));
        let mut inside = 0;
        for seed in 0..200 {
            let mut rng = crate::seeded::rng(seed);
            let mut fc = FrameClock::new(rate);
            for p in 0..FrameClock::KEEP as i64 {
                let k = p * 240;
                let z: f64 =
                    rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng);
                fc.push(k, (k as f64 * ns_per + 150e3 * z) as i64);
            }
            let k = (FrameClock::KEEP as i64 - 1) * 240 + 2880;
            let err = fc.time_of(k).unwrap() - k as f64 * ns_per;
            if err.abs() <= fc.uncertainty_ahead_ns(0.06) {
                inside += 1;
            }
        }
        assert!((180..=200).contains(&inside), "{inside} of 200 inside");
    }

    #[test]
    fn rig_time_is_host_time_in_whole_microseconds() {
        assert_eq!(rig_of(HostTime(12_345_999)), RigTime(12_345));
        assert_eq!(host_of(RigTime(12_345)), HostTime(12_345_000));
        assert_eq!(rig_of(HostTime(-5)), RigTime(0));
    }
}
