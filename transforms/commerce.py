"""Commerce domain transforms: users, orders and order items from landing lines to curated sales tables.

Pure `DataFrame -> DataFrame` functions. The `dt` of a row is the day its landing
file arrived. Partitions are independent: the `users` file of a day is a full
snapshot of the users who exist that day, so an order is checked against the
users of its own partition, and an item against the orders of its own partition.

Personal data is protected by the factory *after* a transform returns, so a
processed table's `user_id` holds tokens while raw orders hold clear ids. The
order rule "its user exists that day" is therefore checked against the users of
the raw snapshot, parsed and validated exactly as `processed/commerce/users` is
(same parser, same residency rule): the same set of users, in clear. Order ids
are not personal, so items are checked against `processed/commerce/orders` itself.

Lenient on representation, strict on meaning: a number may arrive as a JSON number
or a numeric string; a value that cannot be read as its type is `invalid_type:<field>`.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms import common

ALLOWED_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")  # the regions the shop operates in
USER_STATUSES = ("active", "suspended", "closed")
ORDER_STATUSES = ("created", "paid", "shipped", "cancelled")
CURRENCIES = ("USD", "EUR", "GBP")
MAX_ORDER_AMOUNT = 100_000  # above this an order total is absurd, not big
MONEY = "decimal(10,2)"
SUM = "decimal(18,2)"
INTEGER = r"^\s*-?[0-9]+\s*$"

USER_FIELDS = (
    "user_id",
    "email",
    "first_name",
    "last_name",
    "status",
    "created_at",
    "region",
    "tenant_id",
    "gdpr_consent_at",
    "consent_analytics",
)
CONSENT_VALUES = ("true", "false")
ORDER_FIELDS = (
    "order_id",
    "user_id",
    "total_amount",
    "currency",
    "status",
    "created_at",
    "region",
    "tenant_id",
)
ITEM_FIELDS = ("item_id", "order_id", "product_id", "quantity", "price")
USER_REQUIRED = ("user_id", "status", "created_at")
ORDER_REQUIRED = ("order_id", "user_id", "total_amount", "currency", "status", "created_at")
ITEM_REQUIRED = ("item_id", "order_id", "product_id", "quantity", "price")
LINE = ("source_file", "line_number")


def _fields(raw: DataFrame, names: tuple[str, ...]) -> DataFrame:
    """The landing line plus one column per field and `_malformed` (the line is not one JSON object)."""
    parsed = common.parsed_lines(raw, names, "_m")
    return parsed.select(
        "dt", *LINE, "line", "_malformed", *[F.col("_m").getField(n).alias(n) for n in names]
    )


def _missing(column: str) -> Column:
    return F.col(column).isNull() | (F.trim(F.col(column)) == "")


def _structure_rules(required: tuple[str, ...]) -> list[tuple[Column, str]]:
    return [
        (F.col("_malformed"), "malformed_json"),
        *[(_missing(name), f"missing_required_field:{name}") for name in required],
    ]


def _decimal(column: str) -> Column:
    return F.expr(f"try_cast(trim(`{column}`) as {SUM})")


def _integer(column: str) -> Column:
    return F.when(F.col(column).rlike(INTEGER), F.expr(f"try_cast(trim(`{column}`) as int)"))


def _timestamp(column: str) -> Column:
    return F.expr(f"try_to_timestamp(`{column}`)")


def parse_users(raw: DataFrame) -> DataFrame:
    """Typed users of the day's snapshot plus `quarantine_reason`; `_line` keeps the line for quarantine."""
    users = _fields(raw, USER_FIELDS).withColumns(
        {"_created_at": _timestamp("created_at"), "_consent_at": _timestamp("gdpr_consent_at")}
    )
    # No consent on record is no consent: a missing or null analytics consent is false.
    analytics = F.lower(F.trim("consent_analytics"))
    reasons = common.rule_reasons(
        *_structure_rules(USER_REQUIRED),
        (~F.col("status").isin(*USER_STATUSES), "invalid_status"),
        (F.col("_created_at").isNull(), "invalid_timestamp"),
        (F.col("gdpr_consent_at").isNotNull() & F.col("_consent_at").isNull(), "invalid_consent_timestamp"),
        (analytics.isNotNull() & ~analytics.isin(*CONSENT_VALUES), "invalid_consent"),
        ((analytics == "true") & F.col("_consent_at").isNull(), "analytics_consent_without_gdpr_consent"),
    )
    return users.select(
        "dt",
        "user_id",
        "email",
        "first_name",
        "last_name",
        "status",
        F.col("_created_at").alias("created_at"),
        "region",
        "tenant_id",
        F.col("_consent_at").alias("gdpr_consent_at"),
        F.coalesce(analytics == "true", F.lit(False)).alias("consent_analytics"),
        *LINE,
        F.col("line").alias("_line"),
        *reasons,
    )


def known_users(users: DataFrame) -> DataFrame:
    """(dt, user_id) of the users `processed/commerce/users` accepts, with ids in clear: the referential
    set."""
    accepted = common.accepted_rows(common.require_region(parse_users(users), "region", ALLOWED_REGIONS))
    return accepted.select("dt", "user_id").distinct()


def parse_orders(orders: DataFrame, users: DataFrame) -> DataFrame:
    """Typed orders plus `quarantine_reason`; `users` are the raw landing lines of the same partitions."""
    known = known_users(users).select("dt", "user_id", F.lit(True).alias("_user_known"))
    typed = (
        _fields(orders, ORDER_FIELDS)
        .withColumn("_amount", _decimal("total_amount"))
        .withColumn("_created_at", _timestamp("created_at"))
        .join(known, ["dt", "user_id"], "left")
    )
    reasons = common.rule_reasons(
        *_structure_rules(ORDER_REQUIRED),
        (F.col("_amount").isNull(), "invalid_type:total_amount"),
        ((F.col("_amount") <= 0) | (F.col("_amount") > MAX_ORDER_AMOUNT), "invalid_amount"),
        (~F.col("currency").isin(*CURRENCIES), "invalid_currency"),
        (~F.col("status").isin(*ORDER_STATUSES), "invalid_status"),
        (F.col("_created_at").isNull(), "invalid_timestamp"),
        (F.col("_user_known").isNull(), "unknown_user_id"),
    )
    return typed.select(
        "dt",
        "order_id",
        "user_id",
        F.col("_amount").cast(MONEY).alias("total_amount"),
        "currency",
        "status",
        F.col("_created_at").alias("created_at"),
        "region",
        "tenant_id",
        *LINE,
        F.col("line").alias("_line"),
        *reasons,
    )


def parse_order_items(order_items: DataFrame, orders: DataFrame) -> DataFrame:
    """Typed items plus `quarantine_reason`; `orders` are the accepted (processed) orders of the same
    partitions.

    Items take their order's tenant and region, so that residency and tenant rules apply to them too.
    """
    known = orders.select(
        "dt",
        "order_id",
        F.col("tenant_id").alias("_tenant_id"),
        F.col("region").alias("_region"),
        F.lit(True).alias("_order_known"),
    )
    typed = (
        _fields(order_items, ITEM_FIELDS)
        .withColumn("_quantity", _integer("quantity"))
        .withColumn("_price", _decimal("price"))
        .join(known, ["dt", "order_id"], "left")
    )
    reasons = common.rule_reasons(
        *_structure_rules(ITEM_REQUIRED),
        (F.col("_quantity").isNull(), "invalid_type:quantity"),
        (F.col("_price").isNull(), "invalid_type:price"),
        (F.col("_quantity") < 1, "invalid_quantity"),
        (F.col("_price") < 0, "invalid_price"),
        (F.col("_order_known").isNull(), "unknown_order_id"),
    )
    return typed.select(
        "dt",
        "item_id",
        "order_id",
        "product_id",
        F.col("_quantity").alias("quantity"),
        F.col("_price").cast(MONEY).alias("price"),
        F.col("_tenant_id").alias("tenant_id"),
        F.col("_region").alias("region"),
        *LINE,
        F.col("line").alias("_line"),
        *reasons,
    )


def orders_conformed(orders: DataFrame, order_items: DataFrame) -> DataFrame:
    """One row per order with its items summed; `amount_matches_items` says whether the total adds up."""
    items = order_items.groupBy("dt", "order_id").agg(
        F.count(F.lit(1)).alias("item_count"),
        F.sum("quantity").cast("long").alias("units"),
        F.sum(F.col("quantity") * F.col("price")).cast(SUM).alias("items_amount"),
    )
    joined = orders.join(items, ["dt", "order_id"], "left")
    items_amount = F.coalesce(F.col("items_amount"), F.lit(0).cast(SUM))
    return joined.select(
        "dt",
        "order_id",
        "user_id",
        "tenant_id",
        "region",
        "currency",
        "status",
        "created_at",
        "total_amount",
        F.coalesce(F.col("item_count"), F.lit(0)).cast("long").alias("item_count"),
        F.coalesce(F.col("units"), F.lit(0)).cast("long").alias("units"),
        items_amount.alias("items_amount"),
        (F.col("total_amount").cast(SUM) == items_amount).alias("amount_matches_items"),
    )


def _not_cancelled(column: str) -> Column:
    return F.when(F.col("status") != "cancelled", F.col(column))


def daily_revenue_by_currency(orders: DataFrame) -> DataFrame:
    """Orders per day and currency; revenue and average order value count orders that were not cancelled."""
    kept = F.sum(F.when(F.col("status") != "cancelled", 1).otherwise(0))
    revenue = F.coalesce(F.sum(_not_cancelled("total_amount")), F.lit(0)).cast(SUM)
    grouped = orders.groupBy("dt", "currency").agg(
        F.count(F.lit(1)).cast("long").alias("orders"),
        revenue.alias("revenue"),
        kept.cast("long").alias("_kept"),
        F.sum(F.when(F.col("status") == "cancelled", 1).otherwise(0)).cast("long").alias("cancelled_orders"),
    )
    average = F.when(F.col("_kept") > 0, F.round(F.col("revenue") / F.col("_kept"), 2)).cast(SUM)
    return grouped.select(
        "dt", "currency", "orders", "revenue", average.alias("avg_order_value"), "cancelled_orders"
    )


def customer_order_stats(orders: DataFrame) -> DataFrame:
    """Per customer (tokenized user_id) and day: orders placed, spend on orders not cancelled, last order
    time."""
    return orders.groupBy("dt", "user_id", "tenant_id", "region").agg(
        F.count(F.lit(1)).cast("long").alias("order_count"),
        F.coalesce(F.sum(_not_cancelled("total_amount")), F.lit(0)).cast(SUM).alias("total_spend"),
        F.max("created_at").alias("last_order_at"),
    )


def orders_by_status(orders: DataFrame) -> DataFrame:
    """Orders and their amount per day, currency and status: the status mix behind the daily revenue
    (declared in YAML, assets/commerce/orders_by_status/defs.yaml)."""
    return orders.groupBy("dt", "currency", "status").agg(
        F.count(F.lit(1)).cast("long").alias("orders"),
        F.coalesce(F.sum("total_amount"), F.lit(0)).cast(SUM).alias("revenue"),
    )
