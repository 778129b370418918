//! The two time bases the protocol carries, and one clock-sync exchange.
//!
//! Rig time is the rig's free-running microsecond counter: every scheduled
//! command and every stamp the rig sends is in it. Host time is whatever
//! monotonic nanosecond clock the host stamps its writes and reads with.
//! Nothing here converts between them; that is the host's clock sync.

/// Rig time: the rig's free-running microsecond counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RigTime(pub u64);

impl RigTime {
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 * 1e-6
    }
    /// `self + us`, saturating.
    pub fn plus_us(self, us: u64) -> RigTime {
        RigTime(self.0.saturating_add(us))
    }
}

/// Host monotonic time in nanoseconds since an epoch of the host's choosing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HostTime(pub i64);

impl HostTime {
    pub fn from_secs_f64(s: f64) -> Self {
        HostTime(round(s * 1e9) as i64)
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 * 1e-9
    }
    pub fn plus_secs(self, s: f64) -> Self {
        HostTime(self.0 + round(s * 1e9) as i64)
    }
    /// `self + ns`, saturating.
    pub fn plus_ns(self, ns: i64) -> Self {
        HostTime(self.0.saturating_add(ns))
    }
    /// `self - earlier` in seconds.
    pub fn secs_since(self, earlier: HostTime) -> f64 {
        (self.0 - earlier.0) as f64 * 1e-9
    }
}

/// Round half away from zero without std (`f64::round` is not in core).
fn round(x: f64) -> f64 {
    if x >= 0.0 {
        (x + 0.5) as i64 as f64
    } else {
        (x - 0.5) as i64 as f64
    }
}

/// One clock-sync exchange: the host sent a SyncRequest at `host_send`, the
/// rig stamped `rig` on its receipt, and the host read the reply at
/// `host_recv`. The rig's stamp lies somewhere between the two host stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SyncExchange {
    pub host_send: HostTime,
    pub rig: RigTime,
    pub host_recv: HostTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_time_rounds_like_std() {
        for s in [0.0, 1.2345678905, -1.2345678905, 2.5e-9, -2.5e-9, 1e3] {
            assert_eq!(
                HostTime::from_secs_f64(s).0,
                (s * 1e9f64).round() as i64,
                "{s}"
            );
        }
        assert_eq!(HostTime(10).plus_secs(1e-9), HostTime(11));
        assert_eq!(HostTime(i64::MAX).plus_ns(5), HostTime(i64::MAX));
    }
}
