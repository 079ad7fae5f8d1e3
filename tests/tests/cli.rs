//! The `pipeproof` command line on real files: fingerprint and diff across Parquet, CSV and
//! Arrow, their output, exit codes (0 same, 1 different, 2 error), and clear errors that name
//! the file, the column and the problem for bad input. Never a panic.

use std::process::{Command, Output};
use std::sync::Arc;

use pipeproof_tests::{binary, run, write};

use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, ListArray, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn batch(ids: Vec<i64>, amounts: Vec<Option<f64>>, names: Vec<Option<&str>>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", arrow_schema::DataType::Int64, true),
        Field::new("amount", arrow_schema::DataType::Float64, true),
        Field::new("name", arrow_schema::DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(Float64Array::from(amounts)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .unwrap()
}

fn before() -> RecordBatch {
    batch(
        vec![1, 2, 3, 4],
        vec![Some(10.0), Some(20.5), None, Some(40.0)],
        vec![Some("a"), Some("b"), Some("c"), None],
    )
}

fn after() -> RecordBatch {
    // 1 removed, 5 added, 2: amount 20.5 -> 21.5, 4: name null -> "d".
    batch(
        vec![5, 4, 3, 2],
        vec![Some(50.0), Some(40.0), None, Some(21.5)],
        vec![Some("e"), Some("d"), Some("c"), Some("b")],
    )
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

#[test]
fn fingerprint_is_the_same_whatever_the_format() {
    let dir = tempfile::tempdir().unwrap();
    let b = before();
    let mut roots = Vec::new();
    for name in ["t.parquet", "t.arrow", "t.csv"] {
        let path = write(dir.path(), name, &b);
        let o = run(&["fingerprint", &path, "--format", "json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let f = &json(&o)["fingerprint"];
        assert_eq!(f["rows"], 4);
        assert_eq!(f["spec"], "pipeproof-fingerprint-v1");
        roots.push(f["content_root"].as_str().unwrap().to_string());
    }
    assert!(roots.windows(2).all(|w| w[0] == w[1]), "{roots:?}");
    let table = run(&[
        "fingerprint",
        &dir.path().join("t.parquet").to_string_lossy(),
    ]);
    let text = stdout(&table);
    assert!(
        text.contains(&format!("content root  {}", roots[0])),
        "{text}"
    );
    assert!(
        text.contains("amount") && text.contains("float64"),
        "{text}"
    );
}

/// Files compressed as pandas, pyarrow and polars write them by default (Feather with LZ4
/// frames, Parquet with zstd or snappy, an IPC stream with LZ4), read by the binary's own
/// file readers: one table, one fingerprint, and diffs of them the same.
#[test]
fn compressed_files_fingerprint_and_diff_as_the_same_table() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data/compressed");
    let mut roots = Vec::new();
    let names = [
        "lz4.arrow",
        "zstd.arrow",
        "lz4.arrows",
        "zstd.parquet",
        "snappy.parquet",
    ];
    for name in names {
        let path = format!("{data}/{name}");
        let o = run(&["fingerprint", &path, "--format", "json"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        roots.push(
            json(&o)["fingerprint"]["content_root"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        let o = run(&[
            "diff",
            &format!("{data}/snappy.parquet"),
            &path,
            "--key",
            "id",
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{name}: {}{}",
            stdout(&o),
            stderr(&o)
        );
    }
    assert!(roots.windows(2).all(|w| w[0] == w[1]), "{roots:?}");
}

/// A table whose text is not all ASCII, with nulls and empty strings.
fn text_batch(names: &[Option<&str>]) -> RecordBatch {
    batch(
        (0..names.len() as i64).collect(),
        vec![Some(1.5); names.len()],
        names.to_vec(),
    )
}

#[test]
fn an_arrow_file_fingerprints_as_the_same_table_in_parquet() {
    // The fingerprint reads an Arrow file's text as bytes and checks it as it hashes it:
    // the whole fingerprint, column digests too, is that of the text read as text.
    let dir = tempfile::tempdir().unwrap();
    let b = text_batch(&[
        Some("café"),
        None,
        Some(""),
        Some("São Paulo €"),
        Some("plain"),
    ]);
    let fingerprints: Vec<serde_json::Value> = ["t.arrow", "t.parquet"]
        .into_iter()
        .map(|name| {
            let path = write(dir.path(), name, &b);
            let o = run(&["fingerprint", &path, "--format", "json"]);
            assert!(o.status.success(), "{}", stderr(&o));
            json(&o)["fingerprint"].clone()
        })
        .collect();
    assert_eq!(fingerprints[0], fingerprints[1]);
    assert_eq!(fingerprints[0]["rows"], 5);
}

#[test]
fn an_arrow_file_whose_text_is_not_utf8_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bad.arrow",
        &text_batch(&[Some("fine"), None, Some("caf\u{e9}-MARK"), Some("fine")]),
    );
    // Damage the "é" (C3 A9) of row 2's text into bytes no UTF-8 has.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(7)
        .position(|w| w == b"\xc3\xa9-MARK")
        .expect("the text is in the file");
    bytes[at..at + 2].copy_from_slice(b"\xff\xff");
    std::fs::write(&path, &bytes).unwrap();
    let o = run(&["fingerprint", &path]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let e = stderr(&o);
    for want in ["bad.arrow", "column `name`", "row 2", "not valid UTF-8"] {
        assert!(e.contains(want), "no `{want}` in: {e}");
    }
    // The diff reads the text as text: arrow's check finds the same damage.
    let good = write(dir.path(), "good.arrow", &text_batch(&[Some("fine")]));
    let o = run(&["diff", &good, &path, "--key", "id"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("bad.arrow"), "{}", stderr(&o));
}

#[test]
fn diff_reports_counts_cells_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let b = write(dir.path(), "before.parquet", &before());
    let a = write(dir.path(), "after.csv", &after());
    let o = run(&["diff", &b, &a, "--key", "id", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let j = json(&o);
    let s = &j["summary"];
    assert_eq!(
        (
            s["added"].as_u64(),
            s["removed"].as_u64(),
            s["changed"].as_u64()
        ),
        (Some(1), Some(1), Some(2))
    );
    let cells = j["details"]["changed"].as_array().unwrap();
    let mut seen: Vec<(i64, String, String, String)> = cells
        .iter()
        .map(|c| {
            (
                c["id"].as_i64().unwrap(),
                c["column"].as_str().unwrap().into(),
                c["old"].as_str().unwrap_or("null").into(),
                c["new"].as_str().unwrap_or("null").into(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (2, "amount".into(), "20.5".into(), "21.5".into()),
            (4, "name".into(), "null".into(), "d".into())
        ]
    );
    // An empty cell is written as null, not left out.
    let was_null = cells.iter().find(|c| c["id"] == 4).unwrap();
    assert_eq!(
        was_null.as_object().unwrap().get("old"),
        Some(&serde_json::Value::Null),
        "{was_null}"
    );
    assert_eq!(j["details"]["added"][0]["id"], 5);
    assert_eq!(j["details"]["removed"][0]["id"], 1);

    let table = run(&["diff", &b, &a, "--key", "id"]);
    let text = stdout(&table);
    for want in [
        "added",
        "removed",
        "changed",
        "amount",
        "20.5 → 21.5",
        "content roots",
    ] {
        assert!(text.contains(want), "no `{want}` in:\n{text}");
    }

    // The same data in another format, rows shuffled: the same (exit 0).
    let shuffled = write(
        dir.path(),
        "shuffled.arrow",
        &batch(
            vec![3, 1, 4, 2],
            vec![None, Some(10.0), Some(40.0), Some(20.5)],
            vec![Some("c"), Some("a"), None, Some("b")],
        ),
    );
    let o = run(&["diff", &b, &shuffled, "--key", "id"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = run(&["diff", &b, &shuffled]);
    assert_eq!(o.status.code(), Some(0), "multiset diff: {}", stdout(&o));
    // Tolerance makes 20.5 vs 21.5 equal.
    let o = run(&[
        "diff",
        &b,
        &a,
        "--key",
        "id",
        "--abs-tol",
        "2",
        "--format",
        "json",
    ]);
    assert_eq!(json(&o)["summary"]["changed"], 1);

    // A column dropped, every row otherwise the same: a difference (exit 1), with or
    // without a key, and nothing counted within a tolerance no one gave.
    let fewer = RecordBatch::try_from_iter(
        before()
            .schema()
            .fields()
            .iter()
            .zip(before().columns())
            .filter(|(f, _)| f.name() != "name")
            .map(|(f, c)| (f.name().clone(), c.clone())),
    )
    .unwrap();
    let fewer = write(dir.path(), "fewer.parquet", &fewer);
    for key in [&["--key", "id"][..], &[]] {
        let o = run(&[&["diff", &b, &fewer, "--format", "json"][..], key].concat());
        assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
        let s = &json(&o)["summary"];
        assert_eq!(
            (s["unchanged"].as_u64(), s["within_tolerance"].as_u64()),
            (Some(4), Some(0)),
            "{s}"
        );
        assert_eq!(s["schema"]["removed"][0]["name"], "name", "{s}");
    }
}

#[test]
fn json_details_show_timestamps_in_named_zones() {
    let dir = tempfile::tempdir().unwrap();
    let side = |ns: Vec<i64>| {
        let ts = arrow_array::TimestampNanosecondArray::from(ns).with_timezone("UTC");
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", arrow_schema::DataType::Int64, false),
            Field::new("at", ts.data_type().clone(), true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
                Arc::new(ts),
            ],
        )
        .unwrap()
    };
    let day = 86_400_000_000_000;
    let b = write(dir.path(), "before.parquet", &side(vec![0, day]));
    let a = write(dir.path(), "after.arrow", &side(vec![0, 2 * day]));
    let o = run(&["diff", &b, &a, "--key", "id", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let cell = &json(&o)["details"]["changed"][0];
    assert_eq!(cell["column"], "at");
    let (old, new) = (cell["old"].as_str().unwrap(), cell["new"].as_str().unwrap());
    assert!(
        old.starts_with("1970-01-02") && new.starts_with("1970-01-03"),
        "{cell}"
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let b = write(dir.path(), "before.parquet", &before());
    let a = write(dir.path(), "after.parquet", &after());
    let check = |args: &[&str], wants: &[&str]| {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stdout(&o));
        let e = stderr(&o);
        for w in wants {
            assert!(e.contains(w), "{args:?}: no `{w}` in: {e}");
        }
    };
    check(
        &["diff", &b, &a, "--key", "nope"],
        &["key column `nope`", "before", "id, amount, name"],
    );
    check(
        &["fingerprint", "/no/such/file.parquet"],
        &["cannot open /no/such/file.parquet: No such file"],
    );
    check(
        &["diff", &b, &a, "--key", "id", "--abs-tol", "-1"],
        &["invalid value '-1' for '--abs-tol <ABS_TOL>': must be a finite number, 0 or more"],
    );
    let here = dir.path().to_string_lossy();
    check(
        &["fingerprint", &here],
        &[&format!(
            "{here} is a directory; name a Parquet, CSV or Arrow file"
        )],
    );
    check(&["diff", &b, &here], &[&format!("{here} is a directory")]);

    let bytes = std::fs::read(&b).unwrap();
    let truncated = dir.path().join("truncated.parquet");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    check(
        &["fingerprint", &truncated.to_string_lossy()],
        &["truncated.parquet", "Parquet"],
    );
    check(
        &["diff", &b, &truncated.to_string_lossy(), "--key", "id"],
        &["truncated.parquet"],
    );

    // Damage on which arrow's decoder panics is an error like any other.
    let damaged = dir.path().join("damaged.arrows");
    std::fs::write(
        &damaged,
        pipeproof_tests::ipc_stream_arrow_panics_on(&before()),
    )
    .unwrap();
    check(
        &["fingerprint", &damaged.to_string_lossy()],
        &[
            "damaged.arrows",
            "Arrow IPC stream",
            "the input is malformed",
        ],
    );
    check(
        &["diff", &b, &damaged.to_string_lossy(), "--key", "id"],
        &["damaged.arrows", "the input is malformed"],
    );

    let dups = write(
        dir.path(),
        "dups.parquet",
        &batch(vec![1, 1, 2], vec![None; 3], vec![None; 3]),
    );
    check(
        &["diff", &dups, &a, "--key", "id"],
        &["not unique", "before", "id=1"],
    );

    let nulls = {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "id",
            arrow_schema::DataType::Int64,
            true,
        )]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef],
        )
        .unwrap()
    };
    let nulls = write(dir.path(), "nulls.parquet", &nulls);
    check(
        &["diff", &b, &nulls, "--key", "id"],
        &["null", "after", "`id`"],
    );

    let nested = write(dir.path(), "nested.parquet", &nested());
    check(
        &["fingerprint", &nested],
        &["`tags`", "not support", "nested.parquet"],
    );
    check(
        &["diff", &b, &a, "--key", "id", "--chunk-rows", "0"],
        &["invalid value '0' for '--chunk-rows <CHUNK_ROWS>': must be at least 1"],
    );
}

/// A table with a column of a type fingerprint v1 does not support: `tags`, a list.
fn nested() -> RecordBatch {
    let list =
        ListArray::from_iter_primitive::<arrow_array::types::Int32Type, _, _>(vec![Some(vec![
            Some(1),
        ])]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", arrow_schema::DataType::Int64, true),
        Field::new("tags", list.data_type().clone(), true),
    ]));
    let columns = vec![
        Arc::new(Int64Array::from(vec![1])) as ArrayRef,
        Arc::new(list),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

#[test]
fn a_diff_error_names_the_file_it_is_about() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "after.parquet", &after());
    let twice = dir.path().join("twice.csv");
    std::fs::write(&twice, "id,name,name\n1,a,b\n").unwrap();
    let twice = twice.to_string_lossy();
    let nested = write(dir.path(), "nested.parquet", &nested());
    let keyless = write(
        dir.path(),
        "keyless.csv",
        &RecordBatch::try_from_iter([("code", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
            .unwrap(),
    );
    // Each problem is in the earlier file: the error says so after `cannot diff A against
    // B:`, which names both.
    for (file, key, want) in [
        (&*nested, "id", "column `tags` has type list"),
        (&*twice, "id", "column name `name` appears more than once"),
        (
            &*keyless,
            "id",
            "key column `id` is not in the before table",
        ),
    ] {
        let o = run(&["diff", file, &a, "--key", key]);
        assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
        assert!(
            stderr(&o).contains(&format!("cannot diff {file} against {a}: {file}: {want}")),
            "{}",
            stderr(&o)
        );
    }
    // And in the later one.
    let o = run(&["diff", &a, &nested, "--key", "id"]);
    assert!(
        stderr(&o).contains(&format!("against {nested}: {nested}: column `tags`")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_table_cuts_long_values_and_shows_no_cells_when_asked_for_none() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(100_000);
    let b = dir.path().join("before.csv");
    let a = dir.path().join("after.csv");
    std::fs::write(&b, "id,v\n1,a\n2,b\n").unwrap();
    std::fs::write(&a, format!("id,v\n1,{long}\n2,b\n")).unwrap();
    let (b, a) = (b.to_string_lossy(), a.to_string_lossy());

    let o = run(&["diff", &b, &a, "--key", "id"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.len() < 2_000, "{} bytes printed", text.len());
    let cell = format!("a → {}… (100,000 bytes)", "x".repeat(80));
    assert!(
        text.lines().any(|l| l.ends_with(&cell)),
        "no `{cell}` in:\n{text}"
    );
    // JSON has every value whole.
    let o = run(&["diff", &b, &a, "--key", "id", "--format", "json"]);
    assert_eq!(json(&o)["details"]["changed"][0]["new"], long.as_str());

    // --show 0: the counts by column, and no section of cells.
    let o = run(&["diff", &b, &a, "--key", "id", "--show", "0"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("changed cells by column"), "{text}");
    assert!(!text.contains("first changed cells"), "{text}");
    assert!(!text.contains("xxxx"), "{text}");
}

#[test]
fn output_to_a_closed_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let b = write(dir.path(), "before.parquet", &before());
    let a = write(dir.path(), "after.parquet", &after());
    let closed = |args: &[&str]| {
        let mut child = Command::new(binary())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        child.wait_with_output().unwrap()
    };
    let out = closed(&["fingerprint", &b]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    // JSON written as it is made, the reader gone before the end: the diff's exit code.
    let out = closed(&["diff", &b, &a, "--key", "id", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_step_that_strips_leading_zeros_from_a_csv_column_is_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (b, a) = (path("before.csv"), path("after.csv"));
    std::fs::write(&b, "id,zip\n1,00501\n2,10001\n").unwrap();
    std::fs::write(&a, "id,zip\n1,501\n2,10001\n").unwrap();
    let o = run(&["diff", &b, &a, "--key", "id", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let j = json(&o);
    // Before: text (it holds a padded value); after: all plain numbers.
    let retyped = &j["summary"]["schema"]["retyped"][0];
    assert_eq!(
        (&retyped["name"], &retyped["before"], &retyped["after"]),
        (&"zip".into(), &"utf8".into(), &"int64".into()),
        "{j}"
    );
    let cells = j["details"]["changed"].as_array().unwrap();
    let one = cells.iter().find(|c| c["id"] == 1).expect("id 1 changed");
    assert_eq!((&one["old"], &one["new"]), (&"00501".into(), &"501".into()));
}

/// A file whose name says one format and whose first bytes another is read as its name
/// says, and the error says what its bytes are and how to read it as that.
#[test]
fn a_file_named_as_another_format_is_told_what_it_starts_as() {
    let dir = tempfile::tempdir().unwrap();
    let parquet = write(dir.path(), "t.parquet", &before());
    let misnamed = dir.path().join("t.csv");
    std::fs::rename(&parquet, &misnamed).unwrap();
    let o = run(&["fingerprint", &misnamed.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(
            "t.csv: its name says CSV, but its first bytes are those of a Parquet file: \
             rename it, or give its format"
        ),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "fingerprint",
        &misnamed.to_string_lossy(),
        "--input-format",
        "parquet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
