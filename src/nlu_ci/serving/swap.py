"""rasa_nlu 0.15's model pulling, made safe for a server under load (applied by ``nlu-ci serve --swap atomic``).

What the stock code does, and what goes wrong (measured by ``tests/serving/bench_swap.py``):

1. ``Project.update_model_from_dir_and_unload_others`` first *unloads* the running model, then loads the new one.
   A ``/parse`` arriving in between finds no loaded model, falls back to the newest ``model_*`` name it knows,
   tries to load it from the server's ``--path`` (where it is not) and answers 500; names with a ``-1`` suffix
   even fail rasa_nlu's timestamp parsing. Here: the new model is loaded while the old one answers, then one
   reference assignment switches them; ``parse`` takes one snapshot of that reference per request, so every
   request is answered by the old or the new model, whole. (The stock ``parse`` also takes a reader lock that
   it does not release when it raises: after one such 500 the next swap waits for the writer lock for ever.
   The parse here takes no lock.)
2. On 204 the stock puller returns the answer's ``ETag`` as a new fingerprint and loads an empty folder; a
   failed load updates the fingerprint first (the model is never tried again) and kills the pulling thread (the
   server never updates again). Here: only a non-empty download is loaded, the fingerprint is taken only after
   the model loaded, and a failed pull is logged in one line and retried at the next interval.
3. Every pull leaves a temporary folder behind (a full model copy per swap, an empty folder every interval).
   Here: empty folders are removed at once, a replaced model's folder after the switch (its interpreter holds
   what it needs in memory).

4. The stock puller loads whatever it unzipped. Here the unpacked model is checked first (``pulled.check``: its
   files against ``nlu_ci.json``'s sha256 list, the ETag against that list): on a mismatch it is not loaded, the
   old model keeps answering, one warning line and ``nlu_ci_serving_model_pulls_total{result="rejected"}`` say so.
   With nothing loaded the fingerprint is not sent, so a model that is gone or failed to load is pulled again.

``apply()`` is idempotent; it patches ``rasa_nlu.project`` of this process only.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time

log = logging.getLogger(__name__)

_applied = False
_config = {"metrics": None, "require_metadata": True,  # set by apply(): the server's metrics, what is verified
           "stage": None, "current": None}  # set by lockstep (the lean server's workers): stage, switch


def model_name_from(filename: str | None) -> str | None:
    """The model name from the ``filename`` header (``<name>.zip``); rasa_nlu 0.15 uses ``str.strip('.zip')``, which
    also eats leading/trailing 'z', 'i', 'p' and '.' characters of the name."""
    if not filename:
        return None
    name = os.path.basename(filename.strip())
    return name[:-4] if name.endswith(".zip") else name or None


def _update_model(self, model_dir: str, model_name: str) -> bool:
    interpreter = self._interpreter_for_model(model_name, model_dir)  # the old model keeps answering meanwhile
    stage = _config.get("stage")
    if stage is not None:  # the lean server's workers switch together (lockstep.py)
        from nlu_ci.serving import pulled

        return stage(self, model_name, interpreter, model_dir, pulled.intents(model_dir))
    install(self, model_name, interpreter, model_dir)
    return True


def install(project, model_name: str, interpreter, model_dir: str) -> None:
    """Answer with ``interpreter`` from now on; the replaced model's folder is removed."""
    old_dirs = getattr(project, "_nlu_ci_dirs", [])
    project._models = {model_name: interpreter}  # one reference assignment: a reader sees the old dict or the new
    project._nlu_ci_dirs = [model_dir]
    for d in old_dirs:
        if d != model_dir:
            shutil.rmtree(d, ignore_errors=True)
    log.info("now serving model %s", model_name)


def _parse_factory(original):
    def parse(self, text, parsing_time=None, requested_model_name=None):
        current = _config.get("current")
        if current is not None:
            current(self)  # lockstep: switch to the model all workers have, if it was published since
        models = self._models  # one snapshot for the whole request
        if self.pull_models:
            loaded = [(name, interp) for name, interp in models.items() if interp is not None]
            if loaded and requested_model_name in (None, loaded[0][0]):
                name, interpreter = loaded[0]
                response = interpreter.parse(text, parsing_time)
                response["project"] = self._project
                response["model"] = name
                return response
        return original(self, text, parsing_time, requested_model_name)

    return parse


def _update_from_server(model_server, project_obj) -> None:
    from rasa_nlu import project

    from nlu_ci.serving import pulled

    metrics = _config["metrics"]
    model_dir = tempfile.mkdtemp(prefix="nlu-ci-pulled-")
    serving = serving_model(project_obj)
    try:
        # nothing loaded (the first pull, a model that failed to load or was unloaded): ask for the model whatever
        # the fingerprint, so the server answers 200 and not 204 for ever
        staged = getattr(project_obj, "_nlu_ci_staged", None)  # lockstep: loaded, not answering yet
        known = project_obj.fingerprint if serving or staged else None
        result, fingerprint, filename, detail = pulled.fetch(model_server, model_dir, known)
        if result == "updated" and os.listdir(model_dir):
            name = model_name_from(filename) or project._get_remote_model_name(None)
            problem = pulled.check(model_dir, name, fingerprint, _config["require_metadata"])
            if problem:
                result = "rejected"
                log.warning("pulled model %s from %s does not match its checksums, not loaded, still serving %s: %s",
                            name[:100], model_server.url, serving or "nothing", problem)
            else:
                t0 = time.monotonic()
                project_obj.update_model_from_dir_and_unload_others(model_dir, name)
                project_obj.fingerprint = fingerprint  # only now: a model that failed to load is tried again
                if metrics is not None:
                    metrics.swapped(time.monotonic() - t0)
                    if serving_model(project_obj) == name:  # else staged: lockstep reports it when it switches
                        metrics.served(name, pulled.intents(model_dir))
                    metrics.pulled("updated")
                return
        elif result == "failed":
            log.warning("pulling a model from %s failed (%s), still serving %s", model_server.url, detail,
                        serving or "nothing")
        if metrics is not None:
            metrics.pulled(result)
    except Exception as err:  # a model that does not load: keep serving the old one, retry later
        if metrics is not None:
            metrics.pulled("failed")
        log.warning("pulling a model from %s failed, still serving %s: %s", model_server.url,
                    ", ".join(project_obj._list_loaded_models()) or "nothing", " ".join(str(err).split())[:300])
    shutil.rmtree(model_dir, ignore_errors=True)


def _pulling_worker(model_server, wait_time_between_pulls, project_obj) -> None:
    while True:
        _update_from_server(model_server, project_obj)
        time.sleep(wait_time_between_pulls)


def apply(metrics=None, require_metadata: bool = True) -> None:
    """Patch ``rasa_nlu.project``; ``metrics`` (a ``ServingMetrics``) counts pulls and swaps; ``require_metadata``:
    a pulled model without ``nlu_ci.json`` is refused (serve-models always sends it; a platform does not)."""
    global _applied
    if metrics is not None:
        _config["metrics"] = metrics
    _config["require_metadata"] = require_metadata
    if _applied:
        return
    from rasa_nlu import project

    project.Project.update_model_from_dir_and_unload_others = _update_model
    project.Project.parse = _parse_factory(project.Project.parse)
    project._update_model_from_server = _update_from_server
    project._run_model_pulling_worker = _pulling_worker
    _applied = True


def serving_model(project_obj) -> str | None:
    """The model a pulling project answers with, or None (nothing pulled yet: rasa_nlu's keyword fallback)."""
    from rasa_nlu.project import FALLBACK_MODEL_NAME

    loaded = [m for m in project_obj._list_loaded_models() if m != FALLBACK_MODEL_NAME]
    return loaded[0] if loaded else None
