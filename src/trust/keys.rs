//! Ed25519 key files: PKCS#8 PEM private keys (mode 0600) and
//! SubjectPublicKeyInfo PEM public keys, and key ids.
//!
//! Owns creating, reading and naming keys. A private key's bytes never leave
//! this file except as a `SigningKey` (whose Debug hides the secret) or the
//! PEM written to a new 0600 file: no error message here quotes a key file's
//! content. It does not sign documents or decide anything about trust.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::{DecodePublicKey, EncodePublicKey};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// A key id: the SHA-256 of the raw 32-byte public key, lowercase hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// True for a well-formed key id (64 lowercase hex digits).
pub fn is_key_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A new key from the operating system's random source.
pub fn generate() -> Result<SigningKey> {
    use rand::TryRngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut seed).map_err(|e| {
        Error::Harness(format!(
            "the operating system gave no random bytes for a key: {e}"
        ))
    })?;
    let key = SigningKey::from_bytes(&seed);
    seed.iter_mut().for_each(|b| *b = 0);
    Ok(key)
}

/// The SubjectPublicKeyInfo PEM of a public key (what `openssl pkey -pubin` reads).
pub fn public_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF)
        .expect("an Ed25519 public key always encodes")
}

/// Parse a SubjectPublicKeyInfo PEM public key.
pub fn parse_public_pem(text: &str) -> std::result::Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| match e {
        ed25519_dalek::pkcs8::spki::Error::OidUnknown { .. } => {
            "it is not an Ed25519 public key".to_string()
        }
        _ => "it is not a SubjectPublicKeyInfo PEM Ed25519 public key (-----BEGIN PUBLIC KEY-----)"
            .to_string(),
    })
}

/// Read a public key file. Errors are bad input (exit 3).
pub fn read_public(path: &Path) -> Result<VerifyingKey> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::BadInput(format!(
            "cannot read the public key {}: {e}",
            path.display()
        ))
    })?;
    if text.contains("PRIVATE KEY") {
        return Err(Error::BadInput(format!(
            "{} holds a private key; give the public key (.pub) here",
            path.display()
        )));
    }
    parse_public_pem(&text).map_err(|why| Error::BadInput(format!("{}: {why}", path.display())))
}

/// Read a private key file. Errors are bad input (exit 3) and never quote
/// the file. A key readable by others than its owner is refused.
pub fn read_private(path: &Path) -> Result<SigningKey> {
    let text = Wiped(std::fs::read(path).map_err(|e| {
        Error::BadInput(format!(
            "cannot read the private key {}: {e}",
            path.display()
        ))
    })?);
    let key = match std::str::from_utf8(&text) {
        Ok(s) if s.contains("-----BEGIN PRIVATE KEY-----") => SigningKey::from_pkcs8_pem(s.trim())
            .map_err(|e| match e {
                ed25519_dalek::pkcs8::Error::KeyMalformed(_) => {
                    "its key does not match its public half".to_string()
                }
                _ => "it is not an Ed25519 PKCS#8 private key".to_string(),
            }),
        Ok(s) if s.contains("PUBLIC KEY") => Err("it holds a public key, not a private one".into()),
        _ => Err("it is not a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)".into()),
    };
    let key = key.map_err(|why: String| Error::BadInput(format!("{}: {why}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| {
                Error::BadInput(format!(
                    "cannot read the private key {}: {e}",
                    path.display()
                ))
            })?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::BadInput(format!(
                "the private key {} is readable by others (mode {mode:04o}); `chmod 600` it",
                path.display()
            )));
        }
    }
    Ok(key)
}

/// Bytes that are wiped when dropped (a private key file's content).
struct Wiped(Vec<u8>);

impl std::ops::Deref for Wiped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// The two files of a key pair: NAME.key and NAME.pub (a `.key` or `.pub`
/// ending of NAME is dropped).
pub fn pair_paths(name: &Path) -> (PathBuf, PathBuf) {
    let base = match name.extension().and_then(|e| e.to_str()) {
        Some("key") | Some("pub") => name.with_extension(""),
        _ => name.to_path_buf(),
    };
    let with = |ext: &str| {
        let mut s = base.clone().into_os_string();
        s.push(".");
        s.push(ext);
        PathBuf::from(s)
    };
    (with("key"), with("pub"))
}

/// Write a new key pair to NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub
/// (SubjectPublicKeyInfo PEM). Neither file may exist already; on failure
/// neither is left behind.
pub fn write_pair(name: &Path, key: &SigningKey) -> Result<(PathBuf, PathBuf)> {
    let (key_path, pub_path) = pair_paths(name);
    for p in [&key_path, &pub_path] {
        if p.symlink_metadata().is_ok() {
            return Err(Error::BadInput(format!(
                "{} already exists; keys are never overwritten (choose another name)",
                p.display()
            )));
        }
    }
    // PKCS#8 v1 (the private key alone), the form `openssl genpkey` writes.
    let bytes = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    let pem = bytes
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| Error::Harness(format!("cannot encode the private key: {e}")))?;
    write_new(&key_path, pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(
        &pub_path,
        public_pem(&key.verifying_key()).as_bytes(),
        0o644,
    ) {
        let _ = std::fs::remove_file(&key_path);
        return Err(e);
    }
    Ok((key_path, pub_path))
}

/// Write a file that must not exist yet, whole or not at all, with `mode`.
/// The temporary file is created 0600, so a private key is never readable
/// by others, not even for a moment.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let fail = |e: &dyn std::fmt::Display| {
        Error::BadInput(format!("cannot write {}: {e}", path.display()))
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(&e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".certlab-new-")
        .tempfile_in(&dir)
        .map_err(|e| fail(&e))?;
    tmp.write_all(bytes).map_err(|e| fail(&e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| fail(&e))?;
    }
    let _ = mode;
    tmp.as_file().sync_all().map_err(|e| fail(&e))?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            Error::BadInput(format!(
                "{} already exists; it is never overwritten",
                path.display()
            ))
        } else {
            fail(&e.error)
        }
    })?;
    Ok(())
}

/// Where the per-user signing key lives: `$XDG_CONFIG_HOME/certlab/user.key`,
/// else `$HOME/.config/certlab/user.key`.
pub fn user_key_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("certlab").join("user.key"))
}

/// The per-user key, created on first use (with user.pub next to it).
/// Returns the key and whether it was created now.
pub fn user_key() -> Result<(SigningKey, PathBuf, bool)> {
    let path = user_key_path().ok_or_else(|| {
        Error::Harness(
            "no config directory for the per-user signing key (set HOME or XDG_CONFIG_HOME, \
             or sign with --lab-key FILE)"
                .into(),
        )
    })?;
    if path.exists() {
        return Ok((read_private(&path)?, path, false));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Harness(format!("cannot create {}: {e}", dir.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    let key = generate()?;
    match write_pair(&path, &key) {
        Ok(_) => Ok((key, path, true)),
        // Another run created it at the same moment: use that one.
        Err(_) if path.exists() => Ok((read_private(&path)?, path, false)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_round_trips_and_key_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate().unwrap();
        let (k, p) = write_pair(&dir.path().join("lab"), &key).unwrap();
        assert_eq!(k.file_name().unwrap(), "lab.key");
        assert_eq!(p.file_name().unwrap(), "lab.pub");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&k).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let back = read_private(&k).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
        let public = read_public(&p).unwrap();
        assert_eq!(public, key.verifying_key());
        assert!(is_key_id(&key_id(&public)));
        // Never overwritten, and a failed attempt leaves the old files as they were.
        let other = generate().unwrap();
        let e = write_pair(&dir.path().join("lab.key"), &other).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        assert_eq!(read_private(&k).unwrap().to_bytes(), key.to_bytes());
    }

    #[test]
    fn bad_key_files_name_the_file_but_not_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.key");
        let junk = "-----BEGIN PRIVATE KEY-----\nU0VDUkVUU0VDUkVU\n-----END PRIVATE KEY-----\n";
        write_new(&p, junk.as_bytes(), 0o600).unwrap();
        let e = read_private(&p).unwrap_err().to_string();
        assert!(e.contains("x.key") && e.contains("not an Ed25519"), "{e}");
        assert!(!e.contains("U0VDUkVU"), "{e}");
        let q = dir.path().join("open.key");
        let key = generate().unwrap();
        write_pair(&q, &key).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&q, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = read_private(&q).unwrap_err().to_string();
            assert!(e.contains("readable by others"), "{e}");
        }
        let e = read_public(&q.with_extension("key"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("private key"), "{e}");
    }
}
