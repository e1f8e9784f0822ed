"""engine.memory.collections_deferred, as every job stage runs (job.stages.Stages): the cyclic collector
held off inside, the cycles made there collected when the stage ends, and the collector as it was after."""
from __future__ import annotations

import gc
import weakref

from nlu_ci.engine import memory
from nlu_ci.job.stages import Stages


class Node:
    pass


def _cycle() -> weakref.ref:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_a_stage_runs_without_collections_and_collects_its_cycles_when_it_ends():
    durations: dict = {}
    assert gc.isenabled()
    before = gc.get_stats()[0]["collections"]
    with Stages(durations)("load"):
        assert not gc.isenabled()
        refs = [_cycle() for _ in range(20_000)]      # 40,000 objects: 50 collections' worth at 700 each
        assert gc.get_stats()[0]["collections"] == before
        assert all(r() is not None for r in refs[:100])
    assert gc.isenabled()
    assert all(r() is None for r in refs)            # the stage's garbage cycles are gone
    assert "load" in durations


def test_nested_or_already_paused_it_leaves_the_collector_as_it_found_it():
    gc.disable()
    try:
        with memory.collections_deferred():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with memory.collections_deferred():
        with memory.collections_deferred():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
