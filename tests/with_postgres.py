"""Run a command with a throwaway PostgreSQL server: ``python tests/with_postgres.py -- pytest ...``.

``make test`` runs the suite through this. It finds Debian's server binaries (/usr/lib/postgresql/*/bin),
installing the ``postgresql`` package with apt-get when they are missing and it runs as root (as CI does),
makes a cluster in a temporary folder on a free loopback port (as the ``postgres`` user when run as root: the
server refuses root), exports its URL as ``ABCSCALE_TEST_POSTGRES_URL``, runs the command, then stops the server
and deletes the folder, whatever the command did. With ``ABCSCALE_TEST_POSTGRES_URL`` already set it only runs
the command (use your own server). When no server can be had it says so and runs the command anyway: the
PostgreSQL tests then fail under ``ABCSCALE_REQUIRE_POSTGRES=1`` (which make test sets) instead of skipping.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ENV = "ABCSCALE_TEST_POSTGRES_URL"


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _install() -> Path | None:
    """apt-get install postgresql, only as root with apt-get present (CI); None when that is not possible."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    print("with_postgres: installing Debian's postgresql package", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"], env=env,
                   check=False)
    return _binaries()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A PostgreSQL cluster in a temporary folder, trust auth, listening on 127.0.0.1 only."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="abcscale-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "postgres" if os.geteuid() == 0 else None  # the server refuses to run as root
        if self.user:
            shutil.chown(self.root, user=self.user)
        self.url = f"postgresql+psycopg://{self.user or _login()}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=self.root)

    def start(self) -> None:
        user = self.user or _login()
        self._run("initdb", "-D", str(self.data), "-U", user, "-A", "trust", "-E", "UTF8", "--no-sync")
        # sockets in our folder (no /var/run/postgresql needed); enough connections for xdist workers x servers
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=300 -c fsync=on"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", opts, "-w", "-t", "60",
                  "start")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except (subprocess.CalledProcessError, OSError):
            pass  # never started, or already gone: the folder goes anyway
        shutil.rmtree(self.root, ignore_errors=True)


def _login() -> str:
    import getpass

    return getpass.getuser()


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1:] if "--" in argv else argv
    if not command:
        print("usage: with_postgres.py -- COMMAND...", file=sys.stderr)
        return 2
    if os.environ.get(ENV):
        return subprocess.call(command)
    bindir = _binaries() or _install()
    if bindir is None:
        print("with_postgres: no PostgreSQL server here (install Debian's postgresql package); running without "
              "one", file=sys.stderr, flush=True)
        return subprocess.call(command)
    cluster = Cluster(bindir)
    # a Ctrl-C or a CI cancel (SIGTERM) still reaches the finally below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        try:
            cluster.start()
        except subprocess.CalledProcessError as exc:
            log = cluster.root / "log"
            print(f"with_postgres: the server did not start ({exc}); {log.read_text()[-2000:] if log.exists() else ''}",
                  file=sys.stderr)
            return 1
        print(f"with_postgres: PostgreSQL {bindir.parent.name} on 127.0.0.1:{cluster.port} in {cluster.root}",
              file=sys.stderr, flush=True)
        return subprocess.call(command, env={**os.environ, ENV: cluster.url})
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
