"""Erasure in every domain whose datasets declare subjects (events, finance, ai_ops; commerce in
test_erasure*.py), through Dagster, with the Redis online store; iot declares none."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import redis
from deltalake import DeltaTable

from assets import ai_ops, events, finance, iot
from lakehouse import audit, erasure, features
from orchestration import features as fa
from orchestration.definitions import DATASETS
from orchestration.factory import domain_assets
from synthetic import ai_ops as g_ai_ops
from synthetic import events as g_events
from synthetic import finance as g_finance
from synthetic import write_landing
from tests.helpers import run_assets
from tests.test_erasure import run_erasure_job
from tests.test_erasure_safety import holding, places

DAY = dt.date(2024, 1, 3)
GENERATORS = {"events": (g_events, 800), "finance": (g_finance, 400), "ai_ops": (g_ai_ops, 400)}


def test_every_raw_dataset_feeding_a_subject_column_declares_where_the_subject_is():
    """A processed dataset with a subject column parsed from raw lines: its raw input says where it is."""
    by_path = {d.path: d for d in DATASETS}
    for dataset in DATASETS:
        raw = [by_path[p] for p in dataset.upstream if p.startswith("raw/")]
        if dataset.layer == "processed" and raw:
            for column in dataset.subject_columns:
                assert any(column in r.subject_paths for r in raw), (dataset.path, column)
    assert not any(d.subjects for d in iot.DATASETS)


def _values(lines: list[str], key: str) -> set[str]:
    found = set()
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get(key), str):
            found.add(record[key])
    return found


@pytest.fixture()
def lake_with_three_domains(lake, instance, tmp_path, monkeypatch, redis_server):
    monkeypatch.setenv("LAKEHOUSE_FEAST_DIR", str(tmp_path / "feast"))
    monkeypatch.delenv("LAKEHOUSE_FEAST_ONLINE_STORE", raising=False)
    host, port = redis_server.split(":")
    redis.Redis(host=host, port=int(port)).flushdb()
    monkeypatch.setenv("LAKEHOUSE_FEAST_REDIS", redis_server)
    lines = {}
    for domain, (generator, rows) in GENERATORS.items():
        generated = generator.generate_day(DAY, rows)
        write_landing(lake, domain, DAY, generated.sources, generated.record)
        lines.update(
            {
                (domain, source): [line for f in files for line in f]
                for source, files in generated.sources.items()
            }
        )
    wanted = {fa.REGISTRY_KEY, fa.view_key("account_risk")}
    assets = [
        *domain_assets(events.DATASETS),
        *domain_assets(finance.DATASETS),
        *domain_assets(ai_ops.DATASETS),
        *(f for f in fa.ASSETS if set(f.keys) & wanted),
    ]
    assert run_assets(instance, assets, DAY).success
    assert features.repo_config(lake).online_store.type == "redis"
    return lines


def _erase_and_check(
    spark, lake, instance, column: str, value: str, keys: tuple[str, ...]
) -> tuple[dict, dict]:
    """Erase through the job; every place's removed rows are exactly those holding the subject, verified."""
    held = holding(spark, lake, value, column, keys)
    totals = {
        target: DeltaTable(uri, storage_options=lake.storage_options).count()
        for target, uri in places(lake, column).items()
        if not target.startswith("landing.")
    }
    result = run_erasure_job(instance, erasure.file_request(lake, column, value).request_id)
    assert result.success
    records = audit.read(lake, result.run_id)
    assert records[-1]["target"] == "*" and records[-1]["verified"] is True
    by_target = {r["target"]: r for r in records}
    assert {t: by_target[t]["rows"] for t in held} == held
    assert holding(spark, lake, value, column, keys) == {t: 0 for t in held}
    for target, uri in places(lake, column).items():  # nobody else's rows went
        if target in totals:
            left = DeltaTable(uri, storage_options=lake.storage_options).count()
            assert left == totals[target] - held[target], target
    return held, by_target


def test_a_user_and_an_account_are_erased_in_events_ai_ops_and_finance_with_redis(
    spark, lake, instance, lake_with_three_domains
):
    lines = lake_with_three_domains
    in_both = _values(lines["events", "events"], "userId") & _values(lines["ai_ops", "agent_runs"], "user_id")
    user = sorted(in_both)[0]
    held, _ = _erase_and_check(spark, lake, instance, "user_id", user, ("userId", "user_id"))
    for dataset_id in (
        "raw.events.events",
        "processed.events.events",
        "landing.events.events",
        "raw.ai_ops.agent_runs",
        "processed.ai_ops.agent_runs",
        "landing.ai_ops.agent_runs",
    ):
        assert held[dataset_id] > 0, dataset_id

    transactions = [
        json.loads(line)
        for line in lines["finance", "transactions"]
        if line.startswith("{") and line.endswith("}")
    ]
    account = sorted(
        {t["account_id"] for t in transactions if isinstance(t, dict) and t.get("account_id")}
        & _values(lines["finance", "accounts"], "account_id")
    )[0]
    token = erasure.subject_token(account, lake.token_key())
    online = features.online_features(lake, ["account_risk:txn_count"], [{"account_id": token}])
    assert online["account_risk__txn_count"][0] is not None
    held, audited = _erase_and_check(spark, lake, instance, "account_id", account, ("account_id",))
    for dataset_id in (
        "raw.finance.accounts",
        "raw.finance.transactions",
        "processed.finance.transactions",
        "curated.finance.account_risk_features",
        "landing.finance.transactions",
    ):
        assert held[dataset_id] > 0, dataset_id
    online = features.online_features(lake, ["account_risk:txn_count"], [{"account_id": token}])
    assert online["account_risk__txn_count"] == [None]
    assert audited["online.account"]["rows"] == 1 and audited["online.account"]["verified"] is True
