"""Rollback holds: after ``nlu-ci rollback`` the rolled-back-from data is not promoted again.

A rollback says "the model trained on this data must not serve". A nightly run on the same data (the same
fingerprint: data, config and split) would otherwise train the same model and promote it again. So the
rollback records a *hold* on the rolled-back-from model's fingerprint; while it is held, the gate rejects
every candidate of that fingerprint (check ``rollback_hold``, outcome ``rejected``). New data (another
fingerprint) is judged as usual; ``nlu-ci release`` ends a hold; rolling forward to a held model (``nlu-ci
rollback MODEL``) ends its hold too.

Stored in the store folder as ``holds.json`` (``{"holds": [{fingerprint, model, rolled_back_to, at}]}``),
replaced atomically (``store.atomic_write_text``) under the store lock. It lives in the local store that
every registry keeps (the PVC), so it holds for the Rasa Platform registry too. A damaged file is a warning
and treated as no hold (a run never fails on it; the next rollback or release rewrites it).
"""
from __future__ import annotations

import json
import logging
from typing import Any

from nlu_ci import gate, safeio
from nlu_ci.errors import NluCiError, StoreError
from nlu_ci.registry.store import ModelStore, atomic_write_text, iso, now_utc

log = logging.getLogger(__name__)

HOLDS = "holds.json"


def read(store: ModelStore) -> list[dict[str, Any]]:
    """The holds in force, oldest first ([] when none or when the file is damaged: a warning)."""
    path = store.dir / HOLDS
    if not path.exists() and not path.is_symlink():
        return []
    try:
        raw = json.loads(safeio.read_text(path, "rollback holds", kind="metadata", error=StoreError,
                                          follow_symlinks=False))
        holds = raw["holds"]
        if not isinstance(holds, list) or not all(isinstance(h, dict) and isinstance(h.get("fingerprint"), str)
                                                  for h in holds):
            raise ValueError("not a list of holds")
    except (NluCiError, ValueError, KeyError, TypeError, RecursionError) as err:
        log.warning("%s: damaged (%s); treating it as no hold", path, err)
        return []
    return holds


def _write(store: ModelStore, holds: list[dict[str, Any]]) -> None:
    atomic_write_text(store.dir / HOLDS, json.dumps({"holds": holds}, indent=2, sort_keys=True) + "\n")


def find(store: ModelStore, fingerprint: str | None) -> dict[str, Any] | None:
    """The hold on ``fingerprint``, if any."""
    return next((h for h in read(store) if fingerprint and h["fingerprint"] == fingerprint), None)


def add(store: ModelStore, fingerprint: str, model: str, rolled_back_to: str) -> dict[str, Any]:
    """Hold ``fingerprint`` (the data of ``model``, rolled back from). Call with the store lock held."""
    hold = {"fingerprint": fingerprint, "model": model, "rolled_back_to": rolled_back_to, "at": iso(now_utc())}
    _write(store, [h for h in read(store) if h["fingerprint"] != fingerprint] + [hold])
    return hold


def release(store: ModelStore, which: str | None = None) -> list[dict[str, Any]]:
    """End the holds whose fingerprint starts with ``which`` or whose model is ``which`` (None: all); returns
    the released ones. Call with the store lock held."""
    holds = read(store)
    gone = [h for h in holds if which is None or h.get("model") == which or h["fingerprint"].startswith(which)]
    if gone:
        _write(store, [h for h in holds if h not in gone])
    return gone


def describe(hold: dict[str, Any]) -> str:
    return (f"data fingerprint {hold['fingerprint'][:19]} is held: {hold.get('model')} was rolled back "
            f"(to {hold.get('rolled_back_to')}) at {hold.get('at')}; `nlu-ci release` or new data ends the hold")


def apply(store: ModelStore, fingerprint: str | None, decision: gate.Decision) -> gate.Decision:
    """``decision`` with the ``rollback_hold`` check: failed (the candidate is not promoted) when the run's data
    fingerprint is held, else not applicable."""
    hold = find(store, fingerprint)
    return gate.with_hold(decision, describe(hold) if hold else None, hold)
