"""Retention: every catalogued table and landing source keeps its declared number of days.

Partitions older than the retention (relative to a reference date) are deleted from the Delta log,
then vacuumed once their files have been tombstoned for longer than the safety window, so the bytes
really leave storage while a reader still on an older version has the window to finish. Landing
files go when their day is past the source's window AND they were last modified longer ago than the
safety window: a file re-delivered for an old day (to backfill it) stays until a run could read it.
Staging folders (`<root>/_staging/`) exist only while a run works: one whose newest file is older
than `STAGING_MAX_AGE_HOURS` was left by a killed run and holds unprotected rows, so it goes. The rows a
failed quality gate kept for review (`<root>/_review/`) go after `REVIEW_MAX_AGE_HOURS`, for the same
reason.

Brakes, so that a typo cannot empty the lake: a reference date after today (UTC) is refused; the
safety window has a floor (`SAFETY_WINDOW_FLOOR_HOURS`) unless overridden explicitly; a run that
would delete more than `MAX_SHARE` of a table's rows removes nothing unless confirmed. Refusals are
audited. A dry run measures everything (what would go, what the brake would refuse) and removes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from deltalake import DeltaTable

from lakehouse import audit, catalog, delta, landing, storage
from lakehouse.config import LakehouseConfig
from lakehouse.maintenance import TableMaintenance

DEFAULT_SAFETY_WINDOW_HOURS = 168
SAFETY_WINDOW_FLOOR_HOURS = 24  # below it readers of older versions (and re-delivered landing files) lose
MAX_SHARE = 0.5  # of a table's rows one run may delete without confirmation
STAGING_MAX_AGE_HOURS = 6  # a run's staging folder is written at its start and removed at its end
REVIEW_MAX_AGE_HOURS = 7 * 24  # a week to look at what a failed gate refused to publish
LEFTOVER_FOLDERS = {
    "staging": ("_staging", STAGING_MAX_AGE_HOURS),
    "review": ("_review", REVIEW_MAX_AGE_HOURS),
}


class RetentionRefused(ValueError):
    """The run would do something a brake stops; nothing was removed."""


@dataclass(frozen=True)
class Removal:
    """What one step removes (or would) from one target."""

    step: str  # delete | vacuum | landing | staging | review
    target: str
    partitions: tuple[str, ...] = ()
    rows: int = 0
    files: int = 0
    bytes: int = 0
    share: float = 0.0  # delete: of the table's rows
    kept_by_window: int = 0  # landing: files past the retention, modified within the safety window
    refused: bool = False  # delete: over MAX_SHARE and not confirmed

    def audit_record(self, dry_run: bool, cutoff: dt.date | None) -> audit.Record:
        detail = (
            f"partitions before {cutoff.isoformat()}"
            if cutoff
            else f"newest file older than {STAGING_MAX_AGE_HOURS} h"
        )
        if self.step == "delete":
            detail += f", {self.share:.1%} of the table's rows"
            if self.share > MAX_SHARE and not self.refused:
                detail += f" (over {MAX_SHARE:.0%}: confirmed)"
        if self.kept_by_window:
            detail += f", {self.kept_by_window} file(s) kept: modified within the safety window"
        return audit.Record(
            action="retention",
            step="refused" if self.refused else self.step,
            target=self.target,
            partitions=self.partitions,
            rows=self.rows,
            files=self.files,
            bytes=self.bytes,
            dry_run=dry_run or self.refused,
            detail=detail,
        )


def cutoff_for(reference: dt.date, retention_days: int) -> dt.date:
    """The oldest partition kept: `retention_days` days ending with the reference date."""
    return reference - dt.timedelta(days=retention_days - 1)


def expired_partitions(config: LakehouseConfig, target: str, uri: str, cutoff: dt.date) -> Removal:
    """The table's partitions before `cutoff`: their rows, files, bytes and share of the table's rows."""
    files = TableMaintenance(uri, config.storage_options).files()
    expired = [f for f in files if f.partition is not None and dt.date.fromisoformat(f.partition) < cutoff]
    rows, total = sum(f.rows for f in expired), sum(f.rows for f in files)
    return Removal(
        "delete",
        target,
        tuple(sorted({f.partition for f in expired if f.partition is not None})),
        rows,
        len(expired),
        sum(f.size for f in expired),
        share=rows / total if total else 0.0,
    )


def vacuum(
    config: LakehouseConfig, target: str, uri: str, safety_window_hours: int, dry_run: bool
) -> Removal:
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


def expired_landing(
    config: LakehouseConfig, target: str, cutoff: dt.date, modified_before: dt.datetime
) -> tuple[Removal, list[str]]:
    """The source's files of days before `cutoff` last modified before `modified_before`, and their URIs."""
    _, domain, source = target.split(".")
    past = {
        uri: day
        for uri, (day, _) in landing.source_files(config, domain, source).items()
        if day is not None and day < cutoff
    }
    stored = storage.list_objects(config, config.landing_uri(domain)) if past else {}
    expired = sorted(uri for uri in past if uri in stored and stored[uri].modified < modified_before)
    return Removal(
        "landing",
        target,
        tuple(sorted({past[uri].isoformat() for uri in expired})),
        files=len(expired),
        bytes=sum(stored[uri].size for uri in expired),
        kept_by_window=len(past) - len(expired),
    ), expired


def leftover_folders(config: LakehouseConfig, now: dt.datetime) -> list[tuple[Removal, list[str]]]:
    """Folders under `<root>/_staging/` and `<root>/_review/` whose newest file is older than their age
    limit (`LEFTOVER_FOLDERS`), with their files."""
    found = []
    for step, (prefix, max_age_hours) in LEFTOVER_FOLDERS.items():
        folders: dict[str, dict[str, storage.StoredObject]] = {}
        for uri, stored in storage.list_objects(config, f"{config.root}/{prefix}").items():
            folders.setdefault(uri.rsplit("/", 1)[0], {})[uri] = stored
        limit = now - dt.timedelta(hours=max_age_hours)
        found += [
            (
                Removal(
                    step,
                    folder[len(config.root) + 1 :],
                    files=len(objects),
                    bytes=sum(o.size for o in objects.values()),
                ),
                sorted(objects),
            )
            for folder, objects in sorted(folders.items())
            if max(o.modified for o in objects.values()) < limit
        ]
    return found


def check_request(
    reference: dt.date, safety_window_hours: int, override_safety_floor: bool, today: dt.date
) -> None:
    """Refuse a reference date after today and a safety window under the floor (unless overridden)."""
    if reference > today:
        raise RetentionRefused(
            f"reference date {reference.isoformat()} is after today ({today.isoformat()} "
            "UTC): retention would delete partitions still within their retention"
        )
    if safety_window_hours < 0:
        raise RetentionRefused(f"safety window {safety_window_hours} h: it cannot be negative")
    if safety_window_hours < SAFETY_WINDOW_FLOOR_HOURS and not override_safety_floor:
        raise RetentionRefused(
            f"safety window {safety_window_hours} h is under the floor of {SAFETY_WINDOW_FLOOR_HOURS} h: "
            "readers of older versions and landing files being re-delivered would lose their data; override "
            "the floor explicitly (--allow-short-safety-window, or override_safety_floor: true in the job) "
            "if that is intended"
        )


REPORT_COLUMNS = ("dataset", "step", "partitions", "rows", "files", "bytes", "note")


def report(removals: list[Removal]) -> list[tuple[str, ...]]:
    """One row per step that removes, would remove, keeps or refuses something (CLI and job log)."""
    rows: list[tuple[str, ...]] = []
    for r in removals:
        if not (r.files or r.rows or r.kept_by_window or r.refused):
            continue
        note = (
            f"REFUSED without confirmation: {r.share:.1%} of the rows > {MAX_SHARE:.0%}"
            if r.refused
            else f"{r.share:.1%} of the rows"
            if r.step == "delete"
            else f"{r.kept_by_window} file(s) kept: modified within the safety window"
            if r.kept_by_window
            else ""
        )
        rows.append(
            (
                r.target,
                r.step,
                ", ".join(r.partitions) or "-",
                str(r.rows) if r.step == "delete" else "-",
                str(r.files),
                str(r.bytes),
                note,
            )
        )
    return rows


def _refusal(message: str) -> audit.Record:
    return audit.Record(action="retention", step="refused", target="*", dry_run=True, detail=message)


def apply(
    config: LakehouseConfig,
    reference: dt.date,
    run_id: str,
    dry_run: bool = False,
    safety_window_hours: int = DEFAULT_SAFETY_WINDOW_HOURS,
    override_safety_floor: bool = False,
    confirm: bool = False,
) -> list[Removal]:
    """Retention for every catalogued table, landing source and abandoned staging folder; each step audited.

    Raises RetentionRefused, after auditing it and before removing anything, for a reference date after
    today, a safety window under the floor without `override_safety_floor`, or (unless `confirm`) a delete
    over `MAX_SHARE` of a table's rows; a dry run reports the last as refused deletes and raises nothing.
    """
    now = dt.datetime.now(dt.UTC)
    try:
        check_request(reference, safety_window_hours, override_safety_floor, now.date())
    except RetentionRefused as refused:
        audit.write(config, run_id, [_refusal(str(refused))])
        raise
    tables, sources = [], []
    for entry in catalog.list_entries(config):
        if not entry["retentionDays"]:
            continue
        cutoff = cutoff_for(reference, entry["retentionDays"])
        if entry["layer"] == "landing":
            sources.append(
                (
                    cutoff,
                    *expired_landing(
                        config, entry["datasetId"], cutoff, now - dt.timedelta(hours=safety_window_hours)
                    ),
                )
            )
            continue
        for target, location in catalog.located(entry):  # a resident dataset: every region's table
            if DeltaTable.is_deltatable(location, storage_options=config.storage_options):
                expired = expired_partitions(config, target, location, cutoff)
                tables.append(
                    (cutoff, location, replace(expired, refused=expired.share > MAX_SHARE and not confirm))
                )
    over = [expired for _, _, expired in tables if expired.refused]
    if over and not dry_run:
        message = (
            f"retention would delete more than {MAX_SHARE:.0%} of the rows of "
            + ", ".join(
                f"{r.target} ({r.share:.1%}: partitions {r.partitions[0]}..{r.partitions[-1]})" for r in over
            )
            + "; nothing was removed. Check the reference date and retention, then confirm "
            "(--confirm, or confirm: true in the job) to apply it"
        )
        audit.write(
            config,
            run_id,
            [_refusal(message), *(r.audit_record(dry_run, cutoff) for cutoff, _, r in tables if r.refused)],
        )
        raise RetentionRefused(message)
    removals, records = [], []
    for cutoff, location, expired in tables:
        if expired.partitions and not dry_run:
            delta.delete_rows(location, f"dt < '{cutoff.isoformat()}'", config.storage_options)
        steps = [expired, vacuum(config, expired.target, location, safety_window_hours, dry_run)]
        removals += steps
        records += [step.audit_record(dry_run, cutoff) for step in steps if step.files or step.rows]
    for cutoff, removal, uris in sources:
        if uris and not dry_run:
            storage.delete_files(config, uris)
        removals.append(removal)
        if removal.files or removal.kept_by_window:
            records.append(removal.audit_record(dry_run, cutoff))
    for removal, uris in leftover_folders(config, now):
        if not dry_run:
            storage.delete_files(config, uris)
        removals.append(removal)
        records.append(removal.audit_record(dry_run, None))
    done = [r for r in removals if not r.refused]
    records.append(
        audit.Record(
            action="retention",
            step="summary",
            target="*",
            dry_run=dry_run,
            rows=sum(r.rows for r in done),
            files=sum(r.files for r in done),
            bytes=sum(r.bytes for r in done),
            detail=f"reference date {reference.isoformat()}, safety window {safety_window_hours} h"
            + (f", {len(over)} table(s) over {MAX_SHARE:.0%} would be refused" if over else ""),
        )
    )
    audit.write(config, run_id, records)
    if not dry_run:
        catalog.refresh_stats(config, [r.target for r in removals if r.step == "delete" and r.rows])
    return removals
