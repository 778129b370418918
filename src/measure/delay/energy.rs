//! Window energies and the noise floor of a normalised correlation.
//!
//! Owns the coarse prefix sums of `x²` a capture's window energies come
//! from (`Energy`), the pruned search for the largest `ρ²` they allow
//! (`peak_rho2`), and the robust standard deviation the floor is taken as
//! (`robust_sigma`). It must not compute the correlation or decide a
//! detection (`correlator`).

/// Grid of the coarse prefix of `x²`.
pub(super) const E_STEP: usize = 16;

/// Coarse prefix sums of `x²`: `coarse[i] = Σ_{j < min(i·E_STEP, len)} x[j]²`
/// (f64), `coarse.len() = ⌈len / E_STEP⌉ + 1`; returns the total. Each block of
/// 16 squares is summed on eight independent f64 lanes, so one dependent add per
/// block, and the prefix is a 16th of the capture's size: it stays in cache.
#[inline(never)]
pub(super) fn coarse_energy(x: &[f32], coarse: &mut [f64]) -> f64 {
    debug_assert_eq!(coarse.len(), x.len().div_ceil(E_STEP) + 1);
    coarse[0] = 0.0;
    let mut acc = 0.0f64;
    for (c, o) in x.chunks(E_STEP).zip(&mut coarse[1..]) {
        let mut lanes = [0f64; 8];
        let mut q = c.chunks_exact(8);
        for v in &mut q {
            for l in 0..8 {
                lanes[l] += (v[l] as f64) * (v[l] as f64);
            }
        }
        for (l, &v) in q.remainder().iter().enumerate() {
            lanes[l] += (v as f64) * (v as f64);
        }
        let (a0, a1) = (lanes[0] + lanes[4], lanes[1] + lanes[5]);
        let (a2, a3) = (lanes[2] + lanes[6], lanes[3] + lanes[7]);
        acc += (a0 + a1) + (a2 + a3);
        *o = acc;
    }
    acc
}

/// Window energies `Σ x[k..k+m]²` of a capture from its coarse prefix.
pub(super) struct Energy<'a> {
    pub x: &'a [f32],
    pub coarse: &'a [f64],
    pub m: usize,
}

impl Energy<'_> {
    /// `Σ_{j < k} x[j]²` (k clamped to the capture): the coarse prefix plus at
    /// most `E_STEP − 1` squares.
    pub fn prefix(&self, k: usize) -> f64 {
        let k = k.min(self.x.len());
        let b = k / E_STEP;
        self.x[b * E_STEP..k]
            .iter()
            .fold(self.coarse[b], |p, &v| p + (v as f64) * (v as f64))
    }

    /// Lower bound of `prefix(k)` from the grid alone.
    fn prefix_lo(&self, k: usize) -> f64 {
        self.coarse[k.min(self.x.len()) / E_STEP]
    }

    /// Upper bound of `prefix(k)` from the grid alone.
    fn prefix_hi(&self, k: usize) -> f64 {
        self.coarse[k.min(self.x.len()).div_ceil(E_STEP)]
    }

    /// Energy of the window of `m` samples at lag `k`.
    pub fn window(&self, k: usize) -> f64 {
        self.prefix(k + self.m) - self.prefix(k)
    }

    fn sq(&self, k: usize) -> f64 {
        self.x.get(k).map_or(0.0, |&v| (v as f64) * (v as f64))
    }
}

/// Correlation entries per block of the pruned peak search in [`peak_rho2`]
/// (a multiple of `E_STEP`).
pub(super) const PEAK_BLOCK: usize = 64;

/// Lag of the largest `ρ²·‖s‖² = r² / e` over the correlation `rc`, whose entry
/// `i` is lag `step·i` (first one on ties), among lags whose window energy `e`
/// is above `silent`, and that value (−1 when every window is silent). Pruned
/// search: a cheap vectorised pass takes the largest `r²` of every block, and
/// with a lower bound of the block's window energies (the prefix is
/// non-decreasing) gives an upper bound of the block's `ρ²`; only blocks whose
/// bound reaches the best exact value found so far are scanned entry by entry
/// (no division per lag: `r² · e_best > r_best² · e`). The result is exactly
/// that of a scan over every entry. `bounds` is scratch.
#[inline(never)]
pub(super) fn peak_rho2(
    rc: &[f32],
    step: usize,
    en: &Energy,
    silent: f64,
    bounds: &mut Vec<f64>,
) -> (usize, f64) {
    let m = en.m;
    bounds.clear();
    for (b, chunk) in rc.chunks(PEAK_BLOCK).enumerate() {
        let mut mx = [0f32; 8];
        let mut c8 = chunk.chunks_exact(8);
        for c in &mut c8 {
            for i in 0..8 {
                let v = c[i] * c[i];
                mx[i] = if v > mx[i] { v } else { mx[i] };
            }
        }
        let mut top = mx.iter().fold(0f32, |a, &v| a.max(v)) as f64;
        for &v in c8.remainder() {
            top = top.max((v * v) as f64);
        }
        // r² in f32 may round down by half an ulp.
        let top = top * (1.0 + 1e-6);
        let k0 = b * PEAK_BLOCK * step;
        let k1 = k0 + (chunk.len() - 1) * step;
        let e_hi = en.prefix_hi(k1 + m) - en.prefix_lo(k0);
        let e_lo = en.prefix_lo(k0 + m) - en.prefix_hi(k1);
        bounds.push(if e_hi <= silent {
            -1.0
        } else if e_lo <= silent || e_lo <= 0.0 {
            f64::INFINITY
        } else {
            top / e_lo
        });
    }
    // Best exact (lag, r², e) so far; r² = −1 means none yet.
    let mut best = (0usize, -1.0f64, 1.0f64);
    let scan_block = |b: usize, best: &mut (usize, f64, f64)| {
        let i0 = b * PEAK_BLOCK;
        let i1 = (i0 + PEAK_BLOCK).min(rc.len());
        let k0 = i0 * step;
        let (mut p_lo, mut p_hi) = (en.prefix(k0), en.prefix(k0 + m));
        for (i, &ri) in rc.iter().enumerate().take(i1).skip(i0) {
            let k = i * step;
            let e = p_hi - p_lo;
            if e > silent {
                let rr = (ri as f64) * (ri as f64);
                let (lhs, rhs) = (rr * best.2, best.1 * e);
                if lhs > rhs || (lhs == rhs && best.1 >= 0.0 && k < best.0) {
                    *best = (k, rr, e);
                }
            }
            for d in 0..step {
                p_lo += en.sq(k + d);
                p_hi += en.sq(k + m + d);
            }
        }
    };
    let first = bounds.iter().enumerate().fold(
        (0usize, -1.0f64),
        |a, (b, &v)| if v > a.1 { (b, v) } else { a },
    );
    if first.1 < 0.0 {
        return (0, -1.0);
    }
    scan_block(first.0, &mut best);
    for (b, &bound) in bounds.iter().enumerate() {
        if b == first.0 || bound < 0.0 {
            continue;
        }
        let q = if best.1 < 0.0 { -1.0 } else { best.1 / best.2 };
        if bound >= q {
            scan_block(b, &mut best);
        }
    }
    if best.1 < 0.0 {
        (0, -1.0)
    } else {
        (best.0, best.1 / best.2)
    }
}

/// Robust standard deviation (median |v| / 0.6745) of `buf`; reorders it.
pub(super) fn robust_sigma(buf: &mut [f32]) -> f64 {
    if buf.is_empty() {
        return 0.0;
    }
    let mid = buf.len() / 2;
    let (_, m, _) = buf.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    *m as f64 / 0.6745
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_energies_match_a_direct_sum() {
        let x: Vec<f32> = (0..1000)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let mut coarse = vec![0.0; x.len().div_ceil(E_STEP) + 1];
        let total = coarse_energy(&x, &mut coarse);
        let direct = |a: usize, b: usize| {
            x[a..b.min(x.len())]
                .iter()
                .map(|&v| (v as f64) * (v as f64))
                .sum::<f64>()
        };
        assert!((total - direct(0, x.len())).abs() < 1e-9);
        let en = Energy {
            x: &x,
            coarse: &coarse,
            m: 100,
        };
        for k in [0, 1, 15, 16, 17, 333, 900, 950] {
            assert!((en.window(k) - direct(k, k + 100)).abs() < 1e-9, "{k}");
        }
    }

    /// The pruned search gives what a scan over every lag gives.
    #[test]
    fn pruned_peak_search_equals_a_full_scan() {
        let x: Vec<f32> = (0..5000)
            .map(|i| ((i as f64 * 0.37).sin() * (1.0 + (i / 700) as f64)) as f32)
            .collect();
        let rc: Vec<f32> = (0..4900)
            .map(|i| ((i as f64 * 0.011).cos() * 3.0) as f32)
            .collect();
        let mut coarse = vec![0.0; x.len().div_ceil(E_STEP) + 1];
        coarse_energy(&x, &mut coarse);
        let en = Energy {
            x: &x,
            coarse: &coarse,
            m: 100,
        };
        let mut bounds = Vec::new();
        let (k, q) = peak_rho2(&rc, 1, &en, 0.0, &mut bounds);
        let (mut bk, mut bq) = (0, -1.0);
        for (i, &r) in rc.iter().enumerate() {
            let v = (r as f64) * (r as f64) / en.window(i);
            if v > bq {
                (bk, bq) = (i, v);
            }
        }
        assert_eq!(k, bk);
        assert!((q - bq).abs() <= 1e-9 * bq, "{q} {bq}");
    }

    #[test]
    fn robust_sigma_of_a_known_set() {
        // |ρ| values: their median over 0.6745 is the σ of a normal variable.
        let mut v = [3.0f32, 0.1, 0.6745, 9.0, 0.2];
        assert!((robust_sigma(&mut v) - 1.0).abs() < 1e-6);
        assert_eq!(robust_sigma(&mut []), 0.0);
    }
}
