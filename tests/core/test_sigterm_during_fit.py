"""SIGTERM while a real fit runs in C: the job ends within seconds, recorded as ``failed`` (Kubernetes waits
``terminationGracePeriodSeconds``, 60 in k8s/base, then sends SIGKILL: no record, no push, the Lease held).

Before training moved into a child process (``nlu_ci.engine.child``) Python ran the handler only when the
C fit returned; on HWU64's 9,960 examples a single liblinear/crfsuite call takes several seconds (minutes at
100k: ``make bench`` measures that size), so the bound below failed."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from nlu_ci.registry.store import ModelStore
from support import procs
from support.data import ROOT, cli_env

HWU64 = ROOT.parent / "shared" / "datasets" / "hwu64"
BOUND_S = 5.0  # issue 23: "the job exits (outcome failed, metrics pushed) within 5 s"


def test_sigterm_during_a_real_fit_ends_the_job_within_seconds(tmp_path):
    assert (HWU64 / "train.json").is_file(), f"{HWU64}: the shared HWU64 data set is part of the test layout"
    models = tmp_path / "models"
    env = cli_env(models, NLU_CI_DATA=str(HWU64 / "train.json"), NLU_CI_TEST_DATA=str(HWU64 / "test.json"),
                  NLU_CI_OUTPUT="json", NLU_CI_MAX_REPAIR_SHARE="0.2")
    proc = subprocess.Popen([sys.executable, "-m", "nlu_ci.cli", "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "stage train: started" in line:
            break
    assert proc.poll() is None, "".join(seen)
    # the fit itself: the training child is seen at once; its featurization takes ~0.7 s of its ~3 s here,
    # then the CRF's and the SVM's fits run in C
    procs.training_children(proc)
    time.sleep(1.2)
    fitting = procs.children(proc.pid)
    assert fitting, "training is not running in a child process"
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    took = time.monotonic() - sent
    assert took < BOUND_S, f"exit {took:.1f} s after SIGTERM (bound {BOUND_S} s)"
    report = json.loads(out)
    assert (proc.returncode, report["outcome"]) == (1, "failed"), err[-2000:]
    assert "SIGTERM" in report["error"]
    store = ModelStore(models)
    assert store.active_name() is None and list((store.dir / ".incoming").iterdir()) == []
    assert json.loads((store.dir / "history.jsonl").read_text().splitlines()[-1])["outcome"] == "failed"
    metrics = (store.dir / "metrics.prom").read_text()
    assert 'nlu_ci_last_run_outcome{outcome="failed"' in metrics or 'outcome="failed"' in metrics, metrics[:2000]
    # the training child did not outlive the job
    for pid in fitting:
        assert not _alive(pid), f"training process {pid} outlived the job"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
