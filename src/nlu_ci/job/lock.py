"""One lock for a run: the store's file lock (the PVC) and, in a cluster, the Lease, taken and given back together.

``check()`` renews the Lease synchronously: the pipeline calls it right before a promotion, so a run whose
Lease was taken over while it worked promotes nothing (``LeaseLost``: outcome ``failed``, exit 1).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from nlu_ci.errors import LockedError, RuntimeFailure
from nlu_ci.registry.store import ModelStore

log = logging.getLogger(__name__)


class LeaseLost(RuntimeFailure):
    """Another run took this run's Lease: it must not promote."""

    kind = "lease_lost"


class RunLock:
    def __init__(self, store: ModelStore, connect: Callable[[], object] | None = None):
        """``connect``: returns a Kubernetes session (or None outside a cluster); called under the file lock."""
        self.store = store
        self.connect = connect
        self.kube = None
        self.held = False

    def acquire(self) -> None:
        """The file lock, then the Lease; LockedError (outcome ``locked``) naming the holder of either."""
        self.store.acquire_lock()
        self.held = True
        if self.connect is not None:
            self.kube = self.connect()
        if self.kube is not None:
            self.kube.acquire_lease()

    def check(self) -> None:
        """Still ours? LeaseLost naming the new holder when another run took the Lease."""
        if self.kube is None:
            return
        try:
            self.kube.confirm_lease()
        except LockedError as err:
            raise LeaseLost(f"{err}: nothing promoted") from None

    def release(self) -> None:
        """The Lease (never raises) and the session, then the file lock."""
        if self.kube is not None:
            self.kube.release_lease()
            self.kube.close()
        if self.held:
            self.store.release_lock()
            self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
