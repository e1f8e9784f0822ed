"""``nlu-ci release [FINGERPRINT|MODEL]``: end a rollback hold, so that the held data may be promoted again."""
from __future__ import annotations

import argparse

from nlu_ci.commands.options import COMMON, REGISTRY
from nlu_ci.commands.result import Result
from nlu_ci.errors import ConfigError
from nlu_ci.registry import backends, holds
from nlu_ci.registry.store import iso, now_utc

NAME = "release"
HELP = "end a rollback hold: the next run may promote that data again"
SETTINGS = COMMON + REGISTRY


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("which", nargs="?", help="the held data's fingerprint (or its start) or the rolled-back-from "
                                                 "model (default: every hold)")


def main(settings, args: argparse.Namespace) -> Result:
    registry = backends.build(settings)
    store = registry.store
    store.ensure()
    with registry.lock():
        held = holds.read(store)
        if args.which and held and not any(args.which == h.get("model") or h["fingerprint"].startswith(args.which)
                                           for h in held):
            raise ConfigError(f"release: no hold on {args.which!r}; held: "
                              + ", ".join(f"{h['fingerprint'][:19]} ({h.get('model')})" for h in held))
        released = holds.release(store, args.which)
        for h in released:
            store.append_history({"event": "release", "at": iso(now_utc()), "fingerprint": h["fingerprint"],
                                  "model": h.get("model")})
    data = {"released": released, "holds": holds.read(store)}
    if not released:
        return Result(data, "no rollback hold to release")
    return Result(data, "\n".join(f"released: data fingerprint {h['fingerprint'][:19]} ({h.get('model')}, rolled back "
                                  f"at {h.get('at')}): the next run may promote it again" for h in released))
