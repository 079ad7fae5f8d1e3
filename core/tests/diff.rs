//! Diff behaviour: keyed and multiset counts, cell details, tolerances, schema diff, bad keys,
//! and that `chunk_rows` and the thread count never change a result.

#[macro_use]
mod common;

use std::sync::Arc;

use arrow_array::*;
use common::{permute, table};
use pipeproof_core::diff::{Diff, DiffConfig};
use pipeproof_core::{Error, Side, Table, diff};

fn i64s(v: Vec<i64>) -> ArrayRef {
    Arc::new(Int64Array::from(v))
}
fn f64s(v: Vec<Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}
fn strs(v: Vec<Option<&str>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn before() -> Table {
    table(vec![
        ("id", i64s(vec![1, 2, 3, 4, 5])),
        (
            "amount",
            f64s(vec![
                Some(10.0),
                Some(20.0),
                None,
                Some(f64::NAN),
                Some(50.0),
            ]),
        ),
        (
            "name",
            strs(vec![Some("a"), Some("b"), Some("c"), Some("d"), Some("e")]),
        ),
    ])
}

fn after() -> Table {
    // 1 removed, 6 added, 2: amount changed, 3: name changed, 4: NaN stays NaN, 5 same.
    table(vec![
        ("id", i64s(vec![6, 5, 4, 3, 2])),
        (
            "amount",
            f64s(vec![
                Some(60.0),
                Some(50.0),
                Some(f64::NAN),
                None,
                Some(20.5),
            ]),
        ),
        (
            "name",
            strs(vec![Some("f"), Some("e"), Some("d"), Some("C"), Some("b")]),
        ),
    ])
}

fn run(b: &Table, a: &Table, c: &DiffConfig) -> Diff {
    diff(b, a, c).unwrap()
}

/// A diff as a step records it: with each side's key hashes.
fn recorded(b: &Table, a: &Table, c: &DiffConfig) -> Diff {
    pipeproof_core::diff_known(b, None, a, c).unwrap()
}

fn cells(d: &Diff) -> Vec<(String, String, Option<String>, Option<String>)> {
    let c = &d.details.changed;
    let key = pipeproof_core::diff::format_column(c.column(0)).unwrap();
    let col = pipeproof_core::diff::format_column(c.column_by_name("column").unwrap()).unwrap();
    let old = pipeproof_core::diff::format_column(c.column_by_name("old").unwrap()).unwrap();
    let new = pipeproof_core::diff::format_column(c.column_by_name("new").unwrap()).unwrap();
    (0..c.num_rows())
        .map(|i| {
            (
                key[i].clone().unwrap(),
                col[i].clone().unwrap(),
                old[i].clone(),
                new[i].clone(),
            )
        })
        .collect()
}

both! {
    fn keyed_counts_and_cells() {
        let d = run(&before(), &after(), &DiffConfig::keyed(["id"]));
        let s = &d.summary;
        assert_eq!((s.rows_before, s.rows_after), (5, 5));
        assert_eq!((s.added, s.removed, s.changed, s.unchanged), (1, 1, 2, 2));
        assert!(!s.is_same());
        let per: Vec<(String, u64)> = s.columns.iter().map(|c| (c.name.clone(), c.changed)).collect();
        assert_eq!(per, vec![("amount".into(), 1), ("name".into(), 1)]);
        assert_eq!(
            cells(&d),
            vec![
                ("3".into(), "name".into(), Some("c".into()), Some("C".into())),
                ("2".into(), "amount".into(), Some("20.0".into()), Some("20.5".into())),
            ]
        );
        assert_eq!(d.details.added.num_rows(), 1);
        assert_eq!(d.details.removed.num_rows(), 1);
        let row = d.details.added.column_by_name("_row").unwrap().as_any().downcast_ref::<UInt64Array>().unwrap();
        assert_eq!(row.value(0), 0, "id 6 is row 0 of after");
    }

    fn same_table_shuffled_is_same() {
        let b = before();
        let a = permute(&b, &[4, 2, 0, 1, 3]);
        let d = run(&b, &a, &DiffConfig::keyed(["id"]));
        assert!(d.summary.is_same());
        assert_eq!(d.summary.unchanged, 5);
        assert_eq!(d.before.fingerprint.content_root, d.after.fingerprint.content_root);
        let m = run(&b, &a, &DiffConfig::default());
        assert!(m.summary.is_same());
    }

    fn multiset_diff_counts_duplicates() {
        let b = table(vec![("x", i64s(vec![1, 1, 2, 3]))]);
        let a = table(vec![("x", i64s(vec![1, 2, 2, 4]))]);
        let d = run(&b, &a, &DiffConfig::default());
        assert_eq!((d.summary.added, d.summary.removed, d.summary.changed), (2, 2, 0));
        assert_eq!(d.summary.unchanged, 2);
    }

    fn tolerances_count_apart() {
        let b = table(vec![("id", i64s(vec![1, 2])), ("v", f64s(vec![Some(1.0), Some(100.0)]))]);
        let a = table(vec![("id", i64s(vec![1, 2])), ("v", f64s(vec![Some(1.0000001), Some(101.0)]))]);
        let exact = run(&b, &a, &DiffConfig::keyed(["id"]));
        assert_eq!(exact.summary.changed, 2);
        let loose = run(&b, &a, &DiffConfig { abs_tol: 1e-6, ..DiffConfig::keyed(["id"]) });
        assert_eq!((loose.summary.changed, loose.summary.within_tolerance), (1, 1));
        assert_eq!(loose.summary.columns[0].within_tolerance, 1);
        let rel = run(&b, &a, &DiffConfig { rel_tol: 0.02, ..DiffConfig::keyed(["id"]) });
        assert_eq!((rel.summary.changed, rel.summary.within_tolerance), (0, 2));
    }

    fn an_infinity_is_within_no_tolerance() {
        let b = table(vec![("id", i64s(vec![1, 2, 3, 4])), ("v", f64s(vec![Some(f64::INFINITY), Some(1e308), Some(f64::NAN), Some(f64::INFINITY)]))]);
        let a = table(vec![("id", i64s(vec![1, 2, 3, 4])), ("v", f64s(vec![Some(f64::NEG_INFINITY), Some(f64::INFINITY), Some(1.0), Some(f64::INFINITY)]))]);
        for c in [
            DiffConfig { rel_tol: 0.01, ..DiffConfig::keyed(["id"]) },
            DiffConfig { abs_tol: 1.0, ..DiffConfig::keyed(["id"]) },
            DiffConfig { abs_tol: f64::MAX, rel_tol: 1.0, ..DiffConfig::keyed(["id"]) },
        ] {
            let s = run(&b, &a, &c).summary;
            assert_eq!((s.changed, s.within_tolerance, s.unchanged), (3, 0, 1), "{c:?}");
        }
    }

    fn a_column_added_or_removed_is_a_difference_but_no_row_changed() {
        let b = table(vec![("id", i64s(vec![1, 2, 3])), ("v", i64s(vec![1, 2, 3])), ("s", strs(vec![Some("a"), None, Some("c")]))]);
        let a = table(vec![("id", i64s(vec![3, 1, 2])), ("v", i64s(vec![3, 1, 2]))]);
        for c in [DiffConfig::keyed(["id"]), DiffConfig::default()] {
            for (x, y) in [(&b, &a), (&a, &b)] {
                let s = run(x, y, &c).summary;
                assert_eq!((s.added, s.removed, s.changed, s.unchanged, s.within_tolerance), (0, 0, 0, 3, 0), "{c:?}");
                assert!(!s.is_same(), "a column is gone or new: {c:?}");
            }
        }
        // A column added or removed that the diff ignores is no difference either.
        let s = run(&b, &a, &DiffConfig { ignore_columns: vec!["s".into()], ..DiffConfig::keyed(["id"]) }).summary;
        assert!(!s.is_same() && s.is_same_ignoring(&["s".into()]));
        // The same values as int32, columns in another order: the same content (reported as
        // a schema change, not a difference); as strings, a different column.
        let narrow = table(vec![("s", strs(vec![Some("a"), None, Some("c")])), ("id", i64s(vec![1, 2, 3])), ("v", Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef)]);
        let s = run(&b, &narrow, &DiffConfig::keyed(["id"])).summary;
        assert_eq!((s.changed, s.unchanged), (0, 3));
        assert!(s.schema.reordered && s.schema.retyped.len() == 1, "{:?}", s.schema);
        assert!(s.is_same());
        let text = table(vec![("id", i64s(vec![1, 2, 3])), ("v", strs(vec![Some("1"), Some("2"), Some("3")])), ("s", strs(vec![Some("a"), None, Some("c")]))]);
        let s = run(&b, &text, &DiffConfig::keyed(["id"])).summary;
        assert!(s.schema.retyped[0].family_changed);
        assert!(!s.is_same());
    }

    fn schema_changes_are_reported_and_common_columns_compared() {
        let b = table(vec![("id", i64s(vec![1, 2])), ("a", i64s(vec![1, 2])), ("gone", i64s(vec![0, 0]))]);
        let a = table(vec![
            ("a", Arc::new(Int32Array::from(vec![1, 3])) as ArrayRef),
            ("id", i64s(vec![1, 2])),
            ("new", strs(vec![Some("x"), None])),
        ]);
        let d = run(&b, &a, &DiffConfig::keyed(["id"]));
        let s = &d.summary.schema;
        assert_eq!(s.added.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["new"]);
        assert_eq!(s.removed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["gone"]);
        assert_eq!(s.retyped.len(), 1);
        assert!(!s.retyped[0].family_changed, "int64 -> int32 is a width change");
        assert!(s.reordered);
        assert_eq!(d.summary.compared_columns, vec!["a".to_string()]);
        assert_eq!((d.summary.changed, d.summary.unchanged), (1, 1), "a: 2 -> 3 only");
    }

    fn ignored_columns_are_not_compared() {
        let c = DiffConfig { ignore_columns: vec!["amount".into(), "name".into()], ..DiffConfig::keyed(["id"]) };
        let d = run(&before(), &after(), &c);
        assert_eq!((d.summary.changed, d.summary.added, d.summary.removed), (0, 1, 1));
    }

    fn composite_keys() {
        let b = table(vec![("k1", i64s(vec![1, 1, 2])), ("k2", strs(vec![Some("a"), Some("b"), Some("a")])), ("v", i64s(vec![1, 2, 3]))]);
        let a = table(vec![("k1", i64s(vec![1, 1, 2])), ("k2", strs(vec![Some("b"), Some("a"), Some("a")])), ("v", i64s(vec![2, 9, 3]))]);
        let d = run(&b, &a, &DiffConfig::keyed(["k1", "k2"]));
        assert_eq!((d.summary.changed, d.summary.unchanged), (1, 2));
    }

    fn duplicate_keys_are_an_error_with_examples() {
        let b = table(vec![("id", i64s(vec![1, 2, 2, 3, 3])), ("v", i64s(vec![0; 5]))]);
        let a = table(vec![("id", i64s(vec![1, 2, 3])), ("v", i64s(vec![0; 3]))]);
        match diff(&b, &a, &DiffConfig::keyed(["id"])) {
            Err(Error::DuplicateKeys { side: Side::Before, count: 4, examples, .. }) => {
                assert!(examples.contains("id=2") && examples.contains("id=3"), "{examples}");
            }
            other => panic!("expected duplicate keys, got {other:?}"),
        }
    }

    fn columns_named_as_the_details_own_are_refused_naming_them() {
        let t = |names: [&str; 2]| table(vec![(names[0], i64s(vec![1, 2])), (names[1], i64s(vec![3, 4]))]);
        for (b, a, key, want) in [
            (t(["id", "_row"]), t(["id", "v"]), vec!["id"], ("column", "_row", Side::Before)),
            (t(["id", "v"]), t(["_row", "v"]), vec![], ("column", "_row", Side::After)),
            (t(["column", "v"]), t(["column", "v"]), vec!["column"], ("key column", "column", Side::Before)),
            (t(["old", "new"]), t(["old", "new"]), vec!["new", "old"], ("key column", "new", Side::Before)),
        ] {
            let e = diff(&b, &a, &DiffConfig::keyed(key)).unwrap_err();
            let Error::ReservedName { what, column, side } = &e else { panic!("{e}") };
            assert_eq!((*what, column.as_str(), *side), want);
            assert!(e.to_string().contains("rename it"), "{e}");
        }
        // As a column beside the key, `column`, `old` and `new` are fine.
        let d = run(&t(["id", "old"]), &t(["id", "new"]), &DiffConfig::keyed(["id"]));
        assert!(!d.summary.is_same());
    }

    fn null_and_missing_keys_are_errors() {
        let b = table(vec![("id", Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef)]);
        let a = table(vec![("id", i64s(vec![1, 2]))]);
        let e = diff(&b, &a, &DiffConfig::keyed(["id"])).unwrap_err();
        assert!(matches!(e, Error::NullKeys { side: Side::Before, count: 1, .. }), "{e}");
        let e = diff(&a, &a, &DiffConfig::keyed(["nope"])).unwrap_err();
        assert!(e.to_string().contains("key column `nope` is not in the before table; its columns are: id"), "{e}");
    }

    fn summary_only_threshold_skips_details() {
        let c = DiffConfig { summary_only_threshold: 0.1, ..DiffConfig::keyed(["id"]) };
        let d = run(&before(), &after(), &c);
        assert!(d.summary.summary_only);
        assert_eq!(d.summary.changed, 2, "counts are kept");
        assert_eq!(d.summary.columns[0].changed, 1, "per-column counts are kept");
        assert_eq!(d.details.changed.num_rows() + d.details.added.num_rows() + d.details.removed.num_rows(), 0);
    }

    fn the_default_threshold_keeps_details_however_many_rows_differ() {
        // Unkeyed, 60 of 100 rows replaced: 60 added and 60 removed, 120 differing rows of
        // the 160 of either side. Keyed, every key replaced: 200 of 200.
        let b = table(vec![("id", i64s((0..100).collect())), ("v", i64s(vec![0; 100]))]);
        let a = table(vec![("id", i64s((0..100).collect())), ("v", i64s((0..100).map(|i| (i < 60) as i64).collect()))]);
        let d = run(&b, &a, &DiffConfig::default());
        assert_eq!((d.summary.added, d.summary.removed), (60, 60));
        assert!(!d.summary.summary_only);
        assert_eq!(d.details.added.num_rows(), 60);
        let c = table(vec![("id", i64s((100..200).collect())), ("v", i64s(vec![0; 100]))]);
        let d = run(&b, &c, &DiffConfig::keyed(["id"]));
        assert_eq!((d.summary.added, d.summary.removed), (100, 100));
        assert!(!d.summary.summary_only);
        assert_eq!(d.details.removed.num_rows(), 100);
        // The share is over the rows of either side: 120 / 160 = 0.75.
        let d = run(&b, &a, &DiffConfig { summary_only_threshold: 0.75, ..DiffConfig::default() });
        assert!(!d.summary.summary_only);
        let d = run(&b, &a, &DiffConfig { summary_only_threshold: 0.74, ..DiffConfig::default() });
        assert!(d.summary.summary_only);
    }

    fn max_detail_rows_caps_details_not_counts() {
        let b = table(vec![("id", i64s((0..100).collect())), ("v", i64s(vec![0; 100]))]);
        let a = table(vec![("id", i64s((0..100).collect())), ("v", i64s(vec![1; 100]))]);
        let d = run(&b, &a, &DiffConfig { max_detail_rows: 7, ..DiffConfig::keyed(["id"]) });
        assert_eq!(d.summary.changed, 100);
        assert_eq!(d.details.changed.num_rows(), 7);
        assert!(d.summary.details_truncated);
    }

    fn chunk_rows_does_not_change_results() {
        let n = 2000i64;
        let b = table(vec![("id", i64s((0..n).collect())), ("v", i64s((0..n).map(|i| i % 7).collect()))]);
        let a = table(vec![
            ("id", i64s((100..n + 100).rev().collect())),
            ("v", i64s((100..n + 100).rev().map(|i| if i % 13 == 0 { -1 } else { i % 7 }).collect())),
        ]);
        let whole = run(&b, &a, &DiffConfig::keyed(["id"]));
        for chunk in [1, 7, 100, 1999] {
            let c = DiffConfig { chunk_rows: chunk, ..DiffConfig::keyed(["id"]) };
            let d = run(&b.rechunk(333), &a.rechunk(128), &c);
            assert_eq!(d.summary, whole.summary, "chunk_rows = {chunk}");
            assert_eq!(cells(&d), cells(&whole));
        }
        assert_eq!((whole.summary.added, whole.summary.removed), (100, 100));
    }

    fn invalid_configs_are_rejected() {
        let t = before();
        for c in [
            DiffConfig { chunk_rows: 0, ..DiffConfig::default() },
            DiffConfig { abs_tol: -1.0, ..DiffConfig::default() },
            DiffConfig { summary_only_threshold: 2.0, ..DiffConfig::default() },
            DiffConfig { ignore_columns: vec!["zzz".into()], ..DiffConfig::default() },
        ] {
            assert!(matches!(diff(&t, &t, &c), Err(Error::InvalidConfig(_))), "{c:?}");
        }
    }
}

#[cfg(all(feature = "parallel", not(target_arch = "wasm32")))]
#[test]
fn one_thread_and_many_threads_agree() {
    let n = 50_000i64;
    let b = table(vec![
        ("id", i64s((0..n).collect())),
        ("v", i64s((0..n).map(|i| i * 3).collect())),
    ]);
    let a = table(vec![
        ("id", i64s((0..n).rev().collect())),
        (
            "v",
            i64s(
                (0..n)
                    .rev()
                    .map(|i| if i % 101 == 0 { 0 } else { i * 3 })
                    .collect(),
            ),
        ),
    ]);
    let c = DiffConfig::keyed(["id"]);
    let many = run(&b.rechunk(4096), &a.rechunk(5000), &c);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let one = pool.install(|| run(&b, &a, &c));
    assert_eq!(one.summary, many.summary);
    assert_eq!(one.before.fingerprint, many.before.fingerprint);
    assert_eq!(one.after.row_hashes, many.after.row_hashes);
    assert_eq!(cells(&one), cells(&many));
}

/// What a server knows of a stored step: its fingerprint, row and key hashes and statistics,
/// as a diff of it computed them.
fn known(t: &Table, c: &DiffConfig) -> pipeproof_core::diff::Known {
    let d = recorded(t, t, c);
    let stats = t
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let pair = d
                .summary
                .stats
                .iter()
                .find(|p| &p.name == f.name())
                .unwrap();
            pair.after.clone().unwrap()
        })
        .collect();
    pipeproof_core::diff::Known {
        stats,
        fingerprinted: d.after,
        key: c.key.clone(),
    }
}

fn same_diff(a: &Diff, b: &Diff) {
    assert_eq!(a.summary, b.summary);
    assert_eq!(a.details.added, b.details.added);
    assert_eq!(a.details.removed, b.details.removed);
    assert_eq!(a.details.changed, b.details.changed);
    assert_eq!(a.before.fingerprint, b.before.fingerprint);
    assert_eq!(a.before.row_hashes, b.before.row_hashes);
    assert_eq!(a.before.key_hashes, b.before.key_hashes);
    assert_eq!(a.after.fingerprint, b.after.fingerprint);
}

both! {
    fn a_known_before_side_gives_the_same_diff() {
        let (b, a) = (before(), after());
        let mut ignoring = DiffConfig::keyed(["id"]);
        ignoring.ignore_columns = vec!["amount".into()];
        for c in [DiffConfig::keyed(["id"]), DiffConfig::default(), ignoring] {
            let scanned = recorded(&b, &a, &c);
            let k = known(&b, &c);
            let taken = pipeproof_core::diff_known(&b, Some(k), &a, &c).unwrap();
            same_diff(&taken, &scanned);
        }
    }

    fn only_a_recorded_diff_keeps_key_hashes() {
        let (b, a) = (before(), after());
        let c = DiffConfig::keyed(["id"]);
        let plain = run(&b, &a, &c);
        let rec = recorded(&b, &a, &c);
        assert_eq!(plain.before.key_hashes, None);
        assert_eq!(plain.after.key_hashes, None);
        assert_eq!(rec.before.key_hashes.as_ref().map(|k| k.len() as u64), Some(b.num_rows()));
        assert_eq!(rec.after.key_hashes.as_ref().map(|k| k.len() as u64), Some(a.num_rows()));
        assert_eq!(plain.summary, rec.summary);
        assert_eq!(plain.after.row_hashes, rec.after.row_hashes);
    }

    fn a_known_side_under_another_key_is_not_taken() {
        let (b, a) = (before(), after());
        let c = DiffConfig::keyed(["id"]);
        let taken = pipeproof_core::diff_known(&b, Some(known(&b, &DiffConfig::default())), &a, &c);
        same_diff(&taken.unwrap(), &recorded(&b, &a, &c));
        let by_name = known(&b, &DiffConfig::keyed(["name"]));
        let taken = pipeproof_core::diff_known(&b, Some(by_name), &a, &c).unwrap();
        same_diff(&taken, &recorded(&b, &a, &c));
    }
}
