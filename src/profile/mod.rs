//! Test profiles: what to test and the limits, as declarative versioned TOML.
//!
//! Owns the profile schema, its validation (every problem reported with
//! `file:line:column`), the shipped profiles under `profiles/`, and judging
//! statistics against limits (`judge`). It does not measure anything and does
//! not touch hardware: a measurement hands it statistics, it hands back verdicts.
//!
//! The parts, each depending only on those listed before it: `suggest`
//! (did-you-mean hints), `requirement` (the USB requirement vocabulary),
//! `model` (the types), `spanned` (the spanned-TOML walker: positions and
//! value access), `parse` (the schema: what each key means), `judge`; this
//! file loads profile files and finds the shipped ones.

pub mod judge;
mod model;
mod parse;
pub mod requirement;
pub(crate) mod spanned;
mod suggest;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use model::{
    DeviceClass, Limit, Params, Profile, Quantity, SerialCommand, Step, StepKind, StimulusKind,
    Unit,
};
pub use parse::{kind_keys, parse_profile, FORMAT};
pub use requirement::Requirement;
pub use spanned::Diagnostic;

impl Profile {
    /// Load and validate a profile file. Every problem is reported.
    pub fn load(path: &Path) -> crate::Result<Profile> {
        let bytes = std::fs::read(path).map_err(|e| {
            crate::Error::BadInput(format!("cannot read profile {}: {e}", path.display()))
        })?;
        Profile::from_bytes(&bytes, path)
    }

    /// Validate a profile from its bytes; `path` is used in messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> crate::Result<Profile> {
        let text = std::str::from_utf8(bytes).map_err(|e| crate::Error::Profile {
            path: path.to_path_buf(),
            diagnostics: vec![format!(
                "{}:1:1: the file is not UTF-8 text ({e})",
                path.display()
            )],
        })?;
        match parse_profile(text) {
            Ok(mut p) => {
                p.sha256 = hex::encode(Sha256::digest(bytes));
                p.source = path.to_path_buf();
                Ok(p)
            }
            Err(diags) => Err(crate::Error::Profile {
                path: path.to_path_buf(),
                diagnostics: diags.iter().map(|d| d.render(path, text)).collect(),
            }),
        }
    }
}

/// The directory of shipped profiles: `CERTLAB_PROFILES`, else `profiles/`
/// beside the working directory, else the one in the source tree.
pub fn shipped_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CERTLAB_PROFILES") {
        return PathBuf::from(d);
    }
    let local = PathBuf::from("profiles");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles")
}

/// Every shipped profile, sorted by id. Files that fail to load are returned
/// as errors beside the good ones.
pub fn shipped() -> Vec<crate::Result<Profile>> {
    let dir = shipped_dir();
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    paths.sort();
    paths.iter().map(|p| Profile::load(p)).collect()
}

/// Resolve `PROFILE` on the command line: a path to a file, or a shipped id.
pub fn resolve(arg: &str) -> crate::Result<Profile> {
    let p = Path::new(arg);
    if p.exists() {
        return Profile::load(p);
    }
    let candidate = shipped_dir().join(format!("{arg}.toml"));
    if candidate.exists() {
        return Profile::load(&candidate);
    }
    Err(crate::Error::BadInput(format!(
        "no profile file or shipped profile named {arg:?} (see `certlab profiles list`)"
    )))
}
