"""Benchmark: peak memory of the client while it zips and uploads a model of several hundred MB.

Run: ``python tests/platform/bench_upload.py [--mb 100 --mb 400] [--naive]``

A real rasa_nlu model plus one incompressible file of ``--mb`` MB is zipped and uploaded by
``PlatformClient.upload_model`` to the fake platform, which runs in a separate process (so only the
client's memory is measured). A sampling thread records the client's RSS every 10 ms; the result is
the peak RSS growth over the baseline taken just before the upload, next to the zip size. ``--naive``
also measures ``requests.post(files={"model": open(zip)})`` (requests builds that body in memory) for
contrast. Goal: the streaming upload's growth stays flat (a few MB) whatever the model size.
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # a script: tests/ for ``support``
TOKEN = "bench-token-5b1d2c"


class PeakRss:
    def __init__(self, interval: float = 0.01):
        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self):
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def start_server(workdir: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "support.platform_fake", "--token", TOKEN, "--workdir", str(workdir)],
                            stdout=subprocess.PIPE, text=True, cwd=str(HERE.parent))
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit("fake platform did not start")
    return proc, url


def big_model(base: Path, mb: int) -> Path:
    from support.train import train

    model = train(base / "t").model_dir
    blob = model / "big_component.bin"
    with open(blob, "wb") as fh:
        for _ in range(mb):
            fh.write(os.urandom(1 << 20))
    named = base / "model_20260101-000000"
    model.rename(named)
    return named


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, action="append", help="size of the incompressible dummy file (repeat)")
    parser.add_argument("--naive", action="store_true", help="also measure requests' in-memory multipart")
    args = parser.parse_args()
    sizes = args.mb or [400]
    logging.basicConfig(level=logging.WARNING, format="  %(message)s")
    logging.getLogger("nlu_ci").setLevel(logging.INFO)  # the client logs zip size and upload time
    for mb in sizes:
        bench(mb, args.naive)


def bench(mb: int, naive_too: bool) -> None:

    from nlu_ci.registry.platform import PlatformClient
    from nlu_ci.registry.zipping import zipped

    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        tmp = Path(tmp)
        (tmp / "server").mkdir()
        model = big_model(tmp, mb)
        server, url = start_server(tmp / "server")
        try:
            client = PlatformClient(url, TOKEN, timeout=120, retries=1)
            t0 = time.perf_counter()
            with PeakRss() as rss:
                name = client.upload_model(model, scratch_dir=tmp)
            seconds = time.perf_counter() - t0
            print(f"streaming upload: model {mb} MB + a trained rasa_nlu model, name {name}, {seconds:.1f}s (zip + upload), "
                  f"RSS baseline {rss.base / 2**20:.0f} MB, peak growth {rss.growth_mb:.1f} MB")
            if naive_too:
                import requests

                with zipped(model, tmp) as zip_path:
                    size = zip_path.stat().st_size / 2**20
                    with PeakRss() as naive, open(zip_path, "rb") as fh:
                        r = requests.post(f"{url}/api/projects/default/models/nlu", params={"api_token": TOKEN},
                                          files={"model": ("naive.zip", fh, "application/zip")}, timeout=120)
                print(f"naive requests files= upload: zip {size:.0f} MB, HTTP {r.status_code}, "
                      f"peak growth {naive.growth_mb:.1f} MB")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
