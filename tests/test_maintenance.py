"""The maintenance job compacts exactly the partitions that gathered small files and checkpoints the logs
that grew, on the lake's tables and the platform's own; no row changes, a dry run changes nothing, and
every action is audited."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from lakehouse import audit
from lakehouse.maintenance import CHECKPOINT_EVERY, MIN_SMALL_FILES, TableMaintenance, lake_tables, maintain

BUSY, QUIET = "2024-01-01", "2024-01-02"


def _small_table(lake) -> str:
    """processed/qa/small: MIN_SMALL_FILES + 2 one-row appends to BUSY, two to QUIET."""
    uri = f"{lake.root}/processed/qa/small"
    days = [BUSY] * (MIN_SMALL_FILES + 2) + [QUIET] * 2
    for i, day in enumerate(days):
        rows = pa.table({"dt": [dt.date.fromisoformat(day)], "id": [i], "value": [f"v{i}"]})
        write_deltalake(uri, rows, mode="append", partition_by=["dt"], storage_options=lake.storage_options)
    return uri


def _files_by_day(lake, uri: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in TableMaintenance(uri, lake.storage_options).files():
        found.setdefault(f.partition, set()).add(f.path)
    return found


def _rows(lake, uri: str) -> list[dict]:
    return sorted(
        DeltaTable(uri, storage_options=lake.storage_options).to_pyarrow_table().to_pylist(),
        key=lambda r: r["id"],
    )


def test_small_files_are_compacted_per_partition_and_logs_checkpointed(lake):
    uri = _small_table(lake)
    for i in range(CHECKPOINT_EVERY):  # the audit table: one commit (and one small file) per record
        audit.write(lake, f"run-{i}", [audit.Record("retention", "delete", "processed.qa.small", rows=i)])
    assert set(lake_tables(lake)) == {"processed/qa/small", "audit/actions"}
    table = TableMaintenance(uri, lake.storage_options)
    rows, files, version = _rows(lake, uri), _files_by_day(lake, uri), table.version()
    assert len(files[BUSY]) == MIN_SMALL_FILES + 2 and len(files[QUIET]) == 2

    planned = maintain(lake, "dry-run", dry_run=True)
    assert {(r.target, r.step, tuple(r.partitions)) for r in planned} == {
        ("processed.qa.small", "optimize", (BUSY,)),
        ("audit.actions", "optimize", ()),
        ("audit.actions", "checkpoint", ()),
    }
    assert all(r.dry_run for r in planned)
    assert table.version() == version and _files_by_day(lake, uri) == files  # nothing changed

    done = maintain(lake, "maintenance-run")
    assert {(r.target, r.step) for r in done} == {(r.target, r.step) for r in planned}
    after = _files_by_day(lake, uri)
    assert len(after[BUSY]) == 1 and after[QUIET] == files[QUIET]  # the quiet day's files are untouched
    assert _rows(lake, uri) == rows and table.version() == version + 1
    audit_table = TableMaintenance(audit.uri(lake), lake.storage_options)
    assert audit_table.last_checkpoint(lake) is not None
    assert len(audit_table.files()) < CHECKPOINT_EVERY
    trail = [r for r in audit.read(lake) if r["action"] == "maintenance"]
    assert {(r["target"], r["step"], r["dry_run"]) for r in trail} == {
        *((r.target, r.step, True) for r in planned),
        *((r.target, r.step, False) for r in done),
    }

    assert [r for r in maintain(lake, "again") if r.step == "optimize"] == []  # nothing left to compact


def test_the_maintenance_job_runs_in_dagster_and_reports_what_it_did(lake, instance):
    from orchestration.definitions import defs

    uri = _small_table(lake)
    result = defs.resolve_job_def("maintenance_job").execute_in_process(instance=instance)
    assert result.success
    output = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"][0]
    shown = {k: v.value for k, v in output.event_specific_data.metadata.items()}
    assert shown["tables_compacted"] == ["processed.qa.small"]
    assert shown["small_files_compacted"] == MIN_SMALL_FILES + 2 and shown["partitions_compacted"] == 1
    assert len(_files_by_day(lake, uri)[BUSY]) == 1
    assert {r["run_id"] for r in audit.read(lake) if r["action"] == "maintenance"} == {result.run_id}
    schedule = defs.resolve_schedule_def("daily_maintenance")
    assert schedule.cron_schedule == "0 4 * * *" and schedule.job_name == "maintenance_job"
