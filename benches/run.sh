#!/usr/bin/env bash
# Runs the criterion benchmark in both modes and prints the tables of benches/RESULTS.md.
# Each table comes from one run: `trace_off` is compared with `plain` in the build without
# the feature, every other variant with `plain` in the build with it.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf target/criterion
cargo bench -p functrace-benches --bench trace >&2
echo "## #[trace] compiled out (cargo bench -p functrace-benches)"
python3 benches/report.py
rm -rf target/criterion
cargo bench -p functrace-benches --bench trace --features trace >&2
echo
echo "## #[trace] compiled in (cargo bench -p functrace-benches --features trace)"
python3 benches/report.py
