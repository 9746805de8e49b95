"""The Dagster code location: every domain's assets, the lake resource, jobs and schedules."""

import warnings
from pathlib import Path

import dagster as dg

from assets import DECLARED_IN_YAML, DOMAINS, declarations, domain_datasets
from lakehouse.datasets import LAYERS
from lakehouse.production import check_production
from lakehouse.residency import check_crossings
from orchestration import features, governance, plan
from orchestration.factory import DAILY, domain_assets
from orchestration.resources import LakeResource
from orchestration.sensors import landing_sensor

DATASETS = declarations()
check_crossings(DATASETS)  # no declaration moves personal data out of its region
# One builder for every declaration, the quality summaries included (a summary sits in its domain's group):
# the Python ones here, the YAML ones (assets/<domain>/<dataset>/defs.yaml) by their DatasetComponent,
# which calls the same factory. Each is built once.
ASSETS = domain_assets(declarations(yaml=False))


def yaml_components() -> dg.Definitions:
    """The defs folder's DatasetComponents. The CLI and the quality summaries read the same YAML without
    Dagster (assets.yaml_datasets): the tables built here must be exactly the ones declared there."""
    built = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    tables = {
        tuple(key.path)
        for a in built.assets or ()
        if isinstance(a, dg.AssetsDefinition)
        for key in a.keys
        if key.path[0] in LAYERS
    }
    declared = {tuple(d.key_path) for d in DECLARED_IN_YAML}
    if tables != declared:
        raise RuntimeError(f"the defs folder built {sorted(tables)}, its YAML declares {sorted(declared)}")
    return built


def domain_job(domain: str):
    return dg.define_asset_job(
        f"{domain}_daily",
        selection=dg.AssetSelection.groups(domain),
        description=f"Every {domain} asset for one daily partition (or a range).",
    )


JOBS = [domain_job(domain) for domain in DOMAINS]
# A domain that lands data is built at 01:00; one built only from other domains' tables (usage) at 02:00,
# after them, and it has no landing to sense.
LANDS = {domain: any(d.layer == "raw" for d in domain_datasets(domain)) for domain in DOMAINS}
# Each day's partition of every gated dataset is expected by 03:00 UTC the next day.
# Freshness as asset checks (next to the quality checks, run by the jobs) rather than FreshnessPolicy, which
# Dagster 1.13 prefers but evaluates only with the daemon: its "superseded" warning is silenced here.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    FRESHNESS_CHECKS = dg.build_time_partition_freshness_checks(
        assets=[dg.AssetKey(d.key_path) for d in DATASETS if d.layer != "raw"], deadline_cron="0 3 * * *"
    )
    FRESHNESS_SENSOR = dg.build_sensor_for_freshness_checks(freshness_checks=FRESHNESS_CHECKS)

check_production()  # LAKEHOUSE_ENV=production refuses the embedded defaults
defs = dg.Definitions.merge(
    yaml_components(),
    dg.Definitions(
        # Feature assets sit in their domain's group, so each domain job materializes its features too.
        assets=[*ASSETS, *features.ASSETS],
        jobs=[*JOBS, *governance.JOBS, plan.plan_job],
        # Each day's partition is built once the day has ended.
        schedules=[
            *(
                dg.build_schedule_from_partitioned_job(job, hour_of_day=1 if LANDS[domain] else 2)
                for domain, job in zip(DOMAINS, JOBS)
            ),
            *governance.SCHEDULES,
        ],
        asset_checks=[*features.CHECKS, *FRESHNESS_CHECKS],
        sensors=[landing_sensor(domain, job, DAILY) for domain, job in zip(DOMAINS, JOBS) if LANDS[domain]]
        + [FRESHNESS_SENSOR],
        resources={"lake": LakeResource()},
        # One engine per run process: steps share the in-process Sail server instead of each starting one.
        executor=dg.in_process_executor,
    ),
)
