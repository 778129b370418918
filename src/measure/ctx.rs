//! What a procedure works with: the station, the run's clock sync with the
//! rig, cancellation and progress; and keeping that sync fresh.
//!
//! Owns the clock-sync policy of a step (the opening and closing bursts,
//! the top-ups between shots) and cancellable waits. It measures nothing
//! itself and judges nothing.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::station::sync::{ClockSync, SyncEstimate};
use crate::station::{Station, StationError};
use crate::time::HostTime;

/// Exchanges in the clock-sync burst that opens and closes each step.
pub const SYNC_BURST: usize = 96;

/// Exchanges in a top-up during a step (see [`Ctx::keep_synced`]).
pub const SYNC_TOPUP: usize = 8;

/// A top-up is due once this long has passed since the last exchange, s.
pub const SYNC_TOPUP_EVERY_S: f64 = 0.5;

/// A top-up is due when the bound predicted one second ahead is wider than this, µs.
pub const RESYNC_LIMIT_US: f64 = 200.0;

/// The random wait before each sync request spans a little over one USB frame, s.
const SYNC_PHASE_S: f64 = 0.0011;

/// What a procedure needs from the run.
pub struct Ctx<'a> {
    pub station: &'a mut Station,
    pub sync: &'a mut ClockSync,
    pub cancel: &'a AtomicBool,
    /// Called with the number of shots done so far.
    pub progress: &'a (dyn Fn(u64) + Sync),
    /// Seed for stimuli, so a run repeats.
    pub seed: u64,
}

impl Ctx<'_> {
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// One burst of clock-sync exchanges with the rig. Each request waits a
    /// random fraction of a USB frame first: requests at random phases of the
    /// (unseen) bus schedule include some that catch a frame at once, and the
    /// shortest delays are what tighten the bound.
    pub fn sync_burst(&mut self) -> Result<(), StationError> {
        self.exchanges(SYNC_BURST)
    }

    /// Re-synchronise when it is due: when the bound predicted a second ahead
    /// has grown past [`RESYNC_LIMIT_US`], or [`SYNC_TOPUP_EVERY_S`] has
    /// passed since the last exchange. Returns whether it ran.
    pub fn keep_synced(&mut self) -> Result<bool, StationError> {
        let now = self.station.clock.now();
        let last = self.sync.exchanges().last().map(|x| x.host_recv);
        let stale = last.is_none_or(|t| now.secs_since(t) >= SYNC_TOPUP_EVERY_S);
        let wide = match self.sync.estimate() {
            Some(est) => est.bound_at_us(est.host_to_rig(now.plus_secs(1.0))) > RESYNC_LIMIT_US,
            None => true,
        };
        if stale || wide {
            self.exchanges(SYNC_TOPUP)?;
            return Ok(true);
        }
        Ok(false)
    }

    fn exchanges(&mut self, n: usize) -> Result<(), StationError> {
        use rand::Rng;
        let mut rng = crate::seeded::rng(self.seed ^ self.sync.len() as u64);
        for _ in 0..n {
            let now = self.station.clock.now();
            self.station
                .clock
                .sleep_until(now.plus_secs(rng.random_range(0.0..SYNC_PHASE_S)));
            let x = self.station.rig.sync_exchange()?;
            self.sync.add(x);
        }
        Ok(())
    }

    /// The current estimate of the rig's clock.
    pub fn estimate(&self) -> Result<SyncEstimate, StationError> {
        self.sync
            .estimate()
            .ok_or_else(|| StationError::Rig("no clock-sync exchange with the rig".into()))
    }

    /// Re-synchronise when due (see [`keep_synced`](Self::keep_synced)) and
    /// refresh `est`, the estimate used for scheduling; whether it ran.
    pub fn top_up(&mut self, est: &mut SyncEstimate) -> Result<bool, StationError> {
        let ran = self.keep_synced()?;
        if ran {
            if let Ok(e) = self.estimate() {
                *est = e;
            }
        }
        Ok(ran)
    }

    /// Sleep until `t` in small steps, calling `between` meanwhile; false if cancelled.
    pub fn wait_until(
        &self,
        t: HostTime,
        mut between: impl FnMut() -> Result<(), String>,
    ) -> Result<bool, String> {
        loop {
            between()?;
            if self.cancelled() {
                return Ok(false);
            }
            let now = self.station.clock.now();
            if now >= t {
                return Ok(true);
            }
            let step = HostTime((t.0 - now.0).min(10_000_000));
            self.station.clock.sleep_until(HostTime(now.0 + step.0));
        }
    }
}
