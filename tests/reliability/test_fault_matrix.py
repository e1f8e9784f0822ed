"""The fault matrix: each case is one real ``nlu-ci run`` (a subprocess, real rasa_nlu training) with one fault,
and every case checks the same promises:

- the exit code and the outcome (documented in the README), the one-line error naming what failed;
- the active model is unchanged (or, when the case expects a promotion, the new candidate) and intact:
  its files match the checksums of nlu_ci.json and rasa_nlu loads it and predicts;
- the run is recorded: last history line and last_report.json (and ``--report``) with the same outcome/error;
- nothing half-written is left in ``.incoming``;
- the metrics reached the real Pushgateway with this outcome (where one is configured and up);
- no secret (platform token, Pushgateway password, Slack webhook) in any byte the run printed or wrote.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import procs

from .helpers import (
    ROOT,
    TOKEN,
    FakePlatform,
    Harness,
    SlackBodies,
    SlackReceiver,
    check_store_invariants,
    hanging_port,
    held_out,
    load_sample,
    refusing_port,
    write_data,
)

EX = load_sample()["rasa_nlu_data"]["common_examples"]


@dataclass
class Case:
    code: int
    outcome: str
    error: str | None                       # a piece of the one-line error (None: the run has no error)
    setup: Callable[..., dict] | None = None  # (harness, ctx) -> extra environment; may change files
    platform: bool = False                  # run against the fake Rasa Platform (seeded with the active model)
    faults: tuple = ()                      # (endpoint, kind, kwargs) injected into the fake platform
    seeded: bool = True                     # the store has an active model before the run
    recorded: bool = True                   # the run can write history/report into the store
    pushed: bool = True                     # metrics reach the Pushgateway
    after: Callable[..., None] | None = None  # extra checks: (harness, ctx, report)


class Ctx(dict):
    """Per-case scratch: ``platform`` (the fake, if any), ``tmp`` (a folder for the case's inputs)."""

    __getattr__ = dict.__getitem__


# ---------------------------------------------------------------- setups

def data_file(make: Callable[[Path], Path]) -> Callable[..., dict]:
    def setup(h: Harness, ctx: Ctx) -> dict:
        return {"NLU_CI_DATA": str(make(ctx.tmp))}
    return setup


def text(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        p = tmp / name
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
        return p
    return make


def examples(exs: list[dict]) -> Callable[[Path], Path]:
    return lambda tmp: write_data(tmp / "data.json", exs)


def config(content: str) -> Callable[..., dict]:
    def setup(h: Harness, ctx: Ctx) -> dict:
        p = ctx.tmp / "nlu_config.yml"
        p.write_text(content)
        return {"NLU_CI_CONFIG": str(p)}
    return setup


def policy(content: str, must_pass: str | None = None) -> Callable[..., dict]:
    def setup(h: Harness, ctx: Ctx) -> dict:
        p = ctx.tmp / "policy.yml"
        p.write_text(content)
        if must_pass is not None:
            (ctx.tmp / "must_pass.yml").write_text(must_pass)
        return {"NLU_CI_POLICY": str(p)}
    return setup


def env(**values: str) -> Callable[..., dict]:
    return lambda h, ctx: dict(values)


def damage_active(how: str) -> Callable[..., dict]:
    def setup(h: Harness, ctx: Ctx) -> dict:
        active = h.store / h.active()
        ctx["damaged"] = active.name  # the suite damaged it on purpose: it may stay a partial folder
        files = sorted(p for p in active.rglob("*") if p.is_file() and p.name != "nlu_ci.json")
        victim = next(p for p in files if p.suffix == ".pkl") if any(p.suffix == ".pkl" for p in files) else files[0]
        ctx["victim"] = victim
        if how == "corrupt":
            data = bytearray(victim.read_bytes())
            data[len(data) // 2] ^= 0xFF
            victim.write_bytes(bytes(data))
        elif how == "missing":
            victim.unlink()
        elif how == "no metadata":
            (active / "nlu_ci.json").unlink()
        elif how == "bad metadata":
            (active / "nlu_ci.json").write_text('{"files": {')
        elif how == "dangling":
            (h.store / "ACTIVE").write_text("model_19990101-000000\n")
        return {}
    return setup


def pushgateway_down(h: Harness, ctx: Ctx) -> dict:
    return {"PUSHGATEWAY_URL": f"http://127.0.0.1:{ctx.exits.enter_context(refusing_port())}"}


def pushgateway_hangs(h: Harness, ctx: Ctx) -> dict:
    """A port that accepts connections (kernel backlog) and never answers: the push must time out, not hang."""
    return {"PUSHGATEWAY_URL": f"http://127.0.0.1:{ctx.exits.enter_context(hanging_port())}"}


def slack_at(status: int | None, delay: float = 0.0) -> Callable[..., dict]:
    def setup(h: Harness, ctx: Ctx) -> dict:
        if status is None:  # nothing listens there
            url = f"http://127.0.0.1:{ctx.exits.enter_context(refusing_port())}/services/T0TEST/B0TEST/xoxsecretwebhook42"
            h.slack_url = ctx["slack_url"] = url
        else:
            ctx["slack"].responses.extend([(status, "internal_error" if status >= 300 else "ok", delay, {})] * 2)
        return {}
    return setup


# ---------------------------------------------------------------- extra checks

def active_unusable(h: Harness, ctx: Ctx, report: dict) -> None:
    """The damaged active model is reported (warning + active_unusable) and the run is judged like a
    bootstrap: the candidate, checked on its own, replaces it; the damaged folder is kept for inspection."""
    assert any("unusable" in w or "metadata" in w for w in report["warnings"]), report["warnings"]
    assert report["decision"]["promote"] is True
    assert "no active model" in report["decision"]["reason"], report["decision"]["reason"]
    assert report["active"] is None


def platform_tag_unchanged(h: Harness, ctx: Ctx, report: dict) -> None:
    if ctx.platform.running:
        assert ctx.platform.tagged() == [ctx.before], ctx.platform.tagged()


def platform_promoted(uploads: int = 1) -> Callable[..., None]:
    def check(h: Harness, ctx: Ctx, report: dict) -> None:
        candidate = report["candidate"]["model"]
        assert ctx.platform.tagged() == [report["platform"]["uploaded"]], (ctx.platform.tagged(), report["platform"])
        assert report["platform"]["uploaded"] == candidate
        assert ctx.platform.uploads == [candidate] * uploads, ctx.platform.uploads  # never uploaded twice
    return check


def one_upload(statuses: list[int]) -> Callable[..., None]:
    """The first attempt timed out on the client's side but the server went on with it: after the server has
    served every attempt to its end, the platform holds the model once (the other attempt was refused with
    409, the name being taken), the tag is on it, and the upload answers were ``statuses`` in order."""
    def check(h: Harness, ctx: Ctx, report: dict) -> None:
        candidate = report["candidate"]["model"]
        ctx.platform.settle()
        assert ctx.platform.uploads == [candidate], ctx.platform.uploads
        assert [r["status"] for r in ctx.platform.requests if r["endpoint"] == "upload"] == statuses
        assert ctx.platform.tagged() == [candidate] and report["platform"]["uploaded"] == candidate
    return check


def stores_slowly(seconds: float) -> Callable[..., dict]:
    def setup(h: Harness, ctx: Ctx) -> dict:
        ctx.platform.store_delay = seconds  # the name is taken at once, the model listed only when stored
        return {}
    return setup


def retried(endpoint: str, times: int, needle: str | None = None) -> Callable[..., None]:
    def check(h: Harness, ctx: Ctx, report: dict) -> None:
        assert ctx.platform.count(endpoint) == times, [r for r in ctx.platform.requests if r["endpoint"] == endpoint]
        if needle:
            assert needle in h.runs[-1].stderr, h.runs[-1].stderr[-2000:]
    return check


def both(*checks: Callable[..., None]) -> Callable[..., None]:
    def check(h, ctx, report):
        for c in checks:
            c(h, ctx, report)
    return check


def metrics_not_pushed(h: Harness, ctx: Ctx, report: dict) -> None:
    assert report["metrics"]["pushed"] is False and "cannot push metrics" in report["metrics"]["error"]
    prom = (h.store / "metrics.prom").read_text()
    assert f'nlu_ci_run_outcome{{outcome="{report["outcome"]}"}} 1.0' in prom, prom  # the textfile still has it


def _promotion_recorded(h: Harness, report: dict) -> None:
    """--strict-metrics fails the run (exit 1, error set) after the promotion (publishing is the last stage); the
    outcome stays promoted (a promotion that happened is never reported as not done), the history has it."""
    assert report["decision"]["promote"] is True
    history = [json.loads(line) for line in (h.store / "history.jsonl").read_text().splitlines()]
    assert history[-2]["event"] == "promotion" and history[-2]["model"] == report["candidate"]["model"]


def slack_failed(needle: str) -> Callable[..., None]:
    def check(h: Harness, ctx: Ctx, report: dict) -> None:
        assert report["notification"]["sent"] is False and needle in report["notification"]["error"], \
            report.get("notification")
    return check


def finished_within(seconds: float) -> Callable[..., None]:
    def check(h: Harness, ctx: Ctx, report: dict) -> None:
        assert h.runs[-1].seconds < seconds, h.runs[-1].seconds
    return check


def slack_sent(h: Harness, ctx: Ctx, report: dict) -> None:
    assert report["notification"] == {"sent": True, "error": None}, report.get("notification")


# ---------------------------------------------------------------- the matrix

P = dict(platform=True)
PLATFORM_CASES = {
    "platform down": Case(1, "failed", "cannot connect", setup=lambda h, ctx: ctx.platform.stop() or {}, **P),
    # 500 is final (not retried: the platform client retries 429, 502, 503, 504 and connection errors)
    "data 500": Case(1, "failed", "/api/projects/{p}/data.json: HTTP 500", faults=(("data", 500, {"times": None}),),
                     after=retried("data", 1), **P),
    "data 502 every time": Case(1, "failed", "gave up after 3 attempts", faults=(("data", 502, {"times": None}),),
                                after=retried("data", 3, "retrying"), **P),
    "data 503 then ok": Case(0, "promoted", None, faults=(("data", 503, {}),),
                             after=both(retried("data", 2, "HTTP 503"), platform_promoted()), **P),
    "data 429 Retry-After then ok": Case(0, "promoted", None, faults=(("data", 429, {"retry_after": "1"}),),
                                         after=both(retried("data", 2, "Retry-After 1s"), platform_promoted()), **P),
    "data read timeout": Case(1, "failed", "read timeout after 1s",
                              faults=(("data", "timeout", {"times": None, "seconds": 2.5}),), **P),
    "data 401": Case(1, "failed", "refused the API token", faults=(("data", 401, {}),),
                     after=retried("data", 1), **P),
    "wrong token": Case(1, "failed", "refused the API token",
                        setup=lambda h, ctx: (h.secrets / "token").write_text("tok-wrong-0000\n") and {}, **P),
    "data 404": Case(1, "failed", "HTTP 404", faults=(("data", 404, {}),), **P),
    "data malformed JSON": Case(1, "failed", "malformed JSON", faults=(("data", "malformed", {}),), **P),
    "data wrong content type": Case(1, "failed", "content type 'text/html'", faults=(("data", "content_type", {}),),
                                    **P),
    "data connection dropped": Case(1, "failed", "gave up after 3 attempts",
                                    faults=(("data", "down", {"times": None}),), **P),
    "list 500": Case(1, "failed", "models/nlu: HTTP 500", faults=(("list", 500, {"times": None}),),
                     after=platform_tag_unchanged, **P),
    "list malformed JSON": Case(1, "failed", "malformed JSON", faults=(("list", "malformed", {}),), **P),
    "list wrong content type": Case(1, "failed", "expected JSON, got content type 'text/html'",
                                    faults=(("list", "content_type", {}),), **P),
    "upload 500": Case(1, "failed", "/api/projects/{p}/models/nlu: HTTP 500",
                       faults=(("upload", 500, {"times": None}),), after=platform_tag_unchanged, **P),
    "upload 503 then ok": Case(0, "promoted", None, faults=(("upload", 503, {}),), after=platform_promoted(), **P),
    "upload 429 Retry-After then ok": Case(0, "promoted", None, faults=(("upload", 429, {"retry_after": "1"}),),
                                           after=platform_promoted(), **P),
    "upload answer lost": Case(0, "promoted", None, faults=(("upload", "lost", {}),), after=platform_promoted(), **P),
    "upload answer truncated": Case(0, "promoted", None, faults=(("upload", "cut", {}),),
                                    after=platform_promoted(), **P),
    "upload read timeout once": Case(0, "promoted", None, faults=(("upload", "timeout", {"seconds": 2.5}),),
                                     after=one_upload([409, 201]), **P),
    "upload stored after the client gave up": Case(0, "promoted", None, setup=stores_slowly(2.5),
                                                   after=one_upload([201, 409]), **P),
    "upload 401": Case(1, "failed", "refused the API token", faults=(("upload", 401, {}),),
                       after=platform_tag_unchanged, **P),
    "tag 500": Case(1, "failed", "tags/active: HTTP 500", faults=(("tag", 500, {"times": None}),),
                    after=platform_tag_unchanged, **P),
    "tag 503 then ok": Case(0, "promoted", None, faults=(("tag", 503, {}),), after=platform_promoted(), **P),
    "evaluation PUT 404": Case(1, "failed", "HTTP 404", faults=(("eval_put", 404, {}),),
                               setup=env(NLU_CI_EVALUATION="platform"), after=platform_tag_unchanged, **P),
    "evaluation GET 500": Case(1, "failed", "HTTP 500", faults=(("eval_get", 500, {"times": None}),),
                               setup=env(NLU_CI_EVALUATION="platform"), after=platform_tag_unchanged, **P),
    "evaluation GET malformed": Case(1, "failed", "malformed JSON", faults=(("eval_get", "malformed", {}),),
                                     setup=env(NLU_CI_EVALUATION="platform"), after=platform_tag_unchanged, **P),
    "evaluation GET read timeout": Case(1, "failed", "read timeout",
                                        faults=(("eval_get", "timeout", {"times": None, "seconds": 2.5}),),
                                        setup=env(NLU_CI_EVALUATION="platform"), after=platform_tag_unchanged, **P),
}

_deny = [e["intent"] for e in EX].index("deny")
DATA_CASES = {
    "data file missing": Case(2, "failed", "not found", setup=data_file(lambda t: t / "nope.json")),
    "data folder empty": Case(2, "failed", "no training data files",
                              setup=data_file(lambda t: (t / "empty").mkdir() or t / "empty")),
    "data empty file": Case(2, "failed", "file is empty", setup=data_file(text("data.json", ""))),
    "data not UTF-8": Case(2, "failed", "not UTF-8", setup=data_file(text("data.json", b"\xff\xfe\x00garbage"))),
    "data malformed JSON": Case(2, "failed", "malformed JSON at line 2",
                                setup=data_file(text("data.json", '{"rasa_nlu_data": {"common_examples": [\n{"a",}]}}'))),
    "data not Rasa JSON": Case(2, "failed", "rasa_nlu_data", setup=data_file(text("data.json", '{"hello": 1}'))),
    "data markdown without intents": Case(2, "failed", "data.md", setup=data_file(text("data.md", "hello\n- hi\n"))),
    "data no examples": Case(2, "failed", "no training examples", setup=data_file(examples([]))),
    "data one intent": Case(2, "failed", "at least 2 intents",
                            setup=data_file(examples([e for e in EX if e["intent"] == "greet"]))),
    "data too few per intent": Case(2, "failed", "too few: deny (1)", setup=data_file(examples(
        [e for e in EX if e["intent"] != "deny"] + [EX[_deny]]))),
    # one bad span is repaired and listed; more than 1 % of the examples: refused (README "Training data")
    "data entity cuts a word": Case(2, "failed", "inside a word", setup=data_file(examples(EX + [
        {"text": f"large pizza please {i}", "intent": "order_pizza",
         "entities": [{"start": 0, "end": 4, "value": "large", "entity": "size"}]} for i in range(5)]))),
    "data entity out of range": Case(2, "failed", "offsets 0:9", setup=data_file(examples(EX + [
        {"text": f"hi {i}", "intent": "greet", "entities": [{"start": 0, "end": 9, "value": "hi", "entity": "x"}]}
        for i in range(5)]))),
}

CONFIG_CASES = {
    "config unknown component": Case(2, "failed", "unknown component 'NoSuchClassifier'", setup=config(
        "language: en\npipeline:\n  - name: WhitespaceTokenizer\n  - name: NoSuchClassifier\n")),
    "config invalid YAML": Case(2, "failed", "invalid YAML", setup=config("language: en\npipeline: [\n")),
    "config missing": Case(2, "failed", "pipeline config not found", setup=env(NLU_CI_CONFIG="/nonexistent/cfg.yml")),
    "policy value out of range": Case(2, "failed", "'min_intent_f1' must be in", setup=policy("min_intent_f1: 2\n")),
    "policy unknown key": Case(2, "failed", "policy.yml", setup=policy("min_f1_typo: 0.5\n")),
    "policy invalid YAML": Case(2, "failed", "invalid YAML", setup=policy("min_intent_f1: [\n")),
    "policy must_pass missing": Case(2, "failed", "not found", setup=policy("must_pass: must_pass.yml\n")),
    "policy must_pass malformed": Case(2, "failed", "must_pass.yml",
                                       setup=policy("must_pass: must_pass.yml\n", "- text: hi\n")),
    "setting test fraction": Case(2, "failed", "--test-fraction", setup=env(NLU_CI_TEST_FRACTION="1.5"),
                                  recorded=False, pushed=False),
    "setting platform host scheme": Case(2, "failed", "must start with http", setup=env(
        RASA_PLATFORM_HOST="platform.example:8080"), recorded=False, pushed=False),
}

STORE_CASES = {
    "active model file corrupted": Case(0, "promoted", None, setup=damage_active("corrupt"), after=active_unusable),
    "active model file missing": Case(0, "promoted", None, setup=damage_active("missing"), after=active_unusable),
    "active model metadata missing": Case(0, "promoted", None, setup=damage_active("no metadata"),
                                          after=active_unusable),
    "active model metadata corrupt": Case(0, "promoted", None, setup=damage_active("bad metadata"),
                                          after=active_unusable),
    "ACTIVE names a missing model": Case(0, "promoted", None, setup=damage_active("dangling"), after=active_unusable),
}

OBS_CASES = {
    "pushgateway down": Case(0, "promoted", None, setup=pushgateway_down, pushed=False, after=metrics_not_pushed),
    "pushgateway down strict": Case(1, "promoted", "cannot push metrics", setup=lambda h, ctx: dict(
        pushgateway_down(h, ctx), NLU_CI_STRICT_METRICS="true"), pushed=False,
        after=lambda h, ctx, report: _promotion_recorded(h, report)),
    "pushgateway hangs": Case(0, "promoted", None, setup=pushgateway_hangs, pushed=False,
                              after=both(metrics_not_pushed, finished_within(30))),
    "slack hangs": Case(0, "promoted", None, setup=slack_at(200, delay=4.0),
                        after=both(slack_failed("timed out"), finished_within(30))),
    "slack down": Case(0, "promoted", None, setup=slack_at(None), after=slack_failed("unreachable")),
    "slack 500": Case(0, "promoted", None, setup=slack_at(500), after=slack_failed("HTTP 500")),
    "all good (control)": Case(0, "promoted", None, after=slack_sent),
}

ALL = {**{f"platform: {k}": v for k, v in PLATFORM_CASES.items()}, **{f"data: {k}": v for k, v in DATA_CASES.items()},
       **{f"config: {k}": v for k, v in CONFIG_CASES.items()}, **{f"store: {k}": v for k, v in STORE_CASES.items()},
       **{f"observability: {k}": v for k, v in OBS_CASES.items()}}


def test_the_matrix_is_big_enough():
    assert len(ALL) >= 30


def new_platform(workdir: Path, project: str) -> FakePlatform:
    data = load_sample()
    workdir.mkdir(parents=True)
    platform = FakePlatform(token=TOKEN, project=project, data=data, workdir=workdir,
                            held_out=held_out(data["rasa_nlu_data"]["common_examples"]))
    return platform.start()


@dataclass
class Done:
    h: Harness
    ctx: Ctx
    run: object
    slack: SlackReceiver


def run_case(name: str, base: Path, pushgateway, seeded_template: Path, cases: dict | None = None) -> Done:
    """Set the case up and run it (no assertions here: they are in ``test_fault``). Thread-safe: every case
    has its own store, project (Pushgateway group), fake platform and Slack receiver."""
    case = (cases or ALL)[name]
    project = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]
    slack = SlackReceiver().start()
    h = Harness(base, project, pushgateway=pushgateway, slack_url=slack.url)
    h.received.append(SlackBodies(slack))
    if case.seeded:
        shutil.copytree(seeded_template, h.store)
    ctx = Ctx(tmp=base / "inputs", slack=slack, platform=None, before=h.active(), exits=contextlib.ExitStack())
    ctx.tmp.mkdir()
    extra: dict = {}
    if case.platform:
        fake = ctx["platform"] = new_platform(base / "platform", project)
        h.extra_scan.append(fake.workdir)
        h.received.append(fake.requests)
        if ctx.before:
            fake.add_model(h.store / ctx.before, ctx.before, tags=("active",))
        for endpoint, kind, kw in case.faults:
            fake.inject(endpoint, kind, **kw)
        extra["RASA_PLATFORM_HOST"] = fake.url
    if case.setup:
        extra.update(case.setup(h, ctx) or {})
    history = h.store / "history.jsonl"
    ctx["history_lines"] = len(history.read_text().splitlines()) if history.exists() else 0
    return Done(h, ctx, h.run(["run", "--json"], **extra), slack)


@pytest.fixture(scope="module")
def matrix(request, tmp_path_factory, shared_pushgateway, seeded_template):
    yield from run_matrix(request, tmp_path_factory, shared_pushgateway, seeded_template, ALL)


def run_matrix(request, tmp_path_factory, pushgateway, seeded_template, cases: dict):
    """Runs every selected case up front, ``NLU_CI_RELIABILITY_JOBS`` (default 2) at a time: the runs are
    separate processes on separate stores, so two cores halve the wall time; ``test_fault`` then checks each.
    A generator for a module-scoped fixture (other modules run their own ``cases`` with it)."""
    selected = [item.callspec.params["name"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_fault" and hasattr(item, "callspec")
                and getattr(item, "module", None) is request.module]  # tests/platform has a test_fault too
    jobs = int(os.environ.get("NLU_CI_RELIABILITY_JOBS", "2"))
    bases = {name: tmp_path_factory.mktemp("case") for name in selected}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {name: pool.submit(run_case, name, bases[name], pushgateway, seeded_template, cases)
                   for name in selected}
        done = {}
        for name, future in futures.items():
            try:
                done[name] = future.result()
            except Exception as err:  # noqa: BLE001 - reported by that case's test
                done[name] = err
    yield done
    for d in done.values():
        if isinstance(d, Done):
            d.slack.stop()
            d.ctx.exits.close()
            if d.ctx.platform is not None:
                d.ctx.platform.stop()


@pytest.mark.parametrize("name", list(ALL))
def test_fault(name, matrix):
    check_fault(name, ALL[name], matrix[name])


def check_fault(name: str, case: Case, done) -> None:
    """Every promise of the module docstring for one case that ``run_case`` ran."""
    if isinstance(done, Exception):
        raise done
    h, ctx, r, slack = done.h, done.ctx, done.run, done.slack
    before = ctx.before
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.code == case.code, r.output[-3000:]
    report = r.report if r.report is not None else {}
    assert report.get("exit_code", r.code) == case.code

    if case.recorded:
        assert report["outcome"] == case.outcome, report.get("error")
        check_run_recorded(h, report)
        error = report["error"]
    else:  # rejected before the job starts (settings): one line on stderr, nothing written to the store
        errors = [line for line in r.stderr.splitlines() if line.startswith("nlu-ci: error:")]
        assert len(errors) == 1, r.stderr
        error = errors[0]
        assert not (h.store / "history.jsonl").exists() or \
            len((h.store / "history.jsonl").read_text().splitlines()) == ctx.history_lines
    if case.error:
        assert "\n" not in error and case.error.replace("{p}", h.project).lower() in error.lower(), error
        assert error in r.stderr, "the one-line error is logged too"
    else:
        assert error is None, error

    # the active model: unchanged unless promoted, and in any case intact and loadable
    damaged = {ctx["damaged"]} if ctx.get("damaged") else set()
    active = check_store_invariants(h.models, h.project, damaged=damaged)
    if case.outcome == "promoted":
        assert active == report["candidate"]["model"] != before
    else:
        assert active == before
    if h.store.exists():
        assert list((h.store / ".incoming").iterdir()) == []

    if case.pushed:
        assert h.pushed_outcome().get(case.outcome) == 1.0, h.pushed_outcome()
    if ctx.get("slack_url") is None and case.outcome in ("promoted", "failed") and case.recorded \
            and name not in ("observability: slack 500", "observability: slack hangs"):
        assert len(slack.received) == 1  # one message a run
        assert slack.received[-1].json["text"] or slack.received[-1].json.get("blocks")
    if case.after:
        case.after(h, ctx, report)
    h.scan_secrets()


def check_run_recorded(h: Harness, report: dict) -> None:
    """History line, last_report.json and --report: all say this run's outcome and error."""
    last = json.loads((h.store / "history.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "run" and last["outcome"] == report["outcome"] and last["error"] == report["error"]
    assert json.loads((h.store / "last_report.json").read_text())["started_at"] == report["started_at"]
    assert json.loads(h.report_path.read_text())["outcome"] == report["outcome"]


# ---------------------------------------------------------------- faults that need more than an environment

def test_sigterm_during_training(harness):
    """Kubernetes stops a pod with SIGTERM: the run stops within seconds, removes the partial model,
    records failed (exit 1), pushes outcome failed, and the active model is untouched."""
    h = harness()
    before = h.active()
    proc = subprocess.Popen([sys.executable, "-m", "nlu_ci.cli", "run", "--json"], env=h.env(), cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "stage train: started" in line:
            procs.signal_while_training(proc, signal.SIGTERM)  # inside the training child's fit
            t0 = time.monotonic()
            break
    out, err = proc.communicate(timeout=60)
    stopped_in = time.monotonic() - t0
    from .helpers import Run

    h.runs.append(Run(proc.returncode, out, "".join(lines) + err, stopped_in))
    report = json.loads(out)
    assert proc.returncode == 1 and report["outcome"] == "failed" and "SIGTERM" in report["error"]
    assert stopped_in < 10, stopped_in
    assert check_store_invariants(h.models, h.project) == before
    assert list((h.store / ".incoming").iterdir()) == []
    check_run_recorded(h, report)
    assert h.pushed_outcome().get("failed") == 1.0
    h.scan_secrets()


@pytest.fixture
def mountpoint(tmp_path):
    """A fresh tmpfs mount (needs root + CAP_SYS_ADMIN, as this machine has; else the test is skipped)."""
    point = tmp_path / "mnt"
    point.mkdir()
    mounted = []

    def mount(options: str) -> Path:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); see docs/reliability.md")
        mounted.append(point)
        return point

    def remount(options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(point)], check=True)

    mount.remount = remount
    yield mount
    for p in mounted:
        subprocess.run(["umount", "-l", str(p)], capture_output=True)


def _seed_into(h: Harness, root: Path, seeded_template: Path) -> Harness:
    h.models = root
    shutil.copytree(seeded_template, h.store)
    return h


def test_models_dir_read_only(harness, mountpoint, seeded_template):
    """The PVC mounted read-only: exit 2 with one line naming the folder; nothing changes; the report goes to
    --report and the metrics (outcome failed) to the Pushgateway, since the store cannot take them."""
    h = _seed_into(harness(seeded=False), mountpoint("size=16m,mode=0755"), seeded_template)
    before = h.active()
    snapshot = {p: p.stat().st_mtime_ns for p in h.store.rglob("*")}
    mountpoint.remount("ro")
    r = h.run(["run", "--json"])
    assert r.code == 2, r.output[-3000:]
    assert r.report["outcome"] == "failed" and "not writable" in r.report["error"] and str(h.store) in r.report["error"]
    assert "Read-only file system" in r.report["error"]
    assert check_store_invariants(h.models, h.project) == before
    assert {p: p.stat().st_mtime_ns for p in h.store.rglob("*")} == snapshot
    assert json.loads(h.report_path.read_text())["outcome"] == "failed"
    assert h.pushed_outcome().get("failed") == 1.0
    h.scan_secrets()


def test_disk_full_while_persisting(harness, mountpoint, seeded_template):
    """A PVC that fills up while the candidate is written: exit 1 naming the problem, the partial candidate
    removed, the active model intact, and (space freed again) the failed run recorded and pushed."""
    h = harness(seeded=False)

    def kib(folder: Path) -> int:  # tmpfs counts whole 4 KiB pages
        return sum(-(-p.stat().st_size // 4096) * 4 for p in folder.rglob("*") if p.is_file()) + 4 * len(
            [p for p in folder.rglob("*") if p.is_dir()])

    model_kb = kib(seeded_template / (seeded_template / "ACTIVE").read_text().strip())
    # room for the store as it is plus a third of a new model: training runs out of space while persisting
    h = _seed_into(h, mountpoint(f"size={kib(seeded_template) + 64 + model_kb // 3}k"), seeded_template)
    before = h.active()
    r = h.run(["run", "--json"])
    assert r.code == 1, r.output[-3000:]
    assert r.report["outcome"] == "failed" and "No space left on device" in r.report["error"], r.report["error"]
    assert "\n" not in r.report["error"]
    assert check_store_invariants(h.models, h.project) == before
    assert list((h.store / ".incoming").iterdir()) == []
    check_run_recorded(h, r.report)
    assert h.pushed_outcome().get("failed") == 1.0
    h.scan_secrets()
