"""Turns dataset declarations into Dagster assets: the mechanics every domain shares, written once."""

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Iterable

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import audit, catalog, landing, openlineage, schemas
from lakehouse.datasets import QUARANTINE_REASON, Dataset
from lakehouse.delta import WriteResult
from orchestration import lineage
from orchestration.resources import LakeResource
from quality import gate, metrics
from transforms import common

DAILY = dg.DailyPartitionsDefinition(start_date=os.environ.get("LAKEHOUSE_START_DATE", "2024-01-01"))
SINGLE_RUN = dg.BackfillPolicy.single_run()
# A run tagged so may replace a non-empty partition by an empty one when its input is missing.
ALLOW_EMPTY_TAG = "lakehouse/allow_empty_partitions"


class MissingInputError(RuntimeError):
    """A partition with rows would be replaced by nothing because its input is missing."""


def partition_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The daily partitions this run builds (one, or a whole backfill range)."""
    return [dt.date.fromisoformat(key) for key in context.partition_keys]


def pool_for(path: str) -> str:
    """One pool per writing step; `infra/dagster.yaml` limits every pool to one at a time."""
    return "delta-" + path.replace("/", "-")


def column_schema(
    schema: T.StructType, dataset: Dataset | None = None, descriptions: dict[str, str] | None = None
) -> dg.TableSchema:
    def tags(name: str) -> dict[str, str]:
        if dataset is None:
            return {}
        found = {"classification": dataset.classification_of(name).value}
        if name in dataset.personal_data:
            found["protection"] = dataset.personal_data[name].value
        return found

    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=f.name,
                type=f.dataType.simpleString(),
                description=(descriptions or (dataset.columns if dataset else {})).get(f.name),
                tags=tags(f.name),
            )
            for f in schema.fields
        ]
    )


def write_metadata(result: WriteResult, schema: T.StructType, dataset: Dataset | None = None) -> dict:
    return {
        "dagster/row_count": result.row_count,
        "dagster/uri": result.uri,
        "dagster/column_schema": column_schema(schema, dataset),
        "delta_version": result.version,
        "partitions_written": ", ".join(day.isoformat() for day in result.partitions),
        "rows_per_partition": {day.isoformat(): rows for day, rows in result.rows_per_partition.items()},
        "added_columns": list(result.added_columns),
    }


def landing_spec(domain: str, source: str, owner: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=["landing", domain, source],
        group_name=domain,
        owners=[owner],
        kinds={"s3"},
        partitions_def=DAILY,
        tags={"layer": "landing", "domain": domain},
        description=f"Files `{source}-*` dropped by upstream systems (or the synthetic generator) "
        f"under landing/{domain}/dt=YYYY-MM-DD/.",
    )


def _declared_metadata(dataset: Dataset) -> dict:
    return {
        "layer": dataset.layer,
        "primary_key": list(dataset.primary_key),
        "schema_policy": dataset.schema_policy.value,
        "retention_days": dataset.retention_days,
        "classification": {c: v.value for c, v in dataset.classification.items()},
        "personal_data": {c: v.value for c, v in dataset.personal_data.items()},
        "subject_columns": list(dataset.subject_columns),
        "tenant_column": dataset.tenant_column or "",
        "region_column": dataset.region_column or "",
        "allowed_regions": list(dataset.allowed_regions),
    }


def _spec(dataset: Dataset, key: list[str], layer: str, description: str, deps: list) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=key,
        deps=deps,
        description=description,
        group_name=dataset.domain,
        owners=[dataset.owner],
        tags={"layer": layer, "domain": dataset.domain},
        kinds={"delta", "spark"},
        partitions_def=DAILY,
        metadata=_declared_metadata(dataset),
        code_version=lineage.code_version(dataset),
    )


def dataset_specs(dataset: Dataset) -> list[dg.AssetSpec]:
    """The dataset's asset, and its quarantine table's when it has one."""
    deps = (
        [dg.AssetKey(["landing", dataset.domain, dataset.landing_source])]
        if dataset.layer == "raw"
        else [dg.AssetKey(path.split("/")) for path in dataset.upstream] + gate.reference_deps(dataset)
    )
    specs = [_spec(dataset, dataset.key_path, dataset.layer, dataset.description, deps)]
    if dataset.has_quarantine:
        specs.append(
            _spec(
                dataset,
                dataset.quarantine_path.split("/"),
                "quarantine",
                f"Rows of {dataset.path} refused by its rules, with the reason and the run.",
                deps,
            )
        )
    if dataset.layer != "raw":
        specs.append(
            _spec(
                dataset,
                metrics.metrics_path(dataset).split("/"),
                "quality",
                f"Quality metrics of {dataset.path} per partition (completeness, validity, uniqueness, "
                "consistency, freshness, quarantine rate) and its checks' outcome.",
                deps,
            )
        )
    return specs


def _kept_without_input(
    context: dg.AssetExecutionContext,
    lake: LakeResource,
    dataset: Dataset,
    days: list[dt.date],
    has_input: Callable[[dt.date], bool],
) -> list[dt.date]:
    """The days whose input is missing while the table holds rows for them: never emptied by accident.
    A run tagged to allow it empties them, and the audit records what it emptied."""
    current = lake.rows_per_partition(dataset.path, days)
    missing = [day for day in days if current[day] and not has_input(day)]
    if not missing or context.run.tags.get(ALLOW_EMPTY_TAG, "").lower() != "true":
        return missing
    audit.write(
        lake.config,
        context.run.run_id,
        [
            audit.Record(
                "backfill",
                "emptied",
                catalog.dataset_id(dataset.path),
                rows=sum(current[day] for day in missing),
                partitions=[day.isoformat() for day in missing],
                detail=f"input missing; emptied on purpose by a run tagged {ALLOW_EMPTY_TAG}=true",
            )
        ],
    )
    context.log.warning(
        f"{dataset.path}: emptying {', '.join(d.isoformat() for d in missing)} on purpose "
        f"({sum(current[day] for day in missing)} rows): their input is missing"
    )
    return []


def _ingest(context: dg.AssetExecutionContext, lake: LakeResource, dataset: Dataset, days: list[dt.date]):
    listing = landing.list_landing(
        lake.config, dataset.domain, days, dataset.landing_source, dataset.landing_format
    )
    for warning in listing.warnings:
        context.log.warning(warning)
    kept = _kept_without_input(context, lake, dataset, days, listing.present)
    for day in kept:
        why = landing.expiry_note(lake.config, dataset.domain, dataset.landing_source, day)
        context.log.warning(
            f"{dataset.path} {day}: kept as it is. {why} "
            f"To empty the partition on purpose, run with the tag {ALLOW_EMPTY_TAG}=true."
        )
    build = [day for day in days if day not in kept]
    if not build:
        for key in (dataset.key_path, dataset.quarantine_path.split("/")):
            yield dg.MaterializeResult(
                asset_key=key, metadata={"partitions_kept": [d.isoformat() for d in kept]}
            )
        return lineage.planned(lake, dataset)
    files = {day: listing.files[day] for day in build}
    file_count = sum(map(len, files.values()))
    context.log.info(f"{file_count} landing files of {dataset.landing} for {len(build)} partition(s)")
    now = dt.datetime.now(dt.UTC)
    with landing.staged_lines(
        lake.config, dataset.path, files, [r for r in listing.refused if r.day in build]
    ) as staged:
        lines = (
            lake.spark.read.parquet(lake.engine_path(staged.lines))
            if staged.lines
            else lake.spark.createDataFrame([], landing.LINES_DDL)
        )
        refusals = (
            lake.spark.read.parquet(lake.engine_path(staged.refused))
            if staged.refused
            else lake.spark.createDataFrame([], landing.REFUSALS_DDL)
        )
        raw = common.raw_lines(lines, context.run.run_id, now)
        rejected = common.refused_lines(refusals, context.run.run_id, now)
        schemas.require_compatible(lake.config, dataset, raw.schema)  # before any write
        result = lake.write(dataset.path, raw, build, dataset.schema_policy)
        held = lake.write(dataset.quarantine_path, rejected, build)
    if held.row_count:
        context.log.warning(
            f"{held.row_count} landing lines or files of {dataset.landing} refused (not text, too "
            f"long, or misnamed): see {dataset.quarantine_path}"
        )
    columns = lineage.column_lineage(dataset, raw.schema, {})
    source = [(lineage.landing_path(dataset), None)]
    reported = lineage.record(
        lake,
        context.run.run_id,
        dataset,
        build,
        [
            (lineage.landing_entry(lake, dataset), file_count, (), {}),
            (
                lineage.catalog_entry(lake, dataset.path, dataset, raw.schema, result),
                result.row_count,
                source,
                columns,
            ),
            (
                lineage.catalog_entry(lake, dataset.quarantine_path, dataset, rejected.schema, held),
                held.row_count,
                source,
                {},
            ),
        ],
    )
    kept_metadata = {"partitions_kept": [d.isoformat() for d in kept]} if kept else {}
    yield dg.MaterializeResult(
        asset_key=dataset.key_path,
        metadata={
            **write_metadata(result, raw.schema, dataset),
            "landing_files": file_count,
            "lines_read": staged.line_count,
            "lines_refused": held.row_count,
            **kept_metadata,
            "dagster/column_lineage": lineage.dagster_column_lineage(columns),
        },
    )
    yield dg.MaterializeResult(
        asset_key=dataset.quarantine_path.split("/"),
        metadata={**write_metadata(held, rejected.schema), **kept_metadata},
    )
    return reported


def _check_declared_columns(dataset: Dataset, df: DataFrame) -> None:
    declared = [
        c
        for c in (
            dataset.tenant_column,
            dataset.region_column,
            *dataset.subject_columns,
            *dataset.primary_key,
        )
        if c
    ]
    missing = [c for c in declared if c not in df.columns]
    if missing:
        raise ValueError(f"{dataset.path} declares columns its transform does not produce: {missing}")


def _derive(context: dg.AssetExecutionContext, lake: LakeResource, dataset: Dataset, days: list[dt.date]):
    reads = {path: lake.read(path, days) for path in dataset.upstream}
    primary, (_, primary_version) = dataset.upstream[0], reads[dataset.upstream[0]]
    available = lake.rows_per_partition(primary, days, primary_version)
    missing = _kept_without_input(context, lake, dataset, days, lambda day: available[day] > 0)
    if missing:
        raise MissingInputError(
            f"{dataset.path}: {primary} has no rows for {', '.join(d.isoformat() for d in missing)} while "
            f"{dataset.path} has; refusing to empty those partitions (rebuild {primary} first, or run with "
            f"the tag {ALLOW_EMPTY_TAG}=true to empty them on purpose)"
        )
    upstream = [(path, version) for path, (_, version) in reads.items()]
    inputs = {path.split("/")[-1]: rows for path, (rows, _) in reads.items()}
    output = common.derive(dataset, inputs)
    schemas.require_compatible(lake.config, dataset, common.written_schema(dataset, output))  # before a write
    if QUARANTINE_REASON in output.columns and not dataset.has_quarantine:
        raise ValueError(f"{dataset.path} produces {QUARANTINE_REASON} but declares no quarantine")
    upstream_schemas = {path: rows.schema for path, (rows, _) in reads.items()}
    held, duplicates = None, {}
    if not (dataset.has_quarantine or dataset.deduplicate_on):
        written, schema, metadata = _write(lake, dataset, output, days)
        outputs = [(dataset.path, written, schema)]
        results = [(dataset.key_path, metadata)]
    else:
        # The output feeds several writes and counts: compute it once (Spark Connect has no persist on Sail).
        with landing.staging_folder(lake.config, dataset.path) as folder:
            # `_` columns only matter for rejected rows: staging them for every row costs a copy of raw.
            (
                output.withColumns(
                    {
                        c: F.when(F.col(QUARANTINE_REASON).isNotNull(), F.col(c))
                        for c in output.columns
                        if c.startswith("_")
                    }
                )
                if QUARANTINE_REASON in output.columns and any(c.startswith("_") for c in output.columns)
                else output
            ).write.parquet(lake.engine_path(folder))
            output = lake.spark.read.schema(output.schema).parquet(lake.engine_path(folder))
            accepted = common.accepted_rows(output)
            outputs, results = [], []
            if dataset.has_quarantine:
                rejected = common.quarantine_records(output, context.run.run_id, dt.datetime.now(dt.UTC))
                held = lake.write(dataset.quarantine_path, rejected, days)
                outputs.append((dataset.quarantine_path, held, rejected.schema))
                results.append((dataset.quarantine_path.split("/"), write_metadata(held, rejected.schema)))
            before = (
                {row["dt"]: row["count"] for row in accepted.groupBy("dt").count().collect()}
                if dataset.deduplicate_on
                else {}
            )
            if dataset.deduplicate_on:
                accepted = common.deduplicate(accepted, dataset.deduplicate_on)
            written, schema, metadata = _write(lake, dataset, accepted, days)
        if held is not None:
            metadata["quarantined_rows"] = held.row_count
        if dataset.deduplicate_on:
            duplicates = {day: n - written.rows_per_partition.get(day, 0) for day, n in before.items()}
            metadata["duplicates_removed"] = sum(duplicates.values())
        outputs.insert(0, (dataset.path, written, schema))
        results.insert(0, (dataset.key_path, metadata))
    quality = gate.evaluate(lake, dataset, days, written, context.run.run_id, held, duplicates, upstream)
    results[0][1].update(
        {
            "quality_status": quality.status,
            "quality_checks": quality.summary,
            "quality_seconds": quality.seconds,
        }
    )
    if quality.docs_url:
        results[0][1]["data_docs"] = dg.MetadataValue.url(quality.docs_url)
    columns = lineage.column_lineage(dataset, schema, upstream_schemas)
    descriptions = lineage.column_descriptions(dataset, columns, schema)
    results[0][1]["dagster/column_lineage"] = lineage.dagster_column_lineage(columns)
    results[0][1]["dagster/column_schema"] = column_schema(schema, dataset, descriptions)
    reported = lineage.record(
        lake,
        context.run.run_id,
        dataset,
        days,
        [
            (
                dataclasses.replace(
                    lineage.catalog_entry(
                        lake,
                        path,
                        dataset,
                        table_schema,
                        result,
                        descriptions if path == dataset.path else None,
                    ),
                    quality_status=quality.status if path == dataset.path else "unknown",
                ),
                result.row_count,
                upstream,
                columns if path == dataset.path else {},
            )
            for path, result, table_schema in outputs
        ],
    )
    for key, metadata in results:
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
    assert quality.written is not None and quality.written_schema is not None  # the gate wrote its metrics
    yield dg.MaterializeResult(
        asset_key=metrics.metrics_path(dataset).split("/"),
        metadata=write_metadata(quality.written, quality.written_schema),
    )
    yield from quality.results  # after the materializations: a failed blocking check then stops downstream
    return reported


def _write(lake: LakeResource, dataset: Dataset, rows: DataFrame, days: list[dt.date]):
    """Check the declared columns, protect personal data, write the partitions."""
    _check_declared_columns(dataset, rows)
    if dataset.personal_data:
        rows = common.protect(rows, dataset.personal_data, lake.config.token_key())
    written = lake.write(
        dataset.path, rows, days, dataset.schema_policy, dataset.region_column if dataset.resident else None
    )
    return written, rows.schema, write_metadata(written, rows.schema, dataset)


def dataset_asset(dataset: Dataset) -> dg.AssetsDefinition:
    """The asset that builds the dataset's partitions (and its quarantine's) in one step, reporting the
    step to the catalog and as an OpenLineage run (START, then COMPLETE or FAIL)."""
    build = _ingest if dataset.layer == "raw" else _derive
    name = dataset.path.replace("/", "__")

    @dg.multi_asset(
        specs=dataset_specs(dataset),
        check_specs=gate.check_specs(dataset),
        name=name,
        partitions_def=DAILY,
        backfill_policy=SINGLE_RUN,
        pool=pool_for(dataset.path),
    )
    def _materialize(context: dg.AssetExecutionContext, lake: LakeResource):
        run_id = context.run.run_id
        inputs, outputs = lineage.planned(lake, dataset)
        openlineage.emit_run_event("START", run_id, name, inputs, outputs)
        try:
            inputs, outputs = yield from build(context, lake, dataset, partition_days(context))
        except Exception as error:
            openlineage.emit_run_event(
                "FAIL", run_id, name, inputs, outputs, error=f"{type(error).__name__}: {error}"
            )
            raise
        openlineage.emit_run_event("COMPLETE", run_id, name, inputs, outputs)

    return _materialize


def domain_assets(datasets: Iterable[Dataset]) -> list:
    """A domain's assets: one per dataset, plus the landing sources its raw datasets read."""
    datasets = list(datasets)
    sources = {(d.domain, d.landing_source, d.owner) for d in datasets if d.layer == "raw"}
    return [*(landing_spec(*source) for source in sorted(sources)), *(dataset_asset(d) for d in datasets)]
