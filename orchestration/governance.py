"""Retention, erasure and table maintenance as Dagster jobs (launched from the UI with config, or on a
schedule)."""

import datetime as dt

import dagster as dg
from pydantic import Field

from lakehouse import erasure, maintenance, retention
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

JOBS = [retention_job, erasure_job, maintenance_job]
SCHEDULES = [daily_retention, daily_maintenance]
