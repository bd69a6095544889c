#!/usr/bin/env bash
# Run a command against a fresh local Kafka broker on a free port; stop the broker afterwards.
# The broker's address is in DW_KAFKA for the command.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
DIR=$(mktemp -d "${TMPDIR:-/tmp}/dw-kafka.XXXXXX")
PORT=$($BIN/python -c 'from streams.kafka_local import free_port; print(free_port())')
cleanup() { $BIN/disposal-watch kafka stop --dir "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
export DW_KAFKA
DW_KAFKA=$($BIN/disposal-watch kafka start --dir "$DIR" --port "$PORT")
echo "broker up at $DW_KAFKA (state in $DIR)" >&2
"$@"
