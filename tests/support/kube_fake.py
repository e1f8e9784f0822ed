"""A small Kubernetes API server on loopback, for the paths nlu-ci uses, with their real semantics.

Not a mock of the client: a real HTTP server (optionally HTTPS) that the official ``kubernetes``
client talks to through a generated kubeconfig or the in-cluster loader. It implements:

* ``coordination.k8s.io/v1`` leases: create (409 AlreadyExists), get (404 NotFound), replace with
  optimistic concurrency (``metadata.resourceVersion`` must be sent and match, else 409 Conflict), delete.
  Stricter than the real server on one point: an update without ``resourceVersion`` (which the real
  server applies unconditionally, overwriting whatever another holder wrote) is refused like an update of
  a changed object, so a client that forgets to send its version cannot pass;
  MicroTime fields must be RFC 3339 with six fraction digits, like the real server's parser.
* ``events.k8s.io/v1`` events: create (with ``generateName``) validated like the API server's
  ``ValidateEventCreate`` (eventTime, type, reportingController/action/reason qualified names, note
  length, regarding namespace); list.
* ``v1`` pods: get, list (``labelSelector``); ``batch/v1`` jobs: create (validated), get, and an Indexed
  Job controller that runs each index's pod (``support/kube_jobs.py``). ``apps/v1`` deployments: get, and PATCH honouring the Content-Type (a strategic or
  merge patch is merged; a JSON patch must be a list).
* bearer-token authentication (401), then, when ``rules`` are set, RBAC authorisation of every request
  (an injected fault included) against Role rules bound in one namespace (403 with the real message), so
  a test can run the code against the rendered Role; ``authorised`` records every (verb, group, resource)
  that was allowed, so a test can compare what the code used with what the Role grants.
* namespaces: only those in ``namespaces`` (and those of objects a test ``put``) exist; a create elsewhere is
  404 ``namespaces "x" not found`` (after RBAC, as the real server's admission does); a read there finds
  nothing (404 for the object).
* fault injection: ``fail_next(method, path_regex, status)`` answers the next matching request with
  that status once (to test retries).

Lease expiry is a client-side rule in Kubernetes (the server stores times, clients compare), so the
server only stores; tests age a Lease with ``age_lease``.
"""
from __future__ import annotations

import json
import re
import secrets
import socket
import ssl
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs

from support.http import LoopbackServer
from support.kube_jobs import JobsApi

MICROTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
QUALIFIED_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
ROUTES = [
    # (regex, group, version, resource)
    (re.compile(r"^/apis/coordination\.k8s\.io/v1/namespaces/([^/]+)/leases(?:/([^/]+))?$"),
     "coordination.k8s.io", "Lease", "leases"),
    (re.compile(r"^/apis/events\.k8s\.io/v1/namespaces/([^/]+)/events(?:/([^/]+))?$"),
     "events.k8s.io", "Event", "events"),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/pods(?:/([^/]+))?$"), "", "Pod", "pods"),
    (re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments(?:/([^/]+))?$"), "apps", "Deployment",
     "deployments"),
    (re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs(?:/([^/]+))?$"), "batch", "Job", "jobs"),
]
LEASE_SPEC_FIELDS = {"holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime", "leaseTransitions",
                     "strategy", "preferredHolder"}


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "details": self.details, "code": self.code}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge(target: dict, patch: dict) -> dict:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
    return target


class FakeApiServer(JobsApi, LoopbackServer):
    def __init__(self, *, tls_dir: Path | None = None, token: str | None = None,
                 namespaces: tuple[str, ...] = ("nlu-ci", "default", "team-nlu", "other")):
        self.token = token or secrets.token_urlsafe(24)
        self.objects: dict[tuple[str, str, str], dict] = {}  # (resource, namespace, name) -> object
        self.requests: list[dict] = []
        self.namespaces = set(namespaces)
        self.rules: list[dict] | None = None
        self.rules_namespace: str | None = None
        self.authorised: set[tuple[str, str, str]] = set()  # (verb, group, resource) allowed by the rules
        self.user = "system:serviceaccount:nlu-ci:nlu-ci"
        self._faults: list[tuple[str, re.Pattern, int]] = []
        self._rv = 100
        self._lock = threading.Lock()
        self.tls_dir = tls_dir
        self.ca_file: Path | None = None
        super().__init__()
        if tls_dir is not None:
            self.scheme = "https"
            self.ca_file = self._make_cert(tls_dir)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_dir / "server.crt", tls_dir / "server.key")
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)

    # ----------------------------------------------------------------- lifecycle

    def handler_class(self):
        return self._handler()

    @staticmethod
    def _make_cert(directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-keyout", str(directory / "server.key"), "-out", str(directory / "server.crt"),
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-addext", "basicConstraints=critical,CA:TRUE"],
                       check=True, capture_output=True)
        return directory / "server.crt"

    def write_kubeconfig(self, path: Path, namespace: str = "nlu-ci") -> Path:
        cluster: dict = {"server": self.url}
        if self.ca_file:
            cluster["certificate-authority"] = str(self.ca_file)
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": "fake",
               "clusters": [{"name": "fake", "cluster": cluster}],
               "users": [{"name": "sa", "user": {"token": self.token}}],
               "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "sa", "namespace": namespace}}]}
        path.write_text(json.dumps(doc))  # JSON is YAML
        return path

    # ------------------------------------------------------------ test helpers

    def put(self, resource: str, obj: dict) -> dict:
        meta = obj.setdefault("metadata", {})
        with self._lock:
            meta.setdefault("uid", secrets.token_hex(16))
            meta["resourceVersion"] = self._next_rv()
            self.namespaces.add(meta["namespace"])  # an object put there: its namespace exists
            self.objects[(resource, meta["namespace"], meta["name"])] = obj
        return obj

    def get(self, resource: str, namespace: str, name: str) -> dict | None:
        return self.objects.get((resource, namespace, name))

    def list(self, resource: str, namespace: str | None = None) -> list[dict]:
        return [o for (r, ns, _n), o in sorted(self.objects.items()) if r == resource and namespace in (None, ns)]

    def age_lease(self, namespace: str, name: str, seconds: float) -> None:
        """Move the Lease's renewTime and acquireTime into the past (as if its holder stopped renewing)."""
        spec = self.objects[("leases", namespace, name)]["spec"]
        for key in ("renewTime", "acquireTime"):
            if spec.get(key):
                t = datetime.fromisoformat(spec[key].replace("Z", "+00:00")) - timedelta(seconds=seconds)
                spec[key] = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def fail_next(self, method: str, path_regex: str, status: int) -> None:
        self._faults.append((method.upper(), re.compile(path_regex), status))

    def allow(self, rules: list[dict], namespace: str | None = "nlu-ci") -> None:
        """Authorise requests with these Role rules only (RBAC semantics: union of rules), bound in
        ``namespace`` (a Role grants nothing elsewhere; None: a ClusterRole bound cluster-wide)."""
        self.rules = rules
        self.rules_namespace = namespace

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    # ------------------------------------------------------------------ handler

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def setup(self):
                super().setup()
                # headers and body leave in two writes: without this, Nagle + delayed ACK add 40 ms a request
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                record = {"method": method, "path": path, "content_type": self.headers.get("Content-Type"),
                          "user_agent": self.headers.get("User-Agent"),
                          "body": raw.decode("utf-8", "replace")}
                server.requests.append(record)
                try:
                    code, body = server.dispatch(method, path, self.headers, raw, query)
                except ApiError as err:
                    code, body = err.code, err.status()
                record["status"] = code
                self._send(code, body)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

            def do_PATCH(self):
                self._handle("PATCH")

            def do_DELETE(self):
                self._handle("DELETE")

        return Handler

    # ----------------------------------------------------------------- routing

    def dispatch(self, method: str, path: str, headers, raw: bytes, query: str = "") -> tuple[int, dict]:
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token != self.token:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        route = next(((rx.match(path), group, resource) for rx, group, _kind, resource in ROUTES if rx.match(path)),
                     None)
        if route is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        m, group, resource = route
        namespace, name = m.group(1), m.group(2)
        verb = {"GET": "get" if name else "list", "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}[method]
        self._authorize(verb, group, resource, namespace, name)
        if verb == "create" and namespace not in self.namespaces:  # the NamespaceLifecycle admission check
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                           {"name": namespace, "kind": "namespaces"})
        for i, (m, rx, status) in enumerate(self._faults):
            if m == method and rx.search(path):
                del self._faults[i]
                raise ApiError(status, {503: "ServiceUnavailable", 500: "InternalError"}.get(status, "Error"),
                               f"injected fault {status}")
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                raise ApiError(400, "BadRequest", "the body of the request was in an unknown format") from None
        handler = getattr(self, f"_{resource}_{verb}", None)
        if handler is None:
            raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on {resource}")
        with self._lock:
            self._query = {k: v[-1] for k, v in parse_qs(query).items()}  # labelSelector of a list
            return handler(namespace, name, body, headers)

    def _authorize(self, verb: str, group: str, resource: str, namespace: str, name: str | None) -> None:
        if self.rules is None:
            return
        for rule in self.rules if self.rules_namespace in (None, namespace) else ():
            if (group in rule.get("apiGroups", []) and resource in rule.get("resources", [])
                    and verb in rule.get("verbs", [])
                    and (not rule.get("resourceNames") or (name and name in rule["resourceNames"]))):
                self.authorised.add((verb, group, resource))
                return
        group_txt = f'"{group}"' if group else '""'
        raise ApiError(403, "Forbidden",
                       f'{resource}{"." + group if group else ""} "{name or ""}" is forbidden: User "{self.user}" '
                       f'cannot {verb} resource "{resource}" in API group {group_txt} in the namespace "{namespace}"',
                       {"name": name, "group": group, "kind": resource})

    def _missing(self, group: str, resource: str, name: str) -> ApiError:
        full = f"{resource}.{group}" if group else resource
        return ApiError(404, "NotFound", f'{full} "{name}" not found', {"name": name, "group": group, "kind": resource})

    # ------------------------------------------------------------------- leases

    def _check_lease(self, namespace: str, name: str | None, body: dict | None) -> dict:
        if not isinstance(body, dict) or body.get("kind", "Lease") != "Lease":
            raise ApiError(400, "BadRequest", "expected a Lease")
        meta = body.get("metadata") or {}
        if name and meta.get("name") != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        if not meta.get("name"):
            raise ApiError(422, "Invalid", "Lease.coordination.k8s.io is invalid: metadata.name: Required value")
        if meta.get("namespace", namespace) != namespace:
            raise ApiError(400, "BadRequest", "the namespace of the object does not match the namespace on the URL")
        spec = body.get("spec") or {}
        unknown = set(spec) - LEASE_SPEC_FIELDS
        if unknown:
            raise ApiError(400, "BadRequest", f"strict decoding error: unknown field \"spec.{sorted(unknown)[0]}\"")
        for key in ("acquireTime", "renewTime"):
            if key in spec and spec[key] is not None and not MICROTIME.match(str(spec[key])):
                raise ApiError(400, "BadRequest", f'parsing time "{spec[key]}" as "2006-01-02T15:04:05.000000Z07:00": '
                                                  f"cannot parse (spec.{key})")
        for key in ("leaseDurationSeconds", "leaseTransitions"):
            if key in spec and not isinstance(spec[key], int):
                raise ApiError(400, "BadRequest", f"spec.{key}: expected an integer")
        if spec.get("leaseDurationSeconds") is not None and spec["leaseDurationSeconds"] <= 0:
            raise ApiError(422, "Invalid", "spec.leaseDurationSeconds: must be greater than 0")
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {k: v for k, v in meta.items() if k in ("name", "labels", "annotations")}
                | {"namespace": namespace}, "spec": dict(spec)}

    def _leases_get(self, namespace, name, body, headers):
        obj = self.objects.get(("leases", namespace, name))
        if obj is None:
            raise self._missing("coordination.k8s.io", "leases", name)
        return 200, obj

    def _leases_create(self, namespace, name, body, headers):
        obj = self._check_lease(namespace, None, body)
        key = ("leases", namespace, obj["metadata"]["name"])
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", f'leases.coordination.k8s.io "{key[2]}" already exists',
                           {"name": key[2], "group": "coordination.k8s.io", "kind": "leases"})
        obj["metadata"].update(uid=secrets.token_hex(16), resourceVersion=self._next_rv(), creationTimestamp=_now())
        self.objects[key] = obj
        return 201, obj

    def _leases_update(self, namespace, name, body, headers):
        current = self.objects.get(("leases", namespace, name))
        if current is None:
            raise self._missing("coordination.k8s.io", "leases", name)
        obj = self._check_lease(namespace, name, body)
        sent_rv = (body.get("metadata") or {}).get("resourceVersion")
        if sent_rv != current["metadata"]["resourceVersion"]:  # none sent: refused like a stale one
            raise ApiError(409, "Conflict",
                           f'Operation cannot be fulfilled on leases.coordination.k8s.io "{name}": the object has '
                           "been modified; please apply your changes to the latest version and try again",
                           {"name": name, "group": "coordination.k8s.io", "kind": "leases"})
        obj["metadata"].update(uid=current["metadata"]["uid"], creationTimestamp=current["metadata"]["creationTimestamp"],
                               resourceVersion=self._next_rv())
        self.objects[("leases", namespace, name)] = obj
        return 200, obj

    def _leases_delete(self, namespace, name, body, headers):
        if self.objects.pop(("leases", namespace, name), None) is None:
            raise self._missing("coordination.k8s.io", "leases", name)
        return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}

    # ------------------------------------------------------------------- events

    def _events_create(self, namespace, name, body, headers):
        errors: list[str] = []
        meta = body.get("metadata") or {}
        if not (meta.get("name") or meta.get("generateName")):
            errors.append("metadata.name: Required value: name or generateName is required")
        if meta.get("namespace", namespace) != namespace:
            raise ApiError(400, "BadRequest", "the namespace of the object does not match the namespace on the URL")
        if not body.get("eventTime"):
            errors.append("eventTime: Required value")
        elif not MICROTIME.match(str(body["eventTime"])):
            raise ApiError(400, "BadRequest", f'parsing time "{body["eventTime"]}": cannot parse (eventTime)')
        if body.get("type") not in ("Normal", "Warning"):
            errors.append(f'type: Invalid value: "{body.get("type")}": has invalid value: must be Normal or Warning')
        for key in ("reportingController", "action", "reason"):
            value = body.get(key) or ""
            if not value:
                errors.append(f"{key}: Required value")
            elif not QUALIFIED_NAME.match(value):
                errors.append(f'{key}: Invalid value: "{value}": must be a qualified name')
        if not body.get("reportingInstance"):
            errors.append("reportingInstance: Required value")
        elif len(body["reportingInstance"]) > 128:
            errors.append("reportingInstance: Too long: may not be longer than 128")
        if len((body.get("note") or "").encode()) > 1024:
            errors.append("note: Too long: may not be longer than 1024")
        regarding = body.get("regarding") or {}
        if regarding.get("namespace") and regarding["namespace"] != namespace:
            errors.append("regarding.namespace: Invalid value: does not match event.namespace")
        for legacy in ("deprecatedSource", "deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedCount"):
            if body.get(legacy):
                errors.append(f"{legacy}: Invalid value: needs to be unset")
        if errors:
            raise ApiError(422, "Invalid", "Event.events.k8s.io is invalid: " + "; ".join(errors))
        obj = dict(body)
        obj["metadata"] = dict(meta, namespace=namespace, uid=secrets.token_hex(16),
                               resourceVersion=self._next_rv(), creationTimestamp=_now())
        event_name = meta.get("name") or meta["generateName"] + secrets.token_hex(3)[:5]
        obj["metadata"]["name"] = event_name
        obj["metadata"].pop("generateName", None)
        self.objects[("events", namespace, event_name)] = obj
        return 201, obj

    def _events_list(self, namespace, name, body, headers):
        items = [o for (r, ns, _n), o in self.objects.items() if r == "events" and ns == namespace]
        return 200, {"apiVersion": "events.k8s.io/v1", "kind": "EventList", "metadata": {}, "items": items}

    # ------------------------------------------------------- pods, deployments

    def _pods_get(self, namespace, name, body, headers):
        obj = self.objects.get(("pods", namespace, name))
        if obj is None:
            raise self._missing("", "pods", name)
        return 200, obj

    def _deployments_get(self, namespace, name, body, headers):
        obj = self.objects.get(("deployments", namespace, name))
        if obj is None:
            raise self._missing("apps", "deployments", name)
        return 200, obj

    def _deployments_patch(self, namespace, name, body, headers):
        obj = self.objects.get(("deployments", namespace, name))
        if obj is None:
            raise self._missing("apps", "deployments", name)
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype == "application/json-patch+json":
            if not isinstance(body, list):
                raise ApiError(400, "BadRequest",
                               "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            raise ApiError(415, "UnsupportedMediaType", "json patches are not implemented by the fake server")
        if ctype not in ("application/strategic-merge-patch+json", "application/merge-patch+json"):
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {ctype}")
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
        _merge(obj, body)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        obj["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1
        return 200, obj


def deployment(namespace: str, name: str) -> dict:
    """A minimal Deployment object for the store."""
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "rasa", "image": "rasa/rasa_nlu:0.15.1-full"}]}}}}


def job_pod(namespace: str, pod: str, job: str, job_uid: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "namespace": namespace, "uid": secrets.token_hex(16),
                         "labels": {"batch.kubernetes.io/job-name": job, "batch.kubernetes.io/controller-uid": job_uid},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": job_uid,
                                              "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"containers": [{"name": "nlu-ci", "image": "nlu-ci"}]}}
