//! The log of seals: every seal a server makes is appended, in order, to one Merkle tree in
//! the style of Certificate Transparency (RFC 9162), whose signed tree heads let anyone check
//! that the server's history only grows. A monitor keeps a tree head and later asks for a
//! consistency proof to the current one: a server that dropped, changed or reordered a seal
//! it had logged cannot give one. An auditor holding a bundle asks for an inclusion proof of
//! its seal in a tree head they keep: a seal the server did not log (or logged otherwise)
//! has none. See docs/spec/log-v1.md.
//!
//! The tree is [`crate::merkle`]'s (leaf and node prefixes, the split at the largest power of
//! two); a leaf's data is the [`entry_hash`] of a seal, a digest under a context of its own.

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::merkle::{self, Subtrees};
use crate::record::{canonical_json, digest};
use crate::sign::{KeyPair, Seal, verify_signed};

/// The version string of signed tree heads.
pub const TREE_HEAD_SPEC: &str = "pipeproof-tree-head-v1";

/// The BLAKE3 context of a log entry's hash (no key material).
pub const ENTRY_CONTEXT: &str = "pipeproof log entry v1";

/// The hash of a seal as the log holds it: of the canonical JSON of the whole seal, its
/// signature included.
pub fn entry_hash(seal: &Seal) -> Hash {
    digest(ENTRY_CONTEXT, seal)
}

/// The leaf hash of a seal in the log's tree.
pub fn leaf_of(seal: &Seal) -> Hash {
    merkle::leaf_hash(&entry_hash(seal).0)
}

/// A signed statement that the log held `size` entries with this `root` at `timestamp`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TreeHead {
    /// `pipeproof-tree-head-v1`.
    pub spec: String,
    /// The number of entries.
    pub size: u64,
    /// The Merkle tree hash of the entries' leaves (the empty tree's root for none).
    pub root: Hash,
    /// When the server signed it (RFC 3339, UTC).
    pub timestamp: String,
    /// The signer's Ed25519 public key, hex.
    pub public_key: String,
    /// The Ed25519 signature of [`tree_head_message`], hex.
    pub signature: String,
}

/// The bytes a tree head signs: canonical JSON of `{spec, size, root, timestamp}`.
pub fn tree_head_message(spec: &str, size: u64, root: &Hash, timestamp: &str) -> Vec<u8> {
    canonical_json(&serde_json::json!({
        "spec": spec,
        "size": size,
        "root": root,
        "timestamp": timestamp,
    }))
}

impl KeyPair {
    /// Signs the head of a log of `leaves` at `timestamp`.
    pub fn sign_tree_head(&self, leaves: &[Hash], timestamp: &str) -> TreeHead {
        self.sign_tree_head_of(leaves.len() as u64, merkle::root(leaves), timestamp)
    }

    /// Signs the head of a log of `size` entries whose tree hash is `root`, at `timestamp`.
    pub fn sign_tree_head_of(&self, size: u64, root: Hash, timestamp: &str) -> TreeHead {
        TreeHead {
            spec: TREE_HEAD_SPEC.into(),
            size,
            root,
            timestamp: timestamp.into(),
            public_key: self.public_hex(),
            signature: self.sign_hex(&tree_head_message(TREE_HEAD_SPEC, size, &root, timestamp)),
        }
    }
}

/// "1 entry", "2 entries".
fn entries(n: u64) -> String {
    format!("{n} entr{}", if n == 1 { "y" } else { "ies" })
}

/// Checks a tree head's signature, and that its key is the trusted one when one is given.
pub fn verify_tree_head(head: &TreeHead, trusted_public_hex: Option<&str>) -> Result<()> {
    if head.spec != TREE_HEAD_SPEC {
        return Err(Error::Verification(format!(
            "unknown tree head version `{}` (this build knows {TREE_HEAD_SPEC})",
            head.spec
        )));
    }
    verify_signed(
        "tree head",
        &head.public_key,
        &head.signature,
        &tree_head_message(&head.spec, head.size, &head.root, &head.timestamp),
        trusted_public_hex,
    )
}

/// That entry `index` of a log of `size` entries has a leaf: the audit path to the root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InclusionProof {
    /// The entry's position (0-based).
    pub index: u64,
    /// The size of the tree the proof is for.
    pub size: u64,
    /// The sibling hashes from the leaf up to the root.
    pub path: Vec<Hash>,
}

/// The inclusion proof of entry `index` among `leaves`.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> InclusionProof {
    inclusion_proof_in(leaves, index, leaves.len())
}

/// The inclusion proof of entry `index` in the log of the first `size` leaves of `tree`
/// (a [`merkle::Tree`] kept by a server gives it in O(log n)).
pub fn inclusion_proof_in<T: Subtrees + ?Sized>(
    tree: &T,
    index: usize,
    size: usize,
) -> InclusionProof {
    InclusionProof {
        index: index as u64,
        size: size as u64,
        path: merkle::audit_path_in(tree, index, size),
    }
}

/// Checks that `leaf` is entry `proof.index` of the tree `head` signs (whose signature is
/// checked apart, by [`verify_tree_head`]).
pub fn verify_inclusion(leaf: &Hash, proof: &InclusionProof, head: &TreeHead) -> Result<()> {
    if proof.size != head.size {
        return Err(Error::Verification(format!(
            "the inclusion proof is for a log of {}, the tree head is of {}",
            entries(proof.size),
            entries(head.size)
        )));
    }
    match merkle::root_from_path(leaf, proof.index, proof.size, &proof.path) {
        Some(root) if root == head.root => Ok(()),
        _ => Err(Error::Verification(format!(
            "the seal is not entry {} of the log of {} the tree head signs",
            proof.index,
            entries(head.size)
        ))),
    }
}

/// That a log of `from` entries is the start of a log of `to` entries (RFC 9162 §2.1.4).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsistencyProof {
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// The proof's hashes.
    pub path: Vec<Hash>,
}

/// The consistency proof from the first `from` of `leaves` to all of them.
pub fn consistency_proof(leaves: &[Hash], from: usize) -> ConsistencyProof {
    consistency_proof_in(leaves, from, leaves.len())
}

/// The consistency proof from the log of the first `from` leaves of `tree` to the log of its
/// first `to` (a [`merkle::Tree`] kept by a server gives it in O(log² n) hashes at worst).
pub fn consistency_proof_in<T: Subtrees + ?Sized>(
    tree: &T,
    from: usize,
    to: usize,
) -> ConsistencyProof {
    assert!(
        from <= to && to <= tree.leaf_count(),
        "consistency_proof: from beyond the log"
    );
    let mut path = Vec::new();
    if from > 0 && from < to {
        subproof(tree, from, 0, to, true, &mut path);
    }
    ConsistencyProof {
        from: from as u64,
        to: to as u64,
        path,
    }
}

/// RFC 9162's SUBPROOF(m, D[start:end], b).
fn subproof<T: Subtrees + ?Sized>(
    tree: &T,
    m: usize,
    start: usize,
    end: usize,
    complete: bool,
    out: &mut Vec<Hash>,
) {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(tree.subtree(start, end));
        }
        return;
    }
    let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
    if m <= k {
        subproof(tree, m, start, start + k, complete, out);
        out.push(tree.subtree(start + k, end));
    } else {
        subproof(tree, m - k, start + k, end, false, out);
        out.push(tree.subtree(start, start + k));
    }
}

/// Checks that the tree `old` signs is the start of the tree `new` signs (signatures
/// checked apart, by [`verify_tree_head`]): the log only grew between them.
pub fn verify_consistency(old: &TreeHead, new: &TreeHead, proof: &ConsistencyProof) -> Result<()> {
    let fail = |why: &str| {
        Err(Error::Verification(format!(
            "the log of {} is not the start of the log of {}: {why}",
            entries(old.size),
            entries(new.size)
        )))
    };
    if proof.from != old.size || proof.to != new.size {
        return fail(&format!(
            "the proof is from {} to {} entries",
            proof.from, proof.to
        ));
    }
    if old.size > new.size {
        return fail("the log shrank");
    }
    if old.size == 0 {
        return if proof.path.is_empty() {
            Ok(())
        } else {
            fail("a proof from the empty log has no hashes")
        };
    }
    if old.size == new.size {
        return if proof.path.is_empty() && old.root == new.root {
            Ok(())
        } else {
            fail("the same size with another root")
        };
    }
    match consistent_roots(old.size, new.size, &old.root, &proof.path) {
        Some((first, second)) if first == old.root && second == new.root => Ok(()),
        _ => fail("the proof does not lead from one root to the other"),
    }
}

/// RFC 9162 §2.1.4.2: the two roots a consistency proof from `first` to `second` entries
/// leads to (`first` < `second`, both > 0); `None` when the proof has the wrong shape.
fn consistent_roots(
    first: u64,
    second: u64,
    first_root: &Hash,
    path: &[Hash],
) -> Option<(Hash, Hash)> {
    let mut nodes: Vec<Hash> = Vec::with_capacity(path.len() + 1);
    if first.is_power_of_two() {
        nodes.push(*first_root);
    }
    nodes.extend_from_slice(path);
    let (head, rest) = nodes.split_first()?;
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*head, *head);
    for c in rest {
        if snode == 0 {
            return None;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = merkle::node_hash(c, &fr);
            sr = merkle::node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = merkle::node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    (snode == 0).then_some((fr, sr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| merkle::leaf_hash(&(i as u64).to_le_bytes()))
            .collect()
    }

    fn head(key: &KeyPair, leaves: &[Hash]) -> TreeHead {
        key.sign_tree_head(leaves, "2026-11-28T00:00:00Z")
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_kept_tree_proves_what_the_leaves_prove() {
        let key = KeyPair::from_bytes(&[3; 32]);
        let all = leaves(45);
        let tree = merkle::Tree::of(&all);
        for to in 0..=all.len() {
            let signed = key.sign_tree_head_of(to as u64, tree.root(to), "2026-11-28T00:00:00Z");
            assert_eq!(signed, head(&key, &all[..to]), "head of {to}");
            for from in 0..=to {
                assert_eq!(
                    consistency_proof_in(&tree, from, to),
                    consistency_proof(&all[..to], from),
                    "{from} to {to}"
                );
            }
            for i in 0..to {
                assert_eq!(
                    inclusion_proof_in(&tree, i, to),
                    inclusion_proof(&all[..to], i),
                    "entry {i} of {to}"
                );
            }
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn every_consistency_proof_verifies_and_a_changed_history_does_not() {
        let key = KeyPair::from_bytes(&[3; 32]);
        let all = leaves(40);
        for to in 0..=all.len() {
            let new = head(&key, &all[..to]);
            for from in 0..=to {
                let old = head(&key, &all[..from]);
                let proof = consistency_proof(&all[..to], from);
                verify_consistency(&old, &new, &proof)
                    .unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                if from == 0 {
                    continue;
                }
                // The old log with one entry changed is not the start of the new one.
                let mut forged = all[..from].to_vec();
                forged[from / 2] = merkle::leaf_hash(b"rewritten");
                let forged = head(&key, &forged);
                assert!(
                    verify_consistency(&forged, &new, &proof).is_err(),
                    "{from} -> {to} accepted a changed entry"
                );
                // A proof with a hash changed, or one too few, fails.
                if let Some(last) = proof.path.len().checked_sub(1) {
                    let mut p = proof.clone();
                    p.path[last].0[0] ^= 1;
                    assert!(
                        verify_consistency(&old, &new, &p).is_err(),
                        "{from} -> {to}"
                    );
                    let mut p = proof.clone();
                    p.path.pop();
                    assert!(
                        verify_consistency(&old, &new, &p).is_err(),
                        "{from} -> {to}"
                    );
                }
                // Backwards, never.
                if from < to {
                    let back = ConsistencyProof {
                        from: proof.to,
                        to: proof.from,
                        path: proof.path.clone(),
                    };
                    assert!(verify_consistency(&new, &old, &back).is_err());
                }
            }
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn inclusion_proofs_verify_for_their_entry_only() {
        let key = KeyPair::from_bytes(&[3; 32]);
        let all = leaves(13);
        let h = head(&key, &all);
        for (i, leaf) in all.iter().enumerate() {
            let proof = inclusion_proof(&all, i);
            verify_inclusion(leaf, &proof, &h).unwrap();
            let other = merkle::leaf_hash(b"not logged");
            assert!(verify_inclusion(&other, &proof, &h).is_err());
            let older = head(&key, &all[..all.len() - 1]);
            assert!(verify_inclusion(leaf, &proof, &older).is_err());
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn tree_heads_are_signed() {
        let key = KeyPair::from_bytes(&[3; 32]);
        let h = head(&key, &leaves(5));
        verify_tree_head(&h, Some(&key.public_hex())).unwrap();
        let other = KeyPair::from_bytes(&[4; 32]);
        let e = verify_tree_head(&h, Some(&other.public_hex())).unwrap_err();
        assert!(e.to_string().contains("not by the trusted key"), "{e}");
        for edit in [
            &(|h: &mut TreeHead| h.size += 1) as &dyn Fn(&mut TreeHead),
            &|h| h.root.0[0] ^= 1,
            &|h| h.timestamp = "2026-11-29T00:00:00Z".into(),
        ] {
            let mut t = h.clone();
            edit(&mut t);
            assert!(verify_tree_head(&t, None).is_err());
        }
        assert_eq!(head(&key, &[]).root, merkle::empty_root());
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_seals_leaf_covers_its_signature() {
        let key = KeyPair::from_bytes(&[3; 32]);
        let run = crate::bundle::RunInfo {
            id: "run-1".into(),
            pipeline: "daily".into(),
            labels: Default::default(),
            code_version: None,
            params: serde_json::json!({}),
            status: "sealed".into(),
            error: None,
            created_at: "2026-11-28T00:00:00Z".into(),
            sealed_at: Some("2026-11-28T00:01:00Z".into()),
        };
        let seal = key.seal(&run, 2, Hash([9; 32])).unwrap();
        let resigned = KeyPair::from_bytes(&[4; 32])
            .seal(&run, 2, Hash([9; 32]))
            .unwrap();
        assert_ne!(leaf_of(&seal), leaf_of(&resigned));
        assert_eq!(leaf_of(&seal), merkle::leaf_hash(&entry_hash(&seal).0));
    }
}
