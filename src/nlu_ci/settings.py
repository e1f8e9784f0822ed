"""Settings: every option is a command-line flag whose default comes from an environment variable.

12-factor and Kubernetes-friendly: a CronJob sets environment variables (or mounts files for
secrets), a person types flags. Secrets come from ``*_FILE`` variables (a mounted Secret) when
set; the file wins over the plain variable. Every secret is registered with ``nlu_ci.redact``
the moment it is read, so it can never be printed.

One declaration per option (``option.Option``). The job's own options are in ``OPTIONS`` below; each output
channel and each registry backend declares the options it owns in its module (``OPTIONS = [...]``), and
``PLUGINS`` gathers them from the two registration lists (``outputs.channels.CHANNELS``,
``registry.backends.BACKENDS``); a plugin's ``validate(settings)`` checks its own rules.
"""
from __future__ import annotations

import argparse
import math
import os
from dataclasses import field, fields, make_dataclass
from pathlib import Path
from typing import Any

from nlu_ci import names, redact, safeio
from nlu_ci.errors import ConfigError
from nlu_ci.option import Option
from nlu_ci.outputs.channels import CHANNELS
from nlu_ci.registry import backends

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}

__all__ = ["BY_NAME", "OPTIONS", "PLUGINS", "Option", "Settings", "add_arguments", "env_default", "from_env",
           "from_namespace"]


OPTIONS: list[Option] = [
    # -- the job
    Option("models_dir", "NLU_CI_MODELS_DIR", "var/models", "model store root (the PVC mount)", "path"),
    Option("project", "NLU_CI_PROJECT", "default", "project name (a folder in the store; the platform project)"),
    Option("data", "NLU_CI_DATA", None, "training data: a Rasa NLU JSON/Markdown/YAML file or a folder of them", "path"),
    Option("test_data", "NLU_CI_TEST_DATA", None, "held-out test data file (default: a stable hash split)", "path"),
    Option("test_fraction", "NLU_CI_TEST_FRACTION", 0.2, "share of each intent held out by the hash split", "float"),
    Option("split_salt", "NLU_CI_SPLIT_SALT", "nlu-ci", "salt of the hash split (change it only to re-draw the split)"),
    Option("max_repair_share", "NLU_CI_MAX_REPAIR_SHARE", 0.01,
           "refuse data when more than this share of examples needed an entity repair (README 'Training data')",
           "float"),
    Option("strict_data", "NLU_CI_STRICT_DATA", False, "data check warnings fail the run/validate (exit 2)", "bool"),
    Option("configs", "NLU_CI_CONFIG", ["nlu_config.yml"], "rasa_nlu pipeline config (repeat, or comma-separate in env)", "paths"),
    Option("policy", "NLU_CI_POLICY", None, "promotion policy file (policy.yml); default: built-in policy", "path"),
    Option("out_of_scope", "NLU_CI_OUT_OF_SCOPE", None, "messages that must fall back (Rasa NLU data or text, one "
           "per line): the report's 'fallback' counts those each model would answer (docs/policy.md)", "path"),
    Option("report", "NLU_CI_REPORT", None, "also write the JSON run report to this path", "path"),
    Option("keep_models", "NLU_CI_KEEP_MODELS", 10, "keep the newest N models (never the active or previous one)", "int"),
    Option("dry_run", "NLU_CI_DRY_RUN", False, "train and evaluate, never promote", "bool"),
    Option("accept_relabels", "NLU_CI_ACCEPT_RELABELS", None,
           "run: judge the relabelled held-out examples by the data's new labels, when this is the digest (or its "
           "first 15+ characters) of exactly those relabels, as a rejected run's data_diff.digest names them "
           "(default: judged by the active model's labels; README 'Relabelled examples')"),
    Option("output", "NLU_CI_OUTPUT", "text", "what to print on stdout", "choice", ("text", "json")),
    Option("log_level", "NLU_CI_LOG_LEVEL", "INFO", "log level", "choice", ("DEBUG", "INFO", "WARNING", "ERROR")),
    Option("log_format", "NLU_CI_LOG_FORMAT", "text", "log line format on stderr", "choice", ("text", "json")),
    Option("workers", "NLU_CI_WORKERS", 0,
           "processes for parallel fits (calibration folds, cv folds) and nlu-ci serve's lean workers; 0: the container's CPU limit (cgroup)", "int"),
    # -- cross-validated config search (README "Choosing among configs"; job/search/)
    Option("cv_folds", "NLU_CI_CV_FOLDS", 0,
           "with several --config: choose by K-fold cross-validation on the training side (K >= 2; 0: one "
           "validation split)", "int"),
    Option("cv_job_template", "NLU_CI_CV_JOB_TEMPLATE", None,
           "run the cv folds as this Kubernetes Indexed Job (a Job manifest; k8s/components/parallel-search) "
           "instead of processes on this pod", "path"),
    Option("cv_job_timeout", "NLU_CI_CV_JOB_TIMEOUT", 3600.0, "seconds the Indexed Job of the cv search may take",
           "float"),
    Option("cv_result_file", "NLU_CI_CV_RESULT_FILE", None,
           "cv-fold: also write the result JSON here (a pod's terminationMessagePath)", "path"),
    # -- HTTP (the platform, Slack, pulls; the platform's own options: registry/platform_registry.py)
    Option("http_timeout", "NLU_CI_HTTP_TIMEOUT", 10.0, "connect/read timeout of each HTTP request, seconds", "float"),
    Option("http_retries", "NLU_CI_HTTP_RETRIES", 5, "attempts for retryable HTTP failures", "int"),
    Option("http_backoff", "NLU_CI_HTTP_BACKOFF", 0.5,
           "first retry backoff, seconds (exponential with jitter, capped at 30 s)", "float"),
    # -- production messages (nlu-ci inbox; docs/inbox.md)
    Option("messages", "NLU_CI_MESSAGES_URL", None,
           "production user messages: a Rasa SQL tracker store URL (sqlite:///path, postgresql://...) or a "
           "rasa_nlu query-log folder; unset: none are read"),
    Option("messages_url_file", "NLU_CI_MESSAGES_URL_FILE", None,
           "a file holding that URL (a mounted Secret; wins over NLU_CI_MESSAGES_URL); its password is redacted",
           "path"),
    Option("messages_limit", "NLU_CI_MESSAGES_LIMIT", 5000, "read at most the newest N user events (before the filters)", "int"),
    Option("messages_max_age_days", "NLU_CI_MESSAGES_MAX_AGE_DAYS", 30.0, "read only messages of the last N days",
           "float"),
    Option("mask_messages", "NLU_CI_MASK_MESSAGES", True,
           "replace e-mail addresses and runs of 6+ digits with <email>/<number> as messages are read", "bool"),
    Option("strict_messages", "NLU_CI_STRICT_MESSAGES", False,
           "a message source that is down, has an unknown schema or bad lines fails the command (exit 2)", "bool"),
    Option("live_messages", "NLU_CI_LIVE_MESSAGES", 500,
           "run: candidate and active predict the newest N unique production messages (the report's 'live')", "int"),
    # -- data from git (docs/git-data.md)
    Option("data_git_url", "NLU_CI_DATA_GIT_URL", None,
           "fetch the training data from this git repository (https://, ssh://, user@host:path, git://, file://); "
           "--data is then the path inside it (default: the whole repository)"),
    Option("data_git_ref", "NLU_CI_DATA_GIT_REF", None, "branch or tag to fetch (default: the remote's default branch)"),
    Option("data_git_token", "NLU_CI_DATA_GIT_TOKEN", None,
           "HTTPS token for the git server (prefer NLU_CI_DATA_GIT_TOKEN_FILE)", "secret",
           secret_file_env="NLU_CI_DATA_GIT_TOKEN_FILE"),
    Option("data_git_user", "NLU_CI_DATA_GIT_USER", "x-access-token",
           "user name sent with the token (a user name in the URL wins)"),
    Option("data_git_ssh_key", "NLU_CI_DATA_GIT_SSH_KEY", None,
           "SSH private key for ssh:// URLs (prefer NLU_CI_DATA_GIT_SSH_KEY_FILE)", "secret",
           secret_file_env="NLU_CI_DATA_GIT_SSH_KEY_FILE"),
    Option("data_git_known_hosts", "NLU_CI_DATA_GIT_KNOWN_HOSTS_FILE", None,
           "known_hosts file the SSH server's host key is checked against (required with SSH)", "path"),
    Option("data_git_dir", "NLU_CI_DATA_GIT_DIR", None,
           "folder the repository is fetched into (an emptyDir in a cluster; default: the run's temp folder)", "path"),
    Option("data_git_timeout", "NLU_CI_DATA_GIT_TIMEOUT", 300.0, "seconds the whole fetch may take", "float"),
    # -- model server bounds (nlu-ci serve-models; serving/bounded.py, docs/serving-monitoring.md)
    Option("model_server_max_connections", "NLU_CI_MODEL_SERVER_MAX_CONNECTIONS", 128,
           "serve-models: connections open at once, one thread each (when full, the one waiting longest for its "
           "request is closed)", "int"),
    Option("model_server_head_timeout", "NLU_CI_MODEL_SERVER_HEAD_TIMEOUT", 10.0,
           "serve-models: seconds a client has to send a whole request head, also the keep-alive idle time", "float"),
    Option("model_server_io_timeout", "NLU_CI_MODEL_SERVER_IO_TIMEOUT", 30.0,
           "serve-models: seconds one read or write may wait for a client", "float"),
    # -- nlu-ci serve: request limits, serving metrics, query log
    Option("max_message_chars", "NLU_CI_MAX_MESSAGE_CHARS", 10_000,
           "longest message /parse accepts, characters (longer: 413)", "int"),
    Option("fallback_threshold", "NLU_CI_FALLBACK_THRESHOLD", 0.3,
           "intent confidence below which a message counts as low confidence (serving metrics)", "float"),
    Option("query_log", "NLU_CI_QUERY_LOG", None, "write rasa_nlu's query log (one JSON record per parse) into this "
           "folder (default: off; docs/serving.md)", "path"),
    Option("query_log_max_mb", "NLU_CI_QUERY_LOG_MAX_MB", 100.0, "the query log's files add up to at most this, MB "
           "(the oldest are removed)", "float"),
    Option("query_log_max_age_hours", "NLU_CI_QUERY_LOG_MAX_AGE_HOURS", 168.0, "query log files older than this are "
           "removed, hours", "float"),
    Option("query_log_mask", "NLU_CI_QUERY_LOG_MASK", True, "mask e-mail addresses and runs of 6+ digits in the query "
           "log", "bool"),
    # -- hostile inputs and a full volume (docs/reliability.md)
    Option("keep_reports", "NLU_CI_KEEP_REPORTS", 30, "keep the reports, predictions and review pages of the newest "
           "N runs (a full volume may take them down to the newest 3)", "int"),
    Option("max_intents", "NLU_CI_MAX_INTENTS", 2000, "refuse training data with more intents than this (exit 2): "
           "the classifiers' memory grows with intents x features", "int"),
    # -- pull-request check judged by the base (nlu-ci check; docs/check.md)
    Option("active_model_url", "NLU_CI_ACTIVE_MODEL_URL", None,
           "check: pull the active model from this nlu-ci serve-models URL (http://host:8080 or .../models/<project>) "
           "instead of reading the store"),
    Option("base_data", "NLU_CI_BASE_DATA", None,
           "check: the base branch's training data; its hash-split held-out examples are the test set", "path"),
    Option("base_policy", "NLU_CI_BASE_POLICY", None,
           "check: the base branch's policy.yml (default: the built-in policy; the branch's --policy is ignored "
           "when a base is given)", "path"),
    # -- Kubernetes
    Option("kubernetes", "NLU_CI_KUBERNETES", "auto", "use the Kubernetes API (Lease, Events)", "choice",
           ("auto", "on", "off")),
    Option("pod_name", "POD_NAME", None, "this pod's name (downward API)"),
    Option("pod_namespace", "POD_NAMESPACE", None, "this pod's namespace (downward API)"),
    Option("pod_uid", "POD_UID", None, "this pod's uid (downward API)"),
    Option("job_name", "JOB_NAME", None, "the Job that runs this pod: Lease holder, Events (downward API label)"),
    Option("job_uid", "JOB_UID", None, "that Job's uid (downward API label batch.kubernetes.io/controller-uid)"),
    Option("lease_name", "NLU_CI_LEASE_NAME", "nlu-ci", "name of the coordination.k8s.io Lease"),
    Option("lease_duration", "NLU_CI_LEASE_DURATION", 7200, "Lease duration, seconds", "int"),
    Option("restart_deployment", "NLU_CI_RESTART_DEPLOYMENT", None,
           "after a promotion, rollout-restart this Deployment ('name' or 'namespace/name')"),
    # -- serving (nlu-ci serve-models, nlu-ci serve)
    Option("host", "NLU_CI_HOST", "127.0.0.1", "address the server listens on (0.0.0.0 in a pod)"),
    Option("port", "NLU_CI_PORT", None, "port the server listens on (default: 8080 serve-models, 5000 serve)", "int"),
    Option("zip_cache", "NLU_CI_ZIP_CACHE", None, "folder for the cached model zips (default: $TMPDIR/nlu-ci-zips)",
           "path"),
    Option("model_url", "NLU_CI_MODEL_URL", None,
           "URL rasa_nlu pulls its model from (serve-models' /models/<project>; default with RASA_PLATFORM_HOST: "
           "the platform's tagged model)"),
    Option("pull_interval", "NLU_CI_PULL_INTERVAL", 10.0, "seconds between two pulls of the model URL", "float"),
    Option("swap", "NLU_CI_SWAP", "atomic", "how a pulled model replaces the old one: 'atomic' (load, then switch) or "
           "'stock' (rasa_nlu 0.15's unload-then-load; requests in between fail)", "choice", ("atomic", "stock")),
    Option("server", "NLU_CI_SERVER", "lean", "serve: 'lean' (aiohttp, --workers processes, the parse in the event loop) "
           "or 'rasa' (rasa_nlu 0.15's own Twisted server); the same answers (docs/serving.md)", "choice",
           ("lean", "rasa")),
    Option("rasa_nlu_token", "RASA_NLU_TOKEN", None, "token rasa_nlu's server asks of every request (?token=)",
           "secret", secret_file_env="RASA_NLU_TOKEN_FILE"),
]
# the plugins: registry backends (and --registry), output channels; each declares its own options
PLUGINS = [backends, *backends.BACKENDS, *CHANNELS]
OPTIONS += [o for plugin in PLUGINS for o in plugin.OPTIONS]
BY_NAME = {o.name: o for o in OPTIONS}


class SettingsMethods:
    """What every Settings object can do; its fields come from ``OPTIONS`` (one source for each default)."""

    @property
    def project_dir(self) -> Path:
        return self.models_dir / self.project

    @property
    def config(self) -> Path:
        return self.configs[0]

    def validate(self):
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"--test-fraction / NLU_CI_TEST_FRACTION: {self.test_fraction} is not between 0 and 1")
        if not 0.0 <= self.max_repair_share <= 1.0:
            raise ConfigError(f"--max-repair-share / NLU_CI_MAX_REPAIR_SHARE: {self.max_repair_share} is not between 0 and 1")
        if self.keep_models < 2:
            raise ConfigError(f"--keep-models / NLU_CI_KEEP_MODELS: {self.keep_models} must be at least 2")
        if self.cv_folds < 0 or self.cv_folds == 1:
            raise ConfigError(f"--cv-folds / NLU_CI_CV_FOLDS: {self.cv_folds}: cross-validation needs at least 2 "
                              "folds (0: off)")
        if self.cv_job_timeout <= 0:
            raise ConfigError("--cv-job-timeout / NLU_CI_CV_JOB_TIMEOUT: must be > 0")
        if self.keep_reports < 1 or self.max_intents < 2:
            raise ConfigError("--keep-reports must be at least 1 and --max-intents at least 2")
        if names.project_problem(self.project):
            raise ConfigError(f"--project / NLU_CI_PROJECT: {names.project_problem(self.project)}")
        if self.port is not None and not 0 < self.port < 65536:
            raise ConfigError(f"--port / NLU_CI_PORT: {self.port} is not a TCP port (1-65535)")
        if self.model_url and not self.model_url.startswith(("http://", "https://")):
            raise ConfigError(f"--model-url / NLU_CI_MODEL_URL: {redact.redact(self.model_url)!r} must start with "
                              "http:// or https://")
        for name in ("http_timeout", "http_backoff", "pull_interval"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name.replace('_', '-')}: must be > 0")
        for plugin in PLUGINS:
            if hasattr(plugin, "validate"):
                plugin.validate(self)
        return self

    def public(self) -> dict[str, Any]:
        """The settings without secrets, for reports and `--dry-run` output."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if BY_NAME.get(f.name) and BY_NAME[f.name].kind == "secret":
                value = "***" if value else None
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, list):
                value = [str(v) for v in value]
            out[f.name] = value
        if out.get("platform_host"):
            out["platform_host"] = redact.redact(out["platform_host"])
        return out


def _field(option: Option) -> tuple[str, Any, Any]:
    default = option.default
    if isinstance(default, list):
        return option.name, option.type, field(default_factory=lambda d=default: [Path(p) for p in d])
    if option.kind == "path" and default is not None:
        default = Path(default)
    return option.name, option.type, field(default=default, repr=option.kind != "secret")


Settings = make_dataclass("Settings", [_field(o) for o in OPTIONS], bases=(SettingsMethods,))
Settings.__doc__ = "Every option of ``OPTIONS`` as a field, defaults from there. Build with ``from_namespace``."
Settings.__module__ = __name__


# ---------------------------------------------------------------- parsing

def _convert(option: Option, raw: Any, source: str) -> Any:
    if raw is None:
        return None
    try:
        if option.kind == "int":
            return int(raw)
        if option.kind == "float":
            value = float(raw)
            if not math.isfinite(value):  # nan, inf, 1e309: no timeout or fraction can be that
                raise ValueError(raw)
            return value
        if option.kind == "bool":
            if isinstance(raw, bool):
                return raw
            low = str(raw).strip().lower()
            if low in TRUE:
                return True
            if low in FALSE:
                return False
            raise ValueError(raw)
        if option.kind in ("path", "paths"):
            _check_path_lengths(raw, source)
        if option.kind == "path":
            path = Path(raw) if str(raw) != "" else None
            if path is not None and option.name == "report":
                _check_writable_path(path, source)
            return path
        if option.kind == "paths":
            items = list(raw) if isinstance(raw, list | tuple) else str(raw).split(",")
            paths = [Path(str(p).strip()) for p in items if str(p).strip()]
            if not paths:
                raise ValueError(raw)  # NLU_CI_CONFIG=',' names no file at all
            return paths
        if option.kind == "choice":
            value = str(raw)
            if option.name == "log_level":
                value = value.upper()
            if value not in option.choices:
                raise ValueError(raw)
            return value
        return str(raw) if str(raw) != "" else None
    except ValueError:
        expected = {"int": "a whole number", "float": "a finite number", "bool": "true or false",
                    "paths": "a file name (or a comma-separated list)",
                    "choice": "one of " + ", ".join(option.choices)}.get(option.kind, "a value")
        shown = "***" if option.kind == "secret" else _short(repr(raw))
        raise ConfigError(f"{source}: {shown} is not {expected}") from None


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _check_path_lengths(raw: Any, source: str) -> None:
    """A path no file system can hold (over NAME_MAX/PATH_MAX): one line now, not ENAMETOOLONG in a library."""
    for item in raw if isinstance(raw, list | tuple) else str(raw).split(","):
        problem = names.path_problem(str(item))
        if problem:
            raise ConfigError(f"{source}: {_short(repr(str(item)))}: {problem}")


def _check_writable_path(path: Path, source: str) -> None:
    """An output file whose folder cannot exist (an existing file on the way) is bad usage, found at once."""
    if path.is_dir():
        raise ConfigError(f"{source}: {_short(str(path))} is a folder, not a file")
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise ConfigError(f"{source}: {_short(str(path))}: {parent} is not a folder")
            return


def _read_secret_file(path: str, env: str) -> str:
    # a regular file of at most 64 KiB, UTF-8: never a FIFO (hangs) or /dev/zero (fills memory)
    try:
        return safeio.read_text(path, "secret file", kind="secret").strip()
    except ConfigError as err:
        raise ConfigError(f"{env}: cannot read secret file {err}") from None


def env_default(option: Option, environ: dict[str, str]) -> Any:
    """The value for ``option`` from the environment (or its built-in default)."""
    if option.kind == "secret":
        if option.secret_file_env and environ.get(option.secret_file_env):
            value = _read_secret_file(environ[option.secret_file_env], option.secret_file_env)
            redact.register(value)
            return value or None
        value = environ.get(option.env) or None
        redact.register(value)
        return value
    if option.env in environ:
        return _convert(option, environ[option.env], option.env)
    return _convert(option, option.default, option.env)


def add_arguments(parser: argparse.ArgumentParser, names: list[str], environ: dict[str, str] | None = None) -> None:
    """Add ``--flag`` for each setting in ``names``; defaults come from the environment."""
    environ = dict(os.environ if environ is None else environ)
    for name in names:
        option = BY_NAME[name]
        flag = "--" + name.replace("_", "-")
        help_text = f"{option.help} [env {option.env}"
        if option.secret_file_env:
            help_text += f" or {option.secret_file_env}"
        help_text += "]"
        if option.kind == "bool":
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif option.kind == "paths":
            dest_flag = "--config" if name == "configs" else flag
            parser.add_argument(dest_flag, dest=name, action="append", default=None, metavar="FILE", help=help_text)
        elif option.kind == "choice":
            parser.add_argument(flag, dest=name, choices=option.choices, default=None, help=help_text)
        elif option.kind == "secret":
            continue  # secrets only from the environment / mounted files, never on a command line
        else:
            parser.add_argument(flag, dest=name, default=None, help=help_text)
    parser.set_defaults(_environ=environ)


def from_namespace(ns: argparse.Namespace, environ: dict[str, str] | None = None) -> Settings:
    """Settings from parsed flags, falling back to the environment, then built-in defaults."""
    environ = dict(getattr(ns, "_environ", None) or (os.environ if environ is None else environ))
    values: dict[str, Any] = {}
    for option in OPTIONS:
        flag_value = getattr(ns, option.name, None)
        if flag_value is not None and option.kind != "secret":
            values[option.name] = _convert(option, flag_value, "--" + option.name.replace("_", "-"))
        else:
            values[option.name] = env_default(option, environ)
    values = {k: v for k, v in values.items() if v is not None or k in _NULLABLE}
    return Settings(**values).validate()


_NULLABLE = {f.name for f in fields(Settings) if f.default is None}


def from_env(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the environment only (library use), with keyword overrides."""
    ns = argparse.Namespace(**overrides)
    return from_namespace(ns, environ)
