"""The lake as the pipeline reads and writes it: configuration, engine, pinned reads, partition-exact writes.

One class for every caller (Dagster resource, quality gate, CLI, tests), so that they agree on what a read
sees and how a write lands.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from lakehouse import delta
from lakehouse.config import LakehouseConfig
from lakehouse.engine import engine_path, spark_session


class Lake:
    """Everything comes from the environment (see `lakehouse.config`), so the UI, CLI and tests agree."""

    @property
    def config(self) -> LakehouseConfig:
        return LakehouseConfig.from_env()

    @property
    def spark(self) -> SparkSession:
        return spark_session(self.config)

    def uri(self, path: str) -> str:
        layer, domain, name = path.split("/")
        return self.config.table_uri(layer, domain, name)

    def engine_path(self, uri: str) -> str:
        """`uri` as the engine reads and writes it (`s3a://` on Apache Spark: `lakehouse.engine`)."""
        return engine_path(self.spark, uri)

    def read(self, path: str, days: Sequence[dt.date]) -> tuple[DataFrame, int]:
        """The rows of `days` of the table at `path` (layer/domain/name), pinned to its current version
        (returned too, for lineage): every read of the run sees the same snapshot."""
        version = DeltaTable(self.uri(path), storage_options=self.config.storage_options).version()
        rows = (
            self.spark.read.format("delta")
            .option("versionAsOf", version)
            .load(self.engine_path(self.uri(path)))
            .where(delta.partition_predicate(days))
        )
        return rows, version

    def rows_per_partition(
        self, path: str, days: Sequence[dt.date], version: int | None = None
    ) -> dict[dt.date, int]:
        """Rows of each of `days` (at `version`, else the current one) from the Delta log; 0 without a
        table."""
        uri, options = self.uri(path), self.config.storage_options
        if not DeltaTable.is_deltatable(uri, storage_options=options):
            return {day: 0 for day in days}
        return delta.rows_per_partition(DeltaTable(uri, version=version, storage_options=options), days)

    def write(
        self,
        path: str,
        df: DataFrame,
        days: Sequence[dt.date],
        schema_policy: delta.SchemaPolicy = delta.SchemaPolicy.STRICT,
    ) -> delta.WriteResult:
        return delta.write_partitions(df, self.uri(path), days, self.config.storage_options, schema_policy)
