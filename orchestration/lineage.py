"""What a materialization tells the catalog and Dagster about lineage: code versions, column
lineage (declared, else derived), catalog entries. The factory calls this after each write."""

import dataclasses
import functools
import hashlib
import inspect
import json
from collections.abc import Sequence

import dagster as dg
from pyspark.sql import types as T

from lakehouse import catalog, schemas
from lakehouse.datasets import LAYERS, Dataset
from lakehouse.delta import WriteResult
from lakehouse.lake import ResidentWriteResult, TableVersion
from lakehouse.maintenance import TableMaintenance, TableStats
from lakehouse.openlineage import DatasetInfo
from orchestration.resources import LakeResource
from transforms import common


def code_version(dataset: Dataset) -> str:
    """Changes when the transform's source or the declaration changes (shown by Dagster as a code change)."""
    function = dataset.transform or common.raw_lines
    while isinstance(function, functools.partial):
        function = function.func
    source = inspect.getsource(function)
    return hashlib.sha1(f"{source}\n{dataset!r}".encode()).hexdigest()[:12]


def landing_path(dataset: Dataset) -> str:
    return f"landing/{dataset.domain}/{dataset.landing}"


def column_lineage(
    dataset: Dataset, schema: T.StructType, upstream: dict[str, T.StructType]
) -> dict[str, list[tuple[str, str]]]:
    """Output column -> upstream (path, column): as declared, else the upstream columns of the same
    name, else (for data parsed out of raw lines) the raw line."""
    if dataset.layer == "raw":
        return {
            f.name: [
                (
                    landing_path(dataset),
                    "line" if f.name not in ("dt", "source_file", "line_number") else f.name,
                )
            ]
            for f in schema.fields
        }
    by_name = {path.split("/")[-1]: path for path in upstream}
    lineage = {}
    for f in schema.fields:
        if f.name in dataset.column_lineage:
            sources = []
            for ref in dataset.column_lineage[f.name]:
                name, _, column = ref.rpartition(".")
                sources += [(by_name[name], column)] if name else [(p, column) for p in upstream]
        else:
            sources = [(path, f.name) for path, s in upstream.items() if f.name in s.names]
            sources = sources or [
                (path, "line")
                for path, s in upstream.items()
                if path.startswith("raw/") and "line" in s.names
            ]
        if sources:
            lineage[f.name] = sources
    return lineage


DAY = "the day the row belongs to (its daily partition)"


@functools.cache
def _declarations() -> dict[str, Dataset]:
    from assets import DATASETS

    return {dataset.path: dataset for dataset in DATASETS}


def _declared_description(path: str, column: str, depth: int = 0) -> str | None:
    """The description a column carries where it was declared, following same-column lineage upstream."""
    if column == "dt":
        return DAY
    dataset = _declarations().get(path)
    if dataset is None or depth > len(LAYERS):
        return None
    if column in dataset.columns:
        return dataset.columns[column]
    by_name = {upstream.split("/")[-1]: upstream for upstream in dataset.upstream}
    refs = [ref.rpartition(".") for ref in dataset.column_lineage.get(column, ())]
    sources = [(by_name.get(name, ""), name_column) for name, _, name_column in refs if name] or [
        (upstream, column) for upstream in dataset.upstream
    ]
    return next(
        filter(None, (_declared_description(p, c, depth + 1) for p, c in sources if c == column)), None
    )


def column_descriptions(
    dataset: Dataset, lineage: dict[str, list[tuple[str, str]]], schema: T.StructType
) -> dict[str, str]:
    """Every column's description: declared, else the declaration it is carried from, else what its
    lineage says it is computed from, so the UI's column table and the catalog are never blank."""
    described = {}
    for f in schema.fields:
        sources = lineage.get(f.name, [])
        found = (
            dataset.columns.get(f.name)
            or (DAY if f.name == "dt" else None)
            or next(filter(None, (_declared_description(p, c) for p, c in sources if c == f.name)), None)
        )
        if found is None and sources and all(c == "line" and p.startswith("raw/") for p, c in sources):
            found = f"`{f.name}` parsed from the landing line ({', '.join(p for p, _ in sources)})"
        elif found is None and sources:
            found = "computed from " + ", ".join(f"{p}.{c}" for p, c in sources)
        if found:
            described[f.name] = found
    return described


def dagster_column_lineage(lineage: dict[str, list[tuple[str, str]]]) -> dg.TableColumnLineage:
    return dg.TableColumnLineage(
        deps_by_column={
            column: [
                dg.TableColumnDep(asset_key=dg.AssetKey(path.split("/")), column_name=name)
                for path, name in deps
            ]
            for column, deps in lineage.items()
        }
    )


def _tags(dataset: Dataset, layer: str) -> list[str]:
    tags = {layer, dataset.domain, *(dataset.classification_of(c).value for c in dataset.classification)}
    if dataset.personal_data or layer in ("raw", "quarantine") and dataset.subjects:
        tags.add("personal-data")
    if dataset.subjects:
        tags.add("gdpr")
    return sorted(tags)


def _subject_paths(dataset: Dataset, path: str) -> dict[str, tuple[str, ...]]:
    """Where subjects are in the table's records: a raw table's lines at the declared paths, and the lines
    its quarantine keeps (not text, too long) under `line`."""
    if path == dataset.path:
        return dataset.subject_paths
    if dataset.layer == "raw":
        return {
            column: tuple(f"$.line{p[1:]}" for p in paths) for column, paths in dataset.subject_paths.items()
        }
    return {}


def catalog_entry(
    lake: LakeResource,
    path: str,
    dataset: Dataset,
    schema: T.StructType,
    written: WriteResult,
    descriptions: dict[str, str] | None = None,
) -> catalog.Entry:
    layer = path.split("/")[0]
    regions = written.regions if isinstance(written, ResidentWriteResult) else {}
    tables = [TableMaintenance(r.uri, lake.config.storage_options) for r in regions.values()] or [
        TableMaintenance(written.uri, lake.config.storage_options)
    ]
    per_table = [table.stats() for table in tables if table.exists()]
    stats = TableStats(
        row_count=sum(s.row_count for s in per_table),
        latest_partition=max(filter(None, (s.latest_partition for s in per_table)), default=None),
    )
    return catalog.Entry(
        path=path,
        owner=dataset.owner,
        location=written.uri,
        description=dataset.description
        if path == dataset.path
        else f"Rows of {dataset.path} refused by its rules.",
        fields=[
            catalog.Field(
                f.name,
                f.dataType.simpleString(),
                (descriptions or dataset.columns).get(f.name),
                dataset.classification_of(f.name).value if layer != "quarantine" else "restricted",
            )
            for f in schema.fields
        ],
        tags=_tags(dataset, layer),
        retention_days=dataset.retention_days,
        regions=dataset.allowed_regions,
        subject_columns=dataset.subjects,
        subject_paths=_subject_paths(dataset, path),
        tenant_column=dataset.tenant_column,
        region_column=dataset.region_column,
        row_count=stats.row_count,
        # an empty partition has no files, yet it is materialized
        latest_partition=max(
            filter(None, [stats.latest_partition, *(d.isoformat() for d in written.partitions)])
        ),
        delta_version=written.version,
        privacy_json=dataset.privacy.as_json() if dataset.privacy and path == dataset.path else None,
        locations={region: result.uri for region, result in regions.items()},
    )


def landing_entry(lake: LakeResource, dataset: Dataset) -> catalog.Entry:
    return catalog.Entry(
        path=landing_path(dataset),
        owner=dataset.owner,
        location=lake.config.landing_uri(dataset.domain),
        description=f"Landing files {dataset.landing}-* of the {dataset.domain} domain, as received.",
        fields=[catalog.Field("line", "string", "one line of a landing file", "restricted")],
        tags=["landing", dataset.domain],
        retention_days=lake.config.landing_retention_days,
        subject_columns=dataset.subjects,
        subject_paths=dataset.subject_paths,
    )


def planned(lake: LakeResource, dataset: Dataset) -> tuple[list[DatasetInfo], list[DatasetInfo]]:
    """The step's inputs and outputs as known before it runs (for START and FAIL events)."""
    if dataset.layer == "raw":
        inputs = [DatasetInfo(landing_path(dataset), lake.config.landing_uri(dataset.domain))]
    else:
        inputs = [DatasetInfo(path, lake.uri(path)) for path in dataset.upstream]
    paths = [dataset.path, *([dataset.quarantine_path] if dataset.has_quarantine else [])]
    return inputs, [DatasetInfo(path, lake.uri(path), owner=dataset.owner) for path in paths]


def record(
    lake: LakeResource,
    run_id: str,
    dataset: Dataset,
    days: Sequence,
    outputs: Sequence[
        tuple[catalog.Entry, int, Sequence[tuple[str, TableVersion | None]], dict[str, list[tuple[str, str]]]]
    ],
) -> tuple[list[DatasetInfo], list[DatasetInfo]]:
    """One catalog record per table the step wrote: (entry, rows written, upstream versions, column lineage);
    the dataset's own table gets the schema registry's version of what it wrote.

    Returns the step's inputs and outputs as OpenLineage datasets, for its COMPLETE event.
    """
    version = code_version(dataset)
    [own] = [entry for entry, *_ in outputs if entry.path == dataset.path]
    fields = schemas.fields_of(dataset, [(f.name, f.type) for f in own.fields])
    registered = schemas.written_version(lake.config, dataset, fields, version, [d.isoformat() for d in days])
    outputs = [  # the dataset's own table's entry carries the registry's version of what was written
        (
            dataclasses.replace(entry, schema_version=registered["version"]) if entry is own else entry,
            rows,
            upstream,
            columns,
        )
        for entry, rows, upstream, columns in outputs
    ]
    catalog.record(
        lake.config,
        [
            catalog.Materialization(
                run_id=run_id,
                entry=entry,
                partitions=[d.isoformat() for d in days],
                rows_written=rows,
                code_version=version,
                upstream=upstream,
                column_lineage=columns,
            )
            for entry, rows, upstream, columns in outputs
        ],
        registered,
    )
    inputs = {
        path: DatasetInfo(
            path,
            lake.config.landing_uri(dataset.domain) if path.startswith("landing/") else lake.uri(path),
            version=json.dumps(upstream_version) if isinstance(upstream_version, dict) else upstream_version,
        )
        for _, _, upstream, _ in outputs
        for path, upstream_version in upstream
    }
    written = [
        DatasetInfo(
            entry.path,
            entry.location,
            [(f.name, f.type, f.description) for f in entry.fields],
            owner=entry.owner,
            version=entry.delta_version,
            row_count=rows,
            column_lineage=columns,
            schema_version=entry.schema_version,
        )
        for entry, rows, _, columns in outputs
        if not entry.path.startswith("landing/")
    ]
    return list(inputs.values()), written
