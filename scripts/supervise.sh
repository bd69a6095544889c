#!/usr/bin/env bash
# Run a command and restart it when it exits 70 (a bug while processing a record: nothing was
# committed past it, so it is redelivered) or 75 (it stalled: DW_STALL_EXIT_S); never on 74 (its disk
# is full or read-only: a restart cannot help until someone frees space). Any other exit
# ends the loop with that code; TERM or INT is passed on to the command and ends the loop.
# Usage: scripts/supervise.sh CMD [ARG...]
child=0
stopping=0
trap 'stopping=1; [ "$child" -ne 0 ] && kill -TERM "$child" 2>/dev/null' TERM INT
while :; do
  "$@" &
  child=$!
  wait "$child"
  rc=$?
  if [ "$stopping" -eq 1 ]; then
    wait "$child" 2>/dev/null
    exit 0
  fi
  case $rc in
    70 | 75) echo "supervise: $1 exited with $rc; restarting in 1 s" >&2; sleep 1 ;;
    74) echo "supervise: $1 exited with 74: its disk is full or read-only (see its log); not restarting" >&2; exit 74 ;;
    *) exit "$rc" ;;
  esac
done
