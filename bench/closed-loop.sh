#!/usr/bin/env bash
# Closed-loop chat with XEP-0198 against xmppd (cmd/xmppbench -sm-window), and the open-loop
# socket-buffer check, on the 5,000 users the perf harness provisioned (see bench/side-by-side.sh
# `setup`). Each run starts xmppd afresh from a copy of that data directory, so no run inherits
# another's archive.
#
#   bench/closed-loop.sh RUN...     RUN = NAME:INTERVAL:WINDOW (WINDOW 0: open loop, no XEP-0198)
#   e.g. bench/closed-loop.sh mam:1s:1 mam:0.25s:1 nomam:0.25s:1 mam:0.25s:0
#
# NAME is mam (the default config), nomam (<mam enabled="false"/>) or mamq=N (the archive's
# queue-messages set to N rows). 5,000 sessions sending one
# message per INTERVAL each offer 5,000/INTERVAL msgs/s. Knobs: K (5000), DURATION (20s), PORT
# (c2s, 25520; HTTP on PORT+1), DIR (/tmp/xmppd-closed-loop), SNAPSHOT (the provisioned data
# directory, default $XB_RUN/xmppd/data.snapshot), XMPPD (a binary to test instead of building
# this checkout). Run it under the shared perf lock. One JSON line per run on stdout, with the
# load average and, for open-loop runs, the bytes waiting unread in the server's c2s sockets
# (Recv-Q) and in the clients' (Send-Q) halfway through the sending. PROFILE=FILE records the
# server's CPU with perf for 10 s of the sending into FILE.NAME.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
K="${K:-5000}" DURATION="${DURATION:-20s}" PORT="${PORT:-25520}" DIR="${DIR:-/tmp/xmppd-closed-loop}"
SNAPSHOT="${SNAPSHOT:-${XB_RUN:-/tmp/xmppbench}/xmppd/data.snapshot}"
CERTS="${CERTS:-${XB_RUN:-/tmp/xmppbench}/certs}" DOMAIN=bench.localhost
mkdir -p "$DIR"
[ -d "$DIR/data.snapshot" ] || cp -a "$SNAPSHOT" "$DIR/data.snapshot"
if [ -z "${XMPPD:-}" ]; then (cd "$ROOT" && go build -o "$DIR/xmppd" ./cmd/xmppd); XMPPD="$DIR/xmppd"; fi
(cd "$ROOT" && go build -o "$DIR/xmppbench" ./cmd/xmppbench)
ulimit -n "$(ulimit -Hn)"

config() { # mam | nomam | mamq=N (archive queue-messages N)
  local mods=""
  case "$1" in
  nomam) mods='<modules><mam enabled="false"/></modules>' ;;
  mamq=*) mods="<modules><mam queue-messages=\"${1#mamq=}\"/></modules>" ;;
  esac
  cat <<XML
<xmppd>
  <hosts><host name="$DOMAIN"/></hosts>
  <tls cert="$CERTS/$DOMAIN.crt" key="$CERTS/$DOMAIN.key"/>
  <listeners><c2s address="127.0.0.1:$PORT" tls="starttls"/><http address="127.0.0.1:$((PORT + 1))"/></listeners>
  <auth require-tls="false" ip-failures-per-minute="0" account-failures-per-minute="0" scram-iterations="4096"/>
  <limits max-connections-per-ip="0" max-sessions-per-account="0" max-roster-items="0"/>
  $mods
  <log level="warn"/>
</xmppd>
XML
}

queues() { # Recv-Q of the server's c2s sockets, Send-Q of the clients' (bytes)
  ss -Htn state established "( sport = :$PORT )" | awk '{r+=$1} END {printf "%d", r}'
  printf ' '
  ss -Htn state established "( dport = :$PORT )" | awk '{s+=$2} END {printf "%d", s}'
}

for run in "$@"; do
  IFS=: read -r name interval window <<<"$run"
  rm -rf "$DIR/data" && cp -a "$DIR/data.snapshot" "$DIR/data"
  config "$name" >"$DIR/xmppd.xml"
  "$XMPPD" -config "$DIR/xmppd.xml" -data "$DIR/data" >"$DIR/xmppd.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.2; done
  sleep 2
  "$DIR/xmppbench" -addr "127.0.0.1:$PORT" -domain "$DOMAIN" -mode plain -mechanism PLAIN -n "$K" \
    -concurrency 64 -scenario chat -interval "$interval" -duration "$DURATION" -sm-window "$window" \
    -pid "$pid" >"$DIR/out.json" 2>"$DIR/err.log" &
  bench=$!
  q=""
  if [ -n "${PROFILE:-}" ]; then
    # PROFILE=FILE: record the server's CPU (perf, 10 s) from 3 s into the sending.
    until [ "$(ss -Htn state established "( sport = :$PORT )" | wc -l)" -ge "$K" ] || ! kill -0 "$bench" 2>/dev/null; do sleep 0.5; done
    sleep 5
    perf record -F 499 -g -p "$pid" -o "$PROFILE.$name" -- sleep 10 >/dev/null 2>&1 || true
  fi
  if [ "$window" = 0 ]; then
    # Halfway through the sending (logins take a while; wait for every session first).
    until [ "$(ss -Htn state established "( sport = :$PORT )" | wc -l)" -ge "$K" ] || ! kill -0 "$bench" 2>/dev/null; do sleep 0.5; done
    sleep "$(awk -v d="${DURATION%s}" 'BEGIN{print 1 + d/2}')"
    q="$(queues)"
  fi
  wait "$bench" || { cat "$DIR/err.log" >&2; }
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf '{"run":"%s","queues_recv_send_bytes":"%s",' "$run" "$q"
  tail -c +2 "$DIR/out.json"
done
