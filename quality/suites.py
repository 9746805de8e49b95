"""The expectation suite of every processed and curated dataset, referenced from the dataset by its path.

A suite is the rules derived from the declaration (day and primary key present, key unique per day,
region allowed, tenant and region complete) plus the rules below, which cover the event-driven data
architecture document: required fields, types, formats (UUID, currency codes), ranges and business
rules, referential integrity across datasets and the completeness / validity / consistency targets.
Rules over clear personal data (e.g. email formats) live in the row rules: from processed on such
columns hold tokens.
"""

from __future__ import annotations

from lakehouse.datasets import Dataset
from quality.rules import (CONSISTENCY_TARGET, CURRENCY_CODE, UUID, VALIDITY_TARGET, Rule, Severity, between,
                           complete, holds, matches, one_of, references, required, typed, unique)
from transforms import ai_ops, commerce, events, finance, iot

WARN = Severity.WARN
COMMERCE_USERS, COMMERCE_ORDERS = "processed/commerce/users", "processed/commerce/orders"
FINANCE_ACCOUNTS, FINANCE_TRANSACTIONS = "processed/finance/accounts", "processed/finance/transactions"
IOT_DEVICES = "processed/iot/devices"
AI_RUNS, AI_BUDGETS = "processed/ai_ops/agent_runs", "processed/ai_ops/tenant_budgets"
SENSOR_LIMITS = [limits for limits, _ in iot.SENSOR_KINDS.values()]

SUITES: dict[str, list[Rule]] = {
    # events
    "processed/events/events": [
        *required("event_type", "event_ts"), typed("event_ts", "TimestampType"),
        matches("event_id", UUID, "uuid"), one_of("event_type", events.EVENT_TYPES),
        *complete("event_source", "version"),
    ],
    "curated/events/hourly_event_counts": [
        between("event_count", 1, name="event_count_positive"), between("unique_users", 0, name="users_not_negative"),
    ],
    "curated/events/daily_active_users": [
        between("events", 1, name="events_positive"), between("active_users", 0, name="active_users_not_negative"),
    ],
    "curated/events/daily_order_revenue": [
        between("revenue", 0, name="revenue_not_negative", severity=WARN),
        matches("currency", CURRENCY_CODE, "currency_code", severity=WARN),
    ],
    # commerce
    "processed/commerce/users": [
        *required("status", "created_at"), one_of("status", commerce.USER_STATUSES),
        typed("created_at", "TimestampType"),
    ],
    "processed/commerce/orders": [
        *required("user_id", "total_amount", "currency", "status", "created_at"),
        between("total_amount", 0, commerce.MAX_ORDER_AMOUNT, strict_min=True, name="total_amount_positive"),
        one_of("currency", commerce.CURRENCIES), matches("currency", CURRENCY_CODE, "currency_code"),
        typed("created_at", "TimestampType"),
        references("user_id", COMMERCE_USERS),
    ],
    "processed/commerce/order_items": [
        *required("order_id", "product_id", "quantity", "price"),
        between("quantity", 1, name="quantity_at_least_one"), between("price", 0, name="price_not_negative"),
        references("order_id", COMMERCE_ORDERS),
    ],
    "curated/commerce/orders_conformed": [
        between("item_count", 0, name="item_count_not_negative"),
        references("order_id", COMMERCE_ORDERS),
        holds("amount_matches_items", mostly=CONSISTENCY_TARGET),
    ],
    "curated/commerce/daily_revenue_by_currency": [
        between("revenue", 0, name="revenue_not_negative"), between("orders", 1, name="orders_positive"),
        one_of("currency", commerce.CURRENCIES),
    ],
    "curated/commerce/customer_order_stats": [
        between("order_count", 1, name="order_count_positive"), between("total_spend", 0, name="spend_not_negative"),
        references("user_id", COMMERCE_USERS),
    ],
    # finance
    "processed/finance/accounts": [*required("customer_id", "opened_at"), typed("opened_at", "TimestampType")],
    "processed/finance/transactions": [
        *required("account_id", "amount", "transaction_ts", "status"),
        matches("transaction_id", UUID, "uuid"), one_of("status", finance.STATUSES),
        between("amount", -finance.MAX_ABS_AMOUNT, finance.MAX_ABS_AMOUNT, name="amount_within_limits"),
        matches("currency", CURRENCY_CODE, "currency_code", mostly=VALIDITY_TARGET),
        typed("transaction_ts", "TimestampType"),
        references("account_id", FINANCE_ACCOUNTS),
    ],
    "curated/finance/settled_transactions": [
        matches("transaction_id", UUID, "uuid"),
        between("amount", -finance.MAX_ABS_AMOUNT, finance.MAX_ABS_AMOUNT, name="amount_within_limits"),
        references("account_id", FINANCE_ACCOUNTS),
    ],
    "curated/finance/account_daily_balances": [
        between("debits", 0, name="debits_not_negative"), between("credits", 0, name="credits_not_negative"),
        between("transaction_count", 1, name="transaction_count_positive"), references("account_id", FINANCE_ACCOUNTS),
    ],
    "curated/finance/account_risk_features": [
        between("failed_ratio", 0, 1, name="failed_ratio_is_a_share"),
        between("night_txn_share", 0, 1, name="night_share_is_a_share"),
    ],
    # iot
    "processed/iot/devices": [
        *required("kind"), matches("device_id", UUID, "uuid"), one_of("kind", tuple(iot.SENSOR_KINDS)),
    ],
    "processed/iot/readings": [
        *required("value", "kind"), typed("timestamp", "TimestampType"),
        between("value", min(low for low, _ in SENSOR_LIMITS), max(high for _, high in SENSOR_LIMITS),
                name="value_within_physical_limits"),
        references("device_id", IOT_DEVICES),
    ],
    "curated/iot/device_hourly_aggregates": [
        between("readings", 1, name="readings_positive"), references("device_id", IOT_DEVICES),
    ],
    "curated/iot/reading_anomalies": [references("device_id", IOT_DEVICES)],
    "curated/iot/device_daily_health": [
        between("anomaly_rate", 0, 1, name="anomaly_rate_is_a_share"), between("readings", 1, name="readings_positive"),
    ],
    # ai_ops
    "processed/ai_ops/tenant_budgets": [between("amount_usd", 0, name="budget_not_negative")],
    "processed/ai_ops/agent_runs": [
        *required("status", "started_at"), one_of("status", ai_ops.RUN_STATUSES),
        between("cost_usd", 0, name="cost_not_negative"), between("latency_ms", 0, name="latency_not_negative"),
        between("tokens_in", 0, name="tokens_in_not_negative"), typed("started_at", "TimestampType"),
        references("tenant_id", AI_BUDGETS),
    ],
    "processed/ai_ops/tool_calls": [
        *required("run_id", "tool_name"), one_of("status", ai_ops.TOOL_STATUSES),
        between("latency_ms", 0, name="latency_not_negative"), references("run_id", AI_RUNS),
    ],
    "curated/ai_ops/tenant_daily_cost_vs_budget": [between("cost_usd", 0, name="cost_not_negative")],
    "curated/ai_ops/model_daily_performance": [
        between("error_rate", 0, 1, name="error_rate_is_a_share"), between("runs", 1, name="runs_positive"),
        between("cost_usd", 0, name="cost_not_negative"),
    ],
}


def register(path: str, rules: list[Rule]) -> None:
    """Give a dataset (e.g. one added in its own module) its suite's own rules."""
    SUITES[path] = list(rules)


def derived_rules(dataset: Dataset) -> list[Rule]:
    """What the declaration already says: day and key present, key unique per day, residency, tenancy."""
    key = tuple(c for c in dataset.primary_key if c != "dt")
    rules = required("dt", *key)
    if dataset.primary_key:
        rules.append(unique("dt", *key))
    if dataset.allowed_regions:
        rules.append(one_of(dataset.region_column, dataset.allowed_regions))
    rules += complete(*[c for c in (dataset.tenant_column, dataset.region_column) if c])
    return rules


def suite_rules(dataset: Dataset) -> list[Rule]:
    """The dataset's whole suite; rule names are unique (a declared rule replaces a derived one of its name)."""
    rules = {rule.name: rule for rule in derived_rules(dataset)}
    rules.update({rule.name: rule for rule in SUITES.get(dataset.path, [])})
    return list(rules.values())


def reference_paths(dataset: Dataset) -> list[str]:
    """Datasets the suite's referential rules read: they must be built before the dataset's checks run."""
    return sorted({rule.reference[0] for rule in suite_rules(dataset) if rule.reference} - {dataset.path})
