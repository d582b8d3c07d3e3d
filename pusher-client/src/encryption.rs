//! End-to-end encryption for `private-encrypted-` channels.
//!
//! Each encrypted channel has its own 32-byte key, derived from the app's master
//! key as `SHA256(channel_name || master_key)`. Event data is sealed with NaCl
//! `secretbox` (XSalsa20-Poly1305) under a fresh random 24-byte nonce and sent as
//! `{"nonce":"<base64>","ciphertext":"<base64>"}`; `pusher-js`'s encryption build
//! receives the channel key in the `shared_secret` of the channel authorization and
//! opens the box. The Pusher servers only ever see ciphertext.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_secretbox::aead::{Aead, AeadCore, KeyInit, OsRng};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Prefix of end-to-end encrypted channels.
pub const ENCRYPTED_CHANNEL_PREFIX: &str = "private-encrypted-";

/// Whether `channel` is an end-to-end encrypted channel.
///
/// ```
/// assert!(pusher_client::encryption::is_encrypted_channel("private-encrypted-chat"));
/// assert!(!pusher_client::encryption::is_encrypted_channel("private-chat"));
/// ```
#[must_use]
pub fn is_encrypted_channel(channel: &str) -> bool {
    channel.starts_with(ENCRYPTED_CHANNEL_PREFIX)
}

/// The app's 32-byte encryption master key. Never shown in `Debug` output.
///
/// ```
/// use pusher_client::encryption::MasterKey;
///
/// let key = MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")?;
/// let sealed = key.encrypt("private-encrypted-chat", r#"{"text":"hi"}"#);
/// assert_eq!(key.decrypt("private-encrypted-chat", &sealed)?, r#"{"text":"hi"}"#);
/// assert!(key.decrypt("private-encrypted-other", &sealed).is_err());
/// assert_eq!(format!("{key:?}"), "MasterKey([redacted])");
/// # Ok::<(), pusher_client::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed<'a> {
    nonce: &'a str,
    ciphertext: &'a str,
}

impl MasterKey {
    /// Parses a base64-encoded 32-byte key (for example the output of
    /// `openssl rand -base64 32`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidMasterKey`] if the text is not base64 or not 32 bytes long.
    pub fn from_base64(encoded: &str) -> Result<Self> {
        let bytes = BASE64
            .decode(encoded.trim())
            .map_err(|_| Error::InvalidMasterKey {
                reason: "not valid base64",
            })?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidMasterKey {
            reason: "must decode to exactly 32 bytes",
        })?;
        Ok(Self(bytes))
    }

    /// Wraps 32 raw key bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The per-channel key: `SHA256(channel || master_key)`.
    #[must_use]
    pub fn channel_key(&self, channel: &str) -> [u8; 32] {
        derive_channel_key(channel, &self.0)
    }

    /// The per-channel key, base64-encoded, as pusher-js expects it in the
    /// `shared_secret` field of a channel authorization.
    #[must_use]
    pub fn shared_secret(&self, channel: &str) -> String {
        BASE64.encode(self.channel_key(channel))
    }

    /// Seals `plaintext` for `channel` and returns the JSON text that is sent as
    /// the event's data: `{"nonce":"...","ciphertext":"..."}`.
    #[must_use]
    pub fn encrypt(&self, channel: &str, plaintext: &str) -> String {
        let key = self.channel_key(channel);
        let cipher = XSalsa20Poly1305::new(Key::from_slice(&key));
        let nonce = XSalsa20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .expect("XSalsa20-Poly1305 encryption of an in-memory buffer cannot fail");
        let nonce = BASE64.encode(nonce);
        let ciphertext = BASE64.encode(ciphertext);
        serde_json::to_string(&Sealed {
            nonce: &nonce,
            ciphertext: &ciphertext,
        })
        .expect("two strings always serialize")
    }

    /// Opens data sealed for `channel` (by [`encrypt`](Self::encrypt), another
    /// server library or a pusher-js client event) and returns the plaintext.
    ///
    /// # Errors
    ///
    /// [`Error::Decrypt`] if the data is not `{"nonce","ciphertext"}` JSON, the
    /// nonce is not 24 bytes, or authentication fails (wrong key or tampering).
    pub fn decrypt(&self, channel: &str, data: &str) -> Result<String> {
        decrypt_with_key(channel, &self.channel_key(channel), data)
    }
}

fn derive_channel_key(channel: &str, master: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(channel.as_bytes());
    hasher.update(master);
    hasher.finalize().into()
}

fn decrypt_with_key(channel: &str, key: &[u8; 32], data: &str) -> Result<String> {
    let fail = |reason| Error::Decrypt {
        channel: channel.to_owned(),
        reason,
    };
    let sealed: Sealed<'_> = serde_json::from_str(data)
        .map_err(|_| fail("data is not {\"nonce\",\"ciphertext\"} JSON"))?;
    let nonce = BASE64
        .decode(sealed.nonce)
        .map_err(|_| fail("nonce is not base64"))?;
    if nonce.len() != 24 {
        return Err(fail("nonce is not 24 bytes"));
    }
    let ciphertext = BASE64
        .decode(sealed.ciphertext)
        .map_err(|_| fail("ciphertext is not base64"))?;
    let cipher = XSalsa20Poly1305::new(Key::from_slice(key));
    let plaintext = cipher
        .decrypt(Nonce::from_slice(&nonce), ciphertext.as_slice())
        .map_err(|_| fail("authentication failed: wrong key or tampered data"))?;
    String::from_utf8(plaintext).map_err(|_| fail("plaintext is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from the Go server library's tests: a 33-byte "master key"
    // (its raw bytes), the derived key, and a box sealed by that library.
    const GO_MASTER: &[u8] = b"This is a string that is 32 chars";
    const GO_CHANNEL: &str = "private-encrypted-bla";

    #[test]
    fn published_key_derivation() {
        assert_eq!(
            hex::encode(derive_channel_key(GO_CHANNEL, GO_MASTER)),
            "004831f99d2a4e86723e893caded3a2897deeddbed9514fe9497dcddc52bd50b"
        );
    }

    #[test]
    fn opens_a_box_sealed_by_another_library() {
        let key = derive_channel_key(GO_CHANNEL, GO_MASTER);
        let data = r#"{"nonce":"sjklahvpWWQgAjTx5FfYHCCxd2AmaL9T","ciphertext":"zoDEe8dA3nDXKsybAWce/hXGW4szJw=="}"#;
        assert_eq!(decrypt_with_key(GO_CHANNEL, &key, data).unwrap(), "Hello!");
        let wrong = derive_channel_key(GO_CHANNEL, b"This is an invalid key 32 chars!!");
        assert!(matches!(
            decrypt_with_key(GO_CHANNEL, &wrong, data),
            Err(Error::Decrypt { .. })
        ));
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let key = MasterKey::from_bytes([7; 32]);
        let a = key.encrypt("private-encrypted-x", "{\"n\":1}");
        let b = key.encrypt("private-encrypted-x", "{\"n\":1}");
        assert_ne!(a, b, "every message gets a fresh nonce");
        assert_eq!(key.decrypt("private-encrypted-x", &a).unwrap(), "{\"n\":1}");
        let parsed: serde_json::Value = serde_json::from_str(&a).unwrap();
        assert_eq!(
            BASE64
                .decode(parsed["nonce"].as_str().unwrap())
                .unwrap()
                .len(),
            24
        );
    }

    #[test]
    fn master_key_parsing() {
        assert!(MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").is_ok());
        assert!(matches!(
            MasterKey::from_base64("not base64!"),
            Err(Error::InvalidMasterKey { .. })
        ));
        assert!(matches!(
            MasterKey::from_base64("AAECAwQF"),
            Err(Error::InvalidMasterKey { .. })
        ));
    }

    #[test]
    fn rejects_garbage() {
        let key = MasterKey::from_bytes([1; 32]);
        for bad in [
            "",
            "{}",
            "{\"nonce\":\"AA==\",\"ciphertext\":\"AA==\"}",
            "null",
        ] {
            assert!(key.decrypt("private-encrypted-x", bad).is_err(), "{bad}");
        }
    }
}
