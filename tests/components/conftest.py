"""Fixtures for the component tests (helpers in support.py)."""
from __future__ import annotations

import pytest

from .support import NLU_CI_PIPELINE, split_sample, train_and_load


@pytest.fixture(scope="module")
def sample_split():
    return split_sample()


@pytest.fixture(scope="module")
def nlu_ci_model(sample_split, tmp_path_factory):
    train, _ = sample_split
    return train_and_load(NLU_CI_PIPELINE, train, tmp_path_factory.mktemp("nlu-ci-model"))
