"""Moving a lake: a small lake built through Dagster, copied with boto3 (infra/move_lake.py) from one bucket
of the embedded S3 to another, is the same lake there: every Delta table (rows, version, history), the
catalog, and the Feast snapshots exported from it."""

from __future__ import annotations

import dataclasses
import datetime as dt

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from assets import ai_ops
from infra import local_s3
from infra.move_lake import copy_lake, objects
from lakehouse import catalog, features
from lakehouse.config import LakehouseConfig
from orchestration.factory import domain_assets
from synthetic.ai_ops import generate_day
from tests.helpers import run_assets

DAY = dt.date(2024, 1, 9)
VIEW = "tenant_ai_cost"  # fed by curated/ai_ops/tenant_daily_cost_vs_budget


def _tables(client, root: str) -> list[str]:
    return sorted({key.split("/_delta_log/")[0] for key, _ in objects(client, root) if "/_delta_log/" in key})


def _sorted(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=repr)


def _snapshot(lake: LakehouseConfig, folder, monkeypatch) -> pa.Table:
    """The view's snapshot exported from `lake` into a registry of its own, as the feature assets do."""
    monkeypatch.setenv("LAKEHOUSE_FEAST_DIR", str(folder))
    assert features.apply(lake)
    [view] = [v for v in features.feature_store(lake).list_feature_views() if v.name == VIEW]
    return pq.read_table(features.export_snapshot(lake, view).path)


def test_a_lake_copied_to_another_bucket_is_the_same_lake(s3_server, lake, instance, tmp_path, monkeypatch):
    generate_day(DAY, 300).write(lake, "ai_ops")
    assert run_assets(instance, domain_assets(ai_ops.DATASETS), DAY).success
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name=s3_server.region,
    )
    local_s3.ensure_bucket(s3_server, "lakehouse-moved")
    moved = dataclasses.replace(lake, root=lake.root.replace("s3://lakehouse/", "s3://lakehouse-moved/", 1))

    count = copy_lake(client, client, lake.root, moved.root)
    assert count == len(list(objects(client, lake.root))) > 0
    assert dict(objects(client, moved.root)) == dict(objects(client, lake.root))

    tables = _tables(client, lake.root)
    assert {"catalog/datasets", "raw/ai_ops/agent_runs", "curated/ai_ops/tenant_daily_cost_vs_budget"} <= {
        *tables
    }
    assert _tables(client, moved.root) == tables
    for table in tables:
        before = DeltaTable(f"{lake.root}/{table}", storage_options=lake.storage_options)
        after = DeltaTable(f"{moved.root}/{table}", storage_options=moved.storage_options)
        assert after.version() == before.version(), table
        assert [h["operation"] for h in after.history()] == [h["operation"] for h in before.history()], table
        assert _sorted(after.to_pyarrow_table()) == _sorted(before.to_pyarrow_table()), table

    entries = catalog.list_entries(lake)
    assert entries and catalog.list_entries(moved) == entries

    snapshot = _snapshot(lake, tmp_path / "feast", monkeypatch)
    assert snapshot.num_rows > 0
    assert _snapshot(moved, tmp_path / "feast-moved", monkeypatch).equals(snapshot)
