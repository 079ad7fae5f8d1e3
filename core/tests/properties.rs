//! Property tests: any single cell change changes that row's hash and the content root, and
//! the content root never depends on row order.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
use common::{fp, permute, table};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Rows {
    ints: Vec<Option<i64>>,
    floats: Vec<Option<f64>>,
    strings: Vec<Option<String>>,
}

fn rows() -> impl Strategy<Value = Rows> {
    (1usize..40).prop_flat_map(|n| {
        (
            prop::collection::vec(prop::option::of(any::<i64>()), n),
            prop::collection::vec(prop::option::of(any::<f64>()), n),
            prop::collection::vec(prop::option::of(".{0,12}"), n),
        )
            .prop_map(|(ints, floats, strings)| Rows {
                ints,
                floats,
                strings,
            })
    })
}

fn build(r: &Rows) -> pipeproof_core::Table {
    table(vec![
        ("i", Arc::new(Int64Array::from(r.ints.clone())) as ArrayRef),
        (
            "f",
            Arc::new(Float64Array::from(r.floats.clone())) as ArrayRef,
        ),
        (
            "s",
            Arc::new(StringArray::from(r.strings.clone())) as ArrayRef,
        ),
    ])
}

/// Whether two floats are the same value to fingerprint v1 (one NaN, -0.0 == 0.0).
fn same_float(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (x.is_nan() && y.is_nan()) || x == y,
        (None, None) => true,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_single_cell_change_changes_row_hash_and_content_root(
        r in rows(), row in any::<prop::sample::Index>(), col in 0usize..3,
        new_int in prop::option::of(any::<i64>()),
        new_float in prop::option::of(any::<f64>()),
        new_str in prop::option::of(".{0,12}"),
    ) {
        let i = row.index(r.ints.len());
        let mut m = r.clone();
        let changed = match col {
            0 => { let c = m.ints[i] != new_int; m.ints[i] = new_int; c }
            1 => { let c = !same_float(m.floats[i], new_float); m.floats[i] = new_float; c }
            _ => { let c = m.strings[i] != new_str; m.strings[i] = new_str.clone(); c }
        };
        prop_assume!(changed);
        let (a, b) = (fp(&build(&r)), fp(&build(&m)));
        prop_assert_ne!(a.row_hashes[i], b.row_hashes[i]);
        prop_assert_ne!(a.fingerprint.content_root, b.fingerprint.content_root);
        for j in (0..r.ints.len()).filter(|&j| j != i) {
            prop_assert_eq!(a.row_hashes[j], b.row_hashes[j]);
        }
    }

    #[test]
    fn content_root_ignores_row_order(r in rows(), seed in any::<u64>()) {
        let t = build(&r);
        let n = r.ints.len() as u64;
        let mut order: Vec<u64> = (0..n).collect();
        let mut s = seed | 1;
        for k in (1..order.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            order.swap(k, (s % (k as u64 + 1)) as usize);
        }
        let p = permute(&t, &order);
        prop_assert_eq!(fp(&t).fingerprint.content_root, fp(&p).fingerprint.content_root);
    }
}
