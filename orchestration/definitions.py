"""The Dagster code location: every domain's assets, the lake resource, jobs and schedules."""

import warnings

import dagster as dg

from assets import DATASETS, DOMAINS
from orchestration import features, governance
from orchestration.factory import DAILY, domain_assets
from orchestration.resources import LakeResource
from orchestration.sensors import landing_sensor

# One builder for every declaration, the quality summaries included (a summary sits in its domain's group).
ASSETS = domain_assets(DATASETS)


def domain_job(domain: str):
    return dg.define_asset_job(f"{domain}_daily", selection=dg.AssetSelection.groups(domain),
                               description=f"Every {domain} asset for one daily partition (or a range).")


JOBS = [domain_job(domain) for domain in DOMAINS]
# Each day's partition of every gated dataset is expected by 03:00 UTC the next day (the schedules run at 01:00).
# Freshness as asset checks (next to the quality checks, run by the jobs) rather than FreshnessPolicy, which
# Dagster 1.13 prefers but evaluates only with the daemon: its "superseded" warning is silenced here.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    FRESHNESS_CHECKS = dg.build_time_partition_freshness_checks(
        assets=[dg.AssetKey(d.key_path) for d in DATASETS if d.layer != "raw"], deadline_cron="0 3 * * *")
    FRESHNESS_SENSOR = dg.build_sensor_for_freshness_checks(freshness_checks=FRESHNESS_CHECKS)

defs = dg.Definitions(
    # Feature assets sit in their domain's group, so each domain job materializes its features too.
    assets=[*ASSETS, *features.ASSETS],
    jobs=[*JOBS, *governance.JOBS],
    # Each day's partition is built once the day has ended.
    schedules=[*(dg.build_schedule_from_partitioned_job(job, hour_of_day=1) for job in JOBS), *governance.SCHEDULES],
    asset_checks=[*features.CHECKS, *FRESHNESS_CHECKS],
    sensors=[landing_sensor(domain, job, DAILY) for domain, job in zip(DOMAINS, JOBS)] + [FRESHNESS_SENSOR],
    resources={"lake": LakeResource()},
    # One engine per run process: steps share the in-process Sail server instead of each starting one.
    executor=dg.in_process_executor,
)
