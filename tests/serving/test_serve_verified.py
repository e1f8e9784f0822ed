"""What ``nlu-ci serve`` pulls is verified before it is loaded, and the model server's zip cache is trusted only
when it is its own (issue 24.2). Real ``nlu-ci serve-models`` and ``nlu-ci serve`` processes; a tiny loopback
model server (``wire.py``) stands for a network path that rewrites the zip and keeps the ETag."""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
import zipfile

import pytest
from serving_helpers import (
    Store,
    free_port,
    http_get,
    parse,
    start_model_server,
    start_rasa,
    wait_until,
    zip_is_complete_model,
)
from wire import WireServer

from support.data import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """A store where A then B were promoted; the zips (body, ETag, filename) serve-models sent for each."""
    tmp = tmp_path_factory.mktemp("verified")
    store = Store(tmp)
    zips = {}
    models = None
    try:
        for variant in (0, 2):
            name = store.run(variant)["candidate"]["model"]
            models = models or start_model_server(store, tmp)
            status, headers, body = http_get(models.url + "/models/default")
            assert status == 200 and headers["filename"] == f"{name}.zip"
            zips[name] = (body, headers["ETag"], headers["filename"])
    finally:
        if models:
            models.stop()
    a, b = list(zips)
    return store, tmp, a, b, zips


def rewrite(body: bytes, fix_metadata: bool) -> bytes:
    """The zip with one model file changed so that it still loads; with ``fix_metadata`` nlu_ci.json says the new sha256."""
    with zipfile.ZipFile(io.BytesIO(body)) as src:
        entries = {name: src.read(name) for name in src.namelist()}
    meta = json.loads(entries["nlu_ci.json"])
    victim = "metadata.json"  # rasa_nlu's own: still loads with a key added (a planted pickle would load too)
    entries[victim] = json.dumps({**json.loads(entries[victim]), "planted": True}).encode()
    if fix_metadata:
        meta["files"][victim] = hashlib.sha256(entries[victim]).hexdigest()
        entries["nlu_ci.json"] = json.dumps(meta).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name, data in entries.items():
            dst.writestr(name, data)
    return out.getvalue()


def test_a_zip_tampered_on_the_wire_is_never_loaded(two_models):
    store, tmp, a, b, zips = two_models
    wire = WireServer().start()
    rasa = None
    try:
        wire.set(*zips[a])
        rasa = start_rasa(store, wire.url, tmp, pull_interval=0.3)
        assert parse(rasa.url)[1]["model"] == a
        body, etag, filename = zips[b]
        for fix_metadata in (False, True):  # a file changed; a file changed and nlu_ci.json's checksums with it
            wire.set(rewrite(body, fix_metadata), etag, filename)
            seen = len(wire.requests)
            wait_until(lambda seen=seen: len(wire.requests) >= seen + 4, 20, what="four pulls of the tampered zip")
            assert {parse(rasa.url, t)[1]["model"] for t in ("hello there", "bye", "i want a large pizza")} == {a}
            assert http_get(rasa.url + "/ready")[0] == 200
        log = rasa.log_text()
        refusals = [line for line in log.splitlines() if "does not match its checksums" in line]
        assert len(refusals) >= 8 and all(b in line and a in line for line in refusals), log[-2000:]
        assert any("is not the one of the nlu_ci.json" in line for line in refusals)  # the ETag caught the 2nd
        assert any("checksum mismatch" in line for line in refusals)
        assert "Traceback" not in log
        wire.set(*zips[b])  # the genuine B: pulled and served (the server did not stop pulling)
        wait_until(lambda: parse(rasa.url)[1].get("model") == b, 20, what=f"{b} served")
    finally:
        if rasa:
            rasa.stop()
        wire.stop()


def test_a_tampered_zip_in_the_cache_is_never_served(two_models):
    store, tmp, a, b, zips = two_models
    cache = tmp / "zips"  # the cache serve-models built in the fixture (B's zip)
    cached = cache / "default" / (zips[b][1].strip('"') + ".zip")
    assert cached.is_file()
    cached.write_bytes(rewrite(zips[b][0], fix_metadata=True))  # rewritten while the server was down
    models = start_model_server(store, tmp)
    try:
        status, headers, body = http_get(models.url + "/models/default")
        assert status == 200 and headers["ETag"] == zips[b][1]
        assert zip_is_complete_model(body) == (b, [])
        assert zip_is_complete_model(cached.read_bytes()) == (b, [])  # rebuilt in place
        # rewritten while it runs: checked again at the next request (its size/mtime/inode changed)
        time.sleep(0.01)
        cached.write_bytes(rewrite(zips[b][0], fix_metadata=False))
        status, _, body = http_get(models.url + "/models/default")
        assert status == 200 and zip_is_complete_model(body) == (b, [])
        assert models.log_text().count("does not match model") == 2, models.log_text()[-2000:]
    finally:
        models.stop()


def test_a_zip_cache_the_server_did_not_create_is_refused(two_models, tmp_path):
    store, *_ = two_models
    planted = tmp_path / "nlu-ci-zips"
    planted.mkdir()
    os.chmod(planted, 0o777)  # another user's, or anyone's: created first, world-writable
    res = run_cli(["serve-models", "--port", str(free_port()), "--zip-cache", str(planted)], store.env(), timeout=60)
    assert res.code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(planted) in lines[0] and "refused" in lines[0], res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("how", ["world-writable", "other-owner", "symlink"])
def test_the_zip_cache_folder_rules(tmp_path, how):
    from nlu_ci.errors import StoreError
    from nlu_ci.serving.zips import ZipCache

    path = tmp_path / "zips"
    if how == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        path.symlink_to(tmp_path / "elsewhere")
    else:
        path.mkdir(mode=0o700)
        if how == "world-writable":
            os.chmod(path, 0o777)
        elif os.geteuid() == 0:
            os.chown(path, 65534, 65534)
        else:
            pytest.skip("chown to another user needs root")
    with pytest.raises(StoreError, match="refused"):
        ZipCache(path)
    ok = tmp_path / "mine"
    ZipCache(ok)
    assert oct(os.stat(ok).st_mode & 0o777) == "0o700"
    ZipCache(ok)  # its own folder, again (a restart): accepted

