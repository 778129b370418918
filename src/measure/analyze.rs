//! Offline analysis of a capture against a stimulus (`certlab analyze audio`).
//!
//! Owns finding every occurrence of a stimulus in a capture (segmentation),
//! the channel and polarity, the drift between them, and each shot's latency.
//! It reads no files: the command line hands it samples.

use serde::Serialize;

use super::delay::{drift_ppm, Correlator, DelayError, DelayEstimate};

/// One occurrence of the stimulus in the capture.
#[derive(Debug, Clone, Serialize)]
pub struct ShotResult {
    pub index: usize,
    /// Where the stimulus starts in the capture, ms from the capture's first sample.
    pub position_ms: f64,
    /// Latency: the position less the shot's scheduled time (`index × interval`),
    /// or the position itself when no interval is given.
    pub latency_ms: f64,
    /// Expanded (k = 2) detection uncertainty, ms.
    pub uncertainty_ms: f64,
    pub confidence: f64,
    pub snr_db: f64,
    pub polarity: i8,
}

/// The analysis of a capture.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// The first shot's latency, ms.
    pub latency_ms: f64,
    pub uncertainty_ms: f64,
    pub confidence: f64,
    pub snr_db: f64,
    /// 0-based channel of the capture the stimulus was found in.
    pub channel: usize,
    pub channels: usize,
    pub polarity: i8,
    /// Capture clock against stimulus clock, ppm: from the shots' spacing when
    /// an interval is given and there are several, else from within the stimulus
    /// when it is long enough; `None` when neither is possible.
    pub drift_ppm: Option<f64>,
    pub sample_rate: u32,
    pub shots: Vec<ShotResult>,
}

/// Two occurrences closer than this after the end of one are taken as its echo.
const ECHO_GUARD_S: f64 = 0.020;

/// Find every occurrence of `stimulus` in `capture` (interleaved, `channels`).
/// `interval_s`: the shots were scheduled every `interval_s` from the capture's start.
pub fn analyze(
    stimulus: &[f32],
    capture: &[f32],
    channels: usize,
    sample_rate: u32,
    interval_s: Option<f64>,
) -> Result<Analysis, DelayError> {
    let channels = channels.max(1);
    let mut corr = Correlator::new(stimulus, sample_rate);
    let (channel, first) = corr.estimate_multichannel(capture, channels)?;
    let mono: Vec<f32> = capture
        .iter()
        .skip(channel)
        .step_by(channels)
        .copied()
        .collect();
    let long_drift = corr.last_drift_ppm();
    let len = stimulus.len();
    let guard = (ECHO_GUARD_S * sample_rate as f64) as usize;
    // Segment: search a span, take what is found, search the spans before and after it.
    let mut found: Vec<(f64, DelayEstimate)> = Vec::new();
    let mut todo = vec![(0usize, mono.len())];
    while let Some((a, b)) = todo.pop() {
        if b <= a || b - a < len {
            continue;
        }
        match corr.estimate(&mono[a..b]) {
            Ok(d) => {
                let pos = a as f64 + d.delay_samples;
                found.push((pos, d));
                let start = pos.floor().max(0.0) as usize;
                todo.push((a, start.saturating_sub(len / 2)));
                todo.push(((start + len + guard).min(b), b));
            }
            Err(DelayError::NotFound { .. }) | Err(DelayError::TooShort { .. }) => {}
        }
        if found.len() > 100_000 {
            break;
        }
    }
    if found.is_empty() {
        // The multichannel search found it; keep that result.
        found.push((first.delay_samples, first));
    }
    found.sort_by(|x, y| x.0.total_cmp(&y.0));
    let fs = sample_rate as f64;
    let shots: Vec<ShotResult> = found
        .iter()
        .enumerate()
        .map(|(i, (pos, d))| {
            let position_ms = pos / fs * 1e3;
            let (index, latency_ms) = match interval_s {
                Some(iv) if iv > 0.0 => {
                    let k = (pos / fs / iv).floor().max(0.0);
                    (k as usize, position_ms - k * iv * 1e3)
                }
                _ => (i, position_ms),
            };
            ShotResult {
                index,
                position_ms,
                latency_ms,
                uncertainty_ms: 2.0 * d.std_uncertainty_samples / fs * 1e3,
                confidence: d.confidence,
                snr_db: d.snr_db,
                polarity: d.polarity,
            }
        })
        .collect();
    let drift = match interval_s {
        Some(iv) if shots.len() >= 2 => drift_ppm(
            &shots
                .iter()
                .map(|s| (s.index as f64 * iv, s.position_ms / 1e3))
                .collect::<Vec<_>>(),
        ),
        _ => long_drift,
    };
    let s0 = &shots[0];
    Ok(Analysis {
        latency_ms: s0.latency_ms,
        uncertainty_ms: s0.uncertainty_ms,
        confidence: s0.confidence,
        snr_db: s0.snr_db,
        channel,
        channels,
        polarity: s0.polarity,
        drift_ppm: drift,
        sample_rate,
        shots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::stimulus::{Stimulus, StimulusKind};

    #[test]
    fn finds_every_shot_on_the_right_channel() {
        let fs = 48_000;
        let st = Stimulus::new(StimulusKind::Noise, fs, 0.1, 7);
        let lat = [0.0123, 0.0150, 0.0181];
        let iv = 0.3;
        let n = (fs as f64 * 1.0) as usize;
        let mut cap = vec![0f32; n * 2];
        let mut seed = 1u32;
        for i in 0..n {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            let t = i as f64 / fs as f64;
            let mut v = 0.0;
            for (k, l) in lat.iter().enumerate() {
                v += st.value_at(t - k as f64 * iv - l);
            }
            cap[2 * i] = 0.01 * noise;
            cap[2 * i + 1] = -0.5 * v + 0.01 * noise;
        }
        let a = analyze(st.samples(), &cap, 2, fs, Some(iv)).unwrap();
        assert_eq!(a.channel, 1);
        assert_eq!(a.polarity, -1);
        assert_eq!(a.shots.len(), 3);
        for (s, l) in a.shots.iter().zip(lat) {
            assert!(
                (s.latency_ms - l * 1e3).abs() < 0.01,
                "{} vs {}",
                s.latency_ms,
                l * 1e3
            );
        }
    }
}
