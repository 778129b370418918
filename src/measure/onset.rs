//! Onset detection in sensor streams (photodiode, reference microphone envelope).
//!
//! The noise floor (mean, standard deviation) is measured over the first
//! `lead_in` samples. The onset is the first sample after the lead-in that
//! crosses `floor_mean ± max(k_sigma·floor_std, min_step)` (upwards for a rising
//! edge, downwards for a falling one) and then stays beyond the lower (hysteresis)
//! threshold `floor_mean ± hysteresis·excess` for `hold` samples; short glitches
//! are skipped. The reported index is the linear interpolation of the threshold
//! crossing between the two samples that straddle it. An onset outside the
//! expected window is an error, as is no onset at all: there is never a fake 0.
//!
//! The scan looks for the first sample beyond the threshold in 64-sample chunks
//! using a max (or min) reduction the compiler vectorises.

/// An onset found in a stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Onset {
    /// Fractional sample index of the threshold crossing.
    pub index: f64,
    /// Noise floor (mean, standard deviation) measured over the lead-in.
    pub floor_mean: f64,
    pub floor_std: f64,
    /// The (upper) threshold that was crossed.
    pub threshold: f64,
}

/// Direction of the step to detect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Edge {
    /// Dark → bright, quiet → loud.
    #[default]
    Rising,
    /// Bright → dark.
    Falling,
}

/// How to detect an onset.
#[derive(Debug, Clone, PartialEq)]
pub struct OnsetConfig {
    /// Samples at the start of the stream that measure the noise floor (≥ 2).
    pub lead_in: usize,
    /// Threshold in standard deviations of the floor above (below) its mean.
    pub k_sigma: f64,
    /// Minimum absolute step of the threshold above (below) the floor mean,
    /// in sample units; the larger of this and `k_sigma·σ` is used.
    pub min_step: f64,
    /// Lower threshold as a fraction (0..=1) of the threshold's excess over the mean.
    pub hysteresis: f64,
    /// Samples (including the first) that must stay beyond the lower threshold.
    pub hold: usize,
    /// Expected window `[start, end)` of the onset, in samples.
    pub window: (usize, usize),
    pub edge: Edge,
}

impl Default for OnsetConfig {
    fn default() -> Self {
        OnsetConfig {
            lead_in: 256,
            k_sigma: 8.0,
            min_step: 0.0,
            hysteresis: 0.5,
            hold: 4,
            window: (0, usize::MAX),
            edge: Edge::Rising,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OnsetError {
    #[error("no onset found")]
    NotFound,
    #[error("onset at sample {index:.2} is outside the expected window")]
    OutsideWindow { index: f64 },
    #[error("invalid onset configuration: {0}")]
    InvalidConfig(&'static str),
}

const CHUNK: usize = 64;

trait Sample: Copy + PartialOrd {
    fn to_f64(self) -> f64;
}
impl Sample for f32 {
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
}
impl Sample for i16 {
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

fn floor_stats<T: Sample>(lead: &[T]) -> (f64, f64) {
    let n = lead.len() as f64;
    let mean = lead.iter().map(|v| v.to_f64()).sum::<f64>() / n;
    let var = lead
        .iter()
        .map(|v| (v.to_f64() - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    (mean, var.sqrt())
}

struct Levels {
    mean: f64,
    std: f64,
    /// Signed: thresholds in the "rising" orientation after multiplying by `dir`.
    upper: f64,
    lower: f64,
}

fn levels(cfg: &OnsetConfig, mean: f64, std: f64, quantum: f64) -> Result<Levels, OnsetError> {
    if !(0.0..=1.0).contains(&cfg.hysteresis) {
        return Err(OnsetError::InvalidConfig("hysteresis must lie in 0..=1"));
    }
    if !(cfg.k_sigma >= 0.0 && cfg.min_step >= 0.0) {
        return Err(OnsetError::InvalidConfig(
            "k_sigma and min_step must be ≥ 0",
        ));
    }
    let excess = (cfg.k_sigma * std).max(cfg.min_step).max(quantum);
    let dir = match cfg.edge {
        Edge::Rising => 1.0,
        Edge::Falling => -1.0,
    };
    Ok(Levels {
        mean,
        std,
        upper: mean + dir * excess,
        lower: mean + dir * cfg.hysteresis * excess,
    })
}

fn check_config(len: usize, cfg: &OnsetConfig) -> Result<(), OnsetError> {
    if cfg.lead_in < 2 {
        return Err(OnsetError::InvalidConfig(
            "lead_in must be at least 2 samples",
        ));
    }
    if cfg.lead_in >= len {
        return Err(OnsetError::InvalidConfig("lead_in covers the whole stream"));
    }
    if cfg.window.0 >= cfg.window.1 {
        return Err(OnsetError::InvalidConfig("empty window"));
    }
    Ok(())
}

/// Generic scan given a chunk predicate and a sample predicate.
fn scan<T: Sample>(
    samples: &[T],
    cfg: &OnsetConfig,
    lv: &Levels,
    above: impl Fn(T) -> bool,
    chunk_has: impl Fn(&[T]) -> bool,
    above_lower: impl Fn(T) -> bool,
) -> Result<Onset, OnsetError> {
    let hold = cfg.hold.max(1);
    let mut i = cfg.lead_in;
    let n = samples.len();
    while i < n {
        // find the first sample beyond the upper threshold from i
        let mut found = None;
        // unaligned head
        let head_end = (i.div_ceil(CHUNK) * CHUNK).min(n);
        for (j, &v) in samples[i..head_end].iter().enumerate() {
            if above(v) {
                found = Some(i + j);
                break;
            }
        }
        if found.is_none() {
            let mut c = head_end;
            while c < n {
                let end = (c + CHUNK).min(n);
                let chunk = &samples[c..end];
                if chunk_has(chunk) {
                    found = chunk.iter().position(|&v| above(v)).map(|p| c + p);
                    break;
                }
                c = end;
            }
        }
        let Some(j) = found else {
            return Err(OnsetError::NotFound);
        };
        // hysteresis hold
        let end = j + hold;
        if end > n {
            return Err(OnsetError::NotFound);
        }
        if let Some(bad) = samples[j..end].iter().position(|&v| !above_lower(v)) {
            i = j + bad + 1;
            continue;
        }
        let lvl = lv.upper;
        let b = samples[j].to_f64();
        let a = samples[j - 1].to_f64();
        let frac = if (b - a).abs() > 0.0 {
            ((lvl - a) / (b - a)).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let index = (j - 1) as f64 + frac;
        let onset = Onset {
            index,
            floor_mean: lv.mean,
            floor_std: lv.std,
            threshold: lv.upper,
        };
        if index < cfg.window.0 as f64 || index >= cfg.window.1 as f64 {
            return Err(OnsetError::OutsideWindow { index });
        }
        return Ok(onset);
    }
    Err(OnsetError::NotFound)
}

/// Detect the first onset in an f32 stream.
pub fn detect_onset(samples: &[f32], cfg: &OnsetConfig) -> Result<Onset, OnsetError> {
    check_config(samples.len(), cfg)?;
    let (mean, std) = floor_stats(&samples[..cfg.lead_in]);
    if !mean.is_finite() || !std.is_finite() {
        return Err(OnsetError::InvalidConfig(
            "non-finite samples in the lead-in",
        ));
    }
    let quantum = f32::EPSILON as f64 * mean.abs().max(1e-30);
    let lv = levels(cfg, mean, std, quantum)?;
    let (up, lo) = (lv.upper as f32, lv.lower as f32);
    match cfg.edge {
        Edge::Rising => scan(
            samples,
            cfg,
            &lv,
            |v| v > up,
            |c| c.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v)) > up,
            |v| v > lo,
        ),
        Edge::Falling => scan(
            samples,
            cfg,
            &lv,
            |v| v < up,
            |c| c.iter().fold(f32::INFINITY, |a, &v| a.min(v)) < up,
            |v| v < lo,
        ),
    }
}

/// Detect the first onset in an i16 stream (fast path: integer compares).
pub fn detect_onset_i16(samples: &[i16], cfg: &OnsetConfig) -> Result<Onset, OnsetError> {
    check_config(samples.len(), cfg)?;
    let (mean, std) = floor_stats(&samples[..cfg.lead_in]);
    // An integer stream cannot resolve steps below one LSB.
    let lv = levels(cfg, mean, std, 1.0)?;
    match cfg.edge {
        Edge::Rising => {
            // v > upper  ⇔  v ≥ floor(upper) + 1
            let up = clamp_i16(lv.upper.floor() + 1.0);
            let lo = clamp_i16(lv.lower.floor() + 1.0);
            if lv.upper >= i16::MAX as f64 {
                return Err(OnsetError::NotFound);
            }
            scan(
                samples,
                cfg,
                &lv,
                |v| v >= up,
                |c| c.iter().copied().max().unwrap_or(i16::MIN) >= up,
                |v| v >= lo,
            )
        }
        Edge::Falling => {
            let up = clamp_i16(lv.upper.ceil() - 1.0);
            let lo = clamp_i16(lv.lower.ceil() - 1.0);
            if lv.upper <= i16::MIN as f64 {
                return Err(OnsetError::NotFound);
            }
            scan(
                samples,
                cfg,
                &lv,
                |v| v <= up,
                |c| c.iter().copied().min().unwrap_or(i16::MAX) <= up,
                |v| v <= lo,
            )
        }
    }
}

fn clamp_i16(v: f64) -> i16 {
    v.clamp(i16::MIN as f64, i16::MAX as f64) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> OnsetConfig {
        OnsetConfig {
            lead_in: 100,
            k_sigma: 6.0,
            min_step: 0.05,
            hysteresis: 0.5,
            hold: 3,
            window: (0, 10_000),
            edge: Edge::Rising,
        }
    }

    #[test]
    fn clean_ramp_interpolates() {
        let mut s = vec![0.0f32; 1000];
        for (i, v) in s.iter_mut().enumerate() {
            *v = ((i as f32 - 500.0) / 4.0).clamp(0.0, 1.0);
        }
        let o = detect_onset(&s, &cfg()).unwrap();
        // threshold 0.05 reached at 500 + 0.2
        assert!((o.index - 500.2).abs() < 1e-4, "{o:?}");
        let si: Vec<i16> = s.iter().map(|&v| (v * 1000.0) as i16).collect();
        let mut c = cfg();
        c.min_step = 50.0;
        let o = detect_onset_i16(&si, &c).unwrap();
        assert!((o.index - 500.2).abs() < 0.01, "{o:?}");
    }

    #[test]
    fn glitch_skipped_and_errors() {
        let mut s = vec![0.0f32; 1000];
        s[300] = 1.0;
        for v in &mut s[600..] {
            *v = 1.0;
        }
        let o = detect_onset(&s, &cfg()).unwrap();
        assert!((o.index - 599.05).abs() < 1e-4, "{o:?}");
        let mut c = cfg();
        c.window = (0, 500);
        assert!(matches!(
            detect_onset(&s, &c),
            Err(OnsetError::OutsideWindow { .. })
        ));
        assert_eq!(
            detect_onset(&[0.0; 1000], &cfg()),
            Err(OnsetError::NotFound)
        );
        let mut c = cfg();
        c.edge = Edge::Falling;
        let f: Vec<f32> = s.iter().map(|v| -v).collect();
        let o = detect_onset(&f, &c).unwrap();
        assert!((o.index - 599.05).abs() < 1e-4, "{o:?}");
    }
}
