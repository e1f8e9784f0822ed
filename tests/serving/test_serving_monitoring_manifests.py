"""``k8s/components/serving-monitoring``: rendered with the base and ``components/serving`` by ``kubectl
kustomize``; its PodMonitor scrapes both serving Deployments on the port their containers name, with the
kube-prometheus-stack label the job's ServiceMonitor uses, and the model server admits the monitoring namespace."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from test_serving_manifests import render  # noqa: E402

from k8s.manifests import CRD_GROUPS, K8S, one, pod_spec  # noqa: E402


@pytest.fixture
def docs(tmp_path) -> list[dict]:
    return render(tmp_path, "serving", "serving-monitoring")


def test_the_pod_monitor_scrapes_both_serving_deployments_on_metrics(docs):
    monitor = one(docs, "PodMonitor", "nlu-ci-serving")
    job_monitor = yaml.safe_load((K8S / "components" / "prometheus-rules" / "servicemonitor.yaml").read_text())
    assert monitor["metadata"]["labels"]["release"] == job_monitor["metadata"]["labels"]["release"]
    spec = monitor["spec"]
    selector = spec["selector"]["matchLabels"]
    (endpoint,) = spec["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    jobs = set()
    for name in ("nlu-ci-model-server", "rasa-nlu"):
        template = one(docs, "Deployment", name)["spec"]["template"]
        labels = template["metadata"]["labels"]
        assert selector.items() <= labels.items(), name
        ports = {p["name"] for c in pod_spec(one(docs, "Deployment", name))["containers"] for p in c["ports"]}
        assert endpoint["port"] in ports, name
        jobs.add(labels[spec["jobLabel"]])
    assert jobs == {"nlu-ci-model-server", "rasa-nlu"}  # the job labels the alerts and the runbook name
    # nothing else in the namespace is scraped by it (the job's pods push to the Pushgateway instead)
    job_pod = pod_spec(one(docs, "CronJob", "nlu-ci"))
    assert job_pod is not None
    cron_labels = one(docs, "CronJob", "nlu-ci")["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= cron_labels.items()


def test_the_model_server_admits_scrapes_from_the_monitoring_namespace(docs):
    policy = one(docs, "NetworkPolicy", "nlu-ci-model-server-metrics")["spec"]
    labels = one(docs, "Deployment", "nlu-ci-model-server")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["ingress"] == [{"from": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}}], "ports": [{"port": 8080, "protocol": "TCP"}]}]
    # the serving component's own policy is untouched: only rasa-nlu, no egress
    ms = one(docs, "NetworkPolicy", "nlu-ci-model-server")["spec"]
    assert ms["egress"] == [] and len(ms["ingress"]) == 1


def test_the_non_crd_objects_validate_strictly(docs, tmp_path):
    validate = Path(sys.executable).with_name("kubernetes-validate")
    if not validate.exists():
        pytest.skip("kubernetes-validate is not installed (make install)")
    plain = [d for d in docs if not d["apiVersion"].startswith(CRD_GROUPS)]
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump_all(plain))
    proc = subprocess.run([str(validate), "--strict", "--quiet", str(tmp_path / "plain.yaml")], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
