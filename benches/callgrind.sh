#!/usr/bin/env bash
# User-space instructions per proxied HTTP/1.1 request through functrace-sidecar, counted by
# callgrind: the release binary on CPU 0 (so with its single-threaded runtime), spans at 100%
# to a file, in front of benches' ok_upstream; `h2load --h1 -c 16 -m 1` on CPU 1 sends N=1000
# requests to one run and N=6000 to another, and the figure is the difference over 5000 (so
# start-up and shutdown cancel out).
#   benches/callgrind.sh                       # needs valgrind and h2load (nghttp2-client)
#   PROTOCOL=h2 benches/callgrind.sh           # HTTP/2 clients (h2load -c 16 -m 10), the
#                                              # sidecar sending HTTP/1.1 upstream, as
#                                              # benches/proxy.sh's HTTP/2 row has it
#   SIDECAR=/path/to/functrace-sidecar benches/callgrind.sh   # another build, for an A/B
#   TARGET=forward benches/callgrind.sh        # a reference of benches/proxy.sh instead: forward
#                                              # (on hyper), h1forward (on the sidecar's codec)
#                                              # or h2forward (HTTP/2 on h2 without hyper's
#                                              # server; with PROTOCOL=h2) or h2conn (a
#                                              # connection's streams in its own task, on
#                                              # h2's frame codec; with PROTOCOL=h2) or
#                                              # h2connown (h2conn with the sidecar's codec
#                                              # as its HTTP/1.1 client)
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
TARGET=${TARGET:-sidecar}
PROTOCOL=${PROTOCOL:-h1}
case $PROTOCOL in
h1) LOAD=(--h1 -c 16 -m 1) ;;
h2) LOAD=(-c 16 -m 10) ;;
*) echo "unknown PROTOCOL $PROTOCOL (h1, h2)" >&2; exit 2 ;;
esac
cargo build -q --release -p functrace-sidecar -p functrace-benches --bin functrace-sidecar \
	--bin ok_upstream --bin forward_proxy --bin h1_forward --bin h2_forward --bin h2_conn
SIDECAR=${SIDECAR:-$TARGET_DIR/release/functrace-sidecar}
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT

taskset -c 0 "$TARGET_DIR/release/ok_upstream" 127.0.0.1:0 >"$TMP/upstream.log" &
until grep -q '^listening on ' "$TMP/upstream.log"; do sleep 0.05; done
upstream=$(sed -n 's/^listening on //p' "$TMP/upstream.log")

# instructions N: the sidecar's total instruction count, serving N requests.
instructions() {
	local n=$1 out=$TMP/callgrind.$1 pid address
	local log=$TMP/proxy.$n.log
	case $TARGET in
	sidecar)
		printf '[[inbound]]\nlisten = "127.0.0.1:0"\napp = "%s"\nprotocol = "http1"\n' \
			"$upstream" >"$TMP/sidecar.toml"
		taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out" \
			"$SIDECAR" --config "$TMP/sidecar.toml" \
			--spans-file "$TMP/spans.$n.jsonl" --sample 1.0 >"$log" 2>&1 &
		pid=$!
		until grep -q '^ready' "$log"; do sleep 0.1; done
		address=$(sed -n 's/^inbound //p' "$log")
		;;
	forward | h1forward | h2forward | h2conn | h2connown)
		local binary=forward_proxy
		[[ $TARGET == h1forward ]] && binary=h1_forward
		[[ $TARGET == h2forward ]] && binary=h2_forward
		[[ $TARGET == h2conn || $TARGET == h2connown ]] && binary=h2_conn
		taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out" \
			"$TARGET_DIR/release/$binary" 127.0.0.1:0 "$upstream" \
			$([[ $TARGET == h2connown ]] && echo own) >"$log" 2>&1 &
		pid=$!
		until grep -q '^listening on ' "$log"; do sleep 0.1; done
		address=$(sed -n 's/^listening on //p' "$log")
		;;
	*) echo "unknown TARGET $TARGET (sidecar, forward, h1forward, h2forward, h2conn, h2connown)" >&2; exit 2 ;;
	esac
	taskset -c 1 h2load "${LOAD[@]}" -n "$n" "http://$address/" >"$TMP/h2load.$n.log"
	grep -q " 0 failed, 0 errored" "$TMP/h2load.$n.log" ||
		{ cat "$TMP/h2load.$n.log" >&2; exit 1; }
	kill -TERM "$pid"
	wait "$pid" || true
	sed -n 's/^summary: //p' "$out"
}

small=$(instructions 1000)
large=$(instructions 6000)
echo "instructions per request: $(((large - small) / 5000)) ($small for 1000 requests, $large for 6000)"
