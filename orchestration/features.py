"""Dagster assets of the Feast feature store: apply the repository, materialize each feature view's
daily partitions to the online store after its curated table, and a point-in-time training set."""

import datetime as dt

import dagster as dg
import pandas as pd

from lakehouse import features
from orchestration.factory import DAILY, SINGLE_RUN, partition_days, pool_for
from orchestration.resources import LakeResource

FEATURES_GROUP = "features"
REGISTRY_KEY = dg.AssetKey(["features", "feast_registry"])
VIEWS = features.view_tables()
DOMAIN_OF = {name: table.split("/")[1] for name, table in VIEWS.items()}


def view_key(view: str) -> dg.AssetKey:
    return dg.AssetKey(["features", DOMAIN_OF[view], view])


@dg.asset(
    key=REGISTRY_KEY,
    group_name=FEATURES_GROUP,
    kinds={"feast"},
    owners=["team:ml-platform"],
    backfill_policy=SINGLE_RUN,
    pool="feast-registry",
    description="`feast apply` of feature_repo/: the registry holds exactly the repository's entities, "
    "feature views and services; online tables are created.",
)
def feast_registry(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    changes = features.apply(lake.config)
    context.log.info(f"{len(changes)} registry change(s): {changes}")
    return dg.MaterializeResult(
        metadata={"changes": changes, "feast_dir": str(features.feast_dir(lake.config))}
    )


@dg.asset_check(asset=REGISTRY_KEY, description="The registry matches the definitions in feature_repo/.")
def feast_registry_in_sync(lake: LakeResource) -> dg.AssetCheckResult:
    changes = features.registry_changes(lake.config)
    return dg.AssetCheckResult(passed=not changes, metadata={"pending_changes": changes})


def _online_asset(view: str, table: str) -> dg.AssetsDefinition:
    """The view's online values for a daily partition (or a range), after the curated table it reads."""

    @dg.asset(
        key=view_key(view),
        deps=[dg.AssetKey(table.split("/")), REGISTRY_KEY],
        partitions_def=DAILY,
        backfill_policy=SINGLE_RUN,
        group_name=DOMAIN_OF[view],
        kinds={"feast", "sqlite", "redis"},
        owners=["team:ml-platform"],
        pool="feast-online",
        tags={"layer": "features", "domain": DOMAIN_OF[view]},
        description=f"Feature view `{view}` in the online store: each entity's latest row of {table} "
        "(current Delta version), deleted entities removed; reads only the partitions of the run and those "
        "changed since their last export.",
    )
    def _materialize(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        config = lake.config
        applied = features.apply_if_changed(config)  # domain jobs run without the registry asset
        if applied:
            context.log.info(f"registry was out of date, applied: {applied}")
        days = partition_days(context)
        [done] = features.materialize(config, min(days), max(days), [view])
        return dg.MaterializeResult(
            metadata={
                "source_table": table,
                "delta_version": done.table_version,
                "snapshot_rows": done.snapshot_rows,
                "snapshot_partitions": [day.isoformat() for day in done.partitions],
                "online_entities": done.entities,
                "written": done.written,
                "deleted": done.deleted,
                "seconds": round(done.seconds, 3),
            }
        )

    return _materialize


TRAINING_KEY = dg.AssetKey(["features", "commerce", "churn_training_set"])


def churn_entities(stats: pd.DataFrame, days: list[dt.date]) -> pd.DataFrame:
    """Entity/label rows: each customer ordering on a day, at the day's start, labelled with the day's spend;
    the features are therefore those known before the day (point in time)."""
    rows = stats[stats["dt"].isin(days)]
    return pd.DataFrame(
        {
            "user_id": rows["user_id"].astype(str),
            features.TIMESTAMP: pd.to_datetime(rows["dt"], utc=True),
            "label_spend": pd.to_numeric(rows["total_spend"].astype(object)).astype("float64"),
        }
    )


@dg.asset(
    key=TRAINING_KEY,
    deps=[view_key("customer_order_stats")],
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    group_name="commerce",
    kinds={"feast", "delta"},
    owners=["team:ml-platform"],
    pool=pool_for(f"{features.TRAINING_ROOT}/churn"),
    tags={"layer": "features", "domain": "commerce"},
    description="Training set of the `churn` feature service: customers ordering on a day (label: the day's "
    "spend) with their features as of the day's start; a point-in-time join, every row kept.",
)
def churn_training_set(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    config = lake.config
    days = partition_days(context)
    from deltalake import DeltaTable

    stats = DeltaTable(
        config.table_uri("curated", "commerce", "customer_order_stats"),
        storage_options=config.storage_options,
    ).to_pandas(
        columns=["dt", "user_id", "total_spend"], filters=[("dt", ">=", min(days)), ("dt", "<=", max(days))]
    )
    result = features.write_training_set(
        config,
        lake.spark,
        "churn",
        churn_entities(stats, days),
        "churn",
        days=days,
        run_id=context.run.run_id,
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.row_count,
            "dagster/uri": result.uri,
            "delta_version": result.version,
            "users_excluded_no_consent": result.users_excluded_no_consent,
        }
    )


ASSETS = [feast_registry, *(_online_asset(view, table) for view, table in VIEWS.items()), churn_training_set]
CHECKS = [feast_registry_in_sync]
