"""Benchmark: what publishing costs a run (run: python tests/observability/bench_publish.py).

Goal (issue 5): metrics and the Slack message add milliseconds, not seconds, to a nightly run. Measures
``build_registry``, ``publish`` (textfile only, and textfile + PUT to a real Pushgateway on loopback when
Debian's ``prometheus-pushgateway`` is installed) and ``notify`` to a loopback webhook receiver; prints
median and 95th percentile over N calls.
"""
from __future__ import annotations

import pathlib
import statistics
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # a script: its folder, and tests/ for ``support``

from reports import make_report  # noqa: E402

from nlu_ci.outputs import prometheus as metrics  # noqa: E402
from nlu_ci.outputs import slack as notify  # noqa: E402
from support.servers import PUSHGATEWAY_BIN, Pushgateway  # noqa: E402
from support.slack_fake import SlackReceiver  # noqa: E402


def measure(label: str, call, n: int) -> None:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(f"{label:<34} median {statistics.median(times):7.2f} ms   p95 {times[int(0.95 * (n - 1))]:7.2f} ms")


def main(n: int = 200) -> None:
    report = make_report("rejected", failed_check="per_intent_max_drop")
    with tempfile.TemporaryDirectory() as tmp:
        store = pathlib.Path(tmp) / "store"
        measure("build_registry", lambda: metrics.build_registry(report), n)
        measure("publish (textfile)", lambda: metrics.publish(report, store_dir=store, pushgateway_url=None), n)
        if PUSHGATEWAY_BIN:
            gateway = Pushgateway(pathlib.Path(tmp) / "pg")
            try:
                measure("publish (textfile + Pushgateway)",
                        lambda: metrics.publish(report, store_dir=store, pushgateway_url=gateway.url), n)
            finally:
                gateway.stop()
        else:
            print("publish (textfile + Pushgateway)   skipped: prometheus-pushgateway not installed")
        receiver = SlackReceiver().start()
        try:
            measure("notify (loopback webhook)", lambda: notify.notify(report, receiver.url), n)
        finally:
            receiver.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
