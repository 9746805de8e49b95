"""The curated quality summary of a domain per day: one declared dataset over the domain's metrics tables,
so it is built, checked, catalogued and traced like any other curated dataset."""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.datasets import Dataset
from quality import metrics
from quality.rules import COMPLETENESS_TARGET, CONSISTENCY_TARGET, VALIDITY_TARGET, Dimension, Severity, holds

NAME = "quality_summary"


def _count(condition) -> F.Column:
    return F.sum(F.when(condition, 1).otherwise(0)).cast("long")


def quality_summary(*single: DataFrame, **tables: DataFrame) -> DataFrame:
    """Per domain and day: datasets built and their outcome, checks, rows, quarantine, the weakest metric of
    each kind, and whether the document's targets are met (completeness > 99%, validity > 95%,
    consistency > 98%)."""
    # a domain of one gated dataset passes its one metrics table positionally (`common.derive`)
    rows = reduce(DataFrame.unionByName, [*single, *tables.values()])
    summary = rows.groupBy("dt", "domain").agg(
        F.count(F.lit(1)).cast("long").alias("datasets"),
        _count(F.col("status") == "failed").alias("datasets_failed"),
        _count(F.col("status") == "warning").alias("datasets_warning"),
        F.sum("checks_passed").cast("long").alias("checks_passed"),
        F.sum("checks_failed").cast("long").alias("checks_failed"),
        F.sum(F.when(F.col("layer") == "processed", F.col("rows"))).cast("long").alias("processed_rows"),
        F.sum("quarantined").cast("long").alias("quarantined_rows"),
        F.min("completeness").alias("min_completeness"),
        F.min("validity").alias("min_validity"),
        F.min("uniqueness").alias("min_uniqueness"),
        F.min("consistency").alias("min_consistency"),
        F.max("freshness_hours").alias("max_freshness_hours"),
    )
    processed = F.col("processed_rows") + F.col("quarantined_rows")
    meets = (
        (F.coalesce(F.col("min_completeness"), F.lit(1.0)) >= COMPLETENESS_TARGET)
        & (F.coalesce(F.col("min_validity"), F.lit(1.0)) >= VALIDITY_TARGET)
        & (F.coalesce(F.col("min_consistency"), F.lit(1.0)) >= CONSISTENCY_TARGET)
    )
    return summary.select(
        "*",
        F.when(processed > 0, F.col("quarantined_rows") / processed).alias("quarantine_rate"),
        meets.alias("meets_targets"),
        F.when(F.col("datasets_failed") > 0, "failed")
        .when(F.col("datasets_warning") > 0, "warning")
        .otherwise("passed")
        .alias("status"),
    )


def summary_dataset(domain: str, datasets: Iterable[Dataset], owner: str = "team:data-platform") -> Dataset:
    """The domain's `curated/<domain>/quality_summary`, over the metrics tables of its gated datasets."""
    gated = [d for d in datasets if d.layer != "raw" and d.domain == domain and d.name != NAME]
    summary = Dataset(
        name=NAME,
        domain=domain,
        layer="curated",
        owner=owner,
        transform=quality_summary,
        upstream=tuple(metrics.metrics_path(d) for d in gated),
        primary_key=("dt",),
        retention_days=1095,
        description=f"Data quality of the {domain} domain per day: datasets passed / warned / failed, "
        "checks, rows quarantined, the weakest completeness, validity, uniqueness and consistency, "
        "freshness, and whether the targets (completeness > 99%, validity > 95%, consistency > 98%) are met.",
        columns={
            "domain": "the domain measured",
            "datasets": "processed and curated datasets measured that day",
            "datasets_failed": "datasets whose blocking checks failed",
            "datasets_warning": "datasets with failed warning checks only",
            "checks_passed": "checks passed, over the domain's datasets",
            "checks_failed": "checks failed, over the domain's datasets",
            "processed_rows": "rows accepted by the processed datasets",
            "quarantined_rows": "rows quarantined by the processed datasets",
            "min_completeness": "the lowest completeness (share of required values present) of a dataset",
            "min_validity": "the lowest validity (share of rows passing the value rules) of a dataset",
            "min_uniqueness": "the lowest uniqueness (share of distinct keys) of a dataset",
            "min_consistency": "the lowest consistency (share of rows passing cross-dataset rules)",
            "max_freshness_hours": "hours from the end of the day to the latest measurement",
            "quarantine_rate": "quarantined / (accepted + quarantined) over the processed datasets",
            "meets_targets": "every dataset meets the completeness, validity and consistency targets",
            "status": "failed if a dataset failed, warning if one warned, else passed",
        },
        checks=(holds("meets_targets", severity=Severity.WARN, mostly=1.0, dimension=Dimension.VALIDITY),),
    )
    return summary
