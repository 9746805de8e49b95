"""One S3 server and one engine per test session; every test gets its own lake root under the bucket."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import dagster as dg

from lakehouse.config import LakehouseConfig

REPO = Path(__file__).resolve().parents[1]


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


@pytest.fixture(scope="session", params=["sail"])
def engine(request: pytest.FixtureRequest):
    """The engines pure transforms must agree on."""
    return request.getfixturevalue("spark")


@pytest.fixture()
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A real Dagster instance (SQLite storage) with the project's dagster.yaml."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "infra" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance
