//! Ed25519 seals: the server signs the head of a run's record chain, and the run's own
//! description, when it ends the run; anyone checks the seal against a public key they trust.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::bundle::RunInfo;
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::record::canonical_json;

/// The version string of the seals made now: they sign the run's description too.
pub const SEAL_SPEC: &str = "pipeproof-seal-v2";

/// The version string of the first seals, which sign the records alone. Runs sealed so keep
/// them, and they still verify.
pub const SEAL_SPEC_V1: &str = "pipeproof-seal-v1";

/// A signed statement that a run ended with `steps` records whose last hash is `head`, and
/// (from seal v2) that the run was described as its [`RunInfo`] with hash `run_hash` says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seal {
    /// `pipeproof-seal-v2` ([`SEAL_SPEC`]), or `pipeproof-seal-v1` for runs sealed before.
    pub spec: String,
    /// The run's id.
    pub run_id: String,
    /// The number of step records.
    pub steps: u64,
    /// The hash of the last record (all zeros for a run with no step).
    pub head: Hash,
    /// When the run was sealed (RFC 3339, UTC).
    pub sealed_at: String,
    /// [`RunInfo::hash`] of the run as it ended: its pipeline, labels, code version,
    /// parameters, status, failure message and times. Seal v2 only (absent from v1's JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_hash: Option<Hash>,
    /// The signer's Ed25519 public key, hex.
    pub public_key: String,
    /// The Ed25519 signature of [`seal_message`], hex.
    pub signature: String,
}

impl Seal {
    /// True when this seal's `steps` and `head` are those of a chain of `steps` records
    /// whose last hash is `last` (`None` for a run with no step, whose head is all zeros).
    pub fn covers(&self, steps: usize, last: Option<Hash>) -> bool {
        self.steps == steps as u64 && self.head == last.unwrap_or_default()
    }
}

/// The bytes a seal signs: canonical JSON of `{spec, run_id, steps, head, sealed_at}`, and
/// `run_hash` in seal v2. Fails on a seal of an unknown version, or whose `run_hash` is
/// missing (v2) or present (v1).
pub fn seal_message(seal: &Seal) -> Result<Vec<u8>> {
    let mut message = serde_json::json!({
        "spec": seal.spec,
        "run_id": seal.run_id,
        "steps": seal.steps,
        "head": seal.head,
        "sealed_at": seal.sealed_at,
    });
    match (seal.spec.as_str(), &seal.run_hash) {
        (SEAL_SPEC, Some(run_hash)) => message["run_hash"] = serde_json::json!(run_hash),
        (SEAL_SPEC_V1, None) => {}
        (SEAL_SPEC, None) => {
            return Err(Error::Verification(
                "the seal is v2 but has no `run_hash`: it cannot be checked".into(),
            ));
        }
        (SEAL_SPEC_V1, Some(_)) => {
            return Err(Error::Verification(
                "the seal is v1 but has a `run_hash`, which v1 does not sign".into(),
            ));
        }
        (other, _) => {
            return Err(Error::Verification(format!(
                "unknown seal version `{other}` (this build knows {SEAL_SPEC_V1} and \
                 {SEAL_SPEC}; a newer pipeproof may verify it)"
            )));
        }
    }
    Ok(canonical_json(&message))
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

    /// The Ed25519 signature of `message`, hex.
    pub(crate) fn sign_hex(&self, message: &[u8]) -> String {
        hex::encode(self.0.sign(message).to_bytes())
    }

    /// Seals a run that ended (sealed or failed) with `steps` records whose last hash is
    /// `head`: `run` is the run as it will be stored and exported from now on, its status and
    /// `sealed_at` (the seal's time) included. Fails for a run still open or without an end.
    pub fn seal(&self, run: &RunInfo, steps: u64, head: Hash) -> Result<Seal> {
        let sealed_at = match (&run.sealed_at, run.status.as_str()) {
            (Some(at), "sealed" | "failed") => at.clone(),
            _ => {
                return Err(Error::InvalidConfig(format!(
                    "run {} is {} with end time {:?}: only a run that ended, sealed or \
                     failed, with the time it ended, can be sealed",
                    run.id, run.status, run.sealed_at
                )));
            }
        };
        let mut seal = Seal {
            spec: SEAL_SPEC.into(),
            run_id: run.id.clone(),
            steps,
            head,
            sealed_at,
            run_hash: Some(run.hash()),
            public_key: self.public_hex(),
            signature: String::new(),
        };
        seal.signature = self.sign_hex(&seal_message(&seal)?);
        Ok(seal)
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
    VerifyingKey::from_bytes(&bytes).map_err(|_| {
        Error::Verification(format!(
            "`{}` is 64 hex digits but not an Ed25519 public key (not a point of the curve): \
             check that it was copied whole from the server's GET /api/v1/keys",
            hex_key.trim()
        ))
    })
}

/// Checks a seal's signature, and that its key is the trusted one when one is given.
pub fn verify_seal(seal: &Seal, trusted_public_hex: Option<&str>) -> Result<()> {
    let message = seal_message(seal)?;
    verify_signed(
        "seal",
        &seal.public_key,
        &seal.signature,
        &message,
        trusted_public_hex,
    )
}

/// Checks that `signature` (hex) is `public_key`'s (hex) Ed25519 signature of `message`,
/// and that the key is the trusted one when one is given. `what` names the signed object in
/// the errors.
pub(crate) fn verify_signed(
    what: &str,
    public_key: &str,
    signature: &str,
    message: &[u8],
    trusted_public_hex: Option<&str>,
) -> Result<()> {
    if let Some(trusted) = trusted_public_hex {
        let trusted = parse_public_key(trusted)?;
        if trusted != parse_public_key(public_key)? {
            return Err(Error::Verification(format!(
                "the {what} was signed by key {public_key}, not by the trusted key {}",
                hex::encode(trusted.to_bytes())
            )));
        }
    }
    let key = parse_public_key(public_key)?;
    let mut sig = [0u8; 64];
    hex::decode_to_slice(signature, &mut sig)
        .map_err(|_| Error::Verification("the signature is not 128 hex digits".into()))?;
    key.verify_strict(message, &Signature::from_bytes(&sig))
        .map_err(|_| {
            Error::Verification(format!("the {what}'s signature does not match its content"))
        })
}

/// Of several trusted keys (a server's current key first, then older ones), the one that
/// signed a seal if it is among them, else the first (which then fails the signature
/// check); None for no key.
pub fn pick_key<'a>(keys: &'a [String], sealed_by: Option<&str>) -> Option<&'a String> {
    sealed_by
        .and_then(|signer| keys.iter().find(|k| k.trim().eq_ignore_ascii_case(signer)))
        .or(keys.first())
}

/// The version string of key hand-overs.
pub const HANDOVER_SPEC: &str = "pipeproof-key-handover-v1";

/// A signed statement that the server's signing key `from` handed signing over to the key
/// `to` at `at` (a key rotation), signed by both keys: whoever trusts `from` can trust what
/// `to` signs after it, and `to`'s holder took it on. A hand-over is worth what `from` is
/// worth: one signed with a stolen key hands over to the thief. See docs/spec/keys-v1.md.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyHandover {
    /// `pipeproof-key-handover-v1`.
    pub spec: String,
    /// The key handing over, hex.
    pub from: String,
    /// The key taking over, hex.
    pub to: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// `from`'s Ed25519 signature of [`handover_message`], hex.
    pub from_signature: String,
    /// `to`'s Ed25519 signature of the same message, hex.
    pub to_signature: String,
}

/// The bytes a hand-over's two keys sign: canonical JSON of `{spec, from, to, at}`.
pub fn handover_message(h: &KeyHandover) -> Vec<u8> {
    canonical_json(&serde_json::json!({
        "spec": h.spec,
        "from": h.from,
        "to": h.to,
        "at": h.at,
    }))
}

impl KeyPair {
    /// Hands signing over from this key to `to` at `at`, signed by both.
    pub fn hand_over(&self, to: &KeyPair, at: &str) -> KeyHandover {
        let mut h = KeyHandover {
            spec: HANDOVER_SPEC.into(),
            from: self.public_hex(),
            to: to.public_hex(),
            at: at.into(),
            from_signature: String::new(),
            to_signature: String::new(),
        };
        let message = handover_message(&h);
        h.from_signature = self.sign_hex(&message);
        h.to_signature = to.sign_hex(&message);
        h
    }
}

/// Checks a hand-over: its version, two different keys, and both signatures.
pub fn verify_handover(h: &KeyHandover) -> Result<()> {
    if h.spec != HANDOVER_SPEC {
        return Err(Error::Verification(format!(
            "unknown key hand-over version `{}` (this build knows {HANDOVER_SPEC})",
            h.spec
        )));
    }
    if parse_public_key(&h.from)? == parse_public_key(&h.to)? {
        return Err(Error::Verification(
            "a key hand-over from a key to itself".into(),
        ));
    }
    let message = handover_message(h);
    verify_signed("hand-over", &h.from, &h.from_signature, &message, None)?;
    verify_signed("hand-over", &h.to, &h.to_signature, &message, None)
}

/// The hand-overs that verify and are no fork: a key that hands over to two keys has been
/// used by two holders (one of them a thief), so none of its hand-overs is followed.
fn followable(handovers: &[KeyHandover]) -> Vec<(String, String, &KeyHandover)> {
    let valid: Vec<(String, String, &KeyHandover)> = handovers
        .iter()
        .filter(|h| verify_handover(h).is_ok())
        .map(|h| {
            (
                h.from.trim().to_ascii_lowercase(),
                h.to.trim().to_ascii_lowercase(),
                h,
            )
        })
        .collect();
    valid
        .iter()
        .filter(|(from, to, _)| !valid.iter().any(|(f, t, _)| f == from && t != to))
        .cloned()
        .collect()
}

/// The keys trusted from the `trusted` ones on: those, then every key that a hand-over that
/// verifies hands over to from a key already trusted, however many hand-overs away (hex,
/// lower case, in the order reached). Hand-overs that do not verify are passed over, and so
/// are all those of a key that hands over to two keys (a fork: see [`followable`]).
pub fn keys_from(trusted: &[String], handovers: &[KeyHandover]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for k in trusted {
        let k = k.trim().to_ascii_lowercase();
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let links = followable(handovers);
    let mut grew = true;
    while grew {
        grew = false;
        for (from, to, _) in &links {
            if keys.contains(from) && !keys.contains(to) {
                keys.push(to.clone());
                grew = true;
            }
        }
    }
    keys
}

/// The keys the `trusted` ones took over from, however many hand-overs back, each with the
/// time it handed over (`at`, RFC 3339): a trusted key's signature on a hand-over vouches for
/// the key before it, for what that key signed until then. The same rules as [`keys_from`]
/// (only hand-overs that verify, no fork), and no merge: a key handed over to by two keys
/// vouches for neither.
///
/// Meant for a log's entries, each under a tree head signed by a key trusted forward: a
/// seal's time is its signer's own claim, so the bound says nothing of a seal outside such a
/// log (a thief of the old key can date a seal as they like). See docs/spec/keys-v1.md §2.
pub fn keys_before(trusted: &[String], handovers: &[KeyHandover]) -> Vec<(String, String)> {
    let links = followable(handovers);
    let mut seen: Vec<String> = trusted
        .iter()
        .map(|k| k.trim().to_ascii_lowercase())
        .collect();
    let mut before = Vec::new();
    let mut at = 0;
    while at < seen.len() {
        let key = seen[at].clone();
        let givers: Vec<&(String, String, &KeyHandover)> =
            links.iter().filter(|(_, to, _)| *to == key).collect();
        if let [(from, _, h)] = givers[..]
            && !seen.contains(from)
        {
            seen.push(from.clone());
            before.push((from.clone(), h.at.clone()));
        }
        at += 1;
    }
    before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(id: &str) -> RunInfo {
        RunInfo {
            id: id.into(),
            pipeline: "daily".into(),
            labels: [("team".to_string(), "risk".to_string())].into(),
            code_version: Some("abc123".into()),
            params: serde_json::json!({"date": "2026-01-01"}),
            status: "sealed".into(),
            error: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            sealed_at: Some("2026-01-01T00:05:00Z".into()),
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_key_that_sealed_is_picked_from_those_trusted() {
        let keys = ["aa".to_string(), "BB".to_string()];
        assert_eq!(pick_key(&keys, Some("bb")), Some(&keys[1]));
        assert_eq!(pick_key(&keys, Some("cc")), Some(&keys[0]));
        assert_eq!(pick_key(&keys, None), Some(&keys[0]));
        assert_eq!(pick_key(&[], Some("aa")), None);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn hand_overs_are_signed_by_both_keys_and_followed() {
        let [a, b, c, d] = [1u8, 2, 3, 4].map(|i| KeyPair::from_bytes(&[i; 32]));
        let ab = a.hand_over(&b, "2026-02-01T00:00:00Z");
        verify_handover(&ab).unwrap();
        assert_eq!(
            (ab.from.as_str(), ab.to.as_str()),
            (&*a.public_hex(), &*b.public_hex())
        );
        // Every field is signed, by both keys.
        let broken: [fn(&mut KeyHandover); 6] = [
            |h| h.at = "2026-02-02T00:00:00Z".into(),
            |h| h.to = KeyPair::from_bytes(&[9; 32]).public_hex(),
            |h| h.from = KeyPair::from_bytes(&[9; 32]).public_hex(),
            |h| h.from_signature = h.to_signature.clone(),
            |h| h.to_signature = h.from_signature.clone(),
            |h| h.spec = "pipeproof-key-handover-v0".into(),
        ];
        for (i, breaks) in broken.iter().enumerate() {
            let mut h = ab.clone();
            breaks(&mut h);
            assert!(verify_handover(&h).is_err(), "change {i}");
        }
        // A hand-over signed by the taker alone (a stranger's key claiming to succeed a):
        let mut forged = d.hand_over(&c, &ab.at);
        forged.from = a.public_hex();
        assert!(verify_handover(&forged).is_err());
        let to_itself = a.hand_over(&a, &ab.at);
        assert!(
            verify_handover(&to_itself)
                .unwrap_err()
                .to_string()
                .contains("itself")
        );

        // Followed from a trusted key however far, in any order; not backwards, not from
        // an untrusted key, not through a broken one.
        let bc = b.hand_over(&c, "2026-03-01T00:00:00Z");
        let (ka, kb, kc) = (a.public_hex(), b.public_hex(), c.public_hex());
        let all = [bc.clone(), ab.clone()];
        assert_eq!(keys_from(std::slice::from_ref(&ka), &all), [&*ka, &kb, &kc]);
        assert_eq!(keys_from(std::slice::from_ref(&kb), &all), [&*kb, &kc]);
        assert_eq!(keys_from(std::slice::from_ref(&kc), &all), [&*kc]);
        assert_eq!(
            keys_from(&[ka.to_ascii_uppercase()], std::slice::from_ref(&ab)),
            [&*ka, &kb]
        );
        let mut bad = bc.clone();
        bad.at = "2026-03-02T00:00:00Z".into();
        assert_eq!(
            keys_from(std::slice::from_ref(&ka), &[ab.clone(), bad, forged]),
            [&*ka, &kb]
        );
        // Backwards: each key a trusted one took over from, with when it handed over.
        let back = |k: &str| keys_before(&[k.to_string()], &all);
        assert_eq!(
            back(&kc),
            [(kb.clone(), bc.at.clone()), (ka.clone(), ab.at.clone())]
        );
        assert_eq!(back(&kb), [(ka.clone(), ab.at.clone())]);
        assert!(back(&ka).is_empty());
        // A key handing over to two keys (a thief's hand-over beside the holder's) is
        // followed neither way.
        let thief = a.hand_over(&d, "2026-02-02T00:00:00Z");
        let forked = [ab.clone(), bc.clone(), thief];
        assert_eq!(keys_from(std::slice::from_ref(&ka), &forked), [&*ka]);
        assert!(keys_before(std::slice::from_ref(&kb), &forked).is_empty());
        assert_eq!(keys_from(std::slice::from_ref(&kb), &forked), [&*kb, &kc]);
        // Nor a key handed over to by two keys, backwards.
        let merge = [ab.clone(), d.hand_over(&b, "2026-02-03T00:00:00Z")];
        assert!(keys_before(std::slice::from_ref(&kb), &merge).is_empty());
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn seal_round_trip_and_tampering() {
        let k = KeyPair::from_bytes(&[7; 32]);
        let run = ended("run-1");
        let s = k.seal(&run, 3, Hash([1; 32])).unwrap();
        assert_eq!(s.spec, SEAL_SPEC);
        assert_eq!(s.sealed_at, "2026-01-01T00:05:00Z");
        assert_eq!(s.run_hash, Some(run.hash()));
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
        // The run's description is signed: another one's hash breaks the signature.
        let mut relabelled = run.clone();
        relabelled.labels.insert("team".into(), "ops".into());
        let mut t = s.clone();
        t.run_hash = Some(relabelled.hash());
        assert!(verify_seal(&t, None).is_err());
        // Without its run hash, or as a v1 seal, a v2 seal does not verify.
        let mut t = s.clone();
        t.run_hash = None;
        assert!(
            verify_seal(&t, None)
                .unwrap_err()
                .to_string()
                .contains("no `run_hash`")
        );
        let mut t = s.clone();
        t.spec = SEAL_SPEC_V1.into();
        assert!(
            verify_seal(&t, None)
                .unwrap_err()
                .to_string()
                .contains("v1 does not sign")
        );
        let resigned = other.seal(&run, 3, Hash([1; 32])).unwrap();
        verify_seal(&resigned, None).unwrap();
        assert!(verify_seal(&resigned, Some(&k.public_hex())).is_err());
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_v1_seal_still_verifies_and_an_unknown_version_is_named() {
        let k = KeyPair::from_bytes(&[7; 32]);
        let mut v1 = Seal {
            spec: SEAL_SPEC_V1.into(),
            run_id: "run-1".into(),
            steps: 3,
            head: Hash([1; 32]),
            sealed_at: "2026-01-01T00:05:00Z".into(),
            run_hash: None,
            public_key: k.public_hex(),
            signature: String::new(),
        };
        v1.signature = hex::encode(k.0.sign(&seal_message(&v1).unwrap()).to_bytes());
        verify_seal(&v1, Some(&k.public_hex())).unwrap();
        // Its JSON has no `run_hash` member, as v1 seals were written.
        assert!(!serde_json::to_string(&v1).unwrap().contains("run_hash"));
        let mut t = v1.clone();
        t.sealed_at = "2026-01-01T00:06:00Z".into();
        assert!(verify_seal(&t, None).is_err());
        let mut t = v1.clone();
        t.spec = "pipeproof-seal-v9".into();
        let e = verify_seal(&t, None).unwrap_err().to_string();
        assert!(
            e.contains("unknown seal version `pipeproof-seal-v9`"),
            "{e}"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_key_that_is_no_point_of_the_curve_is_named_as_such() {
        let e = parse_public_key(&"ab".repeat(32)).unwrap_err().to_string();
        assert!(e.contains("not a point of the curve"), "{e}");
        let e = parse_public_key("abc").unwrap_err().to_string();
        assert!(e.contains("expected 64 hex digits"), "{e}");
        parse_public_key(&KeyPair::from_bytes(&[7; 32]).public_hex()).unwrap();
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn only_a_run_that_ended_is_sealed() {
        let k = KeyPair::from_bytes(&[7; 32]);
        let mut open = ended("run-1");
        open.status = "open".into();
        assert!(k.seal(&open, 0, Hash::default()).is_err());
        let mut timeless = ended("run-1");
        timeless.sealed_at = None;
        assert!(k.seal(&timeless, 0, Hash::default()).is_err());
        let mut failed = ended("run-1");
        failed.status = "failed".into();
        failed.error = Some("the load step raised".into());
        let s = k.seal(&failed, 0, Hash::default()).unwrap();
        assert_eq!(s.run_hash, Some(failed.hash()));
        assert_ne!(failed.hash(), ended("run-1").hash());
    }
}
