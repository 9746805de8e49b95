"""Quality gates through a real Dagster instance, S3, engine and Delta: a failing blocking check publishes
nothing of its step (write-audit-publish), stops the downstream assets of the same run and leaves their
tables unchanged; a failing warning records and lets the
run go on; the metrics table holds the exact values of a constructed partition; Data Docs are built."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
from deltalake import DeltaTable

from assets import commerce as a
from lakehouse import catalog
from lakehouse.datasets import Dataset
from orchestration.factory import domain_assets
from quality import metrics
from quality.rules import between, complete
from synthetic import commerce as g
from tests.helpers import run_assets
from transforms import commerce as t
from transforms import common

DAY, NEXT = dt.date(2024, 1, 2), dt.date(2024, 1, 3)


def _checks(result: dg.ExecuteInProcessResult, key: list[str]) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == dg.AssetKey(key)}


def _version(lake, layer: str, name: str, domain: str = "commerce") -> int:
    return DeltaTable(lake.table_uri(layer, domain, name), storage_options=lake.storage_options).version()


def _path_version(lake, path: str) -> int:
    layer, domain, name = path.split("/")
    return _version(lake, layer, name, domain)


def test_a_failing_blocking_check_stops_downstream_in_the_same_backfill(spark, lake, instance, monkeypatch):
    """An order total above the business limit slips past a weakened row rule: the table rule catches it,
    and the backfill of two days (one run, as every asset has a single-run backfill policy) stops at the
    orders."""
    generated = g.generate_day(DAY, 300, bad_share=0)
    generated.write(lake, "commerce")
    following = g.generate_day(NEXT, 300, bad_share=0)
    following.write(lake, "commerce")
    assert run_assets(instance, domain_assets(a.DATASETS), DAY, NEXT).success
    curated = {d.name: _version(lake, "curated", d.name) for d in a.DATASETS if d.layer == "curated"}
    items_version = _version(lake, "processed", "order_items")
    orders_tables = {
        path: _path_version(lake, path)
        for path in (a.ORDERS.path, a.ORDERS.quarantine_path, metrics.metrics_path(a.ORDERS))
    }

    good = json.loads(generated.sources["orders"][0][0])
    too_big = dict(good, order_id="00000000-0000-4000-8000-000000000001", total_amount=250000)
    generated.sources["orders"][0].append(json.dumps(too_big))
    generated.write(lake, "commerce")
    monkeypatch.setattr(t, "MAX_ORDER_AMOUNT", 10**9)  # the row rule no longer refuses absurd totals
    result = run_assets(instance, domain_assets(a.DATASETS), DAY, NEXT, raise_on_error=False)

    assert not result.success
    checks = _checks(result, a.ORDERS.key_path)
    failed = {name for name, e in checks.items() if not e.passed}
    assert failed == {"total_amount_positive"}
    check = checks["total_amount_positive"]
    assert check.severity == dg.AssetCheckSeverity.ERROR
    shown = {k: v.value for k, v in check.metadata.items()}
    assert shown["unexpected_count"] == 1 and shown["failing_sample"] == ["2***"]  # confidential: masked
    assert shown["threshold"] == "total_amount in (0, 100000] (every row)"
    assert check.description.endswith(
        f"1 of {shown['rows_validated']} rows ({shown['unexpected_percent']}%) break it"
    )
    accepted = [day.record["expected"]["orders"]["accepted"] for day in (generated, following)]
    assert shown["rows_validated"] == sum(accepted) + 1
    page = Path(urlparse(shown["data_docs"]).path).read_text()
    assert "2***" in page and "250000" not in page  # Data Docs show the masked sample too
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failure] == ["processed__commerce__orders"]
    assert "total_amount_positive" in failure[0].step_failure_data.error.message

    # write-audit-publish: the gate judged the staged orders, so neither they nor their quarantine and
    # metrics were committed; nothing downstream ran or changed
    assert "review_location" in check.metadata and check.metadata["review_location"].value in (
        failure[0].step_failure_data.error.message
    )
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert not materialized & set(orders_tables)
    items = {"processed/commerce/order_items", "quarantine/commerce/order_items"}
    assert not {p for p in materialized if p.startswith("curated/") or p in items}
    assert {path: _path_version(lake, path) for path in orders_tables} == orders_tables
    assert {name: _version(lake, "curated", name) for name in curated} == curated
    assert _version(lake, "processed", "order_items") == items_version
    assert (
        catalog.get_entry(lake, "processed.commerce.orders")["qualityStatus"] == "passed"
    )  # what is published
    row = (
        spark.read.format("delta").load(lake.table_uri(*metrics.metrics_path(a.ORDERS).split("/"))).collect()
    )
    assert sorted((r["dt"], r["status"], r["checks_failed"]) for r in row) == [
        (DAY, "passed", 0),
        (NEXT, "passed", 0),
    ]


# -- a constructed partition: 50 lines, 10 refused by a row rule, 40 accepted of which 2 lack `note`
# ------------


def parse_lines(raw):
    from pyspark.sql import functions as F

    parsed = raw.select(
        "dt",
        "source_file",
        "line_number",
        F.from_json("line", "id string, note string, amount double").alias("r"),
    )
    return parsed.select(
        "dt",
        "source_file",
        "line_number",
        "r.id",
        "r.note",
        "r.amount",
        common.first_reason((F.col("r.amount") < 0, "negative_amount")).alias("quarantine_reason"),
    )


def total_per_day(readings):
    from pyspark.sql import functions as F

    return readings.groupBy("dt").agg(F.count(F.lit(1)).alias("rows"), F.sum("amount").alias("amount"))


RAW = Dataset(
    name="lines", domain="qa", layer="raw", owner="team:qa", landing="lines", description="Constructed lines."
)
PROCESSED = Dataset(
    name="lines",
    domain="qa",
    layer="processed",
    owner="team:qa",
    upstream=(RAW.path,),
    transform=parse_lines,
    quarantine=True,
    primary_key=("id",),
    description="Parsed lines.",
    checks=(*complete("note"), between("amount", 0, name="amount_ok")),
)
CURATED = Dataset(
    name="totals",
    domain="qa",
    layer="curated",
    owner="team:qa",
    upstream=(PROCESSED.path,),
    transform=total_per_day,
    primary_key=("dt",),
    description="Totals per day.",
)


def test_a_warning_does_not_block_and_the_metrics_are_exact(spark, lake, instance, monkeypatch):
    lines = [json.dumps({"id": f"id-{i}", "note": None if i < 2 else "n", "amount": 1.5}) for i in range(40)]
    lines += [json.dumps({"id": f"bad-{i}", "note": "n", "amount": -1}) for i in range(10)]
    from synthetic import write_landing

    write_landing(lake, "qa", DAY, {"lines": [lines]}, {})
    result = run_assets(instance, domain_assets([RAW, PROCESSED, CURATED]), DAY)

    assert result.success  # warnings recorded, downstream built
    checks = _checks(result, PROCESSED.key_path)
    assert {n for n, e in checks.items() if not e.passed} == {"note_present", "accepted_share"}
    note = {k: v.value for k, v in checks["note_present"].metadata.items()}
    assert checks["note_present"].severity == dg.AssetCheckSeverity.WARN
    assert (note["observed_value"], note["unexpected_count"], note["unexpected_percent"]) == (0.95, 2, 5.0)
    assert note["failing_sample"] == ["null", "null"] and note["mostly"] == 0.99
    share = {k: v.value for k, v in checks["accepted_share"].metadata.items()}
    assert (share["observed_value"], share["unexpected_count"]) == (0.8, 10)
    assert checks["rows_reconcile"].passed
    assert set(_checks(result, CURATED.key_path)) == {"dt_present", "one_row_per_day"}
    assert all(e.passed for e in _checks(result, CURATED.key_path).values())
    totals = spark.read.format("delta").load(lake.table_uri("curated", "qa", "totals")).collect()
    assert [(r["dt"], r["rows"]) for r in totals] == [(DAY, 40)]

    table = spark.read.format("delta").load(lake.table_uri(*metrics.metrics_path(PROCESSED).split("/")))
    [row] = table.collect()
    assert (row["dt"], row["dataset"], row["rows"], row["quarantined"]) == (DAY, "processed.qa.lines", 40, 10)
    assert row["completeness"] == 0.975  # id and note: 78 of 80 values present
    assert (row["validity"], row["uniqueness"], row["consistency"]) == (1.0, 1.0, None)
    assert row["quarantine_rate"] == 0.2 and row["status"] == "warning" and row["checks_failed"] == 2
    assert json.loads(row["quarantined_by_rule"]) == {"negative_amount": 10}
    assert row["freshness_hours"] > 24 * 365  # a 2024 partition measured today
    quarantined = spark.read.format("delta").load(lake.table_uri("quarantine", "qa", "lines"))
    assert {(r["reason"], r["run_id"]) for r in quarantined.collect()} == {("negative_amount", result.run_id)}
    assert catalog.get_entry(lake, "processed.qa.lines")["qualityStatus"] == "warning"


def test_a_repeated_key_blocks_its_step_and_names_the_key(spark, lake, instance):
    """A key the dataset does not de-duplicate arrives twice: the blocking uniqueness check fails on both
    rows, shows the key, and nothing of the step is published."""
    lines = [json.dumps({"id": f"id-{i}", "note": "n", "amount": 1.0}) for i in range(5)]
    lines.append(json.dumps({"id": "id-3", "note": "again", "amount": 2.0}))
    from synthetic import write_landing

    write_landing(lake, "qa", DAY, {"lines": [lines]}, {})
    result = run_assets(instance, domain_assets([RAW, PROCESSED, CURATED]), DAY, raise_on_error=False)

    assert not result.success
    checks = _checks(result, PROCESSED.key_path)
    assert {n for n, e in checks.items() if not e.passed} == {"id_unique_per_day"}
    shown = {k: v.value for k, v in checks["id_unique_per_day"].metadata.items()}
    assert (shown["unexpected_count"], shown["rows_validated"]) == (2, 6)
    assert shown["failing_sample"] == ["dt='2024-01-02', id='id-3'"] * 2
    assert checks["id_unique_per_day"].severity == dg.AssetCheckSeverity.ERROR
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"raw/qa/lines", "quarantine/qa/landing_lines"}
    assert not DeltaTable.is_deltatable(lake.table_uri("processed", "qa", "lines"), lake.storage_options)
