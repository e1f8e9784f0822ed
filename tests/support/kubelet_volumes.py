"""Volumes for tests/support/kubelet.py, as the kubelet lays them out (kubernetes.io/docs/concepts/storage/volumes/).

configMap / secret: kubelet's AtomicWriter layout (pkg/volume/util/atomic_writer.go): the files in a timestamped
folder, ``..data`` a symlink to it, each top-level name a symlink into ``..data``; file mode ``items[].mode`` or
``defaultMode`` (default 0644, kubernetes.io/docs/concepts/configuration/secret/#secret-files-permissions); with
the pod's fsGroup, SetVolumeOwnership (pkg/volume/volume_linux.go) gives every file that group and ORs in the
read-only mask 0440 (directories 0550 + setgid). A key that ``items`` names but the object lacks, or a missing
object, is an error (the pod stays ContainerCreating) unless ``optional``.
persistentVolumeClaim: one host folder per claim (shared by every pod); readOnly on the volume or the mount
binds it read-only; fsGroup applied to the folder root when its gid differs (OnRootMismatch): group fsGroup,
mode | 0660 (| setgid and 0110 on folders), recursively.
emptyDir: a fresh folder per pod with mode 0777 (pkg/volume/emptydir), fsGroup applied.
subPath: the mount's source is that path inside the volume (kubernetes.io/docs/concepts/storage/volumes/#using-subpath);
a subPath of a configMap/secret volume is a copy that is not updated (as documented)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .kubelet import ContainerConfigError, _octal

RW, RO, X = 0o660, 0o440, 0o110


def _own(path: Path, gid: int, readonly: bool) -> None:
    for p in [path, *path.rglob("*")]:
        if p.is_symlink():
            continue
        st = p.stat()
        os.chown(p, -1, gid)
        mask = RO if readonly else RW
        if p.is_dir():
            mask |= 0o2000 | X
        os.chmod(p, (st.st_mode & 0o7777) | mask)


def _projection(kubelet, pod, vol: dict, kind: str, fs_group) -> Path:
    src = vol["configMap"] if kind == "ConfigMap" else vol["secret"]
    name = src.get("name") or src.get("secretName")
    data = kubelet._data(kind, name)
    if data is None:
        if src.get("optional"):
            data = {}
        else:
            raise ContainerConfigError(f"MountVolume.SetUp failed for volume \"{vol['name']}\": "
                                       f"{kind.lower()} \"{name}\" not found")
    mode = _octal(src.get("defaultMode", 0o644))
    files = {}
    if src.get("items"):
        for item in src["items"]:
            if item["key"] not in data:
                if src.get("optional"):
                    continue
                raise ContainerConfigError(f"MountVolume.SetUp failed for volume \"{vol['name']}\": "
                                           f"configmap references non-existent config key: {item['key']}")
            files[item["path"]] = (data[item["key"]], _octal(item.get("mode", mode)))
    else:
        files = {k: (v, mode) for k, v in data.items()}
    top = pod.root / "volumes" / vol["name"]
    top.mkdir(parents=True)
    stamp = Path(tempfile.mkdtemp(prefix="..2026_12_02_", dir=top))
    for rel, (content, fmode) in files.items():
        target = stamp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(fmode)
    stamp.chmod(0o755)
    if fs_group is not None:
        _own(stamp, fs_group, readonly=True)
    os.symlink(stamp.name, top / "..data")
    for first in {rel.split("/")[0] for rel in files}:
        os.symlink(f"..data/{first}", top / first)
    top.chmod(0o755)
    if fs_group is not None:
        os.chown(top, -1, fs_group)
        os.chmod(top, 0o755 | RO | X | 0o2000)
    return top


def _volume_dir(kubelet, pod, vol: dict, fs_group) -> tuple[Path, bool]:
    if "configMap" in vol:
        return _projection(kubelet, pod, vol, "ConfigMap", fs_group), True
    if "secret" in vol:
        return _projection(kubelet, pod, vol, "Secret", fs_group), True
    if "emptyDir" in vol:
        path = pod.root / "volumes" / vol["name"]
        path.mkdir(parents=True)
        path.chmod(0o777)
        if fs_group is not None:
            _own(path, fs_group, readonly=False)
        return path, False
    if "persistentVolumeClaim" in vol:
        claim = vol["persistentVolumeClaim"]["claimName"]
        if not any(c["metadata"]["name"] == claim for c in kubelet.find("PersistentVolumeClaim")):
            raise ContainerConfigError(f"persistentvolumeclaim \"{claim}\" not found (the pod stays Pending)")
        path = kubelet.claims.get(claim)
        if path is None:
            path = kubelet.claims[claim] = kubelet.workdir / "pvc" / claim
            path.mkdir(parents=True)
            path.chmod(0o755)  # a fresh volume's root, as most provisioners make it (root:root 0755)
        readonly = bool(vol["persistentVolumeClaim"].get("readOnly"))
        if fs_group is not None and not readonly and path.stat().st_gid != fs_group:
            _own(path, fs_group, readonly=False)  # (CSI skips fsGroup for a read-only volume)
        return path, readonly
    raise NotImplementedError(f"volume {vol['name']}: {sorted(set(vol) - {'name'})} not implemented by the harness")


def mounts_for(kubelet, pod, c: dict, fs_group) -> list[tuple[Path, str, bool]]:
    """(host path, mountPath, read-only) for each of the container's volumeMounts, creating the volumes once."""
    made = pod.__dict__.setdefault("_volumes", {})
    by_name = {v["name"]: v for v in pod.spec.get("volumes") or []}
    out = []
    for m in c.get("volumeMounts") or []:
        vol = by_name.get(m["name"])
        if vol is None:
            raise ContainerConfigError(f"container {c['name']}: volumeMount {m['name']} names no volume")
        if m["name"] not in made:
            made[m["name"]] = _volume_dir(kubelet, pod, vol, fs_group)
        path, ro = made[m["name"]]
        if m.get("subPath"):
            path = path / m["subPath"]
            if not path.exists():
                path.mkdir(parents=True)
        out.append((path, m["mountPath"], ro or bool(m.get("readOnly"))))
    return out
