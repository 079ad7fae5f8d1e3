//! The golden vector of the log of seals (docs/spec/vectors/log-v1/log.json), computed by the
//! independent Python reference (tests/reference/log_v1.py): every entry and leaf hash, root,
//! inclusion and consistency proof and the tree head's signed bytes checked against this
//! implementation, natively and, in a browser, under wasm32.

#[macro_use]
mod common;

use pipeproof_core::hash::Keyed;
use pipeproof_core::log::{self, ConsistencyProof, InclusionProof, TreeHead};
use pipeproof_core::sign::Seal;
use pipeproof_core::{Hash, merkle};
use serde_json::Value;

const VECTOR: &str = include_str!("../../docs/spec/vectors/log-v1/log.json");

fn vector() -> Value {
    serde_json::from_str(VECTOR).unwrap()
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| Hash::from_hex(h.as_str().unwrap()).unwrap())
        .collect()
}

/// A tree head of this size and root (its signature is not what these vectors check).
fn head(size: u64, root: Hash) -> TreeHead {
    TreeHead {
        spec: log::TREE_HEAD_SPEC.into(),
        size,
        root,
        timestamp: String::new(),
        public_key: String::new(),
        signature: String::new(),
    }
}

both! {
    fn entries_and_leaves_are_the_references() {
        let v = vector();
        assert_eq!(
            hex::encode(Keyed::new(log::ENTRY_CONTEXT, &[]).key()),
            v["entry_key"].as_str().unwrap()
        );
        let seals: Vec<Seal> = serde_json::from_value(v["seals"].clone()).unwrap();
        // The seals read and written again are the objects given (v1 without `run_hash`).
        assert_eq!(serde_json::to_value(&seals).unwrap(), v["seals"]);
        let entries: Vec<Hash> = seals.iter().map(log::entry_hash).collect();
        assert_eq!(entries, hashes(&v["entry_hashes"]));
        let leaves: Vec<Hash> = seals.iter().map(log::leaf_of).collect();
        assert_eq!(leaves, hashes(&v["leaves"]));
        let roots: Vec<Hash> = (0..=leaves.len()).map(|n| merkle::root(&leaves[..n])).collect();
        assert_eq!(roots, hashes(&v["roots"]));
    }

    fn every_proof_is_the_references_and_verifies() {
        let v = vector();
        let leaves = hashes(&v["leaves"]);
        let roots = hashes(&v["roots"]);
        for p in v["inclusion"].as_array().unwrap() {
            let want: InclusionProof = serde_json::from_value(p.clone()).unwrap();
            let size = want.size as usize;
            let index = want.index as usize;
            assert_eq!(log::inclusion_proof(&leaves[..size], index), want);
            log::verify_inclusion(&leaves[index], &want, &head(want.size, roots[size])).unwrap();
        }
        let mut checked = 0;
        for p in v["consistency"].as_array().unwrap() {
            let want: ConsistencyProof = serde_json::from_value(p.clone()).unwrap();
            let (from, to) = (want.from as usize, want.to as usize);
            assert_eq!(log::consistency_proof(&leaves[..to], from), want);
            log::verify_consistency(
                &head(want.from, roots[from]),
                &head(want.to, roots[to]),
                &want,
            )
            .unwrap();
            checked += 1;
        }
        assert_eq!(checked, 36, "every pair of sizes 0 <= from <= to <= 7");
    }

    fn a_tree_head_signs_the_references_bytes() {
        let v = vector();
        let h = &v["tree_head"];
        let root = Hash::from_hex(h["root"].as_str().unwrap()).unwrap();
        let bytes = log::tree_head_message(
            log::TREE_HEAD_SPEC,
            h["size"].as_u64().unwrap(),
            &root,
            h["timestamp"].as_str().unwrap(),
        );
        assert_eq!(String::from_utf8(bytes).unwrap(), h["signed_bytes"].as_str().unwrap());
    }
}
