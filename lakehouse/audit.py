"""The audit trail of retention and erasure: one Delta table, `<root>/audit/actions`, appended to.

A row is one action on one target (a table, a landing source, a staging folder, a store): what it
removed or would remove (dry run), the run, the time and, for erasure, the subject's token (never the
subject itself) and whether the verification scan found it gone. Erasure appends each place's row as
soon as that place is done, so the trail of a run that failed half-way says what it removed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import pyarrow as pa
from deltalake import DeltaTable

from lakehouse import delta
from lakehouse.config import LakehouseConfig

SCHEMA = pa.schema(
    [
        ("action", pa.string()),
        ("step", pa.string()),
        ("target", pa.string()),
        ("partitions", pa.list_(pa.string())),
        ("rows", pa.int64()),
        ("files", pa.int64()),
        ("bytes", pa.int64()),
        ("dry_run", pa.bool_()),
        ("subject_column", pa.string()),
        ("subject_token", pa.string()),
        ("verified", pa.bool_()),
        ("detail", pa.string()),
        ("run_id", pa.string()),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class Record:
    action: str  # retention | erasure | backfill
    step: str  # delete | vacuum | landing | staging | refused | summary | verify | emptied
    target: str  # catalog dataset id, e.g. raw.events.events or landing.events.events
    rows: int = 0
    files: int = 0
    bytes: int = 0
    partitions: Sequence[str] = field(default_factory=tuple)
    dry_run: bool = False
    subject_column: str | None = None
    subject_token: str | None = None
    verified: bool | None = None
    detail: str = ""


def uri(config: LakehouseConfig) -> str:
    return f"{config.root}/audit/actions"


def write(config: LakehouseConfig, run_id: str, records: Sequence[Record]) -> None:
    if not records:
        return
    now = dt.datetime.now(dt.UTC)
    rows = [
        {**asdict(r), "partitions": list(r.partitions), "run_id": run_id, "recorded_at": now} for r in records
    ]
    delta.append_rows(uri(config), pa.Table.from_pylist(rows, schema=SCHEMA), config.storage_options)


def read(config: LakehouseConfig, run_id: str | None = None) -> list[dict]:
    """Audit rows, oldest first (of one run when given)."""
    if not DeltaTable.is_deltatable(uri(config), storage_options=config.storage_options):
        return []
    rows = DeltaTable(uri(config), storage_options=config.storage_options).to_pyarrow_table().to_pylist()
    return sorted(
        (r for r in rows if run_id is None or r["run_id"] == run_id), key=lambda r: r["recorded_at"]
    )
