"""The lakehouse on Apache Spark with Delta Lake: the local standalone cluster (master, worker, Connect
server) over the session's S3 through S3A, configured only by LAKEHOUSE_SPARK_REMOTE.

The events and commerce domains run through Dagster on the cluster (a single partition, then a
backfill range, with their quality gates) and on Sail in another lake root; every curated table must be
equal in values, every raw, processed and quarantine table equal in rows per partition, and the gates'
results the same. Retention and erasure then run on the tables Spark built; an unreachable cluster
fails in seconds naming its URL.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import time
import uuid
from decimal import Decimal

import dagster as dg
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from assets import commerce, events
from infra import spark_connect
from lakehouse import audit, catalog, erasure, retention
from lakehouse.config import LakehouseConfig
from lakehouse.maintenance import TableMaintenance
from orchestration.cli import GENERATORS
from orchestration.factory import domain_assets
from tests.helpers import run_assets

pytestmark = pytest.mark.spark_cluster

D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)
ROWS = {"events": 400, "commerce": 300}
DOMAINS = {"events": events, "commerce": commerce}
DATASETS = [d for module in DOMAINS.values() for d in module.DATASETS]
ASSETS = [a for module in DOMAINS.values() for a in domain_assets(module.DATASETS)]


def _land(config: LakehouseConfig) -> None:
    for domain, rows in ROWS.items():
        for day in (D1, D2, D3):
            importlib.import_module(GENERATORS[domain]).generate_day(day, rows).write(config, domain)


def _build(home, config: LakehouseConfig) -> dict:
    """D1 alone, then the backfill range D2..D3 in one run; returns every check's outcome."""
    import shutil

    from tests.conftest import REPO

    shutil.copy(REPO / "infra" / "dagster.yaml", home / "dagster.yaml")
    checks, seconds = {}, []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for first, last in ((D1, D1), (D2, D3)):
            started = time.perf_counter()
            result = run_assets(instance, ASSETS, first, last)
            seconds.append(round(time.perf_counter() - started, 1))
            assert result.success
            for e in result.get_asset_check_evaluations():
                checks[(first, e.asset_key.to_user_string(), e.check_name)] = (e.passed, e.severity.value)
    print(f"{config.spark_remote or 'sail'}: runs took {seconds} s")
    return checks


def _rows(config: LakehouseConfig, uri: str) -> list[tuple]:
    """The table's rows (read by delta-rs, the same reader for both engines), sorted, floats rounded."""

    def value(v):
        if isinstance(v, float):
            return round(v, 9)
        if isinstance(v, (list, dict)):
            return json.dumps(v, sort_keys=True, default=str)
        return v

    table = pa.table(DeltaTable(uri, storage_options=config.storage_options).to_pyarrow_table())
    return sorted((tuple(value(v) for v in row.values()) for row in table.to_pylist()), key=repr)


def _record(line: str):
    try:
        found = json.loads(line)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _per_partition(config: LakehouseConfig, uri: str) -> dict[str, int]:
    files = TableMaintenance(uri, config.storage_options).files()
    counts: dict[str, int] = {}
    for f in files:
        counts[f.partition] = counts.get(f.partition, 0) + f.rows
    return {day: n for day, n in counts.items() if n}


@pytest.fixture(scope="module")
def lakes(s3_server, spark, spark_cluster, spark_cluster_url, tmp_path_factory):
    """The same landing files built into two lake roots: one on the Spark cluster, one on Sail."""
    built = {}
    base = f"s3://lakehouse/tests/spark-engine-{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_FEAST_DIR", str(tmp_path_factory.mktemp("feast")))
        for name, remote in (("spark", spark_cluster_url), ("sail", None)):
            patch.setenv("LAKEHOUSE_ROOT", f"{base}/{name}")
            if remote:
                patch.setenv("LAKEHOUSE_SPARK_REMOTE", remote)
            else:
                patch.delenv("LAKEHOUSE_SPARK_REMOTE", raising=False)
            config = LakehouseConfig.from_env()
            _land(config)
            built[name] = (config, _build(tmp_path_factory.mktemp(f"dagster-{name}"), config))
    return built


def test_events_and_commerce_on_the_spark_cluster_equal_sail(lakes):
    (spark_lake, spark_checks), (sail_lake, sail_checks) = lakes["spark"], lakes["sail"]
    # The gates ran on both and judged alike; no blocking check failed.
    assert spark_checks == sail_checks
    assert not [key for key, (passed, severity) in spark_checks.items() if not passed and severity == "ERROR"]
    assert len({key[1] for key in spark_checks}) == len([d for d in DATASETS if d.layer != "raw"])

    for dataset in DATASETS:
        paths = [dataset.path] + ([dataset.quarantine_path] if dataset.has_quarantine else [])
        for path in paths:
            on_spark, on_sail = (lake.table_uri(*path.split("/")) for lake in (spark_lake, sail_lake))
            counts = _per_partition(spark_lake, on_spark)
            assert counts == _per_partition(sail_lake, on_sail), path
            if dataset.layer == "curated":
                assert set(counts) == {D1.isoformat(), D2.isoformat(), D3.isoformat()}, path
                assert _rows(spark_lake, on_spark) == _rows(sail_lake, on_sail), path

    # Spark's tables were committed by Delta Lake on Spark, Sail's by Sail.
    processed = spark_lake.table_uri("processed", "events", "events")
    engines = {
        entry.get("engineInfo", "")
        for entry in TableMaintenance(processed, spark_lake.storage_options).history()
    }
    assert any(e.startswith("Apache-Spark") and "Delta-Lake" in e for e in engines), engines
    entry = catalog.get_entry(spark_lake, "processed.events.events")
    assert entry["location"] == processed and entry["qualityStatus"] in ("passed", "warning")


def test_retention_and_erasure_on_tables_spark_built(lakes, monkeypatch, spark_cluster_url):
    config, _ = lakes["spark"]
    monkeypatch.setenv("LAKEHOUSE_ROOT", config.root)
    monkeypatch.setenv("LAKEHOUSE_SPARK_REMOTE", spark_cluster_url)  # deletes and vacuums by Delta on Spark
    orders = config.table_uri("processed", "commerce", "orders")
    stats = config.table_uri("curated", "commerce", "customer_order_stats")
    before = _per_partition(config, orders)
    # The subject: a user of D2 who has customer features (picked before retention expires the raw lines).
    raw = pa.table(
        DeltaTable(
            config.table_uri("raw", "commerce", "orders"), storage_options=config.storage_options
        ).to_pyarrow_table()
    ).to_pylist()
    users = [(_record(r["line"]) or {}).get("user_id") for r in raw if r["dt"] == D2]
    tokens_d2 = {
        r["user_id"]
        for r in pa.table(
            DeltaTable(stats, storage_options=config.storage_options).to_pyarrow_table()
        ).to_pylist()
        if r["dt"] == D2
    }
    subject = next(
        u for u in users if isinstance(u, str) and erasure.subject_token(u, config.token_key()) in tokens_d2
    )
    token = erasure.subject_token(subject, config.token_key())

    # Retention: the reference date expires D1 of the 365-day tables and every raw partition (90 days).
    removals = retention.apply(
        config,
        D1 + dt.timedelta(days=365),
        "retention-on-spark",
        safety_window_hours=0,
        override_safety_floor=True,
        confirm=True,
    )  # the brakes: a test lake, on purpose
    after = _per_partition(config, orders)
    assert after == {k: v for k, v in before.items() if k != D1.isoformat()}
    deleted = [r for r in removals if r.step == "delete" and r.target == "processed.commerce.orders"]
    assert deleted and deleted[0].rows == before[D1.isoformat()]
    assert _per_partition(config, config.table_uri("raw", "commerce", "orders")) == {}
    vacuumed = [r for r in removals if r.step == "vacuum" and r.target == "processed.commerce.orders"]
    assert vacuumed and vacuumed[0].files > 0  # the deleted files left storage
    curated = config.table_uri("curated", "commerce", "daily_revenue_by_currency")
    assert D1.isoformat() in _per_partition(config, curated)  # analytics keep 1095 days

    # Erasure of that user, by value: rows go through Delta on Spark, verified, audited.
    records = erasure.erase(config, "user_id", subject, "erasure-on-spark", stores=())
    assert records[-1].verified and records[-1].step == "verify"
    assert not [
        r
        for r in pa.table(
            DeltaTable(stats, storage_options=config.storage_options).to_pyarrow_table()
        ).to_pylist()
        if r["user_id"] == token
    ]
    assert any(
        r["rows"]
        for r in audit.read(config, "erasure-on-spark")
        if r["target"] == "curated.commerce.customer_order_stats"
    )
    latest = TableMaintenance(stats, config.storage_options).history(3)
    assert any(e["operation"] == "DELETE" and e["engineInfo"].startswith("Apache-Spark") for e in latest), (
        latest
    )


def test_an_unreachable_cluster_fails_in_seconds_naming_the_url(
    lake, instance, monkeypatch, spark_cluster_url
):
    port = spark_connect._free_port()
    url = f"sc://127.0.0.1:{port}"
    monkeypatch.setenv("LAKEHOUSE_SPARK_REMOTE", url)
    importlib.import_module(GENERATORS["events"]).generate_day(D1, 50).write(lake, "events")
    raw = [
        a
        for a in domain_assets(events.DATASETS)
        if isinstance(a, dg.AssetsDefinition) and dg.AssetKey(["raw", "events", "events"]) in a.keys
    ]
    started = time.perf_counter()
    result = run_assets(instance, raw, D1, raise_on_error=False)
    assert not result.success and time.perf_counter() - started < 30
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert url in str(failure.event_specific_data.error)
    uri = lake.table_uri("raw", "events", "events")
    assert not DeltaTable.is_deltatable(uri, storage_options=lake.storage_options)  # nothing half-written

    # Back: the same run succeeds.
    monkeypatch.setenv("LAKEHOUSE_SPARK_REMOTE", spark_cluster_url)
    assert run_assets(instance, raw, D1).success
    assert sum(_per_partition(lake, uri).values()) > 0


def test_versions_agree_with_the_pins():
    """The POM's Delta Lake line is delta-spark's; its hadoop-aws is the Hadoop pyspark ships."""
    import importlib.metadata
    import re

    pom = spark_connect.POM.read_text()
    delta = re.search(r"<delta.version>([\d.]+)<", pom).group(1)
    hadoop = re.search(r"<hadoop.version>([\d.]+)<", pom).group(1)
    spark = importlib.metadata.version("pyspark")
    assert delta.split(".")[:2] == importlib.metadata.version("delta-spark").split(".")[:2]
    assert f"delta-spark_{'.'.join(spark.split('.')[:2])}_2.13" in pom
    assert (spark_connect.spark_home() / "jars" / f"hadoop-client-api-{hadoop}.jar").exists()
    assert Decimal(".".join(spark.split(".")[:2])) >= Decimal("4.1")
