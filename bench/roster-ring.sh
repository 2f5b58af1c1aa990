#!/usr/bin/env bash
# Reproduces the roster ring rows of docs/BENCHMARKS.md ("Roster subscription floods"): the perf
# harness's ring provisioning (`provision.sh --roster`: N users online, each subscribing to its 10
# next neighbours, everybody answering; 20 'both' items per user) against xmppd binaries given on
# the command line, alternated, each on a fresh copy of one data directory holding the N users
# (registered, empty rosters), with the harness's xmppd configuration.
#
#   PERF=/path/to/perf bench/roster-ring.sh DATA N FIRST BIN...     e.g. DATA N=5000 FIRST=21001 old new old new
#
# Per run: the load average, the harness's JSON (seconds from the first subscription to the
# check of the result, 'both' items reached), the server's CPU seconds from the first
# subscription to the end, and the harness's progress lines. Knobs: PORT (default 25540; the
# HTTP listener takes PORT+1), WAIT (the harness's overall limit, default 600s; it gives up
# anyway after 30 s without progress), OUT (default ./roster-ring-runs).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PERF="${PERF:-$ROOT/../shared/perf}"
[ -f "$PERF/provision.sh" ] || { echo "PERF=$PERF is not the perf harness" >&2; exit 2; }
[ $# -ge 4 ] || { sed -n '2,14p' "$0"; exit 2; }
. "$PERF/lib/common.sh"
DATA="$1" N="$2" FIRST="$3"
shift 3
PORT="${PORT:-25540}" OUT="${OUT:-$PWD/roster-ring-runs}"
xb_ensure_cert
xb_build_xmppload
xb_raise_nofile
mkdir -p "$OUT"
i=0
for bin in "$@"; do
  i=$((i + 1))
  d="$OUT/run$i"
  rm -rf "$d" && mkdir -p "$d" && cp -a "$DATA" "$d/data"
  sed -e "s#@DOMAIN@#$XB_DOMAIN#g" -e "s#@CERTDIR@#$XB_RUN/certs#g" -e "s#@C2S_PORT@#$PORT#g" \
    -e "s#@HTTP_PORT@#$((PORT + 1))#g" "$PERF/anchors/xmppd/xmppd.xml.in" >"$d/xmppd.xml"
  (cd "$d" && exec "$bin" -config "$d/xmppd.xml" -data "$d/data") >"$d/server.log" 2>&1 &
  pid=$!
  xb_wait_port "$PORT" 60 || { kill "$pid"; echo "$bin did not start" >&2; exit 1; }
  cpu() { awk '{print ($14 + $15) / 100}' "/proc/$pid/stat"; }
  echo "== run $i: $bin, load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$XMPPLOAD_BIN" roster -addr "127.0.0.1:$PORT" -domain "$XB_DOMAIN" -prefix "$XB_USER_PREFIX" \
    -password "$XB_PASSWORD" -first "$FIRST" -n "$N" -contacts 20 -rate 300 -wait "${WAIT:-600s}" \
    -json "$d/result.json" >/dev/null 2>"$d/load.err" &
  lp=$!
  while ! grep -q "sending subscriptions" "$d/load.err" 2>/dev/null && kill -0 "$lp" 2>/dev/null; do sleep 0.2; done
  c0="$(cpu)"
  wait "$lp" || true
  c1="$(cpu)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "server CPU s from the first subscription: $(echo "$c1 - $c0" | bc)"
  grep -E '"(seconds|both_items|want|verify_bad)"' "$d/result.json" | tr -d ' \n'; echo
  grep 'roster:' "$d/load.err" | head -12
done
