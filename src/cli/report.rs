//! `certlab report render`: the human views of an existing report, again.
//!
//! Owns reading a report directory for rendering (report.json must parse and
//! carry the schema this build writes) and choosing the output directory. It
//! never writes into the report directory, whose files the signature covers;
//! rendering itself is `report::views`'.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::report::{self, views, Report};
use crate::{Error, ExitStatus, Result};

#[derive(Subcommand)]
pub enum ReportCmd {
    /// Render a report's human views (plots/, report.html, junit.xml) again,
    /// into a new directory, from its report.json, measurements.csv and raw/.
    #[command(after_help = "\
The report directory is only read: its signature keeps covering what the run
wrote. The output directory must be new or empty, and outside the report.
Exit 3 when REPORT_DIR is not a readable certlab report.

Example:
  certlab report render reports/20261122T201500Z-speakerphone-sim --out /tmp/views --png")]
    Render {
        /// The report directory (holding report.json).
        report_dir: PathBuf,
        /// Where to write the views (default: REPORT_DIR-views next to it).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Also write every plot as PNG.
        #[arg(long)]
        png: bool,
    },
}

pub fn run(cmd: ReportCmd) -> Result<ExitStatus> {
    let ReportCmd::Render {
        report_dir,
        out,
        png,
    } = cmd;
    render(&report_dir, out.as_deref(), png)
}

/// Read and check `dir/report.json`.
pub fn load(dir: &Path) -> Result<Report> {
    if !dir.is_dir() {
        return Err(Error::BadInput(format!(
            "{} is not a directory; give the report directory that holds report.json",
            dir.display()
        )));
    }
    let path = dir.join("report.json");
    let text = std::fs::read(&path).map_err(|e| {
        Error::BadInput(format!(
            "{}: {e}; {} is not a certlab report directory",
            path.display(),
            dir.display()
        ))
    })?;
    // The schema first, so that a report of another version says so rather
    // than failing on a field.
    let v: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| Error::BadInput(format!("{}: not valid JSON: {e}", path.display())))?;
    match v.get("schema").and_then(|s| s.as_str()) {
        Some(s) if s == report::SCHEMA => {}
        Some(s) => {
            return Err(Error::BadInput(format!(
                "{}: schema {s:?} is not the one this certlab reads ({})",
                path.display(),
                report::SCHEMA
            )))
        }
        None => {
            return Err(Error::BadInput(format!(
                "{}: no \"schema\"; not a certlab report",
                path.display()
            )))
        }
    }
    serde_json::from_value(v).map_err(|e| {
        Error::BadInput(format!(
            "{}: not a valid {} report: {e}",
            path.display(),
            report::SCHEMA
        ))
    })
}

fn default_out(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    dir.with_file_name(format!("{name}-views"))
}

fn render(dir: &Path, out: Option<&Path>, png: bool) -> Result<ExitStatus> {
    let report = load(dir)?;
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_out(dir));
    let (src_abs, out_abs) = (absolute(dir), absolute(&out));
    if out_abs.starts_with(&src_abs) {
        return Err(Error::BadInput(format!(
            "--out {} lies inside the report {}; its signature covers every file there, so choose a directory outside it",
            out.display(),
            dir.display()
        )));
    }
    let t0 = std::time::Instant::now();
    let written = views::render(dir, &out, &report, views::Options { png })?;
    for f in &written {
        println!("{}", out.join(f).display());
    }
    eprintln!(
        "certlab: rendered {} files of {} into {} in {:.2} s",
        written.len(),
        dir.display(),
        out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(ExitStatus::Ok)
}

/// The path made absolute and free of `.` and `..`, without touching the
/// file system beyond the current directory (the output may not exist yet).
fn absolute(p: &Path) -> PathBuf {
    let base = if p.is_absolute() {
        PathBuf::new()
    } else {
        std::env::current_dir().unwrap_or_default()
    };
    let mut out = PathBuf::new();
    for c in base.join(p).components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    // Through symlinks: the deepest existing ancestor, resolved, and the rest.
    let mut rest = Vec::new();
    let mut head = out.clone();
    loop {
        if let Ok(real) = std::fs::canonicalize(&head) {
            return rest.iter().rev().fold(real, |acc, c| acc.join(c));
        }
        match (head.file_name().map(|n| n.to_os_string()), head.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                head = parent.to_path_buf();
            }
            _ => return out,
        }
    }
}
