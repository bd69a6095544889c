#!/usr/bin/env bash
# The whole suite: lint and types, then unit and integration tests against a real broker started here.
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory lint
scripts/tools.sh
promtool check rules deploy/prometheus/rules.yml
(cd deploy/prometheus && promtool test rules rules.test.yml)
exec scripts/with-broker.sh .venv/bin/python -m pytest -p no:cacheprovider -ra --durations=25 "$@"
