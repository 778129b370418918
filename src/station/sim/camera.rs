//! The simulated DUT's camera: frames at its own drifting rate, the rig's
//! LED in the exposure of each, delivered after the camera's latency.

use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;

use super::world::{gaussian, lock, World};
use crate::seeded::Rng as SimRng;
use crate::station::{Camera, Frame, StationResult};
use crate::time::HostTime;

pub(super) struct SimCamera {
    world: Arc<World>,
    t0: f64,
    k: u64,
    last_arrival: f64,
    rng: SimRng,
}

impl SimCamera {
    pub(super) fn new(world: Arc<World>) -> Self {
        let seed = world.sc.seed ^ 0xCA3E;
        SimCamera {
            world,
            t0: 0.0,
            k: 0,
            last_arrival: 0.0,
            rng: SimRng::seed_from_u64(seed),
        }
    }
}

impl Camera for SimCamera {
    fn start(&mut self) -> StationResult<()> {
        let w = &self.world;
        w.check_connected(w.now())?;
        self.t0 = w.now();
        self.k = 0;
        self.last_arrival = 0.0;
        Ok(())
    }

    fn next_frame(&mut self, timeout: Duration) -> StationResult<Option<Frame>> {
        let w = self.world.clone();
        let v = &w.sc.video;
        let period = 1.0 / (v.fps * (1.0 + w.sc.clocks.camera_drift_ppm * 1e-6));
        let s = self.t0 + self.k as f64 * period;
        let lat = w.sc.latency.video.draw(&mut *lock(&w.dut_rng));
        // Frames leave the camera in order.
        let arrival = (s + period / 2.0 + lat).max(self.last_arrival + 1e-4);
        let deadline = w.now() + timeout.as_secs_f64();
        if arrival > deadline {
            w.sleep_until(deadline);
            w.check_connected(w.now())?;
            return Ok(None);
        }
        w.sleep_until(arrival);
        w.check_connected(arrival)?;
        self.last_arrival = arrival;
        self.k += 1;
        // The LED's share of this frame's exposure [s, s + period].
        let lit: f64 = {
            let m = lock(&w.medium);
            m.flashes
                .iter()
                .map(|f| (f.off.min(s + period) - f.on.max(s)).max(0.0))
                .sum::<f64>()
                / period
        };
        let (wd, ht) = (v.width as usize, v.height as usize);
        let r = v.led_region;
        let (x0, y0) = ((r[0] * wd as f64) as usize, (r[1] * ht as f64) as usize);
        let (x1, y1) = (
            ((r[0] + r[2]) * wd as f64) as usize,
            ((r[1] + r[3]) * ht as f64) as usize,
        );
        let mut luma = vec![0u8; wd * ht];
        for y in 0..ht {
            for x in 0..wd {
                let mut p = v.background + v.noise * gaussian(&mut self.rng) as f64;
                if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                    p += v.led_level * lit.min(1.0);
                }
                luma[y * wd + x] = p.round().clamp(0.0, 255.0) as u8;
            }
        }
        let jitter = w.sc.clocks.stamp_jitter_us * 1e-6 * gaussian(&mut self.rng) as f64;
        Ok(Some(Frame {
            seq: self.k - 1,
            host_time: HostTime::from_secs_f64(arrival + jitter),
            width: v.width,
            height: v.height,
            luma,
        }))
    }

    fn stop(&mut self) -> StationResult<()> {
        Ok(())
    }
}
