//! The server's VAPID identity (RFC 8292): one P-256 key pair, made at first start and kept in
//! the data dir (0600, like everything there), so that browsers' subscriptions — which are bound
//! to this public key — stay valid across restarts. Each push carries a short ES256 JWT signed
//! with it: `Authorization: vapid t=<jwt>, k=<public key>`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::SecretKey;

/// The key file's name: starts with `claude-manager` so the data dir's privacy check covers it.
pub const KEY_FILE: &str = "claude-manager-vapid.key";

/// A push service may refuse a JWT that expires more than 24 h ahead (RFC 8292 §2); 12 h
/// leaves room for clock skew.
const JWT_LIFETIME_SECS: u64 = 12 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum VapidError {
    #[error("VAPID key {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("VAPID key {path} is not a P-256 private key (base64url of 32 bytes); move it away to make a new one (browsers must then subscribe again)")]
    Invalid { path: String },
}

/// The server's signing key and its public half, encoded once.
pub struct VapidKey {
    signing: SigningKey,
    /// The uncompressed public point (65 bytes), base64url: `GET /api/push/key`, `k=`.
    public_b64: String,
}

impl VapidKey {
    /// Reads the key from `data_dir`, or makes and saves a new one there. Blocking (files).
    pub fn load_or_create(data_dir: &Path) -> Result<VapidKey, VapidError> {
        let path = data_dir.join(KEY_FILE);
        let io = |source| VapidError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_secret_b64(text.trim()).ok_or_else(|| VapidError::Invalid {
                path: path.display().to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = random_secret_key().map_err(io)?;
                let encoded = B64.encode(secret.to_bytes());
                write_private_new(&path, format!("{encoded}\n").as_bytes()).map_err(io)?;
                Ok(Self::from_secret(secret))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn from_secret_b64(text: &str) -> Option<VapidKey> {
        let bytes = B64.decode(text).ok()?;
        SecretKey::from_slice(&bytes).ok().map(Self::from_secret)
    }

    fn from_secret(secret: SecretKey) -> VapidKey {
        let signing = SigningKey::from(secret);
        let point = signing.verifying_key().to_encoded_point(false);
        VapidKey {
            public_b64: B64.encode(point.as_bytes()),
            signing,
        }
    }

    pub fn public_b64(&self) -> &str {
        &self.public_b64
    }

    /// The `Authorization` header value for a push to `endpoint_origin` (`https://host[:port]`).
    pub fn authorization(&self, endpoint_origin: &str, subject: &str, now_unix: u64) -> String {
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": endpoint_origin,
            "exp": now_unix + JWT_LIFETIME_SECS,
            "sub": subject,
        });
        let claims = B64.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let signature: Signature = self.signing.sign(signing_input.as_bytes());
        let jwt = format!("{signing_input}.{}", B64.encode(signature.to_bytes()));
        format!("vapid t={jwt}, k={}", self.public_b64)
    }
}

/// A new P-256 private key from the OS's randomness (a scalar out of range is drawn again).
pub(super) fn random_secret_key() -> std::io::Result<SecretKey> {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            return Ok(key);
        }
    }
}

/// Creates `path` with mode 0600 (never replacing an existing file) and writes `bytes`.
fn write_private_new(path: &PathBuf, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let first = VapidKey::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let again = VapidKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.public_b64(), again.public_b64());
        assert_eq!(B64.decode(first.public_b64()).unwrap().len(), 65);
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        assert!(matches!(
            VapidKey::load_or_create(dir.path()),
            Err(VapidError::Invalid { .. })
        ));
    }
}
