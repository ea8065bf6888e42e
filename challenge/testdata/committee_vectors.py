#!/usr/bin/env python3
"""Committee vectors for challenge.Committee, computed independently of the
Go code: SHA-256 from hashlib, Ed25519 peer IDs from `cryptography`, and the
score -stake/ln(u) in 80-digit arithmetic with mpmath, not the Go code's
fixed-point logarithm. Writes committee_vectors.json next to this file.

    python3 committee_vectors.py
"""
import hashlib
import json
import os
import struct

import mpmath
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

mpmath.mp.dps = 80
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58(b):
    n = int.from_bytes(b, "big")
    s = ""
    while n:
        n, r = divmod(n, 58)
        s = B58[r] + s
    return "1" * (len(b) - len(b.lstrip(b"\0"))) + s


def peer_id(label):
    """An Ed25519 peer ID: identity multihash of the protobuf public key."""
    seed = hashlib.sha256(label.encode()).digest()
    pub = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return b"\x00\x24\x08\x01\x12\x20" + pub


def seed(randomness, domain, *parts):
    h = hashlib.sha256()
    h.update(struct.pack(">Q", len(domain)) + domain.encode())
    h.update(randomness)
    for p in parts:
        h.update(struct.pack(">Q", len(p)) + p)
    return h.digest()


def committee(randomness, edge, keepers, k):
    scored = []
    for kid, stake in keepers:
        if stake == 0:
            continue
        x = int.from_bytes(seed(randomness, "aro/committee", edge, kid)[:8], "big")
        u = (mpmath.mpf(x) + mpmath.mpf("0.5")) / mpmath.mpf(2) ** 64
        scored.append((-mpmath.mpf(stake) / mpmath.log(u), kid))
    # Highest score first; equal scores to the lower ID.
    scored.sort(key=lambda s: (-s[0], s[1]))
    # No two neighbouring scores may be so close that a 2^-45 relative
    # error in the Go code's logarithm could swap them.
    for a, b in zip(scored, scored[1:]):
        assert (a[0] - b[0]) / a[0] > mpmath.mpf(2) ** -45, "near tie"
    return [kid for _, kid in scored[:k]]


GOLDEN = os.path.join(os.path.dirname(__file__), "..", "..", "beacon", "testdata")


def golden(name):
    with open(os.path.join(GOLDEN, name)) as f:
        b = json.load(f)
    rnd = bytes.fromhex(b["randomness"])
    assert rnd == hashlib.sha256(bytes.fromhex(b["signature"])).digest()
    return b["round"], rnd


CASES = [
    # name, beacon file, keeper stakes, k, edges
    ("quicknet 1000, stakes 1:2:3:4:10, k=3", "quicknet_1000.json", [s * 10**17 for s in (1, 2, 3, 4, 10)], 3, 8),
    ("default 2634945, seven uneven stakes, k=3", "default_2634945.json", [5, 1, 1000, 250, 3, 77, 1_000_000], 3, 8),
    ("default 367, k=1", "default_367.json", [10, 20, 30, 40], 1, 8),
    ("quicknet 10024141, equal stakes, k=3", "quicknet_10024141.json", [1] * 6, 3, 6),
    ("quicknet 1000, k=5 of three keepers", "quicknet_1000.json", [3, 2, 1], 5, 4),
    ("default 367, one whale of 2^63 and small stakes, k=2", "default_367.json", [2**63, 1, 2, 2**40], 2, 6),
]


def main():
    out = {
        "comment": "Committee(beacon, edge, keepers, k): stake-weighted rendezvous, score = -stake/ln(u), "
        "u = (x+0.5)/2^64, x = first 8 bytes (big-endian) of Seed(beacon, \"aro/committee\", edge, keeper); "
        "highest first, ties to the lower ID. Computed by committee_vectors.py with hashlib and mpmath.",
        "cases": [],
    }
    for name, beacon_file, stakes, k, n_edges in CASES:
        rnd_round, rnd = golden(beacon_file)
        keepers = [(peer_id(f"{name} keeper {i}"), s) for i, s in enumerate(stakes)]
        edges = [peer_id(f"{name} edge {i}") for i in range(n_edges)]
        out["cases"].append({
            "name": name,
            "beacon": beacon_file,
            "round": rnd_round,
            "randomness": rnd.hex(),
            "k": k,
            "keepers": [{"id": b58(kid), "stake": s} for kid, s in keepers],
            "committees": [
                {"edge": b58(e), "keepers": [b58(kid) for kid in committee(rnd, e, keepers, k)]}
                for e in edges
            ],
        })
    with open(os.path.join(os.path.dirname(__file__), "committee_vectors.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
