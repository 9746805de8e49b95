"""Feast over the curated Delta tables, against real stores: S3 (SeaweedFS), Sail, Delta, SQLite and Redis
online stores, a Dagster instance. Curated tables are written through the lake's Delta writer."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal

import dagster as dg
import pandas as pd
import pytest
from deltalake import DeltaTable
from pyarrow import fs

from lakehouse import delta, features, storage
from lakehouse.config import LakehouseConfig
from lakehouse.features.online import OnlineStore
from orchestration.resources import LakeResource
from tests.helpers import run_assets

D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)
AT = dt.datetime(2024, 1, 1, 9, 30)
STATS = (
    "dt date, user_id string, tenant_id string, region string, order_count bigint, "
    "total_spend decimal(18,2), last_order_at timestamp"
)
RISK = (
    "dt date, account_id string, txn_count bigint, failed_ratio double, max_amount decimal(10,2), "
    "distinct_merchant_categories bigint, night_txn_share double, region string, tenant_id string"
)
BALANCES = (
    "dt date, account_id string, currency string, region string, tenant_id string, "
    "opening_balance decimal(18,2), debits decimal(18,2), credits decimal(18,2), net decimal(18,2), "
    "closing_balance decimal(18,2), min_running_balance decimal(18,2), transaction_count bigint"
)
# one account's balances of D1: written, erased, then written again
ACC_X_BALANCE_D1 = (
    D1, "acc-x", "EUR", "eu-west-1", "t", Decimal(0), Decimal("1.00"), Decimal("3.00"), Decimal("2.00"),
    Decimal("2.00"), Decimal("-1.00"), 2,
)  # fmt: skip


def write(spark, config: LakehouseConfig, table: str, ddl: str, rows: list[tuple], days: list[dt.date]):
    """Replace `days` of a curated table with `rows`, as its asset would."""
    return delta.write_partitions(
        spark.createDataFrame(rows, ddl),
        config.table_uri("curated", *table.split("/")),
        days,
        config.storage_options,
    )


def stats(day: dt.date, user: str, orders: int, spend: str) -> tuple:
    return (day, user, "tenant-a", "eu-west-1", orders, Decimal(spend), AT)


def online(config, refs, key: str, values: list[str]) -> dict:
    return features.online_features(config, refs, [{key: v} for v in values])


@pytest.fixture(params=["sqlite", "redis"])
def store(request, lake, tmp_path, monkeypatch) -> str:
    """The feature store of this test (own registry, snapshots and SQLite file; Redis emptied), applied."""
    monkeypatch.setenv("LAKEHOUSE_FEAST_DIR", str(tmp_path / "feast"))
    monkeypatch.delenv("LAKEHOUSE_FEAST_ONLINE_STORE", raising=False)
    monkeypatch.delenv("LAKEHOUSE_FEAST_REDIS", raising=False)
    if request.param == "redis":
        import redis

        server = request.getfixturevalue("redis_server")
        host, port = server.split(":")
        redis.Redis(host=host, port=int(port)).flushdb()
        monkeypatch.setenv("LAKEHOUSE_FEAST_REDIS", server)
    assert features.apply(lake)  # a fresh registry: everything is created
    assert features.repo_config(lake).online_store.type == request.param
    return request.param


def test_overwrite_and_deletion_reach_online_store_and_training_sets(store, lake, spark):
    table = "commerce/customer_order_stats"
    write(
        spark,
        lake,
        table,
        STATS,
        [
            stats(D1, "tok-a", 1, "10.00"),
            stats(D1, "tok-b", 2, "20.00"),
            stats(D1, "tok-c", 3, "30.00"),
            stats(D2, "tok-a", 4, "40.00"),
            stats(D2, "tok-c", 5, "50.00"),
        ],
        [D1, D2],
    )
    [first] = features.materialize(lake, D1, D2, ["customer_order_stats"])
    assert (first.snapshot_rows, first.entities, first.written, first.deleted) == (5, 3, 3, 0)
    refs = ["customer_order_stats:order_count", "customer_order_stats:total_spend"]
    assert online(lake, refs, "user_id", ["tok-a", "tok-b", "tok-c"]) == {
        "user_id": ["tok-a", "tok-b", "tok-c"],
        "customer_order_stats__order_count": [4, 2, 5],
        "customer_order_stats__total_spend": [40.0, 20.0, 50.0],
    }

    # A backfill of D1 alone leaves the newer D2 values online.
    features.materialize(lake, D1, D1, ["customer_order_stats"])
    assert online(lake, refs, "user_id", ["tok-a", "tok-c"])["customer_order_stats__order_count"] == [4, 5]

    # D2 is rebuilt with a changed value for tok-a and without tok-c; tok-b is deleted from D1 (erased).
    write(spark, lake, table, STATS, [stats(D2, "tok-a", 7, "77.00")], [D2])
    write(spark, lake, table, STATS, [stats(D1, "tok-a", 1, "10.00"), stats(D1, "tok-c", 3, "30.00")], [D1])
    # The replaced files are still in the table's folder (a reader of the folder, as Feast's file offline
    # store is, would see 8 rows); the current version has 3.
    uri = lake.table_uri("curated", "commerce", "customer_order_stats")
    table = DeltaTable(uri, storage_options=lake.storage_options)
    assert len(table.to_pandas()) == 3
    listed = storage.filesystem(lake).get_file_info(fs.FileSelector(storage.fs_path(uri), recursive=True))
    assert len([f for f in listed if f.path.endswith(".parquet")]) > len(table.file_uris()) == 2
    [second] = features.materialize(lake, D2, D2, ["customer_order_stats"])
    assert (second.snapshot_rows, second.entities, second.deleted) == (3, 2, 1)
    assert online(lake, refs, "user_id", ["tok-a", "tok-b", "tok-c"]) == {
        "user_id": ["tok-a", "tok-b", "tok-c"],
        "customer_order_stats__order_count": [7, None, 3],
        "customer_order_stats__total_spend": [77.0, None, 30.0],
    }

    entity_rows = pd.DataFrame(
        {
            "user_id": ["tok-a", "tok-a", "tok-b", "tok-c", "tok-c"],
            "event_timestamp": pd.to_datetime(
                [
                    "2024-01-02T06:00Z",
                    "2024-01-03T06:00Z",
                    "2024-01-03T06:00Z",
                    "2024-01-02T06:00Z",
                    "2024-01-03T06:00Z",
                ]
            ),
            "label": [1, 0, 1, 0, 1],
        }
    )
    result = features.historical_features(lake, "churn", entity_rows)
    assert len(result) == 5
    assert result["customer_order_stats__total_spend"].tolist()[:2] == [10.0, 77.0]
    assert pd.isna(result["customer_order_stats__total_spend"][2])  # deleted customer: no value
    assert result["customer_order_stats__order_count"].tolist()[3:] == [3, 3]  # tok-c's D2 row is gone
    assert result["label"].tolist() == [1, 0, 1, 0, 1]


def _latest_in_table(config, table: str) -> dict[str, int]:
    """Each user's order count on their latest day, from the whole current table: what online must hold."""
    frame = DeltaTable(config.table_uri("curated", *table.split("/")), storage_options=config.storage_options)
    latest = frame.to_pandas().sort_values("dt").drop_duplicates("user_id", keep="last")
    return dict(zip(latest["user_id"], latest["order_count"].astype(int)))


def test_materialization_reads_only_the_run_and_changed_partitions(store, lake, spark):
    table, view = "commerce/customer_order_stats", "customer_order_stats"
    refs = ["customer_order_stats:order_count"]
    D4, D5 = dt.date(2024, 1, 4), dt.date(2024, 1, 5)
    write(spark, lake, table, STATS, [stats(D1, "tok-a", 1, "1.00"), stats(D1, "tok-b", 2, "2.00")], [D1])
    write(spark, lake, table, STATS, [stats(D2, "tok-a", 3, "3.00")], [D2])
    [first] = features.materialize(lake, D1, D2, [view])
    assert first.partitions == (D1, D2) and first.snapshot_rows == 3
    folder = features.offline_dir(lake) + f"/{view}"
    stamps = {p: os.stat(f"{folder}/part-{p}.parquet").st_mtime_ns for p in ("2024-01-01", "2024-01-02")}

    # A new day: only its partition is exported and read; the others' files are not rewritten.
    write(spark, lake, table, STATS, [stats(D3, "tok-b", 5, "5.00"), stats(D3, "tok-c", 6, "6.00")], [D3])
    [daily] = features.materialize(lake, D3, D3, [view])
    assert (daily.partitions, daily.snapshot_rows, daily.entities, daily.written) == ((D3,), 2, 2, 2)
    assert {p: os.stat(f"{folder}/part-{p}.parquet").st_mtime_ns for p in stamps} == stamps
    values = online(lake, refs, "user_id", ["tok-a", "tok-b", "tok-c"])["customer_order_stats__order_count"]
    assert values == [3, 5, 6] == [_latest_in_table(lake, table)[u] for u in ("tok-a", "tok-b", "tok-c")]

    # D1 rebuilt without its own materialization: the next run finds its changed files and re-exports it;
    # tok-a's newer D2 value stays online.
    write(spark, lake, table, STATS, [stats(D1, "tok-a", 9, "9.00"), stats(D1, "tok-b", 2, "2.00")], [D1])
    write(spark, lake, table, STATS, [stats(D4, "tok-c", 7, "7.00")], [D4])
    [changed] = features.materialize(lake, D4, D4, [view])
    assert changed.partitions == (D1, D4)
    assert os.stat(f"{folder}/part-2024-01-02.parquet").st_mtime_ns == stamps["2024-01-02"]
    assert online(lake, refs, "user_id", ["tok-a", "tok-c"])["customer_order_stats__order_count"] == [3, 7]

    # D3 rebuilt without tok-b: its online row came from D3, so it falls back to its latest other row (D1).
    write(spark, lake, table, STATS, [stats(D3, "tok-c", 6, "6.00")], [D3])
    [dropped] = features.materialize(lake, D3, D3, [view])
    assert (dropped.partitions, dropped.deleted) == ((D3,), 0)
    expected = _latest_in_table(lake, table)
    assert expected == {"tok-a": 3, "tok-b": 2, "tok-c": 7}
    users = sorted(expected)
    assert online(lake, refs, "user_id", users)["customer_order_stats__order_count"] == [
        expected[u] for u in users
    ]

    # Proof that nothing else is read: D2's data files vanish behind the table's back, and D5 still
    # materializes (a read of D2 would fail on the missing files).
    uri = lake.table_uri("curated", "commerce", "customer_order_stats")
    d2_files = [
        f for f in DeltaTable(uri, storage_options=lake.storage_options).file_uris() if "2024-01-02" in f
    ]
    assert d2_files
    storage.delete_files(lake, d2_files)
    write(spark, lake, table, STATS, [stats(D5, "tok-a", 8, "8.00")], [D5])
    [last] = features.materialize(lake, D5, D5, [view])
    assert (last.partitions, last.written) == ((D5,), 1)
    assert online(lake, refs, "user_id", ["tok-a"])["customer_order_stats__order_count"] == [8]

    # The online store is read for the entities asked only, not listed whole (that grew with every
    # entity it ever held): tok-b and tok-c are online too, tok-z never was.
    feast = features.feature_store(lake)
    found = OnlineStore(feast).timestamps(feast.get_feature_view(view), ["tok-a", "tok-z"])
    assert list(found) == ["tok-a"]


def test_point_in_time_training_set_keeps_every_row(store, lake, spark):
    # account x: failed_ratio 0.1 known at D2 00:00 (its D1 row), 0.9 from D3 00:00 (its D2 row); TTL 7 days.
    write(
        spark,
        lake,
        "finance/account_risk_features",
        RISK,
        [
            (D1, "acc-x", 10, 0.1, Decimal("5.00"), 2, 0.0, "eu-west-1", "t"),
            (D2, "acc-x", 20, 0.9, Decimal("9.00"), 3, 0.5, "eu-west-1", "t"),
        ],
        [D1, D2],
    )
    write(
        spark,
        lake,
        "finance/account_daily_balances",
        BALANCES,
        [ACC_X_BALANCE_D1],
        [D1],
    )
    write(spark, lake, "commerce/customer_order_stats", STATS, [stats(D1, "tok-a", 1, "10.00")], [D1])
    before_t = pd.Timestamp("2024-01-03T00:00Z") - pd.Timedelta(microseconds=1)
    entity_rows = pd.DataFrame(
        {
            "account_id": ["acc-x", "acc-x", "acc-x", "acc-x", "acc-unknown", "acc-x"],
            "user_id": ["tok-a", "tok-a", "tok-zz", "tok-a", "tok-a", "tok-a"],
            "event_timestamp": [
                pd.Timestamp("2024-01-02T12:00Z"),
                before_t,
                pd.Timestamp("2024-01-03T00:00Z"),
                pd.Timestamp("2024-01-05T00:00Z"),
                pd.Timestamp("2024-01-03T00:00Z"),
                pd.Timestamp("2024-01-20T00:00Z"),
            ],  # past the 7-day TTL of both account views
            "is_fraud": [False, False, True, False, True, False],
        }
    )
    result = features.historical_features(lake, "fraud_scoring", entity_rows)
    assert len(result) == len(entity_rows)
    assert result["is_fraud"].tolist() == entity_rows["is_fraud"].tolist()
    ratio = result["account_risk__failed_ratio"]
    assert ratio[:4].tolist() == [0.1, 0.1, 0.9, 0.9]  # old before T, new from T on
    assert ratio[4:].isna().all()  # unknown account; outside the TTL
    assert result["account_balance__net"][:2].tolist() == [2.0, 2.0]
    assert result["customer_order_stats__order_count"].tolist()[:2] == [1, 1]
    assert pd.isna(result["customer_order_stats__order_count"][2])
    assert result["customer_order_stats__order_count"][5] == 1  # 30-day TTL still covers it

    written = features.write_training_set(lake, spark, "fraud_scoring", entity_rows, "fraud")
    assert written.row_count == 6 and written.partitions == (
        D2,
        D3,
        dt.date(2024, 1, 5),
        dt.date(2024, 1, 20),
    )
    table = (
        spark.read.format("delta")
        .load(features.training_set_uri(lake, "fraud"))
        .orderBy("event_timestamp", "account_id")
    )
    assert [r["account_risk__failed_ratio"] for r in table.collect()] == [0.1, 0.1, None, 0.9, 0.9, None]


def test_erasure_api_deletes_an_entity_from_every_view(store, lake, spark):
    write(
        spark,
        lake,
        "finance/account_risk_features",
        RISK,
        [(D1, acc, 10, 0.1, Decimal("5.00"), 2, 0.0, "eu-west-1", "t") for acc in ("acc-x", "acc-y")],
        [D1],
    )
    write(
        spark,
        lake,
        "finance/account_daily_balances",
        BALANCES,
        [
            (
                D1,
                acc,
                "EUR",
                "eu-west-1",
                "t",
                Decimal(0),
                Decimal("1.00"),
                Decimal("3.00"),
                Decimal("2.00"),
                Decimal("2.00"),
                Decimal("-1.00"),
                2,
            )
            for acc in ("acc-x", "acc-y")
        ],
        [D1],
    )
    features.materialize(lake, D1, D1, ["account_risk", "account_balance"])
    refs = ["account_risk:txn_count", "account_balance:net"]
    assert online(lake, refs, "account_id", ["acc-x", "acc-y"])["account_balance__net"] == [2.0, 2.0]
    # acc-y leaves one of the two tables: only that view loses it (Redis keeps one hash per entity for both).
    write(
        spark,
        lake,
        "finance/account_risk_features",
        RISK,
        [(D1, "acc-x", 10, 0.1, Decimal("5.00"), 2, 0.0, "eu-west-1", "t")],
        [D1],
    )
    [risk] = features.materialize(lake, D1, D1, ["account_risk"])
    assert (risk.entities, risk.deleted) == (1, 1)
    assert online(lake, refs, "account_id", ["acc-y"]) == {
        "account_id": ["acc-y"],
        "account_risk__txn_count": [None],
        "account_balance__net": [2.0],
    }
    assert [features.entity_for(c) for c in ("user_id", "account_id", "device_id", "tenant_id", "email")] == [
        "customer",
        "account",
        "device",
        "tenant",
        None,
    ]
    assert features.delete_online_entities(lake, "account", ["acc-x", "acc-nobody"]) == 1
    assert online(lake, refs, "account_id", ["acc-x", "acc-y"]) == {
        "account_id": ["acc-x", "acc-y"],
        "account_risk__txn_count": [None, None],
        "account_balance__net": [None, 2.0],
    }
    assert features.delete_online_entities(lake, "account", ["acc-x"]) == 0
    # Erasure removes the subject from the curated tables first; the offline snapshots then follow them.
    # Online it goes at once; the balances snapshot still holds it while the table does.
    assert features.erase_subject_online(
        lake, "account_id", ["acc-y", "acc-y-token"]
    ) == features.OnlineErasure("account", ("account_balance", "account_risk"), removed=1, remaining=1)
    assert online(lake, refs, "account_id", ["acc-y"])["account_balance__net"] == [None]
    write(
        spark,
        lake,
        "finance/account_daily_balances",
        BALANCES,
        [ACC_X_BALANCE_D1],
        [D1],
    )
    assert features.erase_subject_online(
        lake, "account_id", ["acc-y", "acc-y-token"]
    ) == features.OnlineErasure("account", ("account_balance", "account_risk"), removed=0, remaining=0)
    assert features.erase_subject_online(lake, "email", ["someone@example.com"]) is None
    with pytest.raises(ValueError, match="unknown entity"):
        features.delete_online_entities(lake, "patient", ["acc-y"])


def test_dagster_assets_apply_materialize_and_write_a_training_set(
    lake, spark, instance, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("LAKEHOUSE_FEAST_DIR", str(tmp_path / "feast"))
    monkeypatch.delenv("LAKEHOUSE_FEAST_REDIS", raising=False)
    from orchestration import cli
    from orchestration import features as assets

    write(
        spark,
        lake,
        "commerce/customer_order_stats",
        STATS,
        [stats(D1, "tok-a", 1, "10.00"), stats(D2, "tok-a", 2, "25.50"), stats(D2, "tok-b", 1, "5.00")],
        [D1, D2],
    )
    # analytics consent on record for tok-a and tok-b (churn training sets leave out users without it)
    delta.write_partitions(
        spark.createDataFrame(
            [(day, user, True) for day in (D1, D2, D3) for user in ("tok-a", "tok-b")],
            "dt date, user_id string, consent_analytics boolean",
        ),
        lake.table_uri("processed", "commerce", "users"),
        [D1, D2, D3],
        lake.storage_options,
    )
    wanted = {assets.REGISTRY_KEY, assets.view_key("customer_order_stats"), assets.TRAINING_KEY}
    selected = [a for a in assets.ASSETS if set(a.keys) & wanted]
    result = run_assets(instance, selected, D1, D2)
    assert result.success
    online_meta = result.asset_materializations_for_node("features__commerce__customer_order_stats")[
        0
    ].metadata
    assert (online_meta["written"].value, online_meta["deleted"].value) == (2, 0)
    assert assets.feast_registry_in_sync(lake=LakeResource()).passed
    features.feature_store(lake).delete_feature_view("device_hourly")  # the registry drifts from the code
    check = assets.feast_registry_in_sync(lake=LakeResource())
    assert not check.passed and check.metadata["pending_changes"].value == [
        "CREATE feature_view device_hourly"
    ]
    assert assets.feast_registry(dg.build_asset_context(), lake=LakeResource()).metadata["changes"] == [
        "CREATE feature_view device_hourly"
    ]
    assert features.registry_changes(lake) == []
    assert online(lake, "churn", "user_id", ["tok-a", "tok-b"])["customer_order_stats__total_spend"] == [
        25.5,
        5.0,
    ]
    rows = (
        spark.read.format("delta")
        .load(features.training_set_uri(lake, "churn"))
        .orderBy("dt", "user_id")
        .collect()
    )
    # Each day's customers at the day's start: the D2 rows see tok-a's D1 stats, tok-b has none yet.
    assert [
        (r["dt"], r["user_id"], r["label_spend"], r["customer_order_stats__order_count"]) for r in rows
    ] == [(D1, "tok-a", 10.0, None), (D2, "tok-a", 25.5, 1), (D2, "tok-b", 5.0, None)]

    assert cli.main(["features", "lookup", "--service", "churn", "--sample", "2"]) == 0
    printed = capsys.readouterr().out
    assert "tok-a" in printed and "25.5" in printed and "tok-b" in printed

    assert features.feature_records(lake, "churn", [{"user_id": "tok-b"}, {"user_id": "tok-none"}]) == [
        {
            "featureId": f"customer_order_stats:{name}",
            "entity": "customer",
            "entityKey": "tok-b",
            "name": name,
            "type": kind,
            "value": value,
            "timestamp": "2024-01-03T00:00:00Z",
            "source": "curated.commerce.customer_order_stats",
            "tags": ["online", "ttl:2592000s"],
        }
        for name, kind, value in (("order_count", "int", 1), ("total_spend", "float", 5.0))
    ]

    labels = tmp_path / "labels.csv"
    labels.write_text(
        "user_id,event_timestamp,churned\ntok-a,2024-01-03T00:00:00Z,0\ntok-zz,2024-01-03T00:00:00Z,1\n"
    )
    assert (
        cli.main(
            ["features", "training-set", "--service", "churn", "--entities", str(labels), "--name", "cli"]
        )
        == 0
    )
    rows = (
        spark.read.format("delta").load(features.training_set_uri(lake, "cli")).orderBy("user_id").collect()
    )
    # tok-zz has no analytics consent on record: left out
    assert [(r["user_id"], r["churned"], r["customer_order_stats__total_spend"]) for r in rows] == [
        ("tok-a", 0, 25.5)
    ]
    assert "1 users left out without analytics consent" in capsys.readouterr().out


def test_feast_cli_uses_the_same_configuration(lake, spark, tmp_path, monkeypatch):
    """`feast apply` and `feast materialize` from feature_repo/, with `make env`'s exports, act on the store
    the Python code reads."""
    from orchestration import cli

    monkeypatch.setenv("LAKEHOUSE_FEAST_DIR", str(tmp_path / "feast"))
    monkeypatch.delenv("LAKEHOUSE_FEAST_REDIS", raising=False)
    write(
        spark,
        lake,
        "ai_ops/tenant_daily_cost_vs_budget",
        TENANT_COST,
        [
            (
                D1,
                "tenant-a",
                "eu-west-1",
                "2024-01",
                3,
                100,
                50,
                Decimal("1.5"),
                Decimal("31.00"),
                Decimal("1.000000"),
                Decimal("0.8"),
                Decimal("1.0"),
                Decimal("1.500000"),
                True,
                True,
            )
        ],
        [D1],
    )
    env = {**os.environ, **features.feast_environment(lake)}
    feast = [sys.executable, "-m", "feast.cli.cli"]
    subprocess.run([*feast, "apply"], cwd=features.REPO, env=env, check=True, capture_output=True)
    assert features.registry_changes(lake) == []
    [view] = [v for v in features.feature_store(lake).list_feature_views() if v.name == "tenant_ai_cost"]
    features.export_snapshot(lake, view)
    subprocess.run(
        [*feast, "materialize", "2024-01-01T00:00:00", "2024-01-03T00:00:00", "--views", "tenant_ai_cost"],
        cwd=features.REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    assert online(
        lake, ["tenant_ai_cost:budget_used_ratio", "tenant_ai_cost:is_critical"], "tenant_id", ["tenant-a"]
    ) == {
        "tenant_id": ["tenant-a"],
        "tenant_ai_cost__budget_used_ratio": [1.5],
        "tenant_ai_cost__is_critical": [True],
    }

    from feast.ui_server import get_app

    routes = {
        route.path for route in get_app(features.feature_store(lake), "lakehouse").routes
    }  # `feast ui`'s app
    assert {"/projects-list.json", "/api/v1"} <= routes

    # The day is rebuilt with a lower spend; `lakehouse features materialize` brings the store in line.
    write(
        spark,
        lake,
        "ai_ops/tenant_daily_cost_vs_budget",
        TENANT_COST,
        [
            (
                D1,
                "tenant-a",
                "eu-west-1",
                "2024-01",
                1,
                10,
                5,
                Decimal("0.5"),
                Decimal("31.00"),
                Decimal("1.000000"),
                Decimal("0.8"),
                Decimal("1.0"),
                Decimal("0.500000"),
                False,
                False,
            )
        ],
        [D1],
    )
    assert (
        cli.main(
            [
                "features",
                "materialize",
                "--start",
                "2024-01-01",
                "--end",
                "2024-01-01",
                "--view",
                "tenant_ai_cost",
            ]
        )
        == 0
    )
    assert online(
        lake, ["tenant_ai_cost:budget_used_ratio", "tenant_ai_cost:is_critical"], "tenant_id", ["tenant-a"]
    )["tenant_ai_cost__budget_used_ratio"] == [0.5]


TENANT_COST = (
    "dt date, tenant_id string, region string, period string, runs bigint, tokens_in bigint, "
    "tokens_out bigint, cost_usd decimal(28,9), monthly_budget_usd decimal(12,2), "
    "daily_budget_usd decimal(18,6), warning_threshold decimal(5,2), critical_threshold decimal(5,2), "
    "budget_used_ratio decimal(18,6), is_warning boolean, is_critical boolean"
)
