//! Purpose: secret parameter values encrypted at rest. A job record keeps its secret parameters for as long as a
//! re-run of the job may need them, so the store must not hold them in plain text: each secret value is sealed
//! with ChaCha20-Poly1305 (ring) under a key derived with HKDF-SHA256 from `SECRETS_KEY`, or, when that is unset,
//! from the App's private key (not from `WEBHOOK_SECRET`: rotating the webhook secret keeps them readable).
//!
//! The key is process-wide ([`install`], called once when the app is built) because values are sealed where the
//! record is serialized. Records stored before sealing existed (a plain `value`) still load.

use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use super::ParamValue;

/// HKDF salt: names this use of the key material, so the same material used elsewhere yields another key.
const SALT: &[u8] = b"boomerang secret parameters at rest v1";

static KEY: RwLock<Option<Arc<LessSafeKey>>> = RwLock::new(None);

/// Why a sealed value cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// No key was installed (the app was not built).
    #[error("no key for secret parameters is installed")]
    NoKey,
    /// The text is not a sealed value, or was sealed under another key (`SECRETS_KEY` or the private key changed).
    #[error(
        "a secret parameter cannot be decrypted: it was stored under another key (SECRETS_KEY or PRIVATE_KEY changed)"
    )]
    Undecryptable,
}

/// The 32-byte key derived from `material` (`SECRETS_KEY`, or the private key's PEM text without whitespace).
fn derive(material: &[u8]) -> Option<LessSafeKey> {
    struct Len32;
    impl ring::hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, SALT).extract(material);
    let okm = prk.expand(&[b"chacha20-poly1305"], Len32).ok()?;
    let mut key = [0u8; 32];
    okm.fill(&mut key).ok()?;
    UnboundKey::new(&CHACHA20_POLY1305, &key)
        .ok()
        .map(LessSafeKey::new)
}

/// Installs the process's key: from `secrets_key` when set, else from `private_key_pem` (whitespace ignored, so a
/// re-wrapped PEM gives the same key). Returns false when no key could be derived.
pub fn install(secrets_key: Option<&str>, private_key_pem: &str) -> bool {
    let material: Vec<u8> = match secrets_key {
        Some(k) => k.as_bytes().to_vec(),
        None => private_key_pem
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .collect(),
    };
    let Some(key) = derive(&material) else {
        return false;
    };
    *KEY.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(key));
    true
}

fn key() -> Option<Arc<LessSafeKey>> {
    KEY.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Seals `value` (its JSON text) under the installed key: base64 of nonce and ciphertext. `None` without a key.
pub fn seal(value: &ParamValue) -> Option<String> {
    let key = key()?;
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).ok()?;
    let mut data = serde_json::to_vec(value).ok()?;
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
        .ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    Some(STANDARD.encode(out))
}

/// Opens a value [`seal`] made.
pub fn open(sealed: &str) -> Result<ParamValue, SealError> {
    open_with(&*key().ok_or(SealError::NoKey)?, sealed)
}

fn open_with(key: &LessSafeKey, sealed: &str) -> Result<ParamValue, SealError> {
    let bytes = STANDARD
        .decode(sealed)
        .map_err(|_| SealError::Undecryptable)?;
    if bytes.len() < NONCE_LEN {
        return Err(SealError::Undecryptable);
    }
    let (nonce, data) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Undecryptable)?;
    let mut data = data.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::empty(), &mut data)
        .map_err(|_| SealError::Undecryptable)?;
    serde_json::from_slice(plain).map_err(|_| SealError::Undecryptable)
}

#[cfg(test)]
mod tests {
    use super::super::{ParamValue, ResolvedParam, ResolvedParams};
    use crate::store::{BackendKind, Batch, Store};

    const PLAIN: &str = "plain-secret-value-4711";

    fn files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
        std::fs::read_dir(dir).expect("a directory").any(|e| {
            let path = e.expect("an entry").path();
            if path.is_dir() {
                files_contain(&path, needle)
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                bytes.windows(needle.len()).any(|w| w == needle)
            }
        })
    }

    /// A job's secret parameter is stored sealed: the store's files do not hold its plain text, it reads back, a
    /// record stored plain before sealing still loads, and another key cannot open it.
    #[tokio::test]
    async fn stored_bytes_do_not_hold_the_plain_value() {
        assert!(super::install(Some("k".repeat(32).as_str()), ""));
        let mut params = ResolvedParams::default();
        params.0.insert(
            "token".into(),
            ResolvedParam {
                value: ParamValue::String(PLAIN.into()),
                secret: true,
            },
        );
        params.0.insert(
            "who".into(),
            ResolvedParam {
                value: ParamValue::String("public-value".into()),
                secret: false,
            },
        );
        for kind in [BackendKind::Redb, BackendKind::Sled] {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open(dir.path(), kind).expect("open");
            let mut b = Batch::new();
            b.put_job("j1", &params);
            store.commit(b).await.expect("commit");
            drop(store);
            assert!(!files_contain(dir.path(), PLAIN.as_bytes()), "{kind:?}");
            let store = loop {
                match Store::open(dir.path(), kind) {
                    Ok(s) => break s,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                }
            };
            let back: ResolvedParams = store.job("j1").expect("read").expect("stored");
            assert_eq!(back, params);
        }
        let old: ResolvedParams =
            serde_json::from_str(r#"{"token": {"value": "old-plain-value", "secret": true}}"#)
                .expect("an old record loads");
        assert_eq!(old.secret_values(), ["old-plain-value"]);
        let sealed = super::seal(&ParamValue::String(PLAIN.into())).expect("sealed");
        assert!(!sealed.contains(PLAIN));
        assert!(super::open(&sealed).is_ok());
        let other = super::derive(b"another key, another key, another key").expect("a key");
        assert!(
            super::open_with(&other, &sealed).is_err(),
            "another key cannot open it"
        );
    }
}
