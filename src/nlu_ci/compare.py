"""The promotion gate, offline, for a person deciding by hand (``nlu-ci compare MODEL_A MODEL_B --data FILE``).

Model A plays the active model, model B the candidate: both are evaluated on the same test file (so the
paired checks apply) and ``gate.decide`` runs the same checks as a nightly run, must-pass included.
"""
from __future__ import annotations

from pathlib import Path

from nlu_ci import gate
from nlu_ci.data import dataset
from nlu_ci.engine.model import Model
from nlu_ci.errors import ConfigError, StoreError
from nlu_ci.evaluation import EvaluationResult
from nlu_ci.gate.policy import Policy, load_policy
from nlu_ci.registry.base import Registry
from nlu_ci.registry.integrity import check_model_folder


def load_test_examples(data: Path) -> list[dict]:
    """Labelled test examples (Prediction-comparable dicts) from a Rasa NLU JSON/Markdown file or folder."""
    loaded = dataset.load_training_data_for_test(data)
    examples = [dataset.example_dict(m) for m in loaded.training_examples if m.get("intent")]
    dataset.validate_test_examples(examples, Path(data))
    return examples


def extracts_entities(interpreter) -> bool:
    """Whether a loaded model's pipeline has a component that provides entities."""
    return any("entities" in (getattr(c, "provides", None) or []) for c in getattr(interpreter, "pipeline", []))


class LoadedModel(Model):
    """A model folder loaded at once (``Model`` loads on first use); kept for callers of the gate library."""

    def __init__(self, path: Path):
        if not Path(path).is_dir():
            raise ConfigError(f"compare: model folder {path} not found")
        super().__init__(path)
        self.interpreter  # noqa: B018 - load now: a broken model fails here, not in the middle of the gate


def compare(model_a: Path | Model, model_b: Path | Model, data: Path, policy: Policy | Path | str | None = None
            ) -> tuple[gate.Decision, EvaluationResult, EvaluationResult]:
    """Gate candidate ``model_b`` against active ``model_a`` on ``data``; ``policy``: a Policy, a policy file,
    or None (built-in). Returns (decision, result_a, result_b)."""
    if not isinstance(policy, Policy):
        policy = load_policy(policy)
    examples = load_test_examples(Path(data))
    a = model_a if isinstance(model_a, Model) else LoadedModel(Path(model_a))
    b = model_b if isinstance(model_b, Model) else LoadedModel(Path(model_b))
    result_a, result_b = a.evaluate(examples), b.evaluate(examples)
    decision = gate.decide(result_b, result_a, policy, predict_candidate=b.predict, predict_active=a.predict,
                           has_entities=b.extracts_entities)
    return decision, result_a, result_b


def summary(decision: gate.Decision, result_a: EvaluationResult, result_b: EvaluationResult,
            model_a: Path, model_b: Path, data: Path) -> dict:
    """The JSON shape of ``nlu-ci compare --json``."""
    return {"a": dict(result_a.summary(), model=str(model_a)), "b": dict(result_b.summary(), model=str(model_b)),
            "data": str(data), "test_examples": len(result_a.utterances), "decision": decision.to_dict()}


def format_text(decision: gate.Decision, result_a: EvaluationResult, result_b: EvaluationResult,
                model_a: Path, model_b: Path, data: Path) -> str:
    lines = [f"A (active):    {model_a}", f"B (candidate): {model_b}",
             f"test data:     {data} ({len(result_a.utterances)} examples)"]
    for label, r in (("A", result_a), ("B", result_b)):
        ent = "" if r.entity_f1 is None else f"  entity F1 {r.entity_f1:.4f}"
        lines.append(f"{label}: intent F1 {r.intent_f1:.4f}  accuracy {r.intent_accuracy:.4f}{ent}")
    lines.append(gate.format_checks(decision))
    lines.append(f"verdict: {'B would be promoted over A' if decision.promote else 'B would NOT be promoted over A'}")
    return "\n".join(lines)


def resolve_model(registry: Registry, name: str, command: str = "compare") -> Model:
    """A model folder path, or the name of a model in the store; checked against its checksums before loading
    (a rasa_nlu folder without ``nlu_ci.json`` was not made by nlu-ci and is taken as it is)."""
    path = Path(name)
    if path.is_dir():
        return Model(check_model_folder(path, command))  # exit 2: not a model folder; exit 1: damaged
    store = registry.store
    try:
        stored = store.path(name)
    except StoreError:  # a name the store refuses (a path that does not exist) is not a stored model
        stored = None
    if stored is None or not stored.is_dir():
        raise ConfigError(f"{command}: model {name!r} is neither a folder nor a model in {store.dir}")
    return registry.open(name)
