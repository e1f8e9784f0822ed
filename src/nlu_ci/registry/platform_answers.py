"""What the Rasa Platform answers, read into plain values: content types, error snippets, upload names,
the evaluation document (``{"intent_evaluation": {...}}``) as an EvaluationResult, ``Retry-After``, and where
downloaded training data goes by its content."""
from __future__ import annotations

import email.utils
import json
import math
import time
from pathlib import Path
from typing import Any

import requests

from nlu_ci.errors import PlatformError
from nlu_ci.evaluation import EvaluationResult, evaluate


def _content_type(response: requests.Response) -> str:
    return (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def _safe_text(response: requests.Response) -> str:
    try:
        return response.text[:2000]
    except Exception:  # noqa: BLE001 - a body we cannot decode is no reason to lose the status
        return ""


def _connection_reason(err: requests.ConnectionError) -> str:
    """A short reason without the URL (which may carry the token in its query)."""
    text = str(err)
    for known in ("Connection refused", "Connection reset by peer", "Remote end closed connection",
                  "Name or service not known", "No route to host", "Connection aborted",
                  "Temporary failure in name resolution", "Network is unreachable"):
        if known.lower() in text.lower():
            return known.lower()
    return type(err).__name__


def _uploaded_name(response: requests.Response) -> str | None:
    ctype = (response.headers.get("Content-Type") or "").lower()
    if "json" not in ctype or not response.content:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        for key in ("model", "name", "model_name"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
    return None


def _number(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0.0 <= float(value) <= 1.0:
        raise PlatformError(f"{where}: intent_evaluation.{key} is not a number between 0 and 1 ({value!r})")
    return float(value)


def _per_intent(report: Any) -> dict[str, dict]:
    """sklearn's ``classification_report(output_dict=True)`` -> {intent: {precision, recall, f1, support}}."""
    if not isinstance(report, dict):
        return {}
    out = {}
    for label, row in report.items():
        if label in ("accuracy", "micro avg", "macro avg", "weighted avg", "samples avg") or not isinstance(row, dict):
            continue
        try:
            out[str(label)] = {"precision": float(row.get("precision", 0.0)), "recall": float(row.get("recall", 0.0)),
                               "f1": float(row.get("f1-score", row.get("f1", 0.0))),
                               "support": int(row.get("support", 0))}
        except (TypeError, ValueError):
            continue
    return out


def _utterances(predictions: Any) -> list[dict]:
    if not isinstance(predictions, list):
        return []
    out = []
    for p in predictions:
        if not isinstance(p, dict) or not isinstance(p.get("text"), str):
            return []  # unusable as pairs: better none than misaligned ones
        predicted = p.get("predicted", p.get("predicted_intent"))
        out.append({"text": p["text"], "intent": p.get("intent"), "predicted_intent": predicted,
                    "confidence": float(p.get("confidence") or 0.0), "correct": p.get("intent") == predicted,
                    "entities": [], "predicted_entities": []})
    return out


def parse_evaluation(body: dict, where: str) -> EvaluationResult:
    """The platform's ``{"intent_evaluation": {...}}`` as an EvaluationResult (source ``platform``)."""
    ev = body.get("intent_evaluation")
    if not isinstance(ev, dict):
        raise PlatformError(f"{where}: answer has no 'intent_evaluation' object")
    for key in ("f1_score", "precision", "accuracy"):
        if key not in ev:
            raise PlatformError(f"{where}: intent_evaluation has no {key!r}")
    per_intent = _per_intent(ev.get("report"))
    utterances = _utterances(ev.get("predictions"))
    macro = None
    if isinstance(ev.get("report"), dict) and isinstance(ev["report"].get("macro avg"), dict):
        macro = ev["report"]["macro avg"].get("f1-score")
    if not per_intent and utterances:  # a text report (rasa_nlu's default): derive from the predictions
        derived = evaluate([{"text": u["text"], "intent": u["intent"]} for u in utterances],
                           [{"intent": u["predicted_intent"]} for u in utterances], with_entities=False)
        per_intent, macro = derived.per_intent, derived.intent_macro_f1
    if macro is None and per_intent:
        macro = sum(r["f1"] for r in per_intent.values()) / len(per_intent)
    return EvaluationResult(
        intent_f1=_number(ev["f1_score"], "f1_score", where),
        intent_precision=_number(ev["precision"], "precision", where),
        intent_accuracy=_number(ev["accuracy"], "accuracy", where),
        intent_macro_f1=float(macro) if macro is not None else None,
        per_intent=per_intent,
        utterances=utterances,
        source="platform",
    )


MARKDOWN_TYPES = ("text/markdown", "text/x-markdown", "text/plain")


def place_training_data(tmp: Path, ctype: str, dest_dir: Path, where: str) -> Path:
    """The downloaded training data moved to ``data.json`` or ``data.md`` by its content type and first bytes;
    JSON is parsed once to refuse a malformed answer. PlatformError for anything else."""
    with open(tmp, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    looks_json = head.startswith((b"{", b"["))
    if "json" in ctype or (looks_json and ctype in ("", "application/octet-stream", *MARKDOWN_TYPES)):
        try:
            with open(tmp, encoding="utf-8") as fh:
                json.load(fh)
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            tmp.unlink(missing_ok=True)
            reason = f"line {err.lineno} column {err.colno}: {err.msg}" if isinstance(err, json.JSONDecodeError) \
                else type(err).__name__
            raise PlatformError(f"{where}: malformed JSON training data ({reason})") from None
        target = dest_dir / "data.json"
    elif ctype in MARKDOWN_TYPES or (ctype in ("", "application/octet-stream") and head.startswith(b"#")):
        target = dest_dir / "data.md"
    else:
        tmp.unlink(missing_ok=True)
        raise PlatformError(f"{where}: unexpected content type {ctype or 'none'!r} "
                            "(expected Rasa NLU JSON or Markdown training data)")
    tmp.replace(target)
    return target


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
