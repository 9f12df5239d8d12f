//! Web Push payload encryption: RFC 8291 over the `aes128gcm` content coding of RFC 8188, one
//! record. Only the browser that subscribed can read a notification; the push service cannot.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::PublicKey;
use sha2::Sha256;

/// The record size announced in the header: one record holds the whole payload (RFC 8291 §4
/// limits a push message to 4096 bytes of ciphertext).
const RECORD_SIZE: u32 = 4096;
/// Header (86) + tag (16) + delimiter (1) leave this much for the payload in one 4096-byte push.
pub const MAX_PLAINTEXT: usize = 3993;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncryptError {
    #[error("the subscription's p256dh is not a P-256 public key")]
    BadPublicKey,
    #[error("the subscription's auth secret must be 16 bytes")]
    BadAuth,
    #[error("payload of {0} bytes is larger than one push message")]
    TooLarge(usize),
    #[error("no randomness from the OS")]
    Random,
}

/// Checks a subscription's keys as `encrypt` will use them (at subscribe time, so a bad key is a
/// 422 then, not a silent failure later).
pub fn check_keys(p256dh: &[u8], auth: &[u8]) -> Result<(), EncryptError> {
    PublicKey::from_sec1_bytes(p256dh).map_err(|_| EncryptError::BadPublicKey)?;
    if auth.len() != 16 {
        return Err(EncryptError::BadAuth);
    }
    Ok(())
}

/// The body of a push: `salt ‖ rs ‖ idlen ‖ keyid(as_public) ‖ ciphertext`.
pub fn encrypt(p256dh: &[u8], auth: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EncryptError> {
    check_keys(p256dh, auth)?;
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(EncryptError::TooLarge(plaintext.len()));
    }
    let ua_public = PublicKey::from_sec1_bytes(p256dh).map_err(|_| EncryptError::BadPublicKey)?;
    let as_secret = super::vapid::random_secret_key().map_err(|_| EncryptError::Random)?;
    let as_public = as_secret.public_key().to_encoded_point(false);
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| EncryptError::Random)?;

    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua_public.as_affine());
    let ua_point = ua_public.to_encoded_point(false);
    let (cek, nonce) = derive(
        shared.raw_secret_bytes(),
        auth,
        ua_point.as_bytes(),
        as_public.as_bytes(),
        &salt,
    );

    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(2); // the last (and only) record's delimiter, no padding
    let cipher = Aes128Gcm::new(&cek.into());
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), record.as_slice())
        .map_err(|_| EncryptError::TooLarge(plaintext.len()))?;

    let mut body = Vec::with_capacity(86 + sealed.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public.as_bytes().len() as u8);
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// The content-encryption key and nonce (RFC 8291 §3.4, RFC 8188 §2.2).
fn derive(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> ([u8; 16], [u8; 12]) {
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    // Expanding to 32/16/12 bytes with SHA-256 cannot exceed HKDF's limit of 255 blocks.
    let _ = Hkdf::<Sha256>::new(Some(auth), ecdh_secret).expand(&key_info, &mut ikm);
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    let _ = prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek);
    let _ = prk.expand(b"Content-Encoding: nonce\0", &mut nonce);
    (cek, nonce)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;

    /// RFC 8291 Appendix A: the published keys, salt and message give the published key and nonce.
    #[test]
    fn derivation_matches_the_rfc_8291_example() {
        let d = |s: &str| B64.decode(s).unwrap();
        let auth = d("BTBZMqHH6r4Tts7J_aSIgg");
        let ua_public = d("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4");
        let as_public = d("BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8");
        let as_private = d("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw");
        let salt = d("DGv6ra1nlYgDCS1FRnbzlw");
        let ua = PublicKey::from_sec1_bytes(&ua_public).unwrap();
        let secret = p256::SecretKey::from_slice(&as_private).unwrap();
        let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), ua.as_affine());
        let (cek, nonce) = derive(
            shared.raw_secret_bytes(),
            &auth,
            &ua_public,
            &as_public,
            &salt,
        );
        assert_eq!(B64.encode(cek), "oIhVW04MRdy2XN9CiKLxTg");
        assert_eq!(B64.encode(nonce), "4h_95klXJ5E_qnoN");
    }
}
