#!/usr/bin/env bash
# Installs every Debian package that building, running and testing Vigil needs.
# Idempotent: safe to run again; apt-get skips what is already there.
#   deploy/setup.sh          build + run dependencies
#   deploy/setup.sh --test   also the test peers (Prometheus, VictoriaMetrics, Node.js packages)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

build_pkgs=(
  build-essential meson ninja-build pkg-config
  protobuf-c-compiler libprotobuf-c-dev
  libmicrohttpd-dev libgrpc-dev libjansson-dev libleveldb-dev
  libsnappy-dev zlib1g-dev libyaml-dev libpcre2-dev libzstd-dev libcurl4-openssl-dev
  libsnmp-dev
)
test_pkgs=(
  clang clang-tidy libclang-rt-14-dev libfuzzer-14-dev
  libcriterion-dev curl jq valgrind
  prometheus victoria-metrics procps psmisc
  prometheus-node-exporter prometheus-pushgateway
  rsyslog util-linux prometheus-alertmanager nginx
  chromium
  snmpd snmp libjolokia-core-java default-jdk-headless
  openssl python3
)

pkgs=("${build_pkgs[@]}")
# The build vendors the web console's chart library (uPlot) from npm, so npm is a build
# dependency. The machine image may already carry Node.js with its own npm; Debian's
# nodejs and npm packages conflict with that, so they are only installed where node is
# missing.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs npm)
if [ "${1:-}" = "--test" ]; then
  pkgs+=("${test_pkgs[@]}")
fi

$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${pkgs[@]}"

# The console's npm packages (web/package-lock.json), embedded into the binary at build
# time by web/meson.build; nothing is fetched when the server runs.
here=$(cd "$(dirname "$0")/.." && pwd)
(cd "$here/web" && npm ci --no-audit --no-fund --loglevel=error)

# Debian's prometheus and victoria-metrics packages start system services on install;
# tests start their own instances on loopback ports, so the packaged ones are stopped.
if [ "${1:-}" = "--test" ]; then
  for svc in prometheus prometheus-node-exporter prometheus-pushgateway prometheus-alertmanager \
             victoria-metrics nginx snmpd; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
      $SUDO systemctl stop "$svc" || true
    fi
  done
  if [ -f "$here/tests/integration/package.json" ]; then
    (cd "$here/tests/integration" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
