"""Pull a project's active model over HTTP (``nlu-ci serve-models``' ``GET /models/<project>``, rasa_nlu 0.15's
model-server protocol) into a scratch store, verified before anything loads it.

``pull_active(url, store)`` downloads the zip (``ETag`` and ``filename: <model>.zip`` headers, as the server
sends them to rasa_nlu), unpacks it into ``store/<model>`` (no member may point outside it), checks every file
against the sha256 list of its ``nlu_ci.json`` (``registry.integrity``) and only then writes ``ACTIVE``. The
store is a scratch folder of the check, never the job's store: nothing here can promote a model.

Errors are one line: ``StoreError`` (exit 1) when the server cannot be reached, answers anything but 200, or
the model is damaged; ``ConfigError`` (exit 2) for a URL that is not http(s).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nlu_ci.errors import ConfigError, StoreError
from nlu_ci.redact import redact
from nlu_ci.registry.integrity import verify_model_dir
from nlu_ci.registry.store import ModelStore
from nlu_ci.serving.swap import model_name_from

MAX_ZIP_BYTES = 2 << 30  # a model zip larger than this is refused (a misconfigured URL must not fill the disk)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Pulled:
    name: str
    etag: str | None
    path: Path
    url: str


def model_url(url: str, project: str) -> str:
    """``URL`` as given when it already names ``/models/<project>``, else ``URL/models/<project>``."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--active-model-url / NLU_CI_ACTIVE_MODEL_URL: {redact(url)[:80]!r} must start with "
                          "http:// or https://")
    base = url.rstrip("/")
    return base if "/models/" in base else f"{base}/models/{project}"


def _download(url: str, target: Path, timeout: float) -> tuple[str | None, str | None]:
    import requests

    shown = redact(url)
    try:
        with requests.get(url, timeout=timeout, stream=True) as resp:
            if resp.status_code != 200:
                detail = " ".join(resp.text.split())[:200] if resp.text else ""
                raise StoreError(f"active model {shown}: HTTP {resp.status_code}{': ' + redact(detail) if detail else ''}")
            size = 0
            with open(target, "wb") as fh:
                for block in resp.iter_content(_CHUNK):
                    size += len(block)
                    if size > MAX_ZIP_BYTES:
                        raise StoreError(f"active model {shown}: larger than {MAX_ZIP_BYTES} bytes, refused")
                    fh.write(block)
            return resp.headers.get("ETag"), resp.headers.get("filename")
    except requests.RequestException as err:
        raise StoreError(f"active model {shown}: cannot download: {type(err).__name__}: "
                         f"{redact(' '.join(str(err).split()))[:200]}") from None


def _unpack(zip_path: Path, dest: Path, where: str) -> None:
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for member in zf.infolist():
                pure = PurePosixPath(member.filename)
                if pure.is_absolute() or ".." in pure.parts or "\\" in member.filename:
                    raise StoreError(f"{where}: zip member {member.filename[:80]!r} points outside the model")
            zf.extractall(dest)
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise StoreError(f"{where}: not a readable model zip: {' '.join(str(err).split())[:200]}") from None


def pull_active(url: str, store: ModelStore, timeout: float = 60.0) -> Pulled:
    """The active model of ``store.project`` from ``url`` into ``store``, verified, and ``ACTIVE`` naming it."""
    full = model_url(url, store.project)
    store.ensure()
    with tempfile.TemporaryDirectory(prefix=".pull-", dir=store.dir) as tmp:
        zip_path = Path(tmp) / "model.zip"
        etag, filename = _download(full, zip_path, timeout)
        name = model_name_from(filename) or (etag or "").strip('"').split(".")[0]
        if not name or not name.startswith("model_") or "/" in name or name.startswith("."):
            raise StoreError(f"active model {redact(full)}: the answer names no model (filename {filename!r})")
        unpacked = Path(tmp) / name
        _unpack(zip_path, unpacked, redact(full))
        problems = verify_model_dir(unpacked)  # nlu_ci.json required: its checksums are the point
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise StoreError(f"active model {name} from {redact(full)} is damaged, not loading it: "
                             f"{problems[0]}{more}")
        final = store.path(name)
        if final.exists():
            shutil.rmtree(final)
        os.replace(unpacked, final)
    with contextlib.suppress(OSError):
        os.chmod(final, 0o750)
    store.activate(name)
    return Pulled(name, etag, final, full)
