#!/usr/bin/env bash
# `make run`: a local broker on :9092, the worker on :6066, and a demo replay; left running.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
VAR=${DW_DATA_DIR:-var}
mkdir -p "$VAR"
# the demo keeps three years, so the 2024-25 police.uk samples count rather than being
# dead-lettered as older than the default 400-day horizon
export DW_DATA_DIR=$VAR DW_KAFKA=${DW_KAFKA:-localhost:9092} DW_WEB_PORT=${DW_WEB_PORT:-6066}
export DW_RETENTION_DAYS=${DW_RETENTION_DAYS:-1100}
PORT=${DW_KAFKA##*:}

if ! $BIN/python -c "import sys; from streams.kafka_local import running; from pathlib import Path; sys.exit(running(Path('$VAR/kafka')) is None)"; then
  $BIN/disposal-watch kafka start --dir "$VAR/kafka" --port "$PORT" >/dev/null
fi
echo "kafka:   $DW_KAFKA (state in $VAR/kafka; log $VAR/kafka/server.log)"

if [ -f "$VAR/worker.pid" ] && kill -0 "$(cat "$VAR/worker.pid")" 2>/dev/null; then
  echo "worker:  already running (pid $(cat "$VAR/worker.pid"))"
else
  # restarted when it exits 70 (a bug on a record) or 75 (stalled); see scripts/supervise.sh
  nohup scripts/supervise.sh $BIN/disposal-watch worker >"$VAR/worker.log" 2>&1 &
  echo $! >"$VAR/worker.pid"
  for _ in $(seq 1 60); do
    curl -fs "http://127.0.0.1:$DW_WEB_PORT/healthz" >/dev/null 2>&1 && break
    sleep 1
  done
  echo "worker:  pid $(cat "$VAR/worker.pid"), log $VAR/worker.log"
fi

# Demo replay: police.uk samples when shared/ is beside the checkout, and a paced synthetic
# national feed (200 events/s) so counts keep rising on /metrics.
SAMPLES=../shared/data/policeuk/city-of-london-2024-2025
if [ -d "$SAMPLES" ]; then
  $BIN/disposal-watch ingest policeuk "$SAMPLES"/*.csv >"$VAR/ingest.log" 2>&1 || true
  echo "replayed police.uk samples from $SAMPLES ($(tail -n1 "$VAR/ingest.log"))"
fi
# the demo's story first (README, "What the demo shows"), then a steady national feed; a second
# `make run` leaves a feed that still runs alone (and its pid file with it, for `make stop`)
if [ -f "$VAR/simulate.pid" ] && kill -0 "$(cat "$VAR/simulate.pid")" 2>/dev/null; then
  echo "feed:    already running (pid $(cat "$VAR/simulate.pid"))"
else
  $BIN/disposal-watch simulate --story >"$VAR/story.log" 2>&1 && echo "sent the demo's story ($(tail -n1 "$VAR/story.log"))"
  nohup $BIN/disposal-watch simulate --events 200000 --seed 7 --rate 200 >"$VAR/simulate.log" 2>&1 &
  echo $! >"$VAR/simulate.pid"
fi

cat <<MSG

disposal-watch is running:
  dashboard http://127.0.0.1:$DW_WEB_PORT/             (alerts live, funnel plots, force pages)
  metrics  http://127.0.0.1:$DW_WEB_PORT/metrics     (disposal_events_total rising)
  health   http://127.0.0.1:$DW_WEB_PORT/healthz
  counts   http://127.0.0.1:$DW_WEB_PORT/api/counts?group_by=force,disposal&window=28d
           $BIN/disposal-watch counts --group-by category,disposal
  alerts   http://127.0.0.1:$DW_WEB_PORT/api/alerts   (live: /api/alerts/stream)
           $BIN/disposal-watch alerts
stop everything with: make stop
MSG
