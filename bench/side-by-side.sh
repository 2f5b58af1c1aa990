#!/usr/bin/env bash
# Reproduces the side-by-side rows of docs/BENCHMARKS.md: xmppd on its defaults (MAM on) and with
# <mam enabled="false"/>, ejabberd 23.01 and Prosody 0.12.3 from Debian, one after the other in
# one run, on the team's perf harness (tsung + the xmppload Go client; see its README).
#
#   PERF=/path/to/perf bench/side-by-side.sh setup        install anchors' users and rosters
#   PERF=/path/to/perf bench/side-by-side.sh chat         chat at 5,000, 10,000, 20,000 msgs/s offered (LEVELS)
#   PERF=/path/to/perf bench/side-by-side.sh roster       roster ring fan-out
#   PERF=/path/to/perf bench/side-by-side.sh idle         idle sessions, plain and STARTTLS
#
# Every xmppd run starts from the same data directory: `setup` saves xmppd's provisioned data as
# $XB_RUN/xmppd/data.snapshot and each run restores it, so an archive filled by one run does not
# slow the next (the anchors keep no archive).
# Knobs: SERVERS (default "xmppd xmppd-nomam ejabberd prosody"), K (users, default 5000),
# R (first user of the roster ring, default 21001), ROUNDS (default 1: each scenario per server
# in turn; more rounds alternate again), TAG. xmppd is built from this checkout.
# Results: one JSON line per run in $PERF/results/results.jsonl; make_results.py renders them.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PERF="${PERF:-$ROOT/../shared/perf}"
[ -x "$PERF/bench.sh" ] || { echo "PERF=$PERF is not the perf harness" >&2; exit 2; }
. "$PERF/lib/common.sh"
K="${K:-5000}" R="${R:-21001}" ROUNDS="${ROUNDS:-1}" XPORT="${XMPPD_C2S_PORT:-25422}"
SERVERS="${SERVERS:-xmppd xmppd-nomam ejabberd prosody}"
export XMPPD_SRC="$ROOT"

anchor() { case "$1" in xmppd-nomam) echo xmppd ;; *) echo "$1" ;; esac; }
port_of() { case "$1" in prosody) echo "$PROSODY_C2S_PORT" ;; ejabberd) echo "$EJABBERD_C2S_PORT" ;; *) echo "$XPORT" ;; esac; }
pid_of() { case "$(anchor "$1")" in prosody) cat "$XB_RUN/prosody/server.pid" ;; ejabberd) cat "$XB_RUN/ejabberd/ejabberd.pid" ;; xmppd) cat "$XB_RUN/xmppd/server.pid" ;; esac; }
template() { case "$1" in xmppd-nomam) echo xmppd-nomam.xml.in ;; *) echo xmppd.xml.in ;; esac; }

# run SERVER SCENARIO [ENV...]: a fresh start of the server, one harness run, a stop.
run() {
  local srv="$1" sc="$2" a
  shift 2
  a="$(anchor "$srv")"
  "$PERF/anchors/$a/stop.sh" >/dev/null 2>&1 || true
  if [ "$a" = xmppd ] && [ -d "$XB_RUN/xmppd/data.snapshot" ]; then
    rm -rf "$XB_RUN/xmppd/data" && cp -a "$XB_RUN/xmppd/data.snapshot" "$XB_RUN/xmppd/data"
  fi
  env XMPPD_TEMPLATE="$(template "$srv")" "$@" "$PERF/anchors/$a/start.sh" >/dev/null
  xb_wait_port "$(port_of "$srv")" 60
  sleep 3 # let the server settle after start (its RSS baseline is sampled next)
  env TAG="${TAG:-}" "$@" "$PERF/bench.sh" "$srv" 127.0.0.1 "$(port_of "$srv")" "$XB_DOMAIN" "$(pid_of "$srv")" "$sc" "$K" ||
    xb_log "bench failed: $srv $sc"
  "$PERF/anchors/$a/stop.sh" >/dev/null 2>&1 || true
}

rounds() { # scenario-function: each load level runs on every server in turn
  local i srv
  for ((i = 0; i < ROUNDS; i++)); do for srv in $SERVERS; do "$1" "$srv"; done; done
}
chat() { # server interval count: a per-user period of 1 s, 0.5 s, 0.25 s is 5k, 10k, 20k msgs/s offered
  run "$1" chat DRIVER=xmppload MSG_INTERVAL="$2" MSG_COUNT="$3" TAG="${TAG:-}$(awk "BEGIN{print $K/$2/1000}")k"
}
roster() { run "$1" roster FIRST="$R"; }
idle() {
  run "$1" idle RATE=1000 HOLD=30
  run "$1" idle-tls RATE=1000 HOLD=30
}

case "${1:-}" in
  setup) "$PERF/side_by_side.sh" setup
    rm -rf "$XB_RUN/xmppd/data.snapshot" && cp -a "$XB_RUN/xmppd/data" "$XB_RUN/xmppd/data.snapshot" ;;
  chat | roster | idle) "$PERF/anchors/xmppd/stop.sh" >/dev/null 2>&1 || true
    (cd "$ROOT" && go build -o "$XB_RUN/xmppd/xmppd" ./cmd/xmppd)
    if [ "$1" = chat ]; then
      # LEVELS: interval:count pairs (20 s of sending each); every server in turn per level.
      for lv in ${LEVELS:-1:20 0.5:40 0.25:80}; do
        for ((i = 0; i < ROUNDS; i++)); do for srv in $SERVERS; do chat "$srv" "${lv%%:*}" "${lv##*:}"; done; done
      done
    else
      rounds "$1"
    fi ;;
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
