"""OpenLineage run events for dataset materializations: the one place that builds and emits them.

Every asset step reports START, then COMPLETE or FAIL, as an OpenLineage run whose inputs and outputs
are Delta tables, with the standard dataset facets (schema, data source, ownership, column lineage,
Delta version, data-quality metrics and assertions). Events go through the standard
`openlineage-python` client so that any consumer (Marquez, a file, Kafka, ...) is a matter of the
client's own configuration, not of code here:

- `OPENLINEAGE_URL`, `OPENLINEAGE_CONFIG`, an `openlineage.yml` the client finds (working directory or
  `~/.openlineage/`) or `OPENLINEAGE__TRANSPORT__...` variables: the client's transport is used as is;
  `OPENLINEAGE_DISABLED=true` turns emission off.
- otherwise: JSON lines appended to `<LAKEHOUSE_STATE_DIR or .lakehouse>/openlineage/events.jsonl`,
  so lineage is never silently printed or lost on a developer machine.

| variable | default | meaning |
|---|---|---|
| OPENLINEAGE_NAMESPACE | lakehouse | the job namespace |
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    InputDatasetFacet,
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_dataset,
    dataset_version_dataset,
    datasource_dataset,
    error_message_run,
    ownership_dataset,
    schema_dataset,
    tags_dataset,
)
from openlineage.client.transport.file import FileConfig, FileTransport

from lakehouse.config import default_state_dir

EventType = Literal["START", "COMPLETE", "FAIL"]
DEFAULT_JOB_NAMESPACE = "lakehouse"
# Fixed namespace for uuid5: the same (Dagster run, step) always maps to the same OpenLineage run.
_RUN_ID_NAMESPACE = uuid.UUID("6f1c2a0e-4b7d-5c59-9a57-0e6b1d3f8c21")


@dataclass(frozen=True)
class DatasetInfo:
    """What lineage needs to know about one Delta table read or written by a step.

    name: the table path relative to the lake root, e.g. "processed/events/events" (the dataset name);
    uri: the table's full location (s3://bucket/... or a local path), which gives the dataset namespace;
    fields: (column, type, description or None) in table order;
    owner: e.g. "team:data-platform"; version: the Delta table version read or written;
    schema_version: the schema registry's version of an output (`lakehouse.schemas`);
    column_lineage: output column -> [(input dataset name, input column)], for outputs;
    quality: {"columnMetrics": {column: {"nullCount": ..}}, "assertions": [{"assertion": "not_null",
    "success": True, "column": ..}]}; assertions are an input facet in the spec, so they are emitted
    only where the table is an input (e.g. of the check's step).
    """

    name: str
    uri: str
    fields: Sequence[tuple[str, str, str | None]] = ()
    owner: str | None = None
    version: int | str | None = None
    row_count: int | None = None
    column_lineage: Mapping[str, Sequence[tuple[str, str]]] = field(default_factory=dict)
    quality: Mapping[str, Any] | None = None
    schema_version: int | None = None  # the schema registry's version written (a `schemaVersion` tag)


def dataset_namespace(uri: str) -> str:
    """The OpenLineage dataset namespace of a table: scheme + bucket ("s3://lakehouse"), or "file"."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # a local path (or a drive letter)
        return "file"
    return f"{parsed.scheme}://{parsed.netloc}"


def openlineage_run_id(dagster_run_id: str, job_name: str) -> str:
    """One OpenLineage run per asset step: a deterministic UUID (v5) of (Dagster run id, step name),
    so START and COMPLETE/FAIL agree without shared state, across processes."""
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, f"{dagster_run_id}/{job_name}"))


def default_log_path() -> Path:
    """Where events go when the client has no transport configured."""
    return default_state_dir() / "openlineage" / "events.jsonl"


def make_client() -> OpenLineageClient:
    """The client as its own configuration sets it up, else one appending to `default_log_path()`.

    Built with the file transport first so that the client never falls back to printing events to the
    console; its resolved configuration (yaml, OPENLINEAGE__ variables) then decides.
    """
    path = default_log_path()
    client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(path), append=True)))
    if os.environ.get("OPENLINEAGE_URL") or (client.config.transport or {}).get("type"):
        return OpenLineageClient()
    if isinstance(client.transport, FileTransport):  # not disabled by OPENLINEAGE_DISABLED
        path.parent.mkdir(parents=True, exist_ok=True)
    return client


def emit_run_event(
    event_type: EventType,
    run_id: str,
    job_name: str,
    inputs: Sequence[DatasetInfo],
    outputs: Sequence[DatasetInfo],
    namespace: str | None = None,
    error: str | None = None,
    event_time: dt.datetime | None = None,
    *,
    client: OpenLineageClient | None = None,
) -> RunEvent:
    """Build and emit one run event for the step `job_name` of the Dagster run `run_id`; return it.

    The OpenLineage run id is `openlineage_run_id(run_id, job_name)`; the job namespace is `namespace`,
    else OPENLINEAGE_NAMESPACE, else "lakehouse". A FAIL event carries `error` as its errorMessage.
    """
    if event_type not in ("START", "COMPLETE", "FAIL"):
        raise ValueError(f"unsupported event type {event_type!r}; expected START, COMPLETE or FAIL")
    when = event_time or dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        raise ValueError("event_time must be timezone-aware")
    run_facets: dict[str, Any] = {}
    if event_type == "FAIL":
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=error or "unknown error", programmingLanguage="python"
        )
    namespaces = {info.name: dataset_namespace(info.uri) for info in inputs}
    event = RunEvent(
        eventType=RunState(event_type),
        eventTime=when.isoformat(),
        run=Run(runId=openlineage_run_id(run_id, job_name), facets=run_facets),
        job=Job(
            namespace=namespace or os.environ.get("OPENLINEAGE_NAMESPACE") or DEFAULT_JOB_NAMESPACE,
            name=job_name,
        ),
        inputs=[
            InputDataset(
                namespace=dataset_namespace(i.uri),
                name=i.name,
                facets=_dataset_facets(i),
                inputFacets=_input_facets(i),
            )
            for i in inputs
        ],
        outputs=[
            OutputDataset(
                namespace=dataset_namespace(o.uri), name=o.name, facets=_dataset_facets(o, namespaces)
            )
            for o in outputs
        ],
    )
    (client or make_client()).emit(event)
    return event


def _dataset_facets(
    info: DatasetInfo,
    input_namespaces: Mapping[str, str] | None = None,
) -> dict[str, DatasetFacet]:
    namespace = dataset_namespace(info.uri)
    facets: dict[str, DatasetFacet] = {
        "dataSource": datasource_dataset.DatasourceDatasetFacet(name=namespace, uri=_as_uri(info.uri))
    }
    if info.fields:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(
                    name=name, type=type_, description=description, ordinal_position=position, fields=None
                )
                for position, (name, type_, description) in enumerate(info.fields, start=1)
            ]
        )
    if info.owner:
        facets["ownership"] = ownership_dataset.OwnershipDatasetFacet(
            owners=[ownership_dataset.Owner(name=info.owner, type="MAINTAINER")]
        )
    if info.version is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=str(info.version)
        )
    if info.schema_version is not None:
        facets["tags"] = tags_dataset.TagsDatasetFacet(
            tags=[
                tags_dataset.TagsDatasetFacetFields(
                    key="schemaVersion", value=str(info.schema_version), source="lakehouse"
                )
            ]
        )
    column_metrics = dict((info.quality or {}).get("columnMetrics") or {})
    if info.row_count is not None or column_metrics:
        facets["dataQualityMetrics"] = data_quality_metrics_dataset.DataQualityMetricsDatasetFacet(
            rowCount=info.row_count,
            columnMetrics={
                column: data_quality_metrics_dataset.ColumnMetrics(**{"quantiles": None, **metrics})
                for column, metrics in column_metrics.items()
            },
        )
    if input_namespaces is not None and info.column_lineage:
        facets["columnLineage"] = _column_lineage(info, input_namespaces)
    return facets


def _column_lineage(
    info: DatasetInfo,
    input_namespaces: Mapping[str, str],
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """Output column -> the input columns it is computed from; inputs must be among the step's inputs."""
    fields = {}
    for column, sources in info.column_lineage.items():
        unknown = sorted({name for name, _ in sources} - set(input_namespaces))
        if unknown:
            raise ValueError(
                f"column lineage of {info.name}.{column} names datasets that are not inputs: {unknown}"
            )
        fields[column] = column_lineage_dataset.Fields(
            inputFields=[
                column_lineage_dataset.InputField(
                    namespace=input_namespaces[name], name=name, field=input_column, transformations=None
                )
                for name, input_column in sources
            ]
        )
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields)


def _input_facets(info: DatasetInfo) -> dict[str, InputDatasetFacet]:
    assertions = (info.quality or {}).get("assertions") or []
    if not assertions:
        return {}
    return {
        "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
            assertions=[
                data_quality_assertions_dataset.Assertion(**{"params": None, **a}) for a in assertions
            ]
        )
    }


def _as_uri(location: str) -> str:
    """A URI for the data source facet: local paths become file:// URIs."""
    return (
        location
        if dataset_namespace(location) != "file" or location.startswith("file:")
        else Path(location).resolve().as_uri()
    )
