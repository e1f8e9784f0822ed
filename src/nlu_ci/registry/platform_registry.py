"""The Rasa Platform as the registry (``--registry platform``; with ``auto``, chosen when ``RASA_PLATFORM_HOST`` is set).

The model is still trained into the local store (the PVC); the platform is where the serving model
lives: its zip is uploaded, the active model is the one carrying the tag, promotion moves the tag
(and the local ACTIVE pointer too), rollback moves the tag back. One client (one HTTP session) per
registry, so upload, evaluation and promotion agree on what was uploaded.

Evaluation (``--evaluation``): ``local`` (default) evaluates both models in the job on its held-out
split, the active model loaded from the store by name; when the active model is not in the store
(trained elsewhere, or pruned), it says so and both models are evaluated by the platform instead, so
the two numbers compared always come from the same test data. ``platform`` always asks the platform.
"""
from __future__ import annotations

import logging
from pathlib import Path

from nlu_ci.data import git_source
from nlu_ci.engine.model import Model
from nlu_ci.errors import ConfigError
from nlu_ci.option import Option
from nlu_ci.redact import redact
from nlu_ci.registry.base import Evaluated, Registry
from nlu_ci.registry.platform import PlatformClient
from nlu_ci.registry.store import ModelStore, iso, now_utc

log = logging.getLogger(__name__)

NAME = "platform"
OPTIONS = [
    Option("platform_host", "RASA_PLATFORM_HOST", None, "Rasa Platform base URL; set = use the platform"),
    Option("api_token", "RASA_API_TOKEN", None, "platform API token (prefer RASA_API_TOKEN_FILE)", "secret",
           secret_file_env="RASA_API_TOKEN_FILE"),
    Option("platform_tag", "RASA_PLATFORM_TAG", "active", "tag that marks the serving model ('production' on Rasa X)"),
    Option("platform_auth", "RASA_PLATFORM_AUTH", "bearer",
           "how the token is sent: bearer (Authorization header) or query (api_token=, older platforms; "
           "lands in proxy and server logs)", "choice", ("bearer", "query")),
    Option("evaluation", "NLU_CI_EVALUATION", "local", "who evaluates the models", "choice", ("local", "platform")),
    Option("eval_timeout", "NLU_CI_EVAL_TIMEOUT", 300.0, "how long to wait for a platform evaluation, seconds", "float"),
    Option("eval_poll_interval", "NLU_CI_EVAL_POLL_INTERVAL", 2.0, "seconds between platform evaluation polls", "float"),
]


def validate(settings) -> None:
    """This backend's rules on the settings (``settings.validate`` calls it): one line, exit 2."""
    if settings.evaluation == "platform" and not settings.platform_host:
        raise ConfigError("--evaluation platform needs RASA_PLATFORM_HOST")
    if settings.platform_host and not settings.platform_host.startswith(("http://", "https://")):
        raise ConfigError(f"RASA_PLATFORM_HOST: {redact(settings.platform_host)!r} must start with http:// or https://")
    for name in ("eval_timeout", "eval_poll_interval"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')}: must be > 0")


class PlatformRegistry(Registry):
    kind = "platform"
    uploads_candidates = True

    def __init__(self, store: ModelStore, client: PlatformClient, *, evaluation: str = "local",
                 dry_run: bool = False):
        super().__init__(store)
        self.client = client
        self.evaluation = evaluation
        self.dry_run = dry_run
        self.mode: str | None = None  # who evaluates this run: decided in upload()

    @property
    def tag(self) -> str:
        return self.client.tag_name

    @property
    def serving(self) -> str:
        return f"tagged {self.tag!r}"

    def fetch_data(self, workdir: Path) -> tuple[Path, str]:
        return self.client.download_data(workdir), self.client.data_url()

    def active(self) -> str | None:
        return self.client.active_model()

    def activate(self, name: str) -> str | None:
        """Tag ``name`` on the platform, then point the local ACTIVE at it; returns the previously tagged model."""
        previous = self.client.active_model()
        self.client.tag(self.client.uploaded.get(name, name))
        if name in self.store.models():
            self.store.activate(name)
        return previous

    # ------------------------------------------------------------ a run's candidate
    def evaluation_mode(self, active: str | None, report: dict | None = None) -> str:
        """``local`` or ``platform``: who evaluates the candidate and the active model in this run."""
        if self.evaluation == "platform":
            return "platform"
        if active and active not in self.store.models():
            warning = (f"active model {active} (tag {self.tag!r} on the platform) is not in the local "
                       f"store {self.store.dir}: it cannot be evaluated here, so both models are evaluated by the platform")
            log.warning("%s", warning)
            if report is not None:
                report.setdefault("warnings", []).append(warning)
            return "platform"
        return "local"

    def upload(self, staged: Path, name: str, active: str | None, report: dict, scratch: Path) -> None:
        """Decide who evaluates and upload the candidate: in every run that may promote it; a dry run uploads
        it only when the platform has to evaluate it. ``report["platform"]`` records host, tag, mode, upload."""
        self.mode = self.evaluation_mode(active, report)
        section = {"host": redact(self.client.host), "project": self.client.project, "tag": self.tag,
                   "evaluation": self.mode, "active": active, "uploaded": None}
        report["platform"] = section
        if self.dry_run and self.mode == "local":
            log.info("dry run: the candidate is not uploaded to the platform")
            return
        section["uploaded"] = self.client.upload_model(staged, name, scratch_dir=scratch)

    def evaluate(self, candidate: Model, name: str, active: str | None, test: list[dict],
                 report: dict) -> Evaluated:
        if (self.mode or self.evaluation_mode(active, report)) == "local":
            return self.evaluate_locally(candidate, active, test, report)
        c = self.client
        result = c.evaluate(c.uploaded.get(name, name))
        log.info("platform evaluation of %s: intent F1 %.4f", name, result.intent_f1)
        tested = [{"text": u["text"], "intent": u["intent"]} for u in result.utterances]  # the platform's own
        if not active:
            return Evaluated(result, None, None, tested)
        active_result = c.evaluate(active)
        log.info("platform evaluation of %s: intent F1 %.4f", active, active_result.intent_f1)
        here = Model(self.store.path(active), active) if active in self.store.models() else None
        return Evaluated(result, active_result, here, tested)

    # ------------------------------------------------------------ status and rollback
    def status(self) -> tuple[dict, list[str]]:
        c = self.client
        models = c.list_models()
        active = next((m["model"] for m in models if self.tag in m["tags"]), None)
        data = {"host": redact(c.host), "tag": self.tag, "active": active,
                "previous": c.previous_model(active) if active else None,
                "models": [{"model": m["model"], "tags": m["tags"]} for m in models]}
        lines = [f"platform {data['host']} (project {c.project}): "
                 f"{active or 'no model'} tagged {self.tag!r}; {len(models)} model(s) uploaded"]
        return data, lines

    def rollback_target(self, requested: str | None) -> tuple[str, str | None]:
        """(model to tag, model tagged now). Default target: the local PREVIOUS pointer when the platform has
        that model, else the newest platform model older than the tagged one. ConfigError when there is none."""
        c = self.client
        names = c.model_names()
        current = c.active_model()
        target = requested
        if target is None:
            local_previous = self.store.previous_name()
            if local_previous and local_previous != current and local_previous in names:
                target = local_previous
            else:
                target = c.previous_model(current)
        if not target:
            raise ConfigError(f"rollback: no model before {current or 'none'} on the platform; name one: "
                              "nlu-ci rollback MODEL")
        if target not in names:
            raise ConfigError(f"rollback: the platform has no model named {target!r}")
        return target, current

    def rollback(self, requested: str | None) -> tuple[str, str | None]:
        target, current = self.rollback_target(requested)
        if target == current:
            return target, current
        self.client.tag(target)
        if target in self.store.models():
            self.store.activate(target)
        self.store.append_history({"event": "rollback", "at": iso(now_utc()), "model": target, "previous": current,
                                   "outcome": "rollback", "registry": "platform"})
        log.info("rolled back on the platform: %s tagged %r (was %s)", target, self.tag, current)
        return target, current


def from_settings(settings, store: ModelStore) -> PlatformRegistry | None:
    if not settings.platform_host:
        return None
    git_source.refuse_with_platform(settings)  # data from git and from the platform: say which (exit 2)
    return PlatformRegistry(store, PlatformClient.from_settings(settings), evaluation=settings.evaluation,
                            dry_run=settings.dry_run)
