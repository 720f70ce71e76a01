#!/usr/bin/env python3
"""Extracts B3 test vectors with Python's opentelemetry-propagator-b3.

Usage: python3 b3_python.py VECTORS.json

VECTORS.json is a list of {"name": str, "headers": [[name, value], ...]}; a repeated name is a
repeated header. Prints one JSON object: {"version": the package's version, "results": [...]},
one result per vector, in order: {"name", "multi", "single"}, the outcome of B3MultiFormat and
of B3SingleFormat, each null (no valid context) or {"trace_id", "span_id", "sampled"}.

Run by tests/b3_python.rs. Exits 3 when the package is missing.
"""

import json
import sys

try:
    from importlib.metadata import version

    from opentelemetry import trace
    from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
except ImportError as error:
    sys.stderr.write(
        "b3_python.py: cannot import opentelemetry-propagator-b3 (%s); "
        "install it with: python3 -m pip install opentelemetry-propagator-b3\n" % error
    )
    sys.exit(3)


def outcome(propagator, carrier):
    context = propagator.extract(carrier)
    span_context = trace.get_current_span(context).get_span_context()
    if not span_context.is_valid:
        return None
    return {
        "trace_id": trace.format_trace_id(span_context.trace_id),
        "span_id": trace.format_span_id(span_context.span_id),
        "sampled": span_context.trace_flags.sampled,
    }


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: b3_python.py VECTORS.json\n")
        sys.exit(2)
    with open(sys.argv[1], encoding="utf-8") as file:
        vectors = json.load(file)
    results = []
    for vector in vectors:
        # As an HTTP server hands headers over: lowercase names, values in order.
        carrier = {}
        for name, value in vector["headers"]:
            carrier.setdefault(name.lower(), []).append(value)
        results.append(
            {
                "name": vector["name"],
                "multi": outcome(B3MultiFormat(), carrier),
                "single": outcome(B3SingleFormat(), carrier),
            }
        )
    json.dump(
        {"version": version("opentelemetry-propagator-b3"), "results": results},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
