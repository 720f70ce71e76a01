#!/usr/bin/env bash
# A/B of two builds of functrace-sidecar, in benches/proxy.sh's layout: benches' ok_upstream
# and the sidecar on CPU 0, the load on CPU 1 (`wrk -t1 -c64`; HTTP/2 clients: `h2load -c64
# -m10`, the sidecar sending HTTP/1.1 upstream as proxy.sh has it). Rounds are interleaved
# (A B, B A, A B ...), each build started afresh per run and warmed up first. For every run it
# reports the rate and the CPU time per request of each of the sidecar's threads (from
# /proc/PID/task/TID/stat): the runtime's thread, user + system, and the span export thread.
# proxy.sh compares proxies; this compares builds, where a change is worth a few percent and
# one run's spread is as large.
#
# Usage: benches/ab.sh A B
#   A, B           a functrace-sidecar binary, or a git revision (built in a worktree)
#   DURATION=5s    length of every measured run (after WARMUP=2s of load)
#   ROUNDS=3       rounds of a run of each; medians and B/A ratios at the end
#   PROTOCOL=h1    the clients' protocol: h1 (HTTP/1.1) or h2 (HTTP/2, prior knowledge)
#   SPANS=file     where the spans go: file (every request traced, as proxy.sh), devnull, or
#                  none (no span destination: no span recorded at all)
#   SPANS_A, SPANS_B   the same for one build only: `SPANS_B=none benches/ab.sh X X` is what
#                  spans cost build X
#   TARGET_DIR=<workspace>/target   cargo target dir of ok_upstream; revisions are built in
#                  TARGET_DIR/ab, so that the workspace's own build is left as it is
# The markdown table goes to stdout, progress to stderr. Needs wrk (h1) or h2load (h2), curl,
# taskset, python3.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
PROTOCOL=${PROTOCOL:-h1}
SPANS=${SPANS:-file}
SPANS_A=${SPANS_A:-$SPANS}
SPANS_B=${SPANS_B:-$SPANS}
TARGET_DIR=${TARGET_DIR:-$ROOT/target}
CLK_TCK=$(getconf CLK_TCK)
(($# == 2)) || { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

TMP=$(mktemp -d)
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	git -C "$ROOT" worktree prune 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

# binary NAME SPEC: the sidecar binary for SPEC (a file, or a revision built now) as $TMP/NAME.
binary() {
	local name=$1 spec=$2
	if [[ -f $spec ]]; then
		cp "$spec" "$TMP/$name"
		return
	fi
	git -C "$ROOT" rev-parse --verify -q "$spec^{commit}" >/dev/null || die "$spec: no such file or revision"
	log "building $spec"
	git -C "$ROOT" worktree add -q --detach "$TMP/tree-$name" "$spec"
	(cd "$TMP/tree-$name" && CARGO_TARGET_DIR=$TARGET_DIR/ab cargo build -q --release \
		-p functrace-sidecar --bin functrace-sidecar >&2)
	cp "$TARGET_DIR/ab/release/functrace-sidecar" "$TMP/$name"
	git -C "$ROOT" worktree remove --force "$TMP/tree-$name"
}

# ticks PID: "TID name utime stime" per thread, in clock ticks.
ticks() {
	local task stat fields
	for task in /proc/"$1"/task/*; do
		stat=$(<"$task/stat") || continue # a thread that just ended
		# The name (field 2) may hold spaces; utime and stime are fields 14 and 15.
		read -r -a fields <<<"${stat##*) }"
		echo "${task##*/} $(<"$task/comm") ${fields[11]} ${fields[12]}"
	done
}

# load DURATION URL: the protocol's load generator on CPU 1, its report on stdout.
load() {
	case $PROTOCOL in
	h1) taskset -c 1 wrk -t1 -c64 -d"$1" "$2" ;;
	h2) taskset -c 1 h2load -c64 -m10 -D "$1" "$2" ;;
	esac
}

# run NAME: one measured run of $TMP/NAME; prints "req/s runtime-user runtime-sys export
# total", CPU time in µs per request: the runtime's thread, the export thread, all threads.
run() {
	local name=$1 port admin pid spans before after requests
	port=$(free_port) admin=$(free_port)
	printf '[[inbound]]\nlisten = "127.0.0.1:%s"\napp = "%s"\nprotocol = "http1"\n' \
		"$port" "$UPSTREAM" >"$TMP/sidecar.toml"
	local destination=() spans=SPANS_${name^^}
	case ${!spans} in
	file)
		# The last run's spans written out and gone before this one starts.
		rm -f "$TMP/spans.jsonl" && settle
		destination=(--spans-file "$TMP/spans.jsonl")
		;;
	devnull) destination=(--spans-file /dev/null) ;;
	none) ;;
	*) die "$spans=${!spans}: file, devnull or none" ;;
	esac
	taskset -c 0 "$TMP/$name" --service bench --config "$TMP/sidecar.toml" \
		--admin "127.0.0.1:$admin" "${destination[@]}" --sample 1.0 >"$TMP/$name.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	for _ in $(seq 200); do
		curl -sf -o /dev/null "http://127.0.0.1:$admin/ready" && break
		kill -0 "$pid" 2>/dev/null || { cat "$TMP/$name.log" >&2; die "$name exited"; }
		sleep 0.05
	done
	load "$WARMUP" "http://127.0.0.1:$port/" >/dev/null
	before=$(ticks "$pid")
	load "$DURATION" "http://127.0.0.1:$port/" >"$TMP/load.txt"
	after=$(ticks "$pid")
	kill -TERM "$pid"
	wait "$pid" || true
	local rate errors
	read -r rate errors requests < <("parse_${LOADER}" <"$TMP/load.txt")
	((errors == 0 && requests > 0)) || { cat "$TMP/load.txt" >&2; die "$name: errors under load"; }
	rate=$(printf "%.0f" "$rate")
	# Each thread's ticks during the run (a thread born during it: all of its own).
	printf '%s\n---\n%s\n' "$before" "$after" | awk -v n="$requests" -v tck="$CLK_TCK" -v rate="$rate" -v pid="$pid" '
		$0 == "---" { during = 1; next }
		!during { user[$1] = $3; sys[$1] = $4; next }
		{
			u = $3 - user[$1]; s = $4 - sys[$1]; total += u + s
			# The runtime runs on the main thread, named after the binary.
			if ($1 == pid) { runtime_user += u; runtime_sys += s }
			if ($2 == "functrace-expor") export += u + s
		}
		END {
			us = 1e6 / tck / n
			printf "%s %.2f %.2f %.2f %.2f\n", rate, runtime_user * us, runtime_sys * us, export * us, total * us
		}'
}

case $PROTOCOL in
h1) LOADER=wrk ;;
h2) LOADER=h2load ;;
*) die "PROTOCOL=$PROTOCOL: h1 or h2" ;;
esac
command -v "$LOADER" >/dev/null || die "$LOADER is missing (apt-get install ${LOADER/h2load/nghttp2-client})"
binary a "$1"
binary b "$2"
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build -q --release -p functrace-benches --bin ok_upstream >&2)
taskset -c 0 "$TARGET_DIR/release/ok_upstream" 127.0.0.1:0 >"$TMP/upstream.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 200); do grep -q '^listening on ' "$TMP/upstream.log" && break; sleep 0.05; done
UPSTREAM=$(sed -n 's/^listening on //p' "$TMP/upstream.log")
[[ -n $UPSTREAM ]] || die "ok_upstream did not come up"

echo "A: $1 (spans: $SPANS_A), B: $2 (spans: $SPANS_B); $PROTOCOL; $ROUNDS rounds of $DURATION (after $WARMUP)"
echo
echo "| round | build | req/s | runtime thread µs/req (user + sys) | export thread µs/req | all threads µs/req |"
echo "|---|---|--:|--:|--:|--:|"
declare -A RATES CPUS
for ((round = 1; round <= ROUNDS; round++)); do
	# Each build goes first in every other round: a run leaves the next one the kernel's work
	# of writing out its spans, and a warmer or cooler machine.
	order="a b"
	((round % 2)) || order="b a"
	for name in $order; do
		log "round $round, ${name^^}"
		run "$name" >"$TMP/run"
		read -r rate user sys export total <"$TMP/run"
		echo "| $round | ${name^^} | $rate | $user + $sys | $export | $total |"
		RATES[$name]+="$rate " CPUS[$name]+="$total "
	done
done
# Medians of each build, and B against A.
echo
rate_a=$(median "${RATES[a]}") rate_b=$(median "${RATES[b]}")
cpu_a=$(median "${CPUS[a]}") cpu_b=$(median "${CPUS[b]}")
awk -v ra="$rate_a" -v rb="$rate_b" -v ca="$cpu_a" -v cb="$cpu_b" 'BEGIN {
	printf "Medians: A %.0f req/s, %.2f µs/req; B %.0f req/s, %.2f µs/req. B/A: rate %.3fx, CPU per request %.3fx.\n",
		ra, ca, rb, cb, rb / ra, cb / ca
}'
