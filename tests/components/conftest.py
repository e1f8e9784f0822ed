"""Fixtures for the component tests (helpers in support.py)."""
from __future__ import annotations

import pytest

from support.train import train

from .support import NLU_CI_PIPELINE, split_sample


@pytest.fixture(scope="module")
def sample_split():
    return split_sample()


@pytest.fixture(scope="module")
def nlu_ci_model(sample_split, tmp_path_factory):
    train_data, _ = sample_split
    return train(tmp_path_factory.mktemp("nlu-ci-model"), train_data, NLU_CI_PIPELINE)
