#!/usr/bin/env bash
# `make lint`: ruff, hadolint on the Dockerfile, and the Kubernetes manifests: the kustomize copies
# in sync with their sources, every tree rendered by `kubectl kustomize`, every object validated
# with kubernetes-validate --strict for every Kubernetes minor the README supports (1.31 up to the
# newest the validator knows; tests/k8s/manifests.py K8S_FLOOR), checkov on the rendered
# manifests and the Dockerfile (skips are inline, each with its reason).
#   scripts/lint.sh [--no-checkov]   VENV=.venv by default (checkov runs from .venv-checkov);
#                                    RUFF_PATHS="src tests scripts/sync_k8s.py" by default
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
venv=${VENV:-$here/.venv}
checkov=1
for a in "$@"; do case $a in --no-checkov) checkov=0;; *) echo "lint.sh: unknown option $a" >&2; exit 2;; esac; done
trees=(k8s k8s/overlays/dev k8s/overlays/prod k8s/overlays/multi-project)
floor=31  # = K8S_FLOOR in tests/k8s/manifests.py and the README's "Kubernetes 1.31 or newer"
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

# shellcheck disable=SC2086
echo "== ruff"; "$venv/bin/ruff" check ${RUFF_PATHS:-src tests scripts/sync_k8s.py}
echo "== hadolint"; "$venv/bin/hadolint" image/Dockerfile
echo "== kustomize copies"; "$venv/bin/python" scripts/sync_k8s.py --check
newest=$("$venv/bin/python" -c 'from kubernetes_validate import utils; print(utils.latest_version().split(".")[1])')
echo "== kubectl kustomize + kubernetes-validate --strict, Kubernetes 1.$floor to 1.$newest"
for t in "${trees[@]}"; do
  f="$out/$(echo "$t" | tr / -).yaml"
  KUBECONFIG=/dev/null kubectl kustomize "$t" > "$f"  # offline: no cluster is asked for its version
  # CRDs (PrometheusRule, ServiceMonitor) have no schema in the tool: it warns and goes on;
  # tests/k8s checks them with promtool and by shape instead
  for minor in $(seq "$floor" "$newest"); do
    "$venv/bin/kubernetes-validate" --strict --quiet --kubernetes-version "1.$minor.0" "$f"
  done
  echo "$t: $(grep -c '^kind:' "$f") objects, $(grep -c '^apiVersion: monitoring.coreos.com/' "$f" || true) of them CRDs"
done
if [ $checkov = 1 ]; then
  echo "== checkov"
  ck=$(scripts/checkov-venv.sh)
  "$ck" --quiet --compact --skip-download --framework kubernetes -d "$out"
  "$ck" --quiet --compact --skip-download --framework dockerfile -f image/Dockerfile
fi
echo "lint: all clean"
