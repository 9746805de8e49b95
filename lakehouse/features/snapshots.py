"""Parquet snapshots of a curated table's current Delta version: all Feast ever reads offline."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from lakehouse import residency
from lakehouse.config import LakehouseConfig
from lakehouse.features.store import TIMESTAMP


@dataclass(frozen=True)
class Snapshot:
    view: str
    path: str
    table_version: int  # a resident source: the highest of its regional tables' versions
    rows: int
    seconds: float


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


def export_snapshot(config: LakehouseConfig, view) -> Snapshot:
    """Rewrite the view's Parquet snapshot from the current version of its curated table.

    The table (a resident source: every region's) is read through its Delta log (delta-rs), so removed
    files never reach Feast; the file is replaced atomically and whole. `event_timestamp` (microseconds,
    UTC) is the end of the row's period: the moment the aggregate was complete.
    """
    started = time.monotonic()
    uris = view_source_uris(config, view)
    if not uris:
        raise FileNotFoundError(
            f"the source table {view.tags['source_table']} of view {view.name} is not built"
        )
    tables = [DeltaTable(uri, storage_options=config.storage_options) for uri in uris]
    key, column = view_join_key(view), view.tags["period_column"]
    features = {f.name: _ARROW[str(f.dtype)] for f in view.features}
    frame = pd.concat(
        [table.to_pandas(columns=[key, column, *features]) for table in tables], ignore_index=True
    )
    frame[TIMESTAMP] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]") + view_ttl(view)
    for name, arrow_type in features.items():
        if arrow_type == pa.float64():
            frame[name] = pd.to_numeric(frame[name].astype(object), errors="coerce").astype("float64")
    schema = pa.schema([(key, pa.string()), (TIMESTAMP, pa.timestamp("us", tz="UTC")), *features.items()])
    data = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    path = Path(view.batch_source.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")  # concurrent exports each replace whole
    pq.write_table(data, partial, coerce_timestamps="us")
    os.replace(partial, path)
    version = max(table.version() for table in tables)
    return Snapshot(view.name, str(path), version, data.num_rows, time.monotonic() - started)
