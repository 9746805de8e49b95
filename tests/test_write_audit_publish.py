"""Write-audit-publish and every reason, through a real Dagster instance, S3, engine and Delta.

A step stages what it would publish, validates those rows, and commits the dataset, its quarantine and its
metrics only when no blocking check fails; otherwise every table of the step keeps its version, the rows
wait for review under `<root>/_review/...`, and the run fails naming the checks and that location. A
quarantined row lists every rule it breaks, and the metrics count quarantined rows per rule.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from lakehouse import landing
from lakehouse.datasets import Dataset
from lakehouse.engine import engine_path
from orchestration.factory import domain_assets
from quality import metrics
from quality.rules import between
from synthetic import write_landing
from tests.helpers import run_assets
from transforms import common

DAY = dt.date(2024, 1, 2)


def parse_payments(raw):
    parsed = raw.select(
        "dt",
        "source_file",
        "line_number",
        F.from_json("line", "id string, amount double, cur string").alias("r"),
    )
    return parsed.select(
        "dt",
        "source_file",
        "line_number",
        "r.id",
        "r.amount",
        "r.cur",
        *common.rule_reasons(
            (F.col("r.id").isNull(), "missing_id"),
            (F.col("r.amount") < 0, "negative_amount"),
            (~F.col("r.cur").isin("EUR", "USD"), "unknown_currency"),
        ),
    )


def total_per_day(payments):
    return payments.groupBy("dt").agg(F.count(F.lit(1)).alias("payments"), F.sum("amount").alias("amount"))


RAW = Dataset(
    name="payments", domain="wap", layer="raw", owner="team:qa", landing="payments", description="Lines."
)
PROCESSED = Dataset(
    name="payments",
    domain="wap",
    layer="processed",
    owner="team:qa",
    upstream=(RAW.path,),
    transform=parse_payments,
    quarantine=True,
    primary_key=("id",),
    description="Parsed payments.",
    # blocking: no row rule refuses an absurd amount, the table rule does
    checks=(between("amount", 0, 1000, name="amount_below_limit"),),
)
CURATED = Dataset(
    name="totals",
    domain="wap",
    layer="curated",
    owner="team:qa",
    upstream=(PROCESSED.path,),
    transform=total_per_day,
    primary_key=("dt",),
    description="Totals per day.",
)
ASSETS = domain_assets([RAW, PROCESSED, CURATED])
TABLES = {
    "raw": RAW.path,
    "processed": PROCESSED.path,
    "quarantine": PROCESSED.quarantine_path,
    "metrics": metrics.metrics_path(PROCESSED),
    "curated": CURATED.path,
}


def _line(i: int, amount: float = 10.0, cur: str = "EUR", with_id: bool = True) -> str:
    return json.dumps({**({"id": f"p-{i}"} if with_id else {}), "amount": amount, "cur": cur})


def _land(lake, absurd: int) -> None:
    """20 good payments, 3 quarantined (one breaking two rules) and `absurd` amounts above the limit."""
    lines = [_line(i) for i in range(20)]
    lines += [_line(100, amount=-1), _line(101, cur="GBP"), _line(102, amount=-5, cur="XXX", with_id=False)]
    lines += [_line(200 + i, amount=5000.0) for i in range(absurd)]
    write_landing(lake, "wap", DAY, {"payments": [lines]}, {})


def _state(lake) -> dict[str, tuple[int, int]]:
    """(Delta version, rows) of every table of the pipeline."""
    found = {}
    for name, path in TABLES.items():
        table = DeltaTable(lake.table_uri(*path.split("/")), storage_options=lake.storage_options)
        found[name] = (table.version(), table.to_pyarrow_table().num_rows)
    return found


@pytest.fixture(params=["sail", pytest.param("spark-cluster", marks=pytest.mark.spark_cluster)])
def session(request, spark):
    """Each WAP test runs on Sail and on the Spark cluster (configured as LAKEHOUSE_SPARK_REMOTE)."""
    return spark if request.param == "sail" else request.getfixturevalue("on_spark_cluster")


def test_a_failing_blocking_check_publishes_nothing_and_keeps_the_rows_for_review(session, lake, instance):
    _land(lake, absurd=0)
    assert run_assets(instance, ASSETS, DAY).success
    published = _state(lake)
    assert {k: rows for k, (_, rows) in published.items()} == {
        "raw": 23,
        "processed": 20,
        "quarantine": 3,
        "metrics": 1,
        "curated": 1,
    }

    _land(lake, absurd=2)  # two new payments above the limit, and the same 23 lines as before
    result = run_assets(instance, ASSETS, DAY, raise_on_error=False)

    assert not result.success
    after = _state(lake)
    assert after["raw"][1] == 25  # raw keeps every line as received: it has no checks
    assert {k: v for k, v in after.items() if k != "raw"} == {
        k: v for k, v in published.items() if k != "raw"
    }
    review = landing.review_folder(lake, PROCESSED.path, result.run_id)
    kept = session.read.parquet(engine_path(session, f"{review}/accepted"))
    assert kept.count() == 22 and kept.where("amount = 5000").count() == 2
    held = session.read.parquet(engine_path(session, f"{review}/quarantine"))
    assert sorted(r["reason"] for r in held.collect()) == [
        "missing_id",
        "negative_amount",
        "unknown_currency",
    ]
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "amount_below_limit"]
    assert not check.passed and check.metadata["review_location"].value == review
    assert check.metadata["unexpected_count"].value == 2
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "processed__wap__payments"
    message = failure.step_failure_data.error.message
    assert "amount_below_limit" in message and review in message and "Nothing was published" in message
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {RAW.path, RAW.quarantine_path}  # nothing of the failed step, nothing downstream

    _land(lake, absurd=0)  # the fix: the source resends the day without the absurd amounts
    assert run_assets(instance, ASSETS, DAY).success
    fixed = _state(lake)
    for name in ("processed", "quarantine", "metrics", "curated"):
        assert fixed[name][0] > published[name][0], name
    assert {k: rows for k, (_, rows) in fixed.items()} == {k: rows for k, (_, rows) in published.items()}


def test_a_warning_publishes_and_metrics_count_every_reason(spark, lake, instance):
    _land(lake, absurd=0)
    result = run_assets(instance, ASSETS, DAY)

    assert result.success
    quarantine = spark.read.format("delta").load(lake.table_uri(*PROCESSED.quarantine_path.split("/")))
    found = {r["line_number"]: (r["reason"], json.loads(r["reasons"])) for r in quarantine.collect()}
    assert found == {
        21: ("negative_amount", ["negative_amount"]),
        22: ("unknown_currency", ["unknown_currency"]),
        23: ("missing_id", ["missing_id", "negative_amount", "unknown_currency"]),
    }
    [row] = (
        spark.read.format("delta").load(lake.table_uri(*metrics.metrics_path(PROCESSED).split("/"))).collect()
    )
    assert (row["rows"], row["quarantined"]) == (20, 3)
    assert json.loads(row["quarantined_by_rule"]) == {
        "missing_id": 1,
        "negative_amount": 2,
        "unknown_currency": 2,
    }
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["accepted_share"].passed  # 20/23 accepted: a warning, published all the same
    assert checks["accepted_share"].severity == dg.AssetCheckSeverity.WARN
    assert checks["rows_reconcile"].passed and checks["amount_below_limit"].passed


def test_every_reason_in_order_with_region_and_version(spark):
    rows = spark.createDataFrame(
        [
            (DAY, 1, -1.0, "us-east-1", "2.0"),
            (DAY, 2, 5.0, "eu-west-1", "1.0"),
            (DAY, 3, None, "us-east-1", "1.0"),
        ],
        "dt date, id int, amount double, region string, version string",
    )
    marked = rows.select(
        "*",
        *common.rule_reasons(
            (F.col("amount").isNull(), common.UNREADABLE),
            (F.col("amount") < 0, "negative_amount"),
            (F.col("amount") < 1, "below_one"),
        ),
    )
    marked = common.require_version(common.require_region(marked, "region", ["eu-west-1"]), ["1"])
    found = {r["id"]: (r["quarantine_reason"], r["quarantine_reasons"]) for r in marked.collect()}
    assert found == {
        1: (
            "unknown_version:2.0",
            ["unknown_version:2.0", "negative_amount", "below_one", "region_not_allowed:us-east-1"],
        ),
        2: (None, []),
        3: ("malformed_json", ["malformed_json"]),  # unreadable: the other rules would only echo it
    }
    records = common.quarantine_records(marked, "run-1", dt.datetime(2024, 1, 3)).collect()
    assert {r["reason"]: json.loads(r["reasons"]) for r in records} == {k: v for k, v in found.values() if k}
    assert all("quarantine_reasons" not in json.loads(r["record"]) for r in records)
