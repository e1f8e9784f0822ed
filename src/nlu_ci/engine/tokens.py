"""The tokens a loaded model's own tokenizer makes of texts (for token-level entity scores)."""
from __future__ import annotations


def tokenize(interpreter, texts: list[str]) -> list[list[tuple[int, int]]] | None:
    """(start, end) of each token of each text, by the pipeline's components up to its tokenizer (as
    ``Interpreter.parse`` runs them); None when the pipeline has no tokenizer."""
    from rasa_nlu.training_data import Message

    prefix = []
    for component in interpreter.pipeline:
        prefix.append(component)
        if "tokens" in (getattr(component, "provides", None) or []):
            break
    else:
        return None
    out = []
    for text in texts:
        message = Message(text, interpreter.default_output_attributes())
        if text:
            for component in prefix:
                component.process(message, **interpreter.context)
        out.append([(int(t.offset), int(t.end)) for t in message.get("tokens") or []])
    return out
