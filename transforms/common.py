"""Transforms every domain shares: raw ingestion metadata, quarantine split, residency, de-duplication,
protection of personal data. Pure functions; the factory applies them as declared."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.datasets import QUARANTINE_REASON, Protection

LINE_ORDER = ("source_file", "line_number")


def raw_lines(lines: DataFrame, run_id: str, ingested_at: dt.datetime) -> DataFrame:
    """Every landing line, unparsed, with ingestion metadata."""
    return lines.select("dt", "source_file", "line_number", "line",
                        F.lit(ingested_at).cast("timestamp").alias("ingested_at"), F.lit(run_id).alias("run_id"))


def refused_lines(refused: DataFrame, run_id: str, quarantined_at: dt.datetime) -> DataFrame:
    """Landing lines and files the raw layer could not keep as text, in the shared quarantine schema."""
    return refused.select("dt", "source_file", "line_number", "reason", "record", F.lit(run_id).alias("run_id"),
                          F.lit(quarantined_at).cast("timestamp").alias("quarantined_at"))


def first_reason(*rules: tuple[Column, str]) -> Column:
    """The name of the first rule whose condition holds, or null: the value of `quarantine_reason`."""
    return F.coalesce(*[F.when(condition, F.lit(name)) for condition, name in rules], F.lit(None).cast("string"))


def require_region(df: DataFrame, region_column: str, allowed: Iterable[str]) -> DataFrame:
    """Mark rows whose region is not allowed for the dataset (keeping an earlier reason)."""
    allowed = list(allowed)
    reason = F.when(F.col(region_column).isNull() | ~F.col(region_column).isin(*allowed),
                    F.concat(F.lit("region_not_allowed:"), F.coalesce(F.col(region_column), F.lit("null"))))
    current = F.col(QUARANTINE_REASON) if QUARANTINE_REASON in df.columns else F.lit(None).cast("string")
    return df.withColumn(QUARANTINE_REASON, F.coalesce(current, reason))


def accepted_rows(df: DataFrame) -> DataFrame:
    """Rows without a reason, without the reason and the `_`-prefixed quarantine-only columns."""
    if QUARANTINE_REASON not in df.columns:
        return df
    keep = [c for c in df.columns if c != QUARANTINE_REASON and not c.startswith("_")]
    return df.where(F.col(QUARANTINE_REASON).isNull()).select(*keep)


def quarantine_records(df: DataFrame, run_id: str, quarantined_at: dt.datetime) -> DataFrame:
    """Rejected rows in the one quarantine schema every dataset shares; the whole row kept as JSON."""
    if QUARANTINE_REASON not in df.columns:
        df = df.withColumn(QUARANTINE_REASON, F.lit(None).cast("string"))
    payload = [c for c in df.columns if c not in ("dt", QUARANTINE_REASON)]
    optional = {name: (F.col(name) if name in df.columns else F.lit(None)) for name in LINE_ORDER}
    return df.where(F.col(QUARANTINE_REASON).isNotNull()).select(
        "dt",
        optional["source_file"].cast("string").alias("source_file"),
        optional["line_number"].cast("int").alias("line_number"),
        F.col(QUARANTINE_REASON).alias("reason"),
        F.to_json(F.struct(*[F.col(c).alias(c.lstrip("_")) for c in payload])).alias("record"),
        F.lit(run_id).alias("run_id"),
        F.lit(quarantined_at).cast("timestamp").alias("quarantined_at"),
    )


def deduplicate(df: DataFrame, keys: Iterable[str]) -> DataFrame:
    """One row per key and partition: the first by source file and line."""
    missing = [c for c in LINE_ORDER if c not in df.columns]
    if missing:
        raise ValueError(f"de-duplication keeps the first row by {LINE_ORDER}; missing columns {missing}")
    window = Window.partitionBy("dt", *keys).orderBy(*LINE_ORDER)
    return df.withColumn("_occurrence", F.row_number().over(window)).where("_occurrence = 1").drop("_occurrence")


def tokenize(column: Column, key: str) -> Column:
    """Keyed, deterministic hash: the same value always gives the same token, so joins still work."""
    return F.when(column.isNull(), F.lit(None).cast("string")).otherwise(
        F.sha2(F.concat(F.lit(key), F.lit("|"), column.cast("string")), 256))


def mask(column: Column) -> Column:
    """Enough left to recognise, not to identify: a***@example.com, 10.1.x.x, A***."""
    value = column.cast("string")
    return (F.when(value.isNull(), F.lit(None).cast("string"))
            .when(value.contains("@"), F.concat(F.substring(value, 1, 1), F.lit("***@"),
                                               F.substring_index(value, "@", -1)))
            .when(value.rlike(r"^\d{1,3}(\.\d{1,3}){3}$"), F.concat(F.substring_index(value, ".", 2), F.lit(".x.x")))
            .otherwise(F.concat(F.substring(value, 1, 1), F.lit("***"))))


def protect(df: DataFrame, personal_data: Mapping[str, Protection], key: str) -> DataFrame:
    """Apply each personal-data column's declared protection."""
    missing = [c for c in personal_data if c not in df.columns]
    if missing:
        raise ValueError(f"personal-data columns declared but not produced: {missing}")
    return df.withColumns({
        name: tokenize(F.col(name), key) if how is Protection.TOKENIZE else mask(F.col(name))
        for name, how in personal_data.items()
    })
