"""Retention on a constructed lake: two catalogued tables and a landing source with dated partitions."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lakehouse import audit, catalog, landing, retention, storage
from lakehouse.delta import write_partitions
from lakehouse.maintenance import TableMaintenance
from lakehouse.synthetic import write_landing

DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(5)]
REFERENCE = DAYS[-1]  # 2024-01-05
ROWS_PER_DAY = {day: 10 + i for i, day in enumerate(DAYS)}


def _entry(path: str, location: str, retention_days: int) -> catalog.Materialization:
    entry = catalog.Entry(path=path, owner="team@example.com", description=path, location=location,
                          fields=[catalog.Field("dt", "date"), catalog.Field("n", "bigint")],
                          retention_days=retention_days)
    return catalog.Materialization(run_id="setup", entry=entry, partitions=[d.isoformat() for d in DAYS],
                                   rows_written=0, code_version="test")


@pytest.fixture()
def constructed(spark, lake):
    """`short` keeps 3 days, `long` 365; the landing source keeps 2 days."""
    rows = [(day, n) for day, count in ROWS_PER_DAY.items() for n in range(count)]
    frame = spark.createDataFrame(rows, "dt date, n bigint")
    uris = {name: lake.table_uri("processed", "demo", name) for name in ("short", "long")}
    for name, uri in uris.items():
        for day in DAYS:  # one commit per day: several files, and a history to time-travel
            write_partitions(frame.where(f"dt = DATE'{day}'"), uri, [day], lake.storage_options)
    for day in DAYS:
        write_landing(lake, "demo", day, {"clicks": [[f'{{"n": {n}}}' for n in range(3)]]}, record={})
    catalog.record(lake, [_entry("processed/demo/short", uris["short"], 3),
                          _entry("processed/demo/long", uris["long"], 365),
                          _entry("landing/demo/clicks", lake.landing_uri("demo"), 2)])
    return uris


def _files_by_day(lake, uri: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path, day in TableMaintenance(uri, lake.storage_options).active_files().items():
        found.setdefault(day, []).append(path)
    return found


def _sizes(lake, uri: str, paths: list[str]) -> int:
    actions = pa.table(DeltaTable(uri, storage_options=lake.storage_options).get_add_actions(flatten=True))
    size = dict(zip(actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist()))
    return sum(size[p] for p in paths)


def _landing_days(lake) -> list[str]:
    return sorted({day.isoformat() for day, _ in landing.source_files(lake, "demo", "clicks").values()})


def test_the_dry_run_reports_exactly_what_would_go_and_changes_nothing(lake, constructed):
    short = constructed["short"]
    versions = {name: DeltaTable(uri, storage_options=lake.storage_options).version()
                for name, uri in constructed.items()}
    expired_files = [p for day, paths in _files_by_day(lake, short).items() if day < "2024-01-03" for p in paths]

    removals = retention.apply(lake, REFERENCE, "dry-1", dry_run=True)

    found = {(r.target, r.step): r for r in removals}
    delete = found[("processed.demo.short", "delete")]
    assert delete.partitions == ("2024-01-01", "2024-01-02")
    assert delete.rows == ROWS_PER_DAY[DAYS[0]] + ROWS_PER_DAY[DAYS[1]] == 21
    assert delete.files == len(expired_files) == 2
    assert delete.bytes == _sizes(lake, short, expired_files) > 0
    assert found[("processed.demo.long", "delete")].rows == 0
    landing = found[("landing.demo.clicks", "landing")]
    assert landing.partitions == ("2024-01-01", "2024-01-02", "2024-01-03") and landing.files == 3
    # nothing changed
    assert {name: DeltaTable(uri, storage_options=lake.storage_options).version()
            for name, uri in constructed.items()} == versions
    assert _landing_days(lake) == [d.isoformat() for d in DAYS]
    records = audit.read(lake, "dry-1")
    assert {(r["target"], r["step"], r["rows"], r["dry_run"]) for r in records} == {
        ("processed.demo.short", "delete", 21, True), ("landing.demo.clicks", "landing", 0, True),
        ("*", "summary", 21, True)}


def test_expired_partitions_go_and_their_files_are_vacuumed_only_after_the_safety_window(lake, constructed):
    short, long_ = constructed["short"], constructed["long"]
    before = _files_by_day(lake, short)
    long_files = _files_by_day(lake, long_)
    expired = [f"{short}/{p}" for day in ("2024-01-01", "2024-01-02") for p in before[day]]

    retention.apply(lake, REFERENCE, "ret-1")

    after = _files_by_day(lake, short)
    assert after == {day: paths for day, paths in before.items() if day >= "2024-01-03"}  # in-window files untouched
    assert _files_by_day(lake, long_) == long_files
    assert _landing_days(lake) == ["2024-01-04", "2024-01-05"]
    stored = storage.list_tree(lake, short)
    assert all(uri in stored for uri in expired)  # tombstoned, still within the safety window
    assert catalog.get_entry(lake, "processed.demo.short")["rowCount"] == sum(ROWS_PER_DAY.values()) - 21

    second = retention.apply(lake, REFERENCE, "ret-2", safety_window_hours=0)

    stored = storage.list_tree(lake, short)
    assert not any(uri in stored for uri in expired)
    assert all(f"{short}/{p}" in stored for paths in after.values() for p in paths)
    vacuumed = {r.target: r for r in second if r.step == "vacuum"}
    assert vacuumed["processed.demo.short"].files == 2
    # the long table's daily commits left no tombstones: nothing of it is vacuumed
    assert vacuumed["processed.demo.long"].files == 0
    steps = {(r["run_id"], r["target"], r["step"]): r for r in audit.read(lake)}
    assert steps[("ret-1", "processed.demo.short", "delete")]["partitions"] == ["2024-01-01", "2024-01-02"]
    assert steps[("ret-1", "processed.demo.short", "delete")]["dry_run"] is False
    assert steps[("ret-2", "processed.demo.short", "vacuum")]["files"] == 2
    assert steps[("ret-2", "processed.demo.short", "vacuum")]["bytes"] > 0
    assert ("ret-2", "processed.demo.short", "delete") not in steps  # nothing left to delete
    third = retention.apply(lake, REFERENCE, "ret-3", safety_window_hours=0)
    assert sum(r.files for r in third) == 0  # the tombstones' files are gone already: nothing is counted twice


def test_retention_job_in_dagster_dry_run_reports_and_keeps_everything(lake, constructed, instance):
    from orchestration.definitions import defs

    version = DeltaTable(constructed["short"], storage_options=lake.storage_options).version()
    result = defs.resolve_job_def("retention_job").execute_in_process(instance=instance, run_config={
        "ops": {"apply_retention": {"config": {"dry_run": True, "reference_date": REFERENCE.isoformat()}}}})
    assert result.success
    output = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"][0]
    shown = {k: v.value for k, v in output.event_specific_data.metadata.items()}
    assert shown["rows"] == 21 and shown["dry_run"] is True
    assert shown["targets"] == ["landing.demo.clicks", "processed.demo.short"]
    assert DeltaTable(constructed["short"], storage_options=lake.storage_options).version() == version
    assert {r["run_id"] for r in audit.read(lake)} == {result.run_id}
