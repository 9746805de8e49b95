"""Entities, feature views and feature services over the curated Delta tables.

Feast never reads the Delta tables themselves: its file offline store would read Parquet files the
Delta log has removed. Each feature view's FileSource is a Parquet snapshot of the curated table's
current version, a folder of one file per partition, that `lakehouse.features.export_snapshot` brings
up to date (the run's partitions and those whose table files changed) before every materialization
and training set. A row's `event_timestamp` is when its value became known: the
end of its period (`dt` + 1 day for daily tables, `hour` + 1 hour for hourly ones), so a training
row never sees the aggregate of a day that had not ended yet.

The tags of a feature view say where its rows come from (`source_table`, `period_column`,
`period`); `lakehouse.features` reads them, so this file is the one place that maps views to tables.
`feast apply` imports this module (the snapshot folder comes from the environment, see
`feature_store.yaml`); the Dagster code calls `build()` with the configured folder.
"""

from __future__ import annotations

from datetime import timedelta

ENTITIES = {
    # name: (join key, description). Join keys are the curated tables' subject columns (tokenized ids).
    "customer": ("user_id", "A commerce customer (tokenized user_id)."),
    "account": ("account_id", "A finance account (tokenized account_id)."),
    "device": ("device_id", "An IoT device."),
    "tenant": ("tenant_id", "A platform tenant."),
}

# name: (entity, curated table, period column, period, ttl, {feature: feast.types name}, description).
# Plain names, not Feast objects: importing Feast takes seconds, and every process that loads the
# Dagster definitions reads this table; only `build()` needs Feast.
VIEWS = {
    "customer_order_stats": (
        "customer",
        "curated/commerce/customer_order_stats",
        "dt",
        "1d",
        timedelta(days=30),
        {"order_count": "Int64", "total_spend": "Float64"},
        "A customer's orders and spend (orders not cancelled) on their latest day with orders.",
    ),
    "account_risk": (
        "account",
        "curated/finance/account_risk_features",
        "dt",
        "1d",
        timedelta(days=7),
        {
            "txn_count": "Int64",
            "failed_ratio": "Float64",
            "max_amount": "Float64",
            "distinct_merchant_categories": "Int64",
            "night_txn_share": "Float64",
        },
        "An account's transaction risk aggregates of its latest day.",
    ),
    "account_balance": (
        "account",
        "curated/finance/account_daily_balances",
        "dt",
        "1d",
        timedelta(days=7),
        {
            "debits": "Float64",
            "credits": "Float64",
            "net": "Float64",
            "min_running_balance": "Float64",
            "transaction_count": "Int64",
        },
        "An account's settled movements of its latest day (day-relative balances).",
    ),
    "device_hourly": (
        "device",
        "curated/iot/device_hourly_aggregates",
        "hour",
        "1h",
        timedelta(hours=6),
        {"readings": "Int64", "min": "Float64", "max": "Float64", "mean": "Float64", "stddev": "Float64"},
        "A device's readings of its latest hour.",
    ),
    "device_health": (
        "device",
        "curated/iot/device_daily_health",
        "dt",
        "1d",
        timedelta(days=2),
        {"readings": "Int64", "active_hours": "Int64", "anomalies": "Int64", "anomaly_rate": "Float64"},
        "A device's daily readings, active hours and anomaly rate.",
    ),
    "tenant_ai_cost": (
        "tenant",
        "curated/ai_ops/tenant_daily_cost_vs_budget",
        "dt",
        "1d",
        timedelta(days=2),
        {
            "runs": "Int64",
            "tokens_in": "Int64",
            "tokens_out": "Int64",
            "cost_usd": "Float64",
            "daily_budget_usd": "Float64",
            "budget_used_ratio": "Float64",
            "is_warning": "Bool",
            "is_critical": "Bool",
        },
        "A tenant's AI spend of the day against its daily budget share.",
    ),
}

SERVICES = {
    "fraud_scoring": (
        ("account_risk", "account_balance", "customer_order_stats"),
        "Fraud scoring: account risk and balance features with the customer's order features.",
    ),
    "churn": (("customer_order_stats",), "Churn prediction: customer order features."),
    "capacity": (
        ("tenant_ai_cost", "device_health", "device_hourly"),
        "Capacity planning: tenant AI cost and budget usage with device load and anomaly rates.",
    ),
}

# What each service's training sets are for: analytics needs the user's analytics consent (training sets
# leave out users without it); fraud prevention rests on legitimate interest, not consent.
PURPOSES = {"fraud_scoring": "fraud_prevention", "churn": "analytics", "capacity": "analytics"}

TIMESTAMP = "event_timestamp"
OWNER = "team:ml-platform"


def build(offline_dir: str) -> dict[str, object]:
    """Every Feast object, named `<kind>_<name>`, with FileSources in `offline_dir`."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType, types

    entities = {
        name: Entity(name=name, join_keys=[key], value_type=ValueType.STRING, description=text, owner=OWNER)
        for name, (key, text) in ENTITIES.items()
    }
    views = {}
    for name, (entity, table, column, period, ttl, features, text) in VIEWS.items():
        source = FileSource(
            name=f"{name}_snapshot",
            path=f"{offline_dir}/{name}",  # a folder: one Parquet file per partition
            timestamp_field=TIMESTAMP,
            description=f"Snapshot of the current version of {table}.",
        )
        views[name] = FeatureView(
            name=name,
            entities=[entities[entity]],
            ttl=ttl,
            source=source,
            online=True,
            description=text,
            owner=OWNER,
            schema=[Field(name=feature, dtype=getattr(types, dtype)) for feature, dtype in features.items()],
            tags={"source_table": table, "period_column": column, "period": period},
        )
    services = {
        name: FeatureService(
            name=name,
            features=[views[view] for view in used],
            description=text,
            owner=OWNER,
            tags={"purpose": PURPOSES[name]},
        )
        for name, (used, text) in SERVICES.items()
    }
    return {
        **{f"entity_{k}": v for k, v in entities.items()},
        **{f"view_{k}": v for k, v in views.items()},
        **{f"service_{k}": v for k, v in services.items()},
    }


if __name__ != "lakehouse_feature_definitions":
    # Imported by `feast apply`/`feast serve`: expose the objects at module level, where Feast looks.
    from lakehouse.features import offline_dir as _offline_dir

    globals().update(build(_offline_dir()))
