"""zipping: a model folder to a zip with its files at the root, streamed, cleaned up."""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from nlu_ci.errors import StoreError
from nlu_ci.registry.zipping import zip_model_dir, zipped


def make_model(root: Path) -> Path:
    model = root / "model_20260101-000000"
    (model / "sub").mkdir(parents=True)
    (model / "metadata.json").write_text('{"pipeline": []}')
    (model / "b.pkl").write_bytes(bytes(range(256)) * 100)
    (model / "sub" / "a.txt").write_text("x" * 5000)
    return model


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_round_trip_files_at_the_root_in_sorted_order(tmp_path):
    model = make_model(tmp_path)
    path = zip_model_dir(model, tmp_path)
    try:
        assert path.parent == tmp_path and path.name.startswith(model.name) and path.suffix == ".zip"
        with zipfile.ZipFile(path) as zf:
            assert zf.namelist() == ["b.pkl", "metadata.json", "sub/a.txt"]
            assert zf.testzip() is None
            for name in zf.namelist():
                assert digest(zf.read(name)) == digest((model / name).read_bytes())
            assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
        assert path.stat().st_size < sum(p.stat().st_size for p in model.rglob("*") if p.is_file())
    finally:
        path.unlink()


def test_zipped_removes_the_file_afterwards_even_on_error(tmp_path):
    model = make_model(tmp_path)
    with zipped(model, tmp_path) as path:
        assert path.is_file()
    assert not path.exists()
    with pytest.raises(RuntimeError), zipped(model, tmp_path) as path:
        raise RuntimeError("boom")
    assert not path.exists()


def test_same_layout_as_rasa_nlu_zip_folder_and_loadable(tmp_path, trained_model):
    import shutil

    from rasa_nlu.utils import zip_folder

    from nlu_ci.engine.predict import load_model

    theirs = zip_folder(str(trained_model))
    try:
        with zipfile.ZipFile(theirs) as zf:
            expected = sorted(n for n in zf.namelist() if not n.endswith("/"))
    finally:
        Path(theirs).unlink()
    with zipped(trained_model, tmp_path) as path:
        with zipfile.ZipFile(path) as zf:
            assert sorted(zf.namelist()) == expected
        target = tmp_path / "unpacked"
        shutil.unpack_archive(path, target, "zip")
    assert load_model(target) is not None


@pytest.mark.parametrize("setup,expect", [
    (lambda p: p / "missing", "not a directory"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no metadata.json"),
])
def test_bad_model_folders(tmp_path, setup, expect):
    with pytest.raises(StoreError, match=expect):
        zip_model_dir(setup(tmp_path), tmp_path)
    assert not list(tmp_path.glob("*.zip"))


def test_io_error_midway_leaves_no_zip(tmp_path, monkeypatch):
    import errno
    import shutil

    model = make_model(tmp_path)
    calls = []

    def failing_copy(src, dst, length=0):
        calls.append(src.name)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(src, dst, length)

    original = shutil.copyfileobj
    monkeypatch.setattr(shutil, "copyfileobj", failing_copy)
    with pytest.raises(StoreError, match="cannot zip model .*No space left on device"):
        zip_model_dir(model, tmp_path)
    assert len(calls) == 2
    assert not list(tmp_path.glob("*.zip"))
