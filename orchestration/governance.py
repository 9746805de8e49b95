"""Retention and erasure as Dagster jobs (launched from the UI with config, or on a schedule)."""

import datetime as dt

import dagster as dg
from pydantic import Field

from lakehouse import erasure, retention
from orchestration.resources import LakeResource

GOVERNANCE_POOL = "governance"
FLOOR = retention.SAFETY_WINDOW_FLOOR_HOURS


class RetentionConfig(dg.Config):
    dry_run: bool = Field(default=False, description="Report what would be removed (and refused); remove "
                                                     "nothing.")
    reference_date: str = Field(default="", description="ISO date retention counts back from, not after "
                                                        "today; empty: today (UTC).")
    safety_window_hours: int = Field(default=retention.DEFAULT_SAFETY_WINDOW_HOURS,
                                     description="Deleted files are vacuumed, and expired landing files "
                                                 f"deleted, once this old (>= {FLOOR} h).")
    override_safety_floor: bool = Field(default=False, description=f"Allow a safety window under {FLOOR} h.")
    confirm: bool = Field(default=False, description=f"Apply even where more than {retention.MAX_SHARE:.0%} "
                                                     "of a table's rows would be deleted.")


class ErasureConfig(dg.Config):
    subject_column: str = Field(description="A subject column the catalog knows, e.g. user_id or account_id.")
    subject_value: str = Field(description="The subject's identifier as it arrives (not its token).")


def _print_removals(context: dg.OpExecutionContext, removals: list[retention.Removal], dry_run: bool) -> None:
    verb = "would remove" if dry_run else "removed"
    for row in retention.report(removals):
        target, step, partitions, rows, files, size, note = row
        context.log.info(f"{target} {step}: {verb} partitions {partitions}, {rows} rows, {files} files, "
                         f"{size} bytes{'; ' + note if note else ''}")


@dg.op(pool=GOVERNANCE_POOL)
def apply_retention(context: dg.OpExecutionContext, config: RetentionConfig, lake: LakeResource) -> dg.Output:
    reference = dt.date.fromisoformat(config.reference_date) if config.reference_date \
        else dt.datetime.now(dt.timezone.utc).date()
    removals = retention.apply(lake.config, reference, context.run.run_id, dry_run=config.dry_run,
                               safety_window_hours=config.safety_window_hours,
                               override_safety_floor=config.override_safety_floor, confirm=config.confirm)
    _print_removals(context, removals, config.dry_run)
    done = [r for r in removals if not r.refused]
    return dg.Output(None, metadata={
        "dry_run": config.dry_run, "reference_date": reference.isoformat(),
        "rows": sum(r.rows for r in done if r.step == "delete"),
        "files": sum(r.files for r in done), "bytes": sum(r.bytes for r in done),
        "targets": sorted({r.target for r in done if r.files or r.rows}),
        "would_refuse": sorted(f"{r.target} ({r.share:.1%})" for r in removals if r.refused),
    })


@dg.op(pool=GOVERNANCE_POOL)
def erase_subject(context: dg.OpExecutionContext, config: ErasureConfig, lake: LakeResource) -> dg.Output:
    records = erasure.erase(lake.config, config.subject_column, config.subject_value, context.run.run_id)
    for r in records:
        context.log.info(f"{r.target} {r.step}: {r.rows} rows, {r.files} files, verified={r.verified}")
    return dg.Output(None, metadata={
        "subject_column": config.subject_column, "subject_token": records[-1].subject_token,
        "rows_erased": records[-1].rows, "places": len(records) - 1, "verified": bool(records[-1].verified),
    })


@dg.job(description="Delete partitions past each dataset's retention, vacuum past the safety window, "
                    "expire landing files; audited. `dry_run: true` reports and removes nothing.")
def retention_job():
    apply_retention()


@dg.job(description="Erase one subject (e.g. user_id) from every layer, landing and the online store, "
                    "vacuum, verify; audited.")
def erasure_job():
    erase_subject()


@dg.schedule(job=retention_job, cron_schedule="0 3 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def daily_retention(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(run_key=f"retention-{day}", run_config={
        "ops": {"apply_retention": {"config": {"reference_date": day}}}})


JOBS = [retention_job, erasure_job]
SCHEDULES = [daily_retention]
