//! The `certlab` command line.
//!
//! Owns argument parsing (clap), the help texts, printing results, and turning
//! every outcome into the exit codes of the spec: 0 pass or valid, 1 a limit
//! failed, 2 the run could not finish, 3 bad usage or bad input. It holds no
//! measurement or report logic of its own.
//!
//! This file holds the command tree and the dispatch; each command group's
//! arguments, help and printing live in its own module.

mod analyze;
mod calibrate;
mod devices;
mod probe;
mod profiles;
mod report;
mod run;
mod sim;
mod trust;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::{Error, ExitStatus};

const AFTER_HELP: &str = "\
Exit codes: 0 pass (or valid), 1 a limit failed (or the report is invalid),
2 the run could not finish (device, rig or harness error; aborted),
3 bad usage or a bad input file.

Start with the simulated station:
  certlab run profiles/speakerphone.toml --device sim --vendor demo";

#[derive(Parser)]
#[command(
    name = "certlab",
    version,
    about = "Certification harness for conferencing hardware: measures audio and video latency \
             against versioned test profiles and writes a report.",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a test profile against a device and write a report directory.
    Run(run::RunArgs),
    /// List, show and check test profiles.
    #[command(subcommand)]
    Profiles(profiles::ProfilesCmd),
    /// List USB devices and serial ports, their classes, and the profiles that match them.
    Devices(devices::DevicesArgs),
    /// Estimate the delay of a stimulus in a capture, offline.
    #[command(subcommand)]
    Analyze(analyze::AnalyzeCmd),
    /// Work with an existing report directory.
    #[command(subcommand)]
    Report(report::ReportCmd),
    /// Verify a signed report and print OFFICIAL, UNOFFICIAL or INVALID.
    Verify(trust::VerifyArgs),
    /// Generate an Ed25519 key pair.
    #[command(subcommand)]
    Keys(trust::KeysCmd),
    /// The program authority's side of the trust chain.
    #[command(subcommand)]
    Authority(trust::AuthorityCmd),
    /// Check a station's wiring before a run: open a DUT interface and show what it does.
    #[command(subcommand)]
    Probe(probe::ProbeCmd),
    /// Measure what the station itself adds (interface loopback, speaker to
    /// microphone) into a station file that runs take with --station.
    Calibrate(calibrate::CalibrateArgs),
    /// Simulators.
    #[command(subcommand)]
    Sim(sim::SimCmd),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            use clap::error::ErrorKind::*;
            return match e.kind() {
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(ExitStatus::BadInput.code()),
            };
        }
    };
    match dispatch(cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(e) => {
            eprintln!("certlab: {e}");
            ExitCode::from(e.exit_status().code())
        }
    }
}

fn dispatch(cli: Cli) -> crate::Result<ExitStatus> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Profiles(p) => profiles::run(p),
        Command::Devices(a) => devices::run(a),
        Command::Analyze(a) => analyze::run(a),
        Command::Report(r) => report::run(r),
        Command::Verify(a) => trust::verify(a),
        Command::Keys(k) => trust::keys(k),
        Command::Authority(a) => trust::authority(a),
        Command::Probe(p) => probe::run(p),
        Command::Calibrate(c) => calibrate::run(c),
        Command::Sim(s) => sim::run(s),
    }
}

/// A result as pretty JSON on stdout (`--json`).
fn print_json(o: &impl Serialize) -> crate::Result<()> {
    let text = serde_json::to_string_pretty(o)
        .map_err(|e| Error::Harness(format!("cannot print: {e}")))?;
    println!("{text}");
    Ok(())
}
