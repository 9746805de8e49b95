"""Events domain transforms: landing lines -> raw -> processed (+ quarantine) -> curated.

Pure `DataFrame -> DataFrame` functions; the `dt` partition a row belongs to is
the day its landing file arrived, so that every partition is rebuilt from its
own inputs only. Late events (dated before their arrival day) stay in the
partition they arrived in and are flagged `is_late`.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

EVENT_TYPES = ("user.registered", "order.created", "system.health.check", "integration.webhook.received",
               "ml.model.inference")
REQUIRED_FIELDS = ("eventId", "eventType", "timestamp", "data")
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
ENVELOPE = {  # processed column: envelope field
    "event_id": "eventId", "event_type": "eventType", "event_source": "eventSource", "version": "version",
    "correlation_id": "correlationId", "user_id": "userId", "session_id": "sessionId",
    "environment": "environment", "region": "region", "tenant_id": "tenantId",
}


def raw_events(lines: DataFrame, run_id: str, ingested_at: dt.datetime) -> DataFrame:
    """Every landing line, unparsed, with ingestion metadata."""
    return lines.select("dt", "source_file", "line_number", "line",
                        F.lit(ingested_at).cast("timestamp").alias("ingested_at"), F.lit(run_id).alias("run_id"))


def _reason(envelope: Column, timestamp: Column) -> Column:
    """The first rule a line breaks, or null for a valid event."""
    missing = [F.when(envelope.getItem(name).isNull(), F.lit(f"missing_required_field:{name}"))
               for name in REQUIRED_FIELDS]
    return F.coalesce(
        F.when(envelope.isNull(), F.lit("malformed_json")),
        *missing,
        F.when(~envelope.getItem("eventId").rlike(UUID_PATTERN), F.lit("invalid_event_id")),
        F.when(~envelope.getItem("eventType").isin(*EVENT_TYPES), F.lit("unknown_event_type")),
        F.when(timestamp.isNull(), F.lit("invalid_timestamp")),
    )


def parse_events(raw: DataFrame) -> DataFrame:
    """Typed event columns plus `quarantine_reason` (null when the line is a valid event)."""
    envelope = F.from_json("line", "map<string,string>")
    parsed = raw.select("dt", "source_file", "line_number", "line", envelope.alias("envelope"))
    timestamp = F.expr("try_to_timestamp(envelope['timestamp'])")
    return parsed.select(
        "dt",
        *[F.col("envelope").getItem(field).alias(column) for column, field in ENVELOPE.items()],
        timestamp.alias("event_ts"),
        F.get_json_object(F.col("envelope").getItem("data"), "$.payload").alias("payload"),
        F.get_json_object(F.col("envelope").getItem("data"), "$.metadata").alias("metadata"),
        "source_file", "line_number", "line",
        _reason(F.col("envelope"), timestamp).alias("quarantine_reason"),
    )


def processed_events(parsed: DataFrame) -> DataFrame:
    """Valid events, one per eventId per partition (the first line that carried it wins)."""
    first = Window.partitionBy("dt", "event_id").orderBy("source_file", "line_number")
    valid = parsed.where(F.col("quarantine_reason").isNull())
    return (valid.withColumn("occurrence", F.row_number().over(first)).where("occurrence = 1")
            .select("dt", *ENVELOPE, "event_ts", F.to_date("event_ts").alias("event_date"),
                    (F.to_date("event_ts") < F.col("dt")).alias("is_late"),
                    "payload", "metadata", "source_file", "line_number"))


def quarantined_events(parsed: DataFrame, run_id: str, quarantined_at: dt.datetime) -> DataFrame:
    """Lines that cannot become a valid event, with the reason."""
    return (parsed.where(F.col("quarantine_reason").isNotNull())
            .select("dt", "source_file", "line_number", "line", F.col("quarantine_reason").alias("reason"),
                    F.lit(run_id).alias("run_id"), F.lit(quarantined_at).cast("timestamp").alias("quarantined_at")))


def hourly_event_counts(events: DataFrame) -> DataFrame:
    return (events.groupBy("dt", F.date_trunc("hour", "event_ts").alias("event_hour"), "event_type", "region")
            .agg(F.count(F.lit(1)).alias("event_count"), F.countDistinct("user_id").alias("unique_users")))


def daily_active_users(events: DataFrame) -> DataFrame:
    return events.groupBy("dt").agg(
        F.countDistinct("user_id").alias("active_users"),
        F.countDistinct("session_id").alias("sessions"),
        F.count(F.lit(1)).alias("events"),
        F.sum(F.when(F.col("event_type") == "user.registered", 1).otherwise(0)).cast("long").alias("registrations"),
    )


def daily_order_revenue(events: DataFrame) -> DataFrame:
    """Revenue of `order.created` events by currency; orders without an amount or currency are counted apart."""
    orders = events.where(F.col("event_type") == "order.created").select(
        "dt",
        F.get_json_object("payload", "$.currency").alias("currency"),
        F.get_json_object("payload", "$.totalAmount").cast("decimal(18,2)").alias("amount"),
    )
    return orders.groupBy("dt", "currency").agg(
        F.count(F.lit(1)).alias("orders"),
        F.sum("amount").cast("decimal(18,2)").alias("revenue"),
        F.sum(F.when(F.col("amount").isNull(), 1).otherwise(0)).cast("long").alias("orders_without_amount"),
    )
