#!/usr/bin/env bash
# System packages the test suite runs for real: Prometheus (with promtool), the Pushgateway, chromium
# (the review page is rendered by headless chromium, driven by playwright; no browser download), and the
# image toolchain of `make image-test` (mmdebstrap makes the local Debian base, podman imports it,
# buildah builds and runs the image). Idempotent; does nothing when they are present. Needs root (CI
# runs as root) — otherwise prints what to install.
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-pushgateway >/dev/null 2>&1 || need+=(prometheus-pushgateway)
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
# PostgreSQL 15: the tracker-store tests start a real server (initdb/pg_ctl in a temp folder, as nobody)
{ command -v initdb >/dev/null 2>&1 || [ -x /usr/lib/postgresql/15/bin/initdb ]; } || need+=(postgresql)
command -v git >/dev/null 2>&1 || need+=(git)
# wrk: the HTTP load generator of `make bench-serve` (bench/serve_speed.py)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-system.sh: please install: ${need[*]} (Debian packages); tests that need them will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# another apt run (a parallel CI job) holds the lock: wait for it instead of failing
apt_opts=(-o DPkg::Lock::Timeout=600)
apt-get "${apt_opts[@]}" update -qq
# shellcheck disable=SC2046
apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
# the packages start system services where an init system runs; the tests start their own instances
for svc in prometheus prometheus-pushgateway postgresql; do service "$svc" stop >/dev/null 2>&1 || true; done
echo "installed: $(printf '%s ' "${need[@]}" | tr ' ' '\n' | sort -u | tr '\n' ' ')"
