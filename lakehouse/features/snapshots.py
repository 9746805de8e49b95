"""Parquet snapshots of a curated table's current Delta version: all Feast ever reads offline.

A view's snapshot is a folder with one Parquet file per partition (`dt`) of its table, and a manifest
beside it naming the data files of the table each partition file was exported from. An export rewrites
only the partitions asked for and those whose files in the Delta log changed since their last export
(rewritten, erased, removed by retention): its cost follows the day's data, not the table's history.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable

from lakehouse import residency
from lakehouse.config import LakehouseConfig
from lakehouse.delta import PARTITION_COLUMN
from lakehouse.features.store import TIMESTAMP


@dataclass(frozen=True)
class Snapshot:
    view: str
    path: str
    table_version: int  # a resident source: the highest of its regional tables' versions
    rows: int  # rows of the partitions exported
    seconds: float
    partitions: tuple[dt.date, ...] = ()  # the partitions exported (rewritten or removed)
    data: pa.Table | None = field(default=None, repr=False, compare=False)  # their rows now
    replaced: pa.Table | None = field(default=None, repr=False, compare=False)  # their rows before


PANDAS_DTYPES = {"Int64": "Int64", "Float64": "float64", "Bool": "boolean", "String": "string"}
_ARROW = {"Int64": pa.int64(), "Float64": pa.float64(), "Bool": pa.bool_(), "String": pa.string()}


def view_join_key(view) -> str:
    return view.entity_columns[0].name


def view_ttl(view) -> pd.Timedelta:
    return pd.Timedelta(view.tags["period"])


def view_source_uris(config: LakehouseConfig, view) -> list[str]:
    """The view's curated table: every region's table of a resident source, else the one in the root;
    only those that exist."""
    table = view.tags["source_table"]
    layer, domain, name = table.split("/")
    uris = list(residency.recorded_locations(config, table).values()) or [
        config.table_uri(layer, domain, name)
    ]
    return [uri for uri in uris if DeltaTable.is_deltatable(uri, storage_options=config.storage_options)]


def snapshot_schema(view) -> pa.Schema:
    features = [(f.name, _ARROW[str(f.dtype)]) for f in view.features]
    return pa.schema(
        [(view_join_key(view), pa.string()), (TIMESTAMP, pa.timestamp("us", tz="UTC")), *features]
    )


def _folder(view) -> Path:
    return Path(view.batch_source.path)


def _manifest_path(view) -> Path:
    folder = _folder(view)
    return folder.with_name(f"{folder.name}.manifest.json")


def _partition_file(view, day: dt.date) -> Path:
    return _folder(view) / f"part-{day.isoformat()}.parquet"


def _replace_file(path: Path, write) -> None:
    """Write through a temporary name and rename: readers see the old file or the new one, whole."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    write(partial)
    os.replace(partial, path)


def _table_partitions(tables: Mapping[str, DeltaTable]) -> dict[dt.date, list[str]]:
    """Partition -> its data files (URI-qualified: a resident source has a table per region) in the
    current versions, from the Delta logs (no data read)."""
    files: dict[dt.date, list[str]] = {}
    for uri, table in tables.items():
        actions = pa.table(table.get_add_actions(flatten=True))
        for day, path in zip(
            actions.column(f"partition.{PARTITION_COLUMN}").to_pylist(), actions.column("path").to_pylist()
        ):
            day = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
            files.setdefault(day, []).append(f"{uri}/{path}" if len(tables) > 1 else path)
    return {day: sorted(paths) for day, paths in files.items()}


def partition_days(view) -> list[dt.date]:
    """The partitions the snapshot holds (files on disk; no data read)."""
    folder = _folder(view)
    paths = folder.glob("part-*.parquet") if folder.is_dir() else []
    return sorted(dt.date.fromisoformat(path.stem.removeprefix("part-")) for path in paths)


def read_partitions(
    view, days: Iterable[dt.date] | None = None, keys: Iterable[str] | None = None
) -> pa.Table:
    """Rows of the snapshot's partition files (`days`, default all), optionally only those of `keys`."""
    schema = snapshot_schema(view)
    wanted = partition_days(view) if days is None else sorted(set(days) & set(partition_days(view)))
    tables = [pq.read_table(_partition_file(view, day), schema=schema) for day in wanted]
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    if keys is not None:
        table = table.filter(pc.is_in(table.column(0), pa.array(list(keys), pa.string())))
    return table


def _as_snapshot_rows(view, frame: pd.DataFrame) -> pa.Table:
    """Curated rows -> snapshot rows: `event_timestamp` (microseconds, UTC) is the end of the row's
    period, the moment the aggregate was complete; features in their declared types."""
    key, column = view_join_key(view), view.tags["period_column"]
    frame = frame.copy()
    frame[TIMESTAMP] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]") + view_ttl(view)
    for f in view.features:
        if _ARROW[str(f.dtype)] == pa.float64():
            frame[f.name] = pd.to_numeric(frame[f.name].astype(object), errors="coerce").astype("float64")
    schema = snapshot_schema(view)
    frame[key] = frame[key].astype(object)
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def export_snapshot(config: LakehouseConfig, view, days: Sequence[dt.date] = ()) -> Snapshot:
    """Bring the view's snapshot in line with the current version of its curated table: rewrite the
    partitions `days` and every partition whose data files changed since it was exported, remove those
    the table no longer has; the others are left as they are, unread.

    The table (a resident source: every region's) is read through its Delta log (delta-rs), so removed
    files never reach Feast; each partition file is replaced atomically and whole.
    """
    started = time.monotonic()
    uris = view_source_uris(config, view)
    if not uris:
        raise FileNotFoundError(
            f"the source table {view.tags['source_table']} of view {view.name} is not built"
        )
    tables = {uri: DeltaTable(uri, storage_options=config.storage_options) for uri in uris}
    current = _table_partitions(tables)
    manifest_path = _manifest_path(view)
    exported = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    on_disk = set(partition_days(view))
    stale = {day for day, files in current.items() if exported.get(day.isoformat()) != files}
    stale |= {day for day in days if day in current or day in on_disk} | (on_disk - set(current))
    refresh = sorted(stale)
    replaced = read_partitions(view, refresh)
    key, column = view_join_key(view), view.tags["period_column"]
    columns = list(dict.fromkeys([PARTITION_COLUMN, key, column, *(f.name for f in view.features)]))
    present = [day for day in refresh if day in current]
    frame = (
        pd.concat(
            [
                t.to_pandas(columns=columns, filters=[(PARTITION_COLUMN, "in", present)])
                for t in tables.values()
            ],
            ignore_index=True,
        )
        if present
        else pd.DataFrame(columns=columns)
    )
    _folder(view).mkdir(parents=True, exist_ok=True)
    parts = []
    for day in refresh:
        path = _partition_file(view, day)
        if day not in current:
            path.unlink(missing_ok=True)
            exported.pop(day.isoformat(), None)
            continue
        rows = _as_snapshot_rows(view, frame[pd.to_datetime(frame[PARTITION_COLUMN]).dt.date == day])
        _replace_file(path, lambda partial, rows=rows: pq.write_table(rows, partial, coerce_timestamps="us"))
        exported[day.isoformat()] = current[day]
        parts.append(rows)
    _replace_file(manifest_path, lambda partial: partial.write_text(json.dumps(exported, sort_keys=True)))
    legacy = _folder(view).with_name(f"{_folder(view).name}.parquet")  # the one-file snapshot of before
    legacy.unlink(missing_ok=True)
    data = pa.concat_tables(parts) if parts else snapshot_schema(view).empty_table()
    return Snapshot(
        view.name,
        str(_folder(view)),
        max(t.version() for t in tables.values()),
        data.num_rows,
        time.monotonic() - started,
        tuple(refresh),
        data,
        replaced,
    )
