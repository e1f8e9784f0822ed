"""Benchmark: what the Kubernetes API costs a run (loopback API server, the official client).

    PYTHONPATH=tests .venv/bin/python -m k8s.bench_lease [ROUNDS]      (from the repo root)

Times `kube.connect` (client import + kubeconfig), and per round acquire_lease + renew_lease +
emit_event + release_lease (6-8 HTTP requests). Prints the median and p95 in milliseconds. The point:
the Lease and the Events add milliseconds to a run whose training takes seconds to hours.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from support.kube_fake import FakeApiServer


def main(rounds: int = 200) -> None:
    server = FakeApiServer().start()
    try:
        kubeconfig = server.write_kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig")
        os.environ["KUBECONFIG"] = str(kubeconfig)
        t0 = time.perf_counter()
        from nlu_ci import kube

        settings = SimpleNamespace(kubernetes="on", pod_name="bench-pod", pod_namespace="nlu-ci", lease_name="bench",
                                   lease_duration=60, http_timeout=5.0, job_name="bench-job", job_uid="uid-1")
        session = kube.connect(settings)
        connect_ms = (time.perf_counter() - t0) * 1000
        session.renew_every = 0  # no background thread: time the calls themselves
        cycle = []
        for _ in range(rounds):
            t = time.perf_counter()
            session.acquire_lease()
            session.renew_lease()
            session.emit_event("promoted", "bench")
            session.release_lease()
            cycle.append((time.perf_counter() - t) * 1000)
        cycle.sort()
        print(f"connect (import client + kubeconfig): {connect_ms:.0f} ms")
        print(f"acquire+renew+event+release, {rounds} rounds: median {statistics.median(cycle):.1f} ms, "
              f"p95 {cycle[int(0.95 * len(cycle)) - 1]:.1f} ms, requests {len(server.requests)}")
    finally:
        server.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
