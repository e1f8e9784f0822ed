"""``nlu-ci status``: the active model, its metrics, rollback holds, what the next run will do, the last runs."""
from __future__ import annotations

import argparse

from nlu_ci.commands.options import COMMON, REGISTRY
from nlu_ci.commands.result import Result
from nlu_ci.errors import ConfigError, StoreError
from nlu_ci.gate.policy import load_policy
from nlu_ci.registry import backends, holds

NAME = "status"
HELP = "the active model, its metrics, rollback holds, what the next run will do, the last decisions"
SETTINGS = COMMON + REGISTRY + ["policy"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--last", type=int, default=5, help="how many history entries to show")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _last_page(store) -> str | None:
    """The review page of the last run (``nlu-ci report`` makes one for older runs)."""
    page = (store.last_report() or {}).get("review_page") or {}
    return page.get("url") or page.get("path") if isinstance(page, dict) else None


def _when(entry: dict) -> str:
    return str(entry.get("started_at") or entry.get("at") or "")


def timeline(entries: list[dict], last: int) -> list[dict]:
    """History in time order (a run's line is written when it ends, after its promotion line), each promotion once
    (the run line that promoted stands for it), the last ``last``."""
    promoted = {str(e.get("candidate")) for e in entries if e.get("event") == "run" and e.get("outcome") == "promoted"}
    kept = [e for e in entries if not (e.get("event") == "promotion" and str(e.get("model")) in promoted)]
    ordered = sorted(kept, key=_when)  # stable: entries of the same second keep the file's order
    return ordered[-last:] if last > 0 else ordered


def describe(entry: dict) -> tuple[str, str]:
    """(what, detail) of one history entry; never an empty detail."""
    what = str(entry.get("outcome") or entry.get("event") or "?")
    if entry.get("error"):
        return what, str(entry["error"])
    if what == "skipped":
        return what, f"same data and config as the active model {entry.get('active') or '?'}"
    if what == "promoted":
        return what, f"{entry.get('candidate')}: {entry.get('reason') or 'promoted'}"
    if what in ("rollback", "promotion"):
        return what, f"{entry.get('model')} (was {entry.get('previous') or 'none'})"
    if what == "release":
        return what, f"hold on {str(entry.get('fingerprint'))[:19]} ({entry.get('model')}) ended"
    return what, str(entry.get("reason") or entry.get("model") or entry.get("candidate") or "-")


def next_run(settings, active: str | None, meta: dict | None, problems: list[str], held: list[dict]) -> str:
    """What the next ``nlu-ci run`` will do, as far as the store and the policy tell (the data is not read here)."""
    try:
        policy = load_policy(settings.policy)
    except ConfigError as err:
        return f"fails before training: {err}"
    if not active:
        floor = "no F1 floor" if policy.min_intent_f1 is None else f"intent F1 >= {policy.min_intent_f1:g}"
        must = f" and all {len(policy.must_pass)} must-pass utterances right" if policy.must_pass else ""
        return (f"bootstraps: trains a first model and promotes it if it has {floor}{must} "
                f"(policy {policy.source})")
    if problems:
        return f"trains a replacement for the damaged active model, then gates it (policy {policy.source})"
    fp = (meta or {}).get("fingerprint") or "?"
    text = (f"skipped if data and config are unchanged since {active} (fingerprint {str(fp)[:19]}); else trains a "
            f"candidate and promotes it if every check passes ({policy.rule()}; policy {policy.source})")
    if held:
        text += "; a candidate of held data is rejected (rollback_hold)"
    return text


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
    history = timeline(store.history(), args.last)
    held = holds.read(store)
    upcoming = next_run(settings, active, meta, problems, held)
    data = {
        "project": settings.project,
        "store": str(store.dir),
        "active": {"model": active, "intact": not problems, "problems": problems,
                   "created_at": (meta or {}).get("created_at"), "fingerprint": (meta or {}).get("fingerprint"),
                   "metrics": {k: v for k, v in ((meta or {}).get("metrics") or {}).items() if k != "per_intent"}}
        if active else None,
        "previous": store.previous_name(),
        "models": store.models(),
        "holds": held,
        "next_run": upcoming,
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
        lines.append("active:   none")
    lines.append(f"previous: {data['previous'] or '-'};  models kept: {len(data['models'])}")
    for h in held:
        lines.append(f"hold:     {holds.describe(h)}")
    lines.append(f"next run: {upcoming}")
    lines.append("last runs:")
    for h in history:
        what, detail = describe(h)
        lines.append(f"  {_when(h)}  {what:<9} {detail}")
    if data["review_page"]:
        lines.append(f"last review page: {data['review_page']}")
    extra, extra_lines = registry.status()
    if extra is not None:
        data[registry.kind] = extra
        lines += extra_lines
    return Result(data, "\n".join(lines))
