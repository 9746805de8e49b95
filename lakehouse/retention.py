"""Retention: every catalogued table and landing source keeps its declared number of days.

Partitions older than the retention (relative to a reference date) are deleted from the Delta log,
then vacuumed once their files have been tombstoned for longer than the safety window, so the bytes
really leave storage while a reader still on an older version has the window to finish. Landing
files past their window are deleted outright. A dry run measures the same and removes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from deltalake import DeltaTable

from lakehouse import audit, catalog, delta, landing, storage
from lakehouse.config import LakehouseConfig
from lakehouse.maintenance import TableMaintenance

DEFAULT_SAFETY_WINDOW_HOURS = 168


@dataclass(frozen=True)
class Removal:
    """What one step removes (or would) from one target."""

    step: str  # delete | vacuum | landing
    target: str
    partitions: tuple[str, ...] = ()
    rows: int = 0
    files: int = 0
    bytes: int = 0

    def audit_record(self, dry_run: bool, cutoff: dt.date) -> audit.Record:
        return audit.Record(action="retention", step=self.step, target=self.target, partitions=self.partitions,
                            rows=self.rows, files=self.files, bytes=self.bytes, dry_run=dry_run,
                            detail=f"partitions before {cutoff.isoformat()}")


def cutoff_for(reference: dt.date, retention_days: int) -> dt.date:
    """The oldest partition kept: `retention_days` days ending with the reference date."""
    return reference - dt.timedelta(days=retention_days - 1)


def expired_partitions(config: LakehouseConfig, target: str, uri: str, cutoff: dt.date) -> Removal:
    """The table's partitions before `cutoff`, with their rows, files and bytes (from the log)."""
    expired = [f for f in TableMaintenance(uri, config.storage_options).files()
               if f.partition is not None and dt.date.fromisoformat(f.partition) < cutoff]
    return Removal("delete", target, tuple(sorted({f.partition for f in expired})), sum(f.rows for f in expired),
                   len(expired), sum(f.size for f in expired))


def vacuum(config: LakehouseConfig, target: str, uri: str, safety_window_hours: int, dry_run: bool) -> Removal:
    """Remove the files tombstoned longer than the safety window ago (only list them in a dry run)."""
    table = TableMaintenance(uri, config.storage_options)
    candidates = table.vacuum(retention_hours=safety_window_hours, dry_run=True)
    # delta-rs lists every tombstone past the window, also those an earlier vacuum already deleted
    sizes = storage.list_tree(config, uri) if candidates else {}
    candidates = [path for path in candidates if f"{uri}/{path}" in sizes]
    size = sum(sizes[f"{uri}/{path}"] for path in candidates)
    if candidates and not dry_run:
        table.vacuum(retention_hours=safety_window_hours, dry_run=False)
    return Removal("vacuum", target, files=len(candidates), bytes=size)


def expire_landing(config: LakehouseConfig, target: str, cutoff: dt.date, dry_run: bool) -> Removal:
    _, domain, source = target.split(".")
    expired = {uri: (day, size) for uri, (day, size) in landing.source_files(config, domain, source).items() if day < cutoff}
    if expired and not dry_run:
        storage.delete_files(config, sorted(expired))
    return Removal("landing", target, tuple(sorted({day.isoformat() for day, _ in expired.values()})),
                   files=len(expired), bytes=sum(size for _, size in expired.values()))


def apply(config: LakehouseConfig, reference: dt.date, run_id: str, dry_run: bool = False,
          safety_window_hours: int = DEFAULT_SAFETY_WINDOW_HOURS) -> list[Removal]:
    """Retention for every catalogued table and landing source; each step audited."""
    removals, records = [], []
    for entry in catalog.list_entries(config):
        target, days = entry["datasetId"], entry["retentionDays"]
        if not days:
            continue
        cutoff = cutoff_for(reference, days)
        if entry["layer"] == "landing":
            steps = [expire_landing(config, target, cutoff, dry_run)]
        elif DeltaTable.is_deltatable(entry["location"], storage_options=config.storage_options):
            expired = expired_partitions(config, target, entry["location"], cutoff)
            if expired.partitions and not dry_run:
                delta.delete_rows(entry["location"], f"dt < '{cutoff.isoformat()}'", config.storage_options)
            steps = [expired, vacuum(config, target, entry["location"], safety_window_hours, dry_run)]
        else:
            continue
        removals += steps
        records += [step.audit_record(dry_run, cutoff) for step in steps if step.files or step.rows]
    records.append(audit.Record(
        action="retention", step="summary", target="*", dry_run=dry_run, rows=sum(r.rows for r in removals),
        files=sum(r.files for r in removals), bytes=sum(r.bytes for r in removals),
        detail=f"reference date {reference.isoformat()}, safety window {safety_window_hours} h"))
    audit.write(config, run_id, records)
    if not dry_run:
        catalog.refresh_stats(config, [r.target for r in removals if r.step == "delete" and r.rows])
    return removals
