"""Turn benchmark rows into docs/bench/results.{json,md} and plot.png (used by run_bench.py)."""
from __future__ import annotations

import json
from pathlib import Path

LABELS = {
    "classic_intent": "rasa_nlu: CountVectorsFeaturizer + SklearnIntentClassifier",
    "classic_entities": "rasa_nlu: WhitespaceTokenizer + CRFEntityExtractor",
    "nlu_ci_intent": "nlu-ci: LinearIntentClassifier",
    "nlu_ci_entities": "nlu-ci: WhitespaceTokenizer + LeanCRFEntityExtractor",
    "nlu_ci_default": "nlu-ci: default nlu_config.yml (intents + entities)",
}


def _get(rows: list[dict], pipeline: str, size: int) -> dict | None:
    for r in rows:
        if r["pipeline"] == pipeline and r["size"] == size and "skipped" not in r:
            return r
    return None


def _fmt(value, spec: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return format(value, spec)


def targets(rows: list[dict], over: dict) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each target of issue 7; met None when it could not be measured."""
    out = []
    c5, n5 = _get(rows, "classic_intent", 5000), _get(rows, "nlu_ci_intent", 5000)
    if c5 and n5:
        speed = c5["train_s"] / n5["train_s"]
        df1 = n5["intent_f1"] - c5["intent_f1"]
        out.append(("training >= 20x faster than SklearnIntentClassifier at 5k", f"{speed:.0f}x "
                    f"({c5['train_s']:.1f} s vs {n5['train_s']:.2f} s)", speed >= 20))
        out.append(("weighted F1 within 0.01 of it or better at 5k",
                    f"{n5['intent_f1']:.4f} vs {c5['intent_f1']:.4f} ({df1:+.4f})", df1 >= -0.01))
    else:
        out.append(("training >= 20x faster than SklearnIntentClassifier at 5k", "not measured", None))
    full = max((r for r in rows if r["pipeline"] == "nlu_ci_intent" and r["size"] <= 10000 and "skipped" not in r),
               key=lambda r: r["size"], default=None)
    if full:
        ratio = full["eval_batch_ups"] / full["eval_each_ups"]
        out.append((f"evaluation >= 5,000 utterances/s, intent-only pipeline ({full['size']} train)",
                    f"{full['eval_batch_ups']:,.0f} utt/s batched", full["eval_batch_ups"] >= 5000))
        out.append(("batched >= 5x per-message parse", f"{ratio:.1f}x ({full['eval_each_ups']:,.0f} utt/s per message)",
                    ratio >= 5))
    if over:
        out.append(("full `nlu-ci run`, default config, HWU64 (9,960 / 1,076) under 60 s",
                    f"{over['best_run_s']:.1f} s", over["best_run_s"] < 60))
        out.append(("job overhead beyond bare train + evaluate under 5%",
                    f"{over['overhead_pct']:+.1f}% ({over['best_run_s']:.1f} s vs {over['best_bare_s']:.1f} s)",
                    over["overhead_pct"] < 5))
    ce, ne = _get(rows, "classic_entities", 9960), _get(rows, "nlu_ci_entities", 9960)
    if ce and ne:
        speed = ce["train_s"] / ne["train_s"]
        df1 = ne["entity_f1"] - ce["entity_f1"]
        out.append(("entity training >= 5x faster than CRFEntityExtractor on HWU64",
                    f"{speed:.0f}x ({ce['train_s']:.1f} s vs {ne['train_s']:.1f} s)", speed >= 5))
        out.append(("entity F1 within 0.02 of it", f"{ne['entity_f1']:.4f} vs {ce['entity_f1']:.4f} ({df1:+.4f})",
                    df1 >= -0.02))
    big = _get(rows, "nlu_ci_default", 100000)
    out.append(("peak RSS under 1.5 GB at 100k training examples (default config)",
                f"{big['peak_rss_mb']:,.0f} MB" if big else "not measured",
                big["peak_rss_mb"] < 1536 if big else None))
    return out


def markdown(rows: list[dict], over: dict, meta: dict) -> str:
    lines = ["# nlu-ci benchmark", "",
             f"Run {meta['started']} on this machine ({meta['cpus']} CPUs, Python {meta['python']}), "
             f"{meta['minutes']} min, by `make bench` (`bench/run_bench.py`). Each row is its own process; rows "
             "marked † were measured by an earlier, interrupted run of the same command and reused from its "
             "journal (`var/bench/rows.jsonl`). The machine is shared with other work (other test suites ran "
             "at the same time), so absolute timings carry noise and are pessimistic "
             f"(load average at the end: {', '.join(map(str, meta['load_avg_at_end']))}).", "",
             "Data: **HWU64** (fold 1) by X. Liu, A. Eshghi, P. Swietojanski and V. Rieser, \"Benchmarking Natural "
             "Language Understanding Services for building Conversational Agents\", IWSDS 2019 "
             "(xliuhw/NLU-Evaluation-Data), licensed CC BY 4.0. Training sets are seeded subsamples of its "
             "9,960 training examples; 25k-100k are synthetic scale-ups of them (entity values swapped within "
             "their type, filler words added). Every model is tested on HWU64's real 1,076 test examples.", "",
             f"Time cap for one training of the stock pipeline: **{meta['cap_s']:.0f} s**; a size is skipped when "
             "a power law fitted to the smaller sizes predicts more than that (the reason is in the table).", "",
             "The default pipeline measured (`nlu_ci_default`, and the one `nlu-ci run` used):", "", "```yaml",
             meta["config"].strip(), "```", "",
             "## Targets (issue 7)", "", "| target | measured | met |", "|---|---|---|"]
    for name, measured, met in targets(rows, over):
        lines.append(f"| {name} | {measured} | {'–' if met is None else ('yes' if met else '**no**')} |")
    lines += ["", "## Training and evaluation", "",
              "F1 is weighted intent F1 (as rasa_nlu's evaluate computes it) and exact-span entity F1; ECE is the "
              "expected calibration error of the intent confidence (15 bins); eval is utterances/second over "
              "the test set, batched (`nlu_ci.engine.batch`) and one `Interpreter.parse` per message.", "",
              "| pipeline | train examples | train s | eval utt/s batched | eval utt/s per message | "
              "peak RSS MB | intent F1 | entity F1 | ECE |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        label = LABELS.get(r["pipeline"], r["pipeline"])
        if "skipped" in r:
            lines.append(f"| {label} | {r['size']:,} | skipped: {r['skipped']} | | | | | | |")
            continue
        mark = " †" if r.get("reused") else ""
        lines.append(f"| {label}{mark} | {r['size']:,} | {r['train_s']:.2f} | {_fmt(r.get('eval_batch_ups'), ',.0f')} | "
                     f"{_fmt(r.get('eval_each_ups'), ',.0f')} | {r['peak_rss_mb']:,.0f} | {_fmt(r['intent_f1'], '.4f')} | "
                     f"{_fmt(r.get('entity_f1'), '.4f')} | {_fmt(r.get('intent_ece'), '.3f')} |")
    if any(r.get("batch_equals_each") is False for r in rows):
        lines += ["", "**Batched and per-message predictions differed in at least one row.**"]
    if over:
        lines += ["", "## Job overhead", "",
                  "`nlu-ci run` with the default `nlu_config.yml` on the full HWU64 split (fresh model store, so "
                  "there is no active model to evaluate as well), against a bare process that only loads the "
                  "data, trains, persists, loads and evaluates the same config. Best of "
                  f"{len(over['run_s'])} each (all: run {over['run_s']} s, bare {over['bare_s']} s).", "",
                  "| | wall s |", "|---|---:|", f"| `nlu-ci run` | {over['best_run_s']:.2f} |",
                  f"| bare train + evaluate | {over['best_bare_s']:.2f} |",
                  f"| overhead | {over['overhead_pct']:+.1f}% |", "",
                  f"Stages of the run (s): {json.dumps(over['durations'])}; outcome `{over['outcome']}`, "
                  f"intent F1 {over['intent_f1']:.4f}, entity F1 {_fmt(over['entity_f1'], '.4f')}."]
    lines += ["", "![training time, F1, evaluation speed and memory against training size](plot.png)", ""]
    return "\n".join(lines)


def _series(rows: list[dict], pipeline: str, key: str) -> list[tuple[int, float]]:
    return sorted((r["size"], r[key]) for r in rows
                  if r["pipeline"] == pipeline and "skipped" not in r and r.get(key) is not None)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = dict(zip(LABELS, ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"], strict=True))
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    panels = [("train_s", None, "training seconds", True),
              ("intent_f1", "entity_f1", "F1 (solid: weighted intent F1, dashed: entity F1)", False),
              ("eval_batch_ups", "eval_each_ups", "evaluation utterances/s (solid: batched, dashed: per message)", True),
              ("peak_rss_mb", None, "peak RSS, MB", True)]
    for ax, (key, dashed, title, logy) in zip(axes.ravel(), panels, strict=True):
        for pipeline in LABELS:
            for k, style, marker in ((key, "-", "o"), (dashed, "--", "x")):
                pts = _series(rows, pipeline, k) if k else []
                if pts:
                    ax.plot(*zip(*pts, strict=True), linestyle=style, marker=marker, color=colors[pipeline])
        ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training examples")
        ax.grid(True, which="both", alpha=0.3)
    handles = [plt.Line2D([], [], color=colors[p], marker="o", label=label) for p, label in LABELS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle("rasa_nlu stock pipeline vs nlu-ci components on HWU64 (CC BY 4.0) and synthetic scale-ups")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: Path, rows: list[dict], over: dict, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows, "overhead": over}, indent=1) + "\n")
    (out / "results.md").write_text(markdown(rows, over, meta))
    plot(rows, out / "plot.png")
