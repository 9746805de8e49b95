"""Usage tallies for the differentially private usage release: what users did (action x resource) per day,
over the events and ai_ops domains, from consenting users only, with each user's contribution clipped.

The noise is not added here (`lakehouse.privacy` does, on these tallies): these functions only shape,
filter, clip and count, so they run on the engine and the exact tallies never leave the step.

Users are matched across domains by their user_id token: the same person has the same id in events,
ai_ops and commerce (one shared population), and tokenization is a keyed hash of the id, so tokens match.
A user counts only when the same day's commerce users snapshot grants analytics consent; a user absent
from that snapshot has no consent on record and is left out too.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

CONSENT_COLUMN = "consent_analytics"
CELL = ("source", "action", "resource")


def usage_rows(events: DataFrame, agent_runs: DataFrame) -> DataFrame:
    """One row per user action: events as (resource, action) split from the event type's last dot
    (`order.created` -> order, created), agent runs as (run, model) with their latency and status.
    Rows without a user (system events, scheduled runs) are about no one: not usage of a person."""
    event_rows = events.where(F.col("user_id").isNotNull()).select(
        "dt",
        "user_id",
        F.lit("events").alias("source"),
        # cast: Sail types these string_view, which a union with plain strings cannot collect
        F.substring_index("event_type", ".", -1).cast("string").alias("action"),
        F.regexp_extract("event_type", r"^(.*)\.[^.]+$", 1).cast("string").alias("resource"),
        F.col("event_id").alias("row_key"),
        F.lit(None).cast("bigint").alias("latency_ms"),
        F.lit(None).cast("string").alias("status"),
    )
    run_rows = agent_runs.where(F.col("user_id").isNotNull()).select(
        "dt",
        "user_id",
        F.lit("ai_ops").alias("source"),
        F.lit("run").alias("action"),
        F.col("model").alias("resource"),
        F.col("run_id").alias("row_key"),
        F.col("latency_ms").cast("bigint").alias("latency_ms"),
        F.col("status"),
    )
    return event_rows.unionByName(run_rows)


def with_consent(rows: DataFrame, users: DataFrame) -> DataFrame:
    """`rows` plus `has_consent`: the same day's users snapshot grants analytics consent to the user."""
    granted = (
        users.where(F.col(CONSENT_COLUMN))
        .select(F.col("dt").alias("_consent_dt"), F.col("user_id").alias("_consenting"))
        .distinct()
    )
    condition = (F.col("dt") == F.col("_consent_dt")) & (F.col("user_id") == F.col("_consenting"))
    return rows.join(granted, condition, "left").select(
        *rows.columns, F.col("_consenting").isNotNull().alias("has_consent")
    )


def clipped(rows: DataFrame, max_rows_per_cell: int, max_cells_per_user: int) -> DataFrame:
    """At most `max_rows_per_cell` rows per user, day and cell, in at most `max_cells_per_user` cells per
    user and day. Which rows and cells are kept is a hash order of their keys: arbitrary but repeatable,
    and not biased towards any action or resource."""
    per_cell = Window.partitionBy("dt", "user_id", *CELL).orderBy(F.xxhash64("row_key"), "row_key")
    kept_rows = rows.withColumn("_row", F.row_number().over(per_cell)).where(
        F.col("_row") <= max_rows_per_cell
    )
    per_user = Window.partitionBy("dt", "user_id").orderBy(F.xxhash64("user_id", *CELL), *CELL)
    return (
        kept_rows.withColumn("_cell", F.dense_rank().over(per_user))
        .where(F.col("_cell") <= max_cells_per_user)
        .drop("_row", "_cell")
    )


def _latency_bin(edges: Sequence[int]) -> F.Column:
    """Index of the bin a latency falls in: 0 below the first edge, len(edges) at or above the last."""
    return sum((F.when(F.col("latency_ms") >= edge, 1).otherwise(0) for edge in edges), F.lit(0))


def usage_tallies(
    events: DataFrame,
    agent_runs: DataFrame,
    users: DataFrame,
    *,
    max_rows_per_cell: int,
    max_cells_per_user: int,
    latency_bins_ms: Sequence[int],
) -> DataFrame:
    """The exact tallies the release adds noise to, long: (dt, source, action, resource, query, bucket,
    value) with query rows | users | status (bucket: the status) | latency (bucket: the bin index), over
    consenting users' clipped rows; plus one row per day of query `excluded_no_consent` (cell empty):
    the distinct users left out for lack of analytics consent."""
    rows = with_consent(usage_rows(events, agent_runs), users)
    excluded = (
        rows.where(~F.col("has_consent"))
        .groupBy("dt")
        .agg(F.countDistinct("user_id").cast("long").alias("value"))
        .select(
            "dt",
            *(F.lit(None).cast("string").alias(c) for c in CELL),
            F.lit("excluded_no_consent").alias("query"),
            F.lit(None).cast("string").alias("bucket"),
            "value",
        )
    )
    kept = clipped(rows.where(F.col("has_consent")), max_rows_per_cell, max_cells_per_user)
    per_cell = kept.groupBy("dt", *CELL).agg(
        F.count(F.lit(1)).cast("long").alias("rows"), F.countDistinct("user_id").cast("long").alias("users")
    )
    counts = per_cell.select(
        "dt",
        *CELL,
        F.explode(
            F.array(*(F.struct(F.lit(q).alias("query"), F.col(q).alias("value")) for q in ("rows", "users")))
        ).alias("_t"),
    ).select(
        "dt", *CELL, F.col("_t.query").alias("query"), F.lit(None).cast("string").alias("bucket"), "_t.value"
    )
    statuses = (
        kept.where(F.col("status").isNotNull())
        .groupBy("dt", *CELL, F.col("status").alias("bucket"))
        .agg(F.count(F.lit(1)).cast("long").alias("value"))
        .select("dt", *CELL, F.lit("status").alias("query"), "bucket", "value")
    )
    latencies = (
        kept.where(F.col("latency_ms").isNotNull())
        .groupBy("dt", *CELL, _latency_bin(latency_bins_ms).cast("string").alias("bucket"))
        .agg(F.count(F.lit(1)).cast("long").alias("value"))
        .select("dt", *CELL, F.lit("latency").alias("query"), "bucket", "value")
    )
    return counts.unionByName(statuses).unionByName(latencies).unionByName(excluded)
