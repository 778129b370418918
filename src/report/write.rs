//! Writing the report directory: every file through a temporary file and a rename.

use std::path::{Path, PathBuf};

use crate::files::AtomicFile;
use crate::measure::measurement::RawData;
use crate::{Error, Result};

/// `<UTC time>-<profile id>-<device>`, safe as a file name.
pub fn default_dir_name(
    started: chrono::DateTime<chrono::Utc>,
    profile_id: &str,
    device: &str,
) -> String {
    let dev: String = device
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{}-{profile_id}-{dev}", started.format("%Y%m%dT%H%M%SZ"))
}

/// Create the report directory; it must be new or empty, and writable.
pub fn create_report_dir(dir: &Path) -> Result<()> {
    let bad = |e: std::io::Error| {
        Error::BadInput(format!("cannot write the report to {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(bad)?;
    if std::fs::read_dir(dir).map_err(bad)?.next().is_some() {
        return Err(Error::BadInput(format!(
            "the report directory {} is not empty; choose a new --out directory",
            dir.display()
        )));
    }
    // Prove it is writable now rather than after a long run.
    let probe = tempfile::NamedTempFile::new_in(dir).map_err(bad)?;
    drop(probe);
    Ok(())
}

/// Write raw data under `raw/`; returns their paths relative to `dir`.
pub fn write_files(dir: &Path, raw: &[RawData]) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for r in raw {
        match r {
            RawData::Audio {
                name,
                sample_rate,
                samples,
                clock,
                t_first_ns,
                emitted_at_samples,
            } => {
                let rel = PathBuf::from("raw").join(name);
                let spec = hound::WavSpec {
                    channels: 1,
                    sample_rate: *sample_rate,
                    bits_per_sample: 32,
                    sample_format: hound::SampleFormat::Float,
                };
                let mut buf = std::io::Cursor::new(Vec::with_capacity(samples.len() * 4 + 64));
                {
                    let mut w =
                        hound::WavWriter::new(&mut buf, spec).map_err(std::io::Error::other)?;
                    for &s in samples {
                        w.write_sample(s).map_err(std::io::Error::other)?;
                    }
                    w.finalize().map_err(std::io::Error::other)?;
                }
                AtomicFile::write(&dir.join(&rel), buf.get_ref())?;
                names.push(rel.to_string_lossy().into_owned());
                // Where the capture sits in time, to re-analyse it against measurements.csv.
                let meta = serde_json::json!({
                    "file": rel.to_string_lossy(),
                    "sample_rate": sample_rate,
                    "clock": clock,
                    "first_sample_time_ns": t_first_ns,
                    "emitted_at_samples": emitted_at_samples,
                });
                let rel_meta = rel.with_extension("json");
                let text = serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?;
                AtomicFile::write(&dir.join(&rel_meta), &text)?;
                names.push(rel_meta.to_string_lossy().into_owned());
            }
            RawData::Table { name, header, rows } => {
                let rel = PathBuf::from("raw").join(name);
                let mut w = csv::Writer::from_writer(Vec::new());
                w.write_record(header).map_err(std::io::Error::other)?;
                for row in rows {
                    w.write_record(row).map_err(std::io::Error::other)?;
                }
                let bytes = w
                    .into_inner()
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                AtomicFile::write(&dir.join(&rel), &bytes)?;
                names.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    Ok(names)
}
