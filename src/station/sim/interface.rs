//! The simulated USB audio interface behind `--rig audio:sim`: an equal of
//! the ALSA one behind [`Interface`].
//!
//! Owns its sample clock (the scenario's `[interface]`: drift against the
//! host, stamps with jitter), its converters' latencies (beyond what its
//! stamps say: the station's own path), its inputs (the reference
//! microphone hears the medium, the photodiode sees the LED, a loopback
//! cable carries an output back, an input with nothing connected reads the
//! converter's floor) and what its outputs drive on the bench (the
//! reference speaker, the LED through its driver, the solenoid, the
//! loopback cable), wired as the station file says. It places a host time
//! on an output frame with the same [`FrameClock`] the real one uses, from
//! its own jittered stamps, so its placement errors are a real
//! interface's. It never tells the host a latency.

use std::sync::{Arc, Mutex};

use rand::SeedableRng;

use super::medium::{Emission, Flash};
use super::scenario::InterfaceSpec;
use super::world::{db, gaussian, lock, World};
use crate::sampling::{SourceError, BLOCK_LEN};
use crate::seeded::Rng as SimRng;
use crate::station::audio_rig::{
    FrameClock, InputStream, Interface, InterfaceInfo, Passthrough, StationFile,
};
use crate::station::{StationError, StationResult};
use crate::time::HostTime;

/// Which bench part each channel reaches (0-based channels).
#[derive(Debug, Clone, Default)]
struct Wiring {
    mic: Option<u16>,
    photodiode: Option<u16>,
    loopback_in: Option<u16>,
    speaker: Option<u16>,
    led: Option<u16>,
    actuator: Option<u16>,
    loopback_out: Option<u16>,
}

/// A period of the simulated playback, frames at 48 kHz's 5 ms.
const PERIOD_S: f64 = 0.005;

struct Play {
    clock: FrameClock,
    /// The next period whose stamp is due.
    next_period: i64,
    rng: SimRng,
}

/// The simulated interface.
pub struct SimInterface {
    world: Arc<World>,
    spec: InterfaceSpec,
    wiring: Wiring,
    rate: u32,
    /// True time of frame 0.
    t0: f64,
    play: Mutex<Play>,
    /// What the loopback cable carries (output side, true times).
    cable: Arc<Mutex<Vec<Emission>>>,
    captures: u64,
}

impl SimInterface {
    /// The interface as `--rig audio:sim` opens it for `station`: refuses a
    /// rate it does not offer, as ALSA would.
    pub(super) fn open(world: Arc<World>, station: &StationFile) -> StationResult<SimInterface> {
        let spec = world.sc.interface.clone();
        if !spec.rates.contains(&station.rate) {
            return Err(StationError::Other(format!(
                "the audio interface sim refuses {} Hz (it offers {:?} Hz; {})",
                station.rate,
                spec.rates,
                station.at(&station.rate_span)
            )));
        }
        let c = |x: &Option<crate::station::audio_rig::station_file::Channel>| {
            x.as_ref().map(|c| c.index)
        };
        let silent = |i: Option<u16>| i.filter(|i| !spec.silent_inputs.contains(&(i + 1)));
        let wiring = Wiring {
            mic: silent(Some(station.microphone.index)),
            photodiode: silent(c(&station.photodiode)),
            loopback_in: silent(c(&station.loopback_in)),
            speaker: Some(station.speaker.index),
            led: c(&station.led),
            actuator: c(&station.actuator),
            loopback_out: c(&station.loopback_out),
        };
        let t0 = world.now();
        let seed = world.sc.seed ^ 0x4946_4143;
        let me = SimInterface {
            rate: station.rate,
            t0,
            spec,
            wiring,
            play: Mutex::new(Play {
                clock: FrameClock::new(station.rate),
                next_period: 0,
                rng: SimRng::seed_from_u64(seed),
            }),
            cable: Arc::new(Mutex::new(Vec::new())),
            world,
            captures: 0,
        };
        me.stamp_periods(&mut lock(&me.play), t0);
        Ok(me)
    }

    /// The interface's sample rate against true time.
    fn true_rate(&self) -> f64 {
        self.rate as f64 * (1.0 + self.spec.drift_ppm * 1e-6)
    }

    /// True time frame `k` leaves the buffer (its stamps' reference).
    fn true_of_frame(&self, k: i64) -> f64 {
        self.t0 + k as f64 / self.true_rate()
    }

    /// The period stamps the playback has given up to true time `now`.
    fn stamp_periods(&self, p: &mut Play, now: f64) {
        let per = (self.rate as f64 * PERIOD_S).round() as i64;
        let sd = self.spec.stamp_jitter_us * 1e-6;
        loop {
            let k = p.next_period * per;
            let t = self.true_of_frame(k);
            if t > now {
                return;
            }
            let stamp = t + sd * gaussian(&mut p.rng) as f64;
            p.clock.push(k, HostTime::from_secs_f64(stamp).0);
            p.next_period += 1;
        }
    }
}

impl Interface for SimInterface {
    fn info(&self) -> InterfaceInfo {
        InterfaceInfo {
            name: "sim".into(),
            driver: "simulated USB audio interface".into(),
            serial: Some("SIM-IFACE-0001".into()),
            inputs: self.spec.inputs,
            outputs: self.spec.outputs,
            rate: self.rate,
        }
    }

    fn open_capture(&mut self) -> StationResult<Box<dyn InputStream>> {
        self.captures += 1;
        let w = &self.world;
        // The first frame whose sound is at the input jack 2 ms from now.
        let first = ((w.now() + 0.002 - self.t0) * self.true_rate()).ceil() as i64;
        let floor = db(self.spec.input_floor_dbfs);
        Ok(Box::new(SimInput {
            world: self.world.clone(),
            channels: self.spec.inputs as usize,
            rate: self.rate,
            true_rate: self.true_rate(),
            t0: self.t0,
            in_lat: self.spec.input_latency_us * 1e-6,
            jitter: self.spec.stamp_jitter_us * 1e-6,
            next: first.max(0),
            mic: self.wiring.mic.map(|c| c as usize),
            photodiode: self.wiring.photodiode.map(|c| c as usize),
            loopback: self.wiring.loopback_in.map(|c| c as usize),
            mic_gain: db(w.sc.audio.rig_mic_gain_db),
            mic_noise: db(w.sc.audio.rig_mic_noise_dbfs),
            floor,
            cable: self.cable.clone(),
            rng: SimRng::seed_from_u64(w.sc.seed ^ 0x4944_4e49 ^ self.captures),
        }))
    }

    fn schedule(&mut self, ch: u16, samples: Arc<[f32]>, at: HostTime) -> StationResult<HostTime> {
        if ch >= self.spec.outputs {
            return Err(StationError::Rig(format!(
                "output channel {} of {}",
                ch + 1,
                self.spec.outputs
            )));
        }
        let now = self.world.now();
        let (k, fired) = {
            let mut p = lock(&self.play);
            self.stamp_periods(&mut p, now);
            let k = p.clock.frame_at(at.0);
            k.and_then(|k| Some((k, p.clock.time_of(k)?)))
                .ok_or_else(|| StationError::Rig("the playback has no stamps yet".into()))?
        };
        // The sound leaves the output jack after the DAC's own latency.
        let t = self.true_of_frame(k) + self.spec.output_latency_us * 1e-6;
        let dur = samples.len() as f64 / self.true_rate();
        let w = &self.world;
        let e = Emission {
            t_start: t,
            rate: self.true_rate(),
            gain: 1.0,
            samples,
        };
        let wi = &self.wiring;
        if wi.speaker == Some(ch) {
            w.rig_speaker(e);
        } else if wi.led == Some(ch) {
            let on = t + self.spec.led_driver_delay_us * 1e-6;
            w.rig_led(Flash { on, off: t + dur });
        } else if wi.actuator == Some(ch) {
            w.rig_actuator(t, t + dur);
        } else if wi.loopback_out == Some(ch) {
            let mut c = lock(&self.cable);
            c.retain(|x| x.t_end() > now - 2.0);
            c.push(e);
        }
        Ok(HostTime(fired.round() as i64))
    }

    fn set_passthrough(&mut self, p: Option<Passthrough>) -> StationResult<()> {
        let Some(p) = p else {
            lock(&self.world.medium).loopback = None;
            return Ok(());
        };
        if Some(p.input) != self.wiring.mic || Some(p.output) != self.wiring.speaker {
            return Err(StationError::Rig(
                "the simulated interface routes only its microphone to its speaker".into(),
            ));
        }
        // What the microphone hears is stamped `input_latency` late, played
        // `delay` after its stamp, and leaves the jack `output_latency` later.
        let d = p.delay_s + (self.spec.input_latency_us + self.spec.output_latency_us) * 1e-6;
        lock(&self.world.medium).loopback = Some(d);
        Ok(())
    }

    fn xruns(&self) -> u64 {
        0
    }

    fn placement_uncertainty_ns(&mut self) -> f64 {
        let now = self.world.now();
        let mut p = lock(&self.play);
        self.stamp_periods(&mut p, now);
        p.clock
            .uncertainty_ahead_ns(crate::station::audio_rig::PLACEMENT_AHEAD_S)
    }
}

/// The simulated capture of every input.
struct SimInput {
    world: Arc<World>,
    channels: usize,
    rate: u32,
    true_rate: f64,
    t0: f64,
    in_lat: f64,
    jitter: f64,
    next: i64,
    mic: Option<usize>,
    photodiode: Option<usize>,
    loopback: Option<usize>,
    mic_gain: f32,
    mic_noise: f32,
    floor: f32,
    cable: Arc<Mutex<Vec<Emission>>>,
    rng: SimRng,
}

impl InputStream for SimInput {
    fn channels(&self) -> usize {
        self.channels
    }

    fn rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut [f32]) -> Result<Option<(usize, i64)>, SourceError> {
        let n = BLOCK_LEN;
        let ch = self.channels;
        let t_of = |k: i64| self.t0 + k as f64 / self.true_rate;
        let first = self.next;
        // The block is there once its last frame is stamped.
        let w = self.world.clone();
        w.sleep_until(t_of(first + n as i64) + self.in_lat);
        {
            let m = lock(&w.medium);
            let cable = lock(&self.cable);
            for j in 0..n {
                let t = t_of(first + j as i64);
                let frame = &mut out[j * ch..(j + 1) * ch];
                for (c, slot) in frame.iter_mut().enumerate() {
                    let v = if Some(c) == self.mic {
                        let mut v = 0.0;
                        for e in &m.at_rig_mic {
                            v += e.value_at(t);
                        }
                        self.mic_gain * v + self.mic_noise * gaussian(&mut self.rng)
                    } else if Some(c) == self.photodiode {
                        let lit = m.flashes.iter().any(|f| f.on <= t && t < f.off);
                        if lit {
                            0.5
                        } else {
                            0.0
                        }
                    } else if Some(c) == self.loopback {
                        let mut v = 0.0;
                        for e in cable.iter() {
                            v += e.value_at(t);
                        }
                        0.5 * v
                    } else {
                        0.0
                    };
                    *slot = v + self.floor * gaussian(&mut self.rng);
                }
            }
        }
        self.next += n as i64;
        let stamp = t_of(first) + self.in_lat + self.jitter * gaussian(&mut self.rng) as f64;
        Ok(Some((n, HostTime::from_secs_f64(stamp).0)))
    }
}
