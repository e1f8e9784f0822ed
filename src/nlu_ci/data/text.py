"""Text rules shared by the split and the data checks: how utterances compare, and the split's floor."""
from __future__ import annotations

MIN_EXAMPLES_PER_INTENT = 2  # the hash split keeps at least one example of each intent on each side


def normalise(text: str) -> str:
    """Lower case, single spaces: two utterances that differ only so are the same utterance."""
    return " ".join(text.lower().split())
