"""Data residency on real S3 with one bucket per region: a resident dataset's rows live in their region's
bucket only, tenants decide which regions a row may be stored in, crossing regions with personal data is
refused and audited, and the catalog, erasure and retention follow every regional root."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import uuid
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable

from lakehouse import audit, catalog, erasure, retention, storage
from lakehouse.config import DEFAULT_REGIONS, LakehouseConfig, UnknownRegionError, region_roots
from lakehouse.lake import Lake, ResidentWriteResult
from lakehouse.residency import ResidencyError, check_crossings
from orchestration.factory import domain_assets
from synthetic import GeneratedDay
from synthetic.ai_ops import tenant_records
from synthetic.population import TENANTS
from tests.helpers import run_assets

REPO = Path(__file__).resolve().parents[1]
DAY = dt.date(2025, 6, 2)
RUNS = "processed/ai_ops/agent_runs"


def test_region_roots_default_to_a_bucket_per_region_and_follow_the_variable(monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_REGION_ROOTS", raising=False)
    assert region_roots("s3://lakehouse/tests/x") == {
        region: f"s3://lakehouse-{region}/tests/x" for region in DEFAULT_REGIONS
    }
    monkeypatch.setenv("LAKEHOUSE_REGION_ROOTS", "eu=s3://lake-eu/lakehouse/, us=s3://lake-us/lakehouse")
    assert region_roots("s3://lakehouse") == {"eu": "s3://lake-eu/lakehouse", "us": "s3://lake-us/lakehouse"}
    monkeypatch.setenv("LAKEHOUSE_REGION_ROOTS", "eu=s3://lake-eu,eu=s3://other")
    with pytest.raises(ValueError, match="names region 'eu' twice"):
        region_roots("s3://lakehouse")
    monkeypatch.setenv("LAKEHOUSE_REGION_ROOTS", "eu")
    with pytest.raises(ValueError, match="expected region=root, got 'eu'"):
        region_roots("s3://lakehouse")


def _frame(spark, rows):
    return spark.createDataFrame(
        [(dt.date.fromisoformat(day), key, region) for day, key, region in rows],
        "dt date, key string, region string",
    )


def _versions(config: LakehouseConfig, uris: dict[str, str]) -> dict[str, int]:
    return {r: DeltaTable(u, storage_options=config.storage_options).version() for r, u in uris.items()}


def test_each_region_replaces_exactly_the_days_written_and_unknown_regions_commit_nothing(spark, lake):
    store = Lake()
    path = "processed/demo/resident"
    d1, d2 = dt.date(2025, 1, 1), dt.date(2025, 1, 2)
    first = store.write(
        path,
        _frame(
            spark,
            [
                ("2025-01-01", "a", "us-east-1"),
                ("2025-01-01", "b", "eu-west-1"),
                ("2025-01-02", "c", "us-east-1"),
            ],
        ),
        [d1, d2],
        region_column="region",
    )
    assert isinstance(first, ResidentWriteResult)
    assert {r: w.rows_per_partition for r, w in first.regions.items()} == {
        "ap-southeast-1": {d1: 0, d2: 0},
        "eu-west-1": {d1: 1, d2: 0},
        "us-east-1": {d1: 1, d2: 1},
    }
    # Rewriting day 1 with eu rows only empties us's day 1 and leaves its day 2.
    store.write(path, _frame(spark, [("2025-01-01", "d", "eu-west-1")]), [d1], region_column="region")
    rows, versions = store.read(path, [d1, d2])
    assert sorted((r["dt"], r["key"], r["region"]) for r in rows.collect()) == [
        (d1, "d", "eu-west-1"),
        (d2, "c", "us-east-1"),
    ]
    assert isinstance(versions, dict) and sorted(versions) == sorted(DEFAULT_REGIONS)
    assert store.rows_per_partition(path, [d1, d2], versions) == {d1: 1, d2: 1}
    # A region without a root is refused before anything commits, never written to the default root.
    before = _versions(lake, store.locations(path))
    with pytest.raises(UnknownRegionError, match="sa-east-1 have no storage root"):
        store.write(
            path,
            _frame(spark, [("2025-01-01", "e", "eu-west-1"), ("2025-01-01", "f", "sa-east-1")]),
            [d1],
            region_column="region",
        )
    assert _versions(lake, store.locations(path)) == before
    assert storage.list_tree(lake, store.uri(path)) == {}


# --------------------------------------------------------------------------------------------- end to end


def _tenant_lines() -> list[str]:
    lines = [json.dumps(record) for record in tenant_records(TENANTS)]
    bad = {"tenant_id": "tenant-odd", "name": "Odd", "plan_id": "p", "status": "active"}
    return [*lines, json.dumps({**bad, "data_region": "eu-west-1", "allowed_regions": ["us-east-1"]})]


def _budget_lines() -> list[str]:
    return [
        json.dumps(
            {
                "tenant_id": t.tenant_id,
                "region": t.region,
                "period": f"{DAY:%Y-%m}",
                "amount": 1000,
                "currency": "USD",
                "warning_threshold": 0.8,
                "critical_threshold": 1.0,
                "snapshot_date": DAY.isoformat(),
            }
        )
        for t in TENANTS
    ]


# run id -> (tenant, region, user): acme may store in us-east-1 and eu-west-1, globex only in eu-west-1
RUN_ROWS = {
    "r1": ("tenant-acme", "us-east-1", "user-alice"),
    "r2": ("tenant-acme", "eu-west-1", "user-alice"),
    "r3": ("tenant-globex", "eu-west-1", "user-bob"),
    "r4": ("tenant-globex", "us-east-1", "user-bob"),  # not allowed for globex: quarantined
    "r5": ("tenant-umbrella", "ap-southeast-1", "user-carol"),
    "r6": ("tenant-initech", "us-east-1", None),
}
STORED = {"us-east-1": {"r1", "r6"}, "eu-west-1": {"r2", "r3"}, "ap-southeast-1": {"r5"}}


def _run_lines() -> list[str]:
    return [
        json.dumps(
            {
                "run_id": run_id,
                "tenant_id": tenant,
                "region": region,
                "user_id": user,
                "workflow": "support",
                "model": "gpt-4o-mini",
                "provider": "openai",
                "tokens_in": 100,
                "tokens_out": 20,
                "latency_ms": 300,
                "cost_usd": 0.000027,
                "status": "success",
                "started_at": f"{DAY.isoformat()}T10:00:00.000Z",
                "prompt_excerpt": "hello",
            }
        )
        for run_id, (tenant, region, user) in RUN_ROWS.items()
    ]


@pytest.fixture(scope="module")
def resident_lake(s3_server, spark, tmp_path_factory):
    """One day of ai_ops runs, tenants and budgets built through Dagster with agent_runs resident."""
    from assets import ai_ops

    datasets = [
        ai_ops.RAW_TENANTS,
        ai_ops.RAW_BUDGETS,
        ai_ops.RAW_RUNS,
        ai_ops.TENANTS,
        ai_ops.TENANT_BUDGETS,
        dataclasses.replace(ai_ops.AGENT_RUNS, resident=True),
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_ROOT", f"s3://lakehouse/tests/residency-{uuid.uuid4().hex[:8]}")
        config = LakehouseConfig.from_env()
        sources = {
            "tenants": [_tenant_lines()],
            "tenant_budgets": [_budget_lines()],
            "agent_runs": [_run_lines()],
        }
        GeneratedDay(DAY, sources).write(config, "ai_ops")
        home = tmp_path_factory.mktemp("residency_dagster")
        shutil.copy(REPO / "infra" / "dagster.yaml", home / "dagster.yaml")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            result = run_assets(instance, domain_assets(datasets), DAY)
            assert result.success
            yield config


def test_rows_land_in_their_regions_bucket_only_and_disallowed_tenant_regions_are_quarantined(
    spark, resident_lake
):
    config, store = resident_lake, Lake()
    for region, root in config.region_roots.items():
        uri = store.regional_uri(RUNS, region)
        assert uri == f"{root}/{RUNS}" and root.startswith(f"s3://lakehouse-{region}/")
        assert any(key.endswith(".parquet") for key in storage.list_tree(config, uri)), region
        rows = spark.read.format("delta").load(uri).collect()
        assert {r["run_id"] for r in rows} == STORED[region] and {r["region"] for r in rows} == {region}
    # The default bucket holds none of the resident rows.
    assert storage.list_tree(config, store.uri(RUNS)) == {}
    held = spark.read.format("delta").load(config.table_uri("quarantine", "ai_ops", "agent_runs")).collect()
    assert [(json.loads(r["record"])["run_id"], r["reason"]) for r in held] == [
        ("r4", "region_not_allowed:us-east-1")
    ]
    tenants = spark.read.format("delta").load(config.table_uri("quarantine", "ai_ops", "tenants")).collect()
    assert [r["reason"] for r in tenants] == ["data_region_not_allowed"]
    rows, versions = store.read(RUNS, [DAY])
    assert rows.count() == 5 and isinstance(versions, dict) and sorted(versions) == sorted(DEFAULT_REGIONS)


def test_the_catalog_shows_each_location_with_its_region(resident_lake):
    entry = catalog.get_entry(resident_lake, "processed.ai_ops.agent_runs")
    assert entry is not None
    assert entry["locations"] == [
        {"region": region, "uri": f"{resident_lake.region_roots[region]}/{RUNS}"}
        for region in sorted(DEFAULT_REGIONS)
    ]
    assert entry["rowCount"] == 5
    plain = catalog.get_entry(resident_lake, "processed.ai_ops.tenant_budgets")
    assert plain is not None and plain["locations"] == [{"region": None, "uri": plain["location"]}]


def test_moving_personal_data_out_of_its_region_is_refused_and_audited(spark, resident_lake):
    store = Lake()
    with pytest.raises(ResidencyError, match="personal column\\(s\\) user_id across regions is refused"):
        store.read_across_regions(RUNS, [DAY], ["dt", "tenant_id", "user_id"], {"user_id"}, "cross-read")
    aggregate, _ = store.read_across_regions(RUNS, [DAY], ["dt", "tenant_id"], {"user_id"}, "cross-ok")
    assert sorted(r["tenant_id"] for r in aggregate.collect()) == sorted(
        tenant for run, (tenant, _, _) in RUN_ROWS.items() if run != "r4"
    )
    rows, _ = store.read(RUNS, [DAY])
    with pytest.raises(ResidencyError, match="would move them out of their regions"):
        store.write(RUNS, rows, [DAY], run_id="cross-write")
    assert storage.list_tree(resident_lake, store.uri(RUNS)) == {}
    refused = [r for r in audit.read(resident_lake) if r["action"] == "residency"]
    assert [(r["run_id"], r["step"], r["target"]) for r in refused] == [
        ("cross-read", "refused", "processed.ai_ops.agent_runs"),
        ("cross-write", "refused", "processed.ai_ops.agent_runs"),
    ]


def test_erasure_reaches_the_subject_in_every_regional_root(spark, resident_lake):
    records = erasure.erase(resident_lake, "user_id", "user-alice", "erase-alice", stores=())
    deleted = {r.target: r.rows for r in records if r.step == "delete"}
    assert deleted["processed.ai_ops.agent_runs@us-east-1"] == 1
    assert deleted["processed.ai_ops.agent_runs@eu-west-1"] == 1
    store = Lake()
    left = {
        region: {
            r["run_id"] for r in spark.read.format("delta").load(store.regional_uri(RUNS, region)).collect()
        }
        for region in DEFAULT_REGIONS
    }
    assert left == {"us-east-1": {"r6"}, "eu-west-1": {"r3"}, "ap-southeast-1": {"r5"}}
    assert catalog.get_entry(resident_lake, "processed.ai_ops.agent_runs")["rowCount"] == 3


def test_retention_expires_partitions_in_every_regional_root(resident_lake):
    reference = DAY + dt.timedelta(days=366)  # agent_runs keep 365 days: DAY is expired
    removals = retention.apply(resident_lake, reference, "retain", confirm=True)
    deleted = {
        r.target: r.rows
        for r in removals
        if r.step == "delete" and r.target.startswith("processed.ai_ops.agent_runs")
    }
    assert deleted == {
        "processed.ai_ops.agent_runs@ap-southeast-1": 1,
        "processed.ai_ops.agent_runs@eu-west-1": 1,
        "processed.ai_ops.agent_runs@us-east-1": 1,
    }
    store = Lake()
    assert store.rows_per_partition(RUNS, [DAY]) == {DAY: 0}
    assert catalog.get_entry(resident_lake, "processed.ai_ops.agent_runs")["rowCount"] == 0


TENANT_COST = (
    "dt date, tenant_id string, region string, period string, runs bigint, tokens_in bigint, "
    "tokens_out bigint, cost_usd decimal(28,9), monthly_budget_usd decimal(12,2), "
    "daily_budget_usd decimal(18,6), warning_threshold decimal(5,2), critical_threshold decimal(5,2), "
    "budget_used_ratio decimal(18,6), is_warning boolean, is_critical boolean"
)


def test_a_feast_feature_of_a_resident_curated_source_materializes_from_every_region(
    spark, lake, tmp_path, monkeypatch
):
    from lakehouse import features

    monkeypatch.setenv("LAKEHOUSE_FEAST_DIR", str(tmp_path / "feast"))
    monkeypatch.delenv("LAKEHOUSE_FEAST_ONLINE_STORE", raising=False)
    monkeypatch.delenv("LAKEHOUSE_FEAST_REDIS", raising=False)
    day = dt.date(2024, 1, 1)
    rows = [
        (day, tenant, region, "2024-01", 3, 100, 50, Decimal("1"), Decimal("31.00"), Decimal("1.000000"))
        + (Decimal("0.8"), Decimal("1.0"), ratio, ratio >= Decimal("0.8"), ratio >= 1)
        for tenant, region, ratio in (
            ("tenant-a", "eu-west-1", Decimal("1.500000")),
            ("tenant-b", "us-east-1", Decimal("0.250000")),
        )
    ]
    path = "curated/ai_ops/tenant_daily_cost_vs_budget"
    Lake().write(path, spark.createDataFrame(rows, TENANT_COST), [day], region_column="region")
    assert sorted(Lake().locations(path)) == sorted(DEFAULT_REGIONS)
    assert features.apply(lake)
    [done] = features.materialize(lake, day, day, ["tenant_ai_cost"])
    assert (done.snapshot_rows, done.written) == (2, 2)
    assert features.online_features(
        lake, ["tenant_ai_cost:budget_used_ratio"], [{"tenant_id": "tenant-a"}, {"tenant_id": "tenant-b"}]
    ) == {"tenant_id": ["tenant-a", "tenant-b"], "tenant_ai_cost__budget_used_ratio": [1.5, 0.25]}


def test_a_cross_region_aggregate_must_declare_only_non_personal_columns_of_a_resident_dataset():
    from assets import ai_ops

    runs = dataclasses.replace(ai_ops.AGENT_RUNS, resident=True)
    cost = ai_ops.TENANT_DAILY_COST_VS_BUDGET  # curated, without residency, reads agent_runs
    with pytest.raises(
        ResidencyError, match=f"{cost.path} reads the resident {RUNS} \\(personal: user_id\\)"
    ):
        check_crossings([runs, ai_ops.TENANT_BUDGETS, cost])
    leaking = dataclasses.replace(cost, cross_region_columns={RUNS: ("dt", "tenant_id", "user_id")})
    with pytest.raises(ResidencyError, match="declares personal column\\(s\\) user_id of the resident"):
        check_crossings([runs, leaking])
    declared = dataclasses.replace(cost, cross_region_columns={RUNS: ("dt", "tenant_id", "cost_usd")})
    check_crossings([runs, declared])  # declared and non-personal: allowed
    check_crossings(ai_ops.DATASETS)  # nothing resident: nothing crosses
    with pytest.raises(ValueError, match="cross_region_columns name datasets that are not upstream"):
        dataclasses.replace(cost, cross_region_columns={"processed/ai_ops/tool_calls": ("dt",)})
