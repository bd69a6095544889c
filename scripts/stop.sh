#!/usr/bin/env bash
# `make stop`: stop what `make run` started.
set -uo pipefail
cd "$(dirname "$0")/.."
VAR=${DW_DATA_DIR:-var}
for p in simulate worker; do
  if [ -f "$VAR/$p.pid" ]; then
    kill "$(cat "$VAR/$p.pid")" 2>/dev/null && echo "stopped $p"
    rm -f "$VAR/$p.pid"
  fi
done
.venv/bin/disposal-watch kafka stop --dir "$VAR/kafka" 2>&1 || true
