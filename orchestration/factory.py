"""Turns dataset declarations into Dagster assets: the mechanics every domain shares, written once."""

import contextlib
import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import audit, catalog, landing, openlineage, schemas
from lakehouse.datasets import QUARANTINE_REASON, Dataset
from lakehouse.delta import SchemaPolicy, WriteResult
from lakehouse.lake import TableVersion
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
        held = lake.write(dataset.quarantine_path, rejected, build, SchemaPolicy.ADDITIVE)
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


@dataclasses.dataclass(frozen=True)
class Staged:
    """A derived step's output staged as Parquet: what it would publish, before anything is committed."""

    accepted: DataFrame  # the rows exactly as they would be written (de-duplicated, protected), staged
    rejected: DataFrame | None  # quarantine records, when the dataset has a quarantine
    held: metrics.Quarantined | None
    deduplicated_from: dict[dt.date, int] | None  # accepted rows per partition before de-duplication
    files: str | None = None  # `accepted`'s folder when staged alone in a table's layout: committed as is


SPLIT = "_split"  # the staged output's partitions: each side of the step reads only its own rows
ACCEPTED, REJECTED = "accepted", "rejected"


def _staged(lake: LakeResource, df: DataFrame, folder: str, partition_by: str | None = None) -> DataFrame:
    """`df` computed once into Parquet under `folder`, read back (Spark Connect has no persist on Sail),
    its columns in their order (the engine reads a partition column last)."""
    (df.write.partitionBy(partition_by) if partition_by else df.write).parquet(lake.engine_path(folder))
    return lake.spark.read.schema(df.schema).parquet(lake.engine_path(folder)).select(*df.columns)


def _split(lake: LakeResource, dataset: Dataset, output: DataFrame) -> DataFrame:
    """The output with each row's SPLIT; accepted rows protected, rejected rows as the transform gave
    them (quarantine records keep what arrived)."""
    rejected = F.lit(False)
    if QUARANTINE_REASON in output.columns:
        rejected = F.col(QUARANTINE_REASON).isNotNull()
        # `_` columns only matter for rejected rows: staging them for every row costs a copy of raw.
        quarantine_only = [c for c in output.columns if c.startswith("_")]
        if quarantine_only:
            output = output.withColumns({c: F.when(rejected, F.col(c)) for c in quarantine_only})
    output = output.withColumn(SPLIT, F.when(rejected, F.lit(REJECTED)).otherwise(F.lit(ACCEPTED)))
    if dataset.personal_data:
        key = lake.config.token_key()
        output = common.protect(output, dataset.personal_data, key, rows=F.col(SPLIT) == ACCEPTED)
    return output


def _deduplicated(
    lake: LakeResource, rows: DataFrame, keys: Sequence[str], folder: str
) -> tuple[DataFrame, str | None]:
    """The staged rows without the later rows of a repeated key; staged again only when a key repeats,
    then in the table's layout (partitioned by dt), so that the write commits those files (their folder,
    returned). Keys are compared as staged, protected: a token is as distinct as its value (no masked
    keys, see `Dataset`)."""
    firsts = _staged(lake, common.first_lines(rows, keys), f"{folder}/first_lines")
    if firsts.isEmpty():
        return rows, None
    files = f"{folder}/deduplicated"
    return _staged(lake, common.without_repeats(rows, firsts, keys), files, partition_by="dt"), files


def stage(lake: LakeResource, dataset: Dataset, output: DataFrame, run_id: str, folder: str) -> Staged:
    """Stage the transform's output in one pass, split into the rows to publish exactly as they would be
    written (protected, then de-duplicated by source line) and the rejected rows: the gate and the write
    then read the same Parquet copy, and the quarantine records read only the rejected rows."""
    _check_declared_columns(dataset, common.accepted_rows(output))
    output = _staged(lake, _split(lake, dataset, output), f"{folder}/output", partition_by=SPLIT)
    rows = {side: output.where(F.col(SPLIT) == side).drop(SPLIT) for side in (ACCEPTED, REJECTED)}
    accepted = common.accepted_rows(rows[ACCEPTED])
    gate.audited_columns(dataset, accepted.columns)  # a suite naming a missing column fails here
    deduplicated_from, files = None, None
    if dataset.deduplicate_on:
        counted = accepted.groupBy("dt").count().collect()
        deduplicated_from = {row["dt"]: row["count"] for row in counted}
        accepted, files = _deduplicated(lake, accepted, dataset.deduplicate_on, folder)
    rejected, held = None, None
    if dataset.has_quarantine:
        records = common.quarantine_records(rows[REJECTED], run_id, dt.datetime.now(dt.UTC))
        rejected = _staged(lake, records, f"{folder}/quarantine")
        held = metrics.count_quarantined(rejected)
    return Staged(accepted, rejected, held, deduplicated_from, files)


def keep_for_review(lake: LakeResource, dataset: Dataset, run_id: str, staged: Staged) -> str:
    """Copy the staged rows a failed gate refused to publish where an operator can read them."""
    review = landing.review_folder(lake.config, dataset.path, run_id)
    staged.accepted.write.mode("overwrite").parquet(lake.engine_path(f"{review}/accepted"))
    if staged.rejected is not None:
        staged.rejected.write.mode("overwrite").parquet(lake.engine_path(f"{review}/quarantine"))
    return review


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
    run_id = context.run.run_id
    with audited(lake, dataset, days, output, run_id, upstream) as (staged, quality):
        if quality.blocking:
            review = keep_for_review(lake, dataset, run_id, staged)
            yield from gate.under_review(quality, review)
            raise dg.Failure(
                description=f"{dataset.path}: blocking checks failed: {', '.join(quality.blocking)}. "
                "Nothing was published: the dataset, its quarantine and its metrics keep their versions. "
                f"The rows of {', '.join(d.isoformat() for d in days)} wait for review at {review}",
                metadata={
                    "failed_checks": quality.blocking,
                    "review_location": dg.MetadataValue.path(review),
                },
            )
        published = publish(lake, dataset, days, staged, quality, run_id, upstream, upstream_schemas)
    for key, metadata in published.results:
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)
    yield from quality.results
    return published.reported


@dataclasses.dataclass(frozen=True)
class Published:
    """What a step committed: each table's materialization metadata, and its lineage for OpenLineage."""

    results: list[tuple[list[str], dict]]  # (asset key, metadata): the dataset first, the metrics last
    reported: tuple[list, list]
    written: WriteResult  # the dataset's partitions
    held: WriteResult | None  # the quarantine's


@contextlib.contextmanager
def audited(
    lake: LakeResource,
    dataset: Dataset,
    days: list[dt.date],
    output: DataFrame,
    run_id: str,
    upstream: list[tuple[str, TableVersion]],
) -> Iterator[tuple[Staged, gate.Outcome]]:
    """Write and audit: the output staged as Parquet (for the block's duration) and the gate's outcome on
    exactly the staged rows. Nothing is committed; the caller publishes or keeps the rows for review."""
    with landing.staging_folder(lake.config, dataset.path) as folder:
        staged = stage(lake, dataset, output, run_id, folder)
        quality = gate.evaluate(
            lake,
            dataset,
            days,
            staged.accepted,
            run_id,
            staged.held,
            staged.deduplicated_from,
            upstream,
        )
        yield staged, quality


def publish(
    lake: LakeResource,
    dataset: Dataset,
    days: list[dt.date],
    staged: Staged,
    quality: gate.Outcome,
    run_id: str,
    upstream: list[tuple[str, TableVersion]],
    upstream_schemas: dict[str, T.StructType],
) -> Published:
    """Commit audited rows: the dataset, then its quarantine, then its metrics; record them in the catalog."""
    schema = staged.accepted.schema
    written = lake.write(
        dataset.path,
        staged.accepted,
        days,
        dataset.schema_policy,
        dataset.region_column if dataset.resident else None,
        run_id,
        staged.files,
    )
    outputs = [(dataset.path, written, schema)]
    results = [(dataset.key_path, write_metadata(written, schema, dataset))]
    held = None
    if staged.rejected is not None:
        held = lake.write(dataset.quarantine_path, staged.rejected, days, SchemaPolicy.ADDITIVE)
        outputs.append((dataset.quarantine_path, held, staged.rejected.schema))
        results.append((dataset.quarantine_path.split("/"), write_metadata(held, staged.rejected.schema)))
        results[0][1]["quarantined_rows"] = held.row_count
    if dataset.deduplicate_on:
        results[0][1]["duplicates_removed"] = sum(quality.duplicates.values())
    metrics_written, metrics_schema = gate.publish_metrics(lake, dataset, days, quality)
    results.append(
        (metrics.metrics_path(dataset).split("/"), write_metadata(metrics_written, metrics_schema))
    )
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
        run_id,
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
    return Published(results, reported, written, held)


def dataset_asset(dataset: Dataset) -> dg.AssetsDefinition:
    """The asset that builds the dataset's partitions (and its quarantine's) in one step."""
    if dataset.privacy:
        raise ValueError(f"{dataset.path} is a private release: orchestration.private_release builds it")
    return step_asset(dataset, _ingest if dataset.layer == "raw" else _derive, dataset_specs(dataset))


def step_asset(dataset: Dataset, build: Callable, specs: list[dg.AssetSpec]) -> dg.AssetsDefinition:
    """The one step of a dataset: `build(context, lake, dataset, days)` yields its results and returns its
    lineage; the step is reported as an OpenLineage run (START, then COMPLETE or FAIL)."""
    name = dataset.path.replace("/", "__")
    checks = gate.check_specs(dataset)

    @dg.multi_asset(
        specs=specs,
        check_specs=checks,
        name=name,
        partitions_def=DAILY,
        backfill_policy=SINGLE_RUN,
        pool=pool_for(dataset.path),
    )
    def _materialize(context: dg.AssetExecutionContext, lake: LakeResource):
        run_id = context.run.run_id
        if checks:  # a step that gates; raw steps don't, and their staging threads need the GIL
            gate.warm_up()
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
    from orchestration.private_release import release_asset  # it builds on this module's mechanics

    return [
        *(landing_spec(*source) for source in sorted(sources)),
        *(release_asset(d) if d.privacy else dataset_asset(d) for d in datasets),
    ]
