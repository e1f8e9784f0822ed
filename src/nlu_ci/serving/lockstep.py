"""The lean server's workers switch to a pulled model together, as one process would (``lean_server``).

Each worker pulls the model URL itself and loads what it pulls, but does not answer with it yet: it keeps the
loaded model beside the one it serves (``stage``) and tells the supervisor ``loaded <name>``. When every worker
has loaded the same model, the supervisor writes its name into a page of memory shared by all of them
(``Shared.publish``: the name into the free slot, then one byte naming the slot, so no reader sees half a name).
Every request reads that name first (``Worker.current``) and, when it names the staged model, switches to it
(one reference assignment, as ``swap`` does): after the first answer by the new model no request anywhere is
answered by the old one. The first model too: no worker answers with it (nor says ready) before all have it. A
worker whose staged model is not the published one keeps serving what it serves (the next pull tries again).
"""
from __future__ import annotations

import mmap
import shutil
import threading

SLOT = 256  # bytes of a model name (nlu-ci's names are ~21 characters; a longer one is never published)


class Shared:
    """The published model name, in an anonymous shared mapping made before the workers are forked."""

    def __init__(self):
        self.map = mmap.mmap(-1, 1 + 2 * SLOT)

    def read(self) -> str | None:
        slot = self.map[0]
        raw = self.map[1 + slot * SLOT: 1 + (slot + 1) * SLOT].rstrip(b"\0")
        return raw.decode("utf-8", "replace") or None

    def publish(self, name: str) -> bool:
        data = name.encode("utf-8")
        if len(data) > SLOT:
            return False
        free = 1 - self.map[0]
        self.map[1 + free * SLOT: 1 + (free + 1) * SLOT] = data.ljust(SLOT, b"\0")
        self.map[0] = free
        return True


class Worker:
    """A worker's side: ``stage`` replaces ``swap``'s install; ``current`` is called by each parse first."""

    def __init__(self, shared: Shared, tell, metrics=None):
        self.shared, self.tell, self.metrics = shared, tell, metrics  # tell(bytes): to the supervisor
        self.staged: dict = {}  # id(project) -> (name, interpreter, model_dir, intents)
        self._lock = threading.Lock()  # the pulling thread stages, the request thread switches

    def stage(self, project, name: str, interpreter, model_dir: str, intents) -> bool:
        """True: installed now (already published); False: staged until published (also a worker's first model:
        the workers start answering with a model together, so /ready is 200 only once every worker has it)."""
        from nlu_ci.serving import swap

        with self._lock:
            old = self.staged.pop(id(project), None)
            if old is not None and old[2] != model_dir:
                shutil.rmtree(old[2], ignore_errors=True)
            if self.shared.read() == name:  # already what all answer with (a worker started again)
                self._install(project, name, interpreter, model_dir, intents)
            else:
                self.staged[id(project)] = (name, interpreter, model_dir, intents)
                project._nlu_ci_staged = name  # the next pull asks with its ETag (swap._update_from_server)
        self.tell(b"loaded " + name.encode("utf-8"))
        return swap.serving_model(project) == name

    def current(self, project) -> None:
        staged = self.staged.get(id(project))
        if staged is None or self.shared.read() != staged[0]:
            return
        with self._lock:
            if self.staged.get(id(project)) is staged:
                del self.staged[id(project)]
                self._install(project, *staged)

    def _install(self, project, name, interpreter, model_dir, intents) -> None:
        from nlu_ci.serving import swap

        project._nlu_ci_staged = None
        swap.install(project, name, interpreter, model_dir)
        if self.metrics is not None:
            self.metrics.served(name, intents)


class Tally:
    """The supervisor's side: which model each worker has loaded; ``publish`` once all have the same one."""

    def __init__(self, shared: Shared):
        self.shared, self.loaded = shared, {}

    def heard(self, pid: int, message: bytes) -> None:
        if message.startswith(b"loaded "):
            self.loaded[pid] = message[7:].decode("utf-8", "replace")

    def settle(self, live: list[int]) -> str | None:
        """Publish the model every live worker has loaded, if there is one and it is new; returns what it published."""
        names = {self.loaded.get(pid) for pid in live}
        if len(names) != 1 or None in names:
            return None
        (name,) = names
        if name == self.shared.read():
            return None
        return name if self.shared.publish(name) else None

    def forget(self, pid: int) -> None:
        self.loaded.pop(pid, None)
