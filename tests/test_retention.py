"""Retention on a constructed lake: two catalogued tables and a landing source with dated partitions; its
brakes (future reference date, safety-window floor, share of a table) and abandoned staging folders."""

from __future__ import annotations

import datetime as dt
import os
import time

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lakehouse import audit, catalog, landing, retention, storage
from lakehouse.config import LakehouseConfig
from lakehouse.delta import write_partitions
from lakehouse.maintenance import TableMaintenance
from orchestration.cli import main
from synthetic import write_landing

DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(5)]
REFERENCE = DAYS[-1]  # 2024-01-05
ROWS_PER_DAY = {day: 10 + i for i, day in enumerate(DAYS)}


def _entry(path: str, location: str, retention_days: int) -> catalog.Materialization:
    entry = catalog.Entry(
        path=path,
        owner="team@example.com",
        description=path,
        location=location,
        fields=[catalog.Field("dt", "date"), catalog.Field("n", "bigint")],
        retention_days=retention_days,
    )
    return catalog.Materialization(
        run_id="setup",
        entry=entry,
        partitions=[d.isoformat() for d in DAYS],
        rows_written=0,
        code_version="test",
    )


@pytest.fixture()
def constructed(spark, lake):
    """`short` keeps 3 days, `long` 365; the landing source keeps 2 days."""
    rows = [(day, n) for day, count in ROWS_PER_DAY.items() for n in range(count)]
    frame = spark.createDataFrame(rows, "dt date, n bigint")
    uris = {name: lake.table_uri("processed", "demo", name) for name in ("short", "long")}
    for uri in uris.values():
        for day in DAYS:  # one commit per day: several files, and a history to time-travel
            write_partitions(frame.where(f"dt = DATE'{day}'"), uri, [day], lake.storage_options)
    for day in DAYS:
        write_landing(lake, "demo", day, {"clicks": [[f'{{"n": {n}}}' for n in range(3)]]}, record={})
    catalog.record(
        lake,
        [
            _entry("processed/demo/short", uris["short"], 3),
            _entry("processed/demo/long", uris["long"], 365),
            _entry("landing/demo/clicks", lake.landing_uri("demo"), 2),
        ],
    )
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
    versions = {
        name: DeltaTable(uri, storage_options=lake.storage_options).version()
        for name, uri in constructed.items()
    }
    expired_files = [
        p for day, paths in _files_by_day(lake, short).items() if day < "2024-01-03" for p in paths
    ]

    removals = retention.apply(lake, REFERENCE, "dry-1", dry_run=True)

    found = {(r.target, r.step): r for r in removals}
    delete = found[("processed.demo.short", "delete")]
    assert delete.partitions == ("2024-01-01", "2024-01-02")
    assert delete.rows == ROWS_PER_DAY[DAYS[0]] + ROWS_PER_DAY[DAYS[1]] == 21
    assert delete.files == len(expired_files) == 2
    assert delete.bytes == _sizes(lake, short, expired_files) > 0
    assert found[("processed.demo.long", "delete")].rows == 0
    landing = found[("landing.demo.clicks", "landing")]
    # the landing files of 01..03 are past their window, but written seconds ago: the safety window keeps them
    assert landing.partitions == () and landing.files == 0 and landing.kept_by_window == 3
    # nothing changed
    assert {
        name: DeltaTable(uri, storage_options=lake.storage_options).version()
        for name, uri in constructed.items()
    } == versions
    assert _landing_days(lake) == [d.isoformat() for d in DAYS]
    records = audit.read(lake, "dry-1")
    assert {(r["target"], r["step"], r["rows"], r["dry_run"]) for r in records} == {
        ("processed.demo.short", "delete", 21, True),
        ("landing.demo.clicks", "landing", 0, True),
        ("*", "summary", 21, True),
    }


def test_expired_partitions_go_and_their_files_are_vacuumed_only_after_the_safety_window(lake, constructed):
    short, long_ = constructed["short"], constructed["long"]
    before = _files_by_day(lake, short)
    long_files = _files_by_day(lake, long_)
    expired = [f"{short}/{p}" for day in ("2024-01-01", "2024-01-02") for p in before[day]]

    retention.apply(lake, REFERENCE, "ret-1")

    after = _files_by_day(lake, short)
    assert after == {
        day: paths for day, paths in before.items() if day >= "2024-01-03"
    }  # in-window files untouched
    assert _files_by_day(lake, long_) == long_files
    assert _landing_days(lake) == [d.isoformat() for d in DAYS]  # written within the safety window
    stored = storage.list_tree(lake, short)
    assert all(uri in stored for uri in expired)  # tombstoned, still within the safety window
    assert catalog.get_entry(lake, "processed.demo.short")["rowCount"] == sum(ROWS_PER_DAY.values()) - 21

    second = retention.apply(lake, REFERENCE, "ret-2", safety_window_hours=0, override_safety_floor=True)

    assert _landing_days(lake) == ["2024-01-04", "2024-01-05"]
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
    third = retention.apply(lake, REFERENCE, "ret-3", safety_window_hours=0, override_safety_floor=True)
    assert (
        sum(r.files for r in third) == 0
    )  # the tombstones' files are gone already: nothing is counted twice


def test_retention_job_in_dagster_dry_run_reports_and_keeps_everything(lake, constructed, instance):
    from orchestration.definitions import defs

    version = DeltaTable(constructed["short"], storage_options=lake.storage_options).version()
    result = defs.resolve_job_def("retention_job").execute_in_process(
        instance=instance,
        run_config={
            "ops": {"apply_retention": {"config": {"dry_run": True, "reference_date": REFERENCE.isoformat()}}}
        },
    )
    assert result.success
    output = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"][0]
    shown = {k: v.value for k, v in output.event_specific_data.metadata.items()}
    assert shown["rows"] == 21 and shown["dry_run"] is True
    assert shown["targets"] == ["processed.demo.short"]  # the landing files are within the safety window
    assert DeltaTable(constructed["short"], storage_options=lake.storage_options).version() == version
    assert {r["run_id"] for r in audit.read(lake)} == {result.run_id}


def _versions(lake, tables: dict[str, str]) -> dict[str, int]:
    return {name: TableMaintenance(uri, lake.storage_options).version() for name, uri in tables.items()}


def test_a_reference_date_after_today_is_refused_audited_and_removes_nothing(lake, constructed, capsys):
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    versions = _versions(lake, constructed)
    for dry_run in (False, True):
        with pytest.raises(retention.RetentionRefused, match=f"reference date {tomorrow} is after today"):
            retention.apply(lake, tomorrow, f"future-{dry_run}", dry_run=dry_run)
    assert (
        main(
            [
                "retention",
                "--reference-date",
                "2999-01-01",
                "--safety-window-hours",
                "0",
                "--allow-short-safety-window",
            ]
        )
        == 1
    )
    assert "refused: reference date 2999-01-01 is after today" in capsys.readouterr().err
    assert _versions(lake, constructed) == versions and _landing_days(lake) == [d.isoformat() for d in DAYS]
    refused = [r for r in audit.read(lake) if r["step"] == "refused"]
    assert [r["run_id"] for r in refused[:2]] == ["future-False", "future-True"] and len(refused) == 3
    assert all("after today" in r["detail"] for r in refused)


def test_a_safety_window_under_the_floor_needs_an_explicit_override(lake, constructed, capsys):
    floor = retention.SAFETY_WINDOW_FLOOR_HOURS
    with pytest.raises(retention.RetentionRefused, match=f"under the floor of {floor} h"):
        retention.apply(lake, REFERENCE, "short-window", safety_window_hours=floor - 1)
    assert main(["retention", "--reference-date", REFERENCE.isoformat(), "--safety-window-hours", "0"]) == 1
    assert "--allow-short-safety-window" in capsys.readouterr().err
    assert _landing_days(lake) == [d.isoformat() for d in DAYS]  # nothing removed
    assert retention.apply(lake, REFERENCE, "at-floor", dry_run=True, safety_window_hours=floor)
    assert (
        main(
            [
                "retention",
                "--dry-run",
                "--reference-date",
                REFERENCE.isoformat(),
                "--safety-window-hours",
                "0",
                "--allow-short-safety-window",
            ]
        )
        == 0
    )
    assert "landing.demo.clicks" in capsys.readouterr().out  # a window of 0 h: the landing files would go
    with pytest.raises(SystemExit):
        main(["retention", "--help"])
    assert "--allow-short-safety-window" in capsys.readouterr().out


def test_deleting_more_than_the_share_of_a_table_is_refused_unless_confirmed(lake, constructed, instance):
    """At 2024-01-06 `short` (3 days) would lose 01..03: 33 of its 60 rows, 55% > 50%."""
    from orchestration.definitions import defs

    later = REFERENCE + dt.timedelta(days=1)
    versions = _versions(lake, constructed)
    with pytest.raises(retention.RetentionRefused) as refused:
        retention.apply(lake, later, "over", safety_window_hours=0, override_safety_floor=True)
    assert "processed.demo.short (55.0%: partitions 2024-01-01..2024-01-03)" in str(refused.value)
    assert "processed.demo.long" not in str(refused.value)
    # nothing at all was removed, not even the landing files a 0 h window lets go
    assert _versions(lake, constructed) == versions and _landing_days(lake) == [d.isoformat() for d in DAYS]
    assert {(r["step"], r["target"]) for r in audit.read(lake, "over")} == {
        ("refused", "*"),
        ("refused", "processed.demo.short"),
    }
    job = defs.resolve_job_def("retention_job")
    config = {"reference_date": later.isoformat(), "safety_window_hours": 24}
    dry = job.execute_in_process(
        instance=instance, run_config={"ops": {"apply_retention": {"config": {**config, "dry_run": True}}}}
    )
    output = [e for e in dry.all_node_events if e.event_type_value == "STEP_OUTPUT"][0]
    assert output.event_specific_data.metadata["would_refuse"].value == ["processed.demo.short (55.0%)"]
    assert not job.execute_in_process(
        instance=instance, raise_on_error=False, run_config={"ops": {"apply_retention": {"config": config}}}
    ).success
    assert _versions(lake, constructed) == versions
    assert job.execute_in_process(
        instance=instance, run_config={"ops": {"apply_retention": {"config": {**config, "confirm": True}}}}
    ).success
    assert sorted(_files_by_day(lake, constructed["short"])) == ["2024-01-04", "2024-01-05"]
    assert len(_files_by_day(lake, constructed["long"])) == 5
    confirmed = [r for r in audit.read(lake) if r["step"] == "delete" and not r["dry_run"]]
    assert [r["target"] for r in confirmed] == ["processed.demo.short"]
    assert "55.0% of the table's rows (over 50%: confirmed)" in confirmed[0]["detail"]


@pytest.fixture()
def local_lake(tmp_path, monkeypatch):
    """A lake on a local root, whose file ages can be set: `short` (3 days), landing `clicks` (2 days), and
    staging folders left 7 h and 1 h ago."""
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "lake"))
    config = LakehouseConfig.from_env()
    uri = config.table_uri("processed", "demo", "short")
    rows = [{"dt": day, "n": n} for day, count in ROWS_PER_DAY.items() for n in range(count)]
    write_deltalake(
        uri,
        pa.Table.from_pylist(rows, pa.schema([("dt", pa.date32()), ("n", pa.int64())])),
        partition_by=["dt"],
    )
    for day in DAYS:
        write_landing(config, "demo", day, {"clicks": [['{"n": 1}']]}, record={})
    catalog.record(
        config,
        [
            _entry("processed/demo/short", uri, 3),
            _entry("landing/demo/clicks", config.landing_uri("demo"), 2),
        ],
    )
    now = time.time()
    ages = {
        "_staging/demo/killed/part-00000.parquet": 7,
        "_staging/demo/killed/part-00001.parquet": 7,
        "_staging/demo/working/part-00000.parquet": 1,
        # rows a failed gate kept for review: a week is theirs
        "_review/demo/processed/short/run-old/quarantine/part-00000.parquet": 8 * 24,
        "_review/demo/processed/short/run-new/quarantine/part-00000.parquet": 6 * 24,
    }
    for path, hours in ages.items():
        storage.write_text(config, f"{config.root}/{path}", "rows of a run, in clear")
        os.utime(f"{config.root}/{path}", (now - hours * 3600, now - hours * 3600))
    # 2024-01-01's landing file was re-delivered an hour ago (a backfill is coming); the others are 9 days old
    for uri, (day, _) in landing.source_files(config, "demo", "clicks").items():
        age = 3600 if day == DAYS[0] else 9 * 86_400
        os.utime(uri, (now - age, now - age))
    return config


def test_the_dry_run_lists_staging_leftovers_landing_kept_and_what_the_brake_would_refuse(local_lake, capsys):
    later = REFERENCE + dt.timedelta(days=1)
    removals = retention.apply(local_lake, later, "dry", dry_run=True)
    found = {(r.target, r.step): r for r in removals}
    short = found[("processed.demo.short", "delete")]
    assert short.refused and short.rows == 33
    assert short.partitions == ("2024-01-01", "2024-01-02", "2024-01-03")
    clicks = found[("landing.demo.clicks", "landing")]
    assert clicks.partitions == ("2024-01-02", "2024-01-03", "2024-01-04") and clicks.kept_by_window == 1
    assert found[("_staging/demo/killed", "staging")].files == 2
    assert ("_staging/demo/working", "staging") not in found
    records = {(r["target"], r["step"]) for r in audit.read(local_lake, "dry")}
    assert records == {
        ("processed.demo.short", "refused"),
        ("landing.demo.clicks", "landing"),
        ("_staging/demo/killed", "staging"),
        ("_review/demo/processed/short/run-old/quarantine", "review"),
        ("*", "summary"),
    }
    assert main(["retention", "--dry-run", "--reference-date", later.isoformat()]) == 0
    shown = capsys.readouterr().out
    assert "REFUSED without confirmation: 55.0% of the rows > 50%" in shown
    assert "1 file(s) kept: modified within the safety window" in shown and "_staging/demo/killed" in shown
    # nothing changed
    assert len(storage.list_tree(local_lake, f"{local_lake.root}/_staging")) == 3
    assert len(landing.source_files(local_lake, "demo", "clicks")) == 5


def test_staging_leftovers_older_than_the_age_go_and_a_working_run_keeps_its_folder(local_lake):
    removals = retention.apply(local_lake, REFERENCE, "ret")
    assert sorted(storage.list_tree(local_lake, f"{local_lake.root}/_staging")) == [
        f"{local_lake.root}/_staging/demo/working/part-00000.parquet"
    ]
    assert [r.target for r in removals if r.step == "staging"] == ["_staging/demo/killed"]
    # landing: past the window and 9 days old: gone; re-delivered an hour ago: kept
    kept = landing.source_files(local_lake, "demo", "clicks").values()
    assert sorted(day.isoformat() for day, _ in kept) == ["2024-01-01", "2024-01-04", "2024-01-05"]
    staged = [r for r in audit.read(local_lake, "ret") if r["step"] == "staging"]
    assert [(r["target"], r["files"], r["dry_run"]) for r in staged] == [("_staging/demo/killed", 2, False)]
    assert sorted(storage.list_tree(local_lake, f"{local_lake.root}/_review")) == [
        f"{local_lake.root}/_review/demo/processed/short/run-new/quarantine/part-00000.parquet"
    ]
    assert [r.target for r in removals if r.step == "review"] == [
        "_review/demo/processed/short/run-old/quarantine"
    ]
