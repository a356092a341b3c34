#!/usr/bin/env python3
"""Size report of the Rust sources: files over a line limit and non-test functions over a length limit.

Usage: scripts/shape.py [--file-limit 1200] [--fn-limit 120] [--check] [DIR...]
Functions are measured by brace matching from the `fn` line to its closing brace; `#[cfg(test)]` modules,
`tests.rs` submodule files, `tests/`, `benches/`, `fuzz/` and generated files are left out. With --check, exits 1 when a limit is exceeded.
"""
import argparse
import os
import re
import sys

FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)")


def strip(line):
    # drop string/char literals and line comments so braces inside them do not count
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split("//", 1)[0]


def functions(path):
    lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
    out = []
    depth = 0
    test_depth = None
    pending_test = False
    stack = []  # (name, start, depth at open)
    for i, raw in enumerate(lines):
        line = strip(raw)
        if re.match(r"\s*#\[cfg\(test\)\]", raw):
            pending_test = True
        m = FN.match(line)
        if m and test_depth is None:
            stack.append([m.group(7), i + 1, None])
        for ch in line:
            if ch == "{":
                depth += 1
                if pending_test and test_depth is None:
                    test_depth = depth
                    pending_test = False
                if stack and stack[-1][2] is None:
                    stack[-1][2] = depth
            elif ch == "}":
                if stack and stack[-1][2] == depth:
                    name, start, _ = stack.pop()
                    out.append((name, start, i + 1 - start + 1))
                if test_depth == depth:
                    test_depth = None
                depth -= 1
        if stack and stack[-1][2] is None and line.rstrip().endswith(";"):
            stack.pop()  # declaration without a body
    return out, len(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--file-limit", type=int, default=1200)
    ap.add_argument("--fn-limit", type=int, default=120)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("dirs", nargs="*", default=["crates"])
    a = ap.parse_args()
    big_files, long_fns = [], []
    for d in a.dirs:
        for root, dirs, files in os.walk(d):
            parts = root.split(os.sep)
            if any(p in ("tests", "benches", "fuzz", "target") for p in parts):
                continue
            for f in files:
                if not f.endswith(".rs") or f == "tests.rs" or f.endswith("_tests.rs"):
                    continue
                p = os.path.join(root, f)
                head = open(p, encoding="utf-8", errors="replace").read(400)
                if "@generated" in head or "test vectors" in head.lower()[:200]:
                    continue
                fns, n = functions(p)
                if n > a.file_limit:
                    big_files.append((n, p))
                for name, start, length in fns:
                    if length > a.fn_limit:
                        long_fns.append((length, f"{p}:{start}", name))
    big_files.sort(reverse=True)
    long_fns.sort(reverse=True)
    print(f"files over {a.file_limit} lines: {len(big_files)}")
    for n, p in big_files:
        print(f"  {n:6} {p}")
    print(f"non-test functions over {a.fn_limit} lines: {len(long_fns)}")
    for n, where, name in long_fns:
        print(f"  {n:6} {where} {name}")
    if a.check and (big_files or long_fns):
        sys.exit(1)


if __name__ == "__main__":
    main()
