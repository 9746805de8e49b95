"""Table maintenance: history, vacuum and optimize through Delta Lake on Spark (SQL `DESCRIBE HISTORY`,
`VACUUM`, `OPTIMIZE`) when the configured engine is Apache Spark, else through delta-rs (Sail cannot
parse them). Reads of the log (version, active files, row counts) and checkpoints are delta-rs on
both: it reads the same tables whichever engine wrote them. The split: `lakehouse/engine.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable

from lakehouse.engine import delta_sql_engine, engine_path


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
        return [
            DataFile(path, None if day is None else str(day), rows or 0, size)
            for path, day, rows, size in zip(
                actions.column("path").to_pylist(),
                actions.column("partition.dt").to_pylist(),
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
