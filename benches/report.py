#!/usr/bin/env python3
"""Prints criterion's medians from the last `cargo bench -p functrace-benches` run as ns per
traced call (every iteration makes 100 calls) and as ratios, one table per group; then the
`tracing` spans (functrace's subscriber and layer, and tracing-tree's layer, ns per span) in a
table of their own."""

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


LAYERS = ["tracing_off", "subscriber_noop", "registry_only", "registry_lookups", "subscriber_buffered",
          "layer_buffered", "tree_buffered", "subscriber_devnull", "layer_devnull", "tree_devnull"]


def layers(group, rows):
    """functrace's subscriber and layer against tracing-tree's layer on the same sink: ns per
    span, and how many times faster functrace's are than tracing-tree."""
    found = {name: rows[name] for name in LAYERS if name in rows}
    if "layer_buffered" not in found and "layer_devnull" not in found:
        return
    print(f"\n{group}: tracing spans, ns per span (median, process CPU time)")
    print("| variant | ns/span | tracing-tree / this, same sink |")
    print("|---|---:|---:|")
    for name, ns in found.items():
        sink = name.split("_", 1)[1]
        ratio = ""
        if name.startswith(("layer_", "subscriber_")) and f"tree_{sink}" in found:
            ratio = f"{found[f'tree_{sink}'] / ns:.2f}x"
        print(f"| {name} | {ns:.1f} | {ratio} |")


for group in GROUPS:
    rows = medians(group)
    layers(group, rows)
    rows = {name: ns for name, ns in rows.items() if name not in LAYERS}
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
