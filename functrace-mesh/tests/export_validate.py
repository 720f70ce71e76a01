#!/usr/bin/env python3
"""Validates Zipkin v2 spans against the Span definition of zipkin2-api.yaml.

Usage: export_validate.py SPEC.yaml SPANS.jsonl

SPANS.jsonl holds one span JSON object per line. Each line is validated against
`#/definitions/Span` (its $refs resolved against the spec's `definitions`), and all of
them together against `#/definitions/ListOfSpans`, with JSON Schema draft 4 (the dialect
of OpenAPI 2.0) and its format checks (ipv4, ipv6).

Exit status: 0 when every span is valid ("ok: N spans valid against ..."), 1 when some
are not (one line per error), 2 when the packages are missing or the input is unreadable.
Needs: pip install jsonschema pyyaml
"""

import json
import sys

try:
    import jsonschema
    import yaml
except ImportError as error:
    print(
        f"export_validate.py: missing Python package ({error}); "
        "install them with: python3 -m pip install jsonschema pyyaml",
        file=sys.stderr,
    )
    sys.exit(2)


def schema_for(spec, name):
    """`#/definitions/NAME`, with the spec's definitions beside it so $refs resolve."""
    definitions = spec.get("definitions") or {}
    if name not in definitions:
        raise KeyError(f"no definition {name!r} in the spec")
    return {"$ref": f"#/definitions/{name}", "definitions": definitions}


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    spec_path, spans_path = argv[1], argv[2]
    try:
        with open(spec_path, encoding="utf-8") as file:
            spec = yaml.safe_load(file)
        with open(spans_path, encoding="utf-8") as file:
            lines = [(number, line) for number, line in enumerate(file, 1) if line.strip()]
    except OSError as error:
        print(f"export_validate.py: {error}", file=sys.stderr)
        return 2

    validator_class = jsonschema.Draft4Validator
    checker = validator_class.FORMAT_CHECKER
    span_validator = validator_class(schema_for(spec, "Span"), format_checker=checker)
    list_validator = validator_class(schema_for(spec, "ListOfSpans"), format_checker=checker)

    failures = []
    spans = []
    for number, line in lines:
        try:
            span = json.loads(line)
        except json.JSONDecodeError as error:
            failures.append(f"line {number}: not JSON: {error}")
            continue
        spans.append(span)
        for error in span_validator.iter_errors(span):
            where = "/".join(str(part) for part in error.absolute_path) or "(span)"
            failures.append(f"line {number}: {where}: {error.message}")
    if not failures:
        for error in list_validator.iter_errors(spans):
            failures.append(f"ListOfSpans: {error.message}")

    if failures:
        for failure in failures:
            print(failure)
        print(f"invalid: {len(failures)} errors in {spans_path}")
        return 1
    if not spans:
        print(f"invalid: no spans in {spans_path}")
        return 1
    print(f"ok: {len(spans)} spans valid against {spec_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
