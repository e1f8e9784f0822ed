"""examples/ci run as written: their shell lines are extracted from the YAML and executed with bash in a prepared
checkout (a real git origin with a base branch and a pull-request branch), `nlu-ci` on a PATH that has no aws and
no curl, against a real `nlu-ci serve-models` serving the active model on loopback.

What the CI system itself does (actions/checkout, GitLab's clone) is done here with git: a shallow clone of the
pull-request branch. Everything after that is the YAML's own text. A branch relabelling half of one intent (and
loosening its own policy.yml) exits 3 and names the relabelled examples; a clean data-growth branch exits 0.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from serving_helpers import free_port, start

from support.data import ROOT, cli_env, load_sample, run_cli

EXAMPLES = ROOT / "examples" / "ci"
CONFIG = """language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: SklearnIntentClassifier
"""
# the base branch's gate: non-inferiority (a data-growth branch may tie), per-intent guard on
BASE_POLICY = "min_intent_f1: 0.5\nnon_inferiority_margin: 0.02\nper_intent_max_drop: 0.15\nmin_support: 5\n"
# what a pull request would like to be judged by: anything passes
LOOSE_POLICY = "min_intent_f1: 0.0\nmin_improvement: off\nsignificance: off\nper_intent_max_drop: off\n" \
               "entity_f1: {min: off, max_drop: off}\n"
TOOLS = ("bash", "sh", "git", "rm", "mkdir", "cat", "env", "dirname", "basename", "sed", "uname", "tr")
RELABEL_FROM, RELABEL_TO = "order_pizza", "book_table"
HELD_BACK = 40  # examples the base lacks and the growth branch adds


def git(cwd: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com", GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True,
                          timeout=60).stdout


def nlu_json(examples: list[dict]) -> str:
    return json.dumps({"rasa_nlu_data": {"common_examples": examples}}, indent=1)


class Notes(BaseHTTPRequestHandler):
    """GitLab's notes API, as much as the GitLab job calls: records each POST."""

    received: list[tuple[str, dict, dict]] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Notes.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(201)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("ci")
    examples = load_sample()["rasa_nlu_data"]["common_examples"]
    base_examples = examples[:-HELD_BACK]
    # the origin: main (base) and two pull-request branches
    work = root / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "data").mkdir()
    (work / "data" / "nlu.json").write_text(nlu_json(base_examples))
    (work / "nlu_config.yml").write_text(CONFIG)
    (work / "policy.yml").write_text(BASE_POLICY)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "base")
    git(work, "checkout", "-q", "-b", "noisy")
    pizza = [i for i, e in enumerate(base_examples) if e["intent"] == RELABEL_FROM]
    relabelled = pizza[::2]  # half of one intent
    noisy = [dict(e, intent=RELABEL_TO) if i in relabelled else e for i, e in enumerate(base_examples)]
    (work / "data" / "nlu.json").write_text(nlu_json(noisy))
    (work / "policy.yml").write_text(LOOSE_POLICY)  # the branch loosens its own gate: must not matter
    git(work, "commit", "-q", "-am", "relabel half of order_pizza")
    git(work, "checkout", "-q", "main")
    git(work, "checkout", "-q", "-b", "growth")
    (work / "data" / "nlu.json").write_text(nlu_json(examples))
    git(work, "commit", "-q", "-am", "more examples")
    origin = root / "origin.git"
    git(root, "clone", "-q", "--bare", str(work), str(origin))
    # the nightly job trained and promoted the base; serve-models serves it on loopback
    models = root / "models"
    env = cli_env(models)
    git(work, "checkout", "-q", "main")
    r = run_cli(["run", "--data", str(work / "data" / "nlu.json"), "--config", str(work / "nlu_config.yml"),
                 "--policy", str(work / "policy.yml")], env, timeout=600)
    assert r.code == 0, r.output[-2000:]
    active = (models / "default" / "ACTIVE").read_text().strip()
    port = free_port()
    server = start(["serve-models", "--host", "127.0.0.1", "--port", str(port), "--zip-cache", str(root / "zips")],
                   env, root / "serve-models.log", f"http://127.0.0.1:{port}", "/health")
    # PATH: nlu-ci, python3 and a few coreutils, nothing else (no aws, no curl)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "nlu-ci").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m nlu_ci.cli "$@"\n')
    (bin_dir / "nlu-ci").chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    notes = ThreadingHTTPServer(("127.0.0.1", 0), Notes)
    threading.Thread(target=notes.serve_forever, daemon=True).start()
    texts = {base_examples[i]["text"] for i in relabelled}
    try:
        yield {"root": root, "origin": origin, "server": server, "bin": bin_dir, "active": active,
               "relabelled": texts, "notes": f"http://127.0.0.1:{notes.server_address[1]}"}
    finally:
        notes.shutdown()
        notes.server_close()
        server.stop()


def checkout(world, branch: str, name: str) -> Path:
    """What actions/checkout and GitLab's runner do: a shallow clone of the pull-request branch."""
    ws = world["root"] / name
    if ws.exists():
        shutil.rmtree(ws)
    git(world["root"], "clone", "-q", "--depth", "1", "--branch", branch, f"file://{world['origin']}", str(ws))
    return ws


def base_env(world, ws: Path) -> dict[str, str]:
    src = str(Path(__import__("nlu_ci").__file__).parents[1])
    # NLU_CI_POLICY names the branch's own policy.yml (a CI variable, or the image's default): with a base it
    # must not be what judges
    return {"PATH": str(world["bin"]), "HOME": str(ws.parent / f"{ws.name}-home"), "PYTHONPATH": src,
            "GIT_CONFIG_NOSYSTEM": "1", "LANG": "C.UTF-8", "NLU_CI_POLICY": "policy.yml"}


def github_steps(active_url: str) -> tuple[dict, list[str]]:
    job = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())["jobs"]["check"]
    values = {"vars.NLU_CI_ACTIVE_MODEL_URL": active_url, "github.base_ref": "main"}

    def expand(text: str) -> str:
        out = re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", lambda m: values[m.group(1)], str(text))
        assert "${{" not in out, out
        return out

    env = {k: expand(v) for k, v in job["env"].items()}
    runs = [expand(s["run"]) for s in job["steps"] if "run" in s]
    assert all("uses" not in s for s in job["steps"] if "run" in s)
    return env, runs


def run_github(world, branch: str) -> tuple[subprocess.CompletedProcess, Path]:
    ws = checkout(world, branch, f"gh-{branch}")
    env, runs = github_steps(world["server"].url)
    (ws.parent / f"{ws.name}-home").mkdir(exist_ok=True)
    runner_temp = ws.parent / f"{ws.name}-runner-temp"
    runner_temp.mkdir(exist_ok=True)
    env.update(base_env(world, ws), RUNNER_TEMP=str(runner_temp), GITHUB_WORKSPACE=str(ws),
               GITHUB_STEP_SUMMARY=str(runner_temp / "step_summary.md"))
    proc = None
    for script in runs:  # GitHub's bash: bash --noprofile --norc -eo pipefail {0}
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=ws, env=env,
                              capture_output=True, text=True, timeout=600)
        if proc.returncode:
            break
    return proc, ws


def run_gitlab(world, branch: str) -> tuple[subprocess.CompletedProcess, Path]:
    ws = checkout(world, branch, f"gl-{branch}")
    job = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())["nlu-ci-check"]
    (ws.parent / f"{ws.name}-home").mkdir(exist_ok=True)
    tmp = ws.parent / f"{ws.name}-tmp"
    tmp.mkdir(exist_ok=True)
    env = {k: str(v) for k, v in job["variables"].items()}
    env.update(base_env(world, ws), TMPDIR=str(tmp), NLU_CI_ACTIVE_MODEL_URL=world["server"].url,
               CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main", NLU_CI_NOTE_TOKEN="glpat-secret-note-token",
               CI_API_V4_URL=world["notes"] + "/api/v4", CI_PROJECT_ID="7", CI_MERGE_REQUEST_IID="42")
    # GitLab runs before_script and script in one shell, stopping at the first failing line
    script = "\n".join(["set -eo pipefail", *job["before_script"], *job["script"]])
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-c", script], cwd=ws, env=env, capture_output=True,
                          text=True, timeout=600)
    return proc, ws


def check_report(ws: Path) -> dict:
    reports = sorted((ws / "nlu-ci-store" / "default" / "reports").glob("*.json"))
    assert len(reports) == 1, reports
    return json.loads(reports[0].read_text())


def escaped(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>&~])", r"\\\1", text)


@pytest.mark.parametrize("runner", [run_github, run_gitlab], ids=["github", "gitlab"])
def test_a_branch_relabelling_half_an_intent_fails_and_names_the_relabelled_examples(world, runner):
    Notes.received.clear()
    proc, ws = runner(world, "noisy")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out[-3000:]
    assert "aws" not in out and "curl" not in out and "command not found" not in out
    summary = (ws / "nlu-ci-summary.md").read_text()
    assert summary.startswith("## ❌ nlu-ci check [default]: the gate fails")
    report = check_report(ws)
    judged = report["check"]["judged_by"]
    assert judged["active_model"] == world["active"] and report["active"]["model"] == world["active"]
    assert judged["policy"].endswith("nlu-ci-base/policy.yml")  # the base's policy, not the branch's loose one
    assert report["decision"]["promote"] is False
    diff = report["data_diff"]
    assert diff["relabelled"] == len(world["relabelled"]) and diff["added"] == 0 and diff["removed"] == 0
    assert {r["text"] for r in diff["relabelled_examples"]} == world["relabelled"]
    assert all(r["old_intent"] == RELABEL_FROM and r["new_intent"] == RELABEL_TO and r["relabelled"]
               for r in diff["relabelled_examples"])
    assert f"**{len(world['relabelled'])} relabelled**" in summary
    for text in world["relabelled"]:
        assert f"| {escaped(text)} | order\\_pizza | book\\_table |" in summary
    # the base's held-out set: the same examples the nightly job held out of the base data
    assert report["data"]["base"]["test_examples"] == report["data"]["test_examples"]
    if runner is run_gitlab:  # the merge-request note: the summary, posted without curl
        assert len(Notes.received) == 1
        path, headers, body = Notes.received[0]
        assert path == "/api/v4/projects/7/merge_requests/42/notes"
        assert headers["private-token"] == "glpat-secret-note-token" and body["body"] == summary


@pytest.mark.parametrize("runner", [run_github, run_gitlab], ids=["github", "gitlab"])
def test_a_clean_data_growth_branch_passes(world, runner):
    proc, ws = runner(world, "growth")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    report = check_report(ws)
    assert report["decision"]["promote"] is True
    assert report["data_diff"]["relabelled"] == 0 and report["data_diff"]["added"] == HELD_BACK
    new = report["new_examples"]
    assert 0 < new["examples"] < HELD_BACK  # the new ones the hash holds out: scored apart, not in the gate
    assert report["data"]["test_examples"] == report["data"]["base"]["test_examples"]
    summary = (ws / "nlu-ci-summary.md").read_text()
    assert summary.startswith("## ✅ nlu-ci check [default]: the gate passes")
    assert "**0 relabelled**" in summary and "new held-out examples, scored apart" in summary
