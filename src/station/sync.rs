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
/// Every line `host = host_ref + a + (1000 + β) · (rig - rig_ref)` (rig in µs,
/// host in ns) that passes through all the exchanges' intervals is possible;
/// those lines form a convex polygon in (a, β). The bound at any rig time is
/// the range of the possible lines there, and its centre is the estimate.
/// Nothing is assumed about the split of the round trip, only that the rig's
/// rate is constant over the exchanges and within ±`DRIFT_PRIOR_PPM` of the
/// host's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncEstimate {
    /// Reference rig time, µs (a rig stamp of the exchanges).
    rig_ref_us: i64,
    /// Reference host time, ns (a host stamp of the exchanges).
    host_ref_ns: i64,
    /// Vertices (a in host ns, β in host ns per rig µs, less 1000) of the
    /// feasible polygon.
    #[serde(skip)]
    vertices: Vec<(f64, f64)>,
    /// The central line.
    a_c: f64,
    beta_c: f64,
    /// Rig clock rate against the host clock, ppm (positive: the rig runs fast).
    pub drift_ppm: f64,
    /// The farthest a possible rate lies from `drift_ppm`, ppm (the truth is
    /// within `drift_ppm ± drift_bound_ppm`).
    pub drift_bound_ppm: f64,
    /// The rig times the exchanges span, µs.
    span_us: (u64, u64),
    pub exchanges: usize,
}

impl SyncEstimate {
    /// Host time of a rig time, with the half-width of its bound in ns.
    pub fn rig_to_host(&self, rig: RigTime) -> (HostTime, f64) {
        let x = (rig.0 as i64 - self.rig_ref_us) as f64;
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &(a, beta) in &self.vertices {
            let h = a + beta * x;
            lo = lo.min(h);
            hi = hi.max(h);
        }
        // The part of the line common to every vertex, in exact integers.
        let base = self.host_ref_ns as f64 + 1000.0 * x;
        let centre = ((lo + hi) / 2.0).round();
        // The centre is rounded to a whole ns, and the polygon was computed
        // in floating point: FLOAT_MARGIN_NS covers both.
        (
            HostTime((base + centre).round() as i64),
            (hi - lo) / 2.0 + FLOAT_MARGIN_NS,
        )
    }

    /// Rig time of a host time (for scheduling), on the central line.
    pub fn host_to_rig(&self, host: HostTime) -> RigTime {
        let dh = (host.0 - self.host_ref_ns) as f64;
        let r = self.rig_ref_us as f64 + (dh - self.a_c) / (1000.0 + self.beta_c);
        RigTime(r.max(0.0).round() as u64)
    }

    /// Full width of the bound at the middle of the exchanges' span, µs.
    pub fn bound_us(&self) -> f64 {
        let mid = RigTime(self.span_us.0 + (self.span_us.1 - self.span_us.0) / 2);
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

/// One tick of the rig's clock, µs: a stamp R means a rig time in [R, R + 1).
const RIG_TICK_US: i64 = 1;

/// Host ns per rig µs at equal rates.
const NS_PER_US: i64 = 1000;

/// Widening of every half-width, ns: host stamps are whole ns, the centre is
/// rounded to one, and the polygon's vertices are computed in floating point
/// (their error is some 1e-6 ns). One ns is below anything the host can stamp.
const FLOAT_MARGIN_NS: f64 = 1.0;

/// The largest rate difference between rig and host clocks believed possible, ppm.
pub const DRIFT_PRIOR_PPM: f64 = 500.0;

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
    ///
    /// Every exchange enters, and the polygon is exact: an exchange `i` with
    /// rig stamp `R_i` (so a rig time in [R_i, R_i + 1)) says the line passes
    /// below `(R_i, recv_i)` and above `(R_i + 1, send_i)`. A line is below
    /// all the points `(R_i, recv_i)` exactly when it is below the vertices of
    /// their lower convex hull, and above all `(R_i + 1, send_i)` when it is
    /// above their upper hull's, so only the hulls' vertices (a few dozen of
    /// thousands of exchanges) clip the polygon: O(n log n) in all. Dropping
    /// an exchange could only widen the bound, never make it wrong; keeping
    /// them all lets one exchange's short trip out and another's short trip
    /// back both count, whatever their round trips.
    pub fn estimate(&self) -> Option<SyncEstimate> {
        let xs = &self.exchanges;
        if xs.is_empty() {
            return None;
        }
        let span_us = (
            xs.iter().map(|x| x.rig.0).min()?,
            xs.iter().map(|x| x.rig.0).max()?,
        );
        // Reference: the exchange at the middle of the rig times, so that a
        // and β are nearly independent and every offset below is small.
        let mid = xs
            .iter()
            .min_by_key(|x| x.rig.0.abs_diff(span_us.0 + (span_us.1 - span_us.0) / 2))?;
        let rig_ref_us = mid.rig.0 as i64;
        let host_ref_ns = mid.host_send.0;
        // What is left of each stamp once the line at equal rates through the
        // reference is taken off, in exact integers (then small enough for
        // f64 to hold exactly): upper points (x, u) with a + β·x <= u, lower
        // points (x, l) with a + β·x >= l.
        let resid = |rig_us: i64, host_ns: i64| {
            let x = rig_us - rig_ref_us;
            (x as f64, (host_ns - host_ref_ns - NS_PER_US * x) as f64)
        };
        let mut upper: Vec<(f64, f64)> = xs
            .iter()
            .map(|x| resid(x.rig.0 as i64, x.host_recv.0))
            .collect();
        let mut lower: Vec<(f64, f64)> = xs
            .iter()
            .map(|x| resid(x.rig.0 as i64 + RIG_TICK_US, x.host_send.0))
            .collect();
        let upper = lower_hull(&mut upper);
        let lower = upper_hull(&mut lower);
        let beta_max = NS_PER_US as f64 * DRIFT_PRIOR_PPM * 1e-6;
        // A box sure to hold the polygon: each constraint alone confines a
        // once β is within the prior.
        let a_hi = upper
            .iter()
            .map(|&(x, u)| u + beta_max * x.abs())
            .fold(f64::INFINITY, f64::min);
        let a_lo = lower
            .iter()
            .map(|&(x, l)| l - beta_max * x.abs())
            .fold(f64::NEG_INFINITY, f64::max);
        if a_lo > a_hi {
            return None;
        }
        let mut poly = vec![
            (a_lo - 1.0, -beta_max),
            (a_hi + 1.0, -beta_max),
            (a_hi + 1.0, beta_max),
            (a_lo - 1.0, beta_max),
        ];
        for &(x, u) in &upper {
            poly = clip(&poly, |a, b| a + b * x - u);
            if poly.is_empty() {
                return None;
            }
        }
        for &(x, l) in &lower {
            poly = clip(&poly, |a, b| l - a - b * x);
            if poly.is_empty() {
                return None;
            }
        }
        let vertices = poly;
        let n = vertices.len() as f64;
        let a_c = vertices.iter().map(|v| v.0).sum::<f64>() / n;
        let beta_c = vertices.iter().map(|v| v.1).sum::<f64>() / n;
        let (bl, bh) = vertices
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(v.1), h.max(v.1))
            });
        let (bl, bh) = (bl + NS_PER_US as f64, bh + NS_PER_US as f64);
        let rate = |b: f64| (1000.0 / b - 1.0) * 1e6;
        // The point estimate of the rate: the weighted fit through every
        // exchange's midpoint, kept inside the polygon's hard range.
        let b_fit = midpoint_slope(xs).map_or((bl + bh) / 2.0, |b| b.clamp(bl, bh));
        Some(SyncEstimate {
            rig_ref_us,
            host_ref_ns,
            vertices,
            a_c,
            beta_c,
            drift_ppm: rate(b_fit),
            drift_bound_ppm: (rate(b_fit) - rate(bl))
                .abs()
                .max((rate(b_fit) - rate(bh)).abs()),
            span_us,
            exchanges: xs.len(),
        })
    }
}

/// Cross product of (b - o) and (c - o): positive when o, b, c turn left.
fn cross(o: (f64, f64), b: (f64, f64), c: (f64, f64)) -> f64 {
    (b.0 - o.0) * (c.1 - o.1) - (b.1 - o.1) * (c.0 - o.0)
}

/// Vertices of the lower convex hull of `pts`, left to right (Andrew's
/// monotone chain). Of points at one x only the lowest can be a vertex.
fn lower_hull(pts: &mut [(f64, f64)]) -> Vec<(f64, f64)> {
    pts.sort_by(|p, q| p.0.total_cmp(&q.0).then(p.1.total_cmp(&q.1)));
    let mut hull: Vec<(f64, f64)> = Vec::new();
    for &p in pts.iter() {
        if hull.last().is_some_and(|h| h.0 == p.0) {
            continue; // a higher point at the same x
        }
        while hull.len() >= 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0 {
            hull.pop();
        }
        hull.push(p);
    }
    hull
}

/// Vertices of the upper convex hull of `pts`, left to right.
fn upper_hull(pts: &mut [(f64, f64)]) -> Vec<(f64, f64)> {
    for p in pts.iter_mut() {
        p.1 = -p.1;
    }
    let mut hull = lower_hull(pts);
    for p in &mut hull {
        p.1 = -p.1;
    }
    hull
}

/// The part of the convex polygon `poly` where `f <= 0` (f affine):
/// Sutherland–Hodgman against one half-plane, O(vertices).
fn clip(poly: &[(f64, f64)], f: impl Fn(f64, f64) -> f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(poly.len() + 1);
    for (i, &p) in poly.iter().enumerate() {
        let q = poly[(i + 1) % poly.len()];
        let (fp, fq) = (f(p.0, p.1), f(q.0, q.1));
        if fp <= 0.0 {
            out.push(p);
        }
        if (fp < 0.0 && fq > 0.0) || (fp > 0.0 && fq < 0.0) {
            let t = fp / (fp - fq);
            out.push((p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1)));
        }
    }
    out
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
    let tick_ns = (RIG_TICK_US * NS_PER_US) as f64;
    let limit = 2.0 * median.max(tick_ns);
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
            let w = 1.0 / (rtt + tick_ns).powi(2);
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

    /// The range of `a + b · (rig - ref)` over the feasible set, by brute
    /// force: every vertex of the polygon is where two constraints meet, so
    /// try every pair and keep the points that break none. O(n³), exact up
    /// to rounding, independent of the hulls and the clipping.
    fn brute_force_range(xs: &[SyncExchange], rig: RigTime) -> (f64, f64) {
        let r0 = xs[0].rig.0 as f64;
        let h0 = xs[0].host_send.0 as f64;
        // alpha·a + beta·b <= gamma, with host - h0 = a + b·(rig - r0).
        let mut cons: Vec<(f64, f64, f64)> = Vec::new();
        for x in xs {
            let dx = x.rig.0 as f64 - r0;
            cons.push((1.0, dx, x.host_recv.0 as f64 - h0));
            cons.push((-1.0, -(dx + 1.0), -(x.host_send.0 as f64 - h0)));
        }
        let bmax = 1000.0 * (1.0 + DRIFT_PRIOR_PPM * 1e-6);
        let bmin = 1000.0 * (1.0 - DRIFT_PRIOR_PPM * 1e-6);
        cons.push((0.0, 1.0, bmax));
        cons.push((0.0, -1.0, -bmin));
        let x = rig.0 as f64 - r0;
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for i in 0..cons.len() {
            for j in i + 1..cons.len() {
                let (a1, b1, c1) = cons[i];
                let (a2, b2, c2) = cons[j];
                let det = a1 * b2 - a2 * b1;
                if det.abs() < 1e-12 {
                    continue;
                }
                let a = (c1 * b2 - c2 * b1) / det;
                let b = (a1 * c2 - a2 * c1) / det;
                if cons.iter().all(|&(p, q, r)| p * a + q * b <= r + 1e-4) {
                    lo = lo.min(a + b * x);
                    hi = hi.max(a + b * x);
                }
            }
        }
        (lo + h0, hi + h0)
    }

    #[test]
    fn the_polygon_is_the_brute_force_one() {
        for seed in 0..40 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1000 + seed);
            // Two clusters and a few stragglers, as a step's bursts and top-ups.
            let mut at: Vec<f64> = (0..12).map(|i| 1.0 + i as f64 * 0.003).collect();
            at.extend((0..5).map(|_| rng.random_range(1.1..4.0)));
            at.extend((0..12).map(|i| 4.0 + i as f64 * 0.003));
            let ppm = rng.random_range(-200.0..200.0);
            let (s, _) = simulate(seed, ppm, 77.25, &at);
            let e = s.estimate().unwrap();
            let xs = s.exchanges();
            for t_rig in [xs[0].rig.0, xs[14].rig.0 + 333, xs[28].rig.0 + 2_000_000] {
                let (lo, hi) = brute_force_range(xs, RigTime(t_rig));
                let (h, hw) = e.rig_to_host(RigTime(t_rig));
                let (elo, ehi) = (h.0 as f64 - hw, h.0 as f64 + hw);
                // The estimate's range is the brute force's, widened only by
                // its margin (1 ns, and half a ns of a rounded centre).
                assert!(
                    elo <= lo && ehi >= hi,
                    "seed {seed}: [{elo}, {ehi}] misses [{lo}, {hi}]"
                );
                assert!(
                    lo - elo <= 1.6 && ehi - hi <= 1.6,
                    "seed {seed}: [{elo}, {ehi}] is wider than [{lo}, {hi}]"
                );
            }
        }
    }

    #[test]
    fn one_two_or_three_exchanges_give_the_brute_force_range_too() {
        for seed in 0..30 {
            let n = 1 + seed as usize % 3;
            let at: Vec<f64> = (0..n).map(|i| 1.0 + i as f64 * 0.7).collect();
            let (s, _) = simulate(seed, -90.0, 5.0, &at);
            let e = s.estimate().unwrap();
            let xs = s.exchanges();
            for t_rig in [
                xs[0].rig.0,
                xs[0].rig.0 + 1_000_000,
                xs[0].rig.0 + 9_000_000,
            ] {
                let (lo, hi) = brute_force_range(xs, RigTime(t_rig));
                let (h, hw) = e.rig_to_host(RigTime(t_rig));
                let (elo, ehi) = (h.0 as f64 - hw, h.0 as f64 + hw);
                assert!(
                    elo <= lo && ehi >= hi && lo - elo <= 1.6 && ehi - hi <= 1.6,
                    "{n} exchanges: [{elo}, {ehi}] against [{lo}, {hi}]"
                );
            }
        }
    }

    #[test]
    fn another_exchange_never_widens_the_bound() {
        let at: Vec<f64> = (0..300).map(|i| 1.0 + i as f64 * 0.02).collect();
        let (s, rig_of) = simulate(7, -48.0, 3.5, &at);
        let probes: Vec<RigTime> = [0.5, 2.0, 4.0, 7.0, 9.0]
            .iter()
            .map(|&t| RigTime(rig_of(t) as u64))
            .collect();
        let mut part = ClockSync::new();
        let mut last: Option<Vec<f64>> = None;
        for (k, x) in s.exchanges().iter().enumerate() {
            part.add(*x);
            if k % 7 != 6 {
                continue;
            }
            let e = part.estimate().unwrap();
            let w: Vec<f64> = probes.iter().map(|&r| e.bound_at_us(r)).collect();
            if let Some(prev) = &last {
                for (now, before) in w.iter().zip(prev) {
                    assert!(
                        *now <= before + 1e-6,
                        "{} exchanges: {now} µs > {before} µs",
                        k + 1
                    );
                }
            }
            last = Some(w);
        }
    }

    #[test]
    fn a_step_of_the_rig_clock_leaves_no_possible_line() {
        let at: Vec<f64> = (0..40).map(|i| 1.0 + i as f64 * 0.01).collect();
        let (mut s, rig_of) = simulate(3, 10.0, 20.0, &at);
        assert!(s.estimate().is_some());
        // The rig's clock jumps 5 ms ahead, as after a reboot with a new offset.
        for i in 0..10 {
            let t = 2.0 + i as f64 * 0.01;
            s.add(SyncExchange {
                host_send: HostTime::from_secs_f64(t),
                rig: RigTime((rig_of(t + 300e-6) + 5000.0) as u64),
                host_recv: HostTime::from_secs_f64(t + 600e-6),
            });
        }
        assert!(s.estimate().is_none());
    }
}
