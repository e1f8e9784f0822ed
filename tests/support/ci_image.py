"""examples/ci/github-actions.yml's ``check`` job run in the image it names, the way GitHub's runner runs a container
job (docs.github.com/en/actions/writing-workflows/choosing-where-your-workflow-runs/running-jobs-in-a-container):
the image (here the one tests/support/image.py built, for ``ghcr.io/your-org/nlu-ci``), ``container.options``
(``--user UID``), the checked-out workspace mounted at ``/__w/<repo>/<repo>`` as the working directory, ``HOME``
``/github/home``, ``RUNNER_TEMP`` ``/__w/_temp``, ``GITHUB_STEP_SUMMARY`` a file there, the job's ``env`` with its
``${{ }}`` expressions filled in, and each ``run:`` step with ``bash --noprofile --norc -eo pipefail``; the first
failing step ends the job. ``uses:`` steps (checkout, comment, upload) are the runner's, done by the test.

Run with ``buildah run --isolation chroot --network host`` (the harness's way, tests/support/kubelet.py)."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from .image import ROOT

WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"
WORKSPACE, HOME, TEMP = "/__w/assistant/assistant", "/github/home", "/__w/_temp"


@dataclass
class StepResult:
    returncode: int
    stdout: str
    stderr: str


def github_job(values: dict[str, str]) -> tuple[dict, dict[str, str], list[str]]:
    """(container, env, run scripts) of the ``check`` job, ``${{ name }}`` replaced from ``values``."""
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["check"]

    def fill(text) -> str:
        out = re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", lambda m: values[m.group(1)], str(text))
        assert "${{" not in out, out
        return out

    return job["container"], {k: fill(v) for k, v in job["env"].items()}, \
        [fill(s["run"]) for s in job["steps"] if "run" in s]


def run_check_job(buildah: str, image: str, ws: Path, values: dict[str, str],
                  env_edits: dict[str, str] | None = None, timeout: float = 900) -> StepResult:
    """Run the job's ``run:`` steps in ``image`` on the checked-out ``ws``; ``env_edits``: a team's own values
    for the job's ``env`` keys (as it would edit them in its copy of the workflow)."""
    container, env, scripts = github_job(values)
    unknown = set(env_edits or {}) - set(env)
    assert not unknown, f"not keys of the workflow's env: {unknown}"
    env.update(env_edits or {})
    options = shlex.split(container.get("options", ""))
    user = options[options.index("--user") + 1] if "--user" in options else "0"
    uid = int(user.split(":")[0])
    home, temp = ws.parent / f"{ws.name}-home", ws.parent / f"{ws.name}-temp"
    for path in (home, temp):
        path.mkdir(exist_ok=True)
    for path in (ws, home, temp, *ws.rglob("*")):
        if not path.is_symlink():
            os.chown(path, uid, uid)  # the runner's uid owns what it checked out
    env.update(HOME=HOME, RUNNER_TEMP=TEMP, GITHUB_WORKSPACE=WORKSPACE, GITHUB_STEP_SUMMARY=f"{TEMP}/step_summary.md",
               CI="true", GITHUB_ACTIONS="true")
    ctr = subprocess.run([buildah, "from", "--quiet", image], capture_output=True, text=True, timeout=300,
                         check=True).stdout.strip()
    try:
        result = StepResult(0, "", "")
        for script in scripts:
            cmd = [buildah, "run", "--isolation", "chroot", "--network", "host", "--user", f"{uid}:{uid}",
                   "--workingdir", WORKSPACE, "-v", f"{ws}:{WORKSPACE}", "-v", f"{home}:{HOME}", "-v", f"{temp}:{TEMP}"]
            for k, v in env.items():
                cmd += ["--env", f"{k}={v}"]
            proc = subprocess.run([*cmd, ctr, "--", "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                                  capture_output=True, text=True, timeout=timeout)
            result = StepResult(proc.returncode, result.stdout + proc.stdout, result.stderr + proc.stderr)
            if proc.returncode:
                break
        return result
    finally:
        subprocess.run([buildah, "rm", ctr], capture_output=True, timeout=120)
