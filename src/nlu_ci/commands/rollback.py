"""``nlu-ci rollback [MODEL]``: serve the previous (or a named) model again, and hold the rolled-back-from data.

The hold (``registry.holds``) keeps the next runs on the same data from promoting the rolled-back-from model's
twin again; ``nlu-ci release`` or new data ends it. Rolling forward to a held model ends that model's hold.
The metrics (``metrics.prom``, and the Pushgateway when ``PUSHGATEWAY_URL`` is set) then show the model that
serves now as ``active``: the last run's report with its active section replaced (no candidate: it is not the
news any more), so the dashboard does not keep showing the rolled-back-from model.
"""
from __future__ import annotations

import argparse

from nlu_ci.commands.options import COMMON, REGISTRY
from nlu_ci.commands.result import Result
from nlu_ci.errors import StoreError
from nlu_ci.outputs import prometheus as metrics
from nlu_ci.registry import backends, holds

NAME = "rollback"
HELP = "re-activate the previous model, or a named one (and hold the rolled-back-from data)"
SETTINGS = COMMON + REGISTRY


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="model name (default: the previously active model)")


def _fingerprint(store, name: str | None) -> str | None:
    """The data fingerprint of a model in the local store (None: not here, or no readable metadata)."""
    if not name:
        return None
    try:
        value = store.metadata(name).get("fingerprint")
    except StoreError:
        return None
    return value if isinstance(value, str) and value else None


def hold_after_rollback(store, target: str, previous: str | None) -> tuple[dict | None, str]:
    """Record the hold for a rollback from ``previous`` to ``target`` (store lock held): (hold, one line)."""
    released = holds.release(store, _fingerprint(store, target)) if _fingerprint(store, target) else []
    note = f"; the hold on {target}'s data ended (rolled forward to it)" if released else ""
    from_fp = _fingerprint(store, previous)
    if previous and from_fp is None:
        return None, f"no hold: {previous} is not in the local store {store.dir}, its data fingerprint is unknown{note}"
    if from_fp is None or from_fp == _fingerprint(store, target):
        return None, f"no hold: {target} was trained on the same data{note}" if from_fp else note.lstrip("; ")
    hold = holds.add(store, from_fp, previous, target)
    return hold, (f"hold: runs on {previous}'s data (fingerprint {from_fp[:19]}) are rejected until "
                  f"`nlu-ci release` or new data{note}")


def refresh_metrics(settings, store, target: str) -> dict:
    """Publish the last run's metrics with ``target`` as the active model (best effort: a warning, never fatal)."""
    last = store.last_report()
    if last is None:
        return {"textfile": None, "pushed": False, "error": "no run recorded yet: no metrics to update"}
    try:
        scores = store.metadata(target).get("metrics") or {}
    except StoreError:
        scores = {}  # a platform model not in the local store: its name only
    report = dict(last, active=dict(scores if isinstance(scores, dict) else {}, model=target), candidate=None)
    result = metrics.publish(report, store_dir=store.dir, pushgateway_url=settings.pushgateway_url,
                             username=settings.pushgateway_username, password=settings.pushgateway_password,
                             timeout=settings.metrics_timeout, history=store.history())
    return {"textfile": str(result.textfile) if result.textfile else None, "pushed": result.pushed,
            "error": result.push_error or result.textfile_error}


def main(settings, args: argparse.Namespace) -> Result:
    registry = backends.build(settings)
    registry.store.ensure()
    with registry.lock():
        target, previous = registry.rollback(args.model)
        changed = target != previous
        hold, hold_line = hold_after_rollback(registry.store, target, previous) if changed else (None, "")
        published = refresh_metrics(settings, registry.store, target) if changed else None
    data = {"active": target, "previous": previous, "changed": changed, "hold": hold, "metrics": published}
    if not changed:
        return Result(data, f"{target} is already {registry.serving}")
    text = f"rolled back: {target} is {registry.serving} (was {previous or 'none'})"
    return Result(data, text + (f"\n{hold_line}" if hold_line else ""))
