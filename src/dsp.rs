//! The numerical helpers the signal paths share: the modified Bessel function
//! I0, the normalised sinc, the Kaiser window, windowed-sinc kernel taps, and
//! the least-squares straight line.
//!
//! Owns one implementation of each, so that the delay estimator
//! (`measure::delay`), the stimuli (`measure::stimulus`), the simulated
//! medium's DAC (`station::sim::medium`) and the sample-clock fit
//! (`sampling::TimeMap`) compute the same numbers the same way. It is a leaf:
//! pure functions of their arguments, no allocation, no I/O, and it must not
//! import any other module of the crate (`measure`, `station` and `sampling`
//! all use it, and `measure` uses the other two).
//!
//! The arithmetic of each is part of the record: a report states measured
//! values to the last bit, so a change here changes reports. Change it only
//! with the accuracy suite (`tests/accuracy.rs`) and a reason.

use std::f64::consts::PI;

/// The modified Bessel function of the first kind, order zero, by its power
/// series `Σ ((x/2)^k / k!)²`, summed until a term falls below 1e-17 of the
/// sum (at most 40 terms: enough for |x| ≤ 20, the Kaiser windows' range).
pub fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..40 {
        // The reciprocal does not depend on `term`, so it is computed off the
        // loop's dependency chain (a division in the chain costs its latency).
        term *= q * (1.0 / (k * k) as f64);
        sum += term;
        if term < 1e-17 * sum {
            break;
        }
    }
    sum
}

/// The normalised sinc, `sin(πx) / (πx)`, 1 at (and within 1e-12 of) 0.
pub fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

/// A Kaiser window of shape `beta`, over `r` in (−1, 1) (the distance from
/// the centre over the half width).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kaiser {
    beta: f64,
    /// `1 / I0(β)`, the window's normalisation, computed once.
    inv_i0_beta: f64,
}

impl Kaiser {
    pub fn new(beta: f64) -> Kaiser {
        Kaiser {
            beta,
            inv_i0_beta: 1.0 / bessel_i0(beta),
        }
    }

    /// `I0(β·√(1 − r²)) / I0(β)`: 1 at the centre, 0 from |r| = 1 on.
    pub fn at(&self, r: f64) -> f64 {
        if r.abs() >= 1.0 {
            return 0.0;
        }
        bessel_i0(self.beta * (1.0 - r * r).sqrt()) * self.inv_i0_beta
    }
}

/// The tap of a Kaiser-windowed sinc kernel of half width `half_width`
/// samples at distance `d` (samples) from the point interpolated:
/// `sinc(d) · window(d / half_width)`. The taps at `j − frac` for the
/// integers `j` within the half width interpolate a band-limited signal at
/// fractional offset `frac`.
pub fn windowed_sinc(d: f64, half_width: f64, window: &Kaiser) -> f64 {
    sinc(d) * window.at(d / half_width)
}

/// The least-squares straight line through a set of points, as its centroid
/// and sums of squares: `y = mean_y + slope · (x − mean_x)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineFit {
    pub n: usize,
    pub mean_x: f64,
    pub mean_y: f64,
    /// `Σ (x − mean_x)²`.
    pub sxx: f64,
    /// `Σ (x − mean_x)(y − mean_y)`.
    pub sxy: f64,
}

impl LineFit {
    /// Fit `points` (read twice: the centroid, then the sums); `None` when
    /// there are none.
    pub fn of<I>(points: I) -> Option<LineFit>
    where
        I: IntoIterator<Item = (f64, f64)>,
        I::IntoIter: Clone,
    {
        let points = points.into_iter();
        let n = points.clone().count();
        if n == 0 {
            return None;
        }
        let nf = n as f64;
        let mean_x = points.clone().map(|p| p.0).sum::<f64>() / nf;
        let mean_y = points.clone().map(|p| p.1).sum::<f64>() / nf;
        let (mut sxx, mut sxy) = (0.0, 0.0);
        for (x, y) in points {
            let dx = x - mean_x;
            sxx += dx * dx;
            sxy += dx * (y - mean_y);
        }
        Some(LineFit {
            n,
            mean_x,
            mean_y,
            sxx,
            sxy,
        })
    }

    /// The slope; `None` when the x values have no spread.
    pub fn slope(&self) -> Option<f64> {
        (self.sxx > 0.0).then(|| self.sxy / self.sxx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bessel_i0_matches_known_values() {
        // Reference values to 19 significant digits (the series in exact
        // decimal arithmetic, 200 terms).
        let known = [
            (0.0, 1.0),
            (1.0, 1.266_065_877_752_008_3),
            (2.0, 2.279_585_302_336_067_3),
            (-3.0, 4.880_792_585_865_024),
            (5.0, 27.239_871_823_604_447),
            (8.0, 427.564_115_721_804_8),
        ];
        for (x, want) in known {
            let got = bessel_i0(x);
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want,
                "I0({x}) = {got}, not {want}"
            );
        }
    }

    #[test]
    fn kaiser_window_is_one_at_the_centre_and_zero_outside() {
        let k = Kaiser::new(8.0);
        assert_eq!(k.at(0.0), 1.0);
        assert_eq!(k.at(1.0), 0.0);
        assert_eq!(k.at(-1.5), 0.0);
        // Symmetric, and falling towards the edges.
        for i in 1..100 {
            let r = i as f64 / 100.0;
            assert_eq!(k.at(r), k.at(-r));
            assert!(k.at(r) < k.at(r - 0.01));
        }
        // At the edge, 1 / I0(β).
        let edge = k.at(1.0 - 1e-12);
        assert!((edge - 1.0 / bessel_i0(8.0)).abs() < 1e-12, "{edge}");
    }

    #[test]
    fn sinc_kernel_sums_to_one_and_is_symmetric() {
        let k = Kaiser::new(8.0);
        let half = 24;
        for frac in [0.0, 0.125, 0.25, 0.5, 0.9] {
            let taps: Vec<f64> = (-half + 1..=half)
                .map(|j| windowed_sinc(j as f64 - frac, half as f64, &k))
                .collect();
            let sum: f64 = taps.iter().sum();
            assert!((sum - 1.0).abs() < 1e-4, "frac {frac}: sum {sum}");
        }
        // At an integer offset the kernel is the unit impulse.
        for j in -23..=23 {
            let t = windowed_sinc(j as f64, 24.0, &k);
            if j == 0 {
                assert_eq!(t, 1.0);
            } else {
                assert!(t.abs() < 1e-15, "tap {j}: {t}");
            }
        }
        for i in 0..200 {
            let d = i as f64 * 0.123;
            assert_eq!(windowed_sinc(d, 24.0, &k), windowed_sinc(-d, 24.0, &k));
        }
        assert_eq!(sinc(0.5), 2.0 / PI);
    }

    #[test]
    fn line_fit_recovers_a_line_through_noise() {
        let exact = LineFit::of((0..50).map(|i| (i as f64, 3.0 + 0.5 * i as f64))).unwrap();
        assert_eq!(exact.n, 50);
        assert!((exact.slope().unwrap() - 0.5).abs() < 1e-14);
        assert!((exact.mean_y - (3.0 + 0.5 * exact.mean_x)).abs() < 1e-12);
        // Deterministic noise of ±0.1 with no trend of its own.
        let mut state = 7u64;
        let noisy: Vec<(f64, f64)> = (0..2000)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let e = ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.2;
                (i as f64 * 0.01, -2.0 + 1.25 * i as f64 * 0.01 + e)
            })
            .collect();
        let f = LineFit::of(noisy.iter().copied()).unwrap();
        // σ(slope) = σ_e / √Sxx ≈ 0.058 / 258.
        assert!((f.slope().unwrap() - 1.25).abs() < 1e-3, "{f:?}");
        assert!((f.mean_y - (-2.0 + 1.25 * f.mean_x)).abs() < 1e-2, "{f:?}");
        assert_eq!(LineFit::of(std::iter::empty()), None);
        assert_eq!(LineFit::of([(1.0, 1.0), (1.0, 2.0)]).unwrap().slope(), None);
    }
}
