#!/usr/bin/env bash
# Make sure the real programs the tests talk to are on this machine:
# redis-server (cache conformance), promtool (exposition checks), chromium (dashboard).
# As root, install what is missing with apt-get; otherwise say how, in one line, and stop.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing: ${need[*]}; install with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
# The prometheus package starts a server on install on some systems; tests need only promtool.
(systemctl stop prometheus prometheus-node-exporter 2>/dev/null || true)
