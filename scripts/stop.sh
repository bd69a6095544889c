#!/usr/bin/env bash
# `make stop`: stop what `make run` started: the feed, then the worker (waiting for it to finish
# its last checkpoint and leave the group), then Kafka.
set -uo pipefail
cd "$(dirname "$0")/.."
VAR=${DW_DATA_DIR:-var}
for p in simulate worker; do
  if [ -f "$VAR/$p.pid" ]; then
    pid=$(cat "$VAR/$p.pid")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "$p (pid $pid) did not stop in 30 s; killing it"
        kill -9 "$pid" 2>/dev/null
      fi
      echo "stopped $p"
    fi
    rm -f "$VAR/$p.pid"
  fi
done
.venv/bin/disposal-watch kafka stop --dir "$VAR/kafka" 2>&1 || true
