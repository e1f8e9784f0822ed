"""Real git servers on loopback for the tests, serving bare repositories from one folder:

- ``GitDaemon``: ``git daemon --inetd`` behind a Python listener on port 0 (one git daemon per connection, its
  stdin/stdout the accepted socket), so the port is bound before anyone can take it;
- ``GitHttp``: ``git http-backend`` run as a CGI program by a small threaded HTTP server on port 0, which asks
  for HTTP basic auth and lets a request through only when its password is the token (any user name);
  every request's ``Authorization`` header is kept in ``seen`` so tests can look at what was sent.

``Repo`` makes a bare repository and commits files to it through a working clone (the way a team pushes)."""
from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

GIT_ENV = {"GIT_AUTHOR_NAME": "Ann Otator", "GIT_AUTHOR_EMAIL": "ann@example.org",
           "GIT_COMMITTER_NAME": "Ann Otator", "GIT_COMMITTER_EMAIL": "ann@example.org",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "PATH": "/usr/bin:/bin", "LC_ALL": "C"}


def git(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


class Repo:
    """``root/name.git`` (bare, default branch ``main``) and a working clone to commit from."""

    def __init__(self, root: Path, name: str = "assistant"):
        self.root, self.name = root, f"{name}.git"
        self.bare = root / self.name
        git("init", "--quiet", "--bare", "--initial-branch=main", str(self.bare))
        self.work = root.parent / f"{name}-work"
        git("init", "--quiet", "--initial-branch=main", str(self.work))
        git("remote", "add", "origin", str(self.bare), cwd=self.work)
        self.branch = "main"

    def commit(self, files: dict[str, str | None], message: str, branch: str = "main", tag: str | None = None) -> str:
        """Write (or, for None, delete) ``files``, commit, push ``branch`` (and ``tag``); the commit's sha."""
        if branch != self.branch:
            exists = git("branch", "--list", branch, cwd=self.work)
            git("checkout", "--quiet", *([] if exists else ["-b"]), branch, cwd=self.work)
            self.branch = branch
        for rel, text in files.items():
            path = self.work / rel
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git("add", "--all", cwd=self.work)
        git("commit", "--quiet", "-m", message, cwd=self.work)
        git("push", "--quiet", "origin", branch, cwd=self.work)
        if tag:
            git("tag", "-a", tag, "-m", tag, cwd=self.work)
            git("push", "--quiet", "origin", tag, cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


class GitDaemon:
    """git:// on 127.0.0.1:<port>, every repository under ``root`` exported (read only)."""

    def __init__(self, root: Path):
        self.root = root
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.children: list[subprocess.Popen] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, repo: Repo) -> str:
        return f"git://127.0.0.1:{self.port}/{repo.name}"

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                self.children.append(subprocess.Popen(
                    ["git", "daemon", "--inetd", "--export-all", f"--base-path={self.root}", str(self.root)],
                    stdin=conn.fileno(), stdout=conn.fileno(), stderr=subprocess.DEVNULL, env=GIT_ENV))

    def __enter__(self) -> GitDaemon:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        # wake the thread blocked in accept() first: closing a socket another thread is accepting on does not
        # wake it on Linux, and the leaked thread then accepts on whatever socket reuses the descriptor (it took
        # a later GitHttp's connections and handed them to `git daemon --inetd`: "Connection reset by peer")
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.thread.join(timeout=5)
        self.listener.close()
        assert not self.thread.is_alive(), "the git daemon listener thread did not stop"
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=10)


class GitHttp:
    """Smart HTTP on http://127.0.0.1:<port>/<repo>.git via ``git http-backend``; basic auth with ``token``."""

    def __init__(self, root: Path, token: str):
        self.root, self.token = root, token
        self.seen: list[str | None] = []  # the Authorization header of every request
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.handle(self)

            do_POST = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, repo: Repo) -> str:
        return f"http://127.0.0.1:{self.port}/{repo.name}"

    def _authorized(self, header: str | None) -> str | None:
        if not header or not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header.split(None, 1)[1]).decode().partition(":")
        except ValueError:
            return None
        return user if password == self.token else None

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        header = request.headers.get("Authorization")
        self.seen.append(header)
        user = self._authorized(header)
        if user is None:
            request.send_response(401)
            request.send_header("WWW-Authenticate", 'Basic realm="git"')
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        body = self._body(request)
        parts = urlsplit(request.path)
        env = dict(GIT_ENV, GIT_PROJECT_ROOT=str(self.root), GIT_HTTP_EXPORT_ALL="1", REMOTE_USER=user,
                   REMOTE_ADDR="127.0.0.1", REQUEST_METHOD=request.command, PATH_INFO=parts.path,
                   QUERY_STRING=parts.query, CONTENT_TYPE=request.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(body)))
        if request.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
        if request.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
        proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        request.send_response(status)
        for name, value in headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    @staticmethod
    def _body(request: BaseHTTPRequestHandler) -> bytes:
        if request.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(request.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    request.rfile.readline()
                    return b"".join(chunks)
                chunks.append(request.rfile.read(size))
                request.rfile.readline()
        return request.rfile.read(int(request.headers.get("Content-Length") or 0))

    def __enter__(self) -> GitHttp:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
