#!/usr/bin/env python3
"""An independent reference of the log of seals, v1 (docs/spec/log-v1.md), written from the
spec alone, and the generator of its golden vector, docs/spec/vectors/log-v1/log.json.

    python3 tests/reference/log_v1.py          # write the vector if it does not exist yet
    python3 tests/reference/log_v1.py --check  # regenerate in memory, compare, write nothing

The vector's seals are literals (their signatures are not checked by the log: an entry is the
hash of the seal as given). The Rust implementation checks every published value
(core/tests/log_vectors.rs, natively and in wasm). Vectors are never edited.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fingerprint_v1 as ref  # noqa: E402

OUT = ref.ROOT / "docs" / "spec" / "vectors" / "log-v1" / "log.json"
ENTRY_KEY = ref.derive_key("pipeproof log entry v1", b"")
TREE_HEAD_SPEC = "pipeproof-tree-head-v1"


def canonical_json(value) -> bytes:
    """RFC 8785 for the values the log hashes: objects of ASCII names, strings and integers."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(seal: dict) -> bytes:
    return ref.keyed(ENTRY_KEY, canonical_json(seal))


def leaf(seal: dict) -> bytes:
    return ref.leaf_hash(entry_hash(seal))


def largest_power_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    """RFC 9162 section 2.1.4.1: SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if complete else [ref.merkle_root(leaves)]
    k = largest_power_below(n)
    if m <= k:
        return subproof(m, leaves[:k], complete) + [ref.merkle_root(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [ref.merkle_root(leaves[:k])]


def consistency_proof(leaves: list[bytes], m: int) -> list[bytes]:
    if m == 0 or m == len(leaves):
        return []
    return subproof(m, leaves, True)


def consistent(first: int, second: int, first_root: bytes, second_root: bytes,
               path: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2, with the spec's cases for a first size of 0 and equal sizes."""
    if first > second:
        return False
    if first == 0:
        return not path
    if first == second:
        return not path and first_root == second_root
    nodes = ([first_root] if first & (first - 1) == 0 else []) + list(path)
    if not nodes:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = ref.node_hash(c, fr)
            sr = ref.node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = ref.node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def tree_head_message(size: int, root: bytes, timestamp: str) -> bytes:
    return canonical_json({"spec": TREE_HEAD_SPEC, "size": size, "root": root.hex(),
                           "timestamp": timestamp})


def seals() -> list[dict]:
    """Seven seals, v1 and v2, of runs that ended in this order (literal signatures)."""
    out = []
    for i in range(7):
        seal = {
            "spec": "pipeproof-seal-v2" if i % 3 else "pipeproof-seal-v1",
            "run_id": f"run-{i:02d}",
            "steps": i + 1,
            "head": bytes([i] * 32).hex(),
            "sealed_at": f"2026-11-28T0{i}:00:00Z",
            "public_key": "2a" * 32,
            "signature": f"{i:02x}" * 64,
        }
        if i % 3:
            seal["run_hash"] = bytes([0x40 + i] * 32).hex()
        out.append(seal)
    return out


def build() -> bytes:
    s = seals()
    leaves = [leaf(x) for x in s]
    n = len(leaves)
    doc = {
        "spec": "pipeproof log v1 vectors",
        "description": "entry and leaf hashes of seven seals, the tree root of every size, "
                       "every inclusion proof in the trees of 5 and 7 entries, every "
                       "consistency proof between sizes 0..7, and a tree head's signed bytes",
        "entry_key": ENTRY_KEY.hex(),
        "seals": s,
        "entry_hashes": [entry_hash(x).hex() for x in s],
        "leaves": [x.hex() for x in leaves],
        "roots": [ref.merkle_root(leaves[:size]).hex() for size in range(n + 1)],
        "inclusion": [
            {"index": i, "size": size, "path": [p.hex() for p in ref.audit_path(leaves[:size], i)]}
            for size in (5, 7) for i in range(size)
        ],
        "consistency": [
            {"from": m, "to": size, "path": [p.hex() for p in consistency_proof(leaves[:size], m)]}
            for size in range(n + 1) for m in range(size + 1)
        ],
        "tree_head": {
            "size": n,
            "root": ref.merkle_root(leaves).hex(),
            "timestamp": "2026-11-28T07:00:00Z",
            "signed_bytes": tree_head_message(n, ref.merkle_root(leaves),
                                              "2026-11-28T07:00:00Z").decode(),
        },
    }
    return (json.dumps(doc, indent=1) + "\n").encode()


def check_vector(path: Path = OUT) -> list[str]:
    """What in the vector file the reference disagrees with; every proof is also verified."""
    want = json.loads(path.read_text())
    problems = []
    got = json.loads(build())
    for field in got:
        if got[field] != want.get(field):
            problems.append(f"{field} differs from the reference")
    leaves = [bytes.fromhex(x) for x in want["leaves"]]
    roots = [bytes.fromhex(x) for x in want["roots"]]
    for p in want["inclusion"]:
        path_ = [bytes.fromhex(x) for x in p["path"]]
        if ref.root_from_path(leaves[p["index"]], p["index"], p["size"], path_) != roots[p["size"]]:
            problems.append(f"inclusion of {p['index']} in {p['size']} does not verify")
    for p in want["consistency"]:
        path_ = [bytes.fromhex(x) for x in p["path"]]
        if not consistent(p["from"], p["to"], roots[p["from"]], roots[p["to"]], path_):
            problems.append(f"consistency {p['from']} -> {p['to']} does not verify")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare the vector with a regeneration; write nothing")
    args = parser.parse_args(argv)
    data = build()
    if OUT.exists():
        if OUT.read_bytes() != data:
            print(f"{OUT}: a regeneration differs. Vectors are never edited.", file=sys.stderr)
            return 1
        return 0
    if args.check:
        print(f"{OUT}: missing", file=sys.stderr)
        return 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(data)
    print(f"wrote {OUT.relative_to(ref.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
