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

/// Exchanges in the top-up after each shot, at most (see [`Ctx::keep_synced`]).
pub const SYNC_TOPUP: usize = 64;

/// A top-up starts no exchange later than this before the next shot is due,
/// s: an exchange over a stalled link takes up to some 5 ms.
const TOPUP_MARGIN_S: f64 = 0.01;

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

    /// Top up the clock sync after a shot: up to [`SYNC_TOPUP`] exchanges,
    /// as many as start before `until` (when the next shot is due) less
    /// [`TOPUP_MARGIN_S`]. A shot's bound is the shortest trip out plus the
    /// shortest trip back among the exchanges around it, so every exchange
    /// near the shots can only tighten it; and they cost no time, since the
    /// step waits for the next shot anyway. Returns whether any ran.
    pub fn keep_synced(&mut self, until: HostTime) -> Result<bool, StationError> {
        let last = until.plus_secs(-(SYNC_PHASE_S + TOPUP_MARGIN_S));
        Ok(self.exchanges_until(SYNC_TOPUP, Some(last))? > 0)
    }

    fn exchanges(&mut self, n: usize) -> Result<(), StationError> {
        self.exchanges_until(n, None).map(|_| ())
    }

    /// Up to `n` exchanges, none started after `last`; returns how many ran.
    fn exchanges_until(&mut self, n: usize, last: Option<HostTime>) -> Result<usize, StationError> {
        use rand::Rng;
        let mut rng = crate::seeded::rng(self.seed ^ self.sync.len() as u64);
        for k in 0..n {
            let now = self.station.clock.now();
            if last.is_some_and(|t| now > t) {
                return Ok(k);
            }
            self.station
                .clock
                .sleep_until(now.plus_secs(rng.random_range(0.0..SYNC_PHASE_S)));
            let x = self.station.rig.sync_exchange()?;
            self.sync.add(x);
        }
        Ok(n)
    }

    /// The current estimate of the rig's clock.
    pub fn estimate(&self) -> Result<SyncEstimate, StationError> {
        self.sync
            .estimate()
            .ok_or_else(|| StationError::Rig("no clock-sync exchange with the rig".into()))
    }

    /// Top up the sync until `until` (see [`keep_synced`](Self::keep_synced))
    /// and refresh `est`, the estimate used for scheduling; whether it ran.
    pub fn top_up(
        &mut self,
        est: &mut SyncEstimate,
        until: HostTime,
    ) -> Result<bool, StationError> {
        let ran = self.keep_synced(until)?;
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
