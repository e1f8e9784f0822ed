"""``nlu-ci inbox``: the recent production messages that are not training examples, the most useful to
annotate first, as a Rasa YAML file (the active model's intent as the suggestion). docs/inbox.md."""
from __future__ import annotations

import argparse
from pathlib import Path

from nlu_ci.commands.options import COMMON, MESSAGES
from nlu_ci.commands.result import Result
from nlu_ci.errors import ConfigError, DataError, StoreError
from nlu_ci.registry import backends
from nlu_ci.registry.store import atomic_write_text, iso, now_utc

NAME = "inbox"
HELP = "production messages worth annotating (not in the training data), ranked, as a Rasa YAML file"
SETTINGS = [n for n in COMMON if n != "output"] + ["data", "max_repair_share"] + MESSAGES
FILE = "inbox.yml"  # in the project's store folder unless --output names another file
SHOWN = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", dest="inbox_file", type=Path, default=None, metavar="FILE",
                        help=f"write the inbox here (default: {FILE} in the project's store folder)")
    parser.add_argument("--output-format", dest="output", choices=("text", "json"), default=None,
                        help="what to print on stdout [env NLU_CI_OUTPUT]")
    parser.add_argument("--limit", type=int, default=200, metavar="N", help="at most N entries in the inbox")
    parser.add_argument("--candidate", default=None, metavar="MODEL",
                        help="also let this model (store name or folder) predict: disagreeing with the active "
                             "model ranks a message higher")


def _training_texts(settings, model_dir: Path) -> tuple[list[str], str]:
    from nlu_ci.data import dataset

    path = settings.data or model_dir / "training_data.json"  # what the active model was trained on
    if not settings.data and not path.is_file():
        raise ConfigError(f"inbox: the active model has no {path.name}: name the training data with --data")
    data = dataset.load_training_data(path, max_repair_share=settings.max_repair_share)
    return [m.text for m in data.training_examples], str(path)


def main(settings, args: argparse.Namespace) -> Result:
    from nlu_ci.compare import resolve_model
    from nlu_ci.messages import inbox, inbox_yaml, sources

    if args.limit < 1:
        raise ConfigError(f"inbox: --limit {args.limit} must be at least 1")
    if args.inbox_file and args.inbox_file.is_dir():
        raise ConfigError(f"inbox: --output {args.inbox_file} is a folder, not a file")
    batch = sources.read(settings)
    if batch.source is None:
        raise ConfigError("inbox: set --messages / NLU_CI_MESSAGES_URL (or NLU_CI_MESSAGES_URL_FILE)")
    registry = backends.build(settings)
    active = registry.active()
    if not active:
        raise DataError("inbox: there is no active model to suggest intents (run nlu-ci run first)")
    model = registry.open(active)
    candidate = resolve_model(registry, args.candidate, "inbox") if args.candidate else None
    texts, data_from = _training_texts(settings, model.path)
    built = inbox.build(batch.messages, texts, model.predict, limit=args.limit,
                        predict_candidate=candidate.predict if candidate else None)
    path = args.inbox_file or registry.store.dir / FILE
    yaml_text = inbox_yaml.render(built["entries"], source=batch.source, model=active, made=iso(now_utc()))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, yaml_text)
    except (OSError, StoreError) as err:
        raise ConfigError(f"inbox: --output {path}: cannot write ({getattr(err, 'strerror', None) or err})") from None
    entries = built.pop("entries")
    data = dict(built, **batch.summary(), file=str(path), model=active, data=data_from,
                candidate=candidate.name if candidate else None, entries=[e.to_dict() for e in entries])
    data["messages_read"] = data.pop("messages")
    lines = [f"inbox {path}: {len(entries)} entries from {data['messages_read']} messages of {batch.source} "
             f"({built['training_examples']} already training examples, {built['unique']} unique, "
             f"{built['left_out']} left out by --limit)"]
    lines += [f"  warning: {w}" for w in batch.warnings]
    if batch.skipped:
        lines.append("  skipped: " + ", ".join(f"{n} {why}" for why, n in sorted(batch.skipped.items())))
    for e in entries[:SHOWN]:
        lines.append(f"  {e.priority:.2f}  {e.intent} {e.confidence:.2f}  {e.text[:80]}")
    return Result(data, "\n".join(lines))
