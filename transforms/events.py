"""Events domain transforms: landing lines -> raw -> processed (+ quarantine) -> curated.

Pure `DataFrame -> DataFrame` functions; the `dt` partition a row belongs to is
the day its landing file arrived, so that every partition is rebuilt from its
own inputs only. Late events (dated before their arrival day) stay in the
partition they arrived in and are flagged `is_late`.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms import common

EVENT_TYPES = (
    "user.registered",
    "order.created",
    "system.health.check",
    "integration.webhook.received",
    "ml.model.inference",
)
REQUIRED_FIELDS = ("eventId", "eventType", "timestamp", "data")
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
PAYLOAD_PERSONAL = ("email", "firstName", "lastName")
METADATA_PERSONAL = ("ipAddress",)
ENVELOPE = {  # processed column: envelope field
    "event_id": "eventId",
    "event_type": "eventType",
    "event_source": "eventSource",
    "version": "version",
    "correlation_id": "correlationId",
    "user_id": "userId",
    "session_id": "sessionId",
    "environment": "environment",
    "region": "region",
    "tenant_id": "tenantId",
}


ENVELOPE_FIELDS = (*ENVELOPE.values(), *REQUIRED_FIELDS)


def _rules(envelope: Column, timestamp: Column) -> list[tuple[Column, str]]:
    """The rules a valid event keeps, in the order its reasons are listed."""
    return [
        (F.col("_malformed"), "malformed_json"),
        *[(envelope.getField(name).isNull(), f"missing_required_field:{name}") for name in REQUIRED_FIELDS],
        (~envelope.getField("eventId").rlike(UUID_PATTERN), "invalid_event_id"),
        (~envelope.getField("eventType").isin(*EVENT_TYPES), "unknown_event_type"),
        (timestamp.isNull(), "invalid_timestamp"),
    ]


def _without(json_text: Column, fields: tuple[str, ...]) -> Column:
    """The JSON text with the string values of `fields` replaced by null (no back-references: portable)."""
    for name in fields:
        json_text = F.regexp_replace(json_text, f'"{name}":"(?:[^"\\\\]|\\\\.)*"', f'"{name}":null')
    return json_text


def parse_events(raw: DataFrame) -> DataFrame:
    """Typed events plus `quarantine_reason` (null for a valid event); `_line` keeps the line for quarantine.

    Personal fields of the payload and metadata are lifted into their own columns
    (so that their declared protection applies) and nulled inside the JSON.
    """
    parsed = common.parsed_lines(raw, ENVELOPE_FIELDS, "envelope")
    envelope = F.col("envelope")
    timestamp = F.expr("try_to_timestamp(envelope.timestamp)")
    data = envelope.getField("data")
    payload, metadata = F.get_json_object(data, "$.payload"), F.get_json_object(data, "$.metadata")
    return parsed.select(
        "dt",
        *[envelope.getField(field).alias(column) for column, field in ENVELOPE.items()],
        timestamp.alias("event_ts"),
        F.to_date(timestamp).alias("event_date"),
        (F.to_date(timestamp) < F.col("dt")).alias("is_late"),
        _without(payload, PAYLOAD_PERSONAL).alias("payload"),
        _without(metadata, METADATA_PERSONAL).alias("metadata"),
        F.get_json_object(payload, "$.email").alias("email"),
        F.get_json_object(payload, "$.firstName").alias("first_name"),
        F.get_json_object(payload, "$.lastName").alias("last_name"),
        F.get_json_object(metadata, "$.ipAddress").alias("ip_address"),
        "source_file",
        "line_number",
        F.col("line").alias("_line"),
        *common.rule_reasons(*_rules(envelope, timestamp)),
    )


def hourly_event_counts(events: DataFrame) -> DataFrame:
    return events.groupBy(
        "dt", F.date_trunc("hour", "event_ts").alias("event_hour"), "event_type", "region"
    ).agg(F.count(F.lit(1)).alias("event_count"), F.countDistinct("user_id").alias("unique_users"))


def daily_active_users(events: DataFrame) -> DataFrame:
    return events.groupBy("dt").agg(
        F.countDistinct("user_id").alias("active_users"),
        F.countDistinct("session_id").alias("sessions"),
        F.count(F.lit(1)).alias("events"),
        F.sum(F.when(F.col("event_type") == "user.registered", 1).otherwise(0))
        .cast("long")
        .alias("registrations"),
    )


def daily_order_revenue(events: DataFrame) -> DataFrame:
    """Revenue of `order.created` events by currency; orders without an amount or currency are counted
    apart."""
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
