"""ai_ops domain transforms: agent runs, tool calls and tenant budgets -> processed (+ quarantine) -> curated.

Pure `DataFrame -> DataFrame` functions. The `dt` partition of a row is the day its
landing file arrived; every partition is rebuilt from its own inputs only (a run is
checked against the budget snapshot of its own day, a tool call against the runs of
its own day).

Money: `cost_usd` is DECIMAL(18,9). Model prices go down to $0.075 per million tokens
(7.5e-8 USD per token), so a short call of a cheap model costs fractions of a
micro-dollar: DECIMAL(12,6) would round it by up to 50%, and DOUBLE sums depend on
the order rows are added in (not reproducible across engines and partitionings).
Nine decimals hold every per-token price exactly, and sums of decimals are exact.
Landing numbers are read through DOUBLE (Sail cannot cast exponent notation such as
`7.5e-6` straight to DECIMAL) and rounded to 9 decimals, which is exact for the
at-most-9-decimal costs providers bill.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms.common import parsed_lines, rule_reasons

RUN_STATUSES = ("success", "error", "timeout")
TOOL_STATUSES = ("success", "error", "timeout")
COST = "decimal(18,9)"
COST_SUM = "decimal(28,9)"
MONEY = "decimal(12,2)"
RATIO = "decimal(18,6)"
THRESHOLD = "decimal(6,4)"
WIDE = "decimal(24,12)"  # operands widened before dividing: Sail's own result scale truncates at 6 digits


BUDGET_FIELDS = (
    "tenant_id",
    "region",
    "period",
    "amount",
    "currency",
    "warning_threshold",
    "critical_threshold",
)
RUN_FIELDS = (
    "run_id",
    "tenant_id",
    "region",
    "user_id",
    "workflow",
    "model",
    "provider",
    "tokens_in",
    "tokens_out",
    "latency_ms",
    "cost_usd",
    "status",
    "started_at",
    "prompt_excerpt",
)
CALL_FIELDS = ("call_id", "run_id", "tool_name", "input", "output", "status", "latency_ms", "started_at")


def _field(name: str) -> Column:
    return F.col("_json").getField(name)


def _try_cast(name: str, to: str) -> Column:
    """The field as `to`, null when absent or not a number (never an error)."""
    return F.expr(f"try_cast(_json.{name} as {to})")


def _decimal(name: str, to: str) -> Column:
    return _try_cast(name, "double").cast(to)


def _timestamp(name: str) -> Column:
    return F.expr(f"try_to_timestamp(_json.{name})")


def _missing(*names: str) -> list[tuple[Column, str]]:
    return [(_field(name).isNull(), f"missing_required_field:{name}") for name in names]


def parse_tenant_budgets(raw: DataFrame) -> DataFrame:
    """The day's budget snapshot, typed; `quarantine_reason` for lines that cannot be used."""
    amount = _decimal("amount", MONEY)
    warning, critical = _decimal("warning_threshold", THRESHOLD), _decimal("critical_threshold", THRESHOLD)
    period = _field("period")
    reasons = rule_reasons(
        (F.col("_malformed"), "malformed_json"),
        *_missing("tenant_id", "period", "amount"),
        (~period.rlike(r"^[0-9]{4}-(0[1-9]|1[0-2])$"), "invalid_period"),
        (period != F.date_format("dt", "yyyy-MM"), "period_not_current"),
        (amount.isNull() | (amount < 0), "invalid_amount"),
        (warning.isNull() | critical.isNull() | (warning <= 0) | (warning > critical), "invalid_thresholds"),
    )
    return parsed_lines(raw, BUDGET_FIELDS, "_json").select(
        "dt",
        _field("tenant_id").alias("tenant_id"),
        _field("region").alias("region"),
        period.alias("period"),
        amount.alias("amount_usd"),
        F.coalesce(_field("currency"), F.lit("USD")).alias("currency"),
        warning.alias("warning_threshold"),
        critical.alias("critical_threshold"),
        "source_file",
        "line_number",
        F.col("line").alias("_line"),
        *reasons,
    )


def parse_agent_runs(agent_runs: DataFrame, tenant_budgets: DataFrame) -> DataFrame:
    """Typed runs; a run's tenant must be in the same day's (processed) budget snapshot.

    The prompt excerpt stays in raw (and in the quarantine record of a refused line):
    processed keeps only its length.
    """
    known = tenant_budgets.select(
        F.col("dt").alias("_budget_dt"), F.col("tenant_id").alias("_budget_tenant")
    ).distinct()
    runs = parsed_lines(agent_runs, RUN_FIELDS, "_json").join(
        known, (F.col("dt") == F.col("_budget_dt")) & (_field("tenant_id") == F.col("_budget_tenant")), "left"
    )
    tokens_in, tokens_out = _try_cast("tokens_in", "bigint"), _try_cast("tokens_out", "bigint")
    latency, cost = _try_cast("latency_ms", "bigint"), _decimal("cost_usd", COST)
    started_at = _timestamp("started_at")
    reasons = rule_reasons(
        (F.col("_malformed"), "malformed_json"),
        *_missing("run_id", "tenant_id"),
        (F.col("_budget_tenant").isNull(), "unknown_tenant"),
        (tokens_in.isNull() | tokens_out.isNull(), "invalid_tokens"),
        ((tokens_in < 0) | (tokens_out < 0), "negative_tokens"),
        (cost.isNull(), "invalid_cost"),
        (cost < 0, "negative_cost"),
        (latency.isNull() | (latency <= 0), "non_positive_latency"),
        (_field("status").isNull() | ~_field("status").isin(*RUN_STATUSES), "unknown_status"),
        (started_at.isNull(), "invalid_started_at"),
    )
    return runs.select(
        "dt",
        *[
            _field(name).alias(name)
            for name in ("run_id", "tenant_id", "region", "user_id", "workflow", "model", "provider")
        ],
        tokens_in.alias("tokens_in"),
        tokens_out.alias("tokens_out"),
        latency.alias("latency_ms"),
        cost.alias("cost_usd"),
        _field("status").alias("status"),
        started_at.alias("started_at"),
        F.length(_field("prompt_excerpt")).cast("int").alias("prompt_chars"),
        "source_file",
        "line_number",
        F.col("line").alias("_line"),
        *reasons,
    )


def parse_tool_calls(tool_calls: DataFrame, agent_runs: DataFrame) -> DataFrame:
    """Typed tool calls; each must reference a (processed) run of the same day, whose tenant and region it
    takes."""
    runs = agent_runs.select(
        F.col("dt").alias("_run_dt"),
        F.col("run_id").alias("_run_id"),
        F.col("tenant_id").alias("_run_tenant"),
        F.col("region").alias("_run_region"),
    ).dropDuplicates(["_run_dt", "_run_id"])
    calls = parsed_lines(tool_calls, CALL_FIELDS, "_json").join(
        runs, (F.col("dt") == F.col("_run_dt")) & (_field("run_id") == F.col("_run_id")), "left"
    )
    latency = _try_cast("latency_ms", "bigint")
    reasons = rule_reasons(
        (F.col("_malformed"), "malformed_json"),
        *_missing("call_id", "run_id"),
        (F.col("_run_id").isNull(), "unknown_run"),
        (_field("status").isNull() | ~_field("status").isin(*TOOL_STATUSES), "unknown_status"),
        (latency.isNull() | (latency < 0), "invalid_latency"),
        (_timestamp("started_at").isNull(), "invalid_started_at"),
    )
    return calls.select(
        "dt",
        _field("call_id").alias("call_id"),
        _field("run_id").alias("run_id"),
        F.col("_run_tenant").alias("tenant_id"),
        F.col("_run_region").alias("region"),
        _field("tool_name").alias("tool_name"),
        _field("input").alias("input"),
        _field("output").alias("output"),
        _field("status").alias("status"),
        latency.alias("latency_ms"),
        _timestamp("started_at").alias("started_at"),
        "source_file",
        "line_number",
        F.col("line").alias("_line"),
        *reasons,
    )


def tenant_daily_cost_vs_budget(agent_runs: DataFrame, tenant_budgets: DataFrame) -> DataFrame:
    """Each tenant's day against its daily share of the monthly budget (tenants without runs included).

    daily_budget_usd = monthly amount / days in the month (rounded to 6 decimals);
    budget_used_ratio = cost_usd / daily_budget_usd (rounded to 6 decimals); the flags
    compare that ratio with the budget's thresholds (>=); with a zero budget there is
    no ratio and any spend raises both flags. Partition-exact: nothing outside the
    day is needed (month-to-date spend would need earlier partitions, so the daily
    share of the monthly budget is used instead).
    """
    spent = agent_runs.groupBy("dt", "tenant_id").agg(
        F.count(F.lit(1)).alias("runs"),
        F.sum("tokens_in").alias("tokens_in"),
        F.sum("tokens_out").alias("tokens_out"),
        F.sum("cost_usd").cast(COST_SUM).alias("cost_usd"),
    )
    days_in_month = F.dayofmonth(F.last_day(F.to_date(F.concat(F.col("period"), F.lit("-01")))))
    daily = F.round(F.col("amount_usd").cast(WIDE) / days_in_month.cast(WIDE), 6).cast(RATIO)
    joined = tenant_budgets.join(spent, ["dt", "tenant_id"], "left").select(
        "dt",
        "tenant_id",
        "region",
        "period",
        F.coalesce("runs", F.lit(0)).cast("long").alias("runs"),
        F.coalesce("tokens_in", F.lit(0)).cast("long").alias("tokens_in"),
        F.coalesce("tokens_out", F.lit(0)).cast("long").alias("tokens_out"),
        F.coalesce("cost_usd", F.lit(0).cast(COST_SUM)).cast(COST_SUM).alias("cost_usd"),
        F.col("amount_usd").alias("monthly_budget_usd"),
        daily.alias("daily_budget_usd"),
        "warning_threshold",
        "critical_threshold",
    )
    ratio = F.when(
        F.col("daily_budget_usd") > 0,
        F.round(F.col("cost_usd").cast(WIDE) / F.col("daily_budget_usd").cast(WIDE), 6).cast(RATIO),
    )
    return (
        joined.withColumn("budget_used_ratio", ratio)
        .withColumn(
            "is_warning",
            F.coalesce(F.col("budget_used_ratio") >= F.col("warning_threshold"), F.col("cost_usd") > 0),
        )
        .withColumn(
            "is_critical",
            F.coalesce(F.col("budget_used_ratio") >= F.col("critical_threshold"), F.col("cost_usd") > 0),
        )
    )


def model_daily_performance(agent_runs: DataFrame) -> DataFrame:
    """Runs, latency percentiles (approximate), error rate (error or timeout) and cost per model and day.

    The percentiles are DOUBLE: Sail's percentile_approx returns double and
    interpolates, Spark's returns the input type; the cast keeps one schema.
    """
    failed = F.when(F.col("status") != "success", 1).otherwise(0)
    return agent_runs.groupBy("dt", "model", "provider").agg(
        F.count(F.lit(1)).alias("runs"),
        F.sum(failed).cast("long").alias("failed_runs"),
        F.sum(F.when(F.col("status") == "timeout", 1).otherwise(0)).cast("long").alias("timeouts"),
        F.percentile_approx("latency_ms", 0.5).cast("double").alias("p50_latency_ms"),
        F.percentile_approx("latency_ms", 0.95).cast("double").alias("p95_latency_ms"),
        (F.sum(failed) / F.count(F.lit(1))).cast("double").alias("error_rate"),
        F.sum("tokens_in").alias("tokens_in"),
        F.sum("tokens_out").alias("tokens_out"),
        F.sum("cost_usd").cast(COST_SUM).alias("cost_usd"),
    )
