"""A throwaway PostgreSQL server for the tests that need a real one.

:class:`PostgresServer` is a context manager that

* finds ``initdb`` and ``pg_ctl`` (the highest version under
  ``/usr/lib/postgresql/<version>/bin``, else on ``PATH``),
* creates a cluster in a temporary directory with ``initdb`` (trust
  authentication: nothing but this test run can reach it, it listens on
  127.0.0.1 and a socket in that directory only),
* starts it on a free loopback port with ``pg_ctl`` and waits until it accepts
  connections, creates a database, and
* on exit stops the server and removes the directory.

PostgreSQL refuses to run as root; when the tests run as root the cluster is
created and served by the ``postgres`` system user (``nobody`` when there is
none) through ``runuser``, and the temporary directory belongs to that user.

Nothing here skips: when the server binaries are missing a ``RuntimeError``
names ``.ci/install-system-deps``, which installs them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

PG_ROOT = "/usr/lib/postgresql"
SUPERUSER = "postgres"
DEFAULT_DBNAME = "secure_sso_test"
STARTUP_TIMEOUT = 30
COMMAND_TIMEOUT = 60.0
START_ATTEMPTS = 3

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _version_key(bindir: str) -> tuple[int, ...]:
    version = Path(bindir).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def find_bindir() -> Path:
    """The ``bin`` directory holding ``initdb`` and ``pg_ctl``; raises when there is none."""
    candidates = [
        bindir
        for bindir in glob.glob(os.path.join(PG_ROOT, "*", "bin"))
        if all(os.access(os.path.join(bindir, tool), os.X_OK) for tool in ("initdb", "pg_ctl"))
    ]
    if candidates:
        return Path(max(candidates, key=_version_key))
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    raise RuntimeError(
        f"PostgreSQL server binaries (initdb and pg_ctl) were not found under {PG_ROOT}/*/bin "
        "or on PATH: the PostgreSQL tests need a real server. Install them with "
        "`sudo bash .ci/install-system-deps` (Debian package `postgresql`)."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_account() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as, or ``None`` to run it as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither a `postgres` nor a `nobody` user exists")


class PostgresServer:
    """A PostgreSQL cluster of its own, listening on 127.0.0.1 for as long as the ``with`` lasts.

    Attributes once started: :attr:`host`, :attr:`port`, :attr:`user` (the cluster's
    superuser), :attr:`dbname` (a database created at start), :attr:`url`.
    """

    host = "127.0.0.1"
    user = SUPERUSER

    def __init__(self, dbname: str = DEFAULT_DBNAME, *, max_connections: int = 100) -> None:
        if not _NAME.match(dbname):
            raise ValueError(f"unsafe database name {dbname!r}")
        self.dbname = dbname
        self.max_connections = max_connections
        self.port = 0
        self.bindir = find_bindir()
        self.account = _server_account()
        self._tmp: Path | None = None
        self._started = False

    # -- paths ------------------------------------------------------------------------
    @property
    def tmpdir(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("the PostgreSQL server is not started")
        return self._tmp

    @property
    def datadir(self) -> Path:
        return self.tmpdir / "data"

    @property
    def socketdir(self) -> Path:
        return self.tmpdir / "run"

    @property
    def logfile(self) -> Path:
        return self.tmpdir / "server.log"

    # -- connection details -----------------------------------------------------------
    @property
    def url(self) -> str:
        return self.url_for(self.dbname)

    def url_for(self, dbname: str) -> str:
        return f"postgres://{self.user}@{self.host}:{self.port}/{dbname}"

    def env(self, dbname: str | None = None) -> dict[str, str]:
        """Variables naming this server (``tests/settings_pg.py`` reads the ``PG_*`` ones)."""
        name = dbname or self.dbname
        return {
            "PG_HOST": self.host,
            "PG_PORT": str(self.port),
            "PG_USER": self.user,
            "PG_DB": name,
            "DATABASE_URL": self.url_for(name),
            # For psql and libpq-based tools.
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": name,
        }

    def connect(self, dbname: str | None = None, *, autocommit: bool = True) -> Any:
        """A new psycopg connection (as the superuser) to ``dbname`` (default: :attr:`dbname`)."""
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=dbname or self.dbname,
            autocommit=autocommit,
            connect_timeout=10,
        )

    def create_database(self, name: str, *, template: str | None = None,
                        owner: str | None = None) -> None:
        """``CREATE DATABASE name`` (owned by ``owner``, a copy of ``template``, when given)."""
        from psycopg import sql

        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner:
            query = sql.SQL("{} OWNER {}").format(query, sql.Identifier(owner))
        if template:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        with self.connect("postgres") as conn:
            conn.execute(query)

    @contextlib.contextmanager
    def copy_of(self, template: str, name: str, *, owner: str | None = None) -> Iterator[str]:
        """A database ``name`` copied from ``template`` for one test, dropped after it."""
        self.create_database(name, template=template, owner=owner)
        try:
            yield name
        finally:
            self.drop_database(name)

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        with self.connect("postgres") as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # -- lifecycle --------------------------------------------------------------------
    def _run(
        self, *args: str, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run a server binary as the server account; raise with its output when it fails."""
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.account is not None:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            command = [runuser, "-u", self.account.pw_name, "--", *command]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        result = subprocess.run(
            command,
            cwd=self.tmpdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited {result.returncode}:\n"
                f"{result.stdout}{result.stderr}{self._log_tail()}"
            )
        return result

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return ""
        return "\n--- server log ---\n" + "\n".join(text.splitlines()[-lines:])

    def _pg_ctl_start(self) -> None:
        options = (
            f"-k {self.socketdir} -p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            f"-c max_connections={self.max_connections}"
        )
        self._run(
            "pg_ctl",
            "start",
            "-D", str(self.datadir),
            "-l", str(self.logfile),
            "-o", options,
            "-w",
            "-t", str(STARTUP_TIMEOUT),
            timeout=STARTUP_TIMEOUT + 15,
        )  # fmt: skip

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                with self.connect("postgres") as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL did not accept connections: {exc}{self._log_tail()}"
                    ) from exc
                time.sleep(0.1)

    def start(self) -> PostgresServer:
        # The server account must reach the directory: under root, use /tmp (world-traversable)
        # rather than a TMPDIR that may sit in root's home.
        parent = "/tmp" if self.account is not None else None  # noqa: S108
        self._tmp = Path(tempfile.mkdtemp(prefix="sso-pg-", dir=parent))
        try:
            if self.account is not None:
                os.chown(self._tmp, self.account.pw_uid, self.account.pw_gid)
            self._run(
                "initdb",
                "-D", str(self.datadir),
                "-U", self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
                timeout=120,
            )  # fmt: skip
            self.socketdir.mkdir()
            if self.account is not None:
                os.chown(self.socketdir, self.account.pw_uid, self.account.pw_gid)
            # A free port may be taken between choosing and binding it: choose again.
            for attempt in range(1, START_ATTEMPTS + 1):
                self.port = _free_port()
                try:
                    self._pg_ctl_start()
                    break
                except RuntimeError:
                    if attempt == START_ATTEMPTS:
                        raise
            self._started = True
            self._wait_ready()
            self.create_database(self.dbname)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._tmp is None:
            return
        try:
            if self._started:
                try:
                    self._run("pg_ctl", "stop", "-D", str(self.datadir), "-m", "fast", "-w")
                except (RuntimeError, subprocess.TimeoutExpired):
                    self._kill_postmaster()
        finally:
            self._started = False
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _kill_postmaster(self) -> None:
        """Last resort when ``pg_ctl stop`` fails: SIGKILL the postmaster named in its pid file."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
