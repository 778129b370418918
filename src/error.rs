//! Error kinds and the exit codes of the command line.
//!
//! Owns the mapping from a failure to an exit code (SPEC "Command line"):
//! 0 pass or valid, 1 a limit failed, 2 the run could not finish,
//! 3 bad usage or bad input file. It does not print anything itself.

use std::path::PathBuf;

/// The process exit status of a `certlab` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Pass, or a valid result.
    Ok = 0,
    /// A limit failed, or a report is invalid.
    Failed = 1,
    /// The run could not finish: device, rig or harness error, or aborted.
    Incomplete = 2,
    /// Bad usage or a bad input file.
    BadInput = 3,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Errors that end a command. Each variant knows its exit status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage or an unusable input file (exit 3).
    #[error("{0}")]
    BadInput(String),
    /// A profile with problems; each line is `file:line:column: message` (exit 3).
    #[error("{} has {} problem(s):\n{}", .path.display(), .diagnostics.len(), .diagnostics.join("\n"))]
    Profile {
        path: PathBuf,
        diagnostics: Vec<String>,
    },
    /// A device, rig or station problem that stops a command (exit 2).
    #[error("{0}")]
    Device(String),
    /// A measurement that could not give a number, e.g. no stimulus found (exit 2).
    #[error("{0}")]
    Measurement(String),
    /// A capability a later release provides (exit 2).
    #[error("{0}: not implemented yet")]
    NotImplemented(String),
    /// Any other failure of the harness itself (exit 2).
    #[error("{0}")]
    Harness(String),
}

impl Error {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::BadInput(_) | Error::Profile { .. } => ExitStatus::BadInput,
            Error::Device(_)
            | Error::Measurement(_)
            | Error::NotImplemented(_)
            | Error::Harness(_) => ExitStatus::Incomplete,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
