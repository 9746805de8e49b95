"""A data engineer adds a curated dataset: one declaration and one transform in a new module."""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import textwrap

import dagster as dg
from pyspark.sql import functions as F

from assets import events
from synthetic.events import generate_day
from orchestration.factory import domain_assets
from tests.helpers import run_assets

DAY = dt.date(2024, 1, 1)

# What the README's "Add a dataset" section shows, verbatim.
NEW_MODULE = textwrap.dedent('''
    from pyspark.sql import DataFrame, functions as F

    from lakehouse.datasets import Dataset


    def sessions_per_region(events: DataFrame) -> DataFrame:
        return events.groupBy("dt", "region").agg(F.countDistinct("session_id").alias("sessions"))


    SESSIONS_PER_REGION = Dataset(
        name="sessions_per_region", domain="events", layer="curated", owner="team:analytics",
        description="Distinct sessions per region and day.", upstream=("processed/events/events",),
        transform=sessions_per_region, primary_key=("dt", "region"), region_column="region",
        retention_days=1095,
    )
    DATASETS = [SESSIONS_PER_REGION]
''')


def test_a_new_curated_dataset_is_one_short_declaration(spark, lake, instance, tmp_path, monkeypatch):
    assert len(NEW_MODULE.strip().splitlines()) <= 25
    (tmp_path / "my_datasets.py").write_text(NEW_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("my_datasets")
    try:
        generate_day(DAY, 1_000).write(lake, "events")
        result = run_assets(instance, [*domain_assets(events.DATASETS), *domain_assets(module.DATASETS)], DAY)
        assert result.success

        uri = lake.table_uri("curated", "events", "sessions_per_region")
        written = {r["region"]: r["sessions"] for r in spark.read.format("delta").load(uri).collect()}
        processed = spark.read.format("delta").load(lake.table_uri("processed", "events", "events"))
        expected = {r["region"]: r["n"] for r in processed.groupBy("region")
                    .agg(F.countDistinct("session_id").alias("n")).collect()}
        assert written == expected and sum(written.values()) > 0

        key = dg.AssetKey(["curated", "events", "sessions_per_region"])
        event = instance.get_latest_materialization_event(key).asset_materialization
        assert event.metadata["dagster/row_count"].value == len(expected)
        assert [c.name for c in event.metadata["dagster/column_schema"].schema.columns] == ["dt", "region", "sessions"]
        spec = next(iter(domain_assets(module.DATASETS)[0].specs))
        assert spec.owners == ["team:analytics"] and spec.group_name == "events"
        assert spec.metadata["retention_days"] == 1095
    finally:
        sys.modules.pop("my_datasets", None)
