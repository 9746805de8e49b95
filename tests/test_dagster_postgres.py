"""The Dagster instance on PostgreSQL, as on a cluster: Debian's PostgreSQL (infra/local_postgres.py), infra's
PostgreSQL dagster.yaml, the webserver and the daemon as processes of their own, every run in its own process;
driven only through the webserver's GraphQL API.

- a partition-range backfill completes (one run for the range: single-run backfill policy);
- two runs that write one table serialize on its pool, while runs on different tables overlap;
- a run killed mid-way (SIGKILL) is marked failed, and its re-run from failure succeeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from assets import commerce, events
from infra import local_postgres
from infra.local_s3 import _free_port
from lakehouse import storage
from lakehouse.config import LakehouseConfig
from orchestration.factory import dataset_specs, pool_for
from synthetic import read_record
from synthetic.commerce import generate_day as commerce_day
from synthetic.events import generate_day as events_day
from tests.conftest import REPO
from tests.helpers import counts_by_day

ROWS = 300
# Generous waits: on a busy machine (CI, other sessions) one run takes minutes instead of seconds.
pytestmark = pytest.mark.timeout(1800)
BIN = Path(sys.executable).parent
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclasses.dataclass
class Dagster:
    url: str
    location: str
    lake: LakehouseConfig
    logs: Path
    home: Path

    def query(self, text: str, **variables) -> dict:
        body = json.dumps({"query": text, "variables": variables}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.load(response)
        assert "errors" not in answer, answer["errors"]
        return answer["data"]

    def selector(self) -> dict:
        return {
            "repositoryLocationName": self.location,
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
        }

    def launch(self, datasets, tags: dict[str, str]) -> str:
        params = {
            "selector": {**self.selector(), "assetSelection": _keys(datasets)},
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        launched = self.query(LAUNCH_RUN, params=params)["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]["runId"]

    def run(self, run_id: str) -> dict:
        return self.query(RUN, id=run_id)["runOrError"]

    def wait(self, run_id: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while (run := self.run(run_id))["status"] not in FINISHED:
            assert time.monotonic() < deadline, f"run {run_id} still {run['status']}; logs in {self.logs}"
            time.sleep(1)
        return run


LAUNCH_RUN = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message stack }
  ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }"""
RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run { runId status startTime endTime
  tags { key value } stepStats { stepKey status startTime endTime }
  eventConnection(limit: 5000) { events { __typename ... on MessageEvent { message } } } } } }"""


def _keys(datasets) -> list[dict]:
    return [{"path": spec.key.path} for dataset in datasets for spec in dataset_specs(dataset)]


def _messages(run: dict) -> list[str]:
    return [event.get("message") or "" for event in run["eventConnection"]["events"]]


def _step(run: dict, dataset) -> dict:
    return next(s for s in run["stepStats"] if s["stepKey"] == dataset.path.replace("/", "__"))


def _overlap(first: dict, second: dict) -> bool:
    return first["startTime"] < second["endTime"] and second["startTime"] < first["endTime"]


def _blocked(run: dict, dataset) -> bool:
    return f"Step blocked by limit for pool {pool_for(dataset.path)}" in _messages(run)


def _wait_http(dagster: Dagster, processes: list[subprocess.Popen], timeout: float = 420) -> None:
    """Until the webserver answers with the code location loaded and every daemon is healthy."""
    deadline = time.monotonic() + timeout
    while True:
        assert all(p.poll() is None for p in processes), f"the webserver or daemon exited: {dagster.logs}"
        assert time.monotonic() < deadline, f"Dagster did not come up; logs in {dagster.logs}"
        try:
            data = dagster.query("""{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
              locationOrLoadError { __typename } } } } instance { daemonHealth { allDaemonStatuses {
              daemonType healthy required } } } }""")
        except OSError:
            time.sleep(1)
            continue
        entries = data["workspaceOrError"]["locationEntries"]
        daemons = data["instance"]["daemonHealth"]["allDaemonStatuses"]
        if entries and entries[0]["locationOrLoadError"] and entries[0]["loadStatus"] == "LOADED":
            assert entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", entries
            dagster.location = entries[0]["name"]
            if all(d["healthy"] for d in daemons if d["required"]):
                return
        time.sleep(1)


def _wait_port(port: int, process: subprocess.Popen, logs: Path, timeout: float = 420) -> None:
    """Until the code server listens (it loads the definitions first)."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"the code server exited; logs in {logs}"
        assert time.monotonic() < deadline, f"the code server did not come up; logs in {logs}"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(1)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def dagster(s3_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dagster]:
    """PostgreSQL on a free port, then the webserver and the daemon on it with infra/postgres/dagster.yaml."""
    database = Path(tempfile.mkdtemp(prefix="lakehouse-pg-"))  # readable by `postgres` when run as root
    postgres_url = local_postgres.start(database, _free_port())
    home = tmp_path_factory.mktemp("dagster-postgres-home")
    shutil.copy(REPO / "infra" / "postgres" / "dagster.yaml", home / "dagster.yaml")
    root = f"s3://lakehouse/tests/dagster-postgres-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_URL": postgres_url,
        "LAKEHOUSE_ROOT": root,
        "LAKEHOUSE_TOKEN_KEY": uuid.uuid4().hex,
        "PYTHONPATH": str(REPO),
        # a busy machine (CI, other sessions) makes the code server answer slower than Dagster's 60 s
        "DAGSTER_GRPC_TIMEOUT_SECONDS": "300",
    }
    port = _free_port()
    logs = tmp_path_factory.mktemp("dagster-postgres-logs")
    # As on the cluster: the code location is a gRPC server of its own (the chart's user code deployment),
    # which the webserver and the daemon reach through the workspace and which starts every run's process.
    grpc_port = _free_port()
    (home / "workspace.yaml").write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {"grpc_server": {"host": "127.0.0.1", "port": grpc_port, "location_name": "lakehouse"}}
                ]
            }
        )
    )
    workspace = ["-w", str(home / "workspace.yaml")]
    commands = {
        "code-server": [
            str(BIN / "dagster"),
            "api",
            "grpc",
            "-m",
            "orchestration.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(grpc_port),
        ],
        "webserver": [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), *workspace],
        "daemon": [str(BIN / "dagster-daemon"), "run", *workspace],
    }
    processes: list[subprocess.Popen] = []
    lake = dataclasses.replace(LakehouseConfig.from_env(), root=root)
    service = Dagster(f"http://127.0.0.1:{port}", "", lake, logs, home)
    os.environ["DAGSTER_POSTGRES_URL"] = postgres_url  # for this process's own view of the instance
    try:
        for name, argv in commands.items():
            log = (logs / f"{name}.log").open("w")
            processes.append(
                subprocess.Popen(
                    argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
            if name == "code-server":
                _wait_port(grpc_port, processes[0], logs)
        _wait_http(service, processes)
        yield service
    finally:
        for process in reversed(processes):
            _stop(process)
        os.environ.pop("DAGSTER_POSTGRES_URL", None)
        local_postgres.stop(database)
        shutil.rmtree(database, ignore_errors=True)


def _expected(lake: LakehouseConfig, days: list[dt.date]) -> dict[str, dict]:
    """The generator's record of how many lines each events table must hold per day."""
    records = {day: read_record(lake, "events", day)["expected"] for day in days}
    return {layer: {day: e[layer] for day, e in records.items()} for layer in ("raw", "processed")}


def _counts(spark, lake: LakehouseConfig, days: list[dt.date]) -> dict[str, dict]:
    where = f"dt between '{days[0].isoformat()}' and '{days[-1].isoformat()}'"
    return {
        d.layer: counts_by_day(spark, lake.table_uri(*d.path.split("/")), where)
        for d in (events.RAW, events.PROCESSED)
    }


def test_a_partition_range_backfill_completes(dagster, spark):
    days = [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
    for day in days:
        events_day(day, ROWS).write(dagster.lake, "events")
    selection = [
        {
            "assetKey": key,
            "partitions": {"range": {"start": days[0].isoformat(), "end": days[-1].isoformat()}},
        }
        for key in _keys([events.RAW, events.PROCESSED])
    ]
    launched = dagster.query(
        """mutation($params: LaunchBackfillParams!) {
      launchPartitionBackfill(backfillParams: $params) {
        __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
        params={"partitionsByAssets": selection, "title": "two days"},
    )
    launched = launched["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    deadline = time.monotonic() + 600
    while True:
        backfill = dagster.query(
            """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
          ... on PartitionBackfill { status runs { runId status tags { key value } } } } }""",
            id=launched["backfillId"],
        )["partitionBackfillOrError"]
        if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
            break
        assert time.monotonic() < deadline, f"backfill still {backfill}; logs in {dagster.logs}"
        time.sleep(2)
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    [run] = backfill["runs"]  # the single-run backfill policy: the whole range in one run
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert run["status"] == "SUCCESS"
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        "2024-01-02",
        "2024-01-03",
    )
    assert _counts(spark, dagster.lake, days) == _expected(dagster.lake, days)


@contextlib.contextmanager
def _writer_on(dagster: Dagster, dataset) -> Iterator[None]:
    """Hold the table's pool slot as a run writing it would (the instance's own concurrency API): runs that
    reach a step writing it wait, so that they are all in progress at once whatever their start-up times."""
    pool = pool_for(dataset.path)
    with dg.DagsterInstance.from_config(str(dagster.home)) as instance:
        log_storage = instance.event_log_storage
        if pool not in log_storage.get_concurrency_keys():  # not yet claimed by a run (a second insert fails)
            log_storage.initialize_concurrency_limit_to_default(pool)
        assert log_storage.get_concurrency_info(pool).slot_count == 1  # infra/postgres/dagster.yaml's default
        holder = f"writer-{uuid.uuid4().hex}"
        assert log_storage.claim_concurrency_slot(pool, holder, "write").is_claimed
        try:
            yield
        finally:
            log_storage.free_concurrency_slot_for_step(holder, "write")


def _wait_blocked(dagster: Dagster, runs: list[str], dataset, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not all(_blocked(dagster.run(run_id), dataset) for run_id in runs):
        assert time.monotonic() < deadline, f"no wait for {pool_for(dataset.path)}; logs in {dagster.logs}"
        time.sleep(1)


def _raw_and_processed(dagster: Dagster, day: dt.date) -> str:
    return dagster.launch([events.RAW, events.PROCESSED], {"dagster/partition": day.isoformat()})


def test_runs_on_one_table_serialize_and_on_different_tables_overlap(dagster):
    same, day = [dt.date(2024, 1, 4), dt.date(2024, 1, 5)], dt.date(2024, 1, 4)
    for each in same:
        events_day(each, ROWS).write(dagster.lake, "events")
    commerce_day(day, ROWS).write(dagster.lake, "commerce")

    with _writer_on(dagster, events.PROCESSED):
        first_id = _raw_and_processed(dagster, same[0])
        _wait_blocked(dagster, [first_id], events.PROCESSED)
        orders = dagster.launch([commerce.RAW_ORDERS], {"dagster/partition": day.isoformat()})
        on_commerce = dagster.wait(orders)
        # another table was written while the events run was in progress: runs on different tables overlap
        assert on_commerce["status"] == "SUCCESS" and not _blocked(on_commerce, commerce.RAW_ORDERS)
        waiting = dagster.run(first_id)
        assert waiting["status"] == "STARTED" and waiting["startTime"] < on_commerce["startTime"]
        second_id = _raw_and_processed(dagster, same[1])
        _wait_blocked(dagster, [second_id], events.PROCESSED)  # two runs on one table in progress at once
    first, second = dagster.wait(first_id), dagster.wait(second_id)
    assert first["status"] == second["status"] == "SUCCESS"
    assert _overlap(first, second)
    # ... and they wrote it one after the other (raw/events/events too)
    for dataset in (events.RAW, events.PROCESSED):
        assert not _overlap(_step(first, dataset), _step(second, dataset))


def test_a_run_killed_mid_way_is_marked_failed_and_its_rerun_succeeds(dagster, spark):
    days = [dt.date(2024, 1, 7), dt.date(2024, 1, 8)]
    for day in days:
        events_day(day, ROWS).write(dagster.lake, "events")
    run_id = dagster.launch(
        [events.RAW, events.PROCESSED],
        {
            "dagster/asset_partition_range_start": days[0].isoformat(),
            "dagster/asset_partition_range_end": days[-1].isoformat(),
        },
    )
    staging = f"{dagster.lake.root}/_staging/events/processed/events"
    deadline, polls = time.monotonic() + 600, 0
    while not storage.list_tree(dagster.lake, staging):  # staged only while the processed step runs
        polls += 1
        if polls % 40 == 0:
            assert dagster.run(run_id)["status"] not in FINISHED, "the run ended before the step staged"
        assert time.monotonic() < deadline, "the run never reached the processed step"
        time.sleep(0.05)
    started = next(
        message
        for message in _messages(dagster.run(run_id))
        if message.startswith("Started process for run (pid: ")
    )
    os.kill(int(started.split("pid: ")[1].split(")")[0]), signal.SIGKILL)

    killed = dagster.wait(run_id, timeout=300)
    assert killed["status"] == "FAILURE"
    assert any("unexpectedly" in m or "signal 9" in m or "SIGKILL" in m for m in _messages(killed)), (
        _messages(killed)[-5:]
    )
    rerun = dagster.query(
        """mutation($params: ReexecutionParams!) { launchRunReexecution(reexecutionParams:
      $params) { __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
        params={"parentRunId": run_id, "strategy": "FROM_FAILURE"},
    )["launchRunReexecution"]
    assert rerun["__typename"] == "LaunchRunSuccess", rerun
    assert dagster.wait(rerun["run"]["runId"])["status"] == "SUCCESS"
    assert _counts(spark, dagster.lake, days) == _expected(dagster.lake, days)
    assert storage.list_tree(dagster.lake, staging) == {}
