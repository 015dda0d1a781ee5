"""Private Redis and PostgreSQL for the tests.

Tests never touch data they did not create: Redis is always a private ``redis-server`` on a free
port (so a test may flush or restart it), and PostgreSQL is a fresh database created on the
machine's server, or on a private cluster started here when no server answers.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from broadcaster.net.loopback import free_port, redis_argv, wait_for_port

__all__ = ["PostgresDatabase", "RedisServer", "free_port", "wait_port"]


def wait_port(port: int, timeout_s: float = 15.0) -> None:
    """Wait until 127.0.0.1:``port`` accepts; ``TimeoutError`` (``PortTimeout``) if not."""
    wait_for_port(port, timeout_s)


@dataclass
class RedisServer:
    """A private redis-server that a test may flush, kill and restart."""

    port: int = field(default_factory=free_port)
    dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="bc-redis-"))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (bash .ci/run installs it)")
        self.proc = subprocess.Popen(
            redis_argv(binary, self.port, self.dir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        """Kill -9 and start again on the same port: everything in it is lost."""
        self.stop()
        self.start()


def _pg_answers(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class PostgresDatabase:
    """A database of our own; on a private cluster when the machine has no server running."""

    admin_url: str = ""
    name: str = field(default_factory=lambda: f"broadcaster_test_{uuid.uuid4().hex[:10]}")
    cluster_dir: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base}/{self.name}"

    def start(self) -> PostgresDatabase:
        explicit = os.environ.get("BROADCASTER_TEST_PG_ADMIN_URL")
        if explicit:
            self.admin_url = explicit
        elif _pg_answers():
            self.admin_url = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        else:
            self.admin_url = self._start_cluster()
        self._admin(f'CREATE DATABASE "{self.name}"')
        return self

    def _start_cluster(self) -> str:
        initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not initdbs:
            raise RuntimeError(
                "PostgreSQL is neither running nor installed (bash .ci/run installs it)"
            )
        bindir = Path(initdbs[-1]).parent
        self.cluster_dir = tempfile.mkdtemp(prefix="bc-pg-")
        port = free_port()
        user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if user:
            shutil.chown(self.cluster_dir, "postgres")
        subprocess.run(
            [
                *user,
                str(bindir / "initdb"),
                "-D",
                self.cluster_dir,
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.proc = subprocess.Popen(
            [
                *user,
                str(bindir / "postgres"),
                "-D",
                self.cluster_dir,
                "-p",
                str(port),
                "-k",
                self.cluster_dir,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(port, 30)
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def _admin(self, sql: str) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(sql))
        finally:
            engine.dispose()

    def stop(self) -> None:
        try:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            if self.proc and self.proc.poll() is None:
                self.proc.terminate()
                self.proc.wait(20)


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of the test's own, on a free port, that the test may restart.

    Never the machine's shared server: restarting that would break every other test running.
    """

    port: int = field(default_factory=free_port)
    cluster_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="bc-pg-private-"))
    database: str = "broadcaster"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _bindir(self) -> Path:
        initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not initdbs:
            raise RuntimeError("PostgreSQL is not installed (bash .ci/run installs it)")
        return Path(initdbs[-1]).parent

    def _as_postgres(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self._as_postgres(), str(self._bindir() / "pg_ctl"), "-D", self.cluster_dir, *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def start(self) -> PrivatePostgres:
        """initdb (first time only), start, and create the database (first time only)."""
        fresh = not (Path(self.cluster_dir) / "PG_VERSION").exists()
        if fresh:
            if os.geteuid() == 0:
                shutil.chown(self.cluster_dir, "postgres")
            subprocess.run(
                [
                    *self._as_postgres(),
                    str(self._bindir() / "initdb"),
                    "-D",
                    self.cluster_dir,
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        options = f"-p {self.port} -k {self.cluster_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("start", "-w", "-l", f"{self.cluster_dir}/server.log", "-o", options)
        if fresh:
            import sqlalchemy as sa

            admin = self.url.rsplit("/", 1)[0] + "/postgres"
            engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{self.database}"'))
            engine.dispose()
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` disconnects every client (a restart as an operator does it)."""
        self._pg_ctl("stop", "-w", "-m", mode)

    def restart(self) -> None:
        """Stop (every client connection is cut) and start again on the same port and data."""
        self.stop()
        self.start()

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.cluster_dir, ignore_errors=True)
