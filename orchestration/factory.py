"""Turns dataset declarations into Dagster assets; the shared mechanics every domain uses."""


import datetime as dt
import os

import dagster as dg
from pyspark.sql import types as T

from lakehouse.datasets import Dataset
from lakehouse.delta import WriteResult
from orchestration.resources import LakeResource

DAILY = dg.DailyPartitionsDefinition(start_date=os.environ.get("LAKEHOUSE_START_DATE", "2024-01-01"))
SINGLE_RUN = dg.BackfillPolicy.single_run()


def partition_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The daily partitions this run builds (one, or a whole backfill range)."""
    return [dt.date.fromisoformat(key) for key in context.partition_keys]


def pool_for(path: str) -> str:
    """One pool per table: writers to one table never run at once (limit set in dagster.yaml)."""
    return "delta-" + path.replace("/", "-")


def column_schema(schema: T.StructType, descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(columns=[
        dg.TableColumn(name=f.name, type=f.dataType.simpleString(), description=descriptions.get(f.name))
        for f in schema.fields
    ])


def write_metadata(result: WriteResult, schema: T.StructType, descriptions: dict[str, str] | None = None) -> dict:
    return {
        "dagster/row_count": result.row_count,
        "dagster/uri": result.uri,
        "dagster/column_schema": column_schema(schema, descriptions),
        "delta_version": result.version,
        "partitions_written": ", ".join(day.isoformat() for day in result.partitions),
        "rows_per_partition": {day.isoformat(): rows for day, rows in result.rows_per_partition.items()},
        "added_columns": list(result.added_columns),
    }


def dataset_spec(dataset: Dataset, deps: list | None = None) -> dg.AssetSpec:
    """The asset's identity in the UI: key = layer/domain/name, grouped by domain, tagged by layer."""
    return dg.AssetSpec(
        key=dataset.key_path,
        deps=deps if deps is not None else [dg.AssetKey(path.split("/")) for path in dataset.upstream],
        description=dataset.description,
        group_name=dataset.domain,
        owners=[dataset.owner],
        tags={"layer": dataset.layer, "domain": dataset.domain},
        kinds={"delta", "spark"},
        partitions_def=DAILY,
    )


def run_attributes(dataset: Dataset) -> dict:
    """How the dataset's step runs: whole partition ranges in one run, one writer per table at a time."""
    return dict(partitions_def=DAILY, backfill_policy=SINGLE_RUN, pool=pool_for(dataset.path))


def dataset_asset(dataset: Dataset) -> dg.AssetsDefinition:
    """An asset that reads its upstream tables for the run's partitions, transforms and writes them."""
    if dataset.transform is None:
        raise ValueError(f"{dataset.path} declares no transform")
    upstream = {path.split("/")[-1]: path for path in dataset.upstream}

    @dg.multi_asset(specs=[dataset_spec(dataset)], name=dataset.path.replace("/", "__"), **run_attributes(dataset))
    def _materialize(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        days = partition_days(context)
        inputs = {name: lake.read(path, days) for name, path in upstream.items()}
        output = dataset.transform(**inputs)
        result = lake.write(dataset.path, output, days, dataset.schema_policy)
        return dg.MaterializeResult(metadata=write_metadata(result, output.schema, dataset.columns))

    return _materialize
