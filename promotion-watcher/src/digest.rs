//! SHA-256 of files, streamed, and the `.sha256` sidecars beside them.
//! Blocking: call from `spawn_blocking`.

use crate::error::PromotionError;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

/// Read buffer size: large enough that hashing is bound by the disk.
const CHUNK: usize = 64 * 1024;

/// The lowercase hex SHA-256 of everything `reader` yields.
pub(crate) fn sha256_of(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hex::encode(hasher.finalize())),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The digest of the file at `path`, or `None` when there is no such file.
pub(crate) fn sha256_file(path: &Path) -> Result<Option<String>, PromotionError> {
    match File::open(path) {
        Ok(file) => sha256_of(file).map(Some).map_err(PromotionError::io("read", path)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PromotionError::io("open", path)(e)),
    }
}

/// The sidecar of `path`: the same name with `.sha256` appended.
pub(crate) fn sidecar_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// Checks `digest` against the sidecar of `path` when there is one. The
/// sidecar holds a hex digest, optionally followed by whitespace and a
/// file name (the `sha256sum` format).
pub(crate) fn check_sidecar(path: &Path, digest: &str) -> Result<(), PromotionError> {
    let sidecar = sidecar_of(path);
    let text = match std::fs::read(&sidecar) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(PromotionError::io("read", &sidecar)(e)),
    };
    let text = String::from_utf8_lossy(&text);
    let expected = text.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PromotionError::BadSidecar(sidecar));
    }
    if expected != digest {
        return Err(PromotionError::SidecarMismatch {
            path: path.to_owned(),
            sidecar,
            expected,
            actual: digest.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn hashes_stream_across_chunks() {
        assert_eq!(sha256_of(&b"hello"[..]).unwrap(), HELLO);
        let big = vec![7u8; CHUNK * 2 + 3];
        assert_eq!(sha256_of(&big[..]).unwrap(), hex::encode(Sha256::digest(&big)));
    }

    #[test]
    fn sidecars_in_sha256sum_format_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.rpm");
        std::fs::write(&file, "hello").unwrap();
        assert!(check_sidecar(&file, HELLO).is_ok(), "no sidecar, nothing to check");
        std::fs::write(sidecar_of(&file), format!("{}  a.rpm\n", HELLO.to_uppercase())).unwrap();
        assert!(check_sidecar(&file, HELLO).is_ok());
        let other = "0".repeat(64);
        assert!(matches!(check_sidecar(&file, &other), Err(PromotionError::SidecarMismatch { .. })));
        std::fs::write(sidecar_of(&file), "not a digest").unwrap();
        assert!(matches!(check_sidecar(&file, HELLO), Err(PromotionError::BadSidecar(_))));
    }
}
