"""`nlu-ci run` / `status` / `rollback` against the fake Rasa Platform, through the real CLI (subprocesses).

Real rasa_nlu training in the job, a real HTTP server on loopback as the platform (its evaluation loads
the uploaded zip with rasa_nlu). The token comes from a mounted-Secret-like file and must never appear
in any output or any file the job writes.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nlu_ci.registry.store import ModelStore
from support.data import load_sample as sample_data
from support.data import shuffled_train_labels
from support.fixtures import PLATFORM_TOKEN as TOKEN
from support.train import train


def examples() -> list[dict]:
    return sample_data()["rasa_nlu_data"]["common_examples"]


def data_with(exs: list[dict]) -> dict:
    data = sample_data()
    data["rasa_nlu_data"]["common_examples"] = exs
    return data


@pytest.fixture(scope="module")
def weak_model(tmp_path_factory) -> Path:
    """A real model trained on the train side only, with 60% of its labels shuffled: a clean candidate beats it."""
    from nlu_ci.data.dataset import hash_unit

    base = tmp_path_factory.mktemp("weak")
    train_side = [e for e in shuffled_train_labels(examples(), 0.6, seed=7) if hash_unit(e["text"], "nlu-ci") >= 0.2]
    model = train(base / "t", train_side).model_dir
    named = base / "model_20250101-000000"
    shutil.copytree(model, named)
    return named


@pytest.fixture
def run(cli, fake, tmp_path):
    """``run(args, **env)``: the CLI with the platform settings (token from a file)."""
    token_file = tmp_path / "secret" / "token"
    token_file.parent.mkdir()
    token_file.write_text(TOKEN + "\n")

    def _run(args: list[str], **env: str):
        base = dict(RASA_PLATFORM_HOST=fake.url, RASA_API_TOKEN_FILE=str(token_file), NLU_CI_HTTP_TIMEOUT="2",
                    NLU_CI_HTTP_RETRIES="3", NLU_CI_HTTP_BACKOFF="0.05", NLU_CI_EVAL_POLL_INTERVAL="0.1")
        base.update(env)
        result = cli(args, **base)
        assert_no_token(cli.models, result)
        return result

    _run.store = cli.store
    _run.models = cli.models
    return _run


def assert_no_token(models: Path, result) -> None:
    assert TOKEN not in result.output
    for path in models.rglob("*") if models.exists() else []:
        if path.is_file() and path.suffix in (".json", ".jsonl", ".prom", "") and path.stat().st_size < 5_000_000:
            assert TOKEN not in path.read_text(errors="replace"), path


def active_of(store_dir: Path) -> str | None:
    p = store_dir / "ACTIVE"
    return p.read_text().strip() if p.exists() else None


def seed(run, fake, model_dir: Path) -> str:
    """The weak model as the current serving model: in the store (ACTIVE) and tagged on the platform."""
    store = ModelStore(run.models, "default")
    store.ensure()
    name = model_dir.name
    staged = store.staging_dir(name)
    shutil.copytree(model_dir, staged)
    store.commit(staged, {"fingerprint": "sha256:seeded", "split": {"method": "hash", "fraction": 0.2,
                                                                     "salt": "nlu-ci"}})
    store.activate(name)
    fake.add_model(model_dir, name, tags=("active",))
    return name


# ---------------------------------------------------------------- the happy paths

def test_bootstrap_better_worse_status_and_rollback(run, fake, any_pipeline):
    fake.data = data_with(shuffled_train_labels(examples(), 0.6, seed=1))
    r = run(["run", "--json"])
    assert r.code == 0, r.output
    first = r.json["candidate"]["model"]
    assert r.json["outcome"] == "promoted" and r.json["active"] is None
    assert fake.uploads == [first] and fake.tagged() == [first] and active_of(run.store) == first
    assert r.json["data"]["source"] == f"{fake.url}/api/projects/default/data.json"

    fake.data = sample_data()
    r = run(["run", "--json"])
    assert r.code == 0, r.output
    second = r.json["candidate"]["model"]
    assert r.json["outcome"] == "promoted", r.json["decision"]
    assert r.json["active"]["model"] == first
    assert r.json["candidate"]["intent_f1"] > r.json["active"]["intent_f1"]
    assert r.json["candidate"]["evaluated_by"] == r.json["active"]["evaluated_by"] == "local"
    assert fake.tagged() == [second] and active_of(run.store) == second
    assert fake.count("eval_put") == 0  # local evaluation: the platform is not asked

    fake.data = data_with(shuffled_train_labels(examples(), 0.6, seed=2))
    r = run(["run", "--json"])
    assert r.code == 0, r.output
    third = r.json["candidate"]["model"]
    assert r.json["outcome"] == "rejected" and r.json["active"]["model"] == second
    assert fake.uploads == [first, second, third]  # uploaded, not tagged
    assert fake.tagged() == [second] and active_of(run.store) == second

    st = run(["status", "--json"])
    assert st.code == 0, st.output
    assert st.json["platform"]["active"] == second and st.json["platform"]["tag"] == "active"
    assert [m["model"] for m in st.json["platform"]["models"]] == [first, second, third]
    assert second in run(["status"]).stdout

    rb = run(["rollback", "--json"])
    assert rb.code == 0, rb.output
    assert rb.json["active"] == first and rb.json["previous"] == second
    assert fake.tagged() == [first] and active_of(run.store) == first
    assert rb.json["hold"]["model"] == second  # the platform registry holds the rolled-back-from data too
    fake.data = sample_data()  # the data the second model was trained on: rejected, the tag stays
    r = run(["run", "--json"])
    assert r.code == 0 and r.json["outcome"] == "rejected", r.output
    assert r.json["decision"]["reason"].startswith("rejected by rollback_hold") and fake.tagged() == [first]
    assert run(["rollback", "model_nope"]).code == 2
    assert fake.tagged() == [first]


def test_platform_evaluation_compares_the_platform_f1(run, fake, weak_model):
    weak = seed(run, fake, weak_model)
    r = run(["run", "--evaluation", "platform", "--json"])
    assert r.code == 0, r.output
    cand = r.json["candidate"]["model"]
    assert r.json["candidate"]["evaluated_by"] == r.json["active"]["evaluated_by"] == "platform"
    assert r.json["candidate"]["intent_f1"] == fake.evaluations[cand]["intent_evaluation"]["f1_score"]
    assert r.json["active"]["intent_f1"] == fake.evaluations[weak]["intent_evaluation"]["f1_score"]
    assert r.json["outcome"] == "promoted", r.json["decision"]["reason"]
    assert fake.tagged() == [cand] and active_of(run.store) == cand
    rows = [json.loads(line) for line in Path(r.json["predictions_file"]).read_text().splitlines()]
    assert [row["text"] for row in rows] == [e["text"] for e in fake.held_out]  # the platform's test set, in order
    answers = fake.evaluations[cand]["intent_evaluation"]["predictions"]
    assert [row["candidate"]["intent"] for row in rows] == [p["predicted"] for p in answers]


def test_dry_runs_and_skip(run, fake, weak_model):
    weak = seed(run, fake, weak_model)
    r = run(["run", "--dry-run", "--json"])
    assert r.code == 0 and r.json["outcome"] == "dry_run", r.output
    assert fake.uploads == [] and fake.tagged() == [weak]  # local evaluation: nothing sent
    r = run(["run", "--dry-run", "--evaluation", "platform", "--json"])
    assert r.code == 0 and r.json["outcome"] == "dry_run", r.output
    assert fake.uploads == [r.json["candidate"]["model"]]  # the platform had to evaluate it: uploaded, not tagged
    assert fake.tagged() == [weak] and active_of(run.store) == weak
    r = run(["run", "--json"])
    assert r.json["outcome"] == "promoted", r.output
    r = run(["run", "--json"])
    assert r.code == 0 and r.json["outcome"] == "skipped", r.output  # same data and config as the tagged model
    assert len(fake.uploads) == 2


def test_active_model_missing_from_the_store_falls_back_to_platform_evaluation(run, fake, weak_model):
    weak = fake.add_model(weak_model, tags=("active",))  # trained elsewhere: not in this store
    r = run(["run", "--json"])
    assert r.code == 0, r.output
    assert "not in the local store" in r.stderr and "evaluated by the platform" in r.stderr
    assert r.json["active"]["model"] == weak
    assert r.json["candidate"]["evaluated_by"] == r.json["active"]["evaluated_by"] == "platform"
    assert fake.count("eval_put") == 2
    assert r.json["outcome"] == "promoted" and fake.tagged() == [r.json["candidate"]["model"]]


def test_markdown_data_and_bearer_auth(run, fake):
    lines = []
    for intent in sorted({e["intent"] for e in examples()}):
        lines.append(f"## intent:{intent}")
        lines += [f"- {e['text']}" for e in examples() if e["intent"] == intent]
        lines.append("")
    fake.data, fake.data_content_type = "\n".join(lines), "text/markdown"
    r = run(["run", "--platform-auth", "bearer", "--json"])
    assert r.code == 0, r.output
    assert r.json["outcome"] == "promoted"
    assert all(q["query_keys"] == [] for q in fake.requests)


# ---------------------------------------------------------------- faults at each step

FAULTS = [
    # endpoint, fault, inject kwargs, extra args, outcome, exit code, error must contain
    ("data", 503, {}, [], "promoted", 0, None),
    ("data", 401, {}, [], "failed", 1, "HTTP 401"),
    ("data", "malformed", {}, [], "failed", 1, "malformed JSON"),
    ("data", "content_type", {}, [], "failed", 1, "'text/html'"),
    ("upload", 500, {}, [], "failed", 1, "POST"),
    ("upload", "lost", {}, [], "promoted", 0, None),
    ("upload", "down", {"times": None}, [], "failed", 1, "gave up after 3 attempts"),
    ("list", 429, {"retry_after": "1"}, [], "promoted", 0, None),
    ("list", "timeout", {"times": None, "seconds": 2.5}, [], "failed", 1, "read timeout after 1s"),
    ("list", "malformed", {}, [], "failed", 1, "malformed JSON"),
    ("eval_put", 500, {}, ["--evaluation", "platform"], "failed", 1, "/evaluations/"),
    ("eval_get", "malformed", {}, ["--evaluation", "platform"], "failed", 1, "malformed JSON"),
    ("eval_get", 503, {}, ["--evaluation", "platform"], "promoted", 0, None),
    ("tag", 503, {}, [], "promoted", 0, None),
    ("tag", 500, {}, [], "failed", 1, "/tags/active"),
    ("tag", 401, {}, [], "failed", 1, "HTTP 401"),
]


@pytest.mark.parametrize("endpoint,fault,kwargs,args,outcome,code,message", FAULTS,
                         ids=[f"{f[0]}-{f[1]}" for f in FAULTS])
def test_fault(run, fake, weak_model, endpoint, fault, kwargs, args, outcome, code, message):
    weak = seed(run, fake, weak_model)
    fake.inject(endpoint, fault, **kwargs)
    r = run(["run", "--json", *args], NLU_CI_HTTP_TIMEOUT="1")
    assert r.code == code, r.output
    report = r.json
    assert report["outcome"] == outcome, report["error"]
    assert report["exit_code"] == code
    if outcome == "failed":
        assert message in report["error"] and "\n" not in report["error"]
        assert "platform" in report["error"]
        assert message in r.stderr
        assert fake.tagged() == [weak] and active_of(run.store) == weak
    else:
        assert report["error"] is None
        assert fake.tagged() == [report["candidate"]["model"]] == [active_of(run.store)]
        assert fake.uploads == [report["candidate"]["model"]]  # once, even when an answer was lost
    last = json.loads((run.store / "last_report.json").read_text())
    assert last["outcome"] == outcome


def test_platform_down(run, fake, weak_model):
    weak = seed(run, fake, weak_model)
    url = fake.url
    fake.stop()
    r = run(["run", "--json"], RASA_PLATFORM_HOST=url)
    assert r.code == 1, r.output
    assert r.json["outcome"] == "failed"
    assert "cannot connect" in r.json["error"] and "data.json" in r.json["error"]
    assert active_of(run.store) == weak
    for command in (["status"], ["rollback"]):
        r = run(command, RASA_PLATFORM_HOST=url, NLU_CI_HTTP_RETRIES="1")
        assert r.code == 1, r.output
        assert "cannot connect" in r.stderr and "/api/projects/default/models/nlu" in r.stderr
    assert active_of(run.store) == weak


def test_wrong_token_file(run, fake, tmp_path, weak_model):
    seed(run, fake, weak_model)
    wrong = tmp_path / "wrong-token"
    wrong.write_text("wrong-" + TOKEN[::-1])
    r = run(["run", "--json"], RASA_API_TOKEN_FILE=str(wrong))
    assert r.code == 1 and r.json["outcome"] == "failed"
    assert "HTTP 401" in r.json["error"] and "RASA_API_TOKEN" in r.json["error"]
    assert TOKEN[::-1] not in r.output
    assert fake.tagged() == [weak_model.name]
