"""A kubelet for the tests: runs the rendered manifests' pods from the built image, as written.

``Kubelet(docs, ...)`` takes the objects of ``kubectl kustomize <tree>`` (``Kubelet.from_tree``) plus the Secrets a
test provides (like k8s/secret.example.yaml), and runs containers with ``buildah run --isolation chroot``
on the host network. ``run_job(cronjob)`` runs the CronJob's jobTemplate once (as ``kubectl create job
--from=cronjob/NAME`` does) and returns the exit code and logs; ``start_deployment(name)`` starts its replicas
and returns a handle that polls their probes and stops them. What it implements, each as the page cited says:

* command/args: ``command`` replaces the image's ENTRYPOINT (and drops its CMD), ``args`` alone replace CMD
  (kubernetes.io/docs/tasks/inject-data-application/define-command-argument-container/#notes);
  ``$(VAR)`` in command, args and env values expands to a variable defined earlier in the container's
  env, ``$$`` escapes, an unknown reference stays as written
  (kubernetes.io/docs/tasks/inject-data-application/define-interdependent-environment-variables/).
* env: ``envFrom`` (configMapRef/secretRef, ``prefix``, ``optional``) then ``env`` (later wins), over the image's
  ENV; ``valueFrom`` configMapKeyRef/secretKeyRef (a missing object or key without ``optional: true`` is
  CreateContainerConfigError: the container never starts) and the downward API ``fieldRef`` fields
  metadata.name/namespace/uid/labels['k']/annotations['k'], spec.nodeName, spec.serviceAccountName,
  status.podIP/hostIP (kubernetes.io/docs/tasks/inject-data-application/environment-variable-expose-pod-information/).
  The Job controller's pod labels ``batch.kubernetes.io/job-name`` and ``controller-uid``
  (kubernetes.io/docs/reference/labels-annotations-taints/#batch-kubernetes-io-job-name).
  Service environment variables ``<NAME>_SERVICE_HOST/_PORT`` for the namespace's Services (enableServiceLinks,
  kubernetes.io/docs/concepts/services-networking/service/#environment-variables).
* volumes (kubernetes.io/docs/concepts/storage/volumes/): configMap and secret as files in kubelet's
  atomic-writer layout (``..data`` symlink), each key (or ``items`` path) with ``defaultMode`` (0644 when unset) or the
  item's ``mode``; with ``fsGroup`` the files get that group and the group read bits (pkg/volume/volume_linux.go
  SetVolumeOwnership, read-only mask 0440); ``persistentVolumeClaim`` = one host folder per claim shared by every
  pod (``readOnly`` on the volume or the mount: a read-only bind), ``fsGroup`` applied to its root when its group
  differs (fsGroupChangePolicy OnRootMismatch, always: the harness does not do the recursive Always walk);
  ``emptyDir`` = a fresh 0777 folder per pod; ``subPath``; ``readOnly`` mounts.
* security context (kubernetes.io/docs/tasks/configure-pod-container/security-context/): the container's
  runAsUser/runAsGroup over the pod's over the image's USER; ``runAsNonRoot`` with uid 0 is
  CreateContainerConfigError; ``readOnlyRootFilesystem``: every top-level folder of the container's root except
  /run, /proc, /sys and /dev is bind-mounted read-only before the run (buildah needs /run for its own
  mount points), so nothing outside the volumes can be written, by root either.
* probes (kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/):
  httpGet (200 <= status < 400) and tcpSocket at a numeric or named containerPort, initialDelaySeconds,
  periodSeconds (10), timeoutSeconds (1), successThreshold (1), failureThreshold (3); a pod is ready once its
  readiness probe succeeded successThreshold times and stops being ready after failureThreshold failures.
* Services: a TCP proxy on 127.0.0.1 per Service port forwarding to the ready pods it selects (targetPort
  by name or number), as kube-proxy does with the Service's ready endpoints.

* the API server, when the test gives one (``api``: tests/support/kube_fake.py): every container gets
  ``KUBERNETES_SERVICE_HOST``/``_PORT`` (pkg/kubelet/kubelet_pods.go adds the default namespace's ``kubernetes``
  Service to every pod), pods run by ``run_job``/``start_deployment`` are created in it first (the run reads its
  own pod), and the service-account token is mounted as the ServiceAccount admission plugin adds it
  (plugin/pkg/admission/serviceaccount/admission.go: unless the pod's ``automountServiceAccountToken``, else its
  ServiceAccount's, is false): ``token``, ``ca.crt`` and ``namespace`` read-only at
  /var/run/secrets/kubernetes.io/serviceaccount, mode 0644 (the projected volume's defaultMode 420).
* ``terminationMessagePath`` (when a container names it): an empty host file, mode 0666, bind-mounted there
  (pkg/kubelet/kuberuntime/kuberuntime_container.go makeMounts: created, chmod 0666); ``run_pod`` returns its first
  4096 bytes after the container ended (the message in ``status.containerStatuses[].state.terminated``).

What it changes: pods share the host's loopback, so each pod's containerPorts get free host
ports and in each container's env (1) a value that is exactly one of that container's containerPorts becomes its
host port (the listening-port variable, e.g. NLU_CI_PORT) and (2) in a URL or ``host:port`` whose host is a
Service (``name``, ``name.ns``, ``name.ns.svc``, ``name.ns.svc.cluster.local``) or one of the test's ``external`` names,
host and port become 127.0.0.1 and the proxy's port. And a ``terminationMessagePath`` under /dev (Kubernetes'
default, /dev/termination-log) is mounted at /run/termination-<container> instead, with an env value that is
exactly that path changed alike: buildah's chroot isolation binds the host's /dev read-only and drops mounts
beneath it. Nothing else in the manifest is changed.

Not implemented (raise NotImplementedError when a manifest uses them): exec probes, hostPath/projected/
downwardAPI volumes, init and sidecar containers, resourceFieldRef. Not enforced: resources (limits,
requests), capabilities, seccomp, allowPrivilegeEscalation, NetworkPolicies, supplementalGroups (buildah run
sets the uid and gid only), the service-account token without ``api`` (not mounted, no KUBERNETES_SERVICE_*),
the Job's backoffLimit/podFailurePolicy (run_job runs one pod; an Indexed Job's pods are the API server's
controller's, each run by ``run_pod``). Deployments' pods restart (restartPolicy Always)
when their container exits or fails its liveness probe, after the CrashLoopBackOff delay (10 s, doubled)."""
from __future__ import annotations

import base64
import copy
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .kubelet_net import ServiceProxy, free_port, rewrite_service_urls

NOT_STARTED = {"CreateContainerConfigError", "CreateContainerError"}
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class ContainerConfigError(RuntimeError):
    """The kubelet's CreateContainerConfigError: the container was never started."""

    reason = "CreateContainerConfigError"


@dataclass
class JobResult:
    name: str
    exit_code: int | None  # None: the container was never started (see reason)
    reason: str  # Completed, Error, CreateContainerConfigError, DeadlineExceeded
    stdout: str = ""
    stderr: str = ""
    message: str = ""


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion (third_party/forked/golang/expansion): $$ -> $, unknown refs kept."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i) and (end := value.find(")", i + 2)) != -1:
            name = value[i + 2:end]
            out.append(env[name] if name in env else value[i:end + 1])
            i = end + 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _octal(mode) -> int:
    return mode if isinstance(mode, int) else int(str(mode), 8)


@dataclass
class Pod:
    name: str
    namespace: str
    uid: str
    labels: dict
    annotations: dict
    spec: dict
    root: Path  # host folder for this pod's emptyDirs and projected files
    ports: dict[int, int] = field(default_factory=dict)  # containerPort -> host port
    procs: list = field(default_factory=list)
    cmds: list = field(default_factory=list)
    restart_count: int = 0
    ready: bool = False
    probe_log: list = field(default_factory=list)
    liveness_failures: int = 0


class Kubelet:
    def __init__(self, docs, *, buildah: str, image: str, workdir: Path, secrets=(), external=None,
                 node_name: str = "node-1", api=None):
        self.api = api  # a FakeApiServer (TLS): in-cluster access for the pods, as described above
        self.docs = [d for d in docs if d] + [s for s in secrets]
        self.buildah, self.image, self.node_name = buildah, image, node_name
        self.workdir = Path(workdir)
        self.external = dict(external or {})  # "host:port" -> "127.0.0.1:port" for things outside the manifests
        self.claims: dict[str, Path] = {}
        self.containers: list[tuple[str, list[Path]]] = []  # buildah container, read-only binds
        self.pods: list[Pod] = []
        self._image_config = None
        self.services = {}  # (name, port) -> ServiceProxy
        for svc in self.find("Service"):
            for port in svc["spec"]["ports"]:
                proxy = ServiceProxy(svc, port, self)
                self.services[(svc["metadata"]["name"], port["port"])] = proxy

    @classmethod
    def from_tree(cls, tree: Path, **kw) -> Kubelet:
        import yaml
        proc = subprocess.run(["kubectl", "kustomize", str(tree)], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "KUBECONFIG": os.devnull})
        if proc.returncode != 0:
            raise RuntimeError(f"kubectl kustomize {tree}: {proc.stderr}")
        return cls(list(yaml.safe_load_all(proc.stdout)), **kw)

    # -- objects ----------------------------------------------------------------------------------------------
    def find(self, kind: str, name: str | None = None) -> list[dict]:
        return [d for d in self.docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]

    def _data(self, kind: str, name: str) -> dict[str, bytes] | None:
        found = self.find(kind, name)
        if not found:
            return None
        obj = found[0]
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()} if kind == "Secret" else \
            {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return data

    def image_config(self) -> dict:
        if self._image_config is None:
            out = subprocess.run([self.buildah, "inspect", "--type", "image", self.image], capture_output=True,
                                 text=True, timeout=60, check=True).stdout
            self._image_config = json.loads(out)["Docker"]["config"]
        return self._image_config

    # -- workloads -----------------------------------------------------------------------------------------------
    def run_job(self, cronjob_name: str, job_name: str | None = None, timeout: float | None = None,
                args: list[str] | None = None) -> JobResult:
        """One pod of the CronJob's jobTemplate, as `kubectl create job --from=cronjob/NAME` makes it, run to its end
        (restartPolicy Never: the first container's exit is the result; activeDeadlineSeconds or `timeout` bound it).
        ``args``: the first container's args replaced, as README's one-off Job recipe does (`kubectl create job
        --from=cronjob/nlu-ci --dry-run=client -o json | jq '.spec.template.spec.containers[0].args = [...]'`)."""
        cron = self.find("CronJob", cronjob_name)
        if not cron:
            raise KeyError(f"no CronJob {cronjob_name}")
        cron = cron[0]
        tmpl = cron["spec"]["jobTemplate"]
        if args is not None:
            tmpl = copy.deepcopy(tmpl)
            tmpl["spec"]["template"]["spec"]["containers"][0]["args"] = list(args)
        job_name = job_name or f"{cronjob_name}-manual-{uuid.uuid4().hex[:3]}"
        job_uid = str(uuid.uuid4())
        labels = {**(tmpl["spec"]["template"].get("metadata", {}).get("labels") or {}),
                  "batch.kubernetes.io/job-name": job_name, "job-name": job_name,
                  "batch.kubernetes.io/controller-uid": job_uid, "controller-uid": job_uid}
        pod = self._new_pod(f"{job_name}-{uuid.uuid4().hex[:5]}", cron, tmpl["spec"]["template"], labels)
        self._register(pod)
        deadline = timeout or tmpl["spec"].get("activeDeadlineSeconds") or 3600
        try:
            proc = self._start(pod)[0]
        except ContainerConfigError as exc:
            return JobResult(job_name, None, exc.reason, message=str(exc))
        try:
            out, err = proc.communicate(timeout=deadline)
        except subprocess.TimeoutExpired:
            self._terminate(pod)
            out, err = proc.communicate()
            return JobResult(job_name, proc.returncode, "DeadlineExceeded", out, err)
        finally:
            self._cleanup_containers(pod)
        return JobResult(job_name, proc.returncode, "Completed" if proc.returncode == 0 else "Error", out, err)

    def start_deployment(self, name: str, replicas: int | None = None) -> Deployment:
        dep = self.find("Deployment", name)
        if not dep:
            raise KeyError(f"no Deployment {name}")
        dep = dep[0]
        tmpl = dep["spec"]["template"]
        count = dep["spec"].get("replicas", 1) if replicas is None else replicas
        pods, errors = [], []
        for _ in range(count):
            labels = {**(tmpl.get("metadata", {}).get("labels") or {}), "pod-template-hash": "h4rn3ss"}
            pod = self._new_pod(f"{name}-h4rn3ss-{uuid.uuid4().hex[:5]}", dep, tmpl, labels)
            self._register(pod)
            try:
                self._start(pod, stdout=subprocess.DEVNULL)
            except ContainerConfigError as exc:
                errors.append(str(exc))
            pods.append(pod)
        return Deployment(self, name, pods, errors)

    def run_pod(self, manifest: dict, timeout: float = 900) -> tuple[int, bytes]:
        """A pod an API server's controller made (e.g. an Indexed Job's, tests/support/kube_jobs.py), run to its end:
        (the first container's exit code, its termination message: at most 4096 bytes of the file at its
        ``terminationMessagePath``). A container config error or the timeout raise."""
        meta = manifest["metadata"]
        root = Path(tempfile.mkdtemp(prefix=f"pod-{meta['name']}-", dir=self.workdir))
        root.chmod(0o755)
        pod = Pod(meta["name"], meta.get("namespace", "default"), meta.get("uid") or str(uuid.uuid4()),
                  dict(meta.get("labels") or {}), dict(meta.get("annotations") or {}), manifest["spec"], root)
        for c in pod.spec["containers"]:
            for p in c.get("ports") or []:
                pod.ports[p["containerPort"]] = free_port()
        self.pods.append(pod)
        try:
            proc = self._start(pod)[0]
            try:
                proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._terminate(pod)
                raise
            message = pod.root / f"termination-{pod.spec['containers'][0]['name']}"
            return proc.returncode, message.read_bytes()[:4096] if message.exists() else b""
        finally:
            self._cleanup_containers(pod)

    def close(self) -> None:
        for pod in list(self.pods):
            self._terminate(pod)
            self._cleanup_containers(pod)
        for proxy in self.services.values():
            proxy.close()

    # -- pods ----------------------------------------------------------------------------------------------------
    def _new_pod(self, name: str, owner: dict, template: dict, labels: dict) -> Pod:
        meta = template.get("metadata") or {}
        ns = owner["metadata"].get("namespace", "default")
        root = Path(tempfile.mkdtemp(prefix=f"pod-{name}-", dir=self.workdir))
        root.chmod(0o755)
        pod = Pod(name, ns, str(uuid.uuid4()), labels, dict(meta.get("annotations") or {}), template["spec"], root)
        for c in pod.spec.get("initContainers") or []:
            raise NotImplementedError(f"init container {c['name']}: not implemented by the harness")
        for c in pod.spec["containers"]:
            for p in c.get("ports") or []:
                pod.ports[p["containerPort"]] = free_port()
        self.pods.append(pod)
        return pod

    def _register(self, pod: Pod) -> None:
        """The pod in the API server, as a controller would have created it there before the kubelet runs it."""
        if self.api is not None:
            self.api.put("pods", {"apiVersion": "v1", "kind": "Pod", "spec": copy.deepcopy(pod.spec),
                                  "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid,
                                               "labels": dict(pod.labels), "annotations": dict(pod.annotations)},
                                  "status": {"phase": "Running"}})

    def _automount(self, pod: Pod) -> bool:
        if self.api is None:
            return False
        own = pod.spec.get("automountServiceAccountToken")
        if own is not None:
            return bool(own)
        account = self.find("ServiceAccount", pod.spec.get("serviceAccountName") or "default")
        return (account[0].get("automountServiceAccountToken") if account else None) is not False

    def _service_account(self, pod: Pod, fs_group) -> Path:
        folder = pod.root / "serviceaccount"
        if not folder.exists():
            folder.mkdir()
            for name, content in (("token", self.api.token.encode()), ("ca.crt", Path(self.api.ca_file).read_bytes()),
                                  ("namespace", pod.namespace.encode())):
                (folder / name).write_bytes(content)
                (folder / name).chmod(0o644)
            folder.chmod(0o755)
            if fs_group is not None:
                for p in [folder, *folder.iterdir()]:
                    os.chown(p, -1, fs_group)
        return folder

    @staticmethod
    def _termination_target(c: dict) -> str | None:
        path = c.get("terminationMessagePath")
        if not path:
            return None
        return f"/run/termination-{c['name']}" if path == "/dev" or path.startswith("/dev/") else path

    def _start(self, pod: Pod, stdout=subprocess.PIPE) -> list[subprocess.Popen]:
        """Create every container's config first (a config error starts nothing), then start them."""
        cmds = [(c, self._container_cmd(pod, c)) for c in pod.spec["containers"]]
        for _, cmd in cmds:
            log = open(pod.root / f"log-{len(pod.procs)}.txt", "w")  # noqa: SIM115 (kept with the pod)
            proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE if stdout == subprocess.PIPE else log,
                                    text=True, start_new_session=True)
            pod.procs.append((proc, log))
            pod.cmds.append(cmd)
        return [p for p, _ in pod.procs]

    def restart(self, pod: Pod, index: int) -> None:
        """restartPolicy Always: the container's process again, same config, same volumes (restartCount + 1)."""
        proc, log = pod.procs[index]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        new = subprocess.Popen(pod.cmds[index], stdout=subprocess.DEVNULL, stderr=log, text=True,
                               start_new_session=True)
        pod.procs[index] = (new, log)
        pod.restart_count += 1

    def _container_cmd(self, pod: Pod, c: dict) -> list[str]:
        from .kubelet_volumes import mounts_for

        psc, csc = pod.spec.get("securityContext") or {}, c.get("securityContext") or {}
        image_user = (self.image_config().get("User") or "0:0").split(":")
        uid = csc.get("runAsUser", psc.get("runAsUser", int(image_user[0]) if image_user[0].isdigit() else None))
        gid = csc.get("runAsGroup", psc.get("runAsGroup", int(image_user[1]) if len(image_user) > 1 else uid))
        if uid is None:
            raise NotImplementedError(f"image user {image_user[0]!r} is a name: give runAsUser")
        if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) and uid == 0:
            raise ContainerConfigError(f"container {c['name']}: container has runAsNonRoot and image will run as root")
        env = self._env(pod, c)
        argv = self._argv(c, env)
        volumes = mounts_for(self, pod, c, psc.get("fsGroup"))
        if self._automount(pod):
            volumes.append((self._service_account(pod, psc.get("fsGroup")), SERVICE_ACCOUNT_DIR, True))
        target = self._termination_target(c)
        if target is not None:
            message = pod.root / f"termination-{c['name']}"
            message.touch()
            message.chmod(0o666)
            volumes.append((message, target, False))
            env = {k: target if v == c["terminationMessagePath"] else v for k, v in env.items()}
        ctr = subprocess.run([self.buildah, "from", "--quiet", self.image], capture_output=True, text=True,
                             timeout=300, check=True).stdout.strip()
        binds: list[Path] = []
        self.containers.append((ctr, binds))
        pod.annotations.setdefault("harness/containers", []).append(ctr)
        if csc.get("readOnlyRootFilesystem"):
            binds += _read_only_root(self.buildah, ctr, [(target, host.is_file()) for host, target, _ in volumes])
        cmd = [self.buildah, "run", "--isolation", "chroot", "--network", "host", "--user", f"{uid}:{gid}",
               "--hostname", pod.name]
        if c.get("workingDir"):
            cmd += ["--workingdir", c["workingDir"]]
        for k, v in env.items():
            cmd += ["--env", f"{k}={v}"]
        root = Path(subprocess.run([self.buildah, "mount", ctr], capture_output=True, text=True, timeout=60,
                                   check=True).stdout.strip())
        for host, target, ro in volumes:
            cmd += ["-v", f"{host}:{resolve_in_root(root, target)}{':ro' if ro else ''}"]
        return [*cmd, ctr, "--", *argv]

    def _argv(self, c: dict, env: dict[str, str]) -> list[str]:
        cfg = self.image_config()
        entry, cmd = cfg.get("Entrypoint") or [], cfg.get("Cmd") or []
        if "command" in c:
            argv = [*c["command"], *(c.get("args") or [])]
        elif "args" in c:
            argv = [*entry, *c["args"]]
        else:
            argv = [*entry, *cmd]
        expanded = [expand(a, env) for a in argv] if ("command" in c or "args" in c) else argv
        if not expanded:
            raise ContainerConfigError(f"container {c['name']}: no command specified")
        return expanded

    def _env(self, pod: Pod, c: dict) -> dict[str, str]:
        image_env = dict(e.split("=", 1) for e in self.image_config().get("Env") or [])
        env: dict[str, str] = {}
        if self.api is not None:
            env.update(KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(self.api.port))
        if pod.spec.get("enableServiceLinks", True):
            for (name, _port), proxy in self.services.items():
                if proxy.namespace == pod.namespace:
                    key = name.upper().replace("-", "_")
                    env[f"{key}_SERVICE_HOST"] = "127.0.0.1"
                    env.setdefault(f"{key}_SERVICE_PORT", str(proxy.port))
        for src in c.get("envFrom") or []:
            kind, ref = ("ConfigMap", src["configMapRef"]) if "configMapRef" in src else ("Secret", src["secretRef"])
            data = self._data(kind, ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f"container {c['name']}: {kind.lower()} \"{ref['name']}\" not found")
            for k, v in data.items():
                env[src.get("prefix", "") + k] = v.decode()
        for var in c.get("env") or []:
            if "valueFrom" not in var:
                env[var["name"]] = expand(var.get("value", ""), {**image_env, **env})
                continue
            vf = var["valueFrom"]
            if "fieldRef" in vf:
                env[var["name"]] = self._field(pod, vf["fieldRef"]["fieldPath"])
            elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
                kind, ref = ("ConfigMap", vf["configMapKeyRef"]) if "configMapKeyRef" in vf else \
                    ("Secret", vf["secretKeyRef"])
                data = self._data(kind, ref["name"])
                if data is None or ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    what = f"{kind.lower()} \"{ref['name']}\" not found" if data is None else \
                        f"couldn't find key {ref['key']} in {kind} {pod.namespace}/{ref['name']}"
                    raise ContainerConfigError(f"container {c['name']}: {what}")
                env[var["name"]] = data[ref["key"]].decode()
            else:
                raise NotImplementedError(f"env {var['name']}: {sorted(vf)} not implemented by the harness")
        own_ports = {str(p["containerPort"]) for p in c.get("ports") or []}
        for k, v in env.items():
            if v in own_ports:
                env[k] = str(pod.ports[int(v)])
            else:
                env[k] = rewrite_service_urls(v, self, pod.namespace)
        return env

    def _field(self, pod: Pod, path: str) -> str:
        simple = {"metadata.name": pod.name, "metadata.namespace": pod.namespace, "metadata.uid": pod.uid,
                  "spec.nodeName": self.node_name, "spec.serviceAccountName": pod.spec.get("serviceAccountName",
                                                                                           "default"),
                  "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}
        if path in simple:
            return simple[path]
        m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
        if m:
            return str((pod.labels if m[1] == "labels" else pod.annotations).get(m[2], ""))
        raise NotImplementedError(f"fieldRef {path}: not implemented by the harness")

    def _terminate(self, pod: Pod) -> None:
        grace = pod.spec.get("terminationGracePeriodSeconds", 30)
        for proc, _ in pod.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        end = time.monotonic() + grace
        for proc, _ in pod.procs:
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)

    def _cleanup_containers(self, pod: Pod) -> None:
        for _, log in pod.procs:
            log.close() if hasattr(log, "close") else None
        names = pod.annotations.pop("harness/containers", [])
        for ctr, binds in [x for x in self.containers if x[0] in names]:
            for path in reversed(binds):
                subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=60)
            subprocess.run([self.buildah, "umount", ctr], capture_output=True, timeout=60)
            subprocess.run([self.buildah, "rm", ctr], capture_output=True, timeout=120)
            self.containers.remove((ctr, binds))
        if pod in self.pods:
            self.pods.remove(pod)


def resolve_in_root(root: Path, target: str) -> str:
    """The mount target with the image's symlinks followed inside its root (runc's securejoin: the image's
    /var/run -> /run makes /var/run/secrets/x mount at /run/secrets/x; buildah would not follow it)."""
    parts, done, hops = [p for p in target.split("/") if p], [], 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            done = done[:-1]
            continue
        link = root.joinpath(*done, part)
        if link.is_symlink() and hops < 40:
            hops += 1
            dest = os.readlink(link)
            parts = [p for p in dest.split("/") if p] + parts
            if dest.startswith("/"):
                done = []
            continue
        done.append(part)
    return "/" + "/".join(done)


def _read_only_root(buildah: str, ctr: str, targets: list[tuple[str, bool]]) -> list[Path]:
    """readOnlyRootFilesystem: a first run creates buildah's mount points (/etc/hosts, ...), the volumes' mount
    targets (path, is a file) the image lacks are created (0755 folders or empty files, root) as runc creates them
    before it makes the root read-only
    (libcontainer/rootfs_linux.go: mounts first, then the read-only remount), then every top-level folder but
    /run, /proc, /sys, /dev is bind-mounted read-only onto itself in the container's root."""
    subprocess.run([buildah, "run", "--isolation", "chroot", "--user", "0:0", ctr, "--", "true"],
                   capture_output=True, timeout=300, check=True)
    root = Path(subprocess.run([buildah, "mount", ctr], capture_output=True, text=True, timeout=60,
                               check=True).stdout.strip())
    for target, is_file in targets:
        path = root / resolve_in_root(root, target).lstrip("/")
        if is_file and not path.exists():
            path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            path.touch(mode=0o644)
        elif not path.exists():
            path.mkdir(mode=0o755, parents=True)
    binds = []
    for entry in sorted(root.iterdir()):
        if entry.is_symlink() or not entry.is_dir() or entry.name in ("run", "proc", "sys", "dev"):
            continue
        subprocess.run(["mount", "--bind", str(entry), str(entry)], check=True, timeout=60)
        binds.append(entry)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(entry)], check=True, timeout=60)
    return binds


class Deployment:
    """Handle of a started Deployment: its pods' readiness probes polled in a thread, stop() ends them."""

    def __init__(self, kubelet: Kubelet, name: str, pods: list[Pod], errors: list[str]):
        self.kubelet, self.name, self.pods, self.errors = kubelet, name, pods, errors
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._probe_loop, args=(p,), daemon=True) for p in pods if p.procs]
        for t in self._threads:
            t.start()

    def host_port(self, pod: Pod, port) -> int:
        for c in pod.spec["containers"]:
            for p in c.get("ports") or []:
                if port in (p["containerPort"], p.get("name")):
                    return pod.ports[p["containerPort"]]
        raise KeyError(f"pod {pod.name}: no containerPort {port!r}")

    def _check(self, pod: Pod, probe: dict) -> bool:
        timeout = probe.get("timeoutSeconds", 1)
        if "httpGet" in probe:
            g = probe["httpGet"]
            url = f"http://127.0.0.1:{self.host_port(pod, g['port'])}{g.get('path', '/')}"
            headers = {h["name"]: h["value"] for h in g.get("httpHeaders") or []}
            try:
                return 200 <= requests.get(url, timeout=timeout, headers=headers,
                                           allow_redirects=False).status_code < 400
            except requests.RequestException:
                return False
        if "tcpSocket" in probe:
            try:
                socket.create_connection(("127.0.0.1", self.host_port(pod, probe["tcpSocket"]["port"])),
                                         timeout=timeout).close()
                return True
            except OSError:
                return False
        raise NotImplementedError(f"probe {sorted(probe)}: not implemented by the harness")

    def _probe_loop(self, pod: Pod) -> None:
        """Probes of the (single) container; restartPolicy Always: a container that exited, or whose liveness
        probe failed failureThreshold times, is restarted after the kubelet's back-off (10 s, doubled, 5 min cap)."""
        while not self._stop.is_set():
            self._probe_run(pod)
            pod.ready = False
            if self._stop.is_set() or pod.spec.get("restartPolicy", "Always") == "Never":
                return
            backoff = min(10 * 2 ** pod.restart_count, 300)  # CrashLoopBackOff
            if self._stop.wait(backoff):
                return
            self.kubelet.restart(pod, 0)

    def _probe_run(self, pod: Pod) -> None:
        c = pod.spec["containers"][0]
        probes = [(kind, c[kind]) for kind in ("readinessProbe", "livenessProbe") if kind in c]
        if not any(k == "readinessProbe" for k, _ in probes):
            pod.ready = True  # no readiness probe: ready once running
        started = time.monotonic()
        due = {k: started + p.get("initialDelaySeconds", 0) for k, p in probes}
        streak = {k: [0, 0] for k, _ in probes}  # successes, failures in a row
        while not self._stop.is_set() and all(proc.poll() is None for proc, _ in pod.procs):
            now = time.monotonic()
            for kind, probe in probes:
                if now < due[kind]:
                    continue
                due[kind] = now + probe.get("periodSeconds", 10)
                ok = self._check(pod, probe)
                pod.probe_log.append((round(now - started, 1), kind, ok))
                s = streak[kind]
                s[0], s[1] = (s[0] + 1, 0) if ok else (0, s[1] + 1)
                if kind == "readinessProbe":
                    if s[0] >= probe.get("successThreshold", 1):
                        pod.ready = True
                    elif s[1] >= probe.get("failureThreshold", 3):
                        pod.ready = False
                elif s[1] >= probe.get("failureThreshold", 3):
                    pod.liveness_failures += 1
                    return  # the kubelet kills the container; the caller restarts it
            self._stop.wait(0.2)

    def wait_ready(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.pods and all(p.ready for p in self.pods):
                return True
            if self.errors:
                return False
            time.sleep(0.2)
        return False

    def logs(self) -> str:
        return "".join(Path(log.name).read_text(errors="replace") for p in self.pods for _, log in p.procs
                       if hasattr(log, "name"))

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        for pod in self.pods:
            self.kubelet._terminate(pod)
            self.kubelet._cleanup_containers(pod)

