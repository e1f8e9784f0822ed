"""A fork server for the crash-consistency test: imports nlu-ci, rasa_nlu and scikit-learn once, then forks one
child per request; each child is a separate process running exactly ``nlu_ci.cli.main(args)`` (the code
``nlu-ci`` runs) with its own environment, stdout/stderr to a log file, and is killed by the test with
SIGKILL at a random moment. Forking saves the ~2 s of imports per run, so 50+ kills fit in the test budget.

Protocol (one JSON object per line): request ``{"args": [...], "env": {...}, "log": path}`` on stdin;
answers ``{"pid": N}`` at once, then ``{"pid": N, "exit": code}`` when the child ended (``-9``: killed).
"""
from __future__ import annotations

import json
import os
import signal
import sys


def main() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no BLAS thread pool across fork()
    import rasa_nlu.classifiers.sklearn_intent_classifier  # noqa: F401
    import rasa_nlu.extractors.crf_entity_extractor  # noqa: F401
    import rasa_nlu.featurizers.count_vectors_featurizer  # noqa: F401

    import nlu_ci.cli  # noqa: F401
    import nlu_ci.components.intent  # noqa: F401
    import nlu_ci.engine.predict  # noqa: F401
    import nlu_ci.engine.training  # noqa: F401
    import nlu_ci.pipeline  # noqa: F401

    out = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                os.environ.clear()
                os.environ.update(request["env"])
                fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.close(fd)
                sys.stdout = os.fdopen(1, "w", buffering=1)
                sys.stderr = os.fdopen(2, "w", buffering=1)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                from nlu_ci.cli import main as cli_main

                code = cli_main(request["args"])
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:  # noqa: BLE001 - reported as exit 70
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code or 0)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()
        _, status = os.waitpid(pid, 0)
        out.write(json.dumps({"pid": pid, "exit": os.waitstatus_to_exitcode(status)}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
