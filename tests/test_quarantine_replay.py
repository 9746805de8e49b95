"""Quarantine replay through a real Dagster instance, S3, Sail and Delta: payments whose account arrives
late are quarantined; once the account lands, a replay publishes exactly those payments, leaves the other
quarantined rows where they are, keeps input = accepted + quarantined + duplicates, and is audited and in
the catalog. A dry run changes nothing; a replay that would quarantine accepted rows refuses."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from lakehouse import audit, catalog
from lakehouse.datasets import Dataset
from orchestration import replay as r
from orchestration.factory import domain_assets
from orchestration.resources import LakeResource
from quality import metrics
from synthetic import write_landing
from tests.helpers import run_assets
from transforms import common

DAY = dt.date(2024, 1, 2)
ACCOUNT_LIMIT = {"value": 1000.0}  # the rule a test tightens


def known_payments(payments, accounts):
    fields = "id string, account string, amount double"
    parsed = payments.select("dt", "source_file", "line_number", F.from_json("line", fields).alias("p"))
    known = accounts.select(
        "dt", F.get_json_object("line", "$.account").alias("account"), F.lit(True).alias("_known")
    )
    joined = parsed.withColumn("account", F.col("p.account")).join(
        known.distinct(), ["dt", "account"], "left"
    )
    return joined.select(
        "dt",
        "source_file",
        "line_number",
        "p.id",
        "account",
        "p.amount",
        *common.rule_reasons(
            (F.col("p.amount") > ACCOUNT_LIMIT["value"], "amount_over_limit"),
            (F.col("_known").isNull(), "unknown_account"),
        ),
    )


RAW_PAYMENTS = Dataset(
    name="payments", domain="replay", layer="raw", owner="team:qa", landing="payments", description="Lines."
)
RAW_ACCOUNTS = Dataset(
    name="accounts", domain="replay", layer="raw", owner="team:qa", landing="accounts", description="Lines."
)
PAYMENTS = Dataset(
    name="payments",
    domain="replay",
    layer="processed",
    owner="team:qa",
    upstream=(RAW_PAYMENTS.path, RAW_ACCOUNTS.path),
    transform=known_payments,
    quarantine=True,
    primary_key=("id",),
    deduplicate_on=("id",),
    description="Payments of known accounts.",
)
ASSETS = domain_assets([RAW_PAYMENTS, RAW_ACCOUNTS, PAYMENTS])


def _land(lake, accounts: list[str]) -> None:
    payments = [json.dumps({"id": f"p-{i}", "account": "a-1", "amount": 10.0}) for i in range(10)]
    payments += [json.dumps({"id": f"late-{i}", "account": "a-late", "amount": 5.0}) for i in range(3)]
    payments += [json.dumps({"id": "big", "account": "a-1", "amount": 5000.0})]
    payments += [json.dumps({"id": "p-0", "account": "a-1", "amount": 10.0})]  # a duplicate
    write_landing(
        lake,
        "replay",
        DAY,
        {"payments": [payments], "accounts": [[json.dumps({"account": a}) for a in accounts]]},
        {},
    )


def _table(spark, lake, path: str):
    return spark.read.format("delta").load(lake.table_uri(*path.split("/")))


def _version(lake, path: str) -> int:
    return DeltaTable(lake.table_uri(*path.split("/")), storage_options=lake.storage_options).version()


def test_replay_after_late_reference_data_moves_exactly_the_rows_that_now_pass(spark, lake, instance):
    _land(lake, ["a-1"])
    assert run_assets(instance, ASSETS, DAY).success
    held = {row["reason"] for row in _table(spark, lake, PAYMENTS.quarantine_path).collect()}
    assert held == {"unknown_account", "amount_over_limit"}
    assert _table(spark, lake, PAYMENTS.path).count() == 10  # 15 lines: 4 quarantined, 1 duplicate

    _land(lake, ["a-1", "a-late"])  # the late account arrives; only raw accounts is rebuilt
    assert run_assets(instance, domain_assets([RAW_PAYMENTS, RAW_ACCOUNTS]), DAY).success
    lake_resource = LakeResource()
    versions = {p: _version(lake, p) for p in (PAYMENTS.path, PAYMENTS.quarantine_path)}

    dry = r.replay(lake_resource, PAYMENTS, DAY, dry_run=True)
    assert (dry.quarantined, dry.moved, dry.moved_by_reason) == (4, 3, {"unknown_account": 3})
    assert {p: _version(lake, p) for p in versions} == versions  # a dry run changes nothing

    done = r.replay(lake_resource, PAYMENTS, DAY)

    assert (done.moved, done.moved_by_reason, done.published_rows) == (3, {"unknown_account": 3}, 13)
    ids = {row["id"] for row in _table(spark, lake, PAYMENTS.path).collect()}
    assert ids == {f"p-{i}" for i in range(10)} | {"late-0", "late-1", "late-2"}
    [left] = _table(spark, lake, PAYMENTS.quarantine_path).collect()
    assert (left["reason"], json.loads(left["record"])["id"]) == ("amount_over_limit", "big")
    [row] = _table(spark, lake, metrics.metrics_path(PAYMENTS)).collect()
    assert (row["rows"], row["quarantined"], row["run_id"]) == (13, 1, done.run_id)
    assert json.loads(row["quarantined_by_rule"]) == {"amount_over_limit": 1}
    # reconciliation: 15 input lines = 13 accepted + 1 quarantined + 1 duplicate
    assert row["rows"] + row["quarantined"] + 1 == _table(spark, lake, RAW_PAYMENTS.path).count() == 15
    records = audit.read(lake, done.run_id)
    assert [(a["action"], a["step"], a["rows"], a["dry_run"]) for a in records] == [
        ("replay", "publish", 3, False)
    ]
    assert [a["dry_run"] for a in audit.read(lake, dry.run_id)] == [True]
    entry = catalog.get_entry(lake, catalog.dataset_id(PAYMENTS.path))
    assert entry["deltaVersion"] == _version(lake, PAYMENTS.path) > versions[PAYMENTS.path]


def test_replay_refuses_when_accepted_rows_would_be_quarantined(spark, lake, instance, monkeypatch):
    _land(lake, ["a-1"])
    assert run_assets(instance, ASSETS, DAY).success
    versions = {p: _version(lake, p) for p in (PAYMENTS.path, PAYMENTS.quarantine_path)}
    monkeypatch.setitem(ACCOUNT_LIMIT, "value", 1.0)  # the 10 accepted payments and the duplicate break it

    with pytest.raises(r.ReplayRefused, match="11 rows outside the quarantine would now be quarantined"):
        r.replay(LakeResource(), PAYMENTS, DAY)

    assert {p: _version(lake, p) for p in versions} == versions
