#!/usr/bin/env bash
# Installs nlu-ci into a virtual environment. Used by `make install` and by image/Dockerfile, so CI
# exercises the image's install recipe. Idempotent: re-running only installs what changed.
#   scripts/install.sh VENV [--dev] [--editable] [--deps-only]
# --deps-only: the pinned dependencies and rasa_nlu, not nlu-ci itself (the image's cached first layer,
# so a source change rebuilds only the last step).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:?usage: install.sh VENV [--dev] [--editable] [--deps-only]}; shift
dev=0; editable=0; deps_only=0
for a in "$@"; do case $a in --dev) dev=1;; --editable) editable=1;; --deps-only) deps_only=1;; *) echo "install.sh: unknown option $a" >&2; exit 2;; esac; done
python=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
stamp="$venv/.nlu-ci-install"
want=$(cat "$here/requirements/runtime.txt" "$here/requirements/constraints.txt" "$here/pyproject.toml" \
        $( [ $dev = 1 ] && echo "$here/requirements/dev.txt") | sha256sum | cut -c1-16)-$dev-$editable$( [ $deps_only = 1 ] && echo -deps || true)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c 'import nlu_ci, rasa_nlu' 2>/dev/null; then
  exit 0
fi
reqs=(-r "$here/requirements/runtime.txt")
[ $dev = 1 ] && reqs+=(-r "$here/requirements/dev.txt")
"${pip[@]}" install -c "$here/requirements/constraints.txt" "${reqs[@]}"
# rasa_nlu's declared pins (scikit-learn~=0.20, gevent, matplotlib 2) do not build on 3.11:
# install it alone, its real needs come from runtime.txt; nlu_ci.engine.compat mends the rest.
"${pip[@]}" install --no-deps rasa_nlu==0.15.1
if [ $deps_only = 1 ]; then
  echo "$want" > "$stamp"; echo "nlu-ci dependencies installed in $venv"; exit 0
fi
if [ $editable = 1 ]; then
  "${pip[@]}" install --no-deps --no-build-isolation -e "$here" 2>/dev/null || "${pip[@]}" install --no-deps -e "$here"
else
  "${pip[@]}" install --no-deps "$here"
fi
"$venv/bin/python" -c 'import nlu_ci.engine, rasa_nlu.model' 
echo "$want" > "$stamp"
echo "nlu-ci installed in $venv"
