#!/usr/bin/env python3
"""W3C Trace Context vectors through Python's opentelemetry-api TraceContextTextMapPropagator.

Usage: python3 w3c_python.py VECTORS.json

VECTORS.json is {"extract": [...], "inject": [...]}:
- extract: {"name": str, "headers": [[name, value], ...]}; a repeated name is a repeated
  header. Result: {"name", "context", "tracestate"}: context null (no valid context) or
  {"trace_id", "span_id", "sampled"}; tracestate the list of [key, value] members kept.
- inject: {"name", "trace_id", "span_id", "sampled", "tracestate": [[key, value], ...]}.
  Result: {"name", "headers": {name: value}} as the propagator writes them.

Prints one JSON object: {"version": the package's version, "extract": [...], "inject": [...]},
one result per vector, in order. Run by tests/w3c_python.rs. Exits 3 when the package is
missing.
"""

import json
import sys

try:
    from importlib.metadata import version

    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    from opentelemetry.trace.span import TraceState
except ImportError as error:
    sys.stderr.write(
        "w3c_python.py: cannot import opentelemetry-api (%s); "
        "install it with: python3 -m pip install opentelemetry-api\n" % error
    )
    sys.exit(3)


def extracted(propagator, vector):
    # As an HTTP server hands headers over: lowercase names, values in order.
    carrier = {}
    for name, value in vector["headers"]:
        carrier.setdefault(name.lower(), []).append(value)
    context = propagator.extract(carrier)
    span_context = trace.get_current_span(context).get_span_context()
    if not span_context.is_valid:
        return {"name": vector["name"], "context": None, "tracestate": []}
    return {
        "name": vector["name"],
        "context": {
            "trace_id": trace.format_trace_id(span_context.trace_id),
            "span_id": trace.format_span_id(span_context.span_id),
            "sampled": span_context.trace_flags.sampled,
        },
        "tracestate": [[k, v] for k, v in span_context.trace_state.items()],
    }


def injected(propagator, vector):
    span_context = trace.SpanContext(
        trace_id=int(vector["trace_id"], 16),
        span_id=int(vector["span_id"], 16),
        is_remote=False,
        trace_flags=trace.TraceFlags(
            trace.TraceFlags.SAMPLED if vector["sampled"] else trace.TraceFlags.DEFAULT
        ),
        trace_state=TraceState([tuple(member) for member in vector["tracestate"]]),
    )
    context = trace.set_span_in_context(trace.NonRecordingSpan(span_context))
    carrier = {}
    propagator.inject(carrier, context)
    return {"name": vector["name"], "headers": carrier}


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: w3c_python.py VECTORS.json\n")
        sys.exit(2)
    with open(sys.argv[1], encoding="utf-8") as file:
        vectors = json.load(file)
    propagator = TraceContextTextMapPropagator()
    json.dump(
        {
            "version": version("opentelemetry-api"),
            "extract": [extracted(propagator, v) for v in vectors["extract"]],
            "inject": [injected(propagator, v) for v in vectors["inject"]],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
