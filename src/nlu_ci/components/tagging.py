"""Token tag schemes for entity extraction: character-offset entities <-> per-token tags.

``tags_from_entities`` turns gold entities into one tag per token (``O``; ``I-x`` on every token of an
entity for IO; ``B-x``/``I-x`` for BIO; plus ``L-x``/``U-x`` for BILOU); entities that do not start and end
on token boundaries are skipped and counted. IO has the fewest labels (HWU64: 55 against BIO's 105, a
main CRF fit 4.8 s against 13.1 s) but cannot keep two adjacent entities of one type apart: they read
back as one. ``spans_from_tags`` reads any of these schemes back into (first, last) token ranges.
"""
from __future__ import annotations

SCHEMES = ("BIO", "BILOU", "IO")


def tags_from_entities(tokens: list, entities: list[dict], scheme: str = "BIO") -> tuple[list[str], int]:
    """(tags, number of misaligned entities skipped). ``tokens`` have ``.offset`` and ``.end``."""
    starts = {t.offset: i for i, t in enumerate(tokens)}
    ends = {t.end: i for i, t in enumerate(tokens)}
    tags = ["O"] * len(tokens)
    skipped = 0
    for ent in entities:
        first, last = starts.get(ent["start"]), ends.get(ent["end"])
        if first is None or last is None or last < first:
            skipped += 1
            continue
        name = ent["entity"]
        for i in range(first, last + 1):
            tags[i] = f"I-{name}"
        if scheme != "IO":
            tags[first] = f"B-{name}"
        if scheme == "BILOU":
            if first == last:
                tags[first] = f"U-{name}"
            else:
                tags[last] = f"L-{name}"
    return tags, skipped


def spans_from_tags(tags: list[str]) -> list[tuple[int, int, str]]:
    """[(first token, last token, entity)] from BIO or BILOU tags (lenient: a stray I-/L- opens a span)."""
    spans = []
    i, n = 0, len(tags)
    while i < n:
        tag = tags[i]
        if tag == "O" or len(tag) < 3 or tag[1] != "-":
            i += 1
            continue
        kind, name = tag[0], tag[2:]
        j = i
        if kind not in ("U",):
            while j + 1 < n and tags[j + 1][:1] in ("I", "L") and tags[j + 1][2:] == name:
                j += 1
                if tags[j][0] == "L":
                    break
        spans.append((i, j, name))
        i = j + 1
    return spans


def seed_crfsuite(seed: int) -> None:
    """crfsuite's online trainers (pa, ap, arow) shuffle the instances every epoch with the C library's
    ``rand()`` (crfsuite's ``dataset_shuffle``). Unseeded, a model depends on every ``rand()`` call before
    it in the process: on how many models were trained before (config selection, calibration folds) and
    in which process (a parallel fold starts from the state at fork time). Seeded before each training,
    the same data gives the same CRF anywhere."""
    import ctypes

    try:
        ctypes.CDLL(None).srand(ctypes.c_uint(seed & 0xFFFFFFFF))
    except (OSError, AttributeError):  # no C library symbols to reach: order-dependent, as before
        pass
