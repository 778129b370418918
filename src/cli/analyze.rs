//! `certlab analyze audio`: find a stimulus in a capture, offline.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::measure::analyze::analyze;
use crate::{Error, ExitStatus, Result};

#[derive(Subcommand)]
pub enum AnalyzeCmd {
    /// Find a stimulus WAV in a capture WAV and print its delay.
    #[command(after_help = "\
Reads WAV files at 8 to 192 kHz: 16-, 24- or 32-bit integer or float, mono or
multichannel. The stimulus is searched for in every channel of the capture; the
best channel is reported. Every occurrence is found; with --interval-ms, shot k
is taken as scheduled at k × interval from the capture's start and its latency
is its position less that. Exit 2 when the stimulus is not found (no number is
guessed), 3 for unreadable or mismatched files.

Example:
  certlab analyze audio --stimulus sweep.wav --capture capture.wav --json")]
    Audio {
        /// The stimulus as played (its first channel is used).
        #[arg(long, value_name = "S.wav")]
        stimulus: PathBuf,
        /// The capture to search.
        #[arg(long, value_name = "C.wav")]
        capture: PathBuf,
        /// Print JSON: latency_ms, uncertainty_ms, confidence, snr_db, channel, polarity, drift_ppm, shots.
        #[arg(long)]
        json: bool,
        /// The stimulus was played every this many ms from the capture's start.
        #[arg(long, value_name = "MS")]
        interval_ms: Option<f64>,
    },
}

pub fn run(cmd: AnalyzeCmd) -> Result<ExitStatus> {
    let AnalyzeCmd::Audio {
        stimulus,
        capture,
        json,
        interval_ms,
    } = cmd;
    audio(&stimulus, &capture, json, interval_ms)
}

/// Interleaved samples as f32 in [-1, 1), with channels and rate.
struct Wav {
    samples: Vec<f32>,
    channels: usize,
    rate: u32,
}

fn read_wav(path: &Path, what: &str) -> Result<Wav> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::BadInput(format!("cannot read the {what} {}: {e}", path.display()))
    };
    let mut r = hound::WavReader::open(path).map_err(|e| bad(&e))?;
    let spec = r.spec();
    if !(8_000..=192_000).contains(&spec.sample_rate) {
        return Err(bad(&format!(
            "its sample rate {} Hz is outside 8000..=192000",
            spec.sample_rate
        )));
    }
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r
            .samples::<f32>()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(&e))?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| bad(&e))?
        }
    };
    if samples.iter().any(|s| !s.is_finite()) {
        return Err(bad(&"it holds samples that are not finite numbers"));
    }
    Ok(Wav {
        samples,
        channels: spec.channels.max(1) as usize,
        rate: spec.sample_rate,
    })
}

fn audio(
    stimulus: &Path,
    capture: &Path,
    json: bool,
    interval_ms: Option<f64>,
) -> Result<ExitStatus> {
    let st = read_wav(stimulus, "stimulus")?;
    let cap = read_wav(capture, "capture")?;
    if st.rate != cap.rate {
        return Err(Error::BadInput(format!(
            "the stimulus is at {} Hz but the capture at {} Hz; resample one of them (e.g. `sox IN -r {} OUT`)",
            st.rate, cap.rate, cap.rate
        )));
    }
    if let Some(iv) = interval_ms {
        if !(iv.is_finite() && iv > 0.0) {
            return Err(Error::BadInput(format!(
                "--interval-ms must be a positive number, not {iv}"
            )));
        }
    }
    // A multichannel stimulus: its first channel is the reference.
    let reference: Vec<f32> = st.samples.iter().step_by(st.channels).copied().collect();
    if reference.iter().all(|s| *s == 0.0) {
        return Err(Error::BadInput(format!(
            "the stimulus {} is silent",
            stimulus.display()
        )));
    }
    let frames = cap.samples.len() / cap.channels;
    if frames < reference.len() {
        return Err(Error::BadInput(format!(
            "the capture ({frames} samples) is shorter than the stimulus ({} samples)",
            reference.len()
        )));
    }
    let a = analyze(
        &reference,
        &cap.samples,
        cap.channels,
        cap.rate,
        interval_ms.map(|v| v / 1e3),
    )
    .map_err(|e| Error::Measurement(format!("{}: {e}", capture.display())))?;
    if json {
        super::print_json(&a)?;
    } else {
        println!(
            "latency {:.4} ms ± {:.4} ms (k=2), confidence {:.3}, peak SNR {:.1} dB, channel {} of {}, polarity {:+}, drift {}",
            a.latency_ms,
            a.uncertainty_ms,
            a.confidence,
            a.snr_db,
            a.channel,
            a.channels,
            a.polarity,
            a.drift_ppm.map(|d| format!("{d:.1} ppm")).unwrap_or_else(|| "unknown".into())
        );
        if a.shots.len() > 1 {
            println!("{} shots:", a.shots.len());
            for s in &a.shots {
                println!(
                    "  shot {:>3}: at {:>10.4} ms, latency {:.4} ± {:.4} ms, SNR {:.1} dB",
                    s.index, s.position_ms, s.latency_ms, s.uncertainty_ms, s.snr_db
                );
            }
        }
    }
    Ok(ExitStatus::Ok)
}
