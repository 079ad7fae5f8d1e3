//! The golden vectors of fingerprint v1 (docs/spec/vectors/fingerprint-v1/): every input file
//! is decoded and every published value checked, natively and, in a browser, under wasm32.
//! The expected values were computed by the independent Python reference
//! (tests/reference/fingerprint_v1.py); this is the cross-check against our implementation.

#[macro_use]
mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use pipeproof_core::canon::{self, Family};
use pipeproof_core::fingerprint::{RowProof, content_root, sorted_content};
use pipeproof_core::hash::{Keyed, context};
use pipeproof_core::{Format, Hash, RowHasher, Table, decode, fingerprint, merkle};
use serde_json::Value;

macro_rules! files {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!("../../docs/spec/vectors/fingerprint-v1/", $name)))),*]
    };
}

/// Every file of the vectors folder, built into the test binary (the browser has no disk).
static FILES: &[(&str, &[u8])] = files![
    "composite_key.arrow",
    "composite_key.json",
    "contexts.json",
    "csv_rules.arrow",
    "csv_rules.csv",
    "csv_rules.json",
    "decimals.arrow",
    "decimals.json",
    "dictionary.arrow",
    "dictionary.json",
    "empty.arrow",
    "empty.json",
    "floats.arrow",
    "floats.json",
    "ints.arrow",
    "ints.json",
    "large.arrow",
    "large.json",
    "misc.arrow",
    "misc.json",
    "people.arrow",
    "people.csv",
    "people.json",
    "people.parquet",
    "strings.arrow",
    "strings.json",
    "temporal.arrow",
    "temporal.json",
];

fn file(name: &str) -> &'static [u8] {
    FILES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("{name} is not listed in FILES"))
        .1
}

fn json(name: &str) -> Value {
    serde_json::from_slice(file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn hash(v: &Value) -> Hash {
    Hash::from_hex(v.as_str().expect("a hex string")).expect("64 hex digits")
}

fn hex_list(v: &Value) -> Vec<Hash> {
    v.as_array().expect("a list").iter().map(hash).collect()
}

fn names(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).expect("a list of strings")
}

/// The row and key hashes of a table, computed batch by batch.
fn row_and_key_hashes(table: &Table, key: &[String]) -> (Vec<Hash>, Vec<Hash>) {
    let rows = RowHasher::rows(table.schema()).unwrap();
    let keys = RowHasher::keys(table.schema(), key).unwrap();
    let (mut r, mut k) = (Vec::new(), Vec::new());
    for batch in table.batches() {
        rows.hash_batch(batch, &mut r).unwrap();
        keys.hash_batch(batch, &mut k).unwrap();
    }
    (r, k)
}

/// Checks one vector: every input against every expected value.
#[track_caller]
fn check(case: &str) {
    let want = json(&format!("{case}.json"));
    assert_eq!(want["spec"], "pipeproof-fingerprint-v1");
    assert_eq!(want["case"], case);
    let key = names(&want["key"]);
    let content = hash(&want["content_root"]);
    for input in want["inputs"].as_array().unwrap() {
        let name = input["file"].as_str().unwrap();
        let format: Format = serde_json::from_value(input["format"].clone()).unwrap();
        let at = |what: &str| format!("{case}: {name}: {what}");
        let table = decode::decode(Bytes::from_static(file(name)), format)
            .unwrap_or_else(|e| panic!("{}", at(&format!("decode: {e}"))));

        let schema: Vec<Value> = table
            .schema()
            .fields()
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name(),
                    "type": canon::type_name(f.data_type()),
                    "family": Family::of(f.data_type()).map(Family::as_str),
                    "nullable": f.is_nullable(),
                })
            })
            .collect();
        assert_eq!(Value::from(schema), want["schema"], "{}", at("schema"));

        let fp = fingerprint(&table).unwrap();
        let f = &fp.fingerprint;
        assert_eq!(f.spec, "pipeproof-fingerprint-v1");
        assert_eq!(f.rows, want["rows"].as_u64().unwrap(), "{}", at("rows"));
        assert_eq!(
            f.schema_hash,
            hash(&want["schema_hash"]),
            "{}",
            at("schema_hash")
        );
        assert_eq!(f.content_root, content, "{}", at("content_root"));
        assert_eq!(
            f.order_root,
            hash(&want["order_root"]),
            "{}",
            at("order_root")
        );
        let columns: Vec<Value> = f
            .columns
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "digest": c.digest, "nulls": c.nulls}))
            .collect();
        assert_eq!(Value::from(columns), want["columns"], "{}", at("columns"));

        // The same table cut into batches of 3 rows: no hash depends on batch boundaries.
        let rechunked = fingerprint(&table.rechunk(3)).unwrap();
        assert_eq!(rechunked.fingerprint, fp.fingerprint, "{}", at("rechunked"));

        let rows = RowHasher::rows(table.schema()).unwrap();
        let order: Vec<String> = rows
            .columns()
            .iter()
            .map(|&i| table.schema().field(i).name().clone())
            .collect();
        assert_eq!(order, names(&want["hash_order"]), "{}", at("hash_order"));
        assert_eq!(
            Hash(*rows.derived_key()),
            hash(&want["row_key"]),
            "{}",
            at("row_key")
        );
        let keys = RowHasher::keys(table.schema(), &key).unwrap();
        assert_eq!(
            Hash(*keys.derived_key()),
            hash(&want["key_key"]),
            "{}",
            at("key_key")
        );

        let (row_hashes, key_hashes) = row_and_key_hashes(&table, &key);
        assert_eq!(row_hashes, fp.row_hashes, "{}", at("row hashes, two ways"));
        if let Some(cells) = want.get("cells") {
            let batch = table.concat().unwrap();
            for (r, expected) in cells.as_array().unwrap().iter().enumerate() {
                let got: Vec<String> = rows
                    .columns()
                    .iter()
                    .map(|&c| {
                        let name = table.schema().field(c).name();
                        hex::encode(canon::encode_cell(name, batch.column(c).as_ref(), r).unwrap())
                    })
                    .collect();
                assert_eq!(
                    &Value::from(got),
                    expected,
                    "{}",
                    at(&format!("cells of row {r}"))
                );
                let row = hex::encode(rows.encode_row(&batch, r).unwrap());
                let joined: String = expected
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap())
                    .collect();
                assert_eq!(row, joined, "{}", at(&format!("encoded row {r}")));
            }
        }
        if let Some(all) = want.get("row_hashes") {
            assert_eq!(row_hashes, hex_list(all), "{}", at("row_hashes"));
            assert_eq!(
                key_hashes,
                hex_list(&want["key_hashes"]),
                "{}",
                at("key_hashes")
            );
        }
        for (samples, got, what) in [
            ("row_hash_samples", &row_hashes, "row hash"),
            ("key_hash_samples", &key_hashes, "key hash"),
        ] {
            let Some(samples) = want.get(samples) else {
                continue;
            };
            let samples: BTreeMap<String, Value> = serde_json::from_value(samples.clone()).unwrap();
            assert!(!samples.is_empty());
            for (i, h) in samples {
                let i: usize = i.parse().unwrap();
                assert_eq!(got[i], hash(&h), "{}", at(&format!("{what} {i}")));
            }
        }

        let sorted = sorted_content(&row_hashes);
        for expected in want["proofs"].as_array().unwrap() {
            let row = expected["row"].as_u64().unwrap() as usize;
            let mut body = expected.clone();
            body.as_object_mut().unwrap().remove("row");
            let want_proof: RowProof = serde_json::from_value(body).unwrap();
            let proof = RowProof::new(&sorted, &row_hashes[row]).expect("the row is in the table");
            assert_eq!(proof, want_proof, "{}", at(&format!("proof of row {row}")));
            check_proof(&want_proof, &content);
        }
    }
}

/// A published proof verifies against the content root, and any tampering makes it fail.
fn check_proof(proof: &RowProof, content: &Hash) {
    assert!(proof.verify(content), "the published proof verifies");
    let mut other_root = *content;
    other_root.0[31] ^= 1;
    assert!(!proof.verify(&other_root), "not against another root");

    let mut p = proof.clone();
    p.row_hash.0[31] ^= 1;
    assert!(!p.verify(content), "not for another row hash");

    let mut p = proof.clone();
    p.leaf_index = (p.leaf_index + 1) % p.leaf_count.max(2);
    assert!(!p.verify(content), "not at another leaf index");

    let mut p = proof.clone();
    p.top_path[0].0[0] ^= 0x80;
    assert!(!p.verify(content), "not with a changed top path");

    if let Some(first) = proof.bucket_path.first() {
        let mut p = proof.clone();
        p.bucket_path[0] = Hash([first.0[0] ^ 1; 32]);
        assert!(!p.verify(content), "not with a changed bucket path");
    }

    if proof.leaf.len() > 1 {
        let mut p = proof.clone();
        let other = p.leaf.iter().position(|h| *h != p.row_hash).unwrap();
        p.leaf.remove(other);
        assert!(!p.verify(content), "not with a row dropped from its leaf");
    }
}

both! {
    fn contexts_and_empty_roots() {
        let want = json("contexts.json");
        let ours = [
            ("row", context::ROW),
            ("key", context::KEY),
            ("column", context::COLUMN),
            ("schema", context::SCHEMA),
            ("node", context::NODE),
            ("order", context::ORDER),
        ];
        assert_eq!(want["contexts"].as_object().unwrap().len(), ours.len());
        for (name, ctx) in ours {
            let c = &want["contexts"][name];
            assert_eq!(c["context"], ctx, "{name} context string");
            assert_eq!(
                Hash(*Keyed::new(ctx, &[]).key()),
                hash(&c["empty_material_key"]),
                "{name} key"
            );
        }
        assert_eq!(merkle::empty_root(), hash(&want["empty_tree_root"]));
        assert_eq!(content_root(&[]), hash(&want["empty_content_root"]));
    }

    fn vector_ints() { check("ints") }
    fn vector_floats() { check("floats") }
    fn vector_strings() { check("strings") }
    fn vector_dictionary() { check("dictionary") }
    fn vector_temporal() { check("temporal") }
    fn vector_decimals() { check("decimals") }
    fn vector_misc() { check("misc") }
    fn vector_empty() { check("empty") }
    fn vector_composite_key() { check("composite_key") }
    fn vector_people_in_three_formats() { check("people") }
    fn vector_large() { check("large") }
    fn vector_csv_rules() { check("csv_rules") }

    fn every_case_has_a_test() {
        let tested = [
            "contexts", "ints", "floats", "strings", "dictionary", "temporal", "decimals", "misc",
            "empty", "composite_key", "people", "large", "csv_rules",
        ];
        let cases: Vec<&str> = FILES
            .iter()
            .filter_map(|(n, _)| n.strip_suffix(".json"))
            .collect();
        for case in &cases {
            assert!(tested.contains(case), "{case}.json has no test: add one above");
        }
        assert_eq!(cases.len(), tested.len());
    }
}

/// Every file in the folder is built into the tests (native only: the browser has no disk).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn every_vector_file_is_included() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/spec/vectors/fingerprint-v1"
    );
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "README.md")
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
    assert_eq!(on_disk, listed, "FILES must list every vector file, sorted");
}
