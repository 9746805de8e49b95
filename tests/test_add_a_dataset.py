"""A data engineer adds a curated dataset: one declaration and one transform in a new module, or one
defs.yaml (scaffolded with `dg scaffold defs`) and one transform; both are built through Dagster alike."""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import textwrap

import dagster as dg
from pyspark.sql import functions as F

from assets import commerce, events
from orchestration.cli import main as lakehouse
from orchestration.components import DatasetComponent
from orchestration.factory import domain_assets
from synthetic import commerce as commerce_data
from synthetic.events import generate_day
from tests.conftest import REPO
from tests.helpers import run_assets

DAY = dt.date(2024, 1, 1)

# What the README's "Add a dataset" section shows, verbatim.
NEW_MODULE = textwrap.dedent("""
    from pyspark.sql import DataFrame, functions as F

    from lakehouse.datasets import Dataset


    def sessions_per_region(events: DataFrame) -> DataFrame:
        return events.groupBy("dt", "region").agg(F.countDistinct("session_id").alias("sessions"))


    SESSIONS_PER_REGION = Dataset(
        name="sessions_per_region",
        domain="events",
        layer="curated",
        owner="team:analytics",
        description="Distinct sessions per region and day.",
        upstream=("processed/events/events",),
        transform=sessions_per_region,
        primary_key=("dt", "region"),
        region_column="region",
        retention_days=1095,
    )
    DATASETS = [SESSIONS_PER_REGION]
""")


def test_a_new_curated_dataset_is_one_short_declaration(spark, lake, instance, tmp_path, monkeypatch):
    assert len(NEW_MODULE.strip().splitlines()) <= 25
    assert NEW_MODULE.strip() in (REPO / "README.md").read_text()
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
        expected = {
            r["region"]: r["n"]
            for r in processed.groupBy("region").agg(F.countDistinct("session_id").alias("n")).collect()
        }
        assert written == expected and sum(written.values()) > 0

        key = dg.AssetKey(["curated", "events", "sessions_per_region"])
        event = instance.get_latest_materialization_event(key).asset_materialization
        assert event.metadata["dagster/row_count"].value == len(expected)
        assert [c.name for c in event.metadata["dagster/column_schema"].schema.columns] == [
            "dt",
            "region",
            "sessions",
        ]
        spec = next(iter(domain_assets(module.DATASETS)[0].specs))
        assert spec.owners == ["team:analytics"] and spec.group_name == "events"
        assert spec.metadata["retention_days"] == 1095
    finally:
        sys.modules.pop("my_datasets", None)


# The YAML way: the repository's own example, which the README shows verbatim.
ORDERS_BY_STATUS = "commerce/orders_by_status"


def test_a_new_curated_dataset_in_yaml_is_built_by_its_component(spark, lake, instance, capsys):
    declaration = (REPO / "assets" / ORDERS_BY_STATUS / "defs.yaml").read_text()
    assert declaration.strip() in (REPO / "README.md").read_text()
    tree = dg.ComponentTree.for_project(REPO)  # the defs folder, as `dg` and the code location load it
    assert isinstance(tree.load_component(ORDERS_BY_STATUS), DatasetComponent)
    built = tree.build_defs(ORDERS_BY_STATUS)
    commerce_data.generate_day(DAY, 300).write(lake, "commerce")
    result = run_assets(instance, [*domain_assets(commerce.DATASETS), *built.assets], DAY)
    assert result.success

    key = dg.AssetKey(["curated", "commerce", "orders_by_status"])
    written = {
        (r["currency"], r["status"]): (r["orders"], r["revenue"])
        for r in spark.read.format("delta").load(lake.table_uri(*key.path)).collect()
    }
    orders = spark.read.format("delta").load(lake.table_uri("processed", "commerce", "orders"))
    per_status = orders.groupBy("currency", "status").agg(
        F.count(F.lit(1)).alias("n"), F.sum("total_amount").alias("amount")
    )
    expected = {(r["currency"], r["status"]): (r["n"], r["amount"]) for r in per_status.collect()}
    assert written == expected and sum(n for n, _ in written.values()) > 0

    event = instance.get_latest_materialization_event(key).asset_materialization
    assert event.metadata["dagster/row_count"].value == len(expected)
    assert [c.name for c in event.metadata["dagster/column_schema"].schema.columns] == [
        "dt",
        "currency",
        "status",
        "orders",
        "revenue",
    ]
    spec = next(a for a in built.assets if key in a.keys).specs_by_key[key]
    assert spec.owners == ["team:commerce"] and spec.group_name == "commerce"
    assert spec.metadata["retention_days"] == 1095
    # The checks declared in the YAML ran as asset checks, and passed.
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations() if e.asset_key == key}
    declared = {"orders_at_least_one", "revenue_not_negative", "status_allowed", "currency_allowed"}
    assert declared <= set(checks)
    assert all(checks.values())

    # The CLI sees it without loading the code location.
    capsys.readouterr()
    assert lakehouse(["summary"]) == 0 and lakehouse(["quality", "--domain", "commerce"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "orders_by_status" in line]
    assert len(lines) == 2 and f"({DAY}..{DAY})" in lines[0] and "passed" in lines[1]
