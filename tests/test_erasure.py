"""Erasure of one commerce user through Dagster: landing, raw, processed, curated and quarantine, audited."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pandas as pd
import pytest
from deltalake import DeltaTable

from assets import commerce as a
from lakehouse import audit, catalog, erasure, features, landing, storage
from orchestration import features as fa
from orchestration.factory import domain_assets
from synthetic import commerce as g
from synthetic import write_landing
from tests.helpers import run_assets

DAY = dt.date(2024, 1, 2)
TABLES = {  # dataset id -> how the subject appears: by column (value or token) or inside records as received
    "raw.commerce.users": "line",
    "raw.commerce.orders": "line",
    "processed.commerce.users": "user_id",
    "processed.commerce.orders": "user_id",
    "quarantine.commerce.orders": "record",
    "curated.commerce.orders_conformed": "user_id",
    "curated.commerce.customer_order_stats": "user_id",
    "features.training_sets.churn": "user_id",
}


def _first_orders_by_user(lines: list[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if (
            isinstance(record, dict)
            and record.get("user_id")
            and record.get("currency") in ("EUR", "USD", "GBP")
        ):
            found.setdefault(record["user_id"], record)
    return found


@pytest.fixture()
def commerce_lake(lake, instance, tmp_path, monkeypatch):
    """One day of commerce with a subject who has orders, and one more order of theirs that is quarantined;
    their customer features online (SQLite) and in the churn training set."""
    monkeypatch.setenv("LAKEHOUSE_FEAST_DIR", str(tmp_path / "feast"))
    monkeypatch.delenv("LAKEHOUSE_FEAST_REDIS", raising=False)
    generated = g.generate_day(DAY, 400)
    orders = _first_orders_by_user([line for f in generated.sources["orders"] for line in f])
    subject, other = list(orders)[:2]
    refused = {**orders[subject], "order_id": "order-refused-for-erasure", "currency": "JPY"}
    sources = {**generated.sources, "orders": [*generated.sources["orders"], [json.dumps(refused)]]}
    write_landing(lake, "commerce", DAY, sources, generated.record)
    wanted = {fa.REGISTRY_KEY, fa.view_key("customer_order_stats"), fa.TRAINING_KEY}
    assert run_assets(
        instance, [*domain_assets(a.DATASETS), *(f for f in fa.ASSETS if set(f.keys) & wanted)], DAY
    ).success
    return subject, other


def run_erasure_job(instance, request_id: str, **config) -> dg.ExecuteInProcessResult:
    """`erasure_job` as the UI launches it: with a request's id, never the subject's value."""
    from orchestration.definitions import defs

    run_config = {"ops": {"erase_subject": {"config": {"request_id": request_id, **config}}}}
    return defs.resolve_job_def("erasure_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config=run_config
    )


def _uri(lake, dataset_id: str) -> str:
    return catalog.get_entry(lake, dataset_id)["location"]


def _online_spend(lake, value: str) -> list:
    token = erasure.subject_token(value, lake.token_key())
    return features.online_features(lake, "churn", [{"user_id": token}])["customer_order_stats__total_spend"]


def _snapshot_keys(lake) -> set:
    view = features.feature_store(lake).get_feature_view("customer_order_stats")
    return set(pd.read_parquet(view.batch_source.path, columns=["user_id"])["user_id"])


def _matching(spark, lake, dataset_id: str, value: str, version: int | None = None) -> int:
    token = erasure.subject_token(value, lake.token_key())
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    rows = reader.load(_uri(lake, dataset_id))
    column = TABLES[dataset_id]
    if column in ("line", "record"):
        return rows.where(f"instr({column}, '{value}') > 0 OR instr({column}, '{token}') > 0").count()
    return rows.where(f"{column} IN ('{value}', '{token}')").count()


def _landing_mentions(lake, value: str) -> int:
    return sum(
        storage.read_text(lake, uri).count(value)
        for source in ("users", "orders", "order_items")
        for uri in landing.source_files(lake, "commerce", source)
    )


def test_a_subject_is_erased_everywhere_verified_audited_and_others_are_untouched(
    spark, lake, commerce_lake, instance
):
    subject, other = commerce_lake
    token = erasure.subject_token(subject, lake.token_key())
    before = {d: _matching(spark, lake, d, subject) for d in TABLES}
    assert all(before.values()), before  # the subject is in every table, quarantine included
    others = {d: _matching(spark, lake, d, other) for d in TABLES}
    totals = {d: spark.read.format("delta").load(_uri(lake, d)).count() for d in TABLES}
    versions = {d: DeltaTable(_uri(lake, d), storage_options=lake.storage_options).version() for d in TABLES}
    landing_before = _landing_mentions(lake, subject)
    assert landing_before >= 3  # the user's line, their orders
    assert _online_spend(lake, subject)[0] is not None and _online_spend(lake, other)[0] is not None
    assert token in _snapshot_keys(lake)

    result = run_erasure_job(instance, erasure.file_request(lake, "user_id", subject).request_id)
    assert result.success

    assert {d: _matching(spark, lake, d, subject) for d in TABLES} == {d: 0 for d in TABLES}
    assert _landing_mentions(lake, subject) == 0
    assert _online_spend(lake, subject) == [None]
    assert _online_spend(lake, other)[0] is not None
    assert token not in _snapshot_keys(lake)
    assert {d: _matching(spark, lake, d, other) for d in TABLES} == others
    assert {d: spark.read.format("delta").load(_uri(lake, d)).count() for d in TABLES} == {
        d: totals[d] - before[d] for d in TABLES
    }
    # time travel: the versions from before the erasure cannot return the subject any more
    for dataset_id, version in versions.items():
        try:
            found = _matching(spark, lake, dataset_id, subject, version=version)
        except Exception as error:  # the files of that version are vacuumed
            assert "not found" in str(error).lower() or "no such" in str(error).lower(), error
        else:
            assert found == 0, dataset_id

    for dataset_id in TABLES:  # the catalog's counts follow
        assert catalog.get_entry(lake, dataset_id)["rowCount"] == totals[dataset_id] - before[dataset_id]

    records = audit.read(lake, result.run_id)
    by_target = {r["target"]: r for r in records}
    for dataset_id in TABLES:
        assert by_target[dataset_id]["rows"] == before[dataset_id]
        assert by_target[dataset_id]["verified"] is True
    assert by_target["online.customer"]["rows"] == 1 and by_target["online.customer"]["verified"] is True
    assert (
        by_target["landing.commerce.orders"]["rows"] >= 2 and by_target["landing.commerce.users"]["rows"] >= 1
    )
    summary = by_target["*"]
    assert summary["step"] == "verify" and summary["verified"] is True
    assert {r["subject_token"] for r in records} == {token} and {r["subject_column"] for r in records} == {
        "user_id"
    }
    assert subject not in json.dumps(records, default=str)  # the audit names the token, never the subject

    again = run_erasure_job(instance, erasure.file_request(lake, "user_id", subject).request_id)
    assert again.success
    rerun = audit.read(lake, again.run_id)
    assert sum(r["rows"] + r["files"] for r in rerun if r["step"] != "verify") == 0
    assert all(r["verified"] for r in rerun)


def test_a_subject_column_no_dataset_declares_is_refused(lake, commerce_lake, capsys):
    from orchestration.cli import main

    assert main(["erase", "passport_number", "X1234567"]) == 1
    message = capsys.readouterr().err
    assert "no catalogued dataset names 'passport_number' as a subject column" in message
    assert "user_id" in message
    assert audit.read(lake) == []
