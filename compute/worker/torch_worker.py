#!/usr/bin/env python3
"""aropeer compute worker for PyTorch: C = A.B exactly, int8 in, int32 out.

Run by the edge's compute.Exec as

    torch_worker.py <n> <seed-hex>

It reads "AROA" | uint32 LE n | A (n*n int8) | B (n*n int8) from stdin and
writes "AROC" | uint32 LE n | C (n*n int32 LE, row-major) to stdout; see
README.md. On CUDA it uses torch._int_mm (int8 tensor cores, int32
accumulation, exact); elsewhere an int32 matmul on the CPU, also exact.
"""
import struct
import sys

import torch


def read_exact(f, k):
    buf = bytearray()
    while len(buf) < k:
        chunk = f.read(k - len(buf))
        if not chunk:
            sys.exit(f"torch_worker: stdin ended after {len(buf)} of {k} bytes")
        buf += chunk
    return bytes(buf)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: torch_worker.py <n> <seed-hex>")
    n = int(sys.argv[1])
    stdin = sys.stdin.buffer
    magic, m = struct.unpack("<4sI", read_exact(stdin, 8))
    if magic != b"AROA" or m != n:
        sys.exit(f"torch_worker: header {magic!r} n={m}, want b'AROA' n={n}")
    raw = read_exact(stdin, 2 * n * n)
    ab = torch.frombuffer(bytearray(raw), dtype=torch.int8)
    a, b = ab[: n * n].view(n, n), ab[n * n :].view(n, n)

    if torch.cuda.is_available():
        dev = torch.device("cuda")
        # torch._int_mm wants n >= 17 and a multiple of 8; the network's
        # sizes are multiples of 64.
        c = torch._int_mm(a.to(dev), b.to(dev)).cpu()
    else:
        c = a.to(torch.int32) @ b.to(torch.int32)

    out = sys.stdout.buffer
    out.write(struct.pack("<4sI", b"AROC", n))
    out.write(c.contiguous().to(torch.int32).numpy().astype("<i4").tobytes())
    out.flush()


if __name__ == "__main__":
    main()
