"""The lake as the pipeline reads and writes it: configuration, engine, pinned reads, partition-exact writes.

One class for every caller (Dagster resource, quality gate, CLI, tests), so that they agree on what a read
sees and how a write lands. A resident dataset (`Dataset.resident`) has one table per region, under that
region's root (`LakehouseConfig.region_roots`): writes split its rows by region, reads union the regions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import reduce

from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import catalog, delta, residency, storage
from lakehouse.config import LakehouseConfig, UnknownRegionError
from lakehouse.engine import engine_path, spark_session

# a plain table's Delta version, or a resident dataset's version per region
TableVersion = int | residency.RegionalVersions


@dataclass(frozen=True)
class ResidentWriteResult(delta.WriteResult):
    """A resident dataset's write: `uri` is its address in the default root (which holds none of its
    rows), `regions` each region's own write; `version` the highest regional version."""

    regions: dict[str, delta.WriteResult] = field(default_factory=dict)


def _union(frames: Sequence[DataFrame]) -> DataFrame:
    """The regional tables' rows as one frame; a column only some regions have yet is null in the others.
    Aligned by hand: Sail loses columns of `unionByName(allowMissingColumns=True)` under a later filter."""
    types = {f.name: f.dataType for frame in frames for f in frame.schema.fields}
    aligned = [
        frame.select(
            *[F.col(c) if c in frame.columns else F.lit(None).cast(t).alias(c) for c, t in types.items()]
        )
        for frame in frames
    ]
    return reduce(lambda left, right: left.union(right), aligned)


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

    def regional_uri(self, path: str, region: str) -> str:
        layer, domain, name = path.split("/")
        return self.config.regional_table_uri(region, layer, domain, name)

    def locations(self, path: str) -> dict[str, str]:
        """Region -> URI of each regional table of the dataset at `path` (empty: not resident)."""
        return residency.recorded_locations(self.config, path)

    def engine_path(self, uri: str) -> str:
        """`uri` as the engine reads and writes it (`s3a://` on Apache Spark: `lakehouse.engine`)."""
        return engine_path(self.spark, uri)

    def _pinned(self, uri: str, days: Sequence[dt.date]) -> tuple[DataFrame, int]:
        version = DeltaTable(uri, storage_options=self.config.storage_options).version()
        rows = (
            self.spark.read.format("delta")
            .option("versionAsOf", version)
            .load(self.engine_path(uri))
            .where(delta.partition_predicate(days))
        )
        return rows, version

    def read(self, path: str, days: Sequence[dt.date]) -> tuple[DataFrame, TableVersion]:
        """The rows of `days` of the table at `path` (layer/domain/name), pinned to its current version
        (returned too, for lineage): every read of the run sees the same snapshot. A resident dataset's
        regional tables are read as one, each pinned (the versions per region are returned)."""
        locations = self.locations(path)
        if not locations:
            return self._pinned(self.uri(path), days)
        pinned = {region: self._pinned(uri, days) for region, uri in locations.items()}
        rows = _union([frame for frame, _ in pinned.values()])
        return rows, {region: version for region, (_, version) in pinned.items()}

    def read_across_regions(
        self,
        path: str,
        days: Sequence[dt.date],
        columns: Sequence[str],
        personal_columns: Collection[str],
        run_id: str,
    ) -> tuple[DataFrame, TableVersion]:
        """What a reader outside the regions (a cross-region curated aggregate) may take from a resident
        dataset: only `columns`, none of them personal; asking for a personal one is refused and audited."""
        residency.check_crossing_columns(
            self.config, run_id, catalog.dataset_id(path), columns, personal_columns
        )
        rows, version = self.read(path, days)
        return rows.select(*columns), version

    def rows_per_partition(
        self, path: str, days: Sequence[dt.date], version: TableVersion | None = None
    ) -> dict[dt.date, int]:
        """Rows of each of `days` (at `version`, else the current one) from the Delta log; 0 without a
        table. A resident dataset's rows are summed over its regions."""
        options = self.config.storage_options
        locations = self.locations(path)
        if locations:
            pins: dict[str, int | None] = (
                dict(version) if isinstance(version, dict) else dict.fromkeys(locations, None)
            )
            counts = {day: 0 for day in days}
            for region, pinned in pins.items():
                table = DeltaTable(locations[region], version=pinned, storage_options=options)
                for day, rows in delta.rows_per_partition(table, days).items():
                    counts[day] += rows
            return counts
        if isinstance(version, dict):
            raise ValueError(f"{path} was read per region ({sorted(version)}) but records no regional tables")
        found = delta.existing(self.uri(path), options, version)
        return {day: 0 for day in days} if found is None else delta.rows_per_partition(found, days)

    def write(
        self,
        path: str,
        df: DataFrame,
        days: Sequence[dt.date],
        schema_policy: delta.SchemaPolicy = delta.SchemaPolicy.STRICT,
        region_column: str | None = None,
        run_id: str = "",
        staged: str | None = None,
    ) -> delta.WriteResult:
        """Replace exactly `days` of the table at `path` with `df`'s rows. With `region_column` (a resident
        dataset), each region's rows replace `days` of that region's table. A dataset that has regional
        tables is never written to the default root (refused and audited). `staged`: the folder of the
        Parquet files `df` reads, laid out as the table's (`delta.StagedFiles`), committed as they are."""
        if region_column is not None:
            return self._write_resident(path, df, days, schema_policy, region_column)
        regional = self.locations(path)
        if regional:
            residency.refuse(
                self.config,
                run_id,
                catalog.dataset_id(path),
                f"the dataset keeps its rows in the regions {sorted(regional)}: writing them to the default "
                f"root {self.config.root} would move them out of their regions",
            )
        files = (
            None
            if staged is None
            else delta.StagedFiles(storage.filesystem(self.config), storage.fs_path(staged))
        )
        return delta.write_partitions(
            df, self.uri(path), days, self.config.storage_options, schema_policy, files
        )

    def _write_resident(
        self,
        path: str,
        df: DataFrame,
        days: Sequence[dt.date],
        schema_policy: delta.SchemaPolicy,
        region_column: str,
    ) -> ResidentWriteResult:
        """Every region's table gets `days` replaced by that region's rows: a region without rows there
        has them emptied (the caller has checked that the input exists, as for any partition write). A
        row of a region without a root stops the write before anything commits."""
        roots = self.config.region_roots
        present = {row[region_column] for row in df.select(region_column).distinct().collect()}
        unknown = sorted(str(region) for region in present if region not in roots)
        if unknown:
            raise UnknownRegionError(
                f"{path}: rows of region(s) {', '.join(unknown)} have no storage root (regions: "
                f"{sorted(roots)}); they belong in quarantine (the dataset's allowed_regions), never in "
                "the default root"
            )
        residency.record_locations(
            self.config, path, {region: self.regional_uri(path, region) for region in sorted(roots)}
        )
        regions = {
            region: delta.write_partitions(
                df.where(F.col(region_column) == F.lit(region)),
                self.regional_uri(path, region),
                days,
                self.config.storage_options,
                schema_policy,
            )
            for region in sorted(roots)
        }
        partitions = tuple(sorted(set(days)))
        counts = {day: sum(r.rows_per_partition.get(day, 0) for r in regions.values()) for day in partitions}
        return ResidentWriteResult(
            uri=self.uri(path),
            version=max(r.version for r in regions.values()),
            partitions=partitions,
            rows_per_partition=counts,
            added_columns=tuple(sorted({c for r in regions.values() for c in r.added_columns})),
            regions=regions,
        )
