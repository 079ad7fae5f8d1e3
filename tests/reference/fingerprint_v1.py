#!/usr/bin/env python3
"""An independent implementation of pipeproof fingerprint v1 (docs/spec/fingerprint-v1.md).

Written from the spec, not from the Rust code: it reads each golden vector's input files with
pyarrow, computes every value the vector's expected JSON states, and compares them.

    python3 tests/reference/fingerprint_v1.py            # check every vector, exit 0 on match
    python3 tests/reference/fingerprint_v1.py -v         # also print each value checked

Values are taken from Arrow arrays as plain integers, bytes and text (raw storage reinterpreted
with `view`, never through pyarrow's own hashing or formatting), so the only shared ground with
the Rust implementation is the spec and the BLAKE3 algorithm.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import struct
import sys
from pathlib import Path

import blake3
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

SPEC = "pipeproof-fingerprint-v1"
ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "docs" / "spec" / "vectors" / "fingerprint-v1"

CTX_ROW = "pipeproof fingerprint v1 row"
CTX_KEY = "pipeproof fingerprint v1 key"
CTX_COLUMN = "pipeproof fingerprint v1 column"
CTX_SCHEMA = "pipeproof fingerprint v1 schema"
CTX_NODE = "pipeproof fingerprint v1 merkle node"
CTX_ORDER = "pipeproof fingerprint v1 order"

T_NULL, T_BOOL, T_INT, T_FLOAT, T_STRING, T_BINARY = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05
T_TIMESTAMP, T_DATE, T_TIME, T_DURATION, T_DECIMAL, T_INTERVAL = 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B
T_INT_WIDE, T_TIMESTAMP_WIDE, T_DURATION_WIDE = 0x12, 0x16, 0x19

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
NANOS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
CANONICAL_NAN = 0x7FF8_0000_0000_0000


# ---------------------------------------------------------------------------------------------
# BLAKE3 primitives
# ---------------------------------------------------------------------------------------------


def derive_key(context: str, material: bytes) -> bytes:
    return blake3.blake3(material, derive_key_context=context).digest()


def keyed(key: bytes, data: bytes) -> bytes:
    return blake3.blake3(data, key=key).digest()


def u64(n: int) -> bytes:
    return n.to_bytes(8, "little", signed=False)


def put_str(s: str) -> bytes:
    b = s.encode("utf-8")
    return u64(len(b)) + b


def names_material(names: list[str]) -> bytes:
    return u64(len(names)) + b"".join(put_str(n) for n in names)


NODE_KEY = derive_key(CTX_NODE, b"")


def leaf_hash(data: bytes) -> bytes:
    return keyed(NODE_KEY, b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return keyed(NODE_KEY, b"\x01" + left + right)


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1, recursively: split at the largest power of two below n."""
    n = len(leaves)
    if n == 0:
        return keyed(NODE_KEY, b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def audit_path(leaves: list[bytes], m: int) -> list[bytes]:
    """RFC 9162 section 2.1.3.1: PATH(m, D[n]), leaf-side sibling first."""
    n = len(leaves)
    if n <= 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return audit_path(leaves[:k], m) + [merkle_root(leaves[k:])]
    return audit_path(leaves[k:], m - k) + [merkle_root(leaves[:k])]


def root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    """RFC 9162 section 2.1.3.2: the root an inclusion proof implies, or None if malformed."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


# ---------------------------------------------------------------------------------------------
# Canonical cell encoding
# ---------------------------------------------------------------------------------------------


def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def i64le(v: int) -> bytes:
    return v.to_bytes(8, "little", signed=True)


def wrap_i64le(v: int) -> bytes:
    return (v % 2**64).to_bytes(8, "little")


def integer(narrow: int, wide: int, v: int) -> bytes:
    if I64_MIN <= v <= I64_MAX:
        return bytes([narrow]) + i64le(v)
    return bytes([wide]) + v.to_bytes(16, "little", signed=True)


def float_bits(bits64: int) -> bytes:
    exponent = (bits64 >> 52) & 0x7FF
    mantissa = bits64 & ((1 << 52) - 1)
    if exponent == 0x7FF and mantissa != 0:
        bits64 = CANONICAL_NAN
    elif bits64 & ~(1 << 63) == 0:
        bits64 = 0
    return bytes([T_FLOAT]) + bits64.to_bytes(8, "little")


def float_value(x: float) -> bytes:
    if math.isnan(x):
        return float_bits(CANONICAL_NAN)
    return float_bits(struct.unpack("<Q", struct.pack("<d", x))[0])


def decimal(unscaled: int, scale: int) -> bytes:
    if unscaled == 0:
        scale = 0
    else:
        while unscaled % 10 == 0:
            unscaled //= 10
            scale -= 1
    return (
        bytes([T_DECIMAL])
        + scale.to_bytes(4, "little", signed=True)
        + unscaled.to_bytes(32, "little", signed=True)
    )


def interval(months: int, days: int, nanos: int) -> bytes:
    return (
        bytes([T_INTERVAL])
        + months.to_bytes(4, "little", signed=True)
        + days.to_bytes(4, "little", signed=True)
        + nanos.to_bytes(8, "little", signed=True)
    )


def raw_ints(arr: pa.Array, width: int, signed: bool) -> list[int | None]:
    """The stored integers of a fixed-width array, reinterpreted (no conversion)."""
    t = {
        (1, True): pa.int8(), (2, True): pa.int16(), (4, True): pa.int32(), (8, True): pa.int64(),
        (1, False): pa.uint8(), (2, False): pa.uint16(), (4, False): pa.uint32(),
        (8, False): pa.uint64(),
    }[(width, signed)]
    return arr.view(t).to_pylist()


def encode_column(arr: pa.Array) -> list[bytes]:
    """The canonical encoding of every cell of a column, in row order."""
    t = arr.type
    n = len(arr)
    valid = [v for v in arr.is_valid().to_pylist()] if n else []

    def per_value(values, f):
        return [f(v) if ok else bytes([T_NULL]) for v, ok in zip(values, valid)]

    if pa.types.is_null(t):
        return [bytes([T_NULL])] * n
    if pa.types.is_dictionary(t):
        return encode_column(arr.dictionary_decode())
    if pa.types.is_boolean(t):
        return per_value(arr.to_pylist(), lambda v: bytes([T_BOOL, 1 if v else 0]))
    if pa.types.is_integer(t):
        values = raw_ints(arr, t.bit_width // 8, pa.types.is_signed_integer(t))
        return per_value(values, lambda v: integer(T_INT, T_INT_WIDE, v))
    if pa.types.is_float16(t):
        bits = raw_ints(arr, 2, False)
        return per_value(bits, lambda b: float_value(struct.unpack("<e", struct.pack("<H", b))[0]))
    if pa.types.is_float32(t):
        bits = raw_ints(arr, 4, False)
        return per_value(bits, lambda b: float_value(struct.unpack("<f", struct.pack("<I", b))[0]))
    if pa.types.is_float64(t):
        return per_value(raw_ints(arr, 8, False), float_bits)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return per_value(
            arr.to_pylist(), lambda s: bytes([T_STRING]) + leb128(len(s.encode())) + s.encode()
        )
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
        or pa.types.is_fixed_size_binary(t)
    ):
        return per_value(arr.to_pylist(), lambda b: bytes([T_BINARY]) + leb128(len(b)) + b)
    if pa.types.is_timestamp(t):
        m = NANOS[t.unit]
        return per_value(
            raw_ints(arr, 8, True), lambda v: integer(T_TIMESTAMP, T_TIMESTAMP_WIDE, v * m)
        )
    if pa.types.is_duration(t):
        m = NANOS[t.unit]
        return per_value(
            raw_ints(arr, 8, True), lambda v: integer(T_DURATION, T_DURATION_WIDE, v * m)
        )
    if pa.types.is_date32(t):
        return per_value(raw_ints(arr, 4, True), lambda d: bytes([T_DATE]) + i64le(d))
    if pa.types.is_date64(t):
        # Milliseconds since the epoch, floored to the day (Python's // floors).
        return per_value(
            raw_ints(arr, 8, True), lambda ms: bytes([T_DATE]) + i64le(ms // 86_400_000)
        )
    if pa.types.is_time32(t) or pa.types.is_time64(t):
        m = NANOS[t.unit]
        width = 4 if pa.types.is_time32(t) else 8
        # An out-of-range Time64(us) (no time of day) wraps modulo 2^64 (spec, "Times").
        return per_value(
            raw_ints(arr, width, True), lambda v: bytes([T_TIME]) + wrap_i64le(v * m)
        )
    if pa.types.is_decimal(t):
        scale = t.scale

        def dec(d):
            sign, digits, exponent = d.as_tuple()
            unscaled = int("".join(map(str, digits)) or "0") * (10 ** (exponent + scale))
            return decimal(-unscaled if sign else unscaled, scale)

        return per_value(arr.to_pylist(), dec)
    if t == pa.month_day_nano_interval():
        return per_value(arr.to_pylist(), lambda v: interval(v.months, v.days, v.nanoseconds))
    raise ValueError(f"type {t} is not supported by fingerprint v1")


def type_name(t: pa.DataType) -> str:
    """The spec's spelling of an Arrow type (section 'Schema hash')."""
    simple = {
        pa.null(): "null", pa.bool_(): "bool",
        pa.int8(): "int8", pa.int16(): "int16", pa.int32(): "int32", pa.int64(): "int64",
        pa.uint8(): "uint8", pa.uint16(): "uint16", pa.uint32(): "uint32", pa.uint64(): "uint64",
        pa.float16(): "float16", pa.float32(): "float32", pa.float64(): "float64",
        pa.string(): "utf8", pa.large_string(): "large_utf8", pa.string_view(): "utf8_view",
        pa.binary(): "binary", pa.large_binary(): "large_binary", pa.binary_view(): "binary_view",
        pa.date32(): "date32", pa.date64(): "date64",
        pa.month_day_nano_interval(): "interval[month_day_nano]",
    }
    if t in simple:
        return simple[t]
    if pa.types.is_fixed_size_binary(t):
        return f"fixed_size_binary[{t.byte_width}]"
    if pa.types.is_timestamp(t):
        return f"timestamp[{t.unit}]" if t.tz is None else f"timestamp[{t.unit}, tz={t.tz}]"
    if pa.types.is_time32(t):
        return f"time32[{t.unit}]"
    if pa.types.is_time64(t):
        return f"time64[{t.unit}]"
    if pa.types.is_duration(t):
        return f"duration[{t.unit}]"
    if pa.types.is_decimal(t):
        return f"decimal{t.bit_width}({t.precision},{t.scale})"
    if pa.types.is_dictionary(t):
        return f"dictionary<{type_name(t.index_type)}, {type_name(t.value_type)}>"
    raise ValueError(f"type {t} is not supported by fingerprint v1")


def family(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return family(t.value_type)
    checks = [
        ("null", pa.types.is_null), ("bool", pa.types.is_boolean), ("int", pa.types.is_integer),
        ("float", pa.types.is_floating),
        ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)
         or pa.types.is_string_view(t)),
        ("binary", lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t)
         or pa.types.is_binary_view(t) or pa.types.is_fixed_size_binary(t)),
        ("timestamp", pa.types.is_timestamp), ("date", pa.types.is_date),
        ("time", pa.types.is_time), ("duration", pa.types.is_duration),
        ("decimal", pa.types.is_decimal), ("interval", pa.types.is_interval),
    ]
    for name, check in checks:
        if check(t):
            return name
    raise ValueError(f"type {t} is not supported by fingerprint v1")


# ---------------------------------------------------------------------------------------------
# Fingerprint
# ---------------------------------------------------------------------------------------------


def schema_hash(schema: pa.Schema) -> bytes:
    buf = u64(len(schema))
    for f in schema:
        buf += put_str(f.name) + put_str(type_name(f.type)) + bytes([1 if f.nullable else 0])
    return keyed(derive_key(CTX_SCHEMA, b""), buf)


def name_order(schema: pa.Schema) -> list[str]:
    """Column names sorted by their UTF-8 bytes."""
    return sorted(schema.names, key=lambda n: n.encode("utf-8"))


def content_tree(row_hashes: list[bytes]):
    """(content root, buckets of sorted row hashes, bucket leaf hashes, top leaves)."""
    buckets: list[list[bytes]] = [[] for _ in range(256)]
    for h in sorted(row_hashes):
        buckets[h[0]].append(h)
    leaves = [
        [leaf_hash(b"".join(bucket[i : i + 32])) for i in range(0, len(bucket), 32)]
        for bucket in buckets
    ]
    top = [leaf_hash(merkle_root(bl)) for bl in leaves]
    return merkle_root(top), buckets, leaves, top


def row_proof(row_hashes: list[bytes], row_hash: bytes) -> dict:
    _, buckets, leaves, top = content_tree(row_hashes)
    b = row_hash[0]
    index = buckets[b].index(row_hash)
    li = index // 32
    return {
        "row_hash": row_hash.hex(),
        "leaf": [h.hex() for h in buckets[b][li * 32 : li * 32 + 32]],
        "leaf_index": li,
        "leaf_count": len(leaves[b]),
        "bucket_path": [h.hex() for h in audit_path(leaves[b], li)],
        "top_path": [h.hex() for h in audit_path(top, b)],
    }


def verify_proof(proof: dict, content_root: bytes) -> bool:
    row = bytes.fromhex(proof["row_hash"])
    leaf = [bytes.fromhex(h) for h in proof["leaf"]]
    if row not in leaf or len(leaf) > 32:
        return False
    bucket_root = root_from_path(
        leaf_hash(b"".join(leaf)),
        proof["leaf_index"],
        proof["leaf_count"],
        [bytes.fromhex(h) for h in proof["bucket_path"]],
    )
    if bucket_root is None:
        return False
    top = root_from_path(
        leaf_hash(bucket_root), row[0], 256, [bytes.fromhex(h) for h in proof["top_path"]]
    )
    return top == content_root


class Fingerprint:
    """Everything fingerprint v1 computes for one table."""

    def __init__(self, table: pa.Table, key: list[str]):
        table = table.combine_chunks()
        self.table = table
        self.schema = table.schema
        self.rows = table.num_rows
        cells = {f.name: encode_column(table.column(f.name).combine_chunks()) if self.rows else []
                 for f in self.schema}
        self.cells = cells
        self.hash_order = name_order(self.schema)
        self.row_key = derive_key(CTX_ROW, names_material(self.hash_order))
        self.encoded_rows = [
            b"".join(cells[name][r] for name in self.hash_order) for r in range(self.rows)
        ]
        self.row_hashes = [keyed(self.row_key, e) for e in self.encoded_rows]
        self.key = key
        self.key_key = derive_key(CTX_KEY, names_material(key))
        self.key_hashes = [
            keyed(self.key_key, b"".join(cells[name][r] for name in key)) for r in range(self.rows)
        ]
        self.column_keys = {
            f.name: derive_key(CTX_COLUMN, names_material([f.name])) for f in self.schema
        }
        self.columns = [
            {
                "name": f.name,
                "digest": keyed(self.column_keys[f.name], b"".join(cells[f.name])).hex(),
                "nulls": sum(1 for c in cells[f.name] if c == bytes([T_NULL])),
            }
            for f in self.schema
        ]
        self.schema_hash = schema_hash(self.schema)
        self.order_root = keyed(derive_key(CTX_ORDER, b""), b"".join(self.row_hashes))
        self.content_root = content_tree(self.row_hashes)[0]


# ---------------------------------------------------------------------------------------------
# Reading the vectors' inputs
# ---------------------------------------------------------------------------------------------


def read_input(path: Path, fmt: str) -> pa.Table:
    if fmt == "arrow-file":
        with ipc.open_file(pa.memory_map(str(path))) as r:
            return r.read_all()
    if fmt == "arrow-stream":
        return read_stream(path.read_bytes())
    if fmt == "parquet":
        return pq.read_table(path)
    if fmt == "csv":
        return read_csv(path)
    raise ValueError(f"unknown input format {fmt!r} in {path}")


STREAM_WITHOUT_END = ("the Arrow IPC stream ends without its end-of-stream marker: it is "
                      "incomplete (cut short?)")


def read_stream(data: bytes) -> pa.Table:
    """An Arrow IPC stream, refused unless it ends with its end-of-stream marker (as pipeproof
    refuses it, docs/API.md): pyarrow reads a stream cut between two batches as a whole one
    of fewer rows."""
    source = pa.BufferReader(data)
    end = 0
    while True:
        try:
            ipc.read_message(source)
        except EOFError:
            break
        end = source.tell()
    if data[end:] not in (b"\xff\xff\xff\xff\x00\x00\x00\x00", b"\x00\x00\x00\x00"):
        raise ValueError(STREAM_WITHOUT_END)
    with ipc.open_stream(pa.BufferReader(data)) as r:
        return r.read_all()


# ---------------------------------------------------------------------------------------------
# CSV input (spec section 13): every field read as text, then typed by the spec's rules here,
# not by pyarrow's inference (which trims spaces, reads `NA` as null, `0x10` as 16...)
# ---------------------------------------------------------------------------------------------

D = "[0-9]"
INT_RE = re.compile(f"[+-]?{D}+")
FLOAT_RE = re.compile(f"[+-]?(({D}*\\.{D}+|{D}+\\.{D}*)([eE][+-]?{D}+)?|{D}+[eE][+-]?{D}+)")
FLOAT_WORDS = ("NaN", "nan", "inf", "-inf")
DATE_RE = re.compile(f"({D}{{4}})-({D}{{2}})-({D}{{2}})")
# Date, `T` or space, time, then an optional fraction of 1 to 9 digits; the rest (the zone)
# must not start with a digit, nor with a point when there is no fraction, nor hold a line
# feed.
TIMESTAMP_RE = re.compile(
    f"({D}{{4}})-({D}{{2}})-({D}{{2}})[T ]({D}{{2}}):({D}{{2}}):({D}{{2}})"
    f"(?:\\.({D}{{1,9}})(?![0-9])|(?![0-9.]))([^\\n]*)"
)
OFFSET_RE = re.compile(f"([+-])({D}{{2}})(?::?({D}{{2}}))?")
# Unicode White_Space: what may stand between a time and its offset.
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(
    chr(c) for c in range(0x2000, 0x200B)) + "\u2028\u2029\u202f\u205f\u3000"
UNITS = ["s", "ms", "us", "ns"]


def civil_days(year: int, month: int, day: int) -> int | None:
    """Days since 1970-01-01 of a proleptic Gregorian date, or None if there is no such day."""
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    lengths = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    if not 1 <= month <= 12 or not 1 <= day <= lengths[month - 1]:
        return None
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def csv_kind(v: str) -> str:
    """The kind of one non-empty field: bool, int, float, date, s/ms/us/ns (a timestamp and
    its unit) or text."""
    if v.lower() in ("true", "false") and v.isascii():
        return "bool"
    if INT_RE.fullmatch(v):
        return "int" if I64_MIN <= int(v) <= I64_MAX else "text"
    if FLOAT_RE.fullmatch(v) or v in FLOAT_WORDS:
        return "float"
    if DATE_RE.fullmatch(v):
        return "date"
    m = TIMESTAMP_RE.fullmatch(v)
    if m:
        digits = len(m.group(7) or "")
        return "s" if digits == 0 else UNITS[(digits + 2) // 3]
    return "text"


def csv_type(kinds: set[str]) -> str:
    if not kinds:
        return "null"
    if kinds == {"bool"}:
        return "bool"
    if kinds == {"int"}:
        return "int64"
    if kinds <= {"int", "float"}:
        return "float64"
    if kinds == {"date"}:
        return "date32"
    if kinds <= {"date", *UNITS}:
        return max(kinds - {"date"}, key=UNITS.index, default="s")
    return "utf8"


def csv_timestamp(v: str, unit: str) -> int | None:
    """A timestamp's value in `unit` since the epoch, or None if it has none."""
    days = civil_days(*map(int, v[:10].split("-")))
    if days is None:
        return None
    if len(v) == 10:
        seconds, fraction, offset = 0, 0, 0
    else:
        m = TIMESTAMP_RE.fullmatch(v)
        h, mi, sec = int(m.group(4)), int(m.group(5)), int(m.group(6))
        if h > 23 or mi > 59 or sec > 60:
            return None
        if sec == 60 and unit == "s":
            sec = 59  # a leap second, in whole seconds: the minute's last second
        digits = m.group(7) or ""
        fraction = int(digits.ljust(9, "0")) if digits else 0
        seconds = h * 3600 + mi * 60 + sec
        zone = m.group(8)
        if zone in ("", "Z", "z"):
            offset = 0
        else:
            o = OFFSET_RE.fullmatch(zone.lstrip(WHITE_SPACE))
            if not o or (len(zone.lstrip(WHITE_SPACE)) == 6 and zone.lstrip(WHITE_SPACE)[3] != ":"):
                return None
            offset = int(o.group(2)) * 3600 + int(o.group(3) or 0) * 60
            if offset >= 86400:
                return None
            offset = -offset if o.group(1) == "-" else offset
    ns = (days * 86400 + seconds - offset) * 10**9 + fraction
    value = ns // (10**9 // 10 ** (3 * UNITS.index(unit)))
    if unit == "ns" and not I64_MIN <= value <= I64_MAX:
        return None
    return value


def csv_value(v: str, t: str):
    """The value of field `v` in a column of type `t`, or None if that type cannot read it."""
    if t == "bool":
        return v.lower() == "true"
    if t in ("int64", "float64"):
        if zero_padded(v):
            return None
        return int(v) if t == "int64" else float(v)
    if t == "date32":
        return civil_days(*map(int, v.split("-")))
    return csv_timestamp(v, t)


def csv_column(values: list[str | None]) -> pa.Array:
    t = csv_type({csv_kind(v) for v in values if v is not None})
    if t == "null":
        return pa.nulls(len(values), pa.null())
    if t != "utf8":
        typed = [None if v is None else csv_value(v, t) for v in values]
        if all(x is not None for x, v in zip(typed, values) if v is not None):
            if t == "bool":
                return pa.array(typed, pa.bool_())
            if t == "int64":
                return pa.array(typed, pa.int64())
            if t == "float64":
                return pa.array(typed, pa.float64())
            if t == "date32":
                return pa.array(typed, pa.int32()).view(pa.date32())
            return pa.array(typed, pa.int64()).view(pa.timestamp(t))
    return pa.array(values, pa.string())


class CsvError(ValueError):
    """A CSV file that the spec says cannot be read."""


LINE_BREAK = re.compile(b"\r\n|\r|\n")
FIELD_REST = re.compile(b"[^,\r\n]*")


def csv_open_quote(data: bytes) -> int | None:
    """The line (from 1) of the quoted field that `data` ends inside, if it does (13.1).

    Field by field: a field that begins with `"` runs to the next `"` that is not doubled,
    across commas and line breaks; what follows it, or an unquoted field, runs to the next
    comma, CR or LF. A line break ends a line however it is written.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    i = 0
    while i < len(data):
        if data.startswith(b'"', i):
            close = i + 1
            while True:
                close = data.find(b'"', close)
                if close < 0:
                    return len(LINE_BREAK.findall(data, 0, i)) + 1
                if not data.startswith(b'"', close + 1):
                    break
                close += 2
            i = close + 1
        i = FIELD_REST.match(data, i).end() + 1  # past the comma or line break after it
    return None


def read_csv(path: Path) -> pa.Table:
    """A CSV file as the spec reads it: a header row, then every field as text, typed here."""
    line = csv_open_quote(path.read_bytes())
    if line is not None:
        # pyarrow would read the rest of the file as the field's value.
        raise CsvError(f"a quoted field opened on line {line} is never closed "
                       "(is the file cut short?)")
    parse = pacsv.ParseOptions(delimiter=",", quote_char='"', double_quote=True,
                               escape_char=False, newlines_in_values=True,
                               ignore_empty_lines=True)
    read = pacsv.ReadOptions(use_threads=False)
    names = pacsv.open_csv(path, read_options=read, parse_options=parse).schema.names
    text = pacsv.read_csv(path, read_options=read, parse_options=parse,
                          convert_options=pacsv.ConvertOptions(
                              column_types={n: pa.string() for n in names},
                              null_values=[""], strings_can_be_null=True,
                              quoted_strings_can_be_null=True))
    return pa.table({n: csv_column(text.column(n).to_pylist()) for n in names})


def zero_padded(text: str) -> bool:
    """A zero before the first significant digit: `007`, `-00.5`; not `0`, `0.5`, `-0e3`."""
    digits = text[1:] if text[:1] in "-+" else text
    return len(digits) >= 2 and digits[0] == "0" and digits[1] in "0123456789"


def hexes(hs: list[bytes]) -> list[str]:
    return [h.hex() for h in hs]


def check_vector(path: Path, verbose: bool = False) -> list[str]:
    """Checks one expected JSON against every one of its inputs; returns the mismatches."""
    want = json.loads(path.read_text())
    problems: list[str] = []

    def check(what: str, got, expected):
        if got != expected:
            problems.append(f"{path.name}: {what}: expected {expected!r}, computed {got!r}")
        elif verbose:
            print(f"  ok {what}")

    check("spec", want.get("spec"), SPEC)
    if want["case"] == "contexts":
        for name, c in want["contexts"].items():
            check(f"{name} context key", derive_key(c["context"], b"").hex(),
                  c["empty_material_key"])
        check("empty tree root", merkle_root([]).hex(), want["empty_tree_root"])
        check("empty content root", content_tree([])[0].hex(), want["empty_content_root"])
        return problems
    for inp in want["inputs"]:
        table = read_input(path.parent / inp["file"], inp["format"])
        fp = Fingerprint(table, want["key"])
        where = inp["file"]
        check(f"{where} schema", [
            {"name": f.name, "type": type_name(f.type), "family": family(f.type),
             "nullable": f.nullable}
            for f in fp.schema
        ], want["schema"])
        check(f"{where} rows", fp.rows, want["rows"])
        check(f"{where} schema_hash", fp.schema_hash.hex(), want["schema_hash"])
        check(f"{where} content_root", fp.content_root.hex(), want["content_root"])
        check(f"{where} order_root", fp.order_root.hex(), want["order_root"])
        check(f"{where} hash_order", fp.hash_order, want["hash_order"])
        check(f"{where} row_key", fp.row_key.hex(), want["row_key"])
        check(f"{where} key_key", fp.key_key.hex(), want["key_key"])
        check(f"{where} columns", fp.columns, want["columns"])
        if "cells" in want:
            got = [[fp.cells[n][r].hex() for n in fp.hash_order] for r in range(fp.rows)]
            check(f"{where} cells", got, want["cells"])
        if "row_hashes" in want:
            check(f"{where} row_hashes", hexes(fp.row_hashes), want["row_hashes"])
            check(f"{where} key_hashes", hexes(fp.key_hashes), want["key_hashes"])
        for i, h in want.get("row_hash_samples", {}).items():
            check(f"{where} row_hashes[{i}]", fp.row_hashes[int(i)].hex(), h)
        for i, h in want.get("key_hash_samples", {}).items():
            check(f"{where} key_hashes[{i}]", fp.key_hashes[int(i)].hex(), h)
        for proof in want["proofs"]:
            i = proof["row"]
            got = row_proof(fp.row_hashes, fp.row_hashes[i])
            check(f"{where} proof of row {i}", {"row": i, **got}, proof)
            check(f"{where} proof of row {i} verifies",
                  verify_proof(proof, bytes.fromhex(want["content_root"])), True)
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vectors", nargs="*", type=Path, help="expected JSON files (default: all)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    paths = args.vectors or sorted(VECTORS.glob("*.json"))
    if not paths:
        print(f"no vectors found in {VECTORS}", file=sys.stderr)
        return 2
    problems = []
    for p in paths:
        if args.verbose:
            print(p.name)
        found = check_vector(p, args.verbose)
        problems += found
        print(f"{p.name}: {'ok' if not found else f'{len(found)} mismatch(es)'}")
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
