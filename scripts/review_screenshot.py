#!/usr/bin/env python3
"""Make docs/review-page.png: a real review page, rendered by headless chromium.

Two real runs on the bundled sample data in a temporary store (the first promotes; the second trains on a copy
whose training labels are 60 % shuffled and is rejected), then a full-page screenshot of the second run's page.
Needs `make install` and `make install-system` (Debian's chromium; playwright drives it, no browser download).

    .venv/bin/python scripts/review_screenshot.py [--output docs/review-page.png] [--chromium /usr/bin/chromium]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "nlu.json"


def degraded(src: Path, dst: Path, share: float = 0.6, seed: int = 0) -> Path:
    """``src`` with the intent labels of ``share`` of the hash split's TRAINING examples shuffled."""
    from nlu_ci.data.dataset import hash_unit

    data = json.loads(src.read_text(encoding="utf-8"))
    examples = data["rasa_nlu_data"]["common_examples"]
    rng = random.Random(seed)
    train = [i for i, e in enumerate(examples) if hash_unit(e["text"], "nlu-ci") >= 0.2]
    chosen = rng.sample(train, int(len(train) * share))
    labels = [examples[i]["intent"] for i in chosen]
    rng.shuffle(labels)
    for i, label in zip(chosen, labels, strict=True):
        examples[i]["intent"] = label
    dst.write_text(json.dumps(data), encoding="utf-8")
    return dst


def nlu_ci(args: list[str], models: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NLU_CI_", "RASA_", "PUSHGATEWAY_", "SLACK_"))}
    env.update(NLU_CI_MODELS_DIR=str(models), NLU_CI_KUBERNETES="off", NLU_CI_LOG_LEVEL="WARNING")
    proc = subprocess.run([sys.executable, "-m", "nlu_ci.cli", *args, "--json"], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"nlu-ci {' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)


def screenshot(page: Path, output: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": 1150, "height": 900}, device_scale_factor=1)
            tab.goto(page.as_uri(), wait_until="load")
            output.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(output), full_page=True)
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "review-page.png")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nlu-ci-review-") as tmp:
        models = Path(tmp) / "models"
        nlu_ci(["run", "--data", str(SAMPLE)], models)
        report = nlu_ci(["run", "--data", str(degraded(SAMPLE, Path(tmp) / "worse.json"))], models)
        page = Path(report["review_page"]["path"])
        screenshot(page, args.output, args.chromium)
    print(f"{args.output} (outcome {report['outcome']}, page {page.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
