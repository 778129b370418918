//! `certlab run`: its arguments and help, and the verdict table and exit
//! code of a finished run.
//!
//! Owns turning the arguments into `run::RunOptions` and the report's
//! outcome into an exit code. The run itself is `run`'s; this module must
//! not order steps, measure, judge or write report files.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use crate::profile;
use crate::report::Outcome;
use crate::run::{execute, RunOptions};
use crate::ExitStatus;

#[derive(Args)]
#[command(after_help = "\
Device specs:
  sim[:CLASS]             the simulated station; CLASS is speakerphone (default),
                          headset, camera or room-system
  usb:VID:PID[:SERIAL]    a USB device, e.g. usb:1209:0001
  serial:PATH             a room system's control port, e.g. serial:/dev/ttyUSB0

The report directory holds report.json, measurements.csv, raw/, plots/,
report.html, junit.xml, run.log, signer.pub, trust/ (the documents the
marking rests on) and, written last, report.dsse.json, the signature (check
it with `certlab verify`); see docs/report-format.md.
Progress bars show on a terminal; Ctrl-C stops the run cleanly (outcome ABORTED)
and keeps the data gathered so far.

Examples:
  certlab run profiles/speakerphone.toml --device sim --vendor demo
  certlab run headset --device sim:headset --vendor acme --out /tmp/headset-run
  certlab run speakerphone --device sim --scenario fixtures/sim/speakerphone-slow.toml --vendor demo")]
pub struct RunArgs {
    /// A profile file, or the id of a shipped profile (see `certlab profiles list`).
    profile: String,
    /// The device under test: sim[:CLASS], usb:VID:PID[:SERIAL] or serial:PATH.
    #[arg(long, value_name = "SPEC")]
    device: String,
    /// The rig: `sim` (the default for simulated devices), serial:PATH (e.g.
    /// serial:/dev/ttyACM0), usb:VID:PID[:SERIAL] (its CDC-ACM port, found in
    /// sysfs), or audio:ALSA_DEVICE (a USB audio interface, e.g.
    /// audio:hw:CARD=Scarlett or audio:usb:VID:PID; audio:sim simulates one).
    #[arg(long, value_name = "SPEC")]
    rig: Option<String>,
    /// The station file: an audio:… rig's channel map, and for any rig the
    /// station calibration `certlab calibrate` wrote, recorded and
    /// subtracted in the budget (docs/audio-rig.md).
    #[arg(long, value_name = "FILE")]
    station: Option<PathBuf>,
    /// The vendor whose device this is, as the program knows it.
    #[arg(long, value_name = "ID")]
    vendor: String,
    /// For a simulated device: the scenario file (default fixtures/sim/CLASS.toml).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// The lab's private key, to sign the report. Without it, the report is
    /// signed with a per-user key (made on first use in the user's config
    /// directory) and is always UNOFFICIAL.
    #[arg(long, value_name = "FILE")]
    lab_key: Option<PathBuf>,
    /// A directory of trust documents (accreditations, admissions,
    /// revocation lists; *.json) and the authority's public key (authority.pub).
    #[arg(long, value_name = "DIR")]
    trust: Option<PathBuf>,
    /// The report directory (default reports/<UTC time>-<profile>-<device>/). It must be new or empty.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Run the in-process simulated station in real time (its rig behind a
    /// pseudo-terminal), to watch it; by default it runs in virtual time,
    /// which jumps to the next event. Real devices always run in real time.
    #[arg(long)]
    realtime: bool,
}

pub fn run(a: RunArgs) -> crate::Result<ExitStatus> {
    let profile = profile::resolve(&a.profile)?;
    let signing = crate::trust::Signing::prepare(a.lab_key.as_deref(), a.trust.as_deref())?;
    let summary = execute(RunOptions {
        profile,
        device: a.device,
        rig: a.rig,
        scenario: a.scenario,
        vendor: a.vendor,
        out: a.out,
        reports_root: PathBuf::from("reports"),
        progress: std::io::stderr().is_terminal(),
        signing,
        realtime: a.realtime,
        station: a.station,
    })?;
    print!("{}", crate::report::verdict_table(&summary.report));
    println!("REPORT: {}", summary.dir.display());
    Ok(match summary.report.outcome {
        Outcome::Pass => ExitStatus::Ok,
        Outcome::Fail => ExitStatus::Failed,
        Outcome::Error | Outcome::Aborted => ExitStatus::Incomplete,
    })
}
