#!/usr/bin/env bash
# BenchmarkChatMemory, each row in its own process (RSS is not given back between runs), at two
# session counts moving the same 40,000 messages, archive on and off, alternated ROUNDS times.
#   bench/chatmem.sh            (ROUNDS=1; COUNTS="500 2000")
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-1}" COUNTS="${COUNTS:-500 2000}"
go test -c -o /tmp/server.chatmem.test ./server/
for ((r = 0; r < ROUNDS; r++)); do
  for k in $COUNTS; do for mam in true false; do
    (cd server && /tmp/server.chatmem.test -test.run XXX -test.bench "ChatMemory/sessions=$k/mam=$mam\$" -test.benchtime 1x) |
      grep Benchmark
  done; done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
