"""Runs as operators really start them: two at once on one table, one killed with SIGKILL mid-write and
started again, a backfill range; and the reconciliation check failing when rows go missing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import dagster as dg
from deltalake import DeltaTable

from assets import events
from lakehouse import storage
from lakehouse.config import LakehouseConfig
from orchestration.factory import domain_assets
from quality import metrics
from synthetic import read_record
from synthetic.events import generate_day
from tests.conftest import REPO
from tests.helpers import counts_by_day, run_assets

DAYS = [dt.date(2024, 1, 5), dt.date(2024, 1, 6)]
ROWS = 400
RAW_AND_PROCESSED = domain_assets([events.RAW, events.PROCESSED])

# One run of the raw and processed events steps for a partition range, in a process of its own.
RUN_SCRIPT = """
import datetime as dt, sys
import dagster as dg
from assets import events
from orchestration.factory import domain_assets
from tests.helpers import run_assets
first, last, selection = sys.argv[1], sys.argv[2], sys.argv[3]
chosen = events.DATASETS if selection == "domain" else [events.RAW, events.PROCESSED]
assets = domain_assets(chosen)
with dg.DagsterInstance.get() as instance:
    result = run_assets(instance, assets, dt.date.fromisoformat(first), dt.date.fromisoformat(last))
print("success" if result.success else "failure")
"""


def _run_process(
    dagster_home, first: dt.date, last: dt.date, selection: str = "raw+processed"
) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", RUN_SCRIPT, first.isoformat(), last.isoformat(), selection],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _dagster_home(tmp_path):
    home = tmp_path / f"home-{uuid.uuid4().hex[:6]}"
    home.mkdir()
    shutil.copy(REPO / "infra" / "dagster.yaml", home / "dagster.yaml")
    # Create the instance's SQLite storage once: two processes creating it at the same moment race in
    # Dagster's own schema migration (alembic_version UNIQUE), which is not what these tests are about.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs_count()
    return home


def _tables(lake: LakehouseConfig) -> list[str]:
    paths = [p for d in events.DATASETS for p in (d.path, *([d.quarantine_path] if d.has_quarantine else []))]
    return [*paths, *(metrics.metrics_path(d) for d in events.DATASETS if d.layer != "raw")]


def _uri(lake: LakehouseConfig, path: str) -> str:
    return lake.table_uri(*path.split("/"))


def test_two_runs_on_different_partitions_of_one_table_both_land(spark, lake, tmp_path):
    for day in DAYS:
        generate_day(day, ROWS).write(lake, "events")
    home = _dagster_home(tmp_path)
    runs = [_run_process(home, day, day) for day in DAYS]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    outcomes = [output.strip().splitlines()[-1] if output.strip() else "" for output in outputs]
    assert outcomes == ["success", "success"], "\n".join(o[-3000:] for o in outputs)
    expected = {day: read_record(lake, "events", day)["expected"] for day in DAYS}
    assert counts_by_day(spark, _uri(lake, events.RAW.path)) == {day: e["raw"] for day, e in expected.items()}
    assert counts_by_day(spark, _uri(lake, events.PROCESSED.path)) == {
        day: e["processed"] for day, e in expected.items()
    }


def _curated_rows(spark, lake: LakehouseConfig) -> dict[str, list]:
    return {
        d.name: sorted(map(tuple, spark.read.format("delta").load(_uri(lake, d.path)).collect()), key=repr)
        for d in events.DATASETS
        if d.layer == "curated"
    }


def _counts(spark, lake: LakehouseConfig) -> dict[str, dict]:
    return {path: counts_by_day(spark, _uri(lake, path)) for path in _tables(lake)}


def test_a_run_killed_mid_write_then_rerun_equals_a_clean_run(spark, lake, tmp_path, monkeypatch, instance):
    for day in DAYS:
        generate_day(day, ROWS).write(lake, "events")
    killed = _run_process(_dagster_home(tmp_path), DAYS[0], DAYS[-1], "domain")
    processed_staging = f"{lake.root}/_staging/events/processed/events"
    deadline = time.monotonic() + 300
    while not storage.list_tree(lake, processed_staging) and killed.poll() is None:
        assert time.monotonic() < deadline, "the run never reached the processed step"
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL
    assert storage.list_tree(lake, processed_staging)  # what a killed run leaves: staged personal data

    assert run_assets(instance, domain_assets(events.DATASETS), DAYS[0], DAYS[-1]).success
    assert storage.list_tree(lake, f"{lake.root}/_staging") == {}
    rerun_counts, rerun_curated = _counts(spark, lake), _curated_rows(spark, lake)

    monkeypatch.setenv("LAKEHOUSE_ROOT", f"{lake.root}-clean")
    clean = LakehouseConfig.from_env()
    for day in DAYS:
        generate_day(day, ROWS).write(clean, "events")
    assert run_assets(instance, domain_assets(events.DATASETS), DAYS[0], DAYS[-1]).success
    assert rerun_counts == _counts(spark, clean)
    assert rerun_curated == _curated_rows(spark, clean)
    assert all(rows for rows in rerun_curated.values())
    # the range was one run, and it committed each table once: created (version 0), written (version 1;
    # an empty write to a new table commits nothing)
    versions = {
        path: DeltaTable(_uri(clean, path), storage_options=clean.storage_options).version()
        for path in _tables(clean)
    }
    assert versions == {path: 1 if any(rerun_counts[path].values()) else 0 for path in _tables(clean)}
    assert sum(versions.values()) >= len(versions) - 1


def test_rows_reconcile_fails_when_rows_go_missing(spark, lake, instance):
    """A transform that loses rows without quarantining them: input no longer equals accepted + quarantined
    + duplicates, the blocking check fails and names the partition."""
    day = DAYS[0]
    generate_day(day, ROWS).write(lake, "events")
    losing = dataclasses.replace(
        events.PROCESSED, transform=lambda raw: events.PROCESSED.transform(raw).where("line_number % 10 <> 0")
    )
    result = run_assets(instance, domain_assets([events.RAW, losing]), day, raise_on_error=False)
    assert not result.success
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "rows_reconcile")
    assert not check.passed
    partition = check.metadata["partitions"].value[day.isoformat()]
    expected = read_record(lake, "events", day)["expected"]
    assert partition["input"] == expected["raw"]
    assert partition["accepted"] + partition["quarantined"] + partition["duplicates"] < partition["input"]
    assert check.metadata["observed_value"].value == "0/1 partitions reconcile"
    assert dg.DagsterEventType.STEP_FAILURE in {e.event_type for e in result.all_events}
