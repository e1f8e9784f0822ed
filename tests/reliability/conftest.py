"""Fixtures of the reliability suite (the session's Pushgateway and Slack stand-in: support.fixtures), a store
with a real active model (trained once, copied into each case), and ``harness(name)`` for a case."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from .helpers import (
    SAMPLE,
    Harness,
    SlackBodies,
    load_sample,
    shuffled_train_labels,
    write_data,
)


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory) -> Path:
    """A store (project folder) whose ACTIVE model was trained by a real run on weaker data (30 % of the
    training labels shuffled): a run on the sample data then trains a better candidate."""
    base = tmp_path_factory.mktemp("seeded")
    h = Harness(base, "default")
    examples = load_sample()["rasa_nlu_data"]["common_examples"]
    weak = write_data(base / "weak.json", shuffled_train_labels(examples, 0.3, seed=11))
    r = h.run(["run", "--json"], NLU_CI_DATA=str(weak), NLU_CI_REPORT=None)
    assert r.code == 0 and r.report["outcome"] == "promoted", r.output
    return h.store


@pytest.fixture
def harness(tmp_path, shared_pushgateway, shared_slack, seeded_template, request):
    """``harness(seeded=True, push=True, slack=True)``: a Harness for this test, its project named after it
    (each case has its own Pushgateway group)."""

    def make(seeded: bool = True, push: bool = True, notify: bool = True, project: str | None = None) -> Harness:
        name = project or re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60]
        h = Harness(tmp_path, name, pushgateway=shared_pushgateway if push else None,
                    slack_url=shared_slack.url if notify else None)
        if seeded:
            shutil.copytree(seeded_template, h.store)
        h.received.append(SlackBodies(shared_slack))
        return h

    return make


__all__ = ["SAMPLE"]
