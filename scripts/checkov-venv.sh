#!/usr/bin/env bash
# Creates (or refreshes) the checkov venv from requirements/checkov.txt and prints its checkov path.
# checkov's dependency tree conflicts with the project's, so it lives in its own venv.
#   scripts/checkov-venv.sh [VENV]      (default: .venv-checkov at the repo root)
# Idempotent: a stamp holds the hash of requirements/checkov.txt; nothing happens when it matches.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$here/.venv-checkov}
reqs="$here/requirements/checkov.txt"
python=${PYTHON:-python3}
want=$(sha256sum "$reqs" | cut -c1-16)
stamp="$venv/.nlu-ci-checkov"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/checkov" --version >/dev/null 2>&1; then
  echo "$venv/bin/checkov"; exit 0
fi
# a half-built venv (an interrupted install) is rebuilt from scratch
[ -f "$stamp" ] || rm -rf "$venv"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip --disable-pip-version-check -q install -r "$reqs" >&2
"$venv/bin/checkov" --version >/dev/null
echo "$want" > "$stamp"
echo "$venv/bin/checkov"
