"""One S3 server and one engine per test session; every test gets its own lake root under the bucket."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from lakehouse.config import LakehouseConfig

REPO = Path(__file__).resolve().parents[1]
# The Spark cluster's jars are cached in the user's state dir (`make spark-jars`), not the session's.
os.environ.setdefault(
    "LAKEHOUSE_SPARK_JARS_DIR",
    str(Path(os.environ.get("LAKEHOUSE_STATE_DIR", REPO / ".lakehouse")).resolve() / "spark" / "jars"),
)
# Collected timestamps come back naive in the process's local zone, on both engines.
os.environ["TZ"] = "UTC"
time.tzset()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A SeaweedFS of the session's own (its own state dir and port), stopped at the end."""
    state = tmp_path_factory.mktemp("lakehouse-state")
    previous = os.environ.get("LAKEHOUSE_STATE_DIR")
    os.environ["LAKEHOUSE_STATE_DIR"] = str(state)
    from infra import local_s3

    server = local_s3.start(port=local_s3._free_port())
    os.environ.update(server.environment())
    os.environ["DAGSTER_HOME"] = str(state / "dagster")
    yield server
    local_s3.stop()
    if previous is None:
        os.environ.pop("LAKEHOUSE_STATE_DIR", None)
    else:
        os.environ["LAKEHOUSE_STATE_DIR"] = previous


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's redis-server (`make test` installs it: infra/install_redis.sh) on a free port, nothing
    persisted, stopped at the end; yields its `host:port`."""
    import redis

    from infra.local_s3 import _free_port

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make redis` (infra/install_redis.sh)")
    port = _free_port()
    server = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path_factory.mktemp("redis")),
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    client.close()
    server.terminate()
    server.wait(timeout=15)


@pytest.fixture(scope="session")
def spark(s3_server):
    """The in-process Sail engine, started after the S3 settings are in the environment."""
    from lakehouse.engine import spark_session

    session = spark_session(LakehouseConfig.from_env())
    yield session
    session.stop()


@pytest.fixture()
def lake(s3_server, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> LakehouseConfig:
    """A fresh lake root on the session's S3 for this test."""
    name = request.node.name.replace("[", "-").replace("]", "")[:40]
    monkeypatch.setenv("LAKEHOUSE_ROOT", f"s3://lakehouse/tests/{name}-{uuid.uuid4().hex[:8]}")
    return LakehouseConfig.from_env()


@pytest.fixture(scope="session")
def jvm_spark():
    """Apache Spark's own Spark Connect server (JVM, local[2]) on a free port: the portability check.

    Started as pyspark's `remote("local[2]")` does, but on port 0 and with `create()`, so that it
    and the Sail session are independent in one process (see the closing note of the foundation issue).
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = (
        SparkConf()
        .setMaster("local[2]")
        .setAll(
            [
                ("spark.plugins", "org.apache.spark.sql.connect.SparkConnectPlugin"),
                ("spark.connect.grpc.binding.port", "0"),
                ("spark.sql.session.timeZone", "UTC"),
                ("spark.sql.shuffle.partitions", "2"),
                ("spark.ui.enabled", "false"),
            ]
        )
    )
    hidden = {k: os.environ.pop(k) for k in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE") if k in os.environ}
    try:
        classic = SparkSession(SparkContext.getOrCreate(conf))
    finally:
        os.environ.update(hidden)
    service = getattr(classic._jvm, "org.apache.spark.sql.connect.service.SparkConnectService$")
    port = getattr(service, "MODULE$").localPort()
    session = SparkSession.builder.remote(f"sc://localhost:{port}").create()
    gateway = SparkContext._gateway
    yield session
    session.stop()
    classic.stop()
    gateway.shutdown()
    gateway.proc.stdin.close()
    try:
        gateway.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        gateway.proc.kill()
    SparkContext._gateway = SparkContext._jvm = None


@pytest.fixture(scope="session")
def spark_cluster_url(s3_server) -> Iterator[str]:
    """One local Apache Spark standalone cluster (master, worker, Connect server; Delta Lake, S3A on the
    session's S3) per test session, in the session's state dir; stopped at the end."""
    from infra import spark_connect

    url = spark_connect.start(port=spark_connect._free_port())
    yield url
    spark_connect.stop()


@pytest.fixture(scope="session")
def spark_cluster(spark_cluster_url):
    """A Spark Connect session on that cluster."""
    import dataclasses

    from lakehouse.engine import spark_session

    session = spark_session(dataclasses.replace(LakehouseConfig.from_env(), spark_remote=spark_cluster_url))
    yield session
    session.stop()


@pytest.fixture()
def on_spark_cluster(spark_cluster, spark_cluster_url, monkeypatch: pytest.MonkeyPatch):
    """This test's configuration points at the Spark cluster (LAKEHOUSE_SPARK_REMOTE), as a user's would."""
    monkeypatch.setenv("LAKEHOUSE_SPARK_REMOTE", spark_cluster_url)
    return spark_cluster


@pytest.fixture(scope="session", params=["sail", pytest.param("spark-jvm", marks=pytest.mark.jvm)])
def engine(request: pytest.FixtureRequest):
    """The engines pure transforms must agree on: Sail, and Apache Spark's own Spark Connect server."""
    return request.getfixturevalue("spark" if request.param == "sail" else "jvm_spark")


@pytest.fixture()
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A real Dagster instance (SQLite storage) with the project's dagster.yaml."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "infra" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance
