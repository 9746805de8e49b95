"""A local Apache Spark cluster with Delta Lake and S3A, behind a Spark Connect server.

Three JVM processes, as on a real cluster: a standalone master, one worker (whose executors run
outside the driver) and the Spark Connect server (the driver, `--master spark://...`). The scripts
and Spark's own jars come from the pyspark distribution; Delta Lake, hadoop-aws and the AWS SDK
bundle are resolved from Maven Central by `infra/spark/pom.xml` (`jars`). The server is configured
against the embedded S3 (`infra/local_s3.py`: endpoint, path-style, the same generated credentials)
and with Delta's SQL extension and catalog.

State lives under `<state_dir>/spark/`: PID files, ports, logs, the generated properties file
(mode 600: it holds the S3 secret) and the worker's work dir. The jars live in
`$LAKEHOUSE_SPARK_JARS_DIR` (default `<state_dir>/spark/jars`), shared by every cluster.

    python -m infra.spark_connect jars|start|stop|status|url|env

Sized for a 2-core, 24 GB machine: worker 2 cores / 3 GB (one executor of 2 cores, 2 GB),
driver 2 GB, master and worker daemons 512 MB each.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from infra import local_s3

POM = Path(__file__).resolve().parent / "spark" / "pom.xml"
DEFAULT_CONNECT_PORT = 15002
PROCESSES = ("connect", "worker", "master")  # stop order
WORKER_CORES = 2
WORKER_MEMORY = "3g"
EXECUTOR_MEMORY = "2g"
DRIVER_MEMORY = "2g"
DAEMON_MEMORY = "512m"


def state_dir() -> Path:
    return Path(os.environ.get("LAKEHOUSE_STATE_DIR", ".lakehouse")).resolve() / "spark"


def jars_dir() -> Path:
    configured = os.environ.get("LAKEHOUSE_SPARK_JARS_DIR")
    return Path(configured).resolve() if configured else state_dir() / "jars"


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()[:16]


def _artifact_name(jar: str) -> str:
    """`hadoop-aws-3.4.2.jar` -> `hadoop-aws`."""
    return re.sub(r"-\d[\w.\-]*\.jar$", "", jar)


class JarDownloadError(RuntimeError):
    pass


def install_jars(quiet: bool = False) -> Path:
    """Resolve the POM into the jars dir, unless it is there for this POM already.

    Maven downloads into a temporary sibling folder, renamed into place only when complete, so a
    failed download leaves the previous state (or nothing) behind and names the artifact. Jars
    pyspark already ships (Hadoop client, Jackson, Parquet, Scala, logging) are left out: Spark's
    own versions win.
    """
    target = jars_dir()
    marker = target / ".pom-sha256"
    if marker.exists() and marker.read_text().strip() == _pom_digest():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarDownloadError(
            "`mvn` is not on the PATH: install Maven (apt-get install maven) to fetch the Spark jars"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".jars-", dir=target.parent))
    try:
        if not quiet:
            print(f"resolving Delta Lake and S3A jars ({POM}) into {target} ...", flush=True)
        started = time.monotonic()
        done = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            output = done.stdout + done.stderr
            missing = (
                re.findall(
                    r"([\w.\-]+:[\w.\-]+:(?:jar:)?[\w.\-]+)(?: \(absent\))? "
                    r"(?:was not found|could not be resolved|has not been downloaded)",
                    output,
                )
                or re.findall(r"Could not (?:resolve|find|transfer) artifact ([^\s]+)", output)
                or re.findall(
                    r"Failed to collect dependencies at ([^\s:]+:[^\s:]+:[^\s:]+(?::[^\s:]+)?)", output
                )
            )
            what = ", ".join(dict.fromkeys(missing)) or "see the Maven output below"
            tail = "\n".join(line for line in output.splitlines() if "ERROR" in line)[-2000:]
            raise JarDownloadError(f"could not download the Spark jars: {what}\n{tail}")
        shipped = {_artifact_name(p.name) for p in (spark_home() / "jars").glob("*.jar")} | {
            "commons-logging"
        }
        for jar in staging.glob("*.jar"):
            if _artifact_name(jar.name) in shipped:
                jar.unlink()
        (staging / ".pom-sha256").write_text(_pom_digest())
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        if not quiet:
            print(
                f"jars ready in {time.monotonic() - started:.1f} s: "
                + ", ".join(sorted(p.name for p in target.glob("*.jar")))
            )
        return target
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _free_port() -> int:
    return local_s3._free_port()


def _port_open(port: int) -> bool:
    return local_s3._port_open(port)


def _pid(name: str) -> int | None:
    path = state_dir() / f"{name}.pid"
    if not path.exists():
        return None
    pid = int(path.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return None
    try:  # a zombie child of this process counts as gone
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            path.unlink(missing_ok=True)
            return None
    except ChildProcessError:
        pass
    return pid


def url() -> str | None:
    """The Spark Connect URL of this state dir's running cluster, if any."""
    if _pid("connect") is None:
        return None
    return f"sc://127.0.0.1:{(state_dir() / 'connect.port').read_text().strip()}"


def _spawn(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
    log_dir = state_dir() / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"{name}.out", "ab")
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
        cwd=state_dir(),
    )
    (state_dir() / f"{name}.pid").write_text(str(process.pid))
    return process


def _wait_for_port(name: str, process: subprocess.Popen, port: int, deadline: float) -> None:
    while not _port_open(port):
        if process.poll() is not None:
            raise RuntimeError(
                f"the Spark {name} exited with {process.returncode}; "
                f"see {state_dir() / 'log' / (name + '.out')}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the Spark {name} did not listen on port {port} in time; see {state_dir() / 'log'}"
            )
        time.sleep(0.2)


def _properties(s3: local_s3.LocalS3, master: str, port: int, jars: Path) -> Path:
    classpath = f"{jars}/*"
    settings = {
        "spark.master": master,
        "spark.app.name": "lakehouse Spark Connect",
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.memory": DRIVER_MEMORY,
        "spark.executor.memory": EXECUTOR_MEMORY,
        "spark.executor.cores": str(WORKER_CORES),
        "spark.cores.max": str(WORKER_CORES),
        # Same machine: the jars are read in place rather than shipped to each executor (700 MB).
        "spark.driver.extraClassPath": classpath,
        "spark.executor.extraClassPath": classpath,
        "spark.pyspark.python": sys.executable,
        "spark.ui.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        # Delta rebuilds a table's state from its log in 50 tasks by default: far too many for small tables.
        "spark.databricks.delta.snapshotPartitions": "2",
        # VACUUM lists a table's files in this many tasks (default 10000: minutes per small table).
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": "4",
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # Erasure vacuums with no retention, as it does with delta-rs.
        "spark.databricks.delta.retentionDurationCheck.enabled": "false",
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint": s3.endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": s3.region,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(s3.endpoint.startswith("https://")).lower(),
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        ),
        "spark.hadoop.fs.s3a.access.key": s3.access_key,
        "spark.hadoop.fs.s3a.secret.key": s3.secret_key,
        "spark.hadoop.fs.s3a.attempts.maximum": "3",
        "spark.hadoop.fs.s3a.retry.limit": "3",
    }
    path = state_dir() / "spark-connect.properties"
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text("".join(f"{key} {value}\n" for key, value in settings.items()))
    return path


def start(port: int | None = None, timeout: float = 180.0, quiet: bool = True) -> str:
    """Start (or reuse) master, worker and Connect server; returns the Spark Connect URL.

    The Connect server listens on `port`, else `$LAKEHOUSE_SPARK_CONNECT_PORT`, else 15002 when free,
    else a free port (tests pass a free port: two clusters starting at once could both find 15002 free)."""
    running = url()
    if running is not None:
        return running
    stop()  # whatever is left of a half-started cluster
    s3 = local_s3.current()
    if s3 is None:
        raise RuntimeError(
            "the embedded S3 is not running: start it first (make up, or python -m infra.local_s3 start)"
        )
    jars = install_jars(quiet=quiet)
    home = spark_home()
    directory = state_dir()
    (directory / "work").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
        "SPARK_LOG_DIR": str(directory / "log"),
        "SPARK_CONF_DIR": str(directory / "conf"),
        "PYSPARK_PYTHON": sys.executable,
    }
    for key in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "PYSPARK_SUBMIT_ARGS"):
        env.pop(key, None)
    (directory / "conf").mkdir(exist_ok=True)
    spark_class, spark_submit = str(home / "bin" / "spark-class"), str(home / "bin" / "spark-submit")
    master_port, connect_port = (
        _free_port(),
        port
        or int(os.environ.get("LAKEHOUSE_SPARK_CONNECT_PORT", "0"))
        or (DEFAULT_CONNECT_PORT if not _port_open(DEFAULT_CONNECT_PORT) else _free_port()),
    )
    master_url = f"spark://127.0.0.1:{master_port}"
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    try:
        master = _spawn(
            "master",
            [
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(master_port),
                "--webui-port",
                str(_free_port()),
            ],
            env,
        )
        worker = _spawn(
            "worker",
            [
                spark_class,
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                "127.0.0.1",
                "--port",
                str(_free_port()),
                "--webui-port",
                str(_free_port()),
                "--cores",
                str(WORKER_CORES),
                "--memory",
                WORKER_MEMORY,
                "--work-dir",
                str(directory / "work"),
                master_url,
            ],
            env,
        )
        _wait_for_port("master", master, master_port, deadline)
        properties = _properties(s3, master_url, connect_port, jars)
        connect = _spawn(
            "connect",
            [
                spark_submit,
                "--properties-file",
                str(properties),
                "--class",
                "org.apache.spark.sql.connect.service.SparkConnectServer",
                "--name",
                "lakehouse Spark Connect",
                "spark-internal",
            ],
            env,
        )
        (directory / "connect.port").write_text(str(connect_port))
        (directory / "master.url").write_text(master_url)
        _wait_for_port("connect", connect, connect_port, deadline)
        time.sleep(1.0)  # a server that lost the port to another one exits: the port is not ours then
        if connect.poll() is not None:
            raise RuntimeError(
                f"the Spark Connect server exited (port {connect_port} taken?); see {directory / 'log'}"
            )
        if worker.poll() is not None:
            raise RuntimeError(f"the Spark worker exited; see {directory / 'log' / 'worker.out'}")
    except BaseException:
        stop()
        raise
    if not quiet:
        print(
            f"Spark cluster up in {time.monotonic() - started:.1f} s: master {master_url}, "
            f"Spark Connect sc://127.0.0.1:{connect_port}"
        )
    return f"sc://127.0.0.1:{connect_port}"


def stop(timeout: float = 30.0) -> bool:
    """Stop the Connect server, the worker (with its executors) and the master by PID; True if any ran."""
    stopped = False
    for name in PROCESSES:
        pid = _pid(name)
        if pid is None:
            continue
        stopped = True
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while _pid(name) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid(name) is not None:
            os.killpg(pid, signal.SIGKILL)
        (state_dir() / f"{name}.pid").unlink(missing_ok=True)
    return stopped


def pids() -> dict[str, int]:
    return {name: pid for name in PROCESSES if (pid := _pid(name)) is not None}


def main(argv: list[str] | None = None) -> int:
    command = (argv or sys.argv[1:] or ["status"])[0]
    if command == "jars":
        install_jars()
    elif command == "start":
        print(f"Spark Connect (Apache Spark, standalone cluster, Delta Lake) at {start(quiet=False)}")
    elif command == "stop":
        print("Spark cluster stopped" if stop() else "Spark cluster was not running")
    elif command == "status":
        running = url()
        print(
            f"Spark cluster running: {pids()}, Spark Connect at {running}"
            if running
            else "Spark cluster not running"
        )
        return 0 if running else 1
    elif command == "url":
        running = url()
        if running is None:
            print("the Spark cluster is not running: run make spark-up", file=sys.stderr)
            return 1
        print(running)
    elif command == "env":
        running = url()
        if running is None:
            print("echo 'the Spark cluster is not running: run make spark-up' >&2")
            return 1
        print(f"export LAKEHOUSE_SPARK_REMOTE={running}")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
