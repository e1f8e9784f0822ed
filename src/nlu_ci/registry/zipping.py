"""Zip a model directory into a temporary file, streaming (memory does not grow with the model size).

``zip_model_dir(model_dir)`` writes ``<name>.zip`` with the model's files at the archive root (the
layout ``rasa_nlu.utils.zip_folder`` produces and the Rasa Platform expects), in sorted order, reading
each file in small chunks (``zipfile`` copies with a fixed-size buffer). ``zipped(model_dir)`` is the
same as a context manager that removes the temporary file afterwards.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from nlu_ci.errors import StoreError

_CHUNK = 1 << 20


def _files(model_dir: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(model_dir):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            if path.is_file():  # skips sockets, broken links
                out.append(path)
    return out


def zip_model_dir(model_dir: str | os.PathLike, dest_dir: str | os.PathLike | None = None) -> Path:
    """Write the model folder to a new zip file (in ``dest_dir`` or the system temp dir); return its path.

    Raises ``StoreError`` when the folder is missing, is not a rasa_nlu model (no ``metadata.json``),
    or cannot be read/written. The caller removes the file (or use ``zipped``).
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise StoreError(f"cannot zip model {model_dir}: not a directory")
    if not (model_dir / "metadata.json").is_file():
        raise StoreError(f"cannot zip model {model_dir}: no metadata.json (not a rasa_nlu model)")
    fd, tmp = tempfile.mkstemp(prefix=f"{model_dir.name}-", suffix=".zip", dir=dest_dir)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True,
                             strict_timestamps=False) as zf:
            for path in _files(model_dir):
                arcname = path.relative_to(model_dir).as_posix()
                info = zipfile.ZipInfo.from_file(path, arcname, strict_timestamps=False)
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(path, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StoreError(f"cannot zip model {model_dir}: {exc.strerror or exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


@contextlib.contextmanager
def zipped(model_dir: str | os.PathLike, dest_dir: str | os.PathLike | None = None) -> Iterator[Path]:
    """``with zipped(model_dir) as zip_path: ...`` — the zip is deleted when the block ends."""
    path = zip_model_dir(model_dir, dest_dir)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
