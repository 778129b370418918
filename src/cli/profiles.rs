//! `certlab profiles list / show / check`: the shipped profiles, one
//! profile's steps and limits, and every problem of profile files.
//!
//! Owns the arguments and the printing. Parsing, validating and resolving
//! profiles is `profile`'s; this module must not judge or measure.

use std::path::PathBuf;

use clap::Subcommand;

use crate::profile::{self, Profile};
use crate::{Error, ExitStatus};

#[derive(Subcommand)]
pub enum ProfilesCmd {
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

pub fn run(p: ProfilesCmd) -> crate::Result<ExitStatus> {
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
