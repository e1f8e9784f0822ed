"""Training data from git (``--data-git-url``, docs/git-data.md) against real git servers on loopback: ``git
http-backend`` behind basic auth (the token) and ``git daemon`` (git://), serving a bare repository with a Rasa 3
project. Real ``nlu-ci run`` processes clone, train, promote, skip and train again; failures are one line with
their exit code and the token is nowhere (stdout, stderr, report, history, store files, git's command lines)."""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from nlu_ci import settings as settings_mod
from nlu_ci.data import git_source
from nlu_ci.errors import ConfigError, DataError, RuntimeFailure
from nlu_ci.registry import backends
from reliability.secret_forms import encoded_forms
from support.data import CONFIG, cli_env, run_cli
from support.git_server import GitDaemon, GitHttp, Repo

TOKEN = "glpat-Zq8vR2mN5xT7wK4pL9sD"
INTENTS = {
    "greet": ["hey", "hello", "hi there", "good morning", "good evening", "hello friend", "hey there, how are you",
              "hi, nice to meet you", "morning!", "howdy", "hello again", "hi bot"],
    "goodbye": ["bye", "goodbye", "see you later", "talk to you soon", "have a nice day, bye", "catch you later",
                "farewell", "bye bye", "see you tomorrow", "I'm off, goodbye", "later!", "good night"],
    "affirm": ["yes", "yes please", "sure", "of course", "that's right", "correct", "sounds good", "indeed",
               "absolutely", "yep", "ok, do it", "great, yes"],
    "order_pizza": ["I want a [large](size) pizza", "one [small](size) margherita please", "order a pizza",
                    "can I get a [medium](size) pepperoni", "a [large](size) hawaiian to go", "pizza please",
                    "I'd like to order a [small](size) pizza", "get me a [family](size) pizza",
                    "two [large](size) pizzas", "a [medium](size) veggie pizza", "order pizza for dinner",
                    "I am hungry, pizza"],
}
NEW_INTENT = {"ask_hours": ["when do you open", "what are your opening hours", "are you open on sunday",
                            "until when are you open", "opening times please", "what time do you close",
                            "are you open now", "hours on saturday", "when do you close today",
                            "what are the hours"]}


def nlu_yml(intents: dict[str, list[str]]) -> str:
    body = "".join(f"- intent: {name}\n  examples: |\n" + "".join(f"    - {text}\n" for text in texts)
                   for name, texts in intents.items())
    return f'version: "3.1"\nnlu:\n{body}'


PROJECT = {
    "data/nlu.yml": nlu_yml(INTENTS),
    "data/stories.yml": 'version: "3.1"\nstories:\n- story: greet\n  steps:\n  - intent: greet\n  - action: utter_greet\n',
    "domain.yml": 'version: "3.1"\nintents:\n- greet\n- goodbye\n- affirm\n- order_pizza\nresponses:\n'
                  '  utter_greet:\n  - text: "Hi!"\n',
    "config.yml": 'recipe: default.v1\nlanguage: en\npipeline:\n- name: WhitespaceTokenizer\n',
    "tests/test_stories.yml": 'version: "3.1"\nstories:\n- story: t\n  steps:\n  - user: hello\n    intent: greet\n',
    "README.md": "Our assistant.\n",
}


@pytest.fixture
def repo(tmp_path) -> Repo:
    (tmp_path / "srv").mkdir()
    return Repo(tmp_path / "srv")


def env_for(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    return cli_env(tmp_path / "models", NLU_CI_CONFIG=str(CONFIG), NLU_CI_DATA_GIT_URL=url, NLU_CI_DATA="data",
                   **extra)


def token_file(tmp_path: Path, token: str = TOKEN) -> str:
    path = tmp_path / "secrets" / "git-token"
    path.parent.mkdir(exist_ok=True)
    path.write_text(token + "\n")
    return str(path)


def git_shim(tmp_path: Path) -> tuple[str, Path]:
    """A ``git`` first on PATH that logs its command line, then runs the real git: what /proc/*/cmdline shows."""
    shim = tmp_path / "shim"
    shim.mkdir()
    log = tmp_path / "git-argv.log"
    (shim / "git").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec /usr/bin/git "$@"\n')
    (shim / "git").chmod(0o755)
    return f"{shim}:{os.environ['PATH']}", log


def assert_nowhere(token: str, *texts: str, files: list[Path] = ()) -> None:
    forms = encoded_forms(token)
    for i, text in enumerate(texts):
        assert not [f for f in forms if f in text], f"token form in text {i}: {text[:300]}"
    for path in files:
        data = path.read_bytes()
        assert not [f for f in forms if f.encode() in data], f"token form in {path}"


def history(store: Path) -> list[dict]:
    return [json.loads(line) for line in (store / "history.jsonl").read_text().splitlines()]


def test_http_token_clone_promotes_skips_and_trains_again(tmp_path, repo):
    first = repo.commit(PROJECT, "the assistant")
    path, argv_log = git_shim(tmp_path)
    with GitHttp(repo.root, TOKEN) as server:
        env = env_for(tmp_path, server.url(repo), NLU_CI_DATA_GIT_TOKEN_FILE=token_file(tmp_path), PATH=path)
        report_file = tmp_path / "report.json"
        r1 = run_cli(["run", "--json", "--report", str(report_file)], env)
        assert r1.code == 0, r1.stderr[-3000:]
        rep = r1.json
        assert rep["outcome"] == "promoted"
        assert rep["data"]["revision"] == first
        assert rep["data"]["source"] == f"{server.url(repo)}@HEAD:data"
        assert rep["data"]["intents"] == sorted(INTENTS)
        # stories, domain, config and tests/ are not training data; the clone's .git is not read at all
        assert not any(".git" in note for note in rep["data"]["skipped_files"])
        store = tmp_path / "models" / "default"
        model = rep["candidate"]["model"]
        assert json.loads((store / model / "nlu_ci.json").read_text())["data"]["revision"] == first
        assert history(store)[-1]["revision"] == first
        page = next((store / "reports").glob("*.html")).read_text()
        assert first in page
        # the token went as the Authorization header, on every request, and was accepted
        assert server.seen and all(h and h.startswith("Basic ") for h in server.seen)

        r2 = run_cli(["run", "--json"], env)  # the same commit: the same data
        assert r2.code == 0 and r2.json["outcome"] == "skipped", r2.stderr[-2000:]
        assert r2.json["data"]["revision"] == first and "train" not in r2.json["durations"]

        second = repo.commit({"data/nlu.yml": nlu_yml(INTENTS | NEW_INTENT),
                              "domain.yml": PROJECT["domain.yml"] + "- ask_hours\n"}, "opening hours")
        r3 = run_cli(["run", "--json"], env)
        assert r3.code == 0, r3.stderr[-2000:]
        assert r3.json["outcome"] in ("promoted", "rejected") and "train" in r3.json["durations"]
        assert r3.json["data"]["revision"] == second and "ask_hours" in r3.json["data"]["intents"]
        assert r3.json["data"]["fingerprint"] != rep["data"]["fingerprint"]
    assert [h.get("revision") for h in history(store) if h["event"] == "run"] == [first, first, second]
    argv = argv_log.read_text()
    assert "fetch" in argv and server.url(repo) in argv
    assert_nowhere(TOKEN, r1.output, r2.output, r3.output, argv,
                   files=[report_file, *(p for p in store.rglob("*") if p.is_file())])


def test_git_daemon_tag_then_a_commit_that_leaves_the_data_alone_skips(tmp_path, repo):
    tagged = repo.commit(PROJECT, "the assistant", tag="v1")
    with GitDaemon(repo.root) as daemon:
        url = daemon.url(repo)
        r1 = run_cli(["run", "--json", "--data-git-ref", "v1"], env_for(tmp_path, url))
        assert r1.code == 0 and r1.json["outcome"] == "promoted", r1.stderr[-3000:]
        assert r1.json["data"]["revision"] == tagged and r1.json["data"]["source"] == f"{url}@v1:data"
        docs_only = repo.commit({"README.md": "Our assistant, now documented.\n"}, "docs")
        r2 = run_cli(["run", "--json"], env_for(tmp_path, url, NLU_CI_DATA_GIT_REF="main"))
    assert r2.code == 0 and r2.json["outcome"] == "skipped", r2.stderr[-2000:]
    assert r2.json["data"]["revision"] == docs_only != tagged  # a new commit, the same data: nothing to train


def test_wrong_token_is_one_line_exit_2_and_the_token_is_nowhere(tmp_path, repo):
    repo.commit(PROJECT, "the assistant")
    wrong = "glpat-WRONGwrongWRONG0042"
    with GitHttp(repo.root, TOKEN) as server:
        report_file = tmp_path / "report.json"
        env = env_for(tmp_path, server.url(repo), NLU_CI_DATA_GIT_TOKEN_FILE=token_file(tmp_path, wrong))
        r = run_cli(["run", "--report", str(report_file)], env)
        assert server.seen, "the server was asked"
    assert r.code == 2, r.output[-2000:]
    errors = [line for line in r.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "Traceback" not in r.output, r.stderr[-2000:]
    assert server.url(repo) in errors[0] and "git fetch failed" in errors[0]
    assert "the server refused the token of NLU_CI_DATA_GIT_TOKEN_FILE" in errors[0], errors[0]
    report = json.loads(report_file.read_text())
    assert report["outcome"] == "failed" and report["exit_code"] == 2 and "\n" not in report["error"]
    store = tmp_path / "models" / "default"
    assert history(store)[-1]["outcome"] == "failed"
    assert_nowhere(wrong, r.output, files=[report_file, *(p for p in store.rglob("*") if p.is_file())])


def test_bad_ref_is_one_line_exit_2(tmp_path, repo):
    repo.commit(PROJECT, "the assistant")
    with GitDaemon(repo.root) as daemon:
        r = run_cli(["run", "--data-git-ref", "no-such-branch"], env_for(tmp_path, daemon.url(repo)))
    assert r.code == 2, r.output[-2000:]
    errors = [line for line in r.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "Traceback" not in r.output
    assert "no-such-branch" in errors[0] and daemon.url(repo) in errors[0] and "couldn't find remote ref" in errors[0]


# ---------------------------------------------------------------- the library, in this process (fast)

def source(tmp_path: Path, url: str, **env: str) -> git_source.GitSource:
    environ = {"NLU_CI_DATA_GIT_URL": url, "NLU_CI_MODELS_DIR": str(tmp_path / "models"), **env}
    return git_source.from_settings(settings_mod.from_env(environ))


def test_path_not_in_the_repository_is_exit_2_and_git_is_gone(tmp_path, repo):
    sha = repo.commit(PROJECT, "the assistant")
    with GitDaemon(repo.root) as daemon:
        fetched = source(tmp_path, daemon.url(repo), NLU_CI_DATA="data").fetch(tmp_path / "work1")
        assert fetched.revision == sha and (fetched.path / "nlu.yml").is_file()
        assert not (fetched.path.parent / ".git").exists()
        with pytest.raises(DataError, match=r"has no 'nlu'.*--data / NLU_CI_DATA") as err:
            source(tmp_path, daemon.url(repo), NLU_CI_DATA="nlu").fetch(tmp_path / "work2")
    assert err.value.exit_code == 2 and sha[:12] in str(err.value)


def test_a_symlink_is_checked_out_as_a_plain_file_into_a_fresh_folder(tmp_path, repo):
    repo.commit(PROJECT, "the assistant")
    (repo.work / "data" / "secrets.yml").symlink_to("/etc/passwd")
    repo.commit({}, "a link out of the checkout")
    leftover = tmp_path / "emptydir" / "git-default" / "data" / "from-an-earlier-run.yml"
    leftover.parent.mkdir(parents=True)
    leftover.write_text(PROJECT["data/nlu.yml"])
    with GitDaemon(repo.root) as daemon:
        fetched = source(tmp_path, daemon.url(repo), NLU_CI_DATA="data",
                         NLU_CI_DATA_GIT_DIR=str(tmp_path / "emptydir")).fetch(tmp_path / "work")
    link = fetched.path / "secrets.yml"
    assert not link.is_symlink() and link.read_text() == "/etc/passwd"
    assert fetched.path == tmp_path / "emptydir" / "git-default" / "data" and not leftover.exists()


def test_network_failure_is_exit_1_and_a_hang_ends_at_the_deadline(tmp_path, repo):
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    with pytest.raises(RuntimeFailure, match=r"git fetch failed: fatal: unable to connect") as err:
        source(tmp_path, f"git://127.0.0.1:{port}/x.git").fetch(tmp_path / "w1")
    assert err.value.exit_code == 1
    # an HTTP server that accepts and never answers: the fetch ends at the deadline, and git's helper
    # (git-remote-http, a child of git: a new process group, killed as one) ends with it
    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    try:
        with pytest.raises(RuntimeFailure, match=r"did not finish within 2 s") as err:
            source(tmp_path, f"http://127.0.0.1:{port}/x.git", NLU_CI_DATA_GIT_TIMEOUT="2").fetch(tmp_path / "w2")
        assert err.value.exit_code == 1 and accepted, "git had connected"
        # checked while the connection is still open (closing it would end a left-over helper by itself); a
        # killed helper is gone once the kernel has torn it down, which on a loaded machine takes a moment
        # after git itself has been reaped (CI saw it once), so it gets a few seconds: one left running would
        # sit on the open connection for good
        assert not _still_there(f"127.0.0.1:{port}", within=5.0), "git or its helper was left running"
    finally:
        silent.close()
        for conn in accepted:
            conn.close()


def _still_there(text: str, within: float) -> list[int]:
    """The processes whose command line holds ``text`` after up to ``within`` seconds of waiting for none."""
    deadline = time.monotonic() + within
    while (found := _processes_with(text)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _processes_with(text: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


def test_ssh_gets_the_key_as_a_private_file_and_checks_host_keys(tmp_path, repo, monkeypatch):
    """No sshd here: an ``ssh`` first on PATH records what git ran it with and serves the repository locally."""
    sha = repo.commit(PROJECT, "the assistant")
    shim, log = tmp_path / "shim", tmp_path / "ssh.log"
    shim.mkdir()
    (shim / "ssh").write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {log}\n'
        'while [ $# -gt 2 ]; do [ "$1" = -i ] && stat -c "key-mode %a" "$2" >> ' f"{log}" '; shift; done\n'
        f'cd {repo.root} && exec sh -c "$2"\n')
    (shim / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    known = tmp_path / "known_hosts"
    known.write_text("git.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAnotarealkey0123456789\n-----END OPENSSH PRIVATE KEY-----"
    (tmp_path / "id").write_text(key + "\n")
    src = source(tmp_path, "git@git.example.org:assistant.git", NLU_CI_DATA_GIT_SSH_KEY_FILE=str(tmp_path / "id"),
                 NLU_CI_DATA_GIT_KNOWN_HOSTS_FILE=str(known), NLU_CI_DATA="data")
    fetched = src.fetch(tmp_path / "work")
    assert fetched.revision == sha and (fetched.path / "nlu.yml").is_file()
    args = log.read_text().splitlines()
    for option in ("IdentitiesOnly=yes", "StrictHostKeyChecking=yes", f"UserKnownHostsFile={known}",
                   "BatchMode=yes", "IdentityAgent=none"):
        assert option in args, (option, args)
    assert "key-mode 600" in args and "git@git.example.org" in args
    assert not any("b3BlbnNzaC1rZXkt" in a for a in args), "the key itself is never on a command line"
    assert not list((tmp_path / "work").glob("git-home-*")), "the key copy is removed after the fetch"


@pytest.mark.parametrize("env, message", [
    ({"NLU_CI_DATA_GIT_URL": "ext::sh -c touch% /tmp/pwned"}, "is not an https://"),
    ({"NLU_CI_DATA_GIT_URL": "https://bob:hunter2-secret@git.example.org/a.git"}, "carries a password"),
    ({"NLU_CI_DATA_GIT_URL": "ssh://git@git.example.org/a.git"}, "KNOWN_HOSTS_FILE: SSH needs a known_hosts"),
    ({"NLU_CI_DATA_GIT_URL": "git@git.example.org:a.git", "NLU_CI_DATA_GIT_TOKEN": "tok-abcdef123"},
     "a token is sent over HTTP"),
    ({"NLU_CI_DATA_GIT_URL": "https://git.example.org/a.git", "NLU_CI_DATA_GIT_REF": "--upload-pack=sh"},
     "is not a branch or tag name"),
    ({"NLU_CI_DATA_GIT_URL": "https://git.example.org/a.git", "NLU_CI_DATA": "../../etc"}, "inside the repository"),
    ({"NLU_CI_DATA_GIT_URL": "https://git.example.org/a.git", "NLU_CI_DATA": ".git/config"}, "inside the repository"),
    ({"NLU_CI_DATA_GIT_URL": "https://git.example.org/a.git", "RASA_PLATFORM_HOST": "http://rasa:5002"},
     "are both set"),
])
def test_settings_that_cannot_work_are_exit_2(tmp_path, env, message):
    settings = settings_mod.from_env({"NLU_CI_MODELS_DIR": str(tmp_path), **env})
    with pytest.raises(ConfigError, match=message) as err:
        backends.build(settings)
    assert err.value.exit_code == 2 and "hunter2-secret" not in str(err.value)


def test_the_token_is_sent_only_as_a_header_scoped_to_the_origin(tmp_path):
    src = source(tmp_path, "https://oauth2@git.example.org:8443/team/bot.git", NLU_CI_DATA_GIT_TOKEN="tok-abcdef123")
    private = tmp_path / "home"
    private.mkdir()
    env = src._environment(private)
    keys = {env[k]: env[k.replace("KEY", "VALUE")] for k in env if k.startswith("GIT_CONFIG_KEY_")}
    assert keys["http.https://git.example.org:8443/.extraHeader"] == "Authorization: Basic b2F1dGgyOnRvay1hYmNkZWYxMjM="
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_CONFIG_NOSYSTEM"] == "1" and keys["core.symlinks"] == "false"
    assert env["GIT_ALLOW_PROTOCOL"] == "https:http:ssh:git:file" and "tok-abcdef123" not in src.url
    assert not any("NLU_CI" in k for k in env), "nlu-ci's own settings are not passed to git"


def test_the_git_daemon_double_stops_its_listener_thread(tmp_path):
    """A listener thread left in accept() after the daemon stops takes later servers' connections in this process
    (the descriptor is reused): the day-in-production test's git fetch got 'Connection reset by peer'."""
    daemon = GitDaemon(tmp_path)
    with daemon:
        pass
    assert not daemon.thread.is_alive()
