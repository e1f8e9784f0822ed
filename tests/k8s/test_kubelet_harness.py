"""The manifests are the test input: tests/k8s/trees/serving (k8s/ + components/serving) rendered by
`kubectl kustomize` and run from the built image by the kubelet harness (tests/support/kubelet.py): the CronJob's
container exactly as its jobTemplate says (command/args, envFrom the settings ConfigMap, downward API, the
ConfigMap at /etc/nlu-ci, the Secret's files, the PVC, the /tmp emptyDir, uid 10001, read-only root), the Rasa
Platform of settings.env (RASA_PLATFORM_HOST) played by tests/support/platform_fake.py (it cannot run here),
then both serving Deployments as their manifests say, their readiness probes polled, `/parse` through the
rasa-nlu Service. No container command line is written here. The image is the session's (tests/k8s/conftest.py,
shared with test_image_build.py; buildah's layer cache makes it seconds when nothing changed)."""
from __future__ import annotations

import copy
import json
import time

import pytest
import requests

from support.image import IMAGE
from support.kubelet import ContainerConfigError, Kubelet, expand
from support.kubelet_volumes import mounts_for
from support.platform_fake import FakePlatform

from .manifests import ROOT

TREE = ROOT / "tests" / "k8s" / "trees" / "serving"
TOKEN = "platform-token-for-the-harness-0123"
SECRET = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",  # as k8s/secret.example.yaml, with a value
          "metadata": {"name": "nlu-ci-secrets", "namespace": "nlu-ci"},
          "stringData": {"rasa-api-token": TOKEN, "slack-webhook-url": ""}}
PLATFORM_HOST = "rasa-platform.rasa.svc.cluster.local:5002"  # k8s/base/settings.env


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    data = json.loads((ROOT / "data" / "sample" / "nlu.json").read_text())
    server = FakePlatform(token=TOKEN, data=data, workdir=tmp_path_factory.mktemp("platform")).start()
    yield server
    server.stop()


def make_kubelet(nlu_ci_image, platform, workdir, docs=None):
    buildah, _ = nlu_ci_image
    kw = dict(buildah=buildah, image=IMAGE, workdir=workdir, secrets=[SECRET],
              external={PLATFORM_HOST: f"127.0.0.1:{platform.port}"})
    return Kubelet(docs, **kw) if docs is not None else Kubelet.from_tree(TREE, **kw)


def manifest_copy(kubelet) -> list[dict]:
    """The rendered objects (not the test's Secret), to change one field for a control."""
    return [copy.deepcopy(d) for d in kubelet.docs if d["kind"] != "Secret"]


@pytest.fixture(scope="module")
def cluster(nlu_ci_image, platform, tmp_path_factory):
    kubelet = make_kubelet(nlu_ci_image, platform, tmp_path_factory.mktemp("kubelet", numbered=True))
    yield kubelet
    kubelet.close()


@pytest.fixture(scope="module")
def promoted(cluster):
    """The CronJob run once, as `kubectl create job --from=cronjob/nlu-ci` would."""
    started = time.monotonic()
    result = cluster.run_job("nlu-ci", job_name="nlu-ci-manual-1", timeout=600)
    print(f"\njob {result.name}: {result.reason} exit {result.exit_code} in {time.monotonic() - started:.0f} s")
    return result


def test_the_cronjob_promotes_into_the_pvc(cluster, promoted, platform):
    assert promoted.exit_code == 0, promoted.stderr[-3000:]
    store = cluster.claims["nlu-ci-models"] / "default"  # NLU_CI_PROJECT=default from the settings ConfigMap
    active = (store / "ACTIVE").read_text().strip()
    assert (store / active / "nlu_ci.json").is_file()
    last = json.loads((store / "history.jsonl").read_text().splitlines()[-1])
    assert last["outcome"] == "promoted", last
    # the data came from the platform of settings.env, with the Secret's token; the model went back, tagged
    assert platform.count("data") >= 1, platform.requests[-5:]
    assert platform.tagged("production"), platform.requests[-5:]  # RASA_PLATFORM_TAG from settings.env
    # written as runAsUser 10001 into a folder the kubelet gave group fsGroup 10001 (setgid: the group stays)
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in store.rglob("*") if not p.is_symlink()}
    assert owners == {(10001, 10001)}, owners
    assert '"level"' in promoted.stderr + promoted.stdout  # NLU_CI_LOG_FORMAT=json from the settings ConfigMap


def test_the_job_container_sees_what_the_manifest_says(cluster, nlu_ci_image, platform, tmp_path):
    """The jobTemplate's own container, with only its command replaced by a probe of its environment: ids,
    env (envFrom + downward API), the Secret/ConfigMap files and modes, and a root that cannot be written."""
    docs = manifest_copy(cluster)
    job = next(d for d in docs if d["kind"] == "CronJob")
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python3", "-c", PROBE]
    container.pop("args", None)
    kubelet = make_kubelet(nlu_ci_image, platform, tmp_path, docs)
    try:
        result = kubelet.run_job("nlu-ci", job_name="nlu-ci-probe", timeout=300)
    finally:
        kubelet.close()
    assert result.exit_code == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout)
    assert seen["ids"] == [10001, 10001]
    env = seen["env"]
    assert env["NLU_CI_PROJECT"] == "default" and env["NLU_CI_LOG_FORMAT"] == "json"  # envFrom settings
    assert env["NLU_CI_CONFIG"] == "/etc/nlu-ci/nlu_config.yml" and env["HOME"] == "/tmp"
    assert env["JOB_NAME"] == "nlu-ci-probe" and env["POD_NAME"].startswith("nlu-ci-probe-")
    assert env["POD_NAMESPACE"] == "nlu-ci" and len(env["POD_UID"]) == 36 and len(env["JOB_UID"]) == 36
    assert env["RASA_PLATFORM_HOST"] == f"http://127.0.0.1:{platform.port}"  # the one rewrite, host:port only
    assert env["NLU_CI_MODELS_SERVICE_HOST"] == "127.0.0.1"  # Service links (enableServiceLinks)
    assert env["PATH"].startswith("/opt/nlu-ci/bin")  # the image's ENV under the manifest's
    assert seen["token"] == TOKEN and seen["token_mode"] == "0o440" and seen["token_gid"] == 10001
    assert seen["config_mode"] == "0o644" and "pipeline" in seen["config"]
    assert seen["writable"] == ["/models", "/tmp"], seen["writable"]
    assert "Read-only file system" in seen["errors"]["/opt/nlu-ci"]


PROBE = r"""
import json, os, stat
def tryw(d):
    try:
        open(os.path.join(d, '.probe'), 'w').close(); return None
    except OSError as e:
        return str(e)
places = ['/', '/models', '/tmp', '/etc', '/etc/nlu-ci', '/opt/nlu-ci', '/usr', '/var/tmp', '/var/run/secrets/nlu-ci']
errors = {d: tryw(d) for d in places}
tok = '/var/run/secrets/nlu-ci/rasa-api-token'
print(json.dumps({'ids': [os.getuid(), os.getgid()], 'env': dict(os.environ),
    'token': open(tok).read(), 'token_mode': oct(stat.S_IMODE(os.stat(tok).st_mode)),
    'token_gid': os.stat(tok).st_gid, 'config': open('/etc/nlu-ci/nlu_config.yml').read(),
    'config_mode': oct(stat.S_IMODE(os.stat('/etc/nlu-ci/nlu_config.yml').st_mode)),
    'writable': [d for d, e in errors.items() if e is None], 'errors': errors}))
"""


def test_the_serving_deployments_serve_the_promoted_model(cluster, promoted):
    assert promoted.exit_code == 0, "needs the promoted model"
    active = (cluster.claims["nlu-ci-models"] / "default" / "ACTIVE").read_text().strip()
    models = cluster.start_deployment("nlu-ci-model-server")
    rasa = None
    try:
        assert models.wait_ready(120), models.logs()[-3000:]
        rasa = cluster.start_deployment("rasa-nlu")  # 2 replicas, each pulling from the nlu-ci-models Service
        assert len(rasa.pods) == 2
        assert rasa.wait_ready(240), rasa.logs()[-3000:]
        url = f"http://127.0.0.1:{cluster.services[('rasa-nlu', 5000)].port}"
        for _ in range(4):  # through the Service: both replicas answer with the promoted model
            answer = requests.post(f"{url}/parse", json={"q": "I want a large pepperoni pizza"}, timeout=30).json()
            assert answer["model"] == active and answer["intent"]["name"], answer
        assert cluster.services[("nlu-ci-models", 8080)].connections >= 2  # both replicas pulled via the Service
    finally:
        if rasa:
            rasa.stop()
        models.stop()


def test_a_missing_configmap_key_is_create_container_config_error(cluster, nlu_ci_image, platform, tmp_path):
    docs = manifest_copy(cluster)
    job = next(d for d in docs if d["kind"] == "CronJob")
    settings = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("nlu-ci-settings"))
    job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "NLU_CI_TEST_FRACTION", "valueFrom": {"configMapKeyRef": {"name": settings["metadata"]["name"],
                                                                           "key": "test-fraction"}}})
    kubelet = make_kubelet(nlu_ci_image, platform, tmp_path, docs)
    try:
        result = kubelet.run_job("nlu-ci", timeout=300)
        assert result.reason == "CreateContainerConfigError" and result.exit_code is None
        assert "couldn't find key test-fraction" in result.message
        assert not kubelet.containers, "nothing was started"
    finally:
        kubelet.close()


def test_a_wrong_command_never_gets_ready(cluster, nlu_ci_image, platform, tmp_path):
    docs = manifest_copy(cluster)
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "nlu-ci-model-server")
    dep["spec"]["template"]["spec"]["containers"][0]["args"] = ["serve-model"]  # a typo
    kubelet = make_kubelet(nlu_ci_image, platform, tmp_path, docs)
    handle = kubelet.start_deployment("nlu-ci-model-server")
    try:
        assert not handle.wait_ready(30)
        assert not any(p.ready for p in handle.pods)
        assert handle.pods[0].restart_count >= 1  # restartPolicy Always: exited, restarted after the back-off
        assert "invalid choice: 'serve-model'" in handle.logs()
    finally:
        handle.stop()
        kubelet.close()


def test_env_expansion_follows_kubernetes():
    env = {"A": "x", "B": "y"}
    assert expand("$(A)-$(B)", env) == "x-y"
    assert expand("$$(A)", env) == "$(A)"  # escaped
    assert expand("$(C)/$(A", env) == "$(C)/$(A"  # unknown and unterminated stay as written


def test_configmap_items_modes_and_subpath_follow_the_kubelet(tmp_path):
    """The volume rules the shipped manifests do not use yet (items, item mode, optional, subPath), without the
    image: the layout the kubelet writes (kubernetes.io/docs/concepts/configuration/configmap/#using-configmaps-as-files-from-a-pod)."""
    cm = {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}, "data": {"a": "A", "b": "B"}}
    kubelet = Kubelet([cm], buildah="buildah", image="unused", workdir=tmp_path)
    spec = {"volumes": [{"name": "v", "configMap": {"name": "c", "defaultMode": 0o440,
                                                    "items": [{"key": "a", "path": "dir/a.txt"},
                                                              {"key": "b", "path": "b", "mode": 0o400}]}},
                        {"name": "bad", "configMap": {"name": "c", "items": [{"key": "zz", "path": "zz"}]}},
                        {"name": "opt", "configMap": {"name": "nope", "optional": True}},
                        {"name": "e", "emptyDir": {}}],
            "containers": []}
    pod = kubelet._new_pod("p", {"metadata": {"namespace": "ns"}}, {"spec": spec}, {})
    container = {"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/cfg"}, {"name": "opt", "mountPath": "/o"},
                                               {"name": "e", "mountPath": "/e/sub", "subPath": "sub"}]}
    (cfg, _, ro), (opt, _, _), (sub, target, _) = mounts_for(kubelet, pod, container, fs_group=None)
    assert ro and (cfg / "dir" / "a.txt").read_text() == "A" and not (cfg / "a").exists()  # only the items
    assert oct((cfg / "dir" / "a.txt").stat().st_mode & 0o777) == "0o440"  # defaultMode
    assert oct((cfg / "b").stat().st_mode & 0o777) == "0o400"  # the item's own mode
    assert (cfg / "..data").is_symlink() and (cfg / "b").is_symlink()  # atomic-writer layout
    assert list(opt.iterdir()) == [] or all(p.name.startswith("..") for p in opt.iterdir())  # optional, absent
    assert sub.name == "sub" and sub.is_dir() and target == "/e/sub"
    with pytest.raises(ContainerConfigError, match="non-existent config key: zz"):
        mounts_for(kubelet, pod, {"name": "c2", "volumeMounts": [{"name": "bad", "mountPath": "/x"}]}, None)
