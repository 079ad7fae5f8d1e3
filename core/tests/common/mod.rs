//! Table builders shared by core's integration tests.
#![allow(dead_code, missing_docs)]

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};
use pipeproof_core::Table;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// Tests that run natively and, in a browser, under wasm32.
#[allow(unused_macros)]
macro_rules! both {
    ($(fn $name:ident() $body:block)*) => {$(
        #[cfg_attr(not(target_arch = "wasm32"), test)]
        #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
        fn $name() $body
    )*};
}

/// A one-batch table from (name, array) pairs; nullability taken from the arrays.
pub fn table(columns: Vec<(&str, ArrayRef)>) -> Table {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
    Table::from_batches(vec![batch]).unwrap()
}

/// Reorders a one-batch table's rows by `order`.
pub fn permute(t: &Table, order: &[u64]) -> Table {
    let batch = t.concat().unwrap();
    let idx = arrow_array::UInt64Array::from(order.to_vec());
    let taken = arrow_select::take::take_record_batch(&batch, &idx).unwrap();
    Table::from_batches(vec![taken]).unwrap()
}

pub fn fp(t: &Table) -> pipeproof_core::Fingerprinted {
    pipeproof_core::fingerprint(t).unwrap()
}
