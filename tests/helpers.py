"""Helpers the end-to-end tests share: run assets through a real Dagster instance, count table rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import dagster as dg

from orchestration.resources import LakeResource


def run_assets(instance: dg.DagsterInstance, assets: Sequence, first: dt.date, last: dt.date | None = None,
               raise_on_error: bool = True, tags: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:
    """Materialize `assets` for the partitions first..last in one run (as a single-run backfill does)."""
    job = dg.define_asset_job("test_run", selection=dg.AssetSelection.all())
    defs = dg.Definitions(assets=list(assets), jobs=[job], resources={"lake": LakeResource()},
                          executor=dg.in_process_executor)
    return defs.resolve_job_def("test_run").execute_in_process(instance=instance, raise_on_error=raise_on_error, tags={
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": (last or first).isoformat(), **(tags or {}),
    })


def counts_by_day(spark, uri: str, where: str | None = None) -> dict[dt.date, int]:
    df = spark.read.format("delta").load(uri)
    if where:
        df = df.where(where)
    return {row["dt"]: row["count"] for row in df.groupBy("dt").count().collect()}
