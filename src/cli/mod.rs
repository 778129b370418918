//! The `certlab` command line.
//!
//! Owns argument parsing (clap), the help texts, printing results, and turning
//! every outcome into the exit codes of the spec: 0 pass or valid, 1 a limit
//! failed, 2 the run could not finish, 3 bad usage or bad input. It holds no
//! measurement or report logic of its own.

mod analyze;
mod devices;
mod report;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::profile::{self, Profile};
use crate::report::Outcome;
use crate::run::{self, RunOptions};
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
    #[command(after_help = "\
Device specs:
  sim[:CLASS]             the simulated station; CLASS is speakerphone (default),
                          headset, camera or room-system
  usb:VID:PID[:SERIAL]    a USB device, e.g. usb:1209:0001
  serial:PATH             a room system's control port, e.g. serial:/dev/ttyUSB0

The report directory holds report.json, measurements.csv, raw/, plots/,
report.html, junit.xml and run.log (docs/report-format.md).
Progress bars show on a terminal; Ctrl-C stops the run cleanly (outcome ABORTED)
and keeps the data gathered so far.

Examples:
  certlab run profiles/speakerphone.toml --device sim --vendor demo
  certlab run headset --device sim:headset --vendor acme --out /tmp/headset-run
  certlab run speakerphone --device sim --scenario fixtures/sim/speakerphone-slow.toml --vendor demo")]
    Run(RunArgs),
    /// List, show and check test profiles.
    #[command(subcommand)]
    Profiles(ProfilesCmd),
    /// List USB devices and serial ports, their classes, and the profiles that match them.
    Devices {
        /// Print one JSON object {"usb": [...], "serial": [...], "simulated": [...], "notes": [...]}
        /// (the USB devices' form is a stable interface, docs/usb.md).
        #[arg(long)]
        json: bool,
        /// Read USB devices from this sysfs root instead of /sys (e.g. a
        /// snapshot). Without it, a host without /sys/bus/usb is listed
        /// through libusb; with it, never.
        #[arg(long, value_name = "ROOT")]
        sysfs: Option<PathBuf>,
        /// Also write a sysfs-shaped snapshot of the listed USB devices to DIR
        /// (a new or empty directory), replayable with --sysfs DIR.
        #[arg(long, value_name = "DIR")]
        snapshot: Option<PathBuf>,
    },
    /// Estimate the delay of a stimulus in a capture, offline.
    #[command(subcommand)]
    Analyze(AnalyzeCmd),
    /// Work with an existing report directory.
    #[command(subcommand)]
    Report(ReportCmd),
    /// Verify a signed report and print OFFICIAL, UNOFFICIAL or INVALID.
    Verify {
        report_dir: PathBuf,
        #[arg(long, value_name = "AUTHORITY.pub")]
        authority: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Generate an Ed25519 key pair.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// The program authority's side of the trust chain.
    #[command(subcommand)]
    Authority(AuthorityCmd),
    /// Simulators.
    #[command(subcommand)]
    Sim(SimCmd),
}

#[derive(Args)]
struct RunArgs {
    /// A profile file, or the id of a shipped profile (see `certlab profiles list`).
    profile: String,
    /// The device under test: sim[:CLASS], usb:VID:PID[:SERIAL] or serial:PATH.
    #[arg(long, value_name = "SPEC")]
    device: String,
    /// The rig: `sim` (the default for simulated devices) or serial:PATH.
    #[arg(long, value_name = "SPEC")]
    rig: Option<String>,
    /// The vendor whose device this is, as the program knows it.
    #[arg(long, value_name = "ID")]
    vendor: String,
    /// For a simulated device: the scenario file (default fixtures/sim/CLASS.toml).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// The lab's private key, to sign the report.
    #[arg(long, value_name = "FILE")]
    lab_key: Option<PathBuf>,
    /// A directory of trust documents (accreditations, admissions, revocations).
    #[arg(long, value_name = "DIR")]
    trust: Option<PathBuf>,
    /// The report directory (default reports/<UTC time>-<profile>-<device>/). It must be new or empty.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ProfilesCmd {
    /// List the shipped profiles.
    List,
    /// Show a profile's steps and limits (a shipped id or a file).
    Show { profile: String },
    /// Check profile files; print every problem as file:line:column: message.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AnalyzeCmd {
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

#[derive(Subcommand)]
enum ReportCmd {
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

#[derive(Subcommand)]
enum KeysCmd {
    /// Write NAME.key (private, mode 0600) and NAME.pub.
    Generate {
        #[arg(long, value_name = "NAME")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuthorityCmd {
    /// Create the program authority's key pair.
    Init,
    /// Accredit a lab for a program.
    AccreditLab,
    /// Admit a vendor to a program.
    AdmitVendor,
    /// Revoke a key.
    Revoke,
}

#[derive(Subcommand)]
enum SimCmd {
    /// Run a simulated rig on a new pseudo-terminal and print its path.
    ///
    /// The first line on stdout is the port's path; give it to a run as
    /// `--device sim[:CLASS] --rig serial:PATH`. The rig half of the scenario
    /// (its clock, its link, its faults) applies here; the run's own scenario
    /// gives the DUT. Runs until interrupted, or until a scenario fault
    /// unplugs the rig.
    Rig {
        /// Scenario file (default: the speakerphone's).
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
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
        Command::Run(a) => cmd_run(a),
        Command::Profiles(p) => cmd_profiles(p),
        Command::Devices {
            json,
            sysfs,
            snapshot,
        } => devices::run(json, sysfs.as_deref(), snapshot.as_deref()),
        Command::Analyze(AnalyzeCmd::Audio {
            stimulus,
            capture,
            json,
            interval_ms,
        }) => analyze::run(&stimulus, &capture, json, interval_ms),
        Command::Report(ReportCmd::Render {
            report_dir,
            out,
            png,
        }) => report::render(&report_dir, out.as_deref(), png),
        Command::Verify { .. } => Err(Error::NotImplemented("certlab verify".into())),
        Command::Keys(_) => Err(Error::NotImplemented("certlab keys".into())),
        Command::Authority(_) => Err(Error::NotImplemented("certlab authority".into())),
        Command::Sim(SimCmd::Rig { scenario }) => cmd_sim_rig(scenario),
    }
}

fn cmd_sim_rig(scenario: Option<PathBuf>) -> crate::Result<ExitStatus> {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let scenario = scenario.unwrap_or_else(|| {
        crate::station::sim::default_scenario(crate::profile::DeviceClass::Speakerphone)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    // SIGINT or SIGTERM stop the rig cleanly (its socket is removed).
    std::thread::Builder::new()
        .name("certlab-signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let Ok(mut term) = signal(SignalKind::terminate()) else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            });
            st.store(true, Ordering::Relaxed);
        })
        .map_err(|e| Error::Harness(format!("cannot watch for signals: {e}")))?;
    crate::station::sim::serve_rig(&scenario, stop, |port, sock| {
        println!("{port}");
        let _ = std::io::stdout().flush();
        eprintln!(
            "certlab: simulated rig ({}) on {port}, its medium on {}\n\
             certlab: measure with `certlab run PROFILE --device sim --rig serial:{port}`; Ctrl-C stops the rig",
            scenario.display(),
            sock.display()
        );
    })?;
    Ok(ExitStatus::Ok)
}

fn cmd_run(a: RunArgs) -> crate::Result<ExitStatus> {
    if a.lab_key.is_some() || a.trust.is_some() {
        return Err(Error::NotImplemented(
            "signing reports (--lab-key, --trust); run without them for an unsigned UNOFFICIAL report".into(),
        ));
    }
    let profile = profile::resolve(&a.profile)?;
    let summary = run::execute(RunOptions {
        profile,
        device: a.device,
        rig: a.rig,
        scenario: a.scenario,
        vendor: a.vendor,
        out: a.out,
        reports_root: PathBuf::from("reports"),
        progress: std::io::stderr().is_terminal(),
    })?;
    print!("{}", crate::report::verdict_table(&summary.report));
    println!("REPORT: {}", summary.dir.display());
    Ok(match summary.report.outcome {
        Outcome::Pass => ExitStatus::Ok,
        Outcome::Fail => ExitStatus::Failed,
        Outcome::Error | Outcome::Aborted => ExitStatus::Incomplete,
    })
}

fn cmd_profiles(p: ProfilesCmd) -> crate::Result<ExitStatus> {
    match p {
        ProfilesCmd::List => {
            let mut bad = false;
            println!(
                "{:<16} {:<8} {:<20} {:<13} {:>5}  TITLE",
                "ID", "VERSION", "PROGRAM", "CLASS", "STEPS"
            );
            for r in profile::shipped() {
                match r {
                    Ok(p) => println!(
                        "{:<16} {:<8} {:<20} {:<13} {:>5}  {}",
                        p.id,
                        p.version,
                        p.program,
                        p.device_class.name(),
                        p.steps.len(),
                        p.title
                    ),
                    Err(e) => {
                        bad = true;
                        eprintln!("certlab: {e}");
                    }
                }
            }
            Ok(if bad {
                ExitStatus::BadInput
            } else {
                ExitStatus::Ok
            })
        }
        ProfilesCmd::Show { profile } => {
            let p = profile::resolve(&profile)?;
            print!("{}", describe(&p));
            Ok(ExitStatus::Ok)
        }
        ProfilesCmd::Check { files } => {
            let mut bad = false;
            for f in &files {
                match Profile::load(f) {
                    Ok(p) => println!(
                        "{}: ok ({} {} v{}, {} steps, sha256 {})",
                        f.display(),
                        p.id,
                        p.program,
                        p.version,
                        p.steps.len(),
                        p.sha256
                    ),
                    Err(Error::Profile { diagnostics, .. }) => {
                        bad = true;
                        for d in diagnostics {
                            println!("{d}");
                        }
                    }
                    Err(e) => {
                        bad = true;
                        println!("{}: {e}", f.display());
                    }
                }
            }
            Ok(if bad {
                ExitStatus::BadInput
            } else {
                ExitStatus::Ok
            })
        }
    }
}

fn describe(p: &Profile) -> String {
    let mut s = format!(
        "{} v{} ({})\nprogram: {}\ndevice class: {}\nsha256: {}\nsource: {}\n",
        p.id,
        p.version,
        p.title,
        p.program,
        p.device_class.name(),
        p.sha256,
        p.source.display()
    );
    if !p.description.is_empty() {
        s.push_str(&format!("{}\n", p.description.trim()));
    }
    for (i, st) in p.steps.iter().enumerate() {
        s.push_str(&format!(
            "\n{}. {} [{}] — {}\n",
            i + 1,
            st.id,
            st.kind.name(),
            st.title
        ));
        let q = &st.params;
        if st.kind.is_latency() {
            s.push_str(&format!(
                "   shots {} every {} ms, max latency {} ms, up to {} missed, timeout {} s\n",
                q.shots, q.interval_ms, q.max_latency_ms, q.max_missed, q.timeout_s
            ));
        }
        match st.kind {
            profile::StepKind::AudioSendLatency
            | profile::StepKind::AudioReceiveLatency
            | profile::StepKind::AudioRoundtripLatency => s.push_str(&format!(
                "   stimulus {} of {} ms at {} Hz\n",
                q.stimulus.name(),
                q.stimulus_ms,
                q.sample_rate
            )),
            profile::StepKind::VideoLatency => {
                s.push_str(&format!("   LED region {:?}\n", q.led_roi))
            }
            profile::StepKind::ButtonHidLatency => {
                s.push_str(&format!("   HID usage {}\n", q.hid_usage))
            }
            profile::StepKind::UsbConformance => {
                for r in &q.requirements {
                    s.push_str(&format!("   requires {r}\n"));
                }
            }
            profile::StepKind::SerialConformance => {
                for c in &q.commands {
                    s.push_str(&format!("   sends {:?}, expects /{}/\n", c.send, c.expect));
                }
            }
        }
        for l in &st.limits {
            let mut b = Vec::new();
            if let Some(v) = l.min {
                b.push(format!(">= {v}"));
            }
            if let Some(v) = l.max {
                b.push(format!("<= {v}"));
            }
            s.push_str(&format!(
                "   limit: {} {} {}{}\n",
                l.statistic.name(),
                b.join(" and "),
                l.unit.name(),
                l.marginal
                    .map(|m| format!(" (marginal band {m} {})", l.unit.name()))
                    .unwrap_or_default()
            ));
        }
    }
    s
}
