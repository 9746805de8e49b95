"""Retention, erasure and table maintenance as Dagster jobs (launched from the UI with config, or on a
schedule)."""

import datetime as dt

import dagster as dg
from pydantic import Field

from lakehouse import catalog, erasure, maintenance, retention, rollback, subject_export
from lakehouse.lake import Lake
from orchestration.resources import LakeResource

GOVERNANCE_POOL = "governance"
FLOOR = retention.SAFETY_WINDOW_FLOOR_HOURS


class RetentionConfig(dg.Config):
    dry_run: bool = Field(
        default=False, description="Report what would be removed (and refused); remove nothing."
    )
    reference_date: str = Field(
        default="", description="ISO date retention counts back from, not after today; empty: today (UTC)."
    )
    safety_window_hours: int = Field(
        default=retention.DEFAULT_SAFETY_WINDOW_HOURS,
        description="Deleted files are vacuumed, and expired landing files "
        f"deleted, once this old (>= {FLOOR} h).",
    )
    override_safety_floor: bool = Field(default=False, description=f"Allow a safety window under {FLOOR} h.")
    confirm: bool = Field(
        default=False,
        description=f"Apply even where more than {retention.MAX_SHARE:.0%} "
        "of a table's rows would be deleted.",
    )


class ErasureConfig(dg.Config):
    """A reference to a request, never the subject: Dagster keeps run config forever."""

    request_id: str = Field(description="A request filed by `lakehouse erase request COLUMN VALUE`.")
    dry_run: bool = Field(default=False, description="Report places, rows and files; remove nothing.")
    force: bool = Field(
        default=False,
        description=f"Go past the brake (more than {erasure.BRAKE_SHARE:.0%} of a table's rows).",
    )


class MaintenanceConfig(dg.Config):
    dry_run: bool = Field(default=False, description="Report what would be compacted and checkpointed.")
    min_small_files: int = Field(
        default=maintenance.MIN_SMALL_FILES,
        description=f"Compact a partition once it has this many files under "
        f"{maintenance.SMALL_FILE_BYTES // 2**20} MiB.",
    )


class RollbackConfig(dg.Config):
    run_id: str = Field(default="", description="Roll back every partition this run wrote (or give dataset).")
    dataset: str = Field(
        default="", description="A dataset id (layer.domain.name) to restore one partition of."
    )
    partition: str = Field(default="", description="With dataset: the partition (ISO day).")
    to_version: int = Field(default=-1, description="With dataset: the Delta version to restore it to.")
    dry_run: bool = Field(
        default=False, description="Report what would be restored (and refused); write nothing."
    )
    allow_later_writes: bool = Field(
        default=False, description="Also undo later commits that rewrote the run's partitions."
    )
    confirm: bool = Field(
        default=False,
        description=f"Go past the brake (removing more than {rollback.BRAKE_FACTOR:g} times the rows "
        "the undone write left).",
    )


class ExportConfig(dg.Config):
    """A reference to a request, never the subject: Dagster keeps run config forever."""

    request_id: str = Field(description="A request filed by `lakehouse export-subject request COLUMN VALUE`.")


def rollback_companions() -> dict[str, list[str]]:
    """Dataset id -> the tables its step writes besides it (quarantine, quality metrics)."""
    from assets import declarations
    from quality.metrics import metrics_path

    return {
        catalog.dataset_id(d.path): [
            catalog.dataset_id(p)
            for p in (
                d.quarantine_path if d.has_quarantine else None,
                metrics_path(d) if d.layer != "raw" else None,
            )
            if p
        ]
        for d in declarations()
    }


def run_rollback(
    lake: Lake,
    run_id: str,
    *,
    target_run: str = "",
    dataset: str = "",
    partition: str = "",
    to_version: int = -1,
    dry_run: bool = False,
    allow_later_writes: bool = False,
    confirm: bool = False,
) -> list:
    """Plan and execute a rollback of a run, or of one dataset partition to a version (CLI and job)."""
    if bool(target_run) == bool(dataset):
        raise rollback.RollbackError("give either a run id, or a dataset with a partition and a version")
    if target_run:
        targets, label = rollback.plan_run(lake, target_run, rollback_companions()), f"run {target_run}"
    else:
        if not partition or to_version < 0:
            raise rollback.RollbackError("a dataset rollback needs a partition and a version (>= 0)")
        dt.date.fromisoformat(partition)
        targets = rollback.plan_version(lake, dataset, partition, to_version, rollback_companions())
        label = f"{dataset} {partition} to version {to_version}"
    return rollback.execute(lake, targets, run_id, label, dry_run, allow_later_writes, confirm)


def _print_removals(context: dg.OpExecutionContext, removals: list[retention.Removal], dry_run: bool) -> None:
    verb = "would remove" if dry_run else "removed"
    for row in retention.report(removals):
        target, step, partitions, rows, files, size, note = row
        context.log.info(
            f"{target} {step}: {verb} partitions {partitions}, {rows} rows, {files} files, "
            f"{size} bytes{'; ' + note if note else ''}"
        )


@dg.op(pool=GOVERNANCE_POOL)
def apply_retention(context: dg.OpExecutionContext, config: RetentionConfig, lake: LakeResource) -> dg.Output:
    reference = (
        dt.date.fromisoformat(config.reference_date)
        if config.reference_date
        else dt.datetime.now(dt.UTC).date()
    )
    removals = retention.apply(
        lake.config,
        reference,
        context.run.run_id,
        dry_run=config.dry_run,
        safety_window_hours=config.safety_window_hours,
        override_safety_floor=config.override_safety_floor,
        confirm=config.confirm,
    )
    _print_removals(context, removals, config.dry_run)
    done = [r for r in removals if not r.refused]
    return dg.Output(
        None,
        metadata={
            "dry_run": config.dry_run,
            "reference_date": reference.isoformat(),
            "rows": sum(r.rows for r in done if r.step == "delete"),
            "files": sum(r.files for r in done),
            "bytes": sum(r.bytes for r in done),
            "targets": sorted({r.target for r in done if r.files or r.rows}),
            "would_refuse": sorted(f"{r.target} ({r.share:.1%})" for r in removals if r.refused),
        },
    )


@dg.op(pool=GOVERNANCE_POOL)
def erase_subject(context: dg.OpExecutionContext, config: ErasureConfig, lake: LakeResource) -> dg.Output:
    """Logs and metadata name the request, the column and the token: the clear value stays in the request."""
    records = erasure.execute_request(
        lake.config, config.request_id, context.run.run_id, dry_run=config.dry_run, force=config.force
    )
    verb = "would remove" if config.dry_run else "removed"
    for r in records:
        context.log.info(f"{r.target} {r.step}: {verb} {r.rows} rows, {r.files} files, verified={r.verified}")
    return dg.Output(
        None,
        metadata={
            "request_id": config.request_id,
            "dry_run": config.dry_run,
            "subject_column": records[-1].subject_column,
            "subject_token": records[-1].subject_token,
            "rows_erased": 0 if config.dry_run else records[-1].rows,
            "rows_found": records[-1].rows,
            "places": len(records) - 1,
            "verified": bool(records[-1].verified),
        },
    )


@dg.op(pool=GOVERNANCE_POOL)
def maintain_tables(
    context: dg.OpExecutionContext, config: MaintenanceConfig, lake: LakeResource
) -> dg.Output:
    records = maintenance.maintain(
        lake.config, context.run.run_id, dry_run=config.dry_run, min_small_files=config.min_small_files
    )
    verb = "would " if config.dry_run else ""
    for r in records:
        context.log.info(f"{r.target}: {verb}{r.step} ({r.detail}; partitions {list(r.partitions) or '-'})")
    compacted = [r for r in records if r.step == "optimize"]
    return dg.Output(
        None,
        metadata={
            "dry_run": config.dry_run,
            "tables_compacted": sorted(r.target for r in compacted),
            "small_files_compacted": sum(r.files for r in compacted),
            "partitions_compacted": sum(len(r.partitions) for r in compacted),
            "checkpoints": sorted(r.target for r in records if r.step == "checkpoint"),
        },
    )


@dg.op(pool=GOVERNANCE_POOL)
def rollback_partitions(
    context: dg.OpExecutionContext, config: RollbackConfig, lake: LakeResource
) -> dg.Output:
    records = run_rollback(
        lake,
        context.run.run_id,
        target_run=config.run_id,
        dataset=config.dataset,
        partition=config.partition,
        to_version=config.to_version,
        dry_run=config.dry_run,
        allow_later_writes=config.allow_later_writes,
        confirm=config.confirm,
    )
    verb = "would restore" if config.dry_run else "restored"
    for r in records:
        context.log.info(f"{r.target} {r.step}: {verb} {list(r.partitions)}: {r.detail}")
    restored = [r for r in records if r.step == "restore"]
    return dg.Output(
        None,
        metadata={
            "dry_run": config.dry_run,
            "rolled_back": records[-1].target,
            "tables": sorted(r.target for r in restored),
            "partitions": {r.target: list(r.partitions) for r in restored},
            "restored": {r.target: r.detail for r in restored},
            "rows_after": sum(r.rows for r in restored),
            "emptied": {r.target: list(r.partitions) for r in records if r.step == "emptied"},
            "verified": bool(records[-1].verified),
            "would_refuse": records[-1].detail if "would be refused" in records[-1].detail else "",
        },
    )


@dg.op(pool=GOVERNANCE_POOL)
def export_subject(context: dg.OpExecutionContext, config: ExportConfig, lake: LakeResource) -> dg.Output:
    """Logs and metadata name the request, the column and the token: the value stays in the request."""
    archive = subject_export.export_request(lake.config, config.request_id, context.run.run_id)
    for d in archive.datasets:
        context.log.info(f"{d.dataset_id}: {d.rows} rows (version {d.version}) -> {d.file}")
    return dg.Output(
        None,
        metadata={
            "request_id": config.request_id,
            "subject_column": archive.subject_column,
            "subject_token": archive.subject_token,
            "archive": archive.uri,
            "rows": archive.rows,
            "rows_per_dataset": {d.dataset_id: d.rows for d in archive.datasets},
        },
    )


@dg.job(
    description="Carry out a subject export request (`lakehouse export-subject request COLUMN VALUE` files "
    "one): every row about the subject in every layer, landing and the online store, as JSON lines plus a "
    "manifest under LAKEHOUSE_EXPORT_ROOT; audited with the token."
)
def export_job():
    export_subject()


@dg.job(
    description="Restore the partitions a run wrote (`run_id`), or one dataset partition to a version "
    "(`dataset`, `partition`, `to_version`), in the dataset, its quarantine and metrics and downstream, "
    "from `versionAsOf` reads; refuses later writes, vacuumed files and the brake; audited, catalogued. "
    "`dry_run: true` reports and writes nothing."
)
def rollback_job():
    rollback_partitions()


@dg.job(
    description="Compact partitions that gathered small files and checkpoint Delta logs that grew, for every "
    "table of the lake and the platform's own (catalog, audit, quality metrics); rows never change; "
    "audited. `dry_run: true` reports and changes nothing."
)
def maintenance_job():
    maintain_tables()


@dg.job(
    description="Delete partitions past each dataset's retention, vacuum past the safety window, "
    "expire landing files; audited. `dry_run: true` reports and removes nothing."
)
def retention_job():
    apply_retention()


@dg.job(
    description="Carry out an erasure request (`lakehouse erase request COLUMN VALUE` files one): "
    "remove the subject from every layer, landing, staging and the online store, vacuum, "
    "verify; audited. `dry_run: true` reports and removes nothing. Not while the domains' "
    "runs are going."
)
def erasure_job():
    erase_subject()


@dg.schedule(
    job=retention_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def daily_retention(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(
        run_key=f"retention-{day}",
        run_config={"ops": {"apply_retention": {"config": {"reference_date": day}}}},
    )


# After retention (03:00); nothing it does changes a row, so it runs unless stopped.
daily_maintenance = dg.ScheduleDefinition(
    name="daily_maintenance",
    job=maintenance_job,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

JOBS = [retention_job, erasure_job, maintenance_job, rollback_job, export_job]
SCHEDULES = [daily_retention, daily_maintenance]
