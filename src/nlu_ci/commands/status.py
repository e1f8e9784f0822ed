"""``nlu-ci status``: the active model, its metrics, the last decisions."""
from __future__ import annotations

import argparse

from nlu_ci.commands.options import COMMON, PLATFORM
from nlu_ci.commands.result import Result
from nlu_ci.errors import StoreError
from nlu_ci.registry import backends

NAME = "status"
HELP = "the active model, its metrics, the last decisions"
SETTINGS = COMMON + PLATFORM


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--last", type=int, default=5, help="how many history entries to show")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _last_page(store) -> str | None:
    """The review page of the last run (``nlu-ci report`` makes one for older runs)."""
    page = (store.last_report() or {}).get("review_page") or {}
    return page.get("url") or page.get("path") if isinstance(page, dict) else None


def main(settings, args: argparse.Namespace) -> Result:
    registry = backends.build(settings)
    store = registry.store
    active = store.active_name()
    meta = None
    problems: list[str] = []
    if active:
        try:
            meta = store.metadata(active)
        except StoreError as err:
            problems = [str(err)]
        problems = problems or store.verify(active)
    history = store.history(args.last)
    data = {
        "project": settings.project,
        "store": str(store.dir),
        "active": {"model": active, "intact": not problems, "problems": problems,
                   "created_at": (meta or {}).get("created_at"), "fingerprint": (meta or {}).get("fingerprint"),
                   "metrics": {k: v for k, v in ((meta or {}).get("metrics") or {}).items() if k != "per_intent"}}
        if active else None,
        "previous": store.previous_name(),
        "models": store.models(),
        "history": history,
        "review_page": _last_page(store),
    }
    lines = [f"project {settings.project} (store {store.dir})"]
    if active:
        m = data["active"]["metrics"]
        lines.append(f"active:   {active} ({'intact' if not problems else 'DAMAGED: ' + problems[0]})")
        lines.append(f"          intent F1 {_fmt(m.get('intent_f1'))}, accuracy {_fmt(m.get('intent_accuracy'))}, "
                     f"entity F1 {_fmt(m.get('entity_f1'))}, trained {data['active']['created_at']}")
    else:
        lines.append("active:   none (the next run bootstraps)")
    lines.append(f"previous: {data['previous'] or '-'};  models kept: {len(data['models'])}")
    lines.append("last runs:")
    for h in history:
        when = h.get("started_at") or h.get("at")
        what = h.get("outcome") or h.get("event")
        detail = h.get("error") or h.get("reason") or h.get("model") or ""
        lines.append(f"  {when}  {what:<9} {detail}")
    if data["review_page"]:
        lines.append(f"last review page: {data['review_page']}")
    extra, extra_lines = registry.status()
    if extra is not None:
        data[registry.kind] = extra
        lines += extra_lines
    return Result(data, "\n".join(lines))
