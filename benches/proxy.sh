#!/usr/bin/env bash
# Load benchmark of functrace-sidecar as a reverse proxy, next to HAProxy and nginx configured
# as plain reverse proxies, all in front of the same upstream (benches/src/bin/ok_upstream.rs).
# The `forward` target (benches/src/bin/forward_proxy.rs) is a proxy on the sidecar's stack
# that only forwards: what hyper costs before any of the sidecar's own work. The `h1forward`
# target (benches/src/bin/h1_forward.rs) forwards HTTP/1.1 only, on the sidecar's own codec
# (functrace_sidecar::h1): what that design costs before the sidecar's own work. The
# `h2forward` target (benches/src/bin/h2_forward.rs) is `forward` serving HTTP/2 with h2
# directly, not through hyper's server: what hyper's HTTP/2 server layer costs. The `h2conn`
# target (benches/src/bin/h2_conn.rs) is `h2forward` with a connection's streams kept in its
# own task, on h2's frame codec: what a task per stream costs; `h2connown` is `h2conn` with the
# sidecar's codec as its HTTP/1.1 client. The
# `sidecarhyper` target is the sidecar on hyper's HTTP/1.1 path (`--http1 hyper`). The
# `haproxyids` target is HAProxy adding the request fields the sidecar adds (request id, B3).
# None is in the default TARGETS' comparison of proxies: they are references.
#
# Usage: benches/proxy.sh
#   DURATION=10s   length of every load run
#   ROUNDS=3       rounds over all targets (interleaved: A B C A B C ...), medians are reported
#   TARGETS="direct forward sidecar haproxy nginx"
#   TARGET_DIR=<workspace>/target   cargo target dir to build into and run from
# Quick smoke run: DURATION=2s ROUNDS=1 benches/proxy.sh
#
# Servers (upstream and proxy) run on CPU 0, the load generator on CPU 1, so every proxy gets
# the same single core (shared with the upstream). Everything listens on 127.0.0.1 only.
# For each protocol (HTTP/1.1, HTTP/2 prior knowledge):
#   1. peak requests/s: wrk (HTTP/1.1) or h2load (HTTP/2), 64 connections;
#   2. latency at a fixed rate of half the slowest proxy's peak: h2load --rps --log-file,
#      p50/p99 computed from the per-request times.
# Every run starts with the page cache written out (sync, `settle` in benches/lib.sh), so
# that no run pays for the kernel writing out the spans file of the run before it.
# The markdown table goes to stdout, progress to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
TARGETS=${TARGETS:-direct forward sidecar haproxy nginx}
TARGET_DIR=${TARGET_DIR:-$ROOT/target}
CONNS=64
H2_STREAMS=10 # concurrent streams per HTTP/2 connection
SERVER_CPU=0
LOAD_CPU=1
PROTOCOLS=${PROTOCOLS:-h1 h2} # h1, h2 or both

TMP=$(mktemp -d)
touch "$TMP/commands" "$TMP/load-commands"
PIDS=()   # servers
LOAD_PID= # the running load generator
declare -A PID_OF URL IDLE_KB HWM_KB SKIP PEAKS P50S P99S ERRORS RATE USER_US SYS_US
CLK_TCK=$(getconf CLK_TCK)

cleanup() {
	local pid
	for pid in $LOAD_PID "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

has_target() { [[ " $TARGETS " == *" $1 "* ]]; }
proto_name() { if [[ $1 == h1 ]]; then echo HTTP/1.1; else echo HTTP/2; fi; }

# --- setup -------------------------------------------------------------------------------

install_tools() {
	local missing=() cmd pkg
	for cmd in wrk:wrk h2load:nghttp2-client curl:curl taskset:util-linux python3:python3 \
		haproxy:haproxy nginx:nginx; do
		pkg=${cmd#*:} cmd=${cmd%%:*}
		if [[ $cmd == haproxy || $cmd == nginx ]] && ! has_target "$cmd"; then continue; fi
		command -v "$cmd" >/dev/null || missing+=("$pkg")
	done
	((${#missing[@]})) || return 0
	[[ $EUID == 0 ]] || die "missing packages (install them as root): ${missing[*]}"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y "${missing[@]}" >&2 || { apt-get update >&2 && apt-get install -y "${missing[@]}" >&2; }
}

build() {
	cd "$ROOT"
	export CARGO_TARGET_DIR=$TARGET_DIR
	cargo build --release -p functrace-benches --bin ok_upstream >&2
	if has_target forward; then
		cargo build --release -p functrace-benches --bin forward_proxy >&2
	fi
	if has_target h1forward; then
		cargo build --release -p functrace-benches --bin h1_forward >&2
	fi
	if has_target h2forward; then
		cargo build --release -p functrace-benches --bin h2_forward >&2
	fi
	if has_target h2conn || has_target h2connown; then
		cargo build --release -p functrace-benches --bin h2_conn >&2
	fi
	if has_target sidecar || has_target sidecarhyper; then
		cargo build --release -p functrace-sidecar --bin functrace-sidecar >&2
	fi
}

# Other work on the machine skews the numbers: say so (stderr and report) rather than fail.
warn_if_busy() {
	local before after
	before=$(head -n1 /proc/stat)
	sleep 1
	after=$(head -n1 /proc/stat)
	# Fields after "cpu": user nice system idle iowait irq softirq steal ...
	BUSY=$(printf '%s\n%s\n' "$before" "$after" | awk '{ idle[NR] = $5 + $6; total[NR] = 0
			for (i = 2; i <= NF; i++) total[NR] += $i }
		END { printf "%.0f", 100 * (1 - (idle[2] - idle[1]) / (total[2] - total[1])) }')
	((BUSY < 10)) || log "warning: the CPUs were $BUSY% busy before the benchmark started"
}

# spawn NAME CMD...: starts a server on the server CPU, output in $TMP/NAME.log.
spawn() {
	local name=$1
	shift
	echo "taskset -c $SERVER_CPU $*" >>"$TMP/commands"
	taskset -c "$SERVER_CPU" "$@" >"$TMP/$name.log" 2>&1 &
	PIDS+=("$!")
	PID_OF[$name]=$!
}

# wait_until NAME CMD...: polls CMD (bounded, 10 s) while the server NAME is alive.
wait_until() {
	local name=$1 i
	shift
	for ((i = 0; i < 200; i++)); do
		"$@" 2>/dev/null && return 0
		kill -0 "${PID_OF[$name]}" 2>/dev/null || { cat "$TMP/$name.log" >&2; die "$name exited"; }
		sleep 0.05
	done
	cat "$TMP/$name.log" >&2
	die "$name did not come up"
}
port_open() { (: <>"/dev/tcp/127.0.0.1/$1"); }

# listening_on NAME: the address the server NAME (one of ours) bound, from its first line.
listening_on() {
	wait_until "$1" grep -q '^listening on ' "$TMP/$1.log"
	sed -n 's/^listening on //p' "$TMP/$1.log" | head -n1
}

start_upstream() {
	spawn upstream "$TARGET_DIR/release/ok_upstream" 127.0.0.1:0
	UPSTREAM=$(listening_on upstream)
	PID_OF[direct]=${PID_OF[upstream]}
	URL[h1:direct]=http://$UPSTREAM/
	URL[h2:direct]=http://$UPSTREAM/
}

# HTTP/1.1 to the upstream whatever the client speaks, as HAProxy and nginx are configured.
start_sidecar() {
	local port admin
	port=$(free_port) admin=$(free_port)
	printf '[[inbound]]\nlisten = "127.0.0.1:%s"\napp = "%s"\nprotocol = "http1"\n' \
		"$port" "$UPSTREAM" >"$TMP/sidecar.toml"
	spawn sidecar "$TARGET_DIR/release/functrace-sidecar" --service bench \
		--config "$TMP/sidecar.toml" --admin "127.0.0.1:$admin" \
		--spans-file "$TMP/spans.jsonl" --sample 1.0
	wait_until sidecar curl -sf -o /dev/null "http://127.0.0.1:$admin/ready"
	URL[h1:sidecar]=http://127.0.0.1:$port/
	URL[h2:sidecar]=http://127.0.0.1:$port/ # HTTP/1.1 and HTTP/2 on the same port
}

# The sidecar on hyper's HTTP/1.1 path (`--http1 hyper`), as it was before its own: a reference.
start_sidecarhyper() {
	local port admin
	port=$(free_port) admin=$(free_port)
	printf '[[inbound]]\nlisten = "127.0.0.1:%s"\napp = "%s"\nprotocol = "http1"\n' \
		"$port" "$UPSTREAM" >"$TMP/sidecarhyper.toml"
	spawn sidecarhyper "$TARGET_DIR/release/functrace-sidecar" --service bench --http1 hyper \
		--config "$TMP/sidecarhyper.toml" --admin "127.0.0.1:$admin" \
		--spans-file "$TMP/spans-hyper.jsonl" --sample 1.0
	wait_until sidecarhyper curl -sf -o /dev/null "http://127.0.0.1:$admin/ready"
	URL[h1:sidecarhyper]=http://127.0.0.1:$port/
	URL[h2:sidecarhyper]=http://127.0.0.1:$port/
}

start_forward() {
	local address
	spawn forward "$TARGET_DIR/release/forward_proxy" 127.0.0.1:0 "$UPSTREAM"
	address=$(listening_on forward)
	URL[h1:forward]=http://$address/
	URL[h2:forward]=http://$address/
}

start_h1forward() {
	local address
	spawn h1forward "$TARGET_DIR/release/h1_forward" 127.0.0.1:0 "$UPSTREAM"
	address=$(listening_on h1forward)
	URL[h1:h1forward]=http://$address/
	URL[h2:h1forward]=http://$address/ # HTTP/1.1 only: its HTTP/2 check fails, and it sits out
}

# A reference serving HTTP/2 only (its HTTP/1.1 check fails, and it sits out): NAME BINARY
# [ARGUMENTS after the upstream].
start_http2_reference() {
	local name=$1 binary=$2 address
	shift 2
	spawn "$name" "$TARGET_DIR/release/$binary" 127.0.0.1:0 "$UPSTREAM" "$@"
	address=$(listening_on "$name")
	URL[h1:$name]=http://$address/
	URL[h2:$name]=http://$address/
}

start_h2forward() { start_http2_reference h2forward h2_forward; }
start_h2conn() { start_http2_reference h2conn h2_conn; }
start_h2connown() { start_http2_reference h2connown h2_conn own; }

start_haproxy() {
	start_haproxy_as haproxy ""
}

# HAProxy writing the fields the sidecar adds to each request (a UUID `x-request-id`, B3's
# trace id, span id and sampled flag), with no span: what the upstream's reading of those
# fields costs the rate, which the `haproxy` row (fields forwarded as they came) does not
# pay. A reference, not in the default TARGETS.
start_haproxyids() {
	start_haproxy_as haproxyids "$(
		cat <<-'EOF'
			    http-request set-header x-request-id %[uuid]
			    http-request set-header x-b3-traceid %[uuid,regsub(-,,g)]
			    http-request set-header x-b3-spanid %[uuid,regsub(-,,g),bytes(0,16)]
			    http-request set-header x-b3-sampled 1
		EOF
	)"
}

# start_haproxy_as NAME BACKEND_LINES: HAProxy as target NAME, BACKEND_LINES in its backend.
start_haproxy_as() {
	local name=$1 lines=$2 h1 h2
	h1=$(free_port) h2=$(free_port)
	cat >"$TMP/$name.cfg" <<-EOF
		global
		    nbthread 1
		    maxconn 4096
		defaults
		    mode http
		    timeout connect 5s
		    timeout client 60s
		    timeout server 60s
		frontend h1
		    bind 127.0.0.1:$h1
		    default_backend upstream
		frontend h2
		    bind 127.0.0.1:$h2 proto h2
		    default_backend upstream
		backend upstream
		    server ok $UPSTREAM
		$lines
	EOF
	# -db: stay in the foreground; without a `log` line HAProxy logs nothing.
	spawn "$name" haproxy -db -f "$TMP/$name.cfg"
	wait_until "$name" port_open "$h1"
	wait_until "$name" port_open "$h2"
	URL[h1:$name]=http://127.0.0.1:$h1/
	URL[h2:$name]=http://127.0.0.1:$h2/
}

start_nginx() {
	local h1 h2 dir=$TMP/nginx
	h1=$(free_port) h2=$(free_port)
	mkdir -p "$dir"
	# All paths inside $dir: nginx runs as root here and must not touch /var. The default
	# keepalive_requests (1000) would close client and upstream connections every 1000 requests.
	# The upstream pool holds as many idle connections as there can be requests in flight
	# (HTTP/2: connections x streams); a smaller pool closes and reopens connections under load.
	# `listen ... http2` without ssl serves HTTP/2 prior knowledge (h2c) only.
	cat >"$dir/nginx.conf" <<-EOF
		daemon off;
		master_process off;
		worker_processes 1;
		pid $dir/nginx.pid;
		error_log $dir/error.log warn;
		events { worker_connections 4096; }
		http {
		    access_log off;
		    client_body_temp_path $dir/client_body;
		    proxy_temp_path $dir/proxy;
		    fastcgi_temp_path $dir/fastcgi;
		    uwsgi_temp_path $dir/uwsgi;
		    scgi_temp_path $dir/scgi;
		    keepalive_requests 1000000;
		    upstream upstream {
		        server $UPSTREAM;
		        keepalive $((CONNS * H2_STREAMS));
		        keepalive_requests 1000000;
		    }
		    server {
		        listen 127.0.0.1:$h1;
		        listen 127.0.0.1:$h2 http2;
		        location / {
		            proxy_pass http://upstream;
		            proxy_http_version 1.1;
		            proxy_set_header Connection "";
		        }
		    }
		}
	EOF
	spawn nginx nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
	wait_until nginx port_open "$h1"
	wait_until nginx port_open "$h2"
	URL[h1:nginx]=http://127.0.0.1:$h1/
	URL[h2:nginx]=http://127.0.0.1:$h2/
}

# One request per protocol; a target that fails it is left out of that protocol's runs.
check_target() {
	local t=$1 got
	got=$(curl -s --max-time 5 -w ' %{http_code} %{http_version}' "${URL[h1:$t]}" || true)
	[[ $got == "ok 200 1.1" ]] || { SKIP[h1:$t]="HTTP/1.1 check failed: '$got'"; log "$t: ${SKIP[h1:$t]}"; }
	got=$(curl -s --max-time 5 --http2-prior-knowledge -w ' %{http_code} %{http_version}' "${URL[h2:$t]}" || true)
	[[ $got == "ok 200 2" ]] || { SKIP[h2:$t]="h2c prior-knowledge check failed: '$got'"; log "$t: ${SKIP[h2:$t]}"; }
}

# --- measurements ------------------------------------------------------------------------

status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# Resets VmHWM to the current RSS (writing 5 to clear_refs), so each protocol gets its own peak.
reset_hwm() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || log "cannot reset VmHWM of $1"; }

wrk_cmd() { echo "taskset -c $LOAD_CPU wrk -t1 -c$CONNS -d$DURATION --latency $1"; }
h2load_cmd() { # h2load_cmd PROTO URL [EXTRA...]
	local proto=$1 url=$2
	shift 2
	if [[ $proto == h1 ]]; then
		echo "taskset -c $LOAD_CPU h2load --h1 -c$CONNS -m1 -D $DURATION${*:+ $*} $url"
	else
		echo "taskset -c $LOAD_CPU h2load -c$CONNS -m$H2_STREAMS -D $DURATION${*:+ $*} $url"
	fi
}

# "USER SYSTEM": the CPU time a process has used, in clock ticks (/proc/PID/stat fields 14
# and 15; the name in parentheses may hold spaces).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'; }

# run_load CMD: runs a load command (a string, so that it can be listed in the report; no
# argument contains spaces), after `settle`, and keeps its output in $TMP/last.out. It runs
# in the background so that an interrupt reaches the trap at once rather than after the run.
run_load() {
	local template="${1% *} URL" # the URL is the last word
	grep -qxF -- "$template" "$TMP/load-commands" || echo "$template" >>"$TMP/load-commands"
	settle
	$1 >"$TMP/last.out" 2>&1 &
	LOAD_PID=$!
	wait "$LOAD_PID" || { cat "$TMP/last.out" >&2; die "load run failed: $1"; }
	LOAD_PID=
}

add_errors() {
	ERRORS[$1]=$((${ERRORS[$1]:-0} + $2))
	((!$2)) || grep -E '^(requests:|status codes:|Non-2xx|  Socket errors)' "$TMP/last.out" >&2 || true
}

# The peak run also gives the target's CPU time per request (user and system, µs): its own
# process only (`direct`: the upstream's).
measure_peak() {
	local proto=$1 t=$2 rps err requests user0 sys0 user1 sys1
	read -r user0 sys0 < <(cpu_ticks "${PID_OF[$t]}")
	if [[ $proto == h1 ]]; then
		run_load "$(wrk_cmd "${URL[h1:$t]}")"
		read -r rps err requests < <(parse_wrk <"$TMP/last.out")
	else
		run_load "$(h2load_cmd h2 "${URL[h2:$t]}")"
		read -r rps err requests < <(parse_h2load <"$TMP/last.out")
	fi
	read -r user1 sys1 < <(cpu_ticks "${PID_OF[$t]}")
	USER_US[$proto:$t]+="$(awk "BEGIN { print ($user1 - $user0) * 1e6 / $CLK_TCK / $requests }") "
	SYS_US[$proto:$t]+="$(awk "BEGIN { print ($sys1 - $sys0) * 1e6 / $CLK_TCK / $requests }") "
	PEAKS[$proto:$t]+="$rps "
	add_errors "$proto:$t" "$err"
	log "$(proto_name "$proto") $t peak: $rps req/s, $err errors"
}

# Nearest-rank p50 and p99 (µs) of the third column (µs until end of response) of a log file.
percentiles() {
	cut -f3 "$1" | sort -n | awk '{ v[NR] = $1 }
		END { if (NR == 0) { print "nan nan"; exit }
			print v[int((NR * 50 + 99) / 100)], v[int((NR * 99 + 99) / 100)] }'
}

measure_fixed() {
	local proto=$1 t=$2 rps err p50 p99
	rm -f "$TMP/requests.tsv"
	run_load "$(h2load_cmd "$proto" "${URL[$proto:$t]}" --rps "${RATE[$proto]}" --log-file "$TMP/requests.tsv")"
	read -r rps err _ < <(parse_h2load <"$TMP/last.out")
	read -r p50 p99 < <(percentiles "$TMP/requests.tsv")
	P50S[$proto:$t]+="$p50 " P99S[$proto:$t]+="$p99 "
	add_errors "$proto:$t" "$err"
	log "$(proto_name "$proto") $t at $rps req/s: p50 ${p50} µs, p99 ${p99} µs, $err errors"
}

# Targets that take part in PROTO's runs.
active() {
	local t
	for t in $TARGETS; do [[ -z ${SKIP[$1:$t]:-} ]] && echo "$t"; done
}

run_protocol() {
	local proto=$1 t round slowest peaks=""
	for t in $TARGETS; do reset_hwm "${PID_OF[$t]}"; done
	for ((round = 1; round <= ROUNDS; round++)); do
		for t in $(active "$proto"); do measure_peak "$proto" "$t"; done
	done
	# Fixed rate: half the peak of the slowest proxy (of direct when no proxy takes part);
	# `forward`, `h1forward`, `h2forward`, `h2conn`, `h2connown` and `sidecarhyper` are references, not proxies compared.
	for t in $(active "$proto"); do
		[[ $t =~ ^(direct|forward|h1forward|h2forward|h2conn|h2connown|sidecarhyper)$ ]] || peaks+="$(median "${PEAKS[$proto:$t]}") "
	done
	[[ -n $peaks ]] || ! has_target direct || peaks=$(median "${PEAKS[$proto:direct]:-}")
	slowest=$(tr ' ' '\n' <<<"$peaks" | sort -g | awk 'NF && !n++')
	[[ -n $slowest ]] || return 0
	RATE[$proto]=$(awk "BEGIN { printf \"%.2f\", $slowest / 2 / $CONNS }") # per connection
	log "$(proto_name "$proto") fixed rate: $(awk "BEGIN { print ${RATE[$proto]} * $CONNS }") req/s"
	for ((round = 1; round <= ROUNDS; round++)); do
		for t in $(active "$proto"); do measure_fixed "$proto" "$t"; done
	done
	for t in $TARGETS; do HWM_KB[$proto:$t]=$(status_kb "${PID_OF[$t]}" VmHWM); done
}

# --- report ------------------------------------------------------------------------------

mib() { awk "BEGIN { printf \"%.1f MiB\", $1 / 1024 }"; }
ms() { awk "BEGIN { printf \"%${2:-}.2f ms\", ($1) / 1000 }"; } # ms MICROSECONDS [+]

report_row() {
	local proto=$1 t=$2 peak ref p50 p99 d50 d99 cpu ratio="–" added50="–" added99="–"
	if [[ -n ${SKIP[$proto:$t]:-} ]]; then
		echo "| $(proto_name "$proto") | $t | n/a: ${SKIP[$proto:$t]} | | | | | | | | | | |"
		return
	fi
	peak=$(median "${PEAKS[$proto:$t]}")
	p50=$(median "${P50S[$proto:$t]:-}") p99=$(median "${P99S[$proto:$t]:-}")
	if has_target haproxy && [[ -z ${SKIP[$proto:haproxy]:-} ]]; then
		ref=$(median "${PEAKS[$proto:haproxy]}")
		ratio=$(awk "BEGIN { printf \"%.2f\", $peak / $ref }")
	fi
	if [[ $t != direct ]] && has_target direct && [[ -z ${SKIP[$proto:direct]:-} ]]; then
		d50=$(median "${P50S[$proto:direct]:-}") d99=$(median "${P99S[$proto:direct]:-}")
		added50=$(ms "$p50 - $d50" +) added99=$(ms "$p99 - $d99" +)
	fi
	cpu=$(awk "BEGIN { printf \"%.2f + %.2f\", $(median "${USER_US[$proto:$t]}"), $(median "${SYS_US[$proto:$t]}") }")
	printf '| %s | %s | %.0f | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n' \
		"$(proto_name "$proto")" "$t" "$peak" "$ratio" "$cpu" "$(awk "BEGIN { print ${RATE[$proto]:-0} * $CONNS }")" \
		"$(ms "$p50")" "$(ms "$p99")" "$added50" "$added99" "$(mib "${IDLE_KB[$t]}")" "$(mib "${HWM_KB[$proto:$t]}")" \
		"${ERRORS[$proto:$t]:-0}"
}

# One target's peaks in round order, flagged when the fastest round is more than 1.1 times
# the slowest.
round_peaks() {
	local proto=$1 t=$2 peaks
	[[ -z ${SKIP[$proto:$t]:-} ]] || return 0
	peaks=${PEAKS[$proto:$t]}
	awk -v name="$(proto_name "$proto") $t" -v peaks="$peaks" 'BEGIN {
		n = split(peaks, v, " ")
		lo = hi = v[1]
		for (i = 1; i <= n; i++) {
			line = line (i > 1 ? ", " : "") sprintf("%.0f", v[i])
			if (v[i] < lo) lo = v[i]
			if (v[i] > hi) hi = v[i]
		}
		flag = (lo > 0 && hi / lo > 1.1) ? sprintf(" **uneven: the fastest round is %.2fx the slowest**", hi / lo) : ""
		printf "- %s: %s%s\n", name, line, flag
	}'
}

report() {
	local proto t
	echo "## Proxy load benchmark (benches/proxy.sh)"
	echo
	echo "Run: \`DURATION=$DURATION ROUNDS=$ROUNDS TARGETS=\"$TARGETS\" benches/proxy.sh\`" \
		"(functrace $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')," \
		"$(nproc --all) CPUs, servers on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU;" \
		"CPUs $BUSY% busy with other work just before the start)."
	echo "Peak: $CONNS connections (HTTP/2: $H2_STREAMS streams each), median over $ROUNDS round(s)." \
		"Latency: h2load at a fixed rate of half the slowest proxy's peak, nearest-rank percentiles" \
		"per run, median over the rounds (HTTP/1.1: one request at a time per connection, a request" \
		"that waits for its connection is timed from when it is sent). RSS: VmRSS before any load, VmHWM over the protocol's runs" \
		"(direct: the upstream itself). CPU: the target process's user + system time per request" \
		"during the peak runs, in µs (/proc/PID/stat), median over the rounds." \
		"Errors: non-2xx responses and socket errors over all runs."
	echo
	echo "| protocol | target | req/s (peak) | vs haproxy | CPU µs/req (user + sys) | fixed rate (req/s) | p50 | p99 | added p50 | added p99 | RSS idle | RSS under load | errors |"
	echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
	for proto in $PROTOCOLS; do
		for t in $TARGETS; do report_row "$proto" "$t"; done
	done
	echo
	echo "Peaks by round, req/s (a target whose rounds differ by more than a tenth is flagged: the" \
		"machine changed speed during the run, and its medians say little; run it again):"
	echo
	for proto in $PROTOCOLS; do
		for t in $TARGETS; do round_peaks "$proto" "$t"; done
	done
	if has_target sidecar; then
		echo
		echo "functrace-sidecar wrote $(wc -l <"$TMP/spans.jsonl") span lines ($(du -h "$TMP/spans.jsonl" | cut -f1)) to its spans file."
	fi
	echo
	echo "Commands (URL: the target's address):"
	echo '```'
	cat "$TMP/commands" "$TMP/load-commands"
	echo '```'
	echo
	echo "Versions:"
	echo '```'
	has_target haproxy && haproxy -v | sed -n 1p # reads it all: head leaving early can fail the pipe
	has_target nginx && nginx -v 2>&1
	wrk -v 2>&1 | head -n1 || true
	h2load --version
	echo '```'
}

main() {
	local t proto
	[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
	for t in $TARGETS; do
		[[ $t =~ ^(direct|forward|h1forward|h2forward|h2conn|h2connown|sidecar|sidecarhyper|haproxy|haproxyids|nginx)$ ]] || die "unknown target $t"
	done
	install_tools
	# The latency runs rely on a fixed request rate per client.
	# Not `h2load --help | grep -q`: grep leaving early fails the pipe under pipefail.
	[[ $(h2load --help) == *--rps* ]] || die "this h2load has no --rps"
	build
	# The first one writes out what the build left, which can take minutes.
	log "writing out the page cache (sync)"
	settle
	start_upstream
	for t in $TARGETS; do [[ $t == direct ]] || "start_$t"; done
	for t in $TARGETS; do IDLE_KB[$t]=$(status_kb "${PID_OF[$t]}" VmRSS); done
	for t in $TARGETS; do check_target "$t"; done
	warn_if_busy
	for proto in $PROTOCOLS; do run_protocol "$proto"; done
	report
}

main "$@"
