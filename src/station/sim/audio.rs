//! The simulated DUT's USB audio: its speaker (what the host plays reaches
//! the air after the DUT's receive latency) and its microphone (what is in
//! the air reaches the host after its send latency, on its own drifting
//! sample clock, stamped by the host on arrival).

use std::sync::Arc;

use rand::{Rng, SeedableRng};

use super::medium::Emission;
use super::world::{db, gaussian, lock, World};
use crate::sampling::{Block, BlockSource, Read, SourceError, BLOCK_LEN};
use crate::seeded::Rng as SimRng;
use crate::station::{AudioPath, StationError, StationResult};
use crate::time::HostTime;

pub(super) struct SimAudio {
    pub(super) world: Arc<World>,
}

pub(super) fn unsupported(what: &str, rate: u32, rates: &[u32]) -> StationError {
    StationError::Other(format!(
        "the device does not support {what} at {rate} Hz (its descriptors offer {rates:?})"
    ))
}

impl AudioPath for SimAudio {
    fn capture_stream(&mut self, sample_rate: u32) -> StationResult<Box<dyn BlockSource>> {
        let w = self.world.clone();
        w.check_connected(w.now())?;
        let caps = &w.sc.capabilities;
        if !caps.audio_capture || !caps.capture_rates.contains(&sample_rate) {
            return Err(unsupported("capture", sample_rate, &caps.capture_rates));
        }
        let a = &w.sc.audio;
        Ok(Box::new(DutCapture {
            nominal: sample_rate,
            t0: w.now() + 0.001,
            rate: sample_rate as f64 * (1.0 + w.sc.clocks.dut_audio_drift_ppm * 1e-6),
            n: 0,
            seq: 0,
            gain: db(a.capture_gain_db) * a.capture_polarity as f32,
            noise: db(a.capture_noise_dbfs),
            jitter_ns: w.sc.clocks.stamp_jitter_us * 1e3,
            rng: SimRng::seed_from_u64(w.sc.seed ^ 0xCA97),
            world: w,
        }))
    }

    fn play(&mut self, samples: Arc<[f32]>, sample_rate: u32, at: HostTime) -> StationResult<()> {
        let w = &self.world;
        w.check_connected(w.now())?;
        let caps = &w.sc.capabilities;
        if !caps.audio_playback || !caps.playback_rates.contains(&sample_rate) {
            return Err(unsupported("playback", sample_rate, &caps.playback_rates));
        }
        let lat = w.sc.latency.audio_receive.draw(&mut *lock(&w.dut_rng));
        let rate = sample_rate as f64 * (1.0 + w.sc.clocks.dut_audio_drift_ppm * 1e-6);
        w.dut_speaker(Emission {
            t_start: at.as_secs_f64() + lat,
            rate,
            gain: 1.0,
            samples,
        });
        Ok(())
    }
}

/// The DUT's microphone path as the host sees it: samples on the DUT's clock,
/// stamped by the host on arrival.
pub(super) struct DutCapture {
    world: Arc<World>,
    nominal: u32,
    t0: f64,
    rate: f64,
    n: u64,
    seq: u64,
    gain: f32,
    noise: f32,
    jitter_ns: f64,
    rng: SimRng,
}

impl BlockSource for DutCapture {
    fn sample_rate(&self) -> u32 {
        self.nominal
    }

    fn read_block(&mut self, out: &mut Block) -> std::result::Result<Read, SourceError> {
        let w = &*self.world;
        loop {
            let t_first = self.t0 + self.n as f64 / self.rate;
            let t_end = self.t0 + (self.n + BLOCK_LEN as u64) as f64 / self.rate;
            w.sleep_until(t_end);
            if let Err(StationError::Disconnected(why)) = w.check_connected(t_end) {
                return Err(SourceError::Disconnected(why));
            }
            let seq = self.seq;
            self.seq += 1;
            self.n += BLOCK_LEN as u64;
            if w.drop_probability > 0.0 && self.rng.random_bool(w.drop_probability) {
                continue; // the device lost this block; the host sees a sequence gap
            }
            {
                let m = lock(&w.medium);
                for (j, slot) in out.data.iter_mut().enumerate() {
                    let t = t_first + j as f64 / self.rate;
                    let mut v = 0.0;
                    for (e, lat) in &m.to_dut {
                        v += e.value_at(t - lat);
                    }
                    *slot = self.gain * v + self.noise * gaussian(&mut self.rng);
                }
            }
            let jitter = self.jitter_ns * gaussian(&mut self.rng) as f64;
            out.seq = seq;
            out.t_first_ns = (t_first * 1e9 + jitter).round() as i64;
            out.len = BLOCK_LEN as u16;
            out.corrupt = false;
            return Ok(Read::Block);
        }
    }
}
