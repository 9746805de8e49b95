"""A throwaway PostgreSQL server (Debian's binaries, `infra/install_postgres.sh`) for the Dagster instance
tests.

Its own data directory, 127.0.0.1 on a given port, no Unix socket outside that directory, trust
authentication for one user, fsync off: a test server, never a production one (on a cluster the Helm chart's
or a managed PostgreSQL holds the instance). PostgreSQL refuses to run as root, so under root the server
runs as Debian's `postgres` user, which then owns the directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

USER = "dagster"
DATABASE = "dagster"


def bin_dir() -> Path:
    """Where initdb and pg_ctl are: the PATH, else the newest /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not versions:
        raise FileNotFoundError(
            "PostgreSQL's initdb not found: run `make postgres` (infra/install_postgres.sh)"
        )
    return Path(versions[-1]).parent


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def start(directory: Path, port: int, timeout: int = 60) -> str:
    """initdb into `directory`/data, start the server, create the database; returns its SQLAlchemy URL."""
    binaries = bin_dir()
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    data, log = directory / "data", directory / "server.log"
    subprocess.run(
        _as_owner(
            [
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={directory} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        _as_owner(
            [
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                str(timeout),
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE],
        check=True,
        capture_output=True,
    )
    # SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3; dagster-postgres brings psycopg2
    return f"postgresql+psycopg2://{USER}@127.0.0.1:{port}/{DATABASE}"


def stop(directory: Path) -> None:
    """Stop the server started in `directory` (fast shutdown: open connections are closed)."""
    subprocess.run(
        _as_owner([str(bin_dir() / "pg_ctl"), "-D", str(directory / "data"), "-m", "fast", "-w", "stop"]),
        check=True,
        capture_output=True,
    )
