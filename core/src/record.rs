//! Step records and the hash chain of a run. Each record is hashed in canonical JSON
//! (RFC 8785) under its own BLAKE3 context and names the previous record's hash, so the
//! records of a run form a chain whose head a seal signs (see docs/spec/bundle-v1.md).

use serde::Serialize;
use serde_json::Value;

use crate::diff::DiffSummary;
use crate::fingerprint::ColumnFingerprint;
use crate::hash::{Hash, Keyed};
use crate::stats::ColumnStats;

/// The version string of step records.
pub const RECORD_SPEC: &str = "pipeproof-record-v1";

/// BLAKE3 contexts of the record layer (no key material).
pub mod context {
    /// A step record's hash.
    pub const RECORD: &str = "pipeproof record v1";
    /// A step's statistics digest.
    pub const STATS: &str = "pipeproof stats v1";
    /// A diff summary's hash.
    pub const DIFF_SUMMARY: &str = "pipeproof diff summary v1";
    /// A row table's hash (key hashes and row hashes of a step).
    pub const ROW_TABLE: &str = "pipeproof row table v1";
    /// The hash of a step's diff details.
    pub const DETAILS: &str = "pipeproof diff details v1";
    /// The hash of a run's description, which a seal v2 signs.
    pub const RUN: &str = "pipeproof run v1";
}

/// What a run records about one step. Everything a verifier checks is in here or bound by a
/// hash in here.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepRecord {
    /// `pipeproof-record-v1`.
    pub spec: String,
    /// The run's id.
    pub run_id: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// 0-based position of the step in the run.
    pub index: u64,
    /// The step's name.
    pub step: String,
    /// When the server stored the step (RFC 3339, UTC).
    pub created_at: String,
    /// The pipeline code's version, as the client reported it.
    pub code_version: Option<String>,
    /// The step's parameters as sent (diff options included).
    pub params: Value,
    /// Key columns the diff against the previous step used (empty: multiset diff).
    pub key: Vec<String>,
    /// Row count.
    pub rows: u64,
    /// Physical schema hash.
    pub schema_hash: Hash,
    /// Order-independent content root.
    pub content_root: Hash,
    /// Order root.
    pub order_root: Hash,
    /// Column fingerprints.
    pub columns: Vec<ColumnFingerprint>,
    /// [`stats_digest`] of the step's column statistics.
    pub stats_digest: Hash,
    /// [`diff_summary_hash`] of the diff against the previous step (none for the first).
    pub diff_summary_hash: Option<Hash>,
    /// The hash of the diff details (none for the first step).
    pub details_hash: Option<Hash>,
    /// [`row_table_hash`] of the step's key and row hashes.
    pub row_table_hash: Hash,
    /// The previous record's hash (none for the first step).
    pub prev: Option<Hash>,
}

impl StepRecord {
    /// The record's hash: BLAKE3 under the `record` context of its canonical JSON.
    pub fn hash(&self) -> Hash {
        digest(context::RECORD, self)
    }
}

/// The digest of a value's canonical JSON under a context.
pub fn digest<T: Serialize + ?Sized>(context: &str, value: &T) -> Hash {
    Keyed::new(context, &[]).hash(&canonical_json(value))
}

/// The statistics digest of a step.
pub fn stats_digest(stats: &[ColumnStats]) -> Hash {
    digest(context::STATS, stats)
}

/// The hash of a diff summary.
pub fn diff_summary_hash(summary: &DiffSummary) -> Hash {
    digest(context::DIFF_SUMMARY, summary)
}

/// The hash of a step's row table: u64 LE row count, a byte 1 when key hashes are present
/// (else 0), then the key hashes in row order, then the row hashes in row order.
pub fn row_table_hash(key_hashes: Option<&[Hash]>, row_hashes: &[Hash]) -> Hash {
    row_table_hash_of(key_hashes, row_hashes)
}

/// [`row_table_hash`] of hashes in either form.
pub(crate) fn row_table_hash_of<T: crate::hash::HashBytes>(
    key_hashes: Option<&[T]>,
    row_hashes: &[T],
) -> Hash {
    let mut h = Keyed::new(context::ROW_TABLE, &[]).hasher();
    h.update(&(row_hashes.len() as u64).to_le_bytes());
    h.update(&[key_hashes.is_some() as u8]);
    crate::hash::update_hashes_of(&mut h, key_hashes.unwrap_or(&[]));
    crate::hash::update_hashes_of(&mut h, row_hashes);
    h.finalize().into()
}

/// Canonical JSON (RFC 8785, JCS): no white space, object members sorted by the UTF-16 code
/// units of their names, strings with the minimal escapes, numbers in ECMAScript form.
/// Integers are written exactly (also beyond 2^53).
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let value = serde_json::to_value(value).expect("records serialise to JSON");
    let mut out = Vec::new();
    write_canonical(&value, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                out.extend_from_slice(es_number(n.as_f64().unwrap_or(0.0)).as_bytes());
            }
        }
        Value::String(s) => {
            serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("writing to a Vec cannot fail");
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
    }
}

/// A finite double as ECMAScript's `Number.prototype.toString` writes it.
fn es_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let sign = if v < 0.0 { "-" } else { "" };
    // Rust's `{:e}` gives the shortest round-trip digits: d.ddddde±x.
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n = exp.parse::<i32>().expect("exponent") + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let sign_e = if e < 0 { "-" } else { "+" };
        let rest = if k > 1 {
            format!(".{}", &digits[1..])
        } else {
            String::new()
        };
        format!("{}{rest}e{sign_e}{}", &digits[..1], e.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn canonical_json_sorts_and_escapes() {
        let v: Value = serde_json::from_str(
            r#"{"b":[1,2.5,"x\n\u0001é"],"a":{"z":null,"\u00e9":true,"\ud83d\ude00":1,"\ufb33":2}}"#,
        )
        .unwrap();
        let got = String::from_utf8(canonical_json(&v)).unwrap();
        // U+1F600 (surrogates D83D...) sorts before U+FB33 in UTF-16 order.
        assert_eq!(
            got,
            "{\"a\":{\"z\":null,\"é\":true,\"😀\":1,\"דּ\":2},\"b\":[1,2.5,\"x\\n\\u0001é\"]}"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn numbers_as_ecmascript_writes_them() {
        for (v, want) in [
            (1.5, "1.5"),
            (-0.001, "-0.001"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.2345e-7, "1.2345e-7"),
            (0.000001, "0.000001"),
            (123456.789, "123456.789"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ] {
            assert_eq!(es_number(v), want, "{v}");
        }
    }
}
