"""The Lease: a ``coordination.k8s.io/v1`` Lease so a manual run (``kubectl create job --from=cronjob/nlu-ci``)
and the scheduled one never overlap.

Optimistic concurrency: every write carries the ``resourceVersion`` it read; a 409 means another run
wrote first. An expired Lease (``renewTime + leaseDurationSeconds`` in the past) is taken over. While
held, a background thread renews it; ``confirm_lease`` renews synchronously right before a promotion.
The PVC file lock (``registry.store``) stays as the fallback outside a cluster.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import urllib3

from nlu_ci import redact
from nlu_ci.errors import LockedError, RuntimeFailure
from nlu_ci.kube import api
from nlu_ci.kube.api import ApiException, _failure, _one_line_api_error, _parse_time, microtime

log = logging.getLogger(__name__)


class LeaseMixin:
    """Lease methods of a KubeSession (state lives in ApiSession.__init__)."""


    @property
    def lease_path(self) -> str:
        return f"lease {self.namespace}/{self.lease_name}"

    @property
    def _lease_url(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"

    def _lease_call(self, what: str, method: str, path: str, body: dict | None = None) -> dict:
        try:
            return self._api(method, path, body)
        except ApiException as err:
            if err.status in (404, 409):
                raise
            raise _failure(f"Kubernetes API: cannot {what} {self.lease_path}", err,
                           "get/create/update on leases") from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise _failure(f"Kubernetes API: cannot {what} {self.lease_path}", err) from None

    def _read_lease(self) -> dict | None:
        try:
            return self._lease_call("read", "GET", f"{self._lease_url}/{self.lease_name}")
        except ApiException as err:
            if err.status == 404:
                return None
            raise RuntimeFailure(f"Kubernetes API: cannot read {self.lease_path}: {_one_line_api_error(err)}") from None

    def _lease_body(self, *, resource_version: str | None, holder: str | None, acquire: str | None,
                    renew: str | None, transitions: int, duration: int | None = None) -> dict:
        metadata: dict[str, Any] = {"name": self.lease_name, "namespace": self.namespace,
                                    "labels": {"app.kubernetes.io/name": "nlu-ci",
                                               "app.kubernetes.io/component": "lock"}}
        if resource_version:
            metadata["resourceVersion"] = resource_version
        spec: dict[str, Any] = {"leaseDurationSeconds": duration or self.lease_duration,
                                "leaseTransitions": transitions}
        if holder:
            spec["holderIdentity"] = holder
        if acquire:
            spec["acquireTime"] = acquire
        if renew:
            spec["renewTime"] = renew
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    @staticmethod
    def lease_expiry(spec: dict) -> datetime | None:
        """When the holder's claim ends: renewTime (or acquireTime) + leaseDurationSeconds."""
        renewed = _parse_time(spec.get("renewTime")) or _parse_time(spec.get("acquireTime"))
        if renewed is None:
            return None
        return renewed + timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0))

    def _locked(self, lease: dict, now: datetime) -> LockedError:
        spec = lease.get("spec") or {}
        expiry = self.lease_expiry(spec)
        left = f", expires in {int((expiry - now).total_seconds())} s" if expiry else ""
        return LockedError(f"{self.lease_path} is held by {spec.get('holderIdentity')} "
                           f"(renewed {spec.get('renewTime') or spec.get('acquireTime')}{left})")

    def _is_live_other(self, lease: dict, now: datetime) -> bool:
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        if not holder or holder == self.identity:
            return False
        expiry = self.lease_expiry(spec)
        return expiry is not None and expiry > now

    def acquire_lease(self) -> None:
        """Take the Lease, or raise LockedError naming the live holder. An expired Lease is taken over.

        While held, a background thread renews it every ``lease_duration / 3`` seconds (like client-go's
        leader election), so a long training stage cannot let it expire; ``renew_lease`` raises
        LockedError once that thread has found the Lease taken by another run.
        """
        with self._lock:
            self._acquire()
        self._start_keepalive()

    def _acquire(self) -> None:
        now = api._now()
        stamp = microtime(now)
        lease = self._read_lease()
        if lease is None:
            body = self._lease_body(resource_version=None, holder=self.identity, acquire=stamp, renew=stamp,
                                    transitions=0)
            try:
                self._lease_call("create", "POST", self._lease_url, body)
            except ApiException as err:  # 409 AlreadyExists: another run created it first
                if err.status != 409:  # 404: the namespace does not exist; never a reason to say "locked"
                    raise _failure(f"Kubernetes API: cannot create {self.lease_path}", err) from None
                lease = self._read_lease()
                if lease is not None and self._is_live_other(lease, api._now()):
                    raise self._locked(lease, api._now()) from None
                raise LockedError(f"{self.lease_path} was created by another run at the same moment "
                                  f"({err.status} {err.reason})") from None
            self.held = True
            log.info("acquired %s as %s", self.lease_path, self.identity)
            return
        if self._is_live_other(lease, now):
            raise self._locked(lease, now)
        spec = lease.get("spec") or {}
        previous = spec.get("holderIdentity")
        mine = previous == self.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        body = self._lease_body(resource_version=lease["metadata"].get("resourceVersion"), holder=self.identity,
                                acquire=spec.get("acquireTime") if mine else stamp, renew=stamp,
                                transitions=transitions)
        self._replace_or_locked(body, "take over")
        self.held = True
        if previous and not mine:
            log.warning("took over expired %s from %s (renewed %s)", self.lease_path, previous,
                        spec.get("renewTime"))
        else:
            log.info("acquired %s as %s", self.lease_path, self.identity)

    def _replace_or_locked(self, body: dict, what: str) -> None:
        try:
            self._lease_call(what, "PUT", f"{self._lease_url}/{self.lease_name}", body)
        except ApiException as err:
            if err.status == 404:
                raise RuntimeFailure(f"Kubernetes API: {self.lease_path} was deleted while updating it") from None
            # 409 Conflict: somebody wrote the Lease after we read it
            current = self._read_lease() or {}
            holder = (current.get("spec") or {}).get("holderIdentity")
            raise LockedError(f"{self.lease_path} changed while taking it (409 Conflict); "
                              f"now held by {holder or 'nobody'}") from None

    def renew_lease(self) -> None:
        """Push renewTime forward. LockedError if another run has taken the Lease meanwhile."""
        if self.lost is not None:
            raise self.lost
        with self._lock:
            self._renew()

    def confirm_lease(self) -> None:
        """Renew now, synchronously: right before a promotion, so a run whose Lease was taken over (a training
        past the Lease duration, a manual run that took an expired Lease) promotes nothing. LockedError names
        the holder that has it now."""
        if self.lost is not None:
            raise self.lost
        with self._lock:
            self._renew()

    def _renew(self) -> None:
        lease = self._read_lease()
        if lease is None:
            raise LockedError(f"{self.lease_path} disappeared while this run held it")
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.identity:
            self.held = False
            raise LockedError(f"{self.lease_path} was taken over by {spec.get('holderIdentity') or 'nobody'} "
                              f"while this run worked (raise NLU_CI_LEASE_DURATION?)")
        body = self._lease_body(resource_version=lease["metadata"].get("resourceVersion"), holder=self.identity,
                                acquire=spec.get("acquireTime"), renew=microtime(api._now()),
                                transitions=int(spec.get("leaseTransitions") or 0))
        self._replace_or_locked(body, "renew")
        log.debug("renewed %s", self.lease_path)

    def release_lease(self) -> bool:
        """Give the Lease up (holder cleared) if this run holds it. Never raises: returns success."""
        self._stop_keepalive()
        if not self.held:
            return False
        with self._lock:
            return self._release()

    def _release(self) -> bool:
        try:
            lease = self._read_lease()
            spec = (lease or {}).get("spec") or {}
            if lease is None or spec.get("holderIdentity") != self.identity:
                log.warning("%s is no longer ours (holder %s): not released", self.lease_path,
                            spec.get("holderIdentity"))
                self.held = False
                return False
            stamp = microtime(api._now())
            body = self._lease_body(resource_version=lease["metadata"].get("resourceVersion"), holder=None,
                                    acquire=None, renew=stamp, transitions=int(spec.get("leaseTransitions") or 0),
                                    duration=1)
            self._replace_or_locked(body, "release")
        except (RuntimeFailure, LockedError) as err:
            log.warning("could not release %s: %s (it expires by itself)", self.lease_path, err)
            return False
        self.held = False
        log.info("released %s", self.lease_path)
        return True

    def _start_keepalive(self) -> None:
        if self.renew_every <= 0 or (self._keepalive and self._keepalive.is_alive()):
            return
        self._stop.clear()
        self._keepalive = threading.Thread(target=self._keep_renewing, name="nlu-ci-lease", daemon=True)
        self._keepalive.start()

    def _stop_keepalive(self) -> None:
        self._stop.set()
        if self._keepalive is not None and self._keepalive is not threading.current_thread():
            self._keepalive.join(timeout=self.timeout * 3 + 5)
        self._keepalive = None

    def _keep_renewing(self) -> None:
        while not self._stop.wait(self.renew_every):
            try:
                with self._lock:
                    if self._stop.is_set():
                        return
                    self._renew()
            except LockedError as err:
                self.lost = err
                log.error("%s", err)
                return
            except Exception as err:  # the API may come back before the Lease expires
                log.warning("could not renew %s: %s", self.lease_path, redact.redact(err))
