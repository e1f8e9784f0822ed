"""The container image recipe and the linters: hadolint, checkov, the install script in a fresh venv."""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .manifests import ROOT, TREES, need_kubectl, offline_env

DOCKERFILE = ROOT / "image" / "Dockerfile"
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if path is None:
        pytest.fail(f"{name} is not installed: scripts/install.sh .venv --dev (requirements/dev.txt)")
    return path


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


# ---------------------------------------------------------------------------- Dockerfile

def test_hadolint_passes_and_would_catch_problems(tmp_path):
    hadolint = tool("hadolint")
    proc = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y curl\nCMD nlu-ci run\n")
    proc = subprocess.run([hadolint, str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "DL3007" in proc.stdout  # latest tag flagged


def test_dockerfile_shape():
    steps = instructions(DOCKERFILE.read_text())
    froms = [args for ins, args in steps if ins == "FROM"]
    assert len(froms) >= 2, "multi-stage"
    # the base is a build argument (make image-test swaps in a local Debian) whose default is pinned
    (base_arg,) = [args for ins, args in steps if ins == "ARG" and args.startswith("BASE_IMAGE=")]
    assert re.fullmatch(r"BASE_IMAGE=python:3\.11-slim@sha256:[0-9a-f]{64}", base_arg), base_arg
    assert re.fullmatch(r"\$\{BASE_IMAGE\} AS \w+", froms[0]), froms[0]
    stages = {f.split(" AS ")[1] for f in froms if " AS " in f}
    assert all(f.split(" ")[0] in stages for f in froms[1:]), "later stages build on the pinned base"
    final = steps[max(i for i, (ins, _) in enumerate(steps) if ins == "FROM"):]
    final_ins = dict((ins, args) for ins, args in final)
    user = final_ins["USER"]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), "numeric non-root user and group"
    assert json.loads(final_ins["ENTRYPOINT"]) == ["nlu-ci"] and json.loads(final_ins["CMD"]) == ["run"]
    assert not any(ins == "RUN" and "pip install" in args for ins, args in final), "only the runtime in the final stage"
    assert any(ins == "COPY" and args.startswith("--from=") for ins, args in final)
    build_runs = " ".join(args for ins, args in steps if ins == "RUN")
    assert "scripts/install.sh" in build_runs, "the image installs with the same script as make install"


def test_dockerignore_sends_every_file_the_dockerfile_copies():
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]

    def sent(path: str) -> bool:  # Docker semantics: the last matching pattern wins
        keep = True
        for p in patterns:
            neg = p.startswith("!")
            pat = p.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pat) or path.startswith(pat + "/") or fnmatch.fnmatch(path, pat + "/*"):
                keep = neg
        return keep

    copies = [args for ins, args in instructions(DOCKERFILE.read_text()) if ins == "COPY" and "--from" not in args]
    sources = [s for args in copies for s in args.split()[:-1]]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: missing in the repo"
        assert sent(src.rstrip("/")), f"COPY {src}: excluded by .dockerignore"
    assert not sent(".venv") and not sent(".git") and not sent("var")


@pytest.fixture(scope="module")
def image_like_venv():
    """scripts/install.sh into a fresh venv in a world-readable folder (as the image's /opt/nlu-ci)."""
    top = Path(tempfile.mkdtemp(prefix="nlu-ci-image-", dir="/tmp"))
    top.chmod(0o755)
    venv = top / "opt-nlu-ci"
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "install.sh"), str(venv)], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    yield venv
    shutil.rmtree(top, ignore_errors=True)


@pytest.mark.slow
def test_install_script_builds_a_working_nlu_ci_in_a_fresh_venv(image_like_venv):
    """What the image's build stage runs (scripts/install.sh), in a new venv (~60-100 s)."""
    venv = image_like_venv
    help_ = subprocess.run([str(venv / "bin" / "nlu-ci"), "--help"], capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0 and "run" in help_.stdout, help_.stderr
    run_help = subprocess.run([str(venv / "bin" / "nlu-ci"), "run", "--help"], capture_output=True, text=True,
                              timeout=120)
    assert run_help.returncode == 0 and "NLU_CI_MODELS_DIR" in run_help.stdout
    # the runtime only: no test or lint tools in what the image ships
    assert not (venv / "bin" / "pytest").exists() and not (venv / "bin" / "ruff").exists()
    # a second run is a no-op (stamp), as the Dockerfile layer cache and `make install` rely on
    again = subprocess.run(["bash", str(ROOT / "scripts" / "install.sh"), str(venv)], capture_output=True, text=True,
                           timeout=300, env={**os.environ, "PYTHON": sys.executable})
    assert again.returncode == 0 and "installed" not in again.stdout


@pytest.mark.slow
def test_the_job_runs_as_the_image_user_writing_only_models_and_tmp(image_like_venv):
    """As in the pod: uid/gid 10001, the code and config owned by root (read-only to it), a working
    directory it cannot write, the shipped nlu_config.yml and policy.yml; only the models volume and
    HOME/TMPDIR (the emptyDir) are writable."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv (util-linux) to run as uid 10001")
    top = image_like_venv.parent
    etc = top / "etc-nlu-ci"
    etc.mkdir(exist_ok=True)
    for name in ("nlu_config.yml", "policy.yml"):
        shutil.copy(ROOT / name, etc / name)
    shutil.copy(ROOT / "data" / "sample" / "nlu.json", etc / "nlu.json")
    models, scratch = top / "models", top / "tmp"
    for d in (models, scratch):
        d.mkdir(exist_ok=True)
        os.chown(d, 10001, 10001)
    env = {"PATH": f"{image_like_venv / 'bin'}:/usr/bin:/bin", "HOME": str(scratch), "TMPDIR": str(scratch),
           "PYTHONDONTWRITEBYTECODE": "1", "NLU_CI_MODELS_DIR": str(models),
           "NLU_CI_CONFIG": str(etc / "nlu_config.yml"), "NLU_CI_POLICY": str(etc / "policy.yml"),
           "NLU_CI_KUBERNETES": "auto", "NLU_CI_DATA": str(etc / "nlu.json")}
    cmd = [setpriv, "--reuid=10001", "--regid=10001", "--clear-groups", str(image_like_venv / "bin" / "nlu-ci"),
           "run", "--json"]
    proc = subprocess.run(cmd, env=env, cwd=str(etc), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["outcome"] == "promoted"
    written = [p for p in top.rglob("*") if p.stat().st_uid == 10001 and not p.is_relative_to(models)
               and not p.is_relative_to(scratch) and p not in (models, scratch)]
    assert written == []


# ---------------------------------------------------------------------------- checkov

@pytest.fixture(scope="module")
def checkov() -> str:
    """checkov from its own venv (.venv-checkov; created from requirements/checkov.txt on first use)."""
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "checkov-venv.sh")], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def run_checkov(checkov: str, *args: str) -> list[dict]:
    proc = subprocess.run([checkov, "--skip-download", "-o", "json", *args], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    return report if isinstance(report, list) else [report]


def check_reports(reports: list[dict]) -> tuple[list[tuple], int]:
    """(failed checks as (id, resource), number of skips); every skip must carry a written reason."""
    failed, skipped = [], 0
    for report in reports:
        results = report["results"]
        failed += [(c["check_id"], c["resource"]) for c in results.get("failed_checks", [])]
        assert report["summary"]["parsing_errors"] == 0
        assert report["summary"]["passed"] > 0
        for check in results.get("skipped_checks", []):
            reason = (check.get("check_result") or {}).get("suppress_comment") or ""
            assert len(reason) > 20 and reason != "No comment provided", f"{check['check_id']}: skip without reason"
            skipped += 1
    return failed, skipped


def test_checkov_passes_on_every_rendered_tree(checkov, tmp_path):
    kubectl = need_kubectl()
    for tree in TREES:
        out = tmp_path / (tree.replace("/", "-") + ".yaml")
        out.write_text(subprocess.run([kubectl, "kustomize", str(ROOT / tree)], capture_output=True, text=True,
                                      check=True, env=offline_env()).stdout)
    (tmp_path / "secret.example.yaml").write_text((ROOT / "k8s" / "secret.example.yaml").read_text())
    # negative control in the same run: a privileged pod must be flagged
    (tmp_path / "control.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: control, namespace: x}\n"
        "spec:\n  containers:\n  - name: c\n    image: busybox\n    securityContext: {privileged: true}\n")
    failed, skipped = check_reports(run_checkov(checkov, "--framework", "kubernetes", "-d", str(tmp_path)))
    assert ("CKV_K8S_16", "Pod.x.control") in failed
    assert [f for f in failed if f[1] != "Pod.x.control"] == []
    cronjobs = sum(out.read_text().count("\nkind: CronJob\n") for out in tmp_path.glob("k8s*.yaml"))
    assert cronjobs >= len(TREES) + 1  # multi-project has two
    annotated = sum(out.read_text().count("checkov.io/skip") for out in tmp_path.glob("k8s*.yaml"))
    assert annotated >= 2 * cronjobs  # CKV_K8S_43 and CKV_K8S_38 on each CronJob (+ the serving Deployments' own)
    assert skipped == annotated  # every skip is one the manifests ask for, each with its reason


def test_checkov_passes_on_the_dockerfile(checkov):
    failed, _ = check_reports(run_checkov(checkov, "--framework", "dockerfile", "-f", str(DOCKERFILE)))
    assert failed == []
