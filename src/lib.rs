//! certlab: a certification harness for conferencing hardware.
//!
//! The crate is split the way a test lab thinks about a certification run
//! (see `SPEC.md` in the shared folder and `docs/architecture.md`):
//!
//! - [`profile`]: what to test and the limits (declarative, versioned TOML).
//! - [`station`]: the hardware behind small traits (rig, audio path, camera,
//!   HID, control port), with the simulated station as an equal implementation.
//! - [`sampling`]: the acquisition thread and the lock-free ring that carry
//!   sample blocks from a source to the analysis.
//! - [`measure`]: turns samples into shots and statistics. It never judges.
//! - [`run`]: orchestrates the steps of a profile against a station.
//! - [`report`]: the record: report.json, measurements.csv, raw captures.
//! - [`trust`]: keys, the authority's documents, the OFFICIAL/UNOFFICIAL
//!   marking, signed reports and their verification.
//! - [`cli`]: the `certlab` command line.
//! - [`statistic`], [`dsp`], [`files`], [`timestamp`]: leaves the others
//!   share (statistic names and values; I0, sinc, Kaiser and line fits;
//!   atomic file writing; RFC 3339 text of times).
//! - [`usb`]: USB descriptors, HID report descriptors and sysfs trees, parsed
//!   (never judged).

pub mod cli;
pub mod dsp;
pub mod error;
pub mod files;
pub mod measure;
pub mod profile;
pub mod report;
pub mod run;
pub mod sampling;
pub mod seeded;
pub mod station;
pub mod statistic;
pub mod time;
pub mod timestamp;
pub mod trust;
pub mod usb;

pub use error::{Error, ExitStatus, Result};
