//! Capture assembly on the analysis side of the ring.

use super::{Block, BLOCK_LEN};
use crate::dsp::LineFit;

/// A contiguous capture assembled from blocks. Missing and corrupt blocks are
/// replaced by zeros so sample indices stay aligned with time, and counted.
#[derive(Debug, Clone)]
pub struct Capture {
    pub sample_rate: u32,
    pub samples: Vec<f32>,
    /// (sample index, source time in ns) of the first sample of each good block.
    anchors: Vec<(u64, i64)>,
    next_seq: Option<u64>,
    /// Blocks missing from the sequence (dropped by the device or the ring).
    pub gap_blocks: u64,
    /// Blocks received corrupt and zero-filled.
    pub corrupt_blocks: u64,
    /// Zero-filled regions (start sample, length), from gaps and corrupt blocks.
    pub holes: Vec<(usize, usize)>,
}

impl Capture {
    /// An empty capture with room for `expected_samples`.
    pub fn new(sample_rate: u32, expected_samples: usize) -> Self {
        Capture {
            sample_rate,
            samples: Vec::with_capacity(expected_samples),
            anchors: Vec::with_capacity(expected_samples / BLOCK_LEN + 1),
            next_seq: None,
            gap_blocks: 0,
            corrupt_blocks: 0,
            holes: Vec::new(),
        }
    }

    /// Append a block, filling a sequence gap with zeros first.
    pub fn push(&mut self, b: &Block) {
        if let Some(expected) = self.next_seq {
            if b.seq > expected {
                let missing = b.seq - expected;
                self.gap_blocks += missing;
                // Only fill gaps up to a sane bound; a huge jump is a restart.
                let fill = (missing as usize).min(1 << 16) * BLOCK_LEN;
                self.holes.push((self.samples.len(), fill));
                self.samples.resize(self.samples.len() + fill, 0.0);
            }
        }
        self.next_seq = Some(b.seq + 1);
        let len = (b.len as usize).min(BLOCK_LEN);
        let start = self.samples.len() as u64;
        if b.corrupt {
            self.corrupt_blocks += 1;
            self.holes.push((self.samples.len(), len));
            self.samples.resize(self.samples.len() + len, 0.0);
        } else {
            self.anchors.push((start, b.t_first_ns));
            self.samples.extend_from_slice(&b.data[..len]);
        }
    }

    /// Whether any zero-filled hole overlaps samples [start, end).
    pub fn has_hole_in(&self, start: usize, end: usize) -> bool {
        self.holes.iter().any(|&(s, l)| s < end && s + l > start)
    }

    /// The source time just past the last good sample, ns (at the nominal
    /// rate from the last block's stamp); `None` before the first block.
    pub fn end_time_ns(&self) -> Option<i64> {
        let &(i, t) = self.anchors.last()?;
        let after = self.samples.len() as u64 - i;
        Some(t + (after as f64 * 1e9 / self.sample_rate as f64) as i64)
    }

    /// Duration in seconds at the nominal rate.
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }

    /// Fit the mapping from sample index to source time over all blocks.
    pub fn time_map(&self) -> Option<TimeMap> {
        TimeMap::fit(&self.anchors, self.sample_rate)
    }
}

/// Least-squares mapping `t_ns = t0 + slope * (index - i0)` from block stamps.
/// The fit absorbs the device's sample-clock drift and averages stamp jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeMap {
    i0: f64,
    t0: f64,
    /// Nanoseconds per sample.
    pub slope: f64,
    /// RMS residual of the stamps about the fit, ns.
    pub residual_ns: f64,
    /// Standard uncertainty of a mapped time from the fit itself, ns.
    pub fit_uncertainty_ns: f64,
    /// Relative rate error of the source against its clock, ppm
    /// (positive: the samples come faster than the nominal rate).
    pub drift_ppm: f64,
}

impl TimeMap {
    pub fn fit(anchors: &[(u64, i64)], sample_rate: u32) -> Option<TimeMap> {
        let nominal = 1e9 / sample_rate as f64;
        match anchors.len() {
            0 => None,
            1 => Some(TimeMap {
                i0: anchors[0].0 as f64,
                t0: anchors[0].1 as f64,
                slope: nominal,
                residual_ns: 0.0,
                fit_uncertainty_ns: 0.0,
                drift_ppm: 0.0,
            }),
            n => {
                let nf = n as f64;
                let fit = LineFit::of(anchors.iter().map(|&(i, t)| (i as f64, t as f64)))?;
                let (i0, t0) = (fit.mean_x, fit.mean_y);
                let slope = fit.slope().unwrap_or(nominal);
                let ss: f64 = anchors
                    .iter()
                    .map(|&(i, t)| {
                        let r = t as f64 - (t0 + slope * (i as f64 - i0));
                        r * r
                    })
                    .sum();
                let dof = (n.saturating_sub(2)).max(1) as f64;
                let residual_ns = (ss / dof).sqrt();
                Some(TimeMap {
                    i0,
                    t0,
                    slope,
                    residual_ns,
                    fit_uncertainty_ns: residual_ns / nf.sqrt(),
                    drift_ppm: (nominal / slope - 1.0) * 1e6,
                })
            }
        }
    }

    /// Source time (ns) of a fractional sample index.
    pub fn time_of(&self, index: f64) -> f64 {
        self.t0 + self.slope * (index - self.i0)
    }

    /// Fractional sample index at a source time (ns).
    pub fn index_of(&self, t_ns: f64) -> f64 {
        self.i0 + (t_ns - self.t0) / self.slope
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(seq: u64, t: i64, v: f32) -> Block {
        Block {
            seq,
            t_first_ns: t,
            len: BLOCK_LEN as u16,
            corrupt: false,
            data: [v; BLOCK_LEN],
        }
    }

    #[test]
    fn gaps_are_zero_filled_and_counted() {
        let per = BLOCK_LEN as i64 * 1_000_000_000 / 48_000;
        let mut c = Capture::new(48_000, 0);
        c.push(&block(0, 0, 1.0));
        c.push(&block(3, 3 * per, 2.0));
        assert_eq!(c.gap_blocks, 2);
        assert_eq!(c.samples.len(), 4 * BLOCK_LEN);
        assert_eq!(c.samples[BLOCK_LEN], 0.0);
        assert_eq!(c.samples[3 * BLOCK_LEN], 2.0);
        // The time map still places block 3 where it belongs.
        let m = c.time_map().unwrap();
        assert!((m.time_of((3 * BLOCK_LEN) as f64) - (3 * per) as f64).abs() < 1.0);
    }

    #[test]
    fn time_map_recovers_drift() {
        // A source running 50 ppm fast: each sample takes less host time.
        let ns_per = 1e9 / 48_000.0 / (1.0 + 50e-6);
        let anchors: Vec<(u64, i64)> = (0..400u64)
            .map(|k| {
                let i = k * BLOCK_LEN as u64;
                (
                    i,
                    (i as f64 * ns_per) as i64 + if k % 2 == 0 { 300 } else { -300 },
                )
            })
            .collect();
        let m = TimeMap::fit(&anchors, 48_000).unwrap();
        assert!((m.drift_ppm - 50.0).abs() < 0.5, "{}", m.drift_ppm);
        assert!((m.residual_ns - 300.0).abs() < 10.0);
    }
}
