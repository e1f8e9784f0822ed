#!/usr/bin/env bash
# System packages the test suite runs for real: Prometheus (with promtool), the Pushgateway and chromium
# (the review page is rendered by headless chromium, driven by playwright; no browser download).
# Idempotent; does nothing when they are present. Needs root (CI runs as root) — otherwise prints what to install.
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-pushgateway >/dev/null 2>&1 || need+=(prometheus-pushgateway)
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-system.sh: please install: ${need[*]} (Debian packages); tests that need them will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
# the packages start system services where an init system runs; the tests start their own instances
for svc in prometheus prometheus-pushgateway; do service "$svc" stop >/dev/null 2>&1 || true; done
echo "installed: $(printf '%s ' "${need[@]}" | tr ' ' '\n' | sort -u | tr '\n' ' ')"
