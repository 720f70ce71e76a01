"""Decodes OTLP/HTTP protobuf bodies with the Python `opentelemetry-proto` package and prints
what they hold as JSON, for tests/export_otlp.rs to compare with what the Rust crate decodes.

Usage: otlp_python.py BODY_FILE...  (each file one ExportTraceServiceRequest)
"""
import json
import sys

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(item) for item in any_value.array_value.values]
    if kind is None:
        return None
    return getattr(any_value, kind)


def attributes(key_values):
    return {kv.key: value(kv.value) for kv in key_values}


def span(s):
    return {
        "trace_id": s.trace_id.hex(),
        "span_id": s.span_id.hex(),
        "parent_span_id": s.parent_span_id.hex(),
        "flags": s.flags,
        "name": s.name,
        "kind": s.kind,
        "start": s.start_time_unix_nano,
        "end": s.end_time_unix_nano,
        "attributes": attributes(s.attributes),
        "events": [{"name": e.name, "time": e.time_unix_nano} for e in s.events],
        "status": (
            {"code": s.status.code, "message": s.status.message}
            if s.HasField("status")
            else None
        ),
    }


def main():
    requests = []
    for path in sys.argv[1:]:
        request = ExportTraceServiceRequest()
        with open(path, "rb") as body:
            request.ParseFromString(body.read())
        requests.append(
            [
                {
                    "resource": attributes(resource_spans.resource.attributes),
                    "scopes": [
                        {
                            "name": scope_spans.scope.name,
                            "version": scope_spans.scope.version,
                            "spans": [span(s) for s in scope_spans.spans],
                        }
                        for scope_spans in resource_spans.scope_spans
                    ],
                }
                for resource_spans in request.resource_spans
            ]
        )
    json.dump(requests, sys.stdout)


main()
