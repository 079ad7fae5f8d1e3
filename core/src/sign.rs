//! Ed25519 seals: the server signs the head of a run's record chain when it seals the run,
//! and anyone checks the seal against a public key they trust.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::record::canonical_json;

/// The version string of seals.
pub const SEAL_SPEC: &str = "pipeproof-seal-v1";

/// A signed statement that a run ended with `steps` records whose last hash is `head`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seal {
    /// `pipeproof-seal-v1`.
    pub spec: String,
    /// The run's id.
    pub run_id: String,
    /// The number of step records.
    pub steps: u64,
    /// The hash of the last record (all zeros for a run with no step).
    pub head: Hash,
    /// When the run was sealed (RFC 3339, UTC).
    pub sealed_at: String,
    /// The signer's Ed25519 public key, hex.
    pub public_key: String,
    /// The Ed25519 signature of [`seal_message`], hex.
    pub signature: String,
}

/// The signed bytes: canonical JSON of `{spec, run_id, steps, head, sealed_at}`.
pub fn seal_message(run_id: &str, steps: u64, head: &Hash, sealed_at: &str) -> Vec<u8> {
    canonical_json(&serde_json::json!({
        "spec": SEAL_SPEC,
        "run_id": run_id,
        "steps": steps,
        "head": head,
        "sealed_at": sealed_at,
    }))
}

/// An Ed25519 key pair.
pub struct KeyPair(SigningKey);

impl KeyPair {
    /// A new random key pair.
    pub fn generate() -> Result<KeyPair> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| Error::InvalidConfig(format!("no random source for a key: {e}")))?;
        Ok(KeyPair::from_bytes(&seed))
    }

    /// The key pair of a 32-byte secret.
    pub fn from_bytes(secret: &[u8; 32]) -> KeyPair {
        KeyPair(SigningKey::from_bytes(secret))
    }

    /// The 32-byte secret.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key, hex.
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().to_bytes())
    }

    /// Seals a run.
    pub fn seal(&self, run_id: &str, steps: u64, head: Hash, sealed_at: &str) -> Seal {
        let signature = self.0.sign(&seal_message(run_id, steps, &head, sealed_at));
        Seal {
            spec: SEAL_SPEC.into(),
            run_id: run_id.into(),
            steps,
            head,
            sealed_at: sealed_at.into(),
            public_key: self.public_hex(),
            signature: hex::encode(signature.to_bytes()),
        }
    }
}

/// Parses a hex Ed25519 public key.
pub fn parse_public_key(hex_key: &str) -> Result<VerifyingKey> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_key.trim(), &mut bytes).map_err(|_| {
        Error::Verification(format!(
            "`{}` is not an Ed25519 public key: expected 64 hex digits",
            hex_key.trim()
        ))
    })?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|e| Error::Verification(format!("invalid Ed25519 public key: {e}")))
}

/// Checks a seal's signature, and that its key is the trusted one when one is given.
pub fn verify_seal(seal: &Seal, trusted_public_hex: Option<&str>) -> Result<()> {
    if seal.spec != SEAL_SPEC {
        return Err(Error::Verification(format!(
            "unknown seal version `{}`",
            seal.spec
        )));
    }
    if let Some(trusted) = trusted_public_hex {
        let trusted = parse_public_key(trusted)?;
        if trusted != parse_public_key(&seal.public_key)? {
            return Err(Error::Verification(format!(
                "the seal was signed by key {}, not by the trusted key {}",
                seal.public_key,
                hex::encode(trusted.to_bytes())
            )));
        }
    }
    let key = parse_public_key(&seal.public_key)?;
    let mut sig = [0u8; 64];
    hex::decode_to_slice(&seal.signature, &mut sig)
        .map_err(|_| Error::Verification("the signature is not 128 hex digits".into()))?;
    key.verify_strict(
        &seal_message(&seal.run_id, seal.steps, &seal.head, &seal.sealed_at),
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| Error::Verification("the seal's signature does not match its content".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn seal_round_trip_and_tampering() {
        let k = KeyPair::from_bytes(&[7; 32]);
        let s = k.seal("run-1", 3, Hash([1; 32]), "2026-01-01T00:00:00Z");
        verify_seal(&s, None).unwrap();
        verify_seal(&s, Some(&k.public_hex())).unwrap();
        let other = KeyPair::from_bytes(&[8; 32]);
        assert!(verify_seal(&s, Some(&other.public_hex())).is_err());
        let mut t = s.clone();
        t.steps = 2;
        assert!(verify_seal(&t, None).is_err());
        let mut t = s.clone();
        t.head.0[0] ^= 1;
        assert!(verify_seal(&t, None).is_err());
        let resigned = other.seal("run-1", 3, Hash([1; 32]), "2026-01-01T00:00:00Z");
        verify_seal(&resigned, None).unwrap();
        assert!(verify_seal(&resigned, Some(&k.public_hex())).is_err());
    }
}
