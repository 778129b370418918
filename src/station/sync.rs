//! Clock synchronisation between rig time and host time.
//!
//! Owns the estimate of the mapping `host = a + b · rig` and a hard bound on its
//! error, from exchanges in which the host stamps a request and its reply and
//! the rig stamps its receipt. Like WALT, it assumes nothing about the split of
//! the round trip between the two directions: the rig's stamp lies somewhere
//! between the host's two stamps, and that is all. It is sans-IO: it takes
//! exchanges and returns estimates; it never talks to a rig.

use serde::Serialize;

use super::SyncExchange;
use crate::time::{HostTime, RigTime};

/// The mapping from rig time to host time, with its error bound.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SyncEstimate {
    /// Host ns at the reference rig time.
    host_at_ref_ns: f64,
    /// Reference rig time, µs.
    rig_ref_us: f64,
    /// Host ns per rig µs (1000 for equal rates).
    ns_per_us: f64,
    /// Half-width of the offset interval at the reference time, ns.
    pub half_width_ns: f64,
    /// Additional half-width per second away from the exchanges, ns/s, from the drift's uncertainty.
    pub growth_ns_per_s: f64,
    /// Rig clock rate against the host clock, ppm (positive: the rig runs fast).
    pub drift_ppm: f64,
    /// The rig times the exchanges span, µs.
    span_us: (f64, f64),
    pub exchanges: usize,
}

impl SyncEstimate {
    /// Host time of a rig time, with the half-width of its bound in ns.
    pub fn rig_to_host(&self, rig: RigTime) -> (HostTime, f64) {
        let r = rig.0 as f64;
        let host = self.host_at_ref_ns + (r - self.rig_ref_us) * self.ns_per_us;
        (HostTime(host.round() as i64), self.half_width_at(r))
    }

    /// Rig time of a host time (for scheduling).
    pub fn host_to_rig(&self, host: HostTime) -> RigTime {
        let r = self.rig_ref_us + (host.0 as f64 - self.host_at_ref_ns) / self.ns_per_us;
        RigTime(r.max(0.0).round() as u64)
    }

    fn half_width_at(&self, r_us: f64) -> f64 {
        let outside_us = if r_us < self.span_us.0 {
            self.span_us.0 - r_us
        } else if r_us > self.span_us.1 {
            r_us - self.span_us.1
        } else {
            0.0
        };
        self.half_width_ns + self.growth_ns_per_s * outside_us * 1e-6
    }

    /// Full width of the bound inside the exchanges' span, µs.
    pub fn bound_us(&self) -> f64 {
        2.0 * self.half_width_ns / 1e3
    }
}

/// Collects exchanges and fits the mapping.
#[derive(Debug, Clone, Default)]
pub struct ClockSync {
    exchanges: Vec<SyncExchange>,
}

/// One tick of the rig's clock, ns.
const RIG_TICK_NS: f64 = 1000.0;

/// A conservative bound on the rig's drift when it cannot be fitted yet, ppm.
const DRIFT_PRIOR_PPM: f64 = 200.0;

impl ClockSync {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, x: SyncExchange) {
        if x.host_recv >= x.host_send {
            self.exchanges.push(x);
        }
    }

    pub fn len(&self) -> usize {
        self.exchanges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exchanges.is_empty()
    }

    pub fn exchanges(&self) -> &[SyncExchange] {
        &self.exchanges
    }

    /// Fit the mapping. The rate comes from a fit through the best (shortest
    /// round-trip) exchanges of each burst; the offset interval is the
    /// intersection of every exchange's interval under that rate, widened by
    /// the rate's own uncertainty.
    pub fn estimate(&self) -> Option<SyncEstimate> {
        let xs = &self.exchanges;
        if xs.is_empty() {
            return None;
        }
        let rig_ref_us = xs.iter().map(|x| x.rig.0 as f64).sum::<f64>() / xs.len() as f64;
        let span_us = (
            xs.iter()
                .map(|x| x.rig.0 as f64)
                .fold(f64::INFINITY, f64::min),
            xs.iter()
                .map(|x| x.rig.0 as f64)
                .fold(f64::NEG_INFINITY, f64::max),
        );
        let span_s = (span_us.1 - span_us.0) * 1e-6;
        // The rate: least squares through the quarter of exchanges with the
        // shortest round trips (their midpoints are the least ambiguous).
        let mut by_rtt: Vec<&SyncExchange> = xs.iter().collect();
        by_rtt.sort_by_key(|x| x.host_recv.0 - x.host_send.0);
        let keep = (xs.len() / 4).max(2).min(xs.len());
        let best = &by_rtt[..keep];
        let (ns_per_us, rate_unc) = if span_s > 0.5 && best.len() >= 2 {
            let mx = best.iter().map(|x| x.rig.0 as f64).sum::<f64>() / best.len() as f64;
            let my = best
                .iter()
                .map(|x| (x.host_send.0 + x.host_recv.0) as f64 / 2.0)
                .sum::<f64>()
                / best.len() as f64;
            let (mut sxx, mut sxy) = (0.0, 0.0);
            for x in best {
                let dx = x.rig.0 as f64 - mx;
                sxx += dx * dx;
                sxy += dx * ((x.host_send.0 + x.host_recv.0) as f64 / 2.0 - my);
            }
            if sxx > 0.0 {
                let slope = sxy / sxx;
                // The midpoints' error is at most half the longest kept round trip;
                // the slope error is at most that over half the span.
                let worst_half_rtt = best
                    .iter()
                    .map(|x| (x.host_recv.0 - x.host_send.0) as f64 / 2.0)
                    .fold(0.0, f64::max);
                let spread_us = best
                    .iter()
                    .map(|x| x.rig.0 as f64)
                    .fold(f64::NEG_INFINITY, f64::max)
                    - best
                        .iter()
                        .map(|x| x.rig.0 as f64)
                        .fold(f64::INFINITY, f64::min);
                let unc = if spread_us > 0.0 {
                    2.0 * worst_half_rtt / (spread_us / 2.0)
                } else {
                    1.0
                };
                (slope, unc.min(DRIFT_PRIOR_PPM * 1e-3))
            } else {
                (1000.0, DRIFT_PRIOR_PPM * 1e-3)
            }
        } else {
            (1000.0, DRIFT_PRIOR_PPM * 1e-3)
        };
        // Offset interval: each exchange says host(rig) lies in [send, recv].
        let mut lo = f64::NEG_INFINITY;
        let mut hi = f64::INFINITY;
        for x in xs {
            let d = (x.rig.0 as f64 - rig_ref_us) * ns_per_us;
            // Rate error moves this exchange's constraint by up to |dt| * rate_unc.
            let slack = (x.rig.0 as f64 - rig_ref_us).abs() * rate_unc;
            lo = lo.max(x.host_send.0 as f64 - d - slack);
            hi = hi.min(x.host_recv.0 as f64 - d + slack);
        }
        if lo > hi {
            // Inconsistent exchanges (a rig clock step): fall back to the single best exchange.
            let x = by_rtt[0];
            let d = (x.rig.0 as f64 - rig_ref_us) * ns_per_us;
            lo = x.host_send.0 as f64 - d;
            hi = x.host_recv.0 as f64 - d;
        }
        Some(SyncEstimate {
            host_at_ref_ns: (lo + hi) / 2.0,
            rig_ref_us,
            ns_per_us,
            // The rig stamps whole microseconds: add one for its truncation.
            half_width_ns: (hi - lo) / 2.0 + RIG_TICK_NS,
            growth_ns_per_s: rate_unc * 1e6,
            drift_ppm: (1000.0 / ns_per_us - 1.0) * 1e6,
            span_us,
            exchanges: xs.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Exchanges over a link with asymmetric, jittered delays: 0.1–1 ms up,
    /// 0.1–3 ms down with occasional 2–5 ms stalls; the rig runs `ppm` fast
    /// with an offset.
    fn simulate(
        seed: u64,
        ppm: f64,
        offset_s: f64,
        at: &[f64],
    ) -> (ClockSync, impl Fn(f64) -> f64) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let rig_of = move |t: f64| (t * (1.0 + ppm * 1e-6) + offset_s) * 1e6;
        let mut s = ClockSync::new();
        for &t in at {
            let up = rng.random_range(100e-6..1e-3)
                + if rng.random_bool(0.05) {
                    rng.random_range(2e-3..5e-3)
                } else {
                    0.0
                };
            let down = rng.random_range(100e-6..3e-3);
            s.add(SyncExchange {
                host_send: HostTime::from_secs_f64(t),
                rig: RigTime(rig_of(t + up) as u64),
                host_recv: HostTime::from_secs_f64(t + up + down),
            });
        }
        (s, rig_of)
    }

    #[test]
    fn true_offset_lies_inside_the_bound() {
        for seed in 0..200 {
            let times: Vec<f64> = (0..20)
                .map(|i| 1.0 + i as f64 * 0.01)
                .chain((0..20).map(|i| 11.0 + i as f64 * 0.01))
                .collect();
            let (s, rig_of) = simulate(seed, 37.0, 12.5, &times);
            let e = s.estimate().unwrap();
            for t in [1.0, 3.0, 6.0, 11.1] {
                let r = RigTime(rig_of(t) as u64);
                let (h, hw) = e.rig_to_host(r);
                let err = (h.0 as f64 - t * 1e9).abs();
                assert!(
                    err <= hw,
                    "seed {seed} t {t}: error {err} ns > bound {hw} ns"
                );
            }
            assert!((e.drift_ppm - 37.0).abs() < 20.0, "drift {}", e.drift_ppm);
        }
    }
}
