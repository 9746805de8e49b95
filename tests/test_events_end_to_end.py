"""The events domain through Dagster: real instance, real S3, real engine, counts against the generator's
record."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import dagster as dg
import pytest
from pyspark.sql import functions as F

from synthetic import read_record
from synthetic.events import generate_day
from tests.helpers import counts_by_day

DAYS = [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]
ROWS = 2_000


@pytest.fixture()
def landed(lake):
    for day in DAYS:
        generated = generate_day(day, ROWS)
        generated.write(lake, "events")
    return {day: read_record(lake, "events", day) for day in DAYS}


def run_range(instance, first: dt.date, last: dt.date):
    from orchestration.definitions import defs

    return defs.resolve_job_def("events_daily").execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
    )


def test_two_partitions_reconcile_with_the_generator_in_every_layer(spark, lake, landed, instance):
    result = run_range(instance, DAYS[0], DAYS[-1])
    assert result.success
    assert len(instance.get_runs()) == 1  # the range is one run (single-run backfill policy)

    uri = lambda layer, name="events": lake.table_uri(layer, "events", name)  # noqa: E731
    expected = {day: record["expected"] for day, record in landed.items()}
    assert counts_by_day(spark, uri("raw")) == {day: e["raw"] for day, e in expected.items()}
    assert counts_by_day(spark, uri("processed")) == {day: e["processed"] for day, e in expected.items()}
    assert counts_by_day(spark, uri("quarantine")) == {day: e["quarantined"] for day, e in expected.items()}
    # input lines = processed + duplicates removed + quarantined, per partition
    for e in expected.values():
        assert e["raw"] == e["processed"] + e["duplicates"] + e["quarantined"]
    late = {
        r["dt"]: r["count"]
        for r in spark.read.format("delta")
        .load(uri("processed"))
        .where("is_late")
        .groupBy("dt")
        .count()
        .collect()
    }
    assert late == {day: e["late"] for day, e in expected.items()}
    reasons = Counter()
    for r in spark.read.format("delta").load(uri("quarantine")).groupBy("dt", "reason").count().collect():
        reasons[(r["dt"], r["reason"].split(":")[0])] += r["count"]
    bad = {day: record["bad"] for day, record in landed.items()}
    for day in DAYS:
        assert reasons[(day, "missing_required_field")] == bad[day]["missing_required_field"]
        assert reasons[(day, "malformed_json")] == bad[day]["malformed_json"]
        assert reasons[(day, "invalid_timestamp")] == bad[day]["invalid_timestamp"]

    dau = {
        r["dt"]: r["events"]
        for r in spark.read.format("delta").load(uri("curated", "daily_active_users")).collect()
    }
    assert dau == {day: e["processed"] for day, e in expected.items()}
    hourly = counts_by_day(spark, uri("curated", "hourly_event_counts"))
    assert set(hourly) == set(DAYS)
    hourly_total = {
        r["dt"]: r["n"]
        for r in spark.read.format("delta")
        .load(uri("curated", "hourly_event_counts"))
        .groupBy("dt")
        .agg(F.sum("event_count").alias("n"))
        .collect()
    }
    assert hourly_total == {day: e["processed"] for day, e in expected.items()}

    processed_key = dg.AssetKey(["processed", "events", "events"])
    materialization = instance.get_latest_materialization_event(processed_key).asset_materialization
    metadata = materialization.metadata
    assert metadata["dagster/row_count"].value == sum(e["processed"] for e in expected.values())
    assert metadata["dagster/uri"].value == uri("processed")
    assert "event_id" in [c.name for c in metadata["dagster/column_schema"].schema.columns]
    assert metadata["duplicates_removed"].value == sum(e["duplicates"] for e in expected.values())


def test_rerunning_one_partition_changes_only_that_partition_and_keeps_the_counts(
    spark, lake, landed, instance
):
    from lakehouse.maintenance import TableMaintenance

    assert run_range(instance, DAYS[0], DAYS[-1]).success
    processed = lake.table_uri("processed", "events", "events")
    table = TableMaintenance(processed, lake.storage_options)
    before_files = table.active_files()
    before_rows = sorted(map(tuple, spark.read.format("delta").load(processed).collect()))

    assert run_range(instance, DAYS[1], DAYS[1]).success

    after_files = table.active_files()
    day_one = DAYS[0].isoformat()
    assert {p for p, d in after_files.items() if d == day_one} == {
        p for p, d in before_files.items() if d == day_one
    }
    assert {p for p, d in after_files.items() if d != day_one}.isdisjoint(before_files)  # day two rewritten
    assert sorted(map(tuple, spark.read.format("delta").load(processed).collect())) == before_rows


def test_definitions_expose_partitions_schedule_and_pools():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {
        "raw/events/events",
        "processed/events/events",
        "quarantine/events/events",
        "curated/events/hourly_event_counts",
        "curated/events/daily_active_users",
        "curated/events/daily_order_revenue",
    } <= keys
    schedule = defs.resolve_schedule_def("events_daily_schedule")
    assert schedule.cron_schedule == "0 1 * * *"
    node = graph.get(dg.AssetKey(["processed", "events", "events"]))
    assert node.partitions_def.get_first_partition_key() == "2024-01-01"
    assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert node.owners == ["team:event-platform"]
    # One pool per writing step (limit 1 in dagster.yaml); a quarantine table is written by its dataset's
    # step.
    from orchestration.definitions import DATASETS

    for dataset in DATASETS:
        step = defs.resolve_assets_def(dg.AssetKey(dataset.key_path))
        assert step.node_def.pool == "delta-" + dataset.path.replace("/", "-")
        if dataset.has_quarantine:
            assert dg.AssetKey(dataset.quarantine_path.split("/")) in step.keys
    pools = [defs.resolve_assets_def(dg.AssetKey(d.key_path)).node_def.pool for d in DATASETS]
    assert len(set(pools)) == len(DATASETS)
