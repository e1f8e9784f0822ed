"""Shared machinery of the reliability suite: real ``nlu-ci run`` subprocesses against a store, the checks
every case makes (exit code, outcome, one-line error, active model intact and loadable, history/report,
metrics pushed, no secret anywhere) and the store invariants.

The servers are the shared ones of ``tests/support`` (the Rasa Platform stand-in with fault injection,
Debian's prometheus-pushgateway, the Slack stand-in).
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.data import (
    FAST_CONFIG,
    ROOT,
    SAMPLE,
    cli_env,
    held_out,
    load_sample,
    shuffled_train_labels,
    write_data,
)
from support.http import hanging_port, refusing_port
from support.platform_fake import FakePlatform
from support.servers import MISSING, PUSHGATEWAY_BIN, Pushgateway
from support.slack_fake import SlackReceiver
from support.store_checks import check_store_invariants

__all__ = ["FAST_CONFIG", "check_store_invariants", "MISSING", "PUSHGATEWAY_BIN", "ROOT", "SAMPLE", "FakePlatform", "Pushgateway",
           "SlackReceiver", "hanging_port", "held_out", "load_sample", "refusing_port", "shuffled_train_labels",
           "write_data"]

# The suite's pipeline: the sample pipeline (regex features, CRF entities + synonyms, bag of words) with the
# project's own LinearIntentClassifier, which trains ~10x faster than SklearnIntentClassifier's grid search
# (the training path, rasa_nlu's Trainer and persistence, is the same; see docs/reliability.md).
RELIABILITY_CONFIG = FAST_CONFIG.replace("SklearnIntentClassifier", "nlu_ci.components.intent.LinearIntentClassifier")
assert RELIABILITY_CONFIG != FAST_CONFIG

# the secrets every run of the suite is given; none may appear in any byte the runs print or write
TOKEN = "tok-reliab-9c41e0d7b2a6f35e"
PG_PASSWORD = "pgpass-reliab-55d1c0ffee77"
SECRETS = (TOKEN, PG_PASSWORD, "xoxsecretwebhook42")  # the last one: the secret part of the Slack URL
if __package__:  # every encoding a secret can travel in (URL-encoded, base64, ...): tests/reliability/secret_forms.py
    from .secret_forms import encoded_forms

    SECRETS = tuple(dict.fromkeys(f for s in SECRETS for f in encoded_forms(s)))


class SlackBodies:
    """What a Slack receiver got, for the secret scan: bodies and headers (the URL path is the webhook itself)."""

    def __init__(self, slack):
        self.slack = slack

    def __repr__(self) -> str:
        return repr([(r.headers, r.body) for r in self.slack.received])


# ---------------------------------------------------------------- one run, everything it printed or wrote

@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float
    report: dict | None = None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Harness:
    """One case: a store under ``base/models``, secrets in mounted-Secret-like files, the real CLI in a subprocess."""

    base: Path
    project: str
    pushgateway: object | None = None
    slack_url: str | None = None
    config: Path | None = None
    runs: list[Run] = field(default_factory=list)
    extra_scan: list[Path] = field(default_factory=list)
    received: list = field(default_factory=list)  # objects whose repr is what a fake server received

    def __post_init__(self):
        self.models = self.base / "models"
        self.secrets = self.base / "secrets"
        self.secrets.mkdir(parents=True, exist_ok=True)
        (self.secrets / "token").write_text(TOKEN + "\n")
        (self.secrets / "pg").write_text(PG_PASSWORD + "\n")
        if self.config is None:
            self.config = self.base / "fast_config.yml"
            self.config.write_text(RELIABILITY_CONFIG)
        self.report_path = self.base / "out" / "report.json"

    @property
    def store(self) -> Path:
        return self.models / self.project

    def env(self, **extra: str) -> dict[str, str]:
        env = cli_env(self.models, NLU_CI_CONFIG=str(self.config), NLU_CI_PROJECT=self.project,
                      NLU_CI_DATA=str(SAMPLE), NLU_CI_REPORT=str(self.report_path),
                      RASA_API_TOKEN_FILE=str(self.secrets / "token"), NLU_CI_HTTP_TIMEOUT="1",
                      NLU_CI_HTTP_RETRIES="3", NLU_CI_HTTP_BACKOFF="0.05", NLU_CI_EVAL_POLL_INTERVAL="0.1",
                      NLU_CI_EVAL_TIMEOUT="30", NLU_CI_METRICS_TIMEOUT="2", OPENBLAS_NUM_THREADS="1")
        if self.pushgateway is not None:
            env.update(PUSHGATEWAY_URL=self.pushgateway.url, PUSHGATEWAY_USERNAME="nlu-ci",
                       PUSHGATEWAY_PASSWORD_FILE=str(self.secrets / "pg"))
        if self.slack_url:
            (self.secrets / "slack").write_text(self.slack_url + "\n")
            env["SLACK_WEBHOOK_URL_FILE"] = str(self.secrets / "slack")
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def run(self, args: list[str] | None = None, timeout: float = 180, **extra: str) -> Run:
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "nlu_ci.cli", *(args or ["run", "--json"])],
                              env=self.env(**extra), capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
        result = Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)
        with contextlib.suppress(ValueError):
            result.report = json.loads(proc.stdout)
        self.runs.append(result)
        return result

    # ------------------------------------------------------------ what every case checks
    def active(self) -> str | None:
        p = self.store / "ACTIVE"
        return p.read_text().strip() or None if p.exists() else None

    def pushed_outcome(self) -> dict[str, float]:
        """``{outcome: value}`` of nlu_ci_run_outcome in this project's Pushgateway group ({} if none)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = self.pushgateway.metrics_text()
        out = {}
        for family in text_string_to_metric_families(text):
            if family.name == "nlu_ci_run_outcome":
                for s in family.samples:
                    if s.labels.get("project") == self.project:
                        out[s.labels["outcome"]] = s.value
        return out

    def scan_secrets(self) -> int:
        """Every byte this case's runs printed or wrote: stdout/stderr, every file of the store and of the
        report folder, the Pushgateway's state. Returns the number of bytes scanned."""
        blobs: list[tuple[str, bytes]] = []
        for i, r in enumerate(self.runs):
            blobs += [(f"run {i} stdout", r.stdout.encode()), (f"run {i} stderr", r.stderr.encode())]
        for root in [self.models, self.report_path.parent, *self.extra_scan]:
            for p in sorted(root.rglob("*")) if root.exists() else []:
                if p.is_file() and not p.is_symlink():
                    with contextlib.suppress(OSError):
                        blobs.append((str(p), p.read_bytes()))
        if self.pushgateway is not None:
            blobs.append(("pushgateway /metrics", self.pushgateway.metrics_text().encode()))
            blobs.append(("pushgateway log", self.pushgateway.log.read_bytes()))
        for thing in self.received:  # Slack messages (bodies, headers), the platform's request log
            blobs.append((type(thing).__name__, repr(thing).encode()))
        leaks = [(where, s) for where, data in blobs for s in SECRETS if s.encode() in data]
        assert not leaks, f"secret leaked: {leaks[:5]}"
        return sum(len(d) for _, d in blobs)
