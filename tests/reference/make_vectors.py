#!/usr/bin/env python3
"""Generates the golden vectors of fingerprint v1 in docs/spec/vectors/fingerprint-v1/.

    python3 tests/reference/make_vectors.py          # write vectors that do not exist yet
    python3 tests/reference/make_vectors.py --check  # regenerate in memory, compare, write nothing

Inputs are built deterministically from literals (no randomness, no clock). Each case's
expected JSON is computed by the independent reference (fingerprint_v1.py), then checked by the
Rust implementation (core/tests/vectors.rs, natively and in wasm): a vector is only committed
when both agree.

Vectors are never edited: an existing file whose content would change is an error. A change to
the encoding is a new spec version with its own folder of vectors.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fingerprint_v1 as ref  # noqa: E402

OUT = ref.VECTORS
# Tables up to this many rows publish every cell, row hash and key hash.
FULL_ROWS = 64


def arrow_file(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


def parquet_file(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def floats(bits: list[int | None], np_uint, np_float, pa_type) -> pa.Array:
    """A float array from exact bit patterns (payload NaNs included); None is null."""
    raw = np.array([b if b is not None else 0 for b in bits], dtype=np_uint).view(np_float)
    mask = np.array([b is None for b in bits])
    return pa.array(raw, type=pa_type, mask=mask)


def ints_view(values: list[int | None], storage: pa.DataType, logical: pa.DataType) -> pa.Array:
    """An array of a temporal type from its raw stored integers."""
    return pa.array(values, type=storage).view(logical)


def case_ints():
    u64max = 2**64 - 1
    t = pa.table({
        "id": pa.array([0, 1, 2, 3, 4, 5], pa.int64()),
        "i8": pa.array([-128, -1, 0, 1, 127, None], pa.int8()),
        "i16": pa.array([-32768, -1, 0, 1, 32767, None], pa.int16()),
        "i32": pa.array([-(2**31), -1, 0, 1, 2**31 - 1, None], pa.int32()),
        "i64": pa.array([-(2**63), -1, 0, 1, 2**63 - 1, None], pa.int64()),
        "u8": pa.array([0, 1, 255, None, 7, 200], pa.uint8()),
        "u16": pa.array([0, 1, 65535, None, 7, 200], pa.uint16()),
        "u32": pa.array([0, 1, 2**32 - 1, None, 7, 200], pa.uint32()),
        "u64": pa.array([0, 2**63 - 1, 2**63, u64max, None, 1], pa.uint64()),
    })
    return ("ints", "integers of every width: extremes, -1/0/1, nulls; uint64 above the i64 "
            "range uses the wide tag 0x12", t, ["id"])


def case_floats():
    f64 = [
        0x3FF8000000000000,  # 1.5
        0x8000000000000000,  # -0.0
        0x0000000000000000,  # 0.0
        0x7FF8000000000000,  # NaN
        None,
        0x7FF0000000000000,  # +inf
        0xFFF0000000000000,  # -inf
        0xFFF0000000000001,  # negative signalling NaN with a payload
        0x0000000000000001,  # smallest subnormal
    ]
    f32 = [0x3FC00000, 0x80000000, 0x00000000, 0x7FC00000, None, 0x7F800000, 0xFF800000,
           0xFF800001, 0x00000001]
    f16 = [0x3E00, 0x8000, 0x0000, 0x7E00, None, 0x7C00, 0xFC00, 0xFC01, 0x0001]
    t = pa.table({
        "id": pa.array(range(9), pa.int32()),
        "f16": floats(f16, np.uint16, np.float16, pa.float16()),
        "f32": floats(f32, np.uint32, np.float32, pa.float32()),
        "f64": floats(f64, np.uint64, np.float64, pa.float64()),
    })
    return ("floats", "float16/32/64 of the same values: 1.5, -0.0 (encoded as +0.0), 0.0, "
            "NaN, null, +inf, -inf, a payload NaN (encoded as the canonical NaN), the smallest "
            "subnormal", t, ["id"])


def case_strings():
    s = ["", "a", "\u00e9", "e\u0301", "\U0001F600", "null", None, "x" * 200]
    b = [b"", b"\x00", b"\xff\xfe", b"e\xcc\x81", b"\xf0\x9f\x98\x80", b"null", None, b"x" * 200]
    t = pa.table({
        "id": pa.array(range(8), pa.int64()),
        "s": pa.array(s, pa.string()),
        "ls": pa.array(s, pa.large_string()),
        "sv": pa.array(s, pa.string_view()),
        "b": pa.array(b, pa.binary()),
        "lb": pa.array(b, pa.large_binary()),
        "fb": pa.array([b"abc", b"\x00\x00\x00", None, b"xyz", b"abc", b"   ", b"\xff\xff\xff",
                        b"e\xcc\x81"], pa.binary(3)),
        "\u00e9t\u00e9": pa.array(["summer"] * 8, pa.string()),
    })
    return ("strings", "utf8, large_utf8 and utf8_view of the same strings (empty, precomposed "
            "and combining accents: not normalised, emoji, null, a 200-byte string with a two-byte "
            "LEB128 length); binary, large_binary, fixed_size_binary; a non-ASCII column name "
            "sorted by its UTF-8 bytes", t, ["id"])


def case_dictionary():
    values = ["red", None, "green", "red", "", "blue"]
    d32 = pa.array(values, pa.string()).dictionary_encode()
    # dictionary<int8, utf8> with a null key, a null value and a duplicated value.
    d8 = pa.DictionaryArray.from_arrays(
        pa.array([0, None, 2, 1, 3, 4], pa.int8()),
        pa.array(["red", "red", "green", "", "blue", None], pa.string()),
    )
    dint = pa.DictionaryArray.from_arrays(
        pa.array([0, 1, 0, None, 2, 1], pa.int16()), pa.array([10, -3, 2**40], pa.int64())
    )
    t = pa.table({
        "id": pa.array(range(6), pa.int64()),
        "plain": pa.array(values, pa.string()),
        "d32": d32,
        "d8": d8,
        "dint": dint,
        "dint_plain": pa.array([10, -3, 10, None, 2**40, -3], pa.int64()),
    })
    return ("dictionary", "dictionary-encoded columns encode the values their keys point at: "
            "d32 and plain have equal cells (dictionary<int32, utf8>), d8 has a null key, a "
            "duplicated value and a null value, dint is a dictionary of int64 equal to "
            "dint_plain", t, ["id"])


def case_temporal():
    # Instants: 2024-03-31T01:30:00Z (Paris changes to summer time at 02:00 that night),
    # 1969-12-31T23:59:59Z, the epoch, null.
    secs = [1711848600, -1, 0, None]

    def ts(unit, tz=None):
        m = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
        return ints_view([None if s is None else s * m for s in secs], pa.int64(),
                         pa.timestamp(unit, tz))

    t = pa.table({
        "id": pa.array(range(4), pa.int64()),
        "ts_s": ts("s"),
        "ts_ms": ts("ms"),
        "ts_us": ts("us"),
        "ts_ns": ts("ns"),
        "ts_ms_utc": ts("ms", "UTC"),
        "ts_us_paris": ts("us", "Europe/Paris"),
        "ts_ns_kolkata": ts("ns", "+05:30"),
        # 3000-01-01 and -10^10 s: outside the i64 nanosecond range, so the wide tag 0x16.
        "ts_s_wide": ints_view([32503680000, 0, -(10**10), None], pa.int64(), pa.timestamp("s")),
        "date32": ints_view([19813, -1, 0, None], pa.int32(), pa.date32()),
        # date64 is milliseconds; a value that is not midnight floors to its day.
        "date64": ints_view([19813 * 86_400_000, -86_400_000 + 5, 0, None], pa.int64(),
                            pa.date64()),
        "t32_s": ints_view([5400, 86399, 0, None], pa.int32(), pa.time32("s")),
        "t32_ms": ints_view([5_400_000, 86_399_000, 0, None], pa.int32(), pa.time32("ms")),
        "t64_us": ints_view([5_400_000_000, 86_399_000_000, 0, None], pa.int64(),
                            pa.time64("us")),
        "t64_ns": ints_view([5_400_000_000_000, 86_399_000_000_000, 0, None], pa.int64(),
                            pa.time64("ns")),
        "dur_s": ints_view([1, -1, 0, None], pa.int64(), pa.duration("s")),
        "dur_ms": ints_view([1000, -1000, 0, None], pa.int64(), pa.duration("ms")),
        "dur_us": ints_view([10**6, -(10**6), 0, None], pa.int64(), pa.duration("us")),
        "dur_ns": ints_view([10**9, -(10**9), 0, None], pa.int64(), pa.duration("ns")),
        "dur_s_wide": ints_view([10**10, -(10**10), 9, None], pa.int64(), pa.duration("s")),
    })
    return ("temporal", "the same instants as timestamps in s, ms, us and ns, with no zone, "
            "UTC, Europe/Paris and +05:30 (equal cells, different schema spellings); "
            "timestamps and durations beyond the i64 nanosecond range (wide tags); date32, "
            "date64 (floored to the day), time32/time64 in every unit, durations", t, ["id"])


def case_decimals():
    def dec(values, t):
        return pa.array([None if v is None else Decimal(v) for v in values], t)

    t = pa.table({
        "id": pa.array(range(5), pa.int64()),
        "d128": dec(["1.50", "-25.00", "0.00", None, "100.00"], pa.decimal128(10, 2)),
        "d128_s1": dec(["1.5", "-25.0", "0.0", None, "100.0"], pa.decimal128(5, 1)),
        "d256": dec(["12345678901234567890123456789012345.12345", "-0.00001", "0.00000", None,
                     "100.00000"], pa.decimal256(40, 5)),
        "d32": dec(["1.500", "-25.000", "0.000", None, "100.000"], pa.decimal32(7, 3)),
        "d64": dec(["1.5000", "-25.0000", "0.0000", None, "100.0000"], pa.decimal64(15, 4)),
    })
    return ("decimals", "decimal32/64/128/256 of equal values at different scales encode alike: "
            "trailing zeros are removed from the unscaled value (the scale may become negative: "
            "100 is 1 with scale -2), zero has scale 0", t, ["id"])


def case_misc():
    t = pa.table({
        "id": pa.array(range(3), pa.int64()),
        "flag": pa.array([True, False, None], pa.bool_()),
        "nothing": pa.nulls(3, pa.null()),
        "iv": pa.array([(1, 2, 3), (-1, 0, -5), None], pa.month_day_nano_interval()),
    })
    return ("misc", "booleans, a column of Arrow type null, month-day-nano intervals", t, ["id"])


def case_empty():
    t = pa.table({"id": pa.array([], pa.int64()), "name": pa.array([], pa.string())})
    return ("empty", "a table with a schema and no rows: the content root of no rows, the "
            "order root of no rows", t, ["id"])


def case_composite():
    t = pa.table({
        "region": pa.array(["eu", "us", "eu", "us", "apac"], pa.string()),
        "id": pa.array([1, 1, 2, 2, 1], pa.int32()),
        "amount": pa.array([10.5, 10.5, None, 7.25, 0.0], pa.float64()),
    })
    return ("composite_key", "a composite key [region, id]: key cells are hashed in key order "
            "(not name order); the same id in two regions gives different key hashes", t,
            ["region", "id"])


def case_people():
    csv = (
        "id,name,score,active,joined\n"
        "1,Ada,91.5,true,2024-01-02\n"
        "2,Bj\u00f6rk,78.0,false,2023-12-31\n"
        "3,,,true,\n"
        "4,\u674e\u96f7,-0.0,,1969-07-20\n"
        "5,Zo\u00eb,100.25,false,2000-02-29\n"
    )
    t = pa.table({
        "id": pa.array([1, 2, 3, 4, 5], pa.int64()),
        "name": pa.array(["Ada", "Bj\u00f6rk", None, "\u674e\u96f7", "Zo\u00eb"], pa.string()),
        "score": pa.array([91.5, 78.0, None, -0.0, 100.25], pa.float64()),
        "active": pa.array([True, False, True, None, False], pa.bool_()),
        "joined": pa.array([19724, 19722, None, -165, 11016], pa.int32()).view(pa.date32()),
    })
    return ("people", "one table as Arrow IPC file, Parquet and CSV: all three give the same "
            "schema hash, row hashes and roots", t, ["id"], {"people.csv": csv.encode()})


def case_csv_rules():
    # One column per rule of the spec's section 13; CRLF line ends, and a blank line, which
    # is skipped.
    rows = [
        "id,spaced,plus,floats,mixed,not_floats,flags,bool_and_int,quoted,nothing,code,big,"
        "ts_offsets,ts_fraction,dates,bad_date,bad_zone,ns_range,minutes,digits",
        '1, 42,+1,NaN,1,Inf,True,true,"",,007,9223372036854775808,'
        "2024-03-31T01:30:00+02:00,2024-03-31T01:30:00.5,2024-02-29,2024-02-30,"
        "2024-03-31T01:30:00 Europe/Paris,2262-04-11T23:47:16.854775808,2024-03-31T01:30,"
        "\u0663",
        '2,42 ,"42",nan,2.5,+inf,FALSE,1,"a,b","",12,1,'
        "2024-03-31 01:30:00Z,2024-03-31T01:30:00.123456789-05:30,0000-01-01,2024-02-29,"
        "2024-03-31T01:30:00Z,2262-04-11T23:47:16.854775807,2024-03-31T01:30:00,3",
        '3," 7 ",-9223372036854775808,inf,.5,Infinity,tRuE,0,"say ""hi""",,,,'
        "2024-03-31T01:30:00,2024-03-31 01:30:00.25z,1969-12-31,,,,10:30:00,",
        "",
        '4, ,9223372036854775807,-inf,1.,NA,,false,"two\nlines",,-0,-9223372036854775809,'
        "2024-03-31T03:30:00 +04,1969-12-31T23:59:59.999+0000,9999-12-31,,,,,",
        "5,,,1e3,1E-2,null,false,,null,,0,,2024-03-31,,,,,,,",
        "6,1,+0,-0.0,,1,TRUE,,NULL,,1,,,,,,,,,",
    ]
    csv = "\r\n".join(rows) + "\r\n"
    day = 19813 * 86400  # 2024-03-31T00:00:00Z in seconds
    ns = 10**9
    t = pa.table({
        "id": pa.array(range(1, 7), pa.int64()),
        "spaced": pa.array([" 42", "42 ", " 7 ", " ", None, "1"], pa.string()),
        "plus": pa.array([1, 42, -(2**63), 2**63 - 1, None, 0], pa.int64()),
        "floats": pa.array([float("nan"), float("nan"), float("inf"), float("-inf"), 1000.0,
                            -0.0], pa.float64()),
        "mixed": pa.array([1.0, 2.5, 0.5, 1.0, 0.01, None], pa.float64()),
        "not_floats": pa.array(["Inf", "+inf", "Infinity", "NA", "null", "1"], pa.string()),
        "flags": pa.array([True, False, True, None, False, True], pa.bool_()),
        "bool_and_int": pa.array(["true", "1", "0", "false", None, None], pa.string()),
        "quoted": pa.array([None, "a,b", 'say "hi"', "two\nlines", "null", "NULL"], pa.string()),
        "nothing": pa.nulls(6, pa.null()),
        "code": pa.array(["007", "12", None, "-0", "0", "1"], pa.string()),
        "big": pa.array(["9223372036854775808", "1", None, "-9223372036854775809", None, None],
                        pa.string()),
        "ts_offsets": ints_view([day - 1800, day + 5400, day + 5400, day - 1800, day, None],
                                pa.int64(), pa.timestamp("s")),
        "ts_fraction": ints_view([(day + 5400) * ns + 5 * 10**8,
                                  (day + 7 * 3600) * ns + 123456789,
                                  (day + 5400) * ns + 25 * 10**7, -(10**6), None, None],
                                 pa.int64(), pa.timestamp("ns")),
        "dates": ints_view([19782, -719528, -1, 2932896, None, None], pa.int32(), pa.date32()),
        "bad_date": pa.array(["2024-02-30", "2024-02-29", None, None, None, None], pa.string()),
        "bad_zone": pa.array(["2024-03-31T01:30:00 Europe/Paris", "2024-03-31T01:30:00Z", None,
                              None, None, None], pa.string()),
        "ns_range": pa.array(["2262-04-11T23:47:16.854775808", "2262-04-11T23:47:16.854775807",
                              None, None, None, None], pa.string()),
        "minutes": pa.array(["2024-03-31T01:30", "2024-03-31T01:30:00", "10:30:00", None, None,
                             None], pa.string()),
        "digits": pa.array(["\u0663", "3", None, None, None, None], pa.string()),
    })
    return ("csv_rules", "a CSV file read by the rules of the spec's section 13, and the table "
            "it reads as (Arrow IPC): no spaces trimmed, + signs and quoted numbers, NaN/nan/"
            "inf/-inf but not Inf or Infinity, booleans in any case but not 1/0, NA and null as "
            "text, empty fields (quoted or not) null, a column of nulls, zero padding, integers "
            "beyond int64 as text, timestamps with offsets (converted to UTC, no zone), no zone "
            "or a date alone, units from the longest fraction, and columns that are text because "
            "one value is no valid date or timestamp (a day that does not exist, a zone's name, "
            "beyond the nanosecond range, no seconds) or has digits of another script", t,
            ["id"], {"csv_rules.csv": csv.encode()})


def case_large():
    n = 20_000
    t = pa.table({
        "id": pa.array(range(n), pa.int32()),
        "g": pa.array([i % 7 - 3 for i in range(n)], pa.int8()),
    })
    return ("large", "20,000 rows: buckets hold several leaves of 32 row hashes, so the "
            "inclusion proofs have non-empty bucket paths; only samples of the row hashes are "
            "published (the order root pins them all)", t, ["id"])


CASES = [case_ints, case_floats, case_strings, case_dictionary, case_temporal, case_decimals,
         case_misc, case_empty, case_composite, case_people, case_large,
         case_csv_rules]


def proof_rows(fp: ref.Fingerprint) -> list[int]:
    """Rows to publish proofs for: row 0, and for big tables a row in the last, partial leaf
    of the fullest bucket and one in a middle leaf."""
    if fp.rows == 0:
        return []
    rows = [0]
    if fp.rows > FULL_ROWS:
        _, buckets, _, _ = ref.content_tree(fp.row_hashes)
        fullest = max(range(256), key=lambda b: (len(buckets[b]), -b))
        position = {h: i for i, h in enumerate(fp.row_hashes)}
        rows.append(position[buckets[fullest][-1]])
        rows.append(position[buckets[fullest][40]])
    return rows


def expected(name, description, table, key, inputs) -> dict:
    fp = ref.Fingerprint(table, key)
    out = {
        "spec": ref.SPEC,
        "case": name,
        "description": description,
        "inputs": inputs,
        "key": key,
        "rows": fp.rows,
        "schema": [
            {"name": f.name, "type": ref.type_name(f.type), "family": ref.family(f.type),
             "nullable": f.nullable}
            for f in fp.schema
        ],
        "schema_hash": fp.schema_hash.hex(),
        "content_root": fp.content_root.hex(),
        "order_root": fp.order_root.hex(),
        "hash_order": fp.hash_order,
        "row_key": fp.row_key.hex(),
        "key_key": fp.key_key.hex(),
        "columns": fp.columns,
    }
    if fp.rows <= FULL_ROWS:
        out["cells"] = [[fp.cells[c][r].hex() for c in fp.hash_order] for r in range(fp.rows)]
        out["row_hashes"] = ref.hexes(fp.row_hashes)
        out["key_hashes"] = ref.hexes(fp.key_hashes)
    else:
        samples = [0, 1, 2, fp.rows // 2, fp.rows - 1]
        out["row_hash_samples"] = {str(i): fp.row_hashes[i].hex() for i in samples}
        out["key_hash_samples"] = {str(i): fp.key_hashes[i].hex() for i in samples}
    out["proofs"] = [{"row": r, **ref.row_proof(fp.row_hashes, fp.row_hashes[r])}
                     for r in proof_rows(fp)]
    return out


def contexts() -> dict:
    """The six derive-key contexts and the keys they give with empty key material (the
    constant keys; row, key and column keys are published in each case)."""
    names = {"row": ref.CTX_ROW, "key": ref.CTX_KEY, "column": ref.CTX_COLUMN,
             "schema": ref.CTX_SCHEMA, "node": ref.CTX_NODE, "order": ref.CTX_ORDER}
    return {
        "spec": ref.SPEC,
        "case": "contexts",
        "description": "each derive-key context string and BLAKE3 derive_key(context, empty "
                       "material); the merkle node key's root of the empty tree; the content "
                       "root of no rows",
        "contexts": {k: {"context": c, "empty_material_key": ref.derive_key(c, b"").hex()}
                     for k, c in names.items()},
        "empty_tree_root": ref.merkle_root([]).hex(),
        "empty_content_root": ref.content_tree([])[0].hex(),
    }


def build() -> dict[str, bytes]:
    files: dict[str, bytes] = {
        "contexts.json": (json.dumps(contexts(), indent=1) + "\n").encode(),
    }
    for case in CASES:
        name, description, table, key, *extra = case()
        files[f"{name}.arrow"] = arrow_file(table)
        inputs = [{"file": f"{name}.arrow", "format": "arrow-file"}]
        for fname, data in (extra[0] if extra else {}).items():
            files[fname] = data
            if name == "people":
                files["people.parquet"] = parquet_file(table)
                inputs.append({"file": "people.parquet", "format": "parquet"})
            inputs.append({"file": fname, "format": "csv"})
        exp = expected(name, description, table, key, inputs)
        files[f"{name}.json"] = (json.dumps(exp, indent=1, ensure_ascii=False) + "\n").encode()
    return files


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare the expected JSON with a regeneration; write nothing")
    args = parser.parse_args(argv)
    files = build()
    bad = 0
    for name, data in files.items():
        path = OUT / name
        if path.exists():
            # Input bytes may differ between pyarrow releases; the values and the expected
            # JSON must not.
            if path.suffix == ".json" and path.read_bytes() != data:
                print(f"{path}: a regeneration differs. Vectors are never edited: a change to "
                      "the encoding is a new spec version with a new folder.", file=sys.stderr)
                bad += 1
            continue
        if args.check:
            print(f"{path}: missing", file=sys.stderr)
            bad += 1
            continue
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path.relative_to(ref.ROOT)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
