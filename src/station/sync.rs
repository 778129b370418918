//! Clock synchronisation between rig time and host time.
//!
//! Owns the estimate of the mapping `host = a + b · rig` and a hard bound on its
//! error, from exchanges in which the host stamps a request and its reply and
//! the rig stamps its receipt. Like WALT, it assumes nothing about the split of
//! the round trip between the two directions: the rig's stamp lies somewhere
//! between the host's two stamps, and that is all. It is sans-IO: it takes
//! exchanges and returns estimates; it never talks to a rig.
//!
//! The bound comes from the polygon alone. The drift figure is a point
//! estimate inside the polygon's range of rates: a least-squares fit through
//! every exchange's midpoint, which uses all the exchanges where the polygon's
//! range is decided by the few tightest ones at either end.

use serde::Serialize;

use super::SyncExchange;
use crate::time::{HostTime, RigTime};

/// The mapping from rig time to host time, with its error bound.
///
/// Every line `host = a + b · (rig - rig_ref)` that passes through all the
/// exchanges' intervals is possible; those lines form a convex polygon in
/// (a, b). The bound at any rig time is the range of the possible lines there,
/// and its centre is the estimate. Nothing is assumed about the split of the
/// round trip, only that the rig's rate is constant over the exchanges and
/// within ±`DRIFT_PRIOR_PPM` of the host's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncEstimate {
    /// Reference rig time, µs.
    rig_ref_us: f64,
    /// Vertices (a in host ns, b in host ns per rig µs) of the feasible polygon.
    #[serde(skip)]
    vertices: Vec<(f64, f64)>,
    /// The central line.
    a_c: f64,
    b_c: f64,
    /// Rig clock rate against the host clock, ppm (positive: the rig runs fast).
    pub drift_ppm: f64,
    /// The farthest a possible rate lies from `drift_ppm`, ppm (the truth is
    /// within `drift_ppm ± drift_bound_ppm`).
    pub drift_bound_ppm: f64,
    /// The rig times the exchanges span, µs.
    span_us: (f64, f64),
    pub exchanges: usize,
}

impl SyncEstimate {
    /// Host time of a rig time, with the half-width of its bound in ns.
    pub fn rig_to_host(&self, rig: RigTime) -> (HostTime, f64) {
        let x = rig.0 as f64 - self.rig_ref_us;
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &(a, b) in &self.vertices {
            let h = a + b * x;
            lo = lo.min(h);
            hi = hi.max(h);
        }
        (HostTime(((lo + hi) / 2.0).round() as i64), (hi - lo) / 2.0)
    }

    /// Rig time of a host time (for scheduling), on the central line.
    pub fn host_to_rig(&self, host: HostTime) -> RigTime {
        let r = self.rig_ref_us + (host.0 as f64 - self.a_c) / self.b_c;
        RigTime(r.max(0.0).round() as u64)
    }

    /// Full width of the bound at the middle of the exchanges' span, µs.
    pub fn bound_us(&self) -> f64 {
        let mid = RigTime(((self.span_us.0 + self.span_us.1) / 2.0) as u64);
        2.0 * self.rig_to_host(mid).1 / 1e3
    }

    /// Full width of the bound at a rig time, µs.
    pub fn bound_at_us(&self, rig: RigTime) -> f64 {
        2.0 * self.rig_to_host(rig).1 / 1e3
    }
}

/// Collects exchanges and fits the mapping.
#[derive(Debug, Clone, Default)]
pub struct ClockSync {
    exchanges: Vec<SyncExchange>,
}

/// One tick of the rig's clock, ns: a stamp R means a rig time in [R, R + 1 µs).
const RIG_TICK_NS: f64 = 1000.0;

/// The largest rate difference between rig and host clocks believed possible, ppm.
pub const DRIFT_PRIOR_PPM: f64 = 500.0;

/// At most this many exchanges enter the polygon: the shortest round trips
/// carry all the information, the others are implied by them.
const MAX_USED: usize = 96;

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

    /// Fit the mapping: the polygon of lines consistent with every exchange.
    /// `None` without exchanges, or when they contradict a constant rate (a
    /// rig clock step): then the caller must start a new sync.
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
        // Keep the shortest round trips, spread over time: the best of each
        // eighth of the span, then the shortest overall.
        let mut used: Vec<&SyncExchange> = xs.iter().collect();
        if used.len() > MAX_USED {
            used.sort_by_key(|x| x.host_recv.0 - x.host_send.0);
            let width = (span_us.1 - span_us.0).max(1.0) / 8.0;
            let mut picked: Vec<&SyncExchange> = Vec::with_capacity(MAX_USED);
            for bin in 0..8 {
                let lo = span_us.0 + bin as f64 * width;
                picked.extend(
                    used.iter()
                        .filter(|x| {
                            (x.rig.0 as f64) >= lo && ((x.rig.0 as f64) < lo + width || bin == 7)
                        })
                        .take(MAX_USED / 16),
                );
            }
            for x in &used {
                if picked.len() >= MAX_USED {
                    break;
                }
                if !picked.iter().any(|p| std::ptr::eq(*p, *x)) {
                    picked.push(x);
                }
            }
            used = picked;
        }
        // Constraints alpha·a + beta·b <= gamma.
        let mut cons: Vec<(f64, f64, f64)> = Vec::with_capacity(2 * used.len() + 2);
        for x in &used {
            let dx = x.rig.0 as f64 - rig_ref_us;
            cons.push((1.0, dx, x.host_recv.0 as f64));
            cons.push((-1.0, -dx, -(x.host_send.0 as f64 - RIG_TICK_NS)));
        }
        let bmax = 1000.0 * (1.0 + DRIFT_PRIOR_PPM * 1e-6);
        let bmin = 1000.0 * (1.0 - DRIFT_PRIOR_PPM * 1e-6);
        cons.push((0.0, 1.0, bmax));
        cons.push((0.0, -1.0, -bmin));
        let mut vertices = Vec::new();
        for i in 0..cons.len() {
            for j in i + 1..cons.len() {
                let (a1, b1, c1) = cons[i];
                let (a2, b2, c2) = cons[j];
                let det = a1 * b2 - a2 * b1;
                if det.abs() < 1e-9 {
                    continue;
                }
                let a = (c1 * b2 - c2 * b1) / det;
                let b = (a1 * c2 - a2 * c1) / det;
                let tol = 1e-6 * (1.0 + a.abs() * 1e-9);
                if cons
                    .iter()
                    .all(|&(p, q, r)| p * a + q * b <= r + tol + 1e-3)
                {
                    vertices.push((a, b));
                }
            }
        }
        if vertices.is_empty() {
            return None;
        }
        let n = vertices.len() as f64;
        let a_c = vertices.iter().map(|v| v.0).sum::<f64>() / n;
        let b_c = vertices.iter().map(|v| v.1).sum::<f64>() / n;
        let (bl, bh) = vertices
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(v.1), h.max(v.1))
            });
        let rate = |b: f64| (1000.0 / b - 1.0) * 1e6;
        // The point estimate of the rate: the weighted fit through every
        // exchange's midpoint, kept inside the polygon's hard range.
        let b_fit = midpoint_slope(xs).map_or((bl + bh) / 2.0, |b| b.clamp(bl, bh));
        Some(SyncEstimate {
            rig_ref_us,
            vertices,
            a_c,
            b_c,
            drift_ppm: rate(b_fit),
            drift_bound_ppm: (rate(b_fit) - rate(bl))
                .abs()
                .max((rate(b_fit) - rate(bh)).abs()),
            span_us,
            exchanges: xs.len(),
        })
    }
}

/// Slope (host ns per rig µs) of the weighted least-squares line through the
/// exchanges' midpoints `((send + recv) / 2, rig)`. A midpoint is off the true
/// line by half the difference of the two directions' delays; whatever the
/// asymmetry, its mean is the same for every exchange of a steady link, so it
/// shifts the line and leaves its slope alone. Each midpoint is weighted by
/// 1 / RTT² (its error is at most RTT / 2), and round trips beyond twice the
/// median (a stalled bus, a retried frame) are left out. Unlike the polygon's
/// range, which only the few tightest exchanges at either end decide, every
/// exchange adds to this fit. `None` with fewer than 8 exchanges or no spread.
fn midpoint_slope(xs: &[SyncExchange]) -> Option<f64> {
    if xs.len() < 8 {
        return None;
    }
    let mut rtts: Vec<i64> = xs.iter().map(|x| x.host_recv.0 - x.host_send.0).collect();
    let mid = rtts.len() / 2;
    let median = *rtts.select_nth_unstable(mid).1 as f64;
    let limit = 2.0 * median.max(RIG_TICK_NS);
    let (mut sw, mut sx, mut sy) = (0.0, 0.0, 0.0);
    let r0 = xs[0].rig.0 as f64;
    let t0 = xs[0].host_send.0 as f64;
    let pts: Vec<(f64, f64, f64)> = xs
        .iter()
        .filter_map(|x| {
            let rtt = (x.host_recv.0 - x.host_send.0) as f64;
            if rtt > limit {
                return None;
            }
            let w = 1.0 / (rtt + RIG_TICK_NS).powi(2);
            let mid = (x.host_send.0 + x.host_recv.0) as f64 / 2.0 - t0;
            Some((x.rig.0 as f64 - r0, mid, w))
        })
        .collect();
    for &(x, y, w) in &pts {
        sw += w;
        sx += w * x;
        sy += w * y;
    }
    let (mx, my) = (sx / sw, sy / sw);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(x, y, w) in &pts {
        sxx += w * (x - mx) * (x - mx);
        sxy += w * (x - mx) * (y - my);
    }
    (sxx > 0.0 && sw > 0.0).then(|| sxy / sxx)
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
        let mut widths = Vec::new();
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
            assert!(
                (e.drift_ppm - 37.0).abs() <= e.drift_bound_ppm + 1e-6,
                "drift {} ± {}",
                e.drift_ppm,
                e.drift_bound_ppm
            );
            widths.push(e.bound_us());
        }
        // The link never takes less than 100 µs each way, so 200 µs is the floor.
        widths.sort_by(f64::total_cmp);
        assert!(widths[100] < 400.0, "median bound {} µs", widths[100]);
    }
}
