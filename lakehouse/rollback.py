"""Rollback: put back the partitions a run (or the commits after a version) wrote, in the dataset and the
tables that follow it, as they were before.

A restore is partition-exact: each partition is rewritten from a `versionAsOf` read of the version to restore,
through `Lake.write` (the one partition-exact writer), so other partitions keep their files. A partition that
did not exist at that version is emptied, explicitly, and audited as `emptied`.

What is restored, and to which version:
- `--run R`: every table the catalog's lineage says R wrote (dataset, quarantine, downstream datasets) at the
  partitions it wrote, plus the quality-metrics tables of R's datasets (not in the lineage). A table's commit
  by R is the lineage's `dataset_version` (a metrics table's: its first commit changing those partitions after
  R's first commit and before R recorded the dataset in the catalog); the content before R is the version
  before it. A lineage row whose version did not change its partitions (a step that wrote nothing new) is
  skipped.
- `DATASET --partition P --to-version V`: the dataset's P at V; the other tables (its quarantine and metrics
  tables, every dataset downstream of it in the catalog, and theirs) at P as of the moment the commits undone
  began: the earliest commit, among these tables, of the run that made the dataset's first commit after V that
  changed P (without such a run in the lineage: that commit's time). Each table takes its latest version
  committed before that moment (Delta history timestamps, milliseconds). Writes of one run come in order
  (quarantine, dataset, metrics, then downstream), so this is the content the run replaced in each.

Refusals, all before anything is written:
- a later commit (after the run's) rewrote one of the partitions: undoing the run would undo it too (override:
  `allow_later_writes`; compactions, which change no row, do not count);
- the data files the restored version needs were removed (vacuum, retention): names how many;
- the brake: in a table, the rollback would remove more than `BRAKE_FACTOR` times the rows the first write it
  undoes left in those partitions (beyond `BRAKE_MIN_ROWS`). Rows beyond that were added by writes after it,
  which a rollback of one write should not drop (override: `confirm`).
A dry run refuses nothing: it reports what would be restored and what would be refused.

Each table is audited as soon as it is restored (dataset, partitions, from and to versions, rows before and
after), and recorded in the catalog as a materialization of the rollback's run, with the lineage of the
content it restored, so that the catalog's rows, version and lineage match the tables. A rollback failing
half-way leaves the audit of the tables it restored; those now count as later writes, so a second attempt
needs `allow_later_writes` (restoring them again is idempotent).

Like erasure, a rollback must not run while the runs of the domains it restores are writing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse import audit, catalog, delta, storage
from lakehouse.config import LAYERS, LakehouseConfig
from lakehouse.lake import Lake
from lakehouse.maintenance import TableMaintenance

BRAKE_FACTOR = 2.0
BRAKE_MIN_ROWS = 100
# Commits that change files without changing rows: not someone else's write.
NO_DATA_CHANGE = frozenset({"OPTIMIZE"})


class RollbackError(ValueError):
    """A refused rollback: nothing was written."""


@dataclass(frozen=True)
class Target:
    """One table's partitions to restore, and what restoring them means."""

    dataset_id: str  # layer.domain.name
    location: str
    partitions: tuple[str, ...]  # ISO days
    current_version: int
    restore_version: int | None  # None: the table did not exist, the partitions are emptied
    undone: int  # the first commit the restore undoes
    later: tuple[int, ...]  # run rollback: commits after the run's that also changed the partitions
    rows_before: dict[str, int]  # rows per partition now
    rows_after: dict[str, int]  # rows per partition at the restored version
    rows_written: int  # rows the undone commit left in the partitions
    missing_files: int  # data files of the restored version no longer on storage
    producer: dict[str, Any] | None  # the lineage row of the restored content, when known

    @property
    def path(self) -> str:
        return self.dataset_id.replace(".", "/")

    @property
    def days(self) -> list[dt.date]:
        return [dt.date.fromisoformat(day) for day in self.partitions]

    @property
    def emptied(self) -> tuple[str, ...]:
        """Partitions with rows now and none at the restored version (created by what is undone)."""
        return tuple(p for p in self.partitions if self.rows_before[p] and not self.rows_after[p])

    def over_brake(self) -> bool:
        return sum(self.rows_before.values()) > BRAKE_FACTOR * self.rows_written + BRAKE_MIN_ROWS


# -- the Delta log ---------------------------------------------------------------------------------------


def _files(table: DeltaTable, days: Sequence[str]) -> dict[str, dict[str, int]]:
    """Partition -> its data files (path -> rows) in the table's loaded version."""
    found: dict[str, dict[str, int]] = {day: {} for day in days}
    actions = pa.table(table.get_add_actions(flatten=True))
    for path, day, rows in zip(
        actions.column("path").to_pylist(),
        actions.column(f"partition.{delta.PARTITION_COLUMN}").to_pylist(),
        actions.column("num_records").to_pylist(),
    ):
        if str(day) in found:
            found[str(day)][path] = rows or 0
    return found


@dataclass
class _Log:
    """A table's history for some partitions: which commits changed them, and when each commit was made."""

    uri: str
    storage_options: dict[str, str]

    def __post_init__(self) -> None:
        self.table = DeltaTable(self.uri, storage_options=self.storage_options)
        self.current = self.table.version()
        history = self.table.history()
        self.times = {h["version"]: int(h["timestamp"]) for h in history}
        self.operations = {h["version"]: str(h.get("operation", "")).upper() for h in history}

    def at(self, version: int) -> DeltaTable:
        try:
            return DeltaTable(self.uri, version=version, storage_options=self.storage_options)
        except Exception as error:
            raise RollbackError(
                f"{self.uri}: version {version} can no longer be read from the Delta log ({error}); "
                "its log entries were cleaned up"
            ) from error

    def changed(self, since: int, days: Sequence[str]) -> list[int]:
        """Commits after `since` that changed the partitions' rows (compactions excepted)."""
        table, found = self.at(max(since, 0)), []
        previous = _files(table, days) if since >= 0 else {day: {} for day in days}
        for version in range(since + 1, self.current + 1):
            table.load_as_version(version)
            files = _files(table, days)
            if files != previous and self.operations.get(version) not in NO_DATA_CHANGE:
                found.append(version)
            previous = files
        return found

    def wrote(self, version: int | None, days: Sequence[str]) -> bool:
        """Whether commit `version` changed the partitions (a lineage row of a step that wrote nothing new
        names the version it found, another run's commit)."""
        return version is not None and version in self.changed(version - 1, days)

    def rows(self, version: int | None, days: Sequence[str]) -> dict[str, int]:
        if version is None or version < 0:
            return {day: 0 for day in days}
        return {day: sum(files.values()) for day, files in _files(self.at(version), days).items()}

    def latest_before(self, moment: int) -> int | None:
        """The latest version committed strictly before `moment` (ms since the epoch)."""
        earlier = [v for v, t in self.times.items() if t < moment]
        return max(earlier) if earlier else None

    def missing_files(self, config: LakehouseConfig, version: int | None, days: Sequence[str]) -> int:
        """Data files the partitions had at `version` that are no longer on storage (vacuumed)."""
        if version is None or version < 0:
            return 0
        present = set(storage.list_tree(config, self.uri))
        needed = [path for files in _files(self.at(version), days).values() for path in files]
        return sum(f"{self.uri}/{path}" not in present for path in needed)


# -- planning ---------------------------------------------------------------------------------------------


def _producer(lineage: Sequence[dict[str, Any]], dataset_id: str, version: int | None) -> dict | None:
    """The lineage row whose write the restored version holds: the latest at or below it."""
    if version is None:
        return None
    rows = [
        r
        for r in lineage
        if r["dataset_id"] == dataset_id
        and r["dataset_version"] is not None
        and r["dataset_version"] <= version
    ]
    return max(rows, key=lambda r: (r["dataset_version"], r["recorded_at"])) if rows else None


def _target(
    lake: Lake,
    log: _Log,
    dataset_id: str,
    days: Sequence[str],
    restore: int | None,
    undone: int,
    later: Sequence[int],
    lineage: Sequence[dict[str, Any]],
) -> Target:
    restore = None if restore is None or restore < 0 else restore
    return Target(
        dataset_id=dataset_id,
        location=log.uri,
        partitions=tuple(sorted(days)),
        current_version=log.current,
        restore_version=restore,
        undone=undone,
        later=tuple(later),
        rows_before=log.rows(log.current, days),
        rows_after=log.rows(restore, days),
        rows_written=sum(log.rows(undone, days).values()),
        missing_files=log.missing_files(lake.config, restore, days),
        producer=_producer(lineage, dataset_id, restore),
    )


def _restorable(lake: Lake, dataset_id: str) -> _Log | None:
    """The table's log, when it is a partitioned table of the lake (landing and feature stores are not)."""
    layer = dataset_id.split(".")[0]
    if layer not in LAYERS:
        return None
    uri = lake.uri(dataset_id.replace(".", "/"))
    if not TableMaintenance(uri, lake.config.storage_options).exists():
        return None
    return _Log(uri, lake.config.storage_options)


def plan_run(lake: Lake, run_id: str, companions: Mapping[str, Sequence[str]]) -> list[Target]:
    """What rolling back run `run_id` restores: see the module's rules."""
    lineage = catalog.materializations(lake.config)
    written = [r for r in lineage if r["run_id"] == run_id]
    if not written:
        raise RollbackError(f"the catalog's lineage has no materialization of run {run_id!r}")
    targets, commits = [], {}
    for row in sorted(written, key=lambda r: r["dataset_id"]):
        log = _restorable(lake, row["dataset_id"])
        if log is None or not row["partitions"] or row["dataset_version"] is None:
            continue
        version, days = int(row["dataset_version"]), list(row["partitions"])
        if not log.wrote(version, days):
            continue
        commits[row["dataset_id"]] = log.times[version]
        later = log.changed(version, days)
        targets.append(_target(lake, log, row["dataset_id"], days, version - 1, version, later, lineage))
    if not commits:
        return targets
    # A step's metrics table is not in the lineage: its commit by the run is its first change to the
    # partitions after the run's first commit and before the run recorded the dataset in the catalog.
    started = min(commits.values())
    for row in written:
        for companion in companions.get(row["dataset_id"], ()) if row["dataset_id"] in commits else ():
            log = _restorable(lake, companion)
            if log is None or companion in commits or companion in {r["dataset_id"] for r in written}:
                continue
            since = log.latest_before(started)
            changed = log.changed(-1 if since is None else since, list(row["partitions"]))
            if not changed or log.times[changed[0]] > int(row["recorded_at"].timestamp() * 1000):
                continue
            commits[companion] = log.times[changed[0]]
            targets.append(
                _target(
                    lake, log, companion, row["partitions"], changed[0] - 1, changed[0], changed[1:], lineage
                )
            )
    return targets


def plan_version(
    lake: Lake, dataset_id: str, day: str, version: int, companions: Mapping[str, Sequence[str]]
) -> list[Target]:
    """What restoring `dataset_id`'s partition `day` to `version` restores: see the module's rules."""
    log = _restorable(lake, dataset_id)
    if log is None:
        raise RollbackError(f"{dataset_id} is not a partitioned table of the lake")
    if not 0 <= version <= log.current:
        raise RollbackError(f"{dataset_id} has versions 0..{log.current}, not {version}")
    lineage = catalog.materializations(lake.config)
    undone = log.changed(version, [day])
    if not undone:
        return []  # the partition is as it was at `version`
    first = undone[0]
    makers = [
        r
        for r in lineage
        if r["dataset_id"] == dataset_id and r["dataset_version"] == first and day in r["partitions"]
    ]
    related = [dataset_id, *companions.get(dataset_id, ())]
    for downstream in catalog.lineage(lake.config, dataset_id, "downstream"):
        related += [downstream["datasetId"], *companions.get(downstream["datasetId"], ())]
    related = list(dict.fromkeys(related))
    logs = {d: found for d in related if (found := _restorable(lake, d)) is not None}
    moment = log.times[first]
    if makers:
        run = makers[0]["run_id"]
        commits = [
            logs[r["dataset_id"]].times[r["dataset_version"]]
            for r in lineage
            if r["run_id"] == run
            and r["dataset_id"] in logs
            and logs[r["dataset_id"]].wrote(r["dataset_version"], [day])
        ]
        moment = min([moment, *commits])
    targets = [_target(lake, log, dataset_id, [day], version, first, (), lineage)]
    for other, other_log in logs.items():
        if other == dataset_id:
            continue
        restore = other_log.latest_before(moment)
        changed = other_log.changed(-1 if restore is None else restore, [day])
        if changed:
            targets.append(_target(lake, other_log, other, [day], restore, changed[0], (), lineage))
    return targets


# -- doing ------------------------------------------------------------------------------------------------


def refusals(targets: Sequence[Target], allow_later_writes: bool = False, confirm: bool = False) -> list[str]:
    """Why the rollback must not go on (empty: it may)."""
    found = []
    missing = [t for t in targets if t.missing_files]
    if missing:
        found.append(
            "the data files of the versions to restore were removed by a vacuum (or retention): "
            + "; ".join(
                f"{t.dataset_id} version {t.restore_version}: {t.missing_files} files missing"
                for t in missing
            )
        )
    later = [t for t in targets if t.later]
    if later and not allow_later_writes:
        found.append(
            "later commits rewrote partitions the run wrote, and undoing the run would undo them too: "
            + "; ".join(f"{t.dataset_id} {', '.join(t.partitions)} (versions {list(t.later)})" for t in later)
            + " (allow later writes to undo them as well)"
        )
    braked = [t for t in targets if t.over_brake()]
    if braked and not confirm:
        found.append(
            f"the rollback would remove more than {BRAKE_FACTOR:g} times the rows the write it undoes "
            f"left (beyond {BRAKE_MIN_ROWS}): "
            + "; ".join(
                f"{t.dataset_id}: {sum(t.rows_before.values())} rows, {t.rows_written} written"
                for t in braked
            )
            + " (confirm to go on)"
        )
    return found


def _aligned(df: DataFrame, schema) -> DataFrame:
    """The old version's rows in the table's current schema (columns added since then are null)."""
    return df.select(
        *[
            F.col(f.name) if f.name in df.columns else F.lit(None).cast(f.dataType).alias(f.name)
            for f in schema
        ]
    )


def _restored_rows(lake: Lake, target: Target) -> DataFrame:
    current = lake.spark.read.format("delta").load(lake.engine_path(target.location))
    if target.restore_version is None:
        return lake.spark.createDataFrame([], current.schema)
    old = (
        lake.spark.read.format("delta")
        .option("versionAsOf", target.restore_version)
        .load(lake.engine_path(target.location))
        .where(delta.partition_predicate(target.days))
    )
    return _aligned(old, current.schema)


def _detail(target: Target, label: str, new_version: int | None) -> str:
    to = "nothing (no table)" if target.restore_version is None else f"version {target.restore_version}"
    result = f"; new version {new_version}" if new_version is not None else ""
    return (
        f"rollback of {label}: from version {target.current_version} "
        f"(rows {json.dumps(target.rows_before)}) to the content of {to} "
        f"(rows {json.dumps(target.rows_after)}){result}"
    )


def _record_catalog(lake: Lake, run_id: str, target: Target, written: delta.WriteResult) -> None:
    entry = catalog.get_entry(lake.config, target.dataset_id)
    if entry is None:
        return  # the table is not catalogued (quality metrics): its log is the record
    stats = TableMaintenance(target.location, lake.config.storage_options).stats()
    producer = target.producer or {}
    restored = catalog.Entry(
        path=target.path,
        owner=entry["owner"],
        description=entry["description"],
        location=entry["location"],
        fields=[catalog.Field(**f) for f in entry["schema"]["fields"]],
        tags=entry["tags"],
        retention_days=entry["retentionDays"],
        regions=entry["regions"],
        subject_columns=entry["subjectColumns"],
        subject_paths=entry["subjectPaths"],
        tenant_column=entry["tenantColumn"],
        region_column=entry["regionColumn"],
        latest_partition=entry["latestPartition"],
        row_count=stats.row_count,
        delta_version=written.version,
        schema_version=entry["schemaVersion"],
    )
    upstream = [(u["dataset_id"], u["version"]) for u in json.loads(producer.get("upstream_json") or "[]")]
    catalog.record(
        lake.config,
        [
            catalog.Materialization(
                run_id=run_id,
                entry=restored,
                partitions=list(target.partitions),
                rows_written=written.row_count,
                code_version=producer.get("code_version") or "rollback",
                upstream=upstream,
            )
        ],
    )


def execute(
    lake: Lake,
    targets: Sequence[Target],
    run_id: str,
    label: str,
    dry_run: bool = False,
    allow_later_writes: bool = False,
    confirm: bool = False,
) -> list[audit.Record]:
    """Refuse (nothing written) or restore each target, auditing and cataloguing each as it is done.
    Returns the audit records (a dry run's: what would be restored, and what would be refused)."""
    refused = refusals(targets, allow_later_writes, confirm)
    if refused and not dry_run:
        audit.write(
            lake.config,
            run_id,
            [audit.Record("rollback", "refused", label, detail="; ".join(refused))],
        )
        raise RollbackError(f"rollback of {label} refused, nothing written: " + "; ".join(refused))
    records = []
    for target in targets:
        written = None if dry_run else lake.write(target.path, _restored_rows(lake, target), target.days)
        if written is not None:
            _record_catalog(lake, run_id, target, written)
        record = audit.Record(
            "rollback",
            "restore",
            target.dataset_id,
            rows=sum(target.rows_after.values()),
            partitions=target.partitions,
            dry_run=dry_run,
            verified=None
            if written is None
            else {d.isoformat(): n for d, n in written.rows_per_partition.items()} == target.rows_after,
            detail=_detail(target, label, None if written is None else written.version),
        )
        records.append(record)
        if target.emptied:
            records.append(
                dataclasses.replace(
                    record,
                    step="emptied",
                    rows=sum(target.rows_before[p] for p in target.emptied),
                    partitions=target.emptied,
                    verified=None,
                    detail=f"rollback of {label}: partitions absent before, emptied on purpose",
                )
            )
        audit.write(lake.config, run_id, records[-2 if target.emptied else -1 :])
    summary = audit.Record(
        "rollback",
        "summary",
        label,
        rows=sum(sum(t.rows_after.values()) for t in targets),
        partitions=tuple(sorted({p for t in targets for p in t.partitions})),
        dry_run=dry_run,
        verified=None if dry_run else all(r.verified for r in records if r.step == "restore"),
        detail=f"{sum(r.step == 'restore' for r in records)} tables restored"
        + (f"; would be refused: {'; '.join(refused)}" if refused else ""),
    )
    audit.write(lake.config, run_id, [summary])
    return [*records, summary]
