//! Finding rows by a key a person typed: the row trace and the search of a step's detail
//! rows (on the server, and in the browser for a bundle) read a key's value as text and
//! compare it as a value of the key columns' types, by key hash. So `007` finds the row
//! of the integer key 7, and a key of several columns is asked one text per column, or as
//! one text joining them with `|`.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};

use crate::error::Result;
use crate::fingerprint::RowHasher;
use crate::hash::Hash;

/// A key's value as asked: one text per key column, in the key's order. A single text for a
/// key of several columns is split at `|` (values that contain `|` are asked one per
/// column instead).
pub fn key_parts<'a>(key: &[String], value: &'a [String]) -> Vec<&'a str> {
    match value {
        [one] if key.len() > 1 => one.split('|').collect(),
        _ => value.iter().map(String::as_str).collect(),
    }
}

/// The key hash of a value given as text, one text per key column, typed as the key columns
/// of `schema`; `None` when the texts are not a value of those types (or not one per
/// column, or a column is missing).
pub fn key_hash(schema: &Schema, key: &[String], parts: &[&str]) -> Option<Hash> {
    if parts.len() != key.len() {
        return None;
    }
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (k, &v) in key.iter().zip(parts) {
        let field = schema.field_with_name(k).ok()?;
        let text: ArrayRef = Arc::new(StringArray::from(vec![v]));
        let col = arrow_cast::cast::cast(&text, field.data_type()).ok()?;
        if col.is_null(0) {
            return None;
        }
        fields.push(Field::new(k, field.data_type().clone(), true));
        cols.push(col);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), cols).ok()?;
    let hasher = RowHasher::keys(&schema, key).ok()?;
    let mut out = Vec::new();
    hasher.hash_batch(&batch, &mut out).ok()?;
    out.pop()
}

/// The rows of `batch` (a table or a step's detail rows, which hold the key columns) whose
/// key hashes to `kh`, in order.
pub fn rows_with_key_hash(batch: &RecordBatch, key: &[String], kh: Hash) -> Result<Vec<usize>> {
    let hasher = RowHasher::keys(&batch.schema(), key)?;
    let mut hashes = Vec::with_capacity(batch.num_rows());
    hasher.hash_batch(batch, &mut hashes)?;
    Ok((0..batch.num_rows()).filter(|&i| hashes[i] == kh).collect())
}

/// The rows of `batch` whose key is `value` as a person typed it (one text, the texts of a
/// key of several columns joined with `|`), in order: none when it is not a value of the
/// key's types.
pub fn rows_with_key(batch: &RecordBatch, key: &[String], value: &str) -> Result<Vec<usize>> {
    let value = [value.to_string()];
    match key_hash(&batch.schema(), key, &key_parts(key, &value)) {
        Some(kh) => rows_with_key_hash(batch, key, kh),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, Int64Array};

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(Int64Array::from(vec![7, 8, 7, 70])) as ArrayRef,
            ),
            (
                "region",
                Arc::new(StringArray::from(vec!["eu", "eu", "us", "eu"])),
            ),
            (
                "amount",
                Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0])),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn a_key_is_found_as_a_value_of_its_type() {
        let b = batch();
        let id = ["id".to_string()];
        assert_eq!(rows_with_key(&b, &id, "7").unwrap(), [0, 2]);
        assert_eq!(rows_with_key(&b, &id, "007").unwrap(), [0, 2]);
        assert_eq!(rows_with_key(&b, &id, "70").unwrap(), [3]);
        assert!(rows_with_key(&b, &id, "seven").unwrap().is_empty());
        assert!(rows_with_key(&b, &id, "").unwrap().is_empty());
    }

    #[test]
    fn a_key_of_several_columns_is_asked_joined_with_a_bar() {
        let b = batch();
        let key = ["id".to_string(), "region".to_string()];
        assert_eq!(rows_with_key(&b, &key, "7|us").unwrap(), [2]);
        assert_eq!(rows_with_key(&b, &key, "07|eu").unwrap(), [0]);
        assert!(rows_with_key(&b, &key, "7").unwrap().is_empty());
        assert!(rows_with_key(&b, &key, "7|us|x").unwrap().is_empty());
        let parts = [String::from("8"), String::from("eu")];
        assert_eq!(key_parts(&key, &parts), ["8", "eu"]);
    }
}
