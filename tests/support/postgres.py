"""A real PostgreSQL 15 server for the tests: ``initdb`` + ``pg_ctl`` in a temporary folder, as an unprivileged
user (``nobody`` via ``setpriv`` when the tests run as root: PostgreSQL refuses to run as root), listening on
127.0.0.1 only, with password (SCRAM) authentication, so a test can check that the password of a
``postgresql://user:password@host:port/db`` URL never shows. ``postgres_server`` is a session fixture that
stops the server and removes its folder."""
from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

USER, DB = "rasa", "rasa"
PASSWORD = "pg-Tr4cker-s3cret-71c2"  # what the tests look for in every output


def _bin(name: str) -> str | None:
    for folder in ("/usr/lib/postgresql/15/bin",):
        if (Path(folder) / name).is_file():
            return str(Path(folder) / name)
    return shutil.which(name)


INITDB, PG_CTL = _bin("initdb"), _bin("pg_ctl")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """One server; ``url`` (with the password), ``url_for(db)``, ``stop()``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nlu-ci-pg-"))
        self.prefix: tuple[str, ...] = ()
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
            self.prefix = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
        os.chmod(self.root, 0o700)
        self.data, self.log = self.root / "data", self.root / "server.log"
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            os.chown(pwfile, nobody.pw_uid, nobody.pw_gid)
        self._run([INITDB, "-D", str(self.data), "-U", USER, "--auth=scram-sha-256", f"--pwfile={pwfile}",
                   "-E", "UTF8", "--no-sync"], timeout=120)
        pwfile.unlink()
        self.port = 0
        for _ in range(5):  # another process may take the port between the pick and the bind
            self.port = _free_port()
            opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off")
            proc = self._run([PG_CTL, "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60",
                              "start"], timeout=90, check=False)
            if proc.returncode == 0:
                break
            if "address already in use" not in self.log.read_text(errors="replace").lower():
                raise RuntimeError(f"pg_ctl start failed: {proc.stdout}{proc.stderr}{self._log_tail()}")
        else:
            raise RuntimeError(f"no free port for PostgreSQL: {self._log_tail()}")
        self.url = self.url_for(DB)
        self._create_db(DB)

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-1500:]
        return ""

    def _run(self, cmd: list[str], timeout: float, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.prefix, *cmd], capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    def url_for(self, db: str, password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{db}"

    def _create_db(self, name: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, password=PASSWORD, dbname="postgres",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def execute(self, db: str, sql: str, rows: list[tuple] | None = None) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, password=PASSWORD, dbname=db,
                             connect_timeout=10) as conn:
            if rows is None:
                conn.execute(sql)
            else:
                conn.cursor().executemany(sql, rows)

    def create_db(self, name: str) -> str:
        self._create_db(name)
        return self.url_for(name)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run([PG_CTL, "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop"], timeout=60, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    if not INITDB or not PG_CTL:
        pytest.skip("PostgreSQL 15 (initdb, pg_ctl) not installed (apt-get install postgresql)")
    server = Postgres()
    try:
        yield server
    finally:
        server.stop()
    t0 = time.monotonic()
    while server.root.exists() and time.monotonic() - t0 < 5:
        time.sleep(0.1)
