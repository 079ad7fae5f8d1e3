"""pytest entry for the independent fingerprint v1 reference: one test per golden vector, plus
checks that the reference really detects a wrong value and that a regeneration matches."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fingerprint_v1 as ref  # noqa: E402
import make_vectors  # noqa: E402

VECTORS = sorted(ref.VECTORS.glob("*.json"))


def test_vectors_exist():
    names = {p.stem for p in VECTORS}
    assert {"contexts", "ints", "floats", "strings", "dictionary", "temporal", "decimals",
            "misc", "empty", "composite_key", "people", "large", "csv_rules"} <= names


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path):
    assert ref.check_vector(path) == []


def test_a_changed_value_is_caught(tmp_path):
    src = ref.VECTORS / "composite_key.json"
    want = json.loads(src.read_text())
    want["row_hashes"][2] = "00" * 32
    want["proofs"][0]["top_path"][3] = "11" * 32
    (tmp_path / "composite_key.json").write_text(json.dumps(want))
    arrow = (ref.VECTORS / "composite_key.arrow").read_bytes()
    (tmp_path / "composite_key.arrow").write_bytes(arrow)
    problems = ref.check_vector(tmp_path / "composite_key.json")
    assert any("row_hashes" in p for p in problems)
    assert any("proof of row 0 verifies" in p for p in problems)


def test_regeneration_matches_the_committed_json():
    files = make_vectors.build()
    for name, data in files.items():
        if name.endswith(".json"):
            assert (ref.VECTORS / name).read_bytes() == data, name


def test_merkle_audit_paths_match_rfc9162_checking():
    leaves = [ref.leaf_hash(bytes([i])) for i in range(13)]
    root = ref.merkle_root(leaves)
    for m in range(13):
        path = ref.audit_path(leaves, m)
        assert ref.root_from_path(leaves[m], m, 13, path) == root
        assert ref.root_from_path(leaves[m], (m + 1) % 13, 13, path) != root


def test_log_vector():
    import log_v1

    assert log_v1.check_vector() == []
    assert log_v1.main(["--check"]) == 0


def test_the_log_reference_refuses_a_changed_history(tmp_path):
    import log_v1

    want = json.loads(log_v1.OUT.read_text())
    proof = next(p for p in want["consistency"] if p["from"] == 3 and p["to"] == 7)
    proof["path"][0] = "22" * 32
    want["roots"][5] = "33" * 32
    (tmp_path / "log.json").write_text(json.dumps(want))
    problems = log_v1.check_vector(tmp_path / "log.json")
    assert "consistency 3 -> 7 does not verify" in problems
    assert any(p.startswith("roots differ") for p in problems)
    assert any("inclusion of 0 in 5" in p for p in problems)


@pytest.mark.parametrize("text, line", [
    (b'id,v\n1,"unterminated\n2,b\n', 2),
    (b'id,v\r\n1,"a\r\nb"\r\n2,x\r3,"c""d\n4,e\n', 5),
    (b'"id,v\n1,2\n', 1),
    (b'\xef\xbb\xbf"id","v\n1,2\n', 1),
    (b'id,v,w\n1,"x,y\n2,b,c\n', 2),
    (b'id,v\n1,"abc""\n', 2),
    (b'id,v\n1,a\n2,"b', 3),
])
def test_a_csv_file_ending_inside_a_quoted_field_is_refused(tmp_path, text, line):
    path = tmp_path / "cut.csv"
    path.write_bytes(text)
    with pytest.raises(ref.CsvError) as e:
        ref.read_csv(path)
    assert str(e.value) == (f"a quoted field opened on line {line} is never closed "
                            "(is the file cut short?)")


def test_an_arrow_stream_without_its_end_of_stream_marker_is_refused():
    import pyarrow as pa
    from pyarrow import ipc

    table = pa.table({"id": [1, 2, 3]})
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as w:
        w.write_table(table.slice(0, 2))
        w.write_table(table.slice(2))
    whole = sink.getvalue().to_pybytes()
    assert whole.endswith(b"\xff\xff\xff\xff\x00\x00\x00\x00")
    assert ref.read_stream(whole).equals(table)
    # The marker written before Arrow 0.15.
    assert ref.read_stream(whole[:-8] + b"\x00\x00\x00\x00").equals(table)
    # Cut after the second batch, and after the first.
    first = cut_after_first(table)
    assert whole.startswith(first)
    for cut in (whole[:-8], first):
        with pytest.raises(ValueError) as e:
            ref.read_stream(cut)
        assert str(e.value) == ref.STREAM_WITHOUT_END


def cut_after_first(table):
    """The stream of `table`'s first two rows as one batch, without its end-of-stream marker:
    the bytes a stream of both batches starts with."""
    import pyarrow as pa
    from pyarrow import ipc

    sink = pa.BufferOutputStream()
    w = ipc.new_stream(sink, table.schema)
    w.write_table(table.slice(0, 2))
    return sink.getvalue().to_pybytes()


def test_csv_quotes_that_close_still_read(tmp_path):
    path = tmp_path / "quotes.csv"
    path.write_bytes('\ufeffid,v\n1,"a\nb"\n2,x"y\n3,"ab"c"d\n4,""""\n5,""\n6,"z"'.encode())
    assert ref.read_csv(path).column("v").to_pylist() == [
        "a\nb", 'x"y', 'abc"d', '"', None, "z"]
