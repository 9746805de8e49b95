"""Table maintenance: history, vacuum and optimize through Delta Lake on Spark (SQL `DESCRIBE HISTORY`,
`VACUUM`, `OPTIMIZE`) when the configured engine is Apache Spark, else through delta-rs (Sail cannot
parse them). Reads of the log (version, active files, row counts) and checkpoints are delta-rs on
both: it reads the same tables whichever engine wrote them. The split: `lakehouse/engine.py`."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable

from lakehouse import audit, storage
from lakehouse.config import LakehouseConfig
from lakehouse.engine import delta_sql_engine, engine_path

# Every table of the lake: `<root>/<folder>/<domain>/<name>`, plus the platform's own tables.
TABLE_FOLDERS = ("raw", "processed", "curated", "quarantine", "quality", "features/training_sets")
PLATFORM_TABLES = ("catalog/datasets", "catalog/lineage", "catalog/column_lineage", "audit/actions")
SMALL_FILE_BYTES = 16 * 1024 * 1024  # a file below this is small
MIN_SMALL_FILES = 4  # a partition (or an unpartitioned table) with this many small files is compacted
CHECKPOINT_EVERY = 10  # commits after the last checkpoint that make the next one


@dataclass(frozen=True)
class TableStats:
    row_count: int
    latest_partition: str | None


@dataclass(frozen=True)
class DataFile:
    path: str  # relative to the table
    partition: str | None  # its `dt`, ISO date
    rows: int
    size: int  # bytes


@dataclass(frozen=True)
class TableMaintenance:
    uri: str
    storage_options: dict[str, str]

    def _table(self) -> DeltaTable:
        return DeltaTable(self.uri, storage_options=self.storage_options)

    def exists(self) -> bool:
        return DeltaTable.is_deltatable(self.uri, storage_options=self.storage_options)

    def version(self) -> int:
        return self._table().version()

    def _sql(self, statement: str):
        """`statement` (with `{table}`) on Delta Lake on Spark, or None when the engine is Sail."""
        spark = delta_sql_engine()
        if spark is None:
            return None
        return spark.sql(statement.format(table=f"delta.`{engine_path(spark, self.uri)}`")).collect()

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits, newest first."""
        rows = self._sql("DESCRIBE HISTORY {table}" + (f" LIMIT {int(limit)}" if limit else ""))
        if rows is None:
            return self._table().history(limit)
        return [row.asDict(recursive=True) for row in rows]

    def files(self) -> list[DataFile]:
        """The active data files, from the log (no scan)."""
        actions = pa.table(self._table().get_add_actions(flatten=True))
        days = (
            actions.column("partition.dt").to_pylist()
            if "partition.dt" in actions.column_names
            else [None] * actions.num_rows  # an unpartitioned table (catalog, audit)
        )
        return [
            DataFile(path, None if day is None else str(day), rows or 0, size)
            for path, day, rows, size in zip(
                actions.column("path").to_pylist(),
                days,
                actions.column("num_records").to_pylist(),
                actions.column("size_bytes").to_pylist(),
            )
        ]

    def active_files(self) -> dict[str, str | None]:
        """Active data file path -> its partition's `dt` (ISO date; None in an unpartitioned table)."""
        return {f.path: f.partition for f in self.files()}

    def stats(self) -> TableStats:
        """Rows and newest partition, from the log's file statistics (no scan)."""
        files = self.files()
        days = [f.partition for f in files if f.partition is not None]
        return TableStats(row_count=sum(f.rows for f in files), latest_partition=max(days) if days else None)

    def vacuum(self, retention_hours: int = 168, dry_run: bool = True) -> list[str]:
        """Remove files no longer referenced and older than the retention; returns them (relative to the
        table)."""
        spark = delta_sql_engine()
        if spark is None:
            return self._table().vacuum(
                retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=False
            )
        root = engine_path(spark, self.uri).rstrip("/") + "/"
        table = f"delta.`{root.rstrip('/')}`"
        found = [
            row[0]
            for row in spark.sql(f"VACUUM {table} RETAIN {int(retention_hours)} HOURS DRY RUN").collect()
        ]
        if found and not dry_run:
            spark.sql(f"VACUUM {table} RETAIN {int(retention_hours)} HOURS").collect()
        return [path[len(root) :] if path.startswith(root) else path for path in found]

    def optimize(self, partition_filters: list[tuple[str, str, Any]] | None = None) -> dict[str, Any]:
        """Compact small files (per partition when filtered)."""
        where = " AND ".join(f"`{column}` {op} '{value}'" for column, op, value in partition_filters or [])
        rows = self._sql("OPTIMIZE {table}" + (f" WHERE {where}" if where else ""))
        if rows is None:
            return self._table().optimize.compact(partition_filters=partition_filters)
        return rows[0]["metrics"].asDict(recursive=True) if rows else {}

    def checkpoint(self) -> None:
        self._table().create_checkpoint()

    def last_checkpoint(self, config: LakehouseConfig) -> int | None:
        """The version of the newest checkpoint (`_delta_log/_last_checkpoint`), None before the first."""
        text = storage.read_text_if_exists(config, f"{self.uri}/_delta_log/_last_checkpoint")
        return None if text is None else int(json.loads(text)["version"])


def lake_tables(config: LakehouseConfig) -> list[str]:
    """Paths (relative to the root) of every Delta table of the lake, platform tables included."""

    def is_table(uri: str) -> bool:
        return TableMaintenance(uri, config.storage_options).exists()

    found = [path for path in PLATFORM_TABLES if is_table(f"{config.root}/{path}")]
    for folder in TABLE_FOLDERS:
        for child in storage.list_dirs(config, f"{config.root}/{folder}"):
            tables = (
                [child] if is_table(child) else [t for t in storage.list_dirs(config, child) if is_table(t)]
            )
            found += [uri[len(config.root) + 1 :] for uri in tables]
    return found


def _small_groups(files: list[DataFile], small_bytes: int, min_files: int) -> dict[str | None, int]:
    """Partition (None: the unpartitioned table) -> its small files, where there are enough to compact."""
    small: dict[str | None, int] = defaultdict(int)
    for f in files:
        if f.size < small_bytes:
            small[f.partition] += 1
    return {partition: n for partition, n in small.items() if n >= min_files}


def maintain(
    config: LakehouseConfig,
    run_id: str,
    dry_run: bool = False,
    small_file_bytes: int = SMALL_FILE_BYTES,
    min_small_files: int = MIN_SMALL_FILES,
    checkpoint_every: int = CHECKPOINT_EVERY,
) -> list[audit.Record]:
    """Compact the partitions of every table that gathered small files and checkpoint the logs that grew,
    so reads and commits stay as cheap on day 600 as on day 2. Compaction rewrites files without
    changing a row (Delta's `dataChange: false`); removed files are vacuumed by retention after the
    safety window, so readers pinned to an earlier version keep working. Each action is audited."""
    records = []
    for path in lake_tables(config):
        table = TableMaintenance(f"{config.root}/{path}", config.storage_options)
        target = path.replace("/", ".")
        groups = _small_groups(table.files(), small_file_bytes, min_small_files)
        if groups:
            partitions = sorted(p for p in groups if p is not None)
            files_before = len(table.files())
            if not dry_run:
                for partition in groups:
                    table.optimize([("dt", "=", partition)] if partition is not None else None)
            records.append(
                audit.Record(
                    "maintenance",
                    "optimize",
                    target,
                    files=sum(groups.values()),
                    partitions=partitions,
                    dry_run=dry_run,
                    detail=f"{files_before} active files"
                    + ("" if dry_run else f" before, {len(table.files())} after"),
                )
            )
        version, checkpointed = table.version(), table.last_checkpoint(config)
        if version - (checkpointed if checkpointed is not None else -1) >= checkpoint_every:
            if not dry_run:
                table.checkpoint()
            records.append(
                audit.Record(
                    "maintenance",
                    "checkpoint",
                    target,
                    dry_run=dry_run,
                    detail=f"version {table.version()}, previous checkpoint {checkpointed}",
                )
            )
    audit.write(config, run_id, records)
    return records
