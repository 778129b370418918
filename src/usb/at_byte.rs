//! A message about a place in descriptor bytes: the byte offset it
//! concerns and what is wrong there, shown as "at byte N: message".
//!
//! Owns that one type, which the descriptor walk's warnings and the HID
//! parser's warnings and errors all are, and its text. It must not know
//! what the bytes hold or import another module of the crate.

use std::fmt;

use serde::Serialize;

/// A byte offset into the parsed buffer and what happened there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtByte {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for AtByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_at(f, self.offset, &self.message)
    }
}

impl std::error::Error for AtByte {}

/// "at byte N: message", for types that carry more than an [`AtByte`].
pub fn write_at(f: &mut fmt::Formatter<'_>, offset: usize, message: &str) -> fmt::Result {
    write!(f, "at byte {offset}: {message}")
}
