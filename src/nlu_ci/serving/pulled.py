"""What ``nlu-ci serve`` pulls, fetched and checked before rasa_nlu loads any of it (pickles included).

``fetch`` is rasa_nlu 0.15's ``_pull_model_and_fingerprint`` (same request, same headers) that also says what
happened: ``updated`` (a zip was unpacked into the folder), ``unchanged`` (204), ``failed`` (no answer, 404, 5xx,
a body that is not a zip). ``check`` verifies an unpacked model: every file against the sha256 list of its
``nlu_ci.json`` (``registry.integrity.verify_model_dir``: a file changed, missing or added is a problem), and the
``ETag`` it came with against the one the model server derives from that list (``zips.model_etag``), so a zip
rewritten on the way, ``nlu_ci.json`` included, does not match the ETag it was served with. Models from a Rasa
Platform carry no ``nlu_ci.json``: with ``require_metadata=False`` such a model is loaded unchecked (documented).
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from nlu_ci.registry.integrity import verify_model_dir
from nlu_ci.registry.store import METADATA
from nlu_ci.serving.zips import model_etag


def fetch(model_server, model_dir: str, known: str | None) -> tuple[str, str | None, str | None, str]:
    """``(result, etag, filename, detail)``; result one of updated/unchanged/failed."""
    from rasa_nlu.project import DEFAULT_REQUEST_TIMEOUT
    from requests import RequestException

    try:
        response = model_server.request(method="GET", headers={"If-None-Match": known}, timeout=DEFAULT_REQUEST_TIMEOUT)
    except RequestException as err:
        return "failed", None, None, f"no answer: {' '.join(str(err).split())[:200]}"
    if response.status_code == 204:
        return "unchanged", known, None, "204"
    if response.status_code != 200:
        return "failed", None, None, f"HTTP {response.status_code}"
    etag, filename = response.headers.get("ETag"), response.headers.get("filename")
    if not etag:
        return "failed", None, None, "a 200 answer without an ETag"
    try:
        with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
            zf.extractall(model_dir)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        return "failed", None, None, f"the answer is not a model zip: {err}"
    return "updated", etag, filename, "200"


def check(model_dir: str | Path, name: str, etag: str, require_metadata: bool = True) -> str | None:
    """None when the unpacked model is the one its checksums and ETag say; else the first problem, one line."""
    model = Path(model_dir)
    problems = verify_model_dir(model, require_metadata=require_metadata)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"{problems[0].replace(str(model) + '/', '')}{more}"
    if not require_metadata or not (model / METADATA).is_file():
        return None  # a platform's model: its ETag is the platform's own, not derived from nlu_ci.json
    meta = json.loads((model / METADATA).read_text())
    if etag.strip('"') != model_etag(name, meta).strip('"'):
        return f"its ETag {etag[:100]} is not the one of the {METADATA} it carries (the zip was changed)"
    return None


def intents(model_dir: str | Path) -> list[str]:
    """The intents the model was trained on (``nlu_ci.json`` ``data.intents``; [] when unknown)."""
    try:
        meta = json.loads((Path(model_dir) / METADATA).read_text())
        found = (meta.get("data") or {}).get("intents") or []
        return [str(i) for i in found][:1000]
    except (OSError, ValueError, AttributeError):
        return []
