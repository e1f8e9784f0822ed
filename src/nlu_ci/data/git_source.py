"""Training data from a git repository (``--data-git-url``): one shallow fetch of one commit into a fresh folder.

The git binary does the transfer (the reference client: smart HTTP, SSH, git://, proxies, TLS); this module
decides what git may see and do:

- a minimal environment (``PATH``, proxy and CA variables only; ``LC_ALL=C`` so its errors can be read), no
  system or global git config, no credential helpers, no prompts, no hooks, protocols limited to https, http,
  ssh, git and file, and symlinks checked out as plain files (a link to ``/var/run/secrets/...`` in the
  repository becomes a small text file, never followed);
- the HTTPS token travels in an ``http.<scheme://host:port/>.extraHeader`` set through git's environment
  configuration (``GIT_CONFIG_COUNT``/``_KEY_n``/``_VALUE_n``): never in the URL or a command line
  (``/proc/*/cmdline`` is world-readable, ``/proc/*/environ`` only for the same user), sent to that origin only;
- the SSH key is copied to a private 0600 file and used with ``-i KEY -o IdentitiesOnly=yes``, host keys
  checked (``StrictHostKeyChecking=yes``) against the known_hosts file given, no agent, no ``~/.ssh/config``;
- the whole fetch has a deadline (``--data-git-timeout``); git and its helpers run in their own process group,
  ended together on timeout or SIGTERM.

The checkout's ``.git`` folder is deleted before the data is read: only the commit's files remain, read by
the same rules as local data (``datasafety``); the commit sha is the report's ``data.revision``.
A failure is one line naming the URL (redacted) and git's own reason: exit 2 when a retry cannot help (no such
branch or tag, no such repository, credentials or host key refused, the path not in the repository), else 1.
"""
from __future__ import annotations

import base64
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from nlu_ci.errors import ConfigError, DataError, RuntimeFailure, one_line
from nlu_ci.redact import redact, register

log = logging.getLogger(__name__)

ALLOWED_PROTOCOLS = "https:http:ssh:git:file"
PASSED_ENV = ("PATH", "TMPDIR", "TZ", "http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY",
              "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO",
              "GIT_SSL_CAPATH")
SCP_LIKE = re.compile(r"^(?:[A-Za-z0-9._~-]+@)?[A-Za-z0-9._-]+:(?!//)[^\s]")
# git's messages (LC_ALL=C) for failures a retry cannot fix: exit 2; anything else (network, 5xx) is exit 1
PERMANENT = ("couldn't find remote ref", "not found in upstream", "no such remote ref", "authentication failed",
             "could not read username", "could not read password", "permission denied",
             "host key verification failed", "repository not found", "does not appear to be a git repository",
             "not exported", "access denied", "returned error: 401", "returned error: 403",
             "returned error: 404", "not our ref", "invalid refspec")
OPTION_HINT = {"url": "--data-git-url / NLU_CI_DATA_GIT_URL", "ref": "--data-git-ref / NLU_CI_DATA_GIT_REF",
               "data": "--data / NLU_CI_DATA"}


def transport(url: str) -> str | None:
    """``http``, ``ssh``, ``git`` or ``file``: how git reaches ``url``; None for anything else (``ext::``, ...)."""
    if url.startswith("-"):
        return None
    scheme = url.split("://", 1)[0].lower() if "://" in url else None
    if scheme in ("http", "https"):
        return "http"
    if scheme in ("ssh", "git+ssh", "ssh+git"):
        return "ssh"
    if scheme in ("git", "file"):
        return scheme
    if scheme is None and "::" not in url and SCP_LIKE.match(url):
        return "ssh"
    return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{host}{f':{parts.port}' if parts.port else ''}/"


def _inner_path(data: Path | None) -> str:
    if data is None:
        return "."
    path = PurePosixPath(str(data).replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or ".git" in path.parts:
        raise ConfigError(f"{OPTION_HINT['data']}: {str(data)[:200]!r} must be a path inside the repository "
                          "(relative, without '..' or '.git') when the data comes from git (--data-git-url)")
    return str(path)


@dataclass(frozen=True)
class Fetched:
    path: Path      # the data inside the checkout
    source: str     # for the report's data.source: URL (redacted), ref and path
    revision: str   # the commit sha


@dataclass(frozen=True)
class GitSource:
    url: str
    ref: str | None
    path: str
    kind: str
    token: str | None
    user: str
    ssh_key: str | None
    known_hosts: Path | None
    folder: Path | None
    timeout: float
    project: str

    @property
    def shown(self) -> str:
        return redact(self.url)

    def where(self, revision: str | None = None) -> str:
        at = f", commit {revision[:12]}" if revision else ""
        return f"{self.shown} (ref {self.ref or 'HEAD'}{at}, path {self.path})"

    # ---------------------------------------------------------------- the fetch
    def fetch(self, workdir: Path) -> Fetched:
        checkout = (self.folder or workdir) / f"git-{self.project}"
        _fresh(checkout)
        workdir.mkdir(parents=True, exist_ok=True)
        private = Path(tempfile.mkdtemp(prefix="git-home-", dir=workdir))  # HOME, the key copy (mode 0700)
        env = self._environment(private)
        deadline = time.monotonic() + self.timeout
        t0 = time.perf_counter()
        self._git(["init", "--quiet", "--template=", str(checkout)], env, deadline, "init")
        self._git(["-C", str(checkout), "fetch", "--quiet", "--no-tags", "--depth=1", "--", self.url,
                   self.ref or "HEAD"], env, deadline, "fetch")
        self._git(["-C", str(checkout), "checkout", "--quiet", "--detach", "FETCH_HEAD"], env, deadline, "checkout")
        revision = self._git(["-C", str(checkout), "rev-parse", "--verify", "HEAD^{commit}"], env, deadline,
                             "rev-parse").strip()
        shutil.rmtree(checkout / ".git")  # the repository's own files never count as data
        shutil.rmtree(private, ignore_errors=True)
        log.info("fetched %s at commit %s in %.2f s", self.where(), revision, time.perf_counter() - t0)
        data = checkout / self.path
        if not data.exists():
            raise DataError(f"{self.where(revision)}: the repository has no {self.path!r} "
                            f"({OPTION_HINT['data']} is the path inside the repository)")
        return Fetched(data, f"{self.shown}@{self.ref or 'HEAD'}:{self.path}", revision)

    def _environment(self, private: Path) -> dict[str, str]:
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env.update(HOME=str(private), XDG_CONFIG_HOME=str(private), LC_ALL="C", LANGUAGE="C",
                   GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
                   GIT_ALLOW_PROTOCOL=ALLOWED_PROTOCOLS, GIT_PROTOCOL_FROM_USER="0", GIT_ASKPASS="", SSH_ASKPASS="")
        config = [("core.symlinks", "false"), ("core.hooksPath", os.devnull), ("credential.helper", ""),
                  ("init.defaultBranch", "data"), ("advice.detachedHead", "false"), ("gc.auto", "0"),
                  ("core.fsmonitor", "false"), ("submodule.recurse", "false")]
        if self.token:
            user = urlsplit(self.url).username or self.user
            basic = base64.b64encode(f"{user}:{self.token}".encode()).decode()
            register(basic)
            config.append((f"http.{_origin(self.url)}.extraHeader", f"Authorization: Basic {basic}"))
        if self.kind == "ssh":
            env["GIT_SSH_COMMAND"] = self._ssh_command(private)
            env["GIT_SSH_VARIANT"] = "ssh"
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for i, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
        return env

    def _ssh_command(self, private: Path) -> str:
        options = ["-F", os.devnull, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
                   "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                   "-o", f"GlobalKnownHostsFile={os.devnull}", "-o", f"ConnectTimeout={max(1, int(self.timeout))}"]
        if self.ssh_key:
            key = private / "id"
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self.ssh_key.strip() + "\n")  # OpenSSH wants the final newline
            options += ["-i", str(key)]
        return " ".join(shlex.quote(part) for part in ["ssh", *options])

    def _git(self, args: list[str], env: dict[str, str], deadline: float, step: str) -> str:
        binary = shutil.which("git", path=env.get("PATH"))
        if binary is None:
            raise ConfigError(f"{self.shown}: the git program is not installed (the nlu-ci image has it; "
                              "locally: apt-get install git)")
        remaining = deadline - time.monotonic()
        proc = subprocess.Popen([binary, *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=max(remaining, 0.001))
        except subprocess.TimeoutExpired:
            _end(proc)
            raise RuntimeFailure(f"{self.where()}: git {step} did not finish within {self.timeout:g} s "
                                 "(--data-git-timeout / NLU_CI_DATA_GIT_TIMEOUT)") from None
        except BaseException:  # SIGTERM (TerminationRequested) or anything else: git and its helpers end too
            _end(proc)
            raise
        if proc.returncode != 0:
            raise self._failure(step, err.decode("utf-8", errors="replace"))
        return out.decode("utf-8", errors="replace")

    def _failure(self, step: str, stderr: str) -> Exception:
        lines = [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith("hint:")]
        first = next((i for i, line in enumerate(lines) if line.startswith(("fatal:", "error:"))), 0)
        reason = redact(one_line(" ".join(lines[first:]) or "no message", 500))
        what = f"of {self.ref!r} " if step == "fetch" and self.ref else ""
        low = stderr.lower()
        if "could not read username" in low or "authentication failed" in low:  # the server answered 401
            reason += (" (the server refused the token of NLU_CI_DATA_GIT_TOKEN_FILE)" if self.token else
                       " (the server asks for credentials: set NLU_CI_DATA_GIT_TOKEN_FILE)")
        message = f"{self.where()}: git {step} {what}failed: {reason}"
        if any(marker in low for marker in PERMANENT):
            return ConfigError(message)
        return RuntimeFailure(message)


def _fresh(folder: Path) -> None:
    """An empty ``folder`` (a leftover of an earlier run is removed: the caller holds the project's lock)."""
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)


def _end(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


# ---------------------------------------------------------------- settings

def from_settings(settings) -> GitSource | None:
    """The git source the settings name, checked (ConfigError, exit 2); None without ``--data-git-url``."""
    url = settings.data_git_url
    if not url:
        return None
    hint = OPTION_HINT["url"]
    kind = transport(url)
    if kind is None:
        raise ConfigError(f"{hint}: {redact(url)[:200]!r} is not an https://, http://, ssh://, user@host:path, "
                          "git:// or file:// repository URL")
    if kind == "http" and urlsplit(url).password:
        raise ConfigError(f"{hint}: {redact(url)[:200]!r} carries a password: put the token in "
                          "NLU_CI_DATA_GIT_TOKEN_FILE instead (a URL ends up in logs and process lists)")
    ref = settings.data_git_ref
    if ref is not None and (ref.startswith("-") or not ref.strip() or any(c.isspace() or c in ":^~?*[\\" for c in ref)
                            or ".." in ref):
        raise ConfigError(f"{OPTION_HINT['ref']}: {ref[:100]!r} is not a branch or tag name")
    token, key = settings.data_git_token, settings.data_git_ssh_key
    if token and kind != "http":
        raise ConfigError(f"NLU_CI_DATA_GIT_TOKEN_FILE: a token is sent over HTTP(S) only, but {hint} is a {kind} URL "
                          "(for SSH set NLU_CI_DATA_GIT_SSH_KEY_FILE)")
    if key and kind != "ssh":
        raise ConfigError(f"NLU_CI_DATA_GIT_SSH_KEY_FILE: an SSH key needs an ssh:// or user@host:path URL in {hint}")
    known_hosts = settings.data_git_known_hosts
    if kind == "ssh" and (known_hosts is None or not Path(known_hosts).is_file()):
        raise ConfigError(f"NLU_CI_DATA_GIT_KNOWN_HOSTS_FILE: SSH needs a known_hosts file with the server's host key "
                          f"(ssh-keyscan HOST > known_hosts, checked by hand); "
                          f"{'not set' if known_hosts is None else f'{str(known_hosts)[:200]!r} is not a file'}")
    if not settings.data_git_timeout > 0:
        raise ConfigError("--data-git-timeout / NLU_CI_DATA_GIT_TIMEOUT: must be > 0")
    if token and url.lower().startswith("http://"):
        log.warning("%s: the token is sent unencrypted (http://); use https:// outside a test", redact(url))
    return GitSource(url=url, ref=ref, path=_inner_path(settings.data), kind=kind, token=token,
                     user=settings.data_git_user or "x-access-token", ssh_key=key,
                     known_hosts=Path(known_hosts) if known_hosts else None,
                     folder=Path(settings.data_git_dir) if settings.data_git_dir else None,
                     timeout=float(settings.data_git_timeout), project=settings.project)


def refuse_with_platform(settings) -> None:
    """Data comes from one place: the platform's data endpoint or a git repository, not both."""
    if settings.data_git_url:
        raise ConfigError("NLU_CI_DATA_GIT_URL and RASA_PLATFORM_HOST are both set: the training data comes from one "
                          "place; unset RASA_PLATFORM_HOST (k8s/components/git-data sets it empty) or the git URL")
