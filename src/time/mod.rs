//! Time bases of the station.
//!
//! Owns the two clocks every latency is expressed in: host time (the host's
//! CLOCK_MONOTONIC, in nanoseconds since the station's epoch) and rig time (the
//! rig's own microsecond counter); and the station's [`Clock`] that says
//! what "now" is and how to wait: real time, or virtual time that jumps to
//! the next event ([`clock`], with its waiting primitives in [`wait`]). It
//! does not convert between host and rig time; that is the clock
//! synchronisation's job (`station::sync`).

pub mod clock;
pub mod wait;

pub use clock::Clock;

/// Host monotonic time in nanoseconds since the station epoch, and the
/// rig's free-running microsecond counter: the protocol's own types (the
/// rig protocol crate carries both on the wire and in its sessions).
pub use rig_protocol::{HostTime, RigTime};

/// Nanoseconds on the kernel's CLOCK_MONOTONIC: the clock ALSA, V4L2 and
/// evdev/hidraw stamp their buffers with, and the one every process on the host
/// shares.
pub fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists
    // on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    // time_t and c_long are i32 on 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    let ns = ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64;
    ns
}

/// The host's monotonic clock (CLOCK_MONOTONIC), anchored at a station epoch.
/// Two processes convert between their host times through
/// [`HostClock::to_monotonic`] and [`HostClock::from_monotonic`].
#[derive(Debug, Clone, Copy)]
pub struct HostClock {
    /// CLOCK_MONOTONIC at host time 0.
    epoch_ns: i64,
}

impl HostClock {
    pub fn new() -> Self {
        HostClock {
            epoch_ns: monotonic_ns(),
        }
    }
    pub fn now(&self) -> HostTime {
        HostTime(monotonic_ns() - self.epoch_ns)
    }
    /// CLOCK_MONOTONIC nanoseconds of host time `t`.
    pub fn to_monotonic(&self, t: HostTime) -> i64 {
        t.0 + self.epoch_ns
    }
    /// Host time of a CLOCK_MONOTONIC reading (a kernel timestamp, or a time
    /// another process sent).
    pub fn from_monotonic(&self, ns: i64) -> HostTime {
        HostTime(ns - self.epoch_ns)
    }
    /// Sleep until host time `t` (returns at once if it has passed).
    pub fn sleep_until(&self, t: HostTime) {
        loop {
            let left = t.0 - self.now().0;
            if left <= 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_nanos(left as u64));
        }
    }
}

impl Default for HostClock {
    fn default() -> Self {
        Self::new()
    }
}
