"""The secret scan itself must be able to fail: a planted secret in any place it reads is found."""
from __future__ import annotations

import pytest

from .helpers import PG_PASSWORD, TOKEN, Harness, Run


@pytest.mark.parametrize("where", ["stdout", "stderr", "store file", "report", "received"])
@pytest.mark.parametrize("secret", [TOKEN, PG_PASSWORD, "https://hooks.example/services/T0/B0/xoxsecretwebhook42"])
def test_a_planted_secret_is_found(tmp_path, where, secret):
    h = Harness(tmp_path, "scan")
    h.store.mkdir(parents=True)
    (h.store / "history.jsonl").write_text('{"event": "run"}\n')
    h.runs.append(Run(0, "clean", "clean", 0.0))
    h.scan_secrets()  # nothing planted yet: passes
    if where == "stdout":
        h.runs.append(Run(0, f"token={secret}", "", 0.0))
    elif where == "stderr":
        h.runs.append(Run(0, "", f"ERROR GET http://x/?api_token={secret}", 0.0))
    elif where == "store file":
        (h.store / "reports").mkdir()
        (h.store / "reports" / "r.predictions.jsonl").write_bytes(b"\x00binary" + secret.encode())
    elif where == "report":
        h.report_path.parent.mkdir(parents=True)
        h.report_path.write_text(f'{{"error": "{secret}"}}')
    else:
        h.received.append([{"headers": {"Authorization": f"Basic {secret}"}}])
    with pytest.raises(AssertionError, match="secret leaked"):
        h.scan_secrets()
