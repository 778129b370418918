//! Time bases of the station.
//!
//! Owns the two clocks every latency is expressed in: host time (the host's
//! monotonic clock, in nanoseconds since the station's epoch) and rig time (the
//! rig's own microsecond counter). It does not convert between them; that is
//! the clock synchronisation's job (`station::sync`).

use std::time::Instant;

/// Host monotonic time in nanoseconds since the station epoch.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct HostTime(pub i64);

impl HostTime {
    pub fn from_secs_f64(s: f64) -> Self {
        HostTime((s * 1e9).round() as i64)
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 * 1e-9
    }
    pub fn plus_secs(self, s: f64) -> Self {
        HostTime(self.0 + (s * 1e9).round() as i64)
    }
    /// `self - earlier` in seconds.
    pub fn secs_since(self, earlier: HostTime) -> f64 {
        (self.0 - earlier.0) as f64 * 1e-9
    }
}

/// Rig time: the rig's free-running microsecond counter.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct RigTime(pub u64);

impl RigTime {
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 * 1e-6
    }
}

/// The host's monotonic clock, anchored at a station epoch.
#[derive(Debug, Clone, Copy)]
pub struct HostClock {
    epoch: Instant,
}

impl HostClock {
    pub fn new() -> Self {
        HostClock {
            epoch: Instant::now(),
        }
    }
    pub fn now(&self) -> HostTime {
        HostTime(self.epoch.elapsed().as_nanos() as i64)
    }
    /// The `Instant` a host time stands for, to sleep until it.
    pub fn instant(&self, t: HostTime) -> Instant {
        if t.0 <= 0 {
            self.epoch
        } else {
            self.epoch + std::time::Duration::from_nanos(t.0 as u64)
        }
    }
    /// Sleep until host time `t` (returns at once if it has passed).
    pub fn sleep_until(&self, t: HostTime) {
        let target = self.instant(t);
        let now = Instant::now();
        if target > now {
            std::thread::sleep(target - now);
        }
    }
}

impl Default for HostClock {
    fn default() -> Self {
        Self::new()
    }
}
