"""Rollback of a two-day events backfill through its Dagster job: every layer's two days restored exactly,
other days' files untouched, a created day emptied, a dry run changing nothing, a refusal after a vacuum."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import dagster as dg
import pytest
from deltalake import DeltaTable

from assets import events as a
from lakehouse import audit, catalog, maintenance, rollback
from lakehouse.lake import Lake
from orchestration.factory import domain_assets
from synthetic.events import generate_day
from tests.helpers import run_assets

D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)
ROWS = 120
NOTHING_REFUSED = "quarantine/events/landing_events"  # landing files all readable: the backfill writes no row


def run_rollback_job(instance, **config) -> dg.ExecuteInProcessResult:
    from orchestration.definitions import defs

    return defs.resolve_job_def("rollback_job").execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={"ops": {"rollback_partitions": {"config": config}}},
    )


def _tables(lake) -> list[str]:
    """Every table of the events domain: raw, processed, quarantine, quality metrics, curated."""
    return [path for path in maintenance.lake_tables(lake) if path.split("/")[1:2] == ["events"]]


def _content(spark, lake, path: str, day: dt.date) -> list[str]:
    rows = spark.read.format("delta").load(f"{lake.root}/{path}").where(f"dt = DATE'{day}'").collect()
    return sorted(json.dumps(r.asDict(recursive=True), default=str, sort_keys=True) for r in rows)


def _files(lake, path: str, day: dt.date) -> set[str]:
    table = maintenance.TableMaintenance(f"{lake.root}/{path}", lake.storage_options)
    return {p for p, partition in table.active_files().items() if partition == day.isoformat()}


def _versions(lake, tables: list[str]) -> dict[str, int]:
    return {p: DeltaTable(f"{lake.root}/{p}", storage_options=lake.storage_options).version() for p in tables}


@pytest.fixture()
def backfilled(spark, lake, instance):
    """D1 and D2 built by a first run; then a two-day backfill over D2 (new landing data) and D3 (new day).
    Returns the backfill's run id, the tables, and each table's content and files before the backfill."""
    assets = domain_assets(a.DATASETS)
    for day in (D1, D2):
        generate_day(day, ROWS).write(lake, "events")
    assert run_assets(instance, assets, D1, D2).success
    tables = _tables(lake)
    before = {p: {day: _content(spark, lake, p, day) for day in (D1, D2)} for p in tables}
    files = {p: {day: _files(lake, p, day) for day in (D1, D2)} for p in tables}
    generate_day(D2, ROWS + 40, seed=11).write(lake, "events")
    generate_day(D3, ROWS).write(lake, "events")
    backfill = run_assets(instance, assets, D2, D3)
    assert backfill.success
    for (
        path
    ) in tables:  # the backfill changed D2 in every table with rows (landing refusals: none), created D3
        if path != NOTHING_REFUSED:
            assert _content(spark, lake, path, D2) != before[path][D2], path
            assert _content(spark, lake, path, D3), path
    return backfill.run_id, tables, before, files


def test_rolling_back_a_two_day_backfill_restores_both_days_in_every_layer(spark, lake, instance, backfilled):
    run_id, tables, before, files = backfilled
    versions = _versions(lake, tables)

    dry = run_rollback_job(instance, run_id=run_id, dry_run=True)
    assert dry.success
    assert _versions(lake, tables) == versions  # a dry run writes nothing
    output = [e for e in dry.all_node_events if e.event_type_value == "STEP_OUTPUT"][0]
    planned = output.event_specific_data.metadata
    written = {catalog.dataset_id(p) for p in tables if p != NOTHING_REFUSED}
    assert set(planned["tables"].value) == written

    result = run_rollback_job(instance, run_id=run_id)
    assert result.success
    for path in tables:
        assert _content(spark, lake, path, D2) == before[path][D2], path  # exactly as before the backfill
        assert _content(spark, lake, path, D3) == [], path  # created by the backfill: emptied
        assert _files(lake, path, D1) == files[path][D1], path  # the other day's files are the same files
    records = audit.read(lake, result.run_id)
    restored = {r["target"]: r for r in records if r["step"] == "restore"}
    assert set(restored) == written
    assert all(
        r["verified"] and r["partitions"] == [D2.isoformat(), D3.isoformat()] for r in restored.values()
    )
    emptied = [r for r in records if r["step"] == "emptied"]
    assert {r["target"] for r in emptied} == written and all(
        r["partitions"] == ["2024-01-03"] for r in emptied
    )
    processed = restored["processed.events.events"]
    assert f"from version {versions['processed/events/events']}" in processed["detail"]
    # the catalog follows: row count and version of the restored table, and the rollback's lineage
    entry = catalog.get_entry(lake, "processed.events.events")
    table = maintenance.TableMaintenance(entry["location"], lake.storage_options)
    assert (entry["rowCount"], entry["deltaVersion"]) == (table.stats().row_count, table.version())
    assert entry["lastRunId"] == result.run_id
    lineage = [r for r in catalog.materializations(lake) if r["run_id"] == result.run_id]
    assert {r["dataset_id"] for r in lineage} >= {"raw.events.events", "processed.events.events"}
    upstream = json.loads(
        next(r for r in lineage if r["dataset_id"] == "processed.events.events")["upstream_json"]
    )
    assert [u["dataset_id"] for u in upstream] == ["raw.events.events"]


def test_a_rollback_refuses_later_writes_and_after_a_vacuum_writes_nothing(spark, lake, instance, backfilled):
    run_id, tables, before, _ = backfilled
    first = run_rollback_job(instance, run_id=run_id)
    assert first.success
    # the rollback's own commits are later writes to the backfill's partitions: a second one is refused
    with pytest.raises(rollback.RollbackError, match="later commits rewrote partitions"):
        rollback.execute(Lake(), rollback.plan_run(Lake(), run_id, {}), "test", f"run {run_id}")
    uri = f"{lake.root}/processed/events/events"
    removed = maintenance.TableMaintenance(uri, lake.storage_options).vacuum(retention_hours=0, dry_run=False)
    assert removed
    versions = _versions(lake, tables)
    refused = run_rollback_job(instance, run_id=run_id, allow_later_writes=True)
    assert not refused.success
    error = refused.get_step_failure_events()[0].event_specific_data.error.to_string()
    assert "removed by a vacuum" in error and "processed.events.events version" in error
    assert "files missing" in error and "nothing written" in error
    assert _versions(lake, tables) == versions  # refused before writing anything
    assert [r["step"] for r in audit.read(lake, refused.run_id)] == ["refused"]


def test_a_partition_is_restored_to_a_version_with_its_downstream(spark, lake, instance, backfilled, capsys):
    from orchestration.cli import main

    run_id, tables, before, files = backfilled
    written = {
        r["dataset_id"]: r["dataset_version"] for r in catalog.materializations(lake) if r["run_id"] == run_id
    }
    version = written["raw.events.events"] - 1
    command = ["rollback", "raw.events.events", "--partition", D2.isoformat(), "--to-version", str(version)]
    versions = _versions(lake, tables)
    assert main([*command, "--dry-run"]) == 0
    assert "dry run: nothing written" in capsys.readouterr().out
    assert _versions(lake, tables) == versions
    assert main(command) == 0
    shown = capsys.readouterr().out
    for path in tables:  # raw at the version, and every table downstream as it was before the backfill
        assert _content(spark, lake, path, D2) == before[path][D2], path
        assert _content(spark, lake, path, D3) or path == NOTHING_REFUSED, path  # another partition: kept
        assert path == NOTHING_REFUSED or catalog.dataset_id(path) in shown, path


def test_the_brake_refuses_removing_far_more_than_the_undone_write_left():
    target = rollback.Target(
        dataset_id="processed.demo.t",
        location="unused",
        partitions=("2024-01-02",),
        current_version=5,
        restore_version=3,
        undone=4,
        later=(5,),
        rows_before={"2024-01-02": 900},
        rows_after={"2024-01-02": 100},
        rows_written=300,
        missing_files=0,
        producer=None,
    )
    refused = rollback.refusals([target], allow_later_writes=True)
    assert len(refused) == 1 and "processed.demo.t: 900 rows, 300 written" in refused[0]
    assert rollback.refusals([target], allow_later_writes=True, confirm=True) == []
    within = dataclasses.replace(target, rows_before={"2024-01-02": 700})  # 700 <= 2 * 300 + 100
    assert rollback.refusals([within], allow_later_writes=True) == []
