"""``nlu-ci report [RUN]``: the review page of a run (default: the newest): prints its path, or writes it to
``--output-file``. A run recorded before review pages existed gets its page made from its report now."""
from __future__ import annotations

import argparse
from pathlib import Path

from nlu_ci.commands.options import COMMON
from nlu_ci.commands.result import Result
from nlu_ci.errors import ConfigError, DataError, NluCiError
from nlu_ci.job import save_text
from nlu_ci.registry import backends
from nlu_ci.review import page

NAME = "report"
HELP = "the review page (HTML) of a run: print its path, or write it to --output-file"
SETTINGS = COMMON


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", nargs="?", default=None,
                        help="the run: its stamp (reports/<RUN>.json in the store) or a report JSON file; "
                             "default: the newest run")
    parser.add_argument("--output-file", type=Path, default=None, help="write the page here instead")


def find_report(reports_dir: Path, run: str | None) -> Path:
    """The report JSON of ``run`` (a stamp or a file), or the newest one in ``reports_dir``."""
    if run:
        for candidate in (Path(run), reports_dir / f"{run}.json", reports_dir / run):
            if candidate.is_file() and candidate.suffix == ".json":
                return candidate
        raise ConfigError(f"report {run}: no such run in {reports_dir} (nlu-ci status lists the runs)")
    runs = sorted(reports_dir.glob("*.json")) if reports_dir.is_dir() else []
    if not runs:
        raise ConfigError(f"no runs recorded in {reports_dir} yet")
    return runs[-1]


def _write_page(report, target: Path, report_file: Path) -> Path:
    """The page of any stored run (promoted ... locked); a report it cannot show is one line, exit 2."""
    try:
        save_text(target, page.html(report))
        return target
    except NluCiError:
        raise
    except Exception as err:  # a hand-edited or foreign report: say which file, never a traceback
        raise DataError(f"{report_file}: cannot make its review page: {type(err).__name__}: "
                        f"{' '.join(str(err).split())[:200]}") from None


def main(settings, args: argparse.Namespace) -> Result:
    reports_dir = backends.build(settings).store.dir / "reports"
    report_file = find_report(reports_dir, args.run)
    report = page.read_report(report_file)
    stored = page.page_path(report_file.parent, report_file.stem)
    if stored.is_file() and not args.output_file:
        target = stored
    else:
        target = _write_page(report, args.output_file or stored, report_file)
    data = {"run": report_file.stem, "report": str(report_file), "page": str(target), "outcome": report.outcome}
    return Result(data, str(target))
