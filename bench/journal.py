"""Which measurements may be reused: a fingerprint of the code, config and data behind a row, and the journal.

A row is reused by a later `make bench` only when its fingerprint still matches: the sha256 of the
measurement code (bench/measure.py and every file of the nlu_ci package), the versions of the libraries
it runs, the pipeline (or config file text), and the bytes of the training and test files. A reused row
keeps the run id, commit and time it was measured under, and the page shows them.
"""
from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("rasa_nlu", "scikit-learn", "numpy", "scipy", "python-crfsuite", "sklearn-crfsuite")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def code_hash(root: Path = ROOT) -> str:
    """sha256 over the measurement code, the nlu_ci package and the library versions it runs with."""
    files = [root / "bench" / "measure.py", *sorted((root / "src" / "nlu_ci").rglob("*.py"))]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    for lib in LIBRARIES:
        try:
            version = metadata.version(lib)
        except metadata.PackageNotFoundError:
            version = "-"
        h.update(f"{lib}={version}\0".encode())
    h.update(f"python={platform.python_version()}".encode())
    return h.hexdigest()


def fingerprint(code: str, kind: str, name: str, size: int, inputs: list[Path | str]) -> str:
    """sha256 of what produced one row: code hash, kind/name/size, and each input file's bytes (or text)."""
    h = hashlib.sha256(f"{code}\0{kind}\0{name}\0{size}\0".encode())
    for item in inputs:
        h.update((_sha(item.read_bytes()) if isinstance(item, Path) else _sha(item.encode())).encode() + b"\0")
    return h.hexdigest()


def commit(root: Path = ROOT) -> str:
    """Short commit of HEAD, with ``+dirty`` when measured code or config differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "bench", "nlu_config.yml"],
                               cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


class Journal:
    """Finished rows as JSON lines; the last row with a fingerprint wins (all are kept for `others`)."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[str, dict] = {}
        self.every: list[dict] = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.rows[row["fingerprint"]] = row
                    self.every.append(row)

    def others(self, row: dict) -> list[dict]:
        """Measurements of the same fingerprint by other runs (same code, config and data), oldest first."""
        return [r for r in self.every if r["fingerprint"] == row.get("fingerprint") and r["run_id"] != row["run_id"]]

    def get(self, fp: str) -> dict | None:
        return self.rows.get(fp)

    def add(self, row: dict) -> None:
        self.rows[row["fingerprint"]] = row
        self.every.append(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
