//! The simulated rig's hardware: its clock, its USB link's delays, and what
//! its speaker, LED, actuator and reference microphone do to the medium.
//! Its firmware (`sim::firmware`) speaks the protocol in front of it; its
//! refusals are the protocol's typed codes.

use std::sync::Arc;

use rand::SeedableRng;

use super::medium::{Emission, Flash};
use super::world::{db, gaussian, lock, World};
use crate::sampling::{Block, BlockSource, Read, SourceError, BLOCK_LEN};
use crate::seeded::Rng as SimRng;
use crate::station::RigInfo;
use crate::time::RigTime;
use rig_protocol::{ErrorCode, Refusal};

/// The simulated rig's hardware: its clock, its link's delays, and what its
/// speaker, LED, actuator and microphone do to the medium. Its firmware
/// ([`firmware`]) speaks the protocol in front of it; refusals are typed as
/// the protocol's.
pub struct SimRig {
    pub(super) world: Arc<World>,
    pub(super) link_rng: SimRng,
    /// What the real link under the simulated one (a pseudo-terminal and
    /// the thread wake-ups on either side) takes of a message at the least,
    /// each way, s: counted inside the link model's delays rather than on
    /// top of them. 0 for the in-memory link of virtual time.
    pub(super) transit_s: f64,
    /// True time at which the bytes last read reached the firmware.
    pub(super) receipt: Option<f64>,
}

/// The least a message takes over a pseudo-terminal, each way, with the
/// wake-ups of the threads on either side, s: measured on a 2-core VM over
/// 4824 exchanges between `certlab sim rig` and a run, 10.6 µs up (host
/// stamp to firmware read) and 11.1 µs down (firmware write to host stamp).
pub(super) const PTY_TRANSIT_S: f64 = 10e-6;

/// A refusal of the simulated rig's hardware.
pub(super) fn refuse(code: ErrorCode, text: std::fmt::Arguments<'_>) -> Refusal {
    Refusal::fmt(code, text)
}

impl SimRig {
    pub(super) fn new(world: Arc<World>) -> Self {
        let seed = world.sc.seed ^ 0x5249_4721;
        SimRig {
            world,
            link_rng: SimRng::seed_from_u64(seed),
            transit_s: 0.0,
            receipt: None,
        }
    }

    /// The simulated rig behind a pseudo-terminal (see [`PTY_TRANSIT_S`]).
    pub(super) fn over_pty(world: Arc<World>) -> Self {
        SimRig {
            transit_s: PTY_TRANSIT_S,
            ..SimRig::new(world)
        }
    }

    /// The rig's clock now.
    pub(super) fn now(&self) -> RigTime {
        RigTime(self.world.rig_us(self.world.now()).floor() as u64)
    }

    /// The delay of a transfer starting at true time `t`.
    pub(super) fn link_delay(&mut self, t: f64, range: [f64; 2]) -> f64 {
        self.world.sc.link.delay(t, range, &mut self.link_rng)
    }

    /// Bytes the host wrote have just been read: the rig time at which the
    /// firmware has them (a SyncReply's stamp), the end of the up-link delay.
    /// The link model's delays stand for the whole way between the host's
    /// stamps and the rig's, and part of that way ([`transit_s`](Self)) has
    /// already passed on the real link: it counts as part of the model's
    /// delay, never so as to stamp the receipt before the bytes can have
    /// left the host. The firmware acts at the receipt (waited for
    /// precisely: another thread of the firmware may send what it queues at
    /// once, and nothing may leave before it arrived).
    pub(super) fn arrive(&mut self) -> RigTime {
        let up_us = self.world.sc.link.up_us;
        let sent = self.world.now() - self.transit_s.min(up_us[0] * 1e-6);
        let up = self.link_delay(sent, up_us);
        self.receipt = Some(sent + up);
        self.world.sleep_precisely(sent + up);
        RigTime(self.world.rig_us(sent + up).floor() as u64)
    }

    /// The firmware's replies reach the host at the end of the down-link
    /// delay after the receipt (less the real link's own transit, never
    /// before the receipt): wait for that instant precisely, since the host
    /// stamps the reply's arrival.
    pub(super) fn depart(&mut self) {
        let from = self.receipt.take().unwrap_or_else(|| self.world.now());
        let down = self.link_delay(from, self.world.sc.link.down_us);
        self.world
            .sleep_precisely((from + down - self.transit_s).max(from));
    }

    pub(super) fn info(&self) -> RigInfo {
        RigInfo {
            kind: "simulated rig".into(),
            serial: "SIM-RIG-0001".into(),
            firmware: env!("CARGO_PKG_VERSION").into(),
            protocol: 1,
            mic_sample_rates: vec![16_000, 44_100, 48_000, 96_000],
            loopback_delay_us: 500,
        }
    }

    /// The true time of rig time `at`, which must not have passed.
    pub(super) fn schedule_time(&self, at: RigTime, what: &str) -> Result<f64, Refusal> {
        let t = self.world.true_of_rig(at);
        let now = self.world.now();
        if t < now {
            return Err(refuse(
                ErrorCode::Late,
                format_args!(
                    "{what} scheduled for rig time {} us is {:.1} ms late",
                    at.0,
                    (now - t) * 1e3
                ),
            ));
        }
        Ok(t)
    }

    pub(super) fn play(
        &mut self,
        samples: Arc<[f32]>,
        sample_rate: u32,
        at: RigTime,
    ) -> Result<(), Refusal> {
        let t = self.schedule_time(at, "play")?;
        let w = &self.world;
        let rate = sample_rate as f64 * (1.0 + w.sc.clocks.rig_drift_ppm * 1e-6);
        w.rig_speaker(Emission {
            t_start: t,
            rate,
            gain: 1.0,
            samples,
        });
        Ok(())
    }

    pub(super) fn flash_led(&mut self, at: RigTime, duration_us: u64) -> Result<(), Refusal> {
        let t = self.schedule_time(at, "LED flash")?;
        self.world.rig_led(Flash {
            on: t,
            off: t + duration_us as f64 * 1e-6,
        });
        Ok(())
    }

    pub(super) fn press_button(&mut self, at: RigTime, hold_us: u64) -> Result<(), Refusal> {
        let t = self.schedule_time(at, "button press")?;
        self.world.rig_actuator(t, t + hold_us as f64 * 1e-6);
        Ok(())
    }

    pub(super) fn set_loopback(&mut self, on: bool) {
        let d = self.info().loopback_delay_us as f64 * 1e-6;
        lock(&self.world.medium).loopback = on.then_some(d);
    }

    pub(super) fn mic_stream(&mut self, sample_rate: u32) -> Result<RigMic, Refusal> {
        let rates = self.info().mic_sample_rates;
        if !rates.contains(&sample_rate) {
            return Err(refuse(
                ErrorCode::BadParameter,
                format_args!(
                    "the rig's microphone cannot stream at {sample_rate} Hz (it offers {rates:?})"
                ),
            ));
        }
        let w = self.world.clone();
        let start_us = w.rig_us(w.now() + 0.002).ceil();
        let seed = w.sc.seed ^ 0x004d_4943;
        Ok(RigMic {
            rate: sample_rate,
            start_us,
            n: 0,
            seq: 0,
            gain: db(w.sc.audio.rig_mic_gain_db),
            noise: db(w.sc.audio.rig_mic_noise_dbfs),
            rng: SimRng::seed_from_u64(seed),
            world: w,
        })
    }
}

/// The rig's reference microphone: sampled on the rig's clock, stamped in rig time.
pub(super) struct RigMic {
    pub(super) world: Arc<World>,
    pub(super) rate: u32,
    pub(super) start_us: f64,
    pub(super) n: u64,
    pub(super) seq: u64,
    pub(super) gain: f32,
    pub(super) noise: f32,
    pub(super) rng: SimRng,
}

impl BlockSource for RigMic {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn read_block(&mut self, out: &mut Block) -> std::result::Result<Read, SourceError> {
        let us_per = 1e6 / self.rate as f64;
        let rig_first = self.start_us + self.n as f64 * us_per;
        let w = &*self.world;
        let t_end = w.true_of_rig(RigTime((rig_first + BLOCK_LEN as f64 * us_per) as u64));
        w.sleep_until(t_end);
        {
            let m = lock(&w.medium);
            for (j, slot) in out.data.iter_mut().enumerate() {
                let t = w.true_of_rig(RigTime(0))
                    + (rig_first + j as f64 * us_per) * 1e-6
                        / (1.0 + w.sc.clocks.rig_drift_ppm * 1e-6);
                let mut v = 0.0;
                for e in &m.at_rig_mic {
                    v += e.value_at(t);
                }
                *slot = self.gain * v + self.noise * gaussian(&mut self.rng);
            }
        }
        out.seq = self.seq;
        out.t_first_ns = (rig_first * 1e3).round() as i64;
        out.len = BLOCK_LEN as u16;
        out.corrupt = false;
        self.seq += 1;
        self.n += BLOCK_LEN as u64;
        Ok(Read::Block)
    }
}
