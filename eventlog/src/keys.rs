//! The instance key: an ed25519 seed in a file, shared by the event log
//! (event signatures) and the binary (token minting), and its JWK form.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::{json, Value};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};

use crate::chain::key_id_for;

/// Errors of loading or decoding keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file can be read by group or others; refuse to use a leaked key.
    #[error("key file {path} has mode {mode:o}: it must not be accessible by group or others (chmod 600 it)")]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file does not hold a 32-byte hex seed.
    #[error("key file {path} does not hold a hex-encoded 32-byte ed25519 seed")]
    Malformed {
        /// The key file.
        path: PathBuf,
    },
    /// A JWK is not an Ed25519 public key.
    #[error("invalid JWK: {0}")]
    InvalidJwk(&'static str),
    /// Getting randomness from the OS failed.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

/// Loads the signing key at `path`, creating it (mode 0600) when missing.
///
/// The file holds the 32-byte seed, hex-encoded. An existing file readable
/// by group or others is refused rather than silently fixed: the key may
/// already have leaked, and the operator has to decide.
pub fn load_or_create_key(path: &Path) -> Result<SigningKey, KeyError> {
    let io = |source| KeyError::Io { path: path.to_path_buf(), source };
    match load_key(path) {
        Err(KeyError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
        other => return other,
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    // create_new: two processes starting at once must not overwrite each other's key.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // The mode is set at creation so the seed is never readable by others, not even briefly.
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return load_key(path),
        Err(e) => return Err(io(e)),
    };
    file.write_all(format!("{}\n", hex::encode(seed)).as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    tracing::info!(path = %path.display(), "created a new instance signing key");
    Ok(SigningKey::from_bytes(&seed))
}

/// Loads the signing key at `path` (the format [`load_or_create_key`]
/// writes), refusing a file readable by group or others.
pub fn load_key(path: &Path) -> Result<SigningKey, KeyError> {
    let io = |source| KeyError::Io { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::InsecurePermissions { path: path.to_path_buf(), mode });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(io)?;
    let malformed = || KeyError::Malformed { path: path.to_path_buf() };
    let bytes = hex::decode(text.trim()).map_err(|_| malformed())?;
    let seed: [u8; 32] = bytes.try_into().map_err(|_| malformed())?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The public key as a JWK (RFC 8037), with `kid` = [`key_id_for`].
pub fn public_jwk(key: &VerifyingKey) -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
        "kid": key_id_for(key),
        "x": URL_SAFE_NO_PAD.encode(key.as_bytes()),
    })
}

/// Decodes an Ed25519 public JWK into its key id and key. A `kid` that does
/// not match the key is refused: key ids are derived, never chosen.
pub fn verifying_key_from_jwk(jwk: &Value) -> Result<(String, VerifyingKey), KeyError> {
    let field = |name| jwk.get(name).and_then(Value::as_str);
    if field("kty") != Some("OKP") {
        return Err(KeyError::InvalidJwk("kty must be OKP"));
    }
    if field("crv") != Some("Ed25519") {
        return Err(KeyError::InvalidJwk("crv must be Ed25519"));
    }
    let x = field("x").ok_or(KeyError::InvalidJwk("missing x"))?;
    let bytes = URL_SAFE_NO_PAD.decode(x).map_err(|_| KeyError::InvalidJwk("x is not base64url"))?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::InvalidJwk("x is not 32 bytes"))?;
    let key = VerifyingKey::from_bytes(&arr).map_err(|_| KeyError::InvalidJwk("x is not an Ed25519 point"))?;
    let kid = key_id_for(&key);
    match field("kid") {
        Some(given) if given != kid => Err(KeyError::InvalidJwk("kid does not match the key")),
        _ => Ok((kid, key)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn key_file_is_created_0600_and_reloaded() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/instance.key");
        let k1 = load_or_create_key(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let k2 = load_or_create_key(&path).unwrap();
        assert_eq!(k1.to_bytes(), k2.to_bytes());
    }

    #[cfg(unix)]
    #[test]
    fn key_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("instance.key");
        load_or_create_key(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_key(&path).unwrap_err();
        assert!(matches!(err, KeyError::InsecurePermissions { mode: 0o644, .. }), "{err}");
    }

    #[test]
    fn jwk_round_trips_and_checks_kid() {
        let key = SigningKey::from_bytes(&[3u8; 32]).verifying_key();
        let jwk = public_jwk(&key);
        let (kid, back) = verifying_key_from_jwk(&jwk).unwrap();
        assert_eq!(back, key);
        assert_eq!(kid, key_id_for(&key));
        let mut bad = jwk.clone();
        bad["kid"] = json!("0000000000000000");
        assert!(verifying_key_from_jwk(&bad).is_err());
    }
}
