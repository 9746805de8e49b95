"""Residency rules from the tenants reference data (the Data Plane's `tenants`): a tenant's rows may live
only in its allowed regions. Pure `DataFrame -> DataFrame` functions."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.datasets import QUARANTINE_REASON
from transforms.common import first_reason

TENANT_STATUSES = ("active", "suspended", "trial")
_TENANT_LINE = (
    "struct<tenant_id:string,name:string,plan_id:string,status:string,data_region:string,"
    "allowed_regions:array<string>>"
)


def parse_tenants(raw: DataFrame) -> DataFrame:
    """The day's tenants snapshot, typed; lines that cannot say where a tenant's data may live are
    quarantined (its home region must be one of its allowed regions)."""
    parsed = raw.select(
        "dt", "source_file", "line_number", "line", F.from_json("line", _TENANT_LINE).alias("_t")
    )
    tenant = F.col("_t")
    reason = first_reason(
        (tenant.isNull() | tenant["tenant_id"].isNull(), "malformed_or_missing_tenant_id"),
        (tenant["data_region"].isNull(), "missing_required_field:data_region"),
        (
            F.coalesce(F.size(tenant["allowed_regions"]), F.lit(0)) <= 0,
            "missing_required_field:allowed_regions",
        ),
        (~F.array_contains(tenant["allowed_regions"], tenant["data_region"]), "data_region_not_allowed"),
        (~tenant["status"].isin(*TENANT_STATUSES), "unknown_status"),
    )
    return parsed.select(
        "dt",
        tenant["tenant_id"].alias("tenant_id"),
        tenant["name"].alias("name"),
        tenant["plan_id"].alias("plan_id"),
        tenant["status"].alias("status"),
        tenant["data_region"].alias("data_region"),
        # kept as "r1,r2": Sail cannot union list columns that the Delta reader and writer name differently
        F.array_join(tenant["allowed_regions"], ",").alias("allowed_regions"),
        "source_file",
        "line_number",
        F.col("line").alias("_line"),
        reason.alias(QUARANTINE_REASON),
    )


def require_tenant_region(
    rows: DataFrame, tenants: DataFrame, tenant_column: str, region_column: str
) -> DataFrame:
    """Mark rows stored in a region their tenant does not allow (by the same day's tenants snapshot; an
    unknown tenant allows none), keeping an earlier reason. The reason is the dataset rule's
    `region_not_allowed:<region>`."""
    allowed = tenants.select(
        F.col("dt").alias("_tenants_dt"),
        F.col("tenant_id").alias("_tenants_tenant"),
        F.split(F.col("allowed_regions"), ",").alias("_tenant_regions"),
    )
    joined = rows.join(
        allowed,
        (F.col("dt") == F.col("_tenants_dt")) & (F.col(tenant_column) == F.col("_tenants_tenant")),
        "left",
    )
    region = F.col(region_column)
    outside = (
        region.isNull()
        | F.col("_tenant_regions").isNull()
        | ~F.coalesce(F.array_contains(F.col("_tenant_regions"), region), F.lit(False))
    )
    reason = F.when(outside, F.concat(F.lit("region_not_allowed:"), F.coalesce(region, F.lit("null"))))
    current = F.col(QUARANTINE_REASON) if QUARANTINE_REASON in rows.columns else F.lit(None).cast("string")
    return joined.withColumn(QUARANTINE_REASON, F.coalesce(current, reason)).drop(
        "_tenants_dt", "_tenants_tenant", "_tenant_regions"
    )


def within_tenant_regions(
    transform: Callable[..., DataFrame], tenant_column: str = "tenant_id", region_column: str = "region"
) -> Callable[..., DataFrame]:
    """`transform` (whose upstream datasets come by name) with the tenants rule applied to its output; the
    dataset lists `processed/<domain>/tenants` among its upstream."""

    def transformed(tenants: DataFrame, **inputs: DataFrame) -> DataFrame:
        return require_tenant_region(transform(**inputs), tenants, tenant_column, region_column)

    transformed.__doc__ = f"{transform.__name__}, then only its tenants' allowed regions."
    return transformed
