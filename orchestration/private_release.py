"""The step of a differentially private release (a dataset declaring `privacy`): the factory's mechanics
(pinned reads, the partition-exact write, the quality gate, the catalog, OpenLineage) around the noise.

Per run: the budget ledger charges each day not yet charged, or refuses the run; the transform's exact
tallies (clipped, consenting users only) are collected from the engine, the noise is drawn in Python
(`lakehouse.privacy`, OpenDP), and only the noisy, thresholded cells are written. A day already
published is kept as it is: drawing it again would spend its epsilon a second time.
"""

import dataclasses
import datetime as dt

import dagster as dg
from pyspark.sql import types as T

from lakehouse import catalog, delta, privacy, schemas
from lakehouse.datasets import Dataset
from lakehouse.delta import WriteResult
from orchestration import lineage
from orchestration.factory import column_schema, dataset_specs, step_asset, write_metadata
from orchestration.resources import LakeResource
from quality import gate, metrics
from transforms import common


def release_schema(declaration: privacy.PrivacyDeclaration) -> T.StructType:
    """The columns `privacy.release` publishes, with the day."""
    return T.StructType(
        [
            T.StructField("dt", T.DateType()),
            *(T.StructField(c, T.StringType()) for c in ("source", "action", "resource")),
            T.StructField("events", T.LongType()),
            T.StructField("users", T.LongType()),
            *(T.StructField(f"{s}_share", T.DoubleType()) for s in declaration.statuses),
            T.StructField("p50_latency_ms", T.LongType()),
            T.StructField("p95_latency_ms", T.LongType()),
        ]
    )


def _declaration(dataset: Dataset) -> privacy.PrivacyDeclaration:
    if dataset.privacy is None:
        raise ValueError(f"{dataset.path} declares no privacy: it is built by the factory")
    return dataset.privacy


def _release(context: dg.AssetExecutionContext, lake: LakeResource, dataset: Dataset, days: list[dt.date]):
    declaration, config, run_id = _declaration(dataset), lake.config, context.run.run_id
    dataset_id = catalog.dataset_id(dataset.path)
    reads = {path: lake.read(path, days) for path in dataset.upstream}
    upstream = [(path, version) for path, (_, version) in reads.items()]
    schemas.require_compatible(config, dataset, release_schema(declaration))  # before any charge or write
    charge = privacy.charge(config, dataset_id, days, declaration, config.privacy_budget_epsilon, run_id)
    for day in charge.published:
        context.log.info(f"{dataset.path} {day}: already released, kept as published (no new draw, no spend)")
    excluded = 0
    if charge.draw:
        tallies = (
            common.derive(dataset, {path.split("/")[-1]: rows for path, (rows, _) in reads.items()})
            .where(delta.partition_predicate(charge.draw))
            .collect()
        )
        by_day = privacy.tallies_by_day([r.asDict() for r in tallies], len(declaration.latency_bins_ms))
        excluded = sum(t.excluded_no_consent for t in by_day.values())
        rows = [
            {"dt": day, **cell}
            for day in charge.draw
            for cell in privacy.release(declaration, by_day.get(day, privacy.DayTallies()))
        ]
        schema = release_schema(declaration)
        frame = lake.spark.createDataFrame(rows, schema)
        gated = charge.draw
    else:  # every day already published: judge and report what stands
        frame, standing = lake.read(dataset.path, days)
        schema = frame.schema
        gated = days
    # Write-audit-publish, as every derived step: nothing is committed unless the blocking checks pass. A
    # refused draw is discarded unseen (no review copy: showing it would be a release).
    quality = gate.evaluate(lake, dataset, gated, frame, run_id, upstream=upstream)
    if quality.blocking:
        yield from quality.results
        raise dg.Failure(
            description=f"{dataset.path}: blocking checks failed: {', '.join(quality.blocking)}. Nothing "
            "was published; the draw was discarded unseen."
        )
    if charge.draw:
        written = lake.write(dataset.path, frame, charge.draw)
        privacy.mark_published(config, dataset_id, charge.draw, declaration, run_id)
    else:
        assert isinstance(standing, int)  # a release is never region-resident: it holds no personal data
        written = WriteResult(
            lake.uri(dataset.path),
            standing,
            tuple(days),
            lake.rows_per_partition(dataset.path, days, standing),
        )
    metrics_written, metrics_schema = gate.publish_metrics(lake, dataset, gated, quality)
    columns = lineage.column_lineage(
        dataset, schema, {path: rows.schema for path, (rows, _) in reads.items()}
    )
    descriptions = lineage.column_descriptions(dataset, columns, schema)
    entry = lineage.catalog_entry(lake, dataset.path, dataset, schema, written, descriptions)
    reported = lineage.record(
        lake,
        run_id,
        dataset,
        gated,
        [(dataclasses.replace(entry, quality_status=quality.status), written.row_count, upstream, columns)],
    )
    yield dg.MaterializeResult(
        asset_key=dataset.key_path,
        metadata={
            **write_metadata(written, schema, dataset),
            "privacy": declaration.as_dict(),
            "epsilon_charged": charge.charged_epsilon,
            "epsilon_spent_in_period": {
                period: privacy.spent(config, dataset_id, period)
                for period in sorted({privacy.period_of(day) for day in days})
            },
            "privacy_budget_epsilon": config.privacy_budget_epsilon,
            "partitions_kept_as_published": [d.isoformat() for d in charge.published],
            "users_excluded_no_consent": excluded,
            "quality_status": quality.status,
            "quality_checks": quality.summary,
            "quality_seconds": quality.seconds,
            **({"data_docs": dg.MetadataValue.url(quality.docs_url)} if quality.docs_url else {}),
            "dagster/column_lineage": lineage.dagster_column_lineage(columns),
            "dagster/column_schema": column_schema(schema, dataset, descriptions),
        },
    )
    yield dg.MaterializeResult(
        asset_key=metrics.metrics_path(dataset).split("/"),
        metadata=write_metadata(metrics_written, metrics_schema),
    )
    yield from quality.results
    return reported


def release_asset(dataset: Dataset) -> dg.AssetsDefinition:
    """The asset of a private release; its declaration is checked against OpenDP's privacy maps first."""
    declaration = _declaration(dataset)
    privacy.check_declaration(declaration)
    specs = [
        spec.merge_attributes(metadata={"privacy": declaration.as_json()})
        if spec.key.path == dataset.key_path
        else spec
        for spec in dataset_specs(dataset)
    ]
    return step_asset(dataset, _release, specs)
