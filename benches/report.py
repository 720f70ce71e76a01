#!/usr/bin/env python3
"""Prints criterion's medians from the last `cargo bench -p functrace-benches` run as ns per
traced call (every iteration makes 100 calls) and as ratios, one table per group."""

import json
import pathlib
import sys

CALLS = 100
GROUPS = ["sync_depth1", "sync_depth10", "async_depth1"]
ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")


def medians(group):
    found = {}
    for estimates in sorted((ROOT / group).glob("*/new/estimates.json")):
        name = estimates.parent.parent.name
        found[name] = json.loads(estimates.read_text())["median"]["point_estimate"] / CALLS
    return found


def ratio(rows, name, other):
    if other not in rows or name == other:
        return ""
    return f"{rows[name] / rows[other]:.2f}x"


for group in GROUPS:
    rows = medians(group)
    if not rows:
        continue
    plain = rows.get("plain")
    print(f"\n{group}: ns per call (median of criterion samples, process CPU time)")
    print("| variant | ns/call | added over plain | vs floor | vs tracing_fmt | vs fastrace |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, ns in rows.items():
        added = f"{ns - plain:.1f}" if plain is not None else ""
        cells = [ratio(rows, name, other) for other in ("floor", "tracing_fmt", "fastrace")]
        print(f"| {name} | {ns:.1f} | {added} | " + " | ".join(cells) + " |")
