//! `certlab sim rig`: a simulated rig on a pseudo-terminal (or a given
//! serial device), served until a signal stops it.
//!
//! Owns its arguments, watching for SIGINT and SIGTERM, and printing the
//! port. The simulated rig itself is `station::sim`'s; this module must not
//! simulate anything.

use std::path::PathBuf;

use clap::Subcommand;

use crate::{Error, ExitStatus};

#[derive(Subcommand)]
pub enum SimCmd {
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

pub fn run(cmd: SimCmd) -> crate::Result<ExitStatus> {
    let SimCmd::Rig { scenario, port } = cmd;
    rig(scenario, port)
}

fn rig(scenario: Option<PathBuf>, port: Option<String>) -> crate::Result<ExitStatus> {
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
