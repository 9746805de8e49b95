"""Table maintenance through delta-rs: Sail cannot parse VACUUM, OPTIMIZE or DESCRIBE HISTORY,
and delta-rs reads and writes the same tables on any engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable


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

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self._table().history(limit)

    def files(self) -> list[DataFile]:
        """The active data files, from the log (no scan)."""
        actions = pa.table(self._table().get_add_actions(flatten=True))
        return [DataFile(path, None if day is None else str(day), rows or 0, size)
                for path, day, rows, size in zip(actions.column("path").to_pylist(),
                                                 actions.column("partition.dt").to_pylist(),
                                                 actions.column("num_records").to_pylist(),
                                                 actions.column("size_bytes").to_pylist())]

    def active_files(self) -> dict[str, str]:
        """Active data file path -> its partition's `dt` (ISO date)."""
        return {f.path: f.partition for f in self.files()}

    def stats(self) -> TableStats:
        """Rows and newest partition, from the log's file statistics (no scan)."""
        files = self.files()
        days = [f.partition for f in files if f.partition is not None]
        return TableStats(row_count=sum(f.rows for f in files), latest_partition=max(days) if days else None)

    def vacuum(self, retention_hours: int = 168, dry_run: bool = True) -> list[str]:
        """Remove files no longer referenced and older than the retention; returns them."""
        return self._table().vacuum(retention_hours=retention_hours, dry_run=dry_run,
                                    enforce_retention_duration=False)

    def optimize(self, partition_filters: list[tuple[str, str, Any]] | None = None) -> dict[str, Any]:
        """Compact small files (per partition when filtered)."""
        return self._table().optimize.compact(partition_filters=partition_filters)

    def checkpoint(self) -> None:
        self._table().create_checkpoint()
