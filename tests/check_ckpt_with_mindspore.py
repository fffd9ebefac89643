#!/usr/bin/env python3
"""Loads .ckpt files written by vlzoo with mindspore.load_checkpoint and
compares every tensor's dtype, shape and bytes with the sidecar vlzoo wrote.

Usage: check_ckpt_with_mindspore.py WRITER
  WRITER is the test_ckpt_mindspore program; `WRITER --write DIR` makes the
  files (one plain, one with every tensor split into 8-byte slices).

Exit status: 0 all matched, 1 a mismatch or failure, 77 (skipped) when numpy
or mindspore cannot be imported.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

SKIP = 77

try:
    import numpy as np
except ImportError:
    print("numpy is not installed: skipping")
    sys.exit(SKIP)
try:
    os.environ.setdefault("GLOG_v", "3")  # MindSpore's log level: errors only
    import mindspore as ms
except Exception as e:  # ImportError, or a broken install
    print(f"mindspore cannot be imported ({e.__class__.__name__}: {e}): skipping")
    sys.exit(SKIP)

MS_TYPE = {"f32": "Float32", "f16": "Float16", "bf16": "BFloat16", "f64": "Float64",
           "i64": "Int64", "i32": "Int32", "i16": "Int16", "i8": "Int8", "u8": "UInt8",
           "bool": "Bool"}


def tensor_bytes(t):
    """The tensor's elements as contiguous little-endian bytes."""
    if t.dtype == ms.bfloat16:
        # float32 holds every bfloat16 exactly; its top 16 bits are the bf16.
        f = np.ascontiguousarray(t.float().asnumpy(), dtype="<f4")
        return (f.view("<u4") >> 16).astype("<u2").tobytes()
    a = np.ascontiguousarray(t.asnumpy())
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def check(path):
    with open(path + ".json") as f:
        want = json.load(f)["tensors"]
    got = ms.load_checkpoint(path)
    failures = 0
    if set(got) != {w["name"] for w in want}:
        print(f"{path}: names {sorted(got)} != {sorted(w['name'] for w in want)}")
        failures += 1
    for w in want:
        p = got.get(w["name"])
        if p is None:
            continue
        problems = []
        if str(p.dtype) != MS_TYPE[w["dtype"]]:
            problems.append(f"dtype {p.dtype}, want {MS_TYPE[w['dtype']]}")
        if tuple(p.shape) != tuple(w["shape"]):
            problems.append(f"shape {tuple(p.shape)}, want {tuple(w['shape'])}")
        digest = hashlib.sha256(tensor_bytes(p)).hexdigest()
        if digest != w["sha256"]:
            problems.append("bytes differ")
        if problems:
            print(f"{path}: {w['name']}: " + "; ".join(problems))
            failures += 1
    print(f"{os.path.basename(path)}: {len(want)} tensors, {failures} mismatches "
          f"(mindspore {ms.__version__})")
    return failures


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.argv[1], "--write", tmp], check=True)
        files = sorted(f for f in os.listdir(tmp) if f.endswith(".ckpt"))
        if not files:
            print("the writer made no .ckpt files")
            return 1
        failures = sum(check(os.path.join(tmp, f)) for f in files)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
