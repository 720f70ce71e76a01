# Shared by benches/proxy.sh and benches/ab.sh (sourced): messages, ports, the load
# generators' reports, medians.

log() { echo "[$(basename "$0")] $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# Asks the kernel for a free port; the small window before the server binds it is harmless here.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Writes out what earlier runs left in the page cache (the sidecar's spans file), so that the
# kernel's writeback, which starts 30 s after a page is written (vm.dirty_expire_centisecs),
# does not run during the next measured run and is charged to whichever target that is.
settle() { sync; }

# Prints "REQ_PER_S ERRORS REQUESTS" of a wrk run's output.
parse_wrk() {
	awk '/^Requests\/sec:/ { rps = $2 }
		/ requests in / { requests = $1 }
		/Non-2xx or 3xx responses:/ { err += $NF }
		/Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
		END { print rps + 0, err + 0, requests + 0 }'
}

# Prints "REQ_PER_S ERRORS REQUESTS" of an h2load run's output. h2load counts 4xx, 5xx and
# broken streams as failed, 3xx as succeeded.
parse_h2load() {
	awk '/^finished in/ { rps = $4 }
		/^requests:/ { failed = $10; done = $6 }
		/^status codes:/ { redirects = $5 }
		END { print rps + 0, failed + redirects, done + 0 }'
}

# median NUMBER...: their median ("nan" for none).
median() {
	tr ' ' '\n' <<<"$*" | sort -g | awk 'NF { v[++n] = $1 }
		END { if (n == 0) print "nan"; else if (n % 2) print v[(n + 1) / 2]; else print (v[n / 2] + v[n / 2 + 1]) / 2 }'
}
