#!/usr/bin/env bash
# The whole suite: unit tests, then integration tests against a real broker started here.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/with-broker.sh .venv/bin/python -m pytest -p no:cacheprovider -ra "$@"
