#!/usr/bin/env bash
# The Debian tools the tests use: Prometheus' promtool and server, Alertmanager, docker-compose
# (only to parse docker-compose.yml; no engine needed), and chromium for the dashboard's browser
# tests (Playwright drives it; its own browser download cannot work here). Installed when missing (CI runs as
# root); without them the run stops here, never skipping the tests that need them.
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "make test needs the Debian packages: ${need[*]}; install them (sudo apt-get install -y ${need[*]})" >&2
  exit 1
fi
echo "installing ${need[*]} (Debian packages)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
