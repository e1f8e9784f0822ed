"""Turn one run's rows into docs/bench/results.{json,md} and plot.png (used by run_bench.py).

Everything on the page is computed from the rows and the run's metadata: no number is written here.
"""
from __future__ import annotations

import json
from pathlib import Path

LABELS = {
    "classic_intent": "rasa_nlu: CountVectorsFeaturizer + SklearnIntentClassifier",
    "classic_entities": "rasa_nlu: WhitespaceTokenizer + CRFEntityExtractor",
    "nlu_ci_intent": "nlu-ci: LinearIntentClassifier",
    "nlu_ci_entities": "nlu-ci: WhitespaceTokenizer + LeanCRFEntityExtractor",
    "nlu_ci_default": "nlu-ci: default config (intents + entities)",
}
# id -> default threshold (issue 7's targets); `run_bench.py --target ID=VALUE` overrides one
TARGETS = {"speed_vs_stock": 20.0, "f1_vs_stock": -0.01, "eval_ups": 5000.0, "batch_vs_each": 5.0,
           "run_s": 60.0, "overhead_pct": 5.0, "entity_speed": 5.0, "entity_f1": -0.02, "rss_100k_mb": 1536.0,
           # issue 23
           "run_vs_configured": 1.5, "run_s_23": 24.5 / 3, "run_intent_f1": 0.8846, "run_entity_f1": 0.7175,
           "run_entity_f1_within": 0.01, "run_vs_configured_100k": 1.5, "step_50k_100k": 2.5}
MET, MISSED, NOISE, NOT_MEASURED = "met", "**missed**", "noise: not resolved", "not measured"


def parse_targets(overrides: list[str]) -> dict[str, float]:
    out = dict(TARGETS)
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in TARGETS:
            raise ValueError(f"--target {item}: unknown id {key!r} (known: {', '.join(TARGETS)})")
        out[key] = float(value)
    return out


def _get(rows: list[dict], kind: str, name: str, size: int | None = None) -> dict | None:
    """The measured row of (kind, name, size); with ``size`` None, the largest size measured."""
    found = [r for r in rows if r["kind"] == kind and r["name"] == name and "skipped" not in r
             and (size is None or r["size"] == size)]
    return max(found, key=lambda r: r["size"], default=None)


def sp(s: dict | None, spec: str = ".2f", unit: str = "") -> str:
    """``median (min–max, n=N)`` of a spread."""
    if s is None:
        return "–"
    if s["n"] == 1:
        return f"{s['median']:{spec}}{unit} (n=1)"
    return f"{s['median']:{spec}}{unit} ({s['min']:{spec}}–{s['max']:{spec}}, n={s['n']})"


def _fmt(value, spec: str = "") -> str:
    return "–" if value is None else format(value, spec)


def _verdict(ok: bool) -> str:
    return MET if ok else MISSED


def targets(rows: list[dict], meta: dict) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for each target, judged on medians."""
    t, out = meta["targets"], []
    c5, n5 = _get(rows, "pipeline", "classic_intent", 5000), _get(rows, "pipeline", "nlu_ci_intent", 5000)
    speed = f"training >= {t['speed_vs_stock']:g}x faster than SklearnIntentClassifier at 5,000"
    f1 = f"weighted intent F1 within {-t['f1_vs_stock']:g} of it or better at 5,000"
    if c5 and n5:
        ratio = c5["train_s"]["median"] / n5["train_s"]["median"]
        diff = n5["intent_f1"] - c5["intent_f1"]
        out.append((speed, f"{ratio:.0f}x (median s: {sp(c5['train_s'])} vs {sp(n5['train_s'])})",
                    _verdict(ratio >= t["speed_vs_stock"])))
        out.append((f1, f"{n5['intent_f1']:.4f} vs {c5['intent_f1']:.4f} ({diff:+.4f})",
                    _verdict(diff >= t["f1_vs_stock"])))
    else:
        why = next((f"{LABELS[r['name']]} at 5,000: {r['skipped']}" for r in rows if r["size"] == 5000
                    and r["name"] in ("classic_intent", "nlu_ci_intent") and "skipped" in r),
                   "size 5,000 not in this run")
        out += [(speed, why, NOT_MEASURED), (f1, why, NOT_MEASURED)]
    intent = max((r for r in rows if r["kind"] == "pipeline" and r["name"] == "nlu_ci_intent"
                  and "skipped" not in r and r["size"] <= meta["train_full"]), key=lambda r: r["size"], default=None)
    if intent and "eval_batch_ups" in intent:
        b, e = intent["eval_batch_ups"], intent["eval_each_ups"]
        out.append((f"evaluation >= {t['eval_ups']:,.0f} utterances/s batched, intent-only pipeline "
                    f"({intent['size']:,} train)", sp(b, ",.0f", " utt/s"), _verdict(b["median"] >= t["eval_ups"])))
        ratio = b["median"] / e["median"]
        out.append((f"batched >= {t['batch_vs_each']:g}x per-message parse",
                    f"{ratio:.1f}x (per message {sp(e, ',.0f', ' utt/s')})", _verdict(ratio >= t["batch_vs_each"])))
    job = _get(rows, "job", "nlu-ci run", meta["train_full"])
    run = (f"full `nlu-ci run`, default config, all {meta['train_full']:,} training / "
           f"{meta['test_examples']:,} test examples, under {t['run_s']:g} s")
    over = f"job overhead beyond bare train + evaluate under {t['overhead_pct']:g} %"
    if job:
        out.append((run, sp(job["run_s"], ".1f", " s"), _verdict(job["run_s"]["median"] < t["run_s"])))
        o = job["overhead_pct"]
        if o["median"] >= t["overhead_pct"]:
            verdict = MISSED
        elif o["min"] <= 0:
            verdict = NOISE            # a spread that reaches zero or below cannot resolve the overhead
        else:
            verdict = MET
        out.append((over, f"median {o['median']:+.1f} %, spread {o['min']:+.1f} … {o['max']:+.1f} % over "
                          f"{o['n']} pairs (run {sp(job['run_s'], '.1f', ' s')}, bare {sp(job['bare_s'], '.1f', ' s')})",
                    verdict))
    else:
        out += [(run, "the full training set was not a ratio size of this run", NOT_MEASURED), (over, "–", NOT_MEASURED)]
    ce, ne = _get(rows, "pipeline", "classic_entities"), _get(rows, "pipeline", "nlu_ci_entities")
    if ce and ne and ce["size"] == ne["size"]:
        ratio = ce["train_s"]["median"] / ne["train_s"]["median"]
        diff = ne["entity_f1"] - ce["entity_f1"]
        out.append((f"entity training >= {t['entity_speed']:g}x faster than CRFEntityExtractor ({ne['size']:,} train)",
                    f"{ratio:.0f}x (median s: {sp(ce['train_s'])} vs {sp(ne['train_s'])})",
                    _verdict(ratio >= t["entity_speed"])))
        out.append((f"entity F1 within {-t['entity_f1']:g} of it",
                    f"{ne['entity_f1']:.4f} vs {ce['entity_f1']:.4f} ({diff:+.4f})", _verdict(diff >= t["entity_f1"])))
    big = _get(rows, "pipeline", "nlu_ci_default", 100000)
    out.append((f"peak RSS under {t['rss_100k_mb']:,.0f} MB at 100,000 training examples (default config)",
                sp(big["peak_rss_mb"], ",.0f", " MB") if big else "the default pipeline was not measured at 100,000 in this run",
                _verdict(big["peak_rss_mb"]["median"] < t["rss_100k_mb"]) if big else NOT_MEASURED))
    return out


def targets_23(rows: list[dict], meta: dict) -> list[tuple[str, str, str]]:
    """Issue 23's targets for the whole job, judged on medians."""
    t, out, full = meta["targets"], [], meta["train_full"]
    job, big, mid = (_get(rows, "job", "nlu-ci run", n) for n in (full, 100000, 50000))
    vs = f"whole `nlu-ci run` at {full:,} at most {t['run_vs_configured']:g}x the configured bare scikit-learn fit"
    if job and "ratio_configured" in job:
        r = job["ratio_configured"]
        out.append((vs, f"{sp(r, '.2f', 'x')} (run {sp(job['run_s'], '.1f', ' s')}, fit "
                        f"{sp(job['configured_s'], '.1f', ' s')})", _verdict(r["median"] <= t["run_vs_configured"])))
    else:
        out.append((vs, "not in this run", NOT_MEASURED))
    secs = f"whole `nlu-ci run` at {full:,} at most {t['run_s_23']:.2f} s (1/3 of 24.5 s)"
    f1 = f"its intent F1 >= {t['run_intent_f1']:.4f}"
    ent = f"its entity F1 within {t['run_entity_f1_within']:g} of {t['run_entity_f1']:.4f}"
    if job:
        out.append((secs, sp(job["run_s"], ".1f", " s"), _verdict(job["run_s"]["median"] <= t["run_s_23"])))
        out.append((f1, f"{job['intent_f1']:.4f}", _verdict(job["intent_f1"] >= t["run_intent_f1"])))
        e = job["entity_f1"]
        out.append((ent, _fmt(e, ".4f"), _verdict(e is not None and
                                               abs(e - t["run_entity_f1"]) <= t["run_entity_f1_within"])))
    else:
        out += [(secs, "not in this run", NOT_MEASURED), (f1, "–", NOT_MEASURED), (ent, "–", NOT_MEASURED)]
    vs100 = f"whole `nlu-ci run` at 100,000 at most {t['run_vs_configured_100k']:g}x the configured (dual) bare fit"
    if big and "ratio_configured" in big:
        r = big["ratio_configured"]
        out.append((vs100, f"{sp(r, '.2f', 'x')} (run {sp(big['run_s'], '.1f', ' s')}, fit "
                           f"{sp(big['configured_s'], '.1f', ' s')})",
                    _verdict(r["median"] <= t["run_vs_configured_100k"])))
    else:
        out.append((vs100, "not in this run", NOT_MEASURED))
    step = f"`nlu-ci run` from 50,000 to 100,000 at most {t['step_50k_100k']:g}x the time"
    if big and mid:
        x = big["run_s"]["median"] / mid["run_s"]["median"]
        out.append((step, f"{x:.2f}x ({sp(mid['run_s'], '.1f', ' s')} -> {sp(big['run_s'], '.1f', ' s')})",
                    _verdict(x <= t["step_50k_100k"])))
    else:
        out.append((step, "the job was not measured at both 50,000 and 100,000", NOT_MEASURED))
    return out


def provenance(row: dict, meta: dict) -> str:
    if row.get("kept"):
        return (f"**earlier run** (not measured by this `--only` run): {row.get('measured_at', '–')}, commit "
                f"{row.get('commit', '–')}, run {row['run_id']}")
    if row.get("run_id") == meta["run_id"]:
        return "this run"
    return f"reused: {row['measured_at']}, commit {row['commit']}, run {row['run_id']} (fingerprint matches)"


def load(row: dict) -> str:
    return f"{min(row['load']):.1f}–{max(row['load']):.1f}" if row.get("load") else "–"


def only_note(meta: dict) -> str:
    if not meta.get("only"):
        return ""
    return (f" (a `--only {meta['only']}` run: rows marked **earlier run** come from the page before it and were "
            "measured under the code they name, whether or not it still matches)")


def header(rows: list[dict], meta: dict) -> list[str]:
    measured = [r for r in rows if "skipped" not in r]
    here = sum(r["run_id"] == meta["run_id"] for r in measured)
    args = " ".join(meta["argv"]) or "(none)"
    lines = ["# nlu-ci benchmark", "",
             f"Written by one run of `make bench` (`bench/run_bench.py`, arguments: `{args}`): run `{meta['run_id']}` "
             f"at commit `{meta['commit']}` (measured code sha256 `{meta['code_hash'][:12]}`), started {meta['started']}, {meta['minutes']} min, on {meta['cpus']} CPUs "
             f"({meta['machine']}, Python {meta['python']}). {here} of {len(measured)} rows were measured in this run"
             f"{'' if here == len(measured) else '; the others were reused from the journal because the fingerprint of their code, config and data still matches, and say when and under which commit they were measured'}"
             f"{only_note(meta)}.",
             "",
             f"The machine is shared: the 1-minute load average was {meta['load_start'][0]:.2f} at the start and "
             f"{meta['load_end'][0]:.2f} at the end, and each row gives the range it saw while it ran. Each row "
             f"is up to {meta['repeats']} repeats, each in its own process (fewer when a row would pass "
             f"{meta['budget_s']:.0f} s; `n` says how many); the page shows median (min–max) and judges the "
             "targets on the median.", "",
             f"Training sizes run: {', '.join(f'{n:,}' for n in meta['sizes'])}; `nlu-ci run` vs scikit-learn at "
             f"{', '.join(f'{n:,}' for n in meta['ratio_sizes'])}."]
    if meta["not_run"]:
        lines[-1] += (f" Not run this time (sizes of the full benchmark left out by the arguments): "
                      f"{', '.join(f'{n:,}' for n in meta['not_run'])}.")
    data = (f"Data: `{meta['dataset']}`, {meta['train_full']:,} training and {meta['test_examples']:,} test "
            "examples; smaller training sets are seeded subsamples, larger ones synthetic scale-ups (entity values "
            "swapped within their type, filler words added); every model is tested on the real test set.")
    if meta["dataset"] == "hwu64":
        data += (" HWU64 (fold 1) is by X. Liu, A. Eshghi, P. Swietojanski and V. Rieser, \"Benchmarking Natural "
                 "Language Understanding Services for building Conversational Agents\", IWSDS 2019 "
                 "(xliuhw/NLU-Evaluation-Data), licensed CC BY 4.0.")
    if any(n > meta["train_full"] for n in meta["sizes"]):
        data += " The scale-ups are near-duplicates of the real set: their rows show cost, not quality."
    lines += ["", data, "",
              f"Time cap for one training of the stock pipeline: {meta['cap_s']:.0f} s; a size is skipped when a "
              "power law fitted to its smaller sizes predicts more (the reason is in the table).", "",
              "The default pipeline measured (`nlu_ci_default`, and the one `nlu-ci run` used):", "", "```yaml",
              meta["config"].strip(), "```"]
    return lines


def markdown(rows: list[dict], meta: dict, others: dict[str, list[dict]] | None = None) -> str:
    lines = header(rows, meta)
    lines += ["", "## Targets (issue 7)", "", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {name} | {measured} | {verdict} |" for name, measured, verdict in targets(rows, meta)]
    lines += ["", "## Targets (issue 23)", "", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {name} | {measured} | {verdict} |" for name, measured, verdict in targets_23(rows, meta)]
    lines += ["", "## Training and evaluation", "",
              "Train seconds, utterances/second over the test set (batched with `nlu_ci.engine.batch`, and one "
              "`Interpreter.parse` per message) and peak RSS: median (min–max, n). F1 is weighted intent F1 (as "
              "rasa_nlu's evaluate computes it) and exact-span entity F1, ECE the expected calibration error of "
              "the intent confidence (15 bins), from the repeat with the median training time.", "",
              "| pipeline | train examples | train s | eval utt/s batched | eval utt/s per message | peak RSS MB | "
              "intent F1 | entity F1 | ECE | load | measured |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in (r for r in rows if r["kind"] == "pipeline"):
        label = LABELS.get(r["name"], r["name"])
        if "skipped" in r:
            lines.append(f"| {label} | {r['size']:,} | skipped: {r['skipped']} | | | | | | | {load(r)} | this run |")
            continue
        flag = " (F1 varied between repeats)" if r.get("f1_varied") else ""
        lines.append(f"| {label}{flag} | {r['size']:,} | {sp(r['train_s'])} | {sp(r.get('eval_batch_ups'), ',.0f')} | "
                     f"{sp(r['eval_each_ups'], ',.0f')} | {sp(r['peak_rss_mb'], ',.0f')} | "
                     f"{_fmt(r['intent_f1'], '.4f')} | {_fmt(r['entity_f1'], '.4f')} | {_fmt(r['intent_ece'], '.3f')} | "
                     f"{load(r)} | {provenance(r, meta)} |")
    if any(r.get("batch_equals_each") is False for r in rows):
        lines += ["", "**Batched and per-message predictions differed in at least one row.**"]
    lines += job_sections(rows, meta)
    lines += order_section(rows, meta)
    lines += again_section(rows, others or {})
    lines += ["", "![training time, F1, evaluation speed and memory against training size](plot.png)", ""]
    return "\n".join(lines)


def job_sections(rows: list[dict], meta: dict) -> list[str]:
    jobs = [r for r in rows if r["kind"] == "job"]
    if not jobs:
        return []
    lines = ["", "## The whole job against a bare scikit-learn fit", "",
             "Wall seconds of `nlu-ci run` (default config, fresh model store, so there is no active model to "
             "evaluate as well) against a process that only fits scikit-learn's TF-IDF (word 1–2 + char 2–5 "
             "n-grams) + LinearSVC on the same training set and predicts the same test set: how close the job "
             "is to the floor. The ratio is taken per repeat (run and fit run back to back); median (min–max, n).",
             "", "The configured fit is the same TF-IDF + LinearSVC with LinearIntentClassifier's `defaults` (read "
             "from the component when the fit runs; no calibration folds): "
             f"`{json.dumps(next((r['configured'] for r in jobs if r.get('configured')), None))}`.",
             "", "| training examples | `nlu-ci run` s | scikit-learn fit s | ratio | configured fit s | ratio to it | "
             "run intent F1 | run entity F1 | scikit-learn F1 | configured F1 | load | measured |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in jobs:
        if "skipped" in r:
            lines.append(f"| {r['size']:,} | skipped: {r['skipped']} | | | | | {load(r)} | this run |")
            continue
        lines.append(f"| {r['size']:,} | {sp(r['run_s'], '.1f')} | {sp(r['sklearn_s'], '.1f')} | "
                     f"{sp(r['ratio'], '.2f', 'x')} | {sp(r.get('configured_s'), '.1f')} | "
                     f"{sp(r.get('ratio_configured'), '.2f', 'x')} | {r['intent_f1']:.4f} | "
                     f"{_fmt(r.get('entity_f1'), '.4f')} | {r['sklearn_f1']:.4f} | {_fmt(r.get('configured_f1'), '.4f')} | "
                     f"{load(r)} | {provenance(r, meta)} |")
    for r in (r for r in jobs if "overhead_pct" in r):
        lines += ["", f"### Job overhead at {r['size']:,} examples", "",
                  "`nlu-ci run` against a bare process that loads the data, trains, persists, loads and evaluates "
                  "the same config, run back to back in each repeat. A negative overhead is noise: the spread "
                  "is the resolution of this measurement.", "",
                  "| repeat | `nlu-ci run` s | bare s | overhead | 1-min load at start |", "|---:|---:|---:|---:|---:|"]
        for i, s in enumerate(r["samples"], 1):
            lines.append(f"| {i} | {s['run_s']:.2f} | {s['bare_s']:.2f} | "
                         f"{100.0 * (s['run_s'] - s['bare_s']) / s['bare_s']:+.1f} % | {s['load_start']:.2f} |")
        lines += ["", f"Stages of the median run (s): {json.dumps(r['durations'])}; outcome `{r['outcome']}`, "
                      f"intent F1 {r['intent_f1']:.4f}, entity F1 {_fmt(r['entity_f1'], '.4f')}."]
    return lines


def order_section(rows: list[dict], meta: dict) -> list[str]:
    """Entity F1 across seeded shuffles of the training file: in the order given vs the job's canonical order."""
    found = [r for r in rows if r["kind"] == "order"]
    if not found:
        return []
    lines = ["", "## Entity F1 across example orders", "",
             "The default config trained on seeded shuffles of the same training file (seeds 1..N): once in the "
             "order given (rasa_nlu's Trainer: crfsuite's passive-aggressive training depends on it) and once "
             "through the job's training (`nlu_ci.engine.training.train`, examples in canonical order).", ""]
    for r in found:
        if "skipped" in r:
            lines.append(f"{r['size']:,} examples: skipped: {r['skipped']}")
            continue
        g, j = r["as_given_entity_f1"], r["job_entity_f1"]
        lines += ["| training examples | order | entity F1 min | median | max | seeds | load | measured |",
                  "|---:|---|---:|---:|---:|---:|---:|---|",
                  f"| {r['size']:,} | as given | {g['min']:.4f} | {g['median']:.4f} | {g['max']:.4f} | {g['n']} | "
                  f"{load(r)} | {provenance(r, meta)} |",
                  f"| {r['size']:,} | job (canonical) | {j['min']:.4f} | {j['median']:.4f} | {j['max']:.4f} | {j['n']} | "
                  f"{load(r)} | {provenance(r, meta)} |", "",
                  "The job's model is the same for every order (intent and entity F1 identical across seeds): "
                  f"**{'yes' if r['job_same_every_order'] else 'no'}**.", "",
                  "| seed | as given: entity F1 | job: entity F1 | as given: intent F1 | job: intent F1 |",
                  "|---:|---:|---:|---:|---:|"]
        lines += [f"| {s['seed']} | {_fmt(s['as_given_entity_f1'], '.4f')} | {_fmt(s['job_entity_f1'], '.4f')} | "
                  f"{s['as_given_intent_f1']:.4f} | {s['job_intent_f1']:.4f} |" for s in r["samples"][0]["seeds"]]
    return lines


# (key, label) compared between two runs of the same fingerprint; spreads are judged on their min–max
AGAIN_SPREADS = {"pipeline": (("train_s", "train s"), ("eval_batch_ups", "eval utt/s batched"),
                              ("eval_each_ups", "eval utt/s per message"), ("peak_rss_mb", "peak RSS MB")),
                 "job": (("run_s", "`nlu-ci run` s"), ("sklearn_s", "scikit-learn fit s"), ("ratio", "ratio"),
                         ("bare_s", "bare train + evaluate s"))}
AGAIN_EXACT = (("intent_f1", "intent F1"), ("entity_f1", "entity F1"))
# pipelines whose F1 may differ between runs of the same code: libsvm's probability estimates (SVC with
# probability=True, inside rasa_nlu's SklearnIntentClassifier) come from an internal cross-validation on a
# random shuffle that rasa_nlu does not seed
NOT_DETERMINISTIC = {"classic_intent": "differs (rasa_nlu's SVC is not seeded)"}
WITHIN, MOVED, NO_SPREAD = "within the spread", "**moved beyond the spread**", "n=1 on a side: no spread to judge"


def again_verdict(this: dict, other: dict) -> str:
    """Two measurements of one quantity agree when their min–max ranges overlap (the noise each run saw)."""
    if this["n"] < 2 or other["n"] < 2:
        return WITHIN if this["median"] == other["median"] else NO_SPREAD
    return WITHIN if this["min"] <= other["max"] and other["min"] <= this["max"] else MOVED


def again_rows(rows: list[dict], others: dict[str, list[dict]]) -> list[tuple[str, str, str, str, str, str]]:
    """(row, quantity, this run, other run, median change, verdict) against the latest other run of each row."""
    out = []
    for r in rows:
        if "skipped" in r or not others.get(r.get("fingerprint", "")):
            continue
        o = others[r["fingerprint"]][-1]
        name = f"{LABELS.get(r['name'], r['name'])} @ {r['size']:,}"
        when = f"run {o['run_id']} ({o['measured_at']})"
        for key, label in AGAIN_SPREADS.get(r["kind"], ()):
            a, b = r.get(key), o.get(key)
            if a is None or b is None:
                continue
            change = 100.0 * (a["median"] - b["median"]) / b["median"] if b["median"] else float("nan")
            out.append((name, label, sp(a, ",.2f"), f"{sp(b, ',.2f')}, {when}", f"{change:+.1f} %", again_verdict(a, b)))
        for key, label in AGAIN_EXACT:
            a, b = r.get(key), o.get(key)
            if a is None and b is None:
                continue
            same = a == b
            out.append((name, label, _fmt(a, ".4f"), f"{_fmt(b, '.4f')}, {when}", "same" if same else
                        f"{(a or 0) - (b or 0):+.4f}", "identical" if same else
                        NOT_DETERMINISTIC.get(r["name"], "**differs**")))
    return out


def again_section(rows: list[dict], others: dict[str, list[dict]]) -> list[str]:
    """Rows of this run that the journal holds from another run of the same code, config and data."""
    table = again_rows(rows, others)
    measured = [r for r in rows if "skipped" not in r]
    lines = ["", "## The same code measured again", "",
             "Each row of this page whose fingerprint (code, config, data) the journal also holds from another run, "
             "against the latest such run: do the numbers move only by the noise each run reports? Two spreads "
             "agree when their min–max ranges overlap; a quantity measured once on a side has no spread to judge "
             "by. F1 comes from deterministic training and must be identical, except the stock pipeline's intent F1 "
             "(rasa_nlu's SVC computes its probabilities with an unseeded internal cross-validation: its F1 can "
             "vary between repeats of one run too)."]
    if not table:
        return lines + ["", f"None of the {len(measured)} rows has been measured by another run of the same "
                            "fingerprint yet (`make bench-again` measures a part of the page again)."]
    moved = sum(t[5] in (MOVED, "**differs**") for t in table)
    unjudged = sum(t[5] == NO_SPREAD for t in table)
    agree = sum(t[5] in (WITHIN, "identical") for t in table)
    unseeded = len(table) - moved - unjudged - agree
    rows_again = len({t[0] for t in table})
    lines += ["", f"{rows_again} of {len(measured)} rows measured again; {len(table)} quantities: {agree} within the "
                  f"spread or identical, {moved} moved beyond the spread or differ, {unjudged} without a spread to "
                  f"judge by, {unseeded} F1 of an unseeded pipeline that differs.", "",
              "| row | quantity | this run | other run | median change | verdict |", "|---|---|---:|---:|---:|---|"]
    lines += [f"| {' | '.join(t)} |" for t in table]
    return lines


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    colors = dict(zip(LABELS, ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"], strict=True))
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    panels = [("train_s", None, "training seconds, median (bars: min–max)", True),
              ("intent_f1", "entity_f1", "F1 (solid: weighted intent F1, dashed: entity F1)", False),
              ("eval_batch_ups", "eval_each_ups", "evaluation utterances/s (solid: batched, dashed: per message)", True),
              ("peak_rss_mb", None, "peak RSS, MB", True)]
    measured = [r for r in rows if r["kind"] == "pipeline" and "skipped" not in r]
    for ax, (key, dashed, title, logy) in zip(axes.ravel(), panels, strict=True):
        for pipeline in LABELS:
            for k, style, marker in ((key, "-", "o"), (dashed, "--", "x")):
                pts = sorted((r["size"], r[k]) for r in measured if k and r["name"] == pipeline and r.get(k) is not None)
                if not pts:
                    continue
                xs = [p[0] for p in pts]
                if isinstance(pts[0][1], dict):
                    mid = [p[1]["median"] for p in pts]
                    err = [[m - p[1]["min"] for m, p in zip(mid, pts, strict=True)],
                           [p[1]["max"] - m for m, p in zip(mid, pts, strict=True)]]
                    ax.errorbar(xs, mid, yerr=err, linestyle=style, marker=marker, color=colors[pipeline], capsize=3)
                else:
                    ax.plot(xs, [p[1] for p in pts], linestyle=style, marker=marker, color=colors[pipeline])
        ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training examples")
        ax.grid(True, which="both", alpha=0.3)
    handles = [plt.Line2D([], [], color=colors[p], marker="o", label=label) for p, label in LABELS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle("rasa_nlu stock pipeline vs nlu-ci components (one `make bench` run)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: Path, rows: list[dict], meta: dict, others: dict[str, list[dict]] | None = None) -> None:
    """results.json (this run's rows and metadata), results.md, plot.png; ``others``: fingerprint -> other runs' rows."""
    out.mkdir(parents=True, exist_ok=True)
    page = {"meta": meta, "rows": rows, "again": {fp: rs for fp, rs in (others or {}).items() if rs}}
    (out / "results.json").write_text(json.dumps(page, indent=1) + "\n", encoding="utf-8")
    (out / "results.md").write_text(markdown(rows, meta, others), encoding="utf-8")
    plot(rows, out / "plot.png")
