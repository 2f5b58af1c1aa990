#!/bin/sh
# coturn.sh runs turnbench against the embedded TURN server and coturn
# (Debian's turnserver, TURN REST API credentials: use-auth-secret) in one
# run, with direct UDP as the baseline. Arguments go to turnbench:
#
#	jingle/turn/turnbench/coturn.sh -calls 500 -duration 20s -rounds 3
#	jingle/turn/turnbench/coturn.sh -sweep 250,500,750,1000 -duration 10s
#
# coturn listens on 127.0.0.1:25000 (UDP only, no TLS, no CLI) and relays
# on 127.0.0.2-127.0.0.5, ports 25001-25999 on each: one address has too
# few ports in that range for 1,000 calls. Its configuration and log are
# in $COTURN_DIR (default /tmp/turnbench-coturn); it is stopped on exit.
# Run it from the repository's root, as root to raise the benchmark's
# scheduling share (see jingle/turn/README.md).
set -eu

dir=${COTURN_DIR:-/tmp/turnbench-coturn}
port=${COTURN_PORT:-25000}
secret=turnbench-coturn-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
command -v turnserver >/dev/null || { echo "coturn.sh: turnserver not found (Debian package coturn)" >&2; exit 1; }
mkdir -p "$dir"
rm -f "$dir/turnserver.pid" "$dir/turn.log"

cat >"$dir/turnserver.conf" <<CONF
listening-ip=127.0.0.1
listening-port=$port
relay-ip=127.0.0.2
relay-ip=127.0.0.3
relay-ip=127.0.0.4
relay-ip=127.0.0.5
min-port=$((port + 1))
max-port=$((port + 999))
realm=localhost
use-auth-secret
static-auth-secret=$secret
fingerprint
allow-loopback-peers
no-tls
no-dtls
no-tcp
no-tcp-relay
no-cli
no-rfc5780
no-stun-backward-compatibility
no-software-attribute
no-multicast-peers
user-quota=0
total-quota=0
max-bps=0
simple-log
log-file=$dir/turn.log
pidfile=$dir/turnserver.pid
userdb=$dir/turndb
CONF

# TURNBENCH: a turnbench binary to run (e.g. one built from an older
# commit, to compare servers); default: built from this tree.
bench=${TURNBENCH:-}
if [ -z "$bench" ]; then
	bench=$dir/turnbench
	go build -o "$bench" ./jingle/turn/turnbench
fi
turnserver -c "$dir/turnserver.conf" >"$dir/stdout.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT INT TERM
# Ready when the UDP port is bound.
i=0
until grep -q ":$(printf '%04X' "$port") 00000000:0000 07" /proc/net/udp 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "coturn.sh: turnserver did not start; see $dir/stdout.log, $dir/turn.log*" >&2; exit 1; }
	kill -0 $pid 2>/dev/null || { echo "coturn.sh: turnserver exited; see $dir/stdout.log, $dir/turn.log*" >&2; exit 1; }
	sleep 0.1
done

# With autogroup scheduling, nice ranks processes only within their session;
# as root, give this session (turnbench and coturn) a fair share of a
# shared machine.
[ "$(id -u)" != 0 ] || echo -15 >/proc/self/autogroup 2>/dev/null || true
"$bench" -external "127.0.0.1:$port" -external-secret "$secret" -external-name coturn -external-pid $pid "$@"
