"""PostgreSQL for tests and benchmarks: databases made and dropped on a server, and servers of their own."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from .processes import free_port, kill_tree


def database_url_on(server_url: str, name: str) -> str:
    """The URL of database ``name`` on the server ``server_url`` points at."""
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def admin(server_url: str, sql: str) -> None:
    """One statement outside a transaction (CREATE DATABASE, DROP DATABASE)."""
    conn = psycopg2.connect(server_url, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


class PostgresServer:
    """A PostgreSQL server of our own (Debian's binaries, a temporary data directory, a free loopback port),
    for tests that restart or crash it: never the machine's shared server. ``fsync`` as a production server
    has it (on), or off for tests that only need a server of their own, faster."""

    def __init__(self, fsync: bool = True):
        self.fsync = fsync
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
        if not bins:
            raise RuntimeError("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
        self.bin = Path(bins[-1]).parent
        # Its own directory under /tmp: the postgres user cannot enter pytest's (mode 0700, root's).
        self.dir = Path(tempfile.mkdtemp(prefix="ocicat-postgres-"))
        self.data = self.dir / "data"
        self.port = free_port()
        # initdb refuses to run as root: then the server runs as the postgres system user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *command: str, timeout: float = 60) -> None:
        result = subprocess.run([*self.as_user, *command], capture_output=True, text=True, timeout=timeout)
        if result.returncode:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stdout}{result.stderr}")

    def start(self) -> "PostgresServer":
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._ctl("start")
        return self

    def start_replica(self) -> "PostgresServer":
        """A streaming replica of this server, started: a hot standby made by pg_basebackup -R (initdb's pg_hba.conf
        lets replication connect from loopback), following the primary's WAL as it is written."""
        replica = PostgresServer(fsync=self.fsync)
        if replica.as_user:
            shutil.chown(replica.dir, "postgres", "postgres")
        replica._run(str(self.bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                     "-D", str(replica.data), "-R", "-X", "stream", "-c", "fast", timeout=120)
        replica._ctl("start")
        return replica

    def stop(self) -> None:
        self._ctl("stop")

    def _ctl(self, action: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync={'on' if self.fsync else 'off'}"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", options,
                  "-m", "fast", "-w", "-t", "30", action)

    def restart(self) -> None:
        self._ctl("restart")

    def crash(self) -> None:
        """SIGKILL the postmaster and every process it started: no shutdown checkpoint, nothing flushed by them."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        kill_tree(postmaster)

    def recover(self) -> None:
        """Start again after a crash or a stop: PostgreSQL replays its WAL before it accepts connections."""
        self._ctl("start")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        admin(self.url(), f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop()
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
