"""Services for tests/support/kubelet.py: a kube-proxy stand-in on loopback, and the one rewrite the harness makes
(a Service's DNS name in an env value becomes 127.0.0.1 and its proxy's port).

A Service port is a TCP listener on 127.0.0.1 that forwards each connection to one of the ready pods its selector
matches (round robin over the targetPort, by name or number), as kube-proxy forwards to the Service's ready
endpoints (kubernetes.io/docs/concepts/services-networking/service/#defining-a-service); with no ready endpoint
the connection is closed at once (kube-proxy rejects it)."""
from __future__ import annotations

import contextlib
import itertools
import re
import socket
import threading


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceProxy:
    def __init__(self, svc: dict, port: dict, kubelet):
        self.name = svc["metadata"]["name"]
        self.namespace = svc["metadata"].get("namespace", "default")
        self.selector = (svc["spec"].get("selector") or {})
        self.service_port = port["port"]
        self.target = port.get("targetPort", port["port"])
        self.kubelet = kubelet
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._rr = itertools.count()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def endpoints(self) -> list[int]:
        out = []
        for pod in list(self.kubelet.pods):
            if pod.namespace != self.namespace or not pod.ready or not self.selector:
                continue
            if any(pod.labels.get(k) != v for k, v in self.selector.items()):
                continue
            for c in pod.spec["containers"]:
                for p in c.get("ports") or []:
                    if self.target in (p["containerPort"], p.get("name")):
                        out.append(pod.ports[p["containerPort"]])
        return out

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            ends = self.endpoints()
            if not ends:
                client.close()
                continue
            self.connections += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", ends[next(self._rr) % len(ends)]), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        # wake the accept() first (tests/support/git_server.py GitDaemon says why: closing alone leaves the
        # thread accepting on whatever socket reuses the descriptor)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        src.close()


_HOSTPORT = re.compile(r"(?P<pre>^|//|@)(?P<host>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)(:(?P<port>\d+))?(?=$|/|\?|#)")


def rewrite_service_urls(value: str, kubelet, namespace: str) -> str:
    """Replace a Service's (or a test's external) host[:port] in a URL or bare host:port by 127.0.0.1:proxy."""
    def repl(m: re.Match) -> str:
        host, port = m["host"], m["port"]
        ext = kubelet.external.get(f"{host}:{port}" if port else host)
        if ext:
            return m["pre"] + ext
        parts = host.split(".")
        name, ns = parts[0], parts[1] if len(parts) > 1 else namespace
        if len(parts) > 1 and parts[2:] not in ([], ["svc"], ["svc", "cluster", "local"]):
            return m[0]
        scheme_port = 80 if value.startswith("http://") else 443 if value.startswith("https://") else None
        proxy = kubelet.services.get((name, int(port) if port else scheme_port))
        if proxy is None or proxy.namespace != ns:
            return m[0]
        return f"{m['pre']}127.0.0.1:{proxy.port}"
    if "//" not in value and not re.fullmatch(r"[a-z0-9.-]+:\d+", value):
        return value  # neither a URL nor host:port
    return _HOSTPORT.sub(repl, value, count=1)
