"""``nlu-ci compare MODEL_A MODEL_B --data FILE``: the promotion gate, offline, for a person deciding by hand.

Model A plays the active model, model B the candidate: both are evaluated on the same test file (so the
paired checks apply) and ``gate.decide`` runs the same checks as a nightly run, must-pass included.
"""
from __future__ import annotations

from pathlib import Path

from nlu_ci import gate
from nlu_ci.errors import ConfigError, StoreError
from nlu_ci.evaluation import EvaluationResult, evaluate
from nlu_ci.policy import Policy, load_policy


def load_test_examples(data: Path) -> list[dict]:
    """Labelled test examples (Prediction-comparable dicts) from a Rasa NLU JSON/Markdown file or folder."""
    from nlu_ci import dataset

    loaded = dataset.load_training_data_for_test(data)
    examples = [dataset.example_dict(m) for m in loaded.training_examples if m.get("intent")]
    dataset.validate_test_examples(examples, Path(data))
    return examples


def extracts_entities(interpreter) -> bool:
    """Whether a loaded model's pipeline has a component that provides entities."""
    return any("entities" in (getattr(c, "provides", None) or []) for c in getattr(interpreter, "pipeline", []))


class LoadedModel:
    """A model folder loaded once; ``predict(texts)`` is the callable the gate uses for must-pass."""

    def __init__(self, path: Path):
        from nlu_ci.engine.predict import load_model

        if not Path(path).is_dir():
            raise ConfigError(f"compare: model folder {path} not found")
        self.path = Path(path)
        self.interpreter = load_model(self.path)

    def predict(self, texts: list[str]) -> list[dict]:
        from nlu_ci.engine.predict import predict

        return predict(self.interpreter, texts)

    def evaluate(self, examples: list[dict]) -> EvaluationResult:
        return evaluate(examples, self.predict([e["text"] for e in examples]))


def compare(model_a: Path, model_b: Path, data: Path, policy: Policy | Path | str | None = None
            ) -> tuple[gate.Decision, EvaluationResult, EvaluationResult]:
    """Gate candidate ``model_b`` against active ``model_a`` on ``data``; ``policy``: a Policy, a policy file,
    or None (built-in). Returns (decision, result_a, result_b)."""
    if not isinstance(policy, Policy):
        policy = load_policy(policy)
    examples = load_test_examples(Path(data))
    a, b = LoadedModel(Path(model_a)), LoadedModel(Path(model_b))
    result_a, result_b = a.evaluate(examples), b.evaluate(examples)
    decision = gate.decide(result_b, result_a, policy, predict_candidate=b.predict, predict_active=a.predict,
                           has_entities=extracts_entities(b.interpreter))
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


def resolve_model(settings, name: str, command: str = "compare") -> Path:
    """A model folder path, or the name of a model in the store (``--models-dir``/``--project``)."""
    path = Path(name)
    if path.is_dir():
        return path
    from nlu_ci.registry.store import ModelStore

    store = ModelStore(settings.models_dir, settings.project)
    try:
        path = store.path(name)
    except StoreError:  # a name the store refuses (a path that does not exist) is not a stored model
        path = None
    if path is None or not path.is_dir():
        raise ConfigError(f"{command}: model {name!r} is neither a folder nor a model in {store.dir}")
    return path


def command(settings, args) -> int:
    """``nlu-ci compare MODEL_A MODEL_B --data FILE [--policy FILE] [--json]``; exit 0 whatever the verdict."""
    from nlu_ci.cli import emit

    policy = load_policy(settings.policy)  # a bad policy fails before any model is loaded
    model_a, model_b = resolve_model(settings, args.model_a), resolve_model(settings, args.model_b)
    decision, result_a, result_b = compare(model_a, model_b, args.eval_data, policy)
    emit(settings.output, summary(decision, result_a, result_b, model_a, model_b, args.eval_data),
         format_text(decision, result_a, result_b, model_a, model_b, args.eval_data))
    return 0
