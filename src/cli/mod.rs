//! The `certlab` command line.
//!
//! Owns argument parsing (clap), the help texts, printing results, and turning
//! every outcome into the exit codes of the spec: 0 pass or valid, 1 a limit
//! failed, 2 the run could not finish, 3 bad usage or bad input. It holds no
//! measurement or report logic of its own.

mod analyze;
mod devices;
mod probe;
mod report;
mod trust;

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
report.html, junit.xml, run.log, signer.pub, trust/ (the documents the
marking rests on) and, written last, report.dsse.json, the signature (check
it with `certlab verify`); see docs/report-format.md.
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
    #[command(after_help = "\
Checks, with nothing but the authority's public key:
  - report.dsse.json's signature (Ed25519, strict) by the key in signer.pub;
  - every file's SHA-256 against the signed statement: a changed, missing or
    added file is named;
  - each trust document under trust/ against the authority's key;
  - the marking, recomputed from those documents at the test time
    (started_at). With --trust, newer documents (a later revocation list)
    count too. A report that claims OFFICIAL without documents to support it
    is INVALID.

Exit 0 for a valid report (OFFICIAL or UNOFFICIAL), 1 for INVALID, 3 when the
directory or a key cannot be read. docs/verifying.md shows the same checks
with sha256sum and openssl.

Example:
  certlab verify reports/20261123T101500Z-speakerphone-sim --authority authority.pub")]
    Verify {
        /// The report directory.
        report_dir: PathBuf,
        /// The program authority's public key.
        #[arg(long, value_name = "AUTHORITY.pub")]
        authority: PathBuf,
        /// Further trust documents to take into account (e.g. the authority's current revocation list).
        #[arg(long, value_name = "DIR")]
        trust: Option<PathBuf>,
        /// Print one JSON object: status, claimed, reasons, notes, signer, vendor, device, profile, ...
        #[arg(long)]
        json: bool,
    },
    /// Generate an Ed25519 key pair.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// The program authority's side of the trust chain.
    #[command(subcommand)]
    Authority(AuthorityCmd),
    /// Check a station's wiring before a run: open a DUT interface and show what it does.
    #[command(subcommand)]
    Probe(ProbeCmd),
    /// Simulators.
    #[command(subcommand)]
    Sim(SimCmd),
}

#[derive(Subcommand)]
enum ProbeCmd {
    /// Open a DUT's hidraw node, optionally write an output report (an
    /// LED), and print every input change with its time since the write.
    #[command(after_help = "\
Usages by name (hook-switch, phone-mute, led-mute, led-off-hook, led-ring, ...)
or as 0xPAGE:0xID. Times are CLOCK_MONOTONIC stamps taken as each report is
read, less the time just before the write was issued (usbhid writes are
synchronous, so a device can answer before the write returns; the write's
own duration is printed too). Exit 2 when the node cannot be opened
(absent, no permission, not hidraw), 3 for a bad argument.

Examples:
  certlab probe hid --device usb:1209:0001 --set led-off-hook=1 --listen-ms 500
  certlab probe hid --device /dev/hidraw0 --json")]
    Hid {
        /// usb:VID:PID[:SERIAL] (its telephony hidraw node) or /dev/hidrawN.
        #[arg(long, value_name = "SPEC")]
        device: String,
        /// Write the output report that sets USAGE to VALUE first.
        #[arg(long, value_name = "USAGE=VALUE")]
        set: Option<String>,
        /// How long to listen for input reports.
        #[arg(long, value_name = "MS", default_value_t = 2000)]
        listen_ms: u64,
        /// Print one JSON object: node, vid, pid, usages, wrote, write_ms, events [{usage, name, value, t_ms}], counters.
        #[arg(long)]
        json: bool,
    },
    /// Shake hands with a rig and synchronise clocks with it for a while:
    /// what it is, the round trips, the offset bound and the drift; with
    /// --acoustic, also its own speaker-to-microphone path.
    #[command(after_help = "\
With --acoustic the rig plays noise bursts through its reference speaker at
scheduled rig times and finds them in its own microphone stream: the delay
of the speaker-to-microphone path (electronics and air), each shot with its
expanded uncertainty (k = 2). Both ends are the rig's stamps, so no clock
sync enters the figure. Exit 0 when every shot was measured, 2 otherwise.

Examples:
  certlab probe rig --rig usb:1209:000e --seconds 10
  certlab probe rig --rig serial:/dev/ttyACM0 --json
  certlab probe rig --rig usb:1209:000e --acoustic --shots 20")]
    Rig {
        /// serial:PATH or usb:VID:PID[:SERIAL].
        #[arg(long, value_name = "SPEC")]
        rig: String,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Also measure the rig's speaker-to-microphone path.
        #[arg(long)]
        acoustic: bool,
        /// Bursts for --acoustic.
        #[arg(long, default_value_t = 10)]
        shots: u32,
        /// Microphone sample rate for --acoustic, Hz.
        #[arg(long, default_value_t = 48_000)]
        rate: u32,
        /// Print one JSON object (with `acoustic` {sample_rate, shots
        /// [{shot, at_us, delay_us, uncertainty_us, started_after_us, detail}],
        /// median_us, median_uncertainty_us, gap_blocks, overrun_blocks}).
        #[arg(long)]
        json: bool,
    },
    /// Stream frames from a V4L2 camera and print each with its kernel
    /// timestamp, the frame interval and the frames the driver dropped.
    #[command(after_help = "\
Asks for WIDTHxHEIGHT at FPS in a format whose luma certlab reads (YUYV, UYVY,
GREY, NV12); the driver may give another mode, which is printed. Exit 2 when
the node cannot be opened or streams nothing for 2 s.

Example:
  certlab probe camera --device /dev/video0 --frames 30")]
    Camera {
        /// usb:VID:PID[:SERIAL] (its V4L2 node) or /dev/videoN.
        #[arg(long, value_name = "SPEC")]
        device: String,
        #[arg(long, default_value_t = 30)]
        frames: u32,
        #[arg(long, default_value_t = 640)]
        width: u32,
        #[arg(long, default_value_t = 480)]
        height: u32,
        #[arg(long, default_value_t = 30.0)]
        fps: f64,
        #[arg(long)]
        json: bool,
    },
    /// Play noise bursts to one ALSA device at scheduled times and find them
    /// in another's capture: the path's latency, shot by shot, and its xruns
    /// (needs the `alsa` feature).
    #[command(after_help = "\
Times come from ALSA's monotonic timestamps on both streams, not from buffer
sizes. Each shot is a 50 ms noise burst, looked for from 20 ms before its
scheduled time (a timestamp error can make a path look early; it is shown,
not hidden) to 20 ms before the next shot's: latencies from -20 ms to
INTERVAL - 90 ms are found. With snd-aloop, play to hw:Loopback,0,0 and
capture hw:Loopback,1,0; its positions move once per kernel tick, so expect
a few ms of spread about zero. Without --capture the bursts are only
played: with --burst-out, find them in the recording with `certlab analyze
audio`. Devices are ALSA names or usb:VID:PID[:SERIAL]. Exit 0 when every
shot was found (played on time, without --capture), 2 when one was not or a
device failed.

Example:
  certlab probe audio --playback hw:Loopback,0,0 --capture hw:Loopback,1,0 --shots 20")]
    Audio {
        /// ALSA playback device name, or usb:VID:PID[:SERIAL] (its card's hw:N,0).
        #[arg(long, value_name = "NAME")]
        playback: String,
        /// ALSA capture device name, or usb:VID:PID[:SERIAL]. Without it the
        /// bursts are only played (and their xruns and lateness counted), for
        /// a path recorded elsewhere.
        #[arg(long, value_name = "NAME")]
        capture: Option<String>,
        /// Also write the burst as a mono 16-bit WAV, to find it in a
        /// recording made elsewhere (`certlab analyze audio --stimulus`).
        #[arg(long, value_name = "FILE.wav")]
        burst_out: Option<PathBuf>,
        #[arg(long, value_name = "HZ", default_value_t = 48000)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        shots: u32,
        #[arg(long, value_name = "MS", default_value_t = 300.0)]
        interval_ms: f64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct RunArgs {
    /// A profile file, or the id of a shipped profile (see `certlab profiles list`).
    profile: String,
    /// The device under test: sim[:CLASS], usb:VID:PID[:SERIAL] or serial:PATH.
    #[arg(long, value_name = "SPEC")]
    device: String,
    /// The rig: `sim` (the default for simulated devices), serial:PATH (e.g.
    /// serial:/dev/ttyACM0), or usb:VID:PID[:SERIAL] (its CDC-ACM port, found in sysfs).
    #[arg(long, value_name = "SPEC")]
    rig: Option<String>,
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
    /// Write NAME.key (Ed25519 PKCS#8 PEM, mode 0600) and NAME.pub
    /// (SubjectPublicKeyInfo PEM), and print the key id (SHA-256 of the raw
    /// public key). Existing files are never overwritten.
    Generate {
        #[arg(long, value_name = "NAME")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
#[command(after_help = "\
Times are RFC 3339, e.g. 2027-01-31T00:00:00Z. Each document is a DSSE
envelope signed by the authority key; labs keep them in a trust directory
(with authority.pub) and pass it to `certlab run --trust DIR`.

Example:
  certlab authority init --out authority
  certlab keys generate --out lab
  certlab authority accredit-lab --authority-key authority/authority.key \\
      --lab-id lab-1 --lab-pub lab.pub --program teams-usb-audio \\
      --not-after 2027-12-31T00:00:00Z --out trust/lab-1.json
  certlab authority admit-vendor --authority-key authority/authority.key \\
      --vendor-id acme --program teams-usb-audio \\
      --not-after 2027-12-31T00:00:00Z --out trust/acme.json")]
enum AuthorityCmd {
    /// Create the program authority's key pair: DIR/authority.key and DIR/authority.pub.
    Init {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Accredit a lab's key for programs over a period.
    AccreditLab {
        #[arg(long, value_name = "K")]
        authority_key: PathBuf,
        #[arg(long, value_name = "ID")]
        lab_id: String,
        /// The lab's public key (from `certlab keys generate`).
        #[arg(long, value_name = "P")]
        lab_pub: PathBuf,
        /// A program in scope (repeat for more).
        #[arg(long = "program", value_name = "PROG", required = true)]
        programs: Vec<String>,
        /// Default: now.
        #[arg(long, value_name = "T")]
        not_before: Option<String>,
        #[arg(long, value_name = "T")]
        not_after: String,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Admit a vendor to programs over a period.
    AdmitVendor {
        #[arg(long, value_name = "K")]
        authority_key: PathBuf,
        #[arg(long, value_name = "ID")]
        vendor_id: String,
        /// A program (repeat for more).
        #[arg(long = "program", value_name = "PROG", required = true)]
        programs: Vec<String>,
        /// Default: now.
        #[arg(long, value_name = "T")]
        not_before: Option<String>,
        #[arg(long, value_name = "T")]
        not_after: String,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Publish a revocation list: nothing a revoked key signs at or after its revocation time counts.
    Revoke {
        #[arg(long, value_name = "K")]
        authority_key: PathBuf,
        /// The key id to revoke (repeat, each with its own --revoked-at).
        #[arg(long = "key-id", value_name = "HEX")]
        key_ids: Vec<String>,
        #[arg(long = "revoked-at", value_name = "T")]
        revoked_at: Vec<String>,
        /// Higher than every earlier list's.
        #[arg(long, value_name = "N")]
        sequence: u64,
        /// When a newer list must have replaced this one.
        #[arg(long, value_name = "T")]
        expires: String,
        /// An earlier list whose revocations this one carries forward.
        #[arg(long, value_name = "FILE")]
        include: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
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
        /// Serve on this existing serial device instead of a new
        /// pseudo-terminal (e.g. a USB gadget's /dev/ttyGS0, so that the
        /// host reaches the rig through a real CDC-ACM port).
        #[arg(long, value_name = "PATH")]
        port: Option<String>,
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
        Command::Verify {
            report_dir,
            authority,
            trust: t,
            json,
        } => trust::verify(&report_dir, &authority, t.as_deref(), json),
        Command::Keys(KeysCmd::Generate { out }) => trust::keys_generate(&out),
        Command::Authority(a) => match a {
            AuthorityCmd::Init { out } => trust::authority_init(&out),
            AuthorityCmd::AccreditLab {
                authority_key,
                lab_id,
                lab_pub,
                programs,
                not_before,
                not_after,
                out,
            } => trust::accredit_lab(trust::Accredit {
                authority_key,
                lab_id,
                lab_pub,
                programs,
                not_before,
                not_after,
                out,
            }),
            AuthorityCmd::AdmitVendor {
                authority_key,
                vendor_id,
                programs,
                not_before,
                not_after,
                out,
            } => trust::admit_vendor(trust::Admit {
                authority_key,
                vendor_id,
                programs,
                not_before,
                not_after,
                out,
            }),
            AuthorityCmd::Revoke {
                authority_key,
                key_ids,
                revoked_at,
                sequence,
                expires,
                include,
                out,
            } => trust::revoke(trust::Revoke {
                authority_key,
                key_ids,
                revoked_at,
                sequence,
                expires,
                include,
                out,
            }),
        },
        Command::Probe(ProbeCmd::Hid {
            device,
            set,
            listen_ms,
            json,
        }) => probe::hid(&device, set.as_deref(), listen_ms, json),
        Command::Probe(ProbeCmd::Rig {
            rig,
            seconds,
            acoustic,
            shots,
            rate,
            json,
        }) => probe::rig(&rig, seconds, acoustic.then_some((shots, rate)), json),
        Command::Probe(ProbeCmd::Camera {
            device,
            frames,
            width,
            height,
            fps,
            json,
        }) => probe::camera(&device, frames, width, height, fps, json),
        Command::Probe(ProbeCmd::Audio {
            playback,
            capture,
            rate,
            shots,
            interval_ms,
            burst_out,
            json,
        }) => probe::audio(probe::AudioArgs {
            playback,
            capture,
            rate,
            shots,
            interval_ms,
            burst_out,
            json,
        }),
        Command::Sim(SimCmd::Rig { scenario, port }) => cmd_sim_rig(scenario, port),
    }
}

fn cmd_sim_rig(scenario: Option<PathBuf>, port: Option<String>) -> crate::Result<ExitStatus> {
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
    crate::station::sim::serve_rig(&scenario, port.as_deref(), stop, |port, sock| {
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
    let profile = profile::resolve(&a.profile)?;
    let signing = crate::trust::Signing::prepare(a.lab_key.as_deref(), a.trust.as_deref())?;
    let summary = run::execute(RunOptions {
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
