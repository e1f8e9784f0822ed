"""The nlu-ci image built here, shared by tests/k8s/test_image_build.py and the kubelet harness
(tests/support/kubelet.py): image/Dockerfile built by buildah (`bud --isolation chroot --layers`) against the
local Debian bookworm base of scripts/image-base.sh. buildah's layer cache makes a second build in the same
storage (another test file, another session) take seconds when nothing under the build context changed."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/nlu-ci:image-test"
USER = "10001:10001"


def buildah_or_skip() -> str:
    buildah = shutil.which("buildah")
    if buildah is None:
        pytest.skip("buildah is not installed (make install-system installs it): the image cannot be built here")
    if os.geteuid() != 0:
        pytest.skip("buildah --isolation chroot needs root here: the image cannot be built as this user")
    proc = subprocess.run([buildah, "info"], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        pytest.skip(f"buildah cannot run here: {proc.stderr.strip().splitlines()[-1:]}")
    return buildah


def run(cmd: list[str], timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if check:
        assert proc.returncode == 0, f"{' '.join(cmd[:4])}...: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    return proc


def build_image() -> tuple[str, str]:
    """Build (or find in buildah's layer cache) the image; return (buildah binary, git revision)."""
    buildah = buildah_or_skip()
    base = run(["bash", str(ROOT / "scripts" / "image-base.sh")], timeout=900).stdout.strip().splitlines()[-1]
    revision = run(["git", "rev-parse", "HEAD"]).stdout.strip()
    run([buildah, "bud", "--quiet", "--format", "docker", "--isolation", "chroot", "--network", "host", "--layers",
         "--build-arg", f"BASE_IMAGE={base}", "--build-arg", f"REVISION={revision}", "--build-arg", "VERSION=0.1.0",
         "--build-arg", "SOURCE=https://example.org/nlu-ci", "-f", "image/Dockerfile", "-t", IMAGE, "."],
        timeout=1800)
    return buildah, revision
