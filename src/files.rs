//! Files written whole or not at all.
//!
//! Owns atomic file writing (a temporary file in the same directory, synced,
//! then renamed into place), which `report` and `trust` both use. It knows
//! nothing of what the files hold: it must not import `report`, `trust` or any
//! other module of the crate, so that both can depend on it without a cycle.

use std::io::Write;
use std::path::Path;

/// A file written whole or not at all: a temporary file renamed into place.
pub struct AtomicFile;

impl AtomicFile {
    /// Write `bytes` to `path` (creating its directory), so that a crash
    /// leaves either the old file or the new one, never half of one.
    pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_replaces_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c.txt");
        AtomicFile::write(&path, b"first").unwrap();
        AtomicFile::write(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // Only the file itself is left: no temporary file beside it.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("c.txt")]);
    }
}
