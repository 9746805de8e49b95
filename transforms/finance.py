"""Finance domain transforms: accounts snapshots and transactions -> processed (+ quarantine) -> curated.

Pure `DataFrame -> DataFrame` functions. The partition `dt` of a row is the day its landing file
arrived. The referential rule "a transaction references a known account" is checked inside
`processed_transactions`, on clear values, against the SAME day's raw accounts snapshot parsed by
the same rules as the processed accounts (`parse_accounts`, the residency rule, first line per
account wins). That is why processed transactions read raw accounts rather than processed ones:
the factory tokenizes `account_id` after the transform, so processed accounts only hold tokens,
and a transform has no token key to compare with (nor should it). Reading raw keeps the check
partition-exact and independent of whether processed accounts were built first.

Balances are day-relative: a partition-exact job cannot know the balance carried over from
earlier days, so `opening_balance` is 0 by definition and `closing_balance` is the end-of-day
running sum of the day's settled movements (= `net`); `min_running_balance` is the lowest point
of that running sum during the day (0 if it never went below the opening).
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms import common

UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
TRANSACTION_TYPES = ("card_payment", "transfer", "refund", "fee", "deposit")
STATUSES = ("pending", "settled", "failed", "reversed")
ACCOUNT_STATUSES = ("active", "frozen", "closed")
MAX_ABS_AMOUNT = 1_000_000
NIGHT_HOURS = (0, 1, 2, 3, 4, 5)  # UTC
TRANSACTION_REQUIRED = ("id", "account_id", "amount", "timestamp", "status")
ACCOUNT_REQUIRED = ("account_id", "customer_id", "opened_at")
AMOUNT = "decimal(10,2)"
MONEY = "decimal(18,2)"


ACCOUNT_FIELDS = ("account_id", "customer_id", "currency", "opened_at", "region", "tenant_id", "status")
TRANSACTION_FIELDS = (
    "id",
    "account_id",
    "amount",
    "currency",
    "timestamp",
    "status",
    "type",
    "merchant_category",
    "channel",
    "counterparty_name",
    "ip_address",
)


def _missing(required: Iterable[str]) -> list[tuple[Column, str]]:
    return [(F.col("f").getField(name).isNull(), f"missing_required_field:{name}") for name in required]


def parse_accounts(raw: DataFrame) -> DataFrame:
    """Typed accounts-snapshot rows plus `quarantine_reason`; `_line` keeps the line for quarantine."""
    f = F.col("f")
    opened_at = F.expr("try_to_timestamp(f.opened_at)")
    reasons = common.rule_reasons(
        (F.col("_malformed"), "malformed_json"),
        *_missing(ACCOUNT_REQUIRED),
        (~f.getField("account_id").rlike(UUID_PATTERN), "invalid_account_id"),
        (opened_at.isNull(), "invalid_opened_at"),
        (~F.coalesce(f.getField("status"), F.lit("")).isin(*ACCOUNT_STATUSES), "unknown_account_status"),
    )
    return common.parsed_lines(raw, ACCOUNT_FIELDS, "f").select(
        "dt",
        *[f.getField(name).alias(name) for name in ("account_id", "customer_id", "currency")],
        opened_at.alias("opened_at"),
        *[f.getField(name).alias(name) for name in ("region", "tenant_id", "status")],
        "source_file",
        "line_number",
        F.col("line").alias("_line"),
        *reasons,
    )


def known_accounts(accounts: DataFrame, allowed_regions: Iterable[str] = ()) -> DataFrame:
    """The accounts a processed-accounts build accepts: valid, in an allowed region, first line per
    account."""
    parsed = parse_accounts(accounts)
    allowed = list(allowed_regions)
    if allowed:
        parsed = common.require_region(parsed, "region", allowed)
    return common.deduplicate(common.accepted_rows(parsed), ["account_id"])


def processed_transactions(
    transactions: DataFrame, accounts: DataFrame, allowed_regions: Iterable[str] = ()
) -> DataFrame:
    """Typed transactions of the day, joined to the day's accounts snapshot for owner, region and tenant.

    `quarantine_reason` is the first rule a line breaks (null: accepted); `_line` keeps the line.
    """
    f = F.col("f")
    number = F.expr("try_cast(f.amount as decimal(20,2))")
    ts = F.expr("try_to_timestamp(f.`timestamp`)")
    owners = known_accounts(accounts, allowed_regions).select(
        "dt",
        "account_id",
        F.col("customer_id").alias("_customer_id"),
        F.col("region").alias("_region"),
        F.col("tenant_id").alias("_tenant_id"),
        F.lit(True).alias("_known"),
    )
    lines = common.parsed_lines(transactions, TRANSACTION_FIELDS, "f").withColumn(
        "account_id", f.getField("account_id")
    )
    joined = lines.join(owners, on=["dt", "account_id"], how="left")
    reasons = common.rule_reasons(
        (F.col("_malformed"), "malformed_json"),
        *_missing(TRANSACTION_REQUIRED),
        (~f.getField("id").rlike(UUID_PATTERN), "invalid_transaction_id"),
        (number.isNull(), "amount_not_a_number"),
        (number == 0, "amount_zero"),
        (F.abs(number) > MAX_ABS_AMOUNT, "amount_out_of_range"),
        (ts.isNull(), "invalid_timestamp"),
        (~f.getField("status").isin(*STATUSES), "unknown_status"),
        (~F.coalesce(f.getField("type"), F.lit("")).isin(*TRANSACTION_TYPES), "unknown_transaction_type"),
        (F.col("_known").isNull(), "unknown_account"),
    )
    return joined.select(
        "dt",
        f.getField("id").alias("transaction_id"),
        "account_id",
        F.col("_customer_id").alias("customer_id"),
        F.when(F.abs(number) <= MAX_ABS_AMOUNT, number).cast(AMOUNT).alias("amount"),
        f.getField("currency").alias("currency"),
        ts.alias("transaction_ts"),
        f.getField("status").alias("status"),
        f.getField("type").alias("type"),
        f.getField("merchant_category").alias("merchant_category"),
        f.getField("channel").alias("channel"),
        f.getField("counterparty_name").alias("counterparty_name"),
        f.getField("ip_address").alias("ip_address"),
        F.col("_region").alias("region"),
        F.col("_tenant_id").alias("tenant_id"),
        "source_file",
        "line_number",
        F.col("line").alias("_line"),
        *reasons,
    )


def settled_transactions(transactions: DataFrame) -> DataFrame:
    """Settled transactions only: the ledger movements that count for balances and revenue."""
    return transactions.where(F.col("status") == "settled").select(
        "dt",
        "transaction_id",
        "account_id",
        "customer_id",
        "transaction_ts",
        F.col("amount").cast(AMOUNT).alias("amount"),
        "currency",
        "type",
        "merchant_category",
        "channel",
        "region",
        "tenant_id",
    )


def account_daily_balances(transactions: DataFrame) -> DataFrame:
    """Per account and day, from settled movements: day-relative opening (0) and closing balance, debits,
    credits (both positive), net, lowest intraday running balance and transaction count."""
    settled = transactions.where(F.col("status") == "settled")
    running = (
        Window.partitionBy("dt", "account_id")
        .orderBy("transaction_ts", "transaction_id")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    amount = F.col("amount")
    zero = F.lit(0).cast(MONEY)
    daily = (
        settled.withColumn("_running", F.sum(amount).over(running))
        .groupBy("dt", "account_id", "currency", "region", "tenant_id")
        .agg(
            F.sum(F.when(amount < 0, -amount).otherwise(zero)).cast(MONEY).alias("debits"),
            F.sum(F.when(amount > 0, amount).otherwise(zero)).cast(MONEY).alias("credits"),
            F.sum(amount).cast(MONEY).alias("net"),
            F.min("_running").cast(MONEY).alias("_lowest"),
            F.count(F.lit(1)).alias("transaction_count"),
        )
    )
    return daily.select(
        "dt",
        "account_id",
        "currency",
        "region",
        "tenant_id",
        zero.alias("opening_balance"),
        "debits",
        "credits",
        "net",
        (zero + F.col("net")).cast(MONEY).alias("closing_balance"),
        F.least(zero, F.col("_lowest")).cast(MONEY).alias("min_running_balance"),
        "transaction_count",
    )


def account_risk_features(transactions: DataFrame) -> DataFrame:
    """Per account and day, over every transaction whatever its status: risk-style feature inputs."""
    count = F.count(F.lit(1))
    failed = F.sum(F.when(F.col("status") == "failed", 1).otherwise(0))
    night = F.sum(F.when(F.hour("transaction_ts").isin(*NIGHT_HOURS), 1).otherwise(0))
    return (
        transactions.groupBy("dt", "account_id", "region", "tenant_id")
        .agg(
            count.alias("txn_count"),
            (failed / count).cast("double").alias("failed_ratio"),
            F.max(F.abs("amount")).cast(AMOUNT).alias("max_amount"),
            F.countDistinct("merchant_category").alias("distinct_merchant_categories"),
            (night / count).cast("double").alias("night_txn_share"),
        )
        .select(
            "dt",
            "account_id",
            "txn_count",
            "failed_ratio",
            "max_amount",
            "distinct_merchant_categories",
            "night_txn_share",
            "region",
            "tenant_id",
        )
    )
