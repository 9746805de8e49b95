"""The data-mesh catalog in the lake: the one module that writes (and reads) `<root>/catalog/`.

Three Delta tables, each upserted by key so that re-running a partition updates
rather than duplicates:
- `catalog/datasets` (dataset_id): the AIC catalog entry (datasetId, domain, name,
  schema fields, owner, tags, location, createdAt, updatedAt) plus layer,
  classification, retention, regions, subject columns (and, for raw tables and landing
  sources, the JSON paths of each subject in the lines), latest partition, row count,
  last run and quality status;
- `catalog/lineage` (run_id, dataset_id): one materialization: the upstream
  datasets' Delta versions -> the output's version, partitions, code version, rows;
- `catalog/column_lineage` (dataset_id, column): which upstream columns feed each column;
- `catalog/schema_versions` (dataset_id, version): the schema registry's versions (`lakehouse.schemas`).
Writes go through delta-rs merges (small tables, no engine needed); a commit that
loses a race with another run's is retried.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from lakehouse import delta
from lakehouse.config import LakehouseConfig

DATASETS = pa.schema(
    [
        ("dataset_id", pa.string()),
        ("domain", pa.string()),
        ("name", pa.string()),
        ("layer", pa.string()),
        ("description", pa.string()),
        ("owner", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("location", pa.string()),
        ("schema_json", pa.string()),
        ("retention_days", pa.int64()),
        ("regions", pa.list_(pa.string())),
        ("subject_columns", pa.list_(pa.string())),
        ("tenant_column", pa.string()),
        ("region_column", pa.string()),
        ("latest_partition", pa.string()),
        ("row_count", pa.int64()),
        ("delta_version", pa.int64()),
        ("last_run_id", pa.string()),
        ("quality_status", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("updated_at", pa.timestamp("us", tz="UTC")),
        ("subject_paths_json", pa.string()),
        ("schema_version", pa.int64()),
        ("privacy_json", pa.string()),  # a differentially private release's declared privacy
        ("locations_json", pa.string()),  # resident datasets: [{region, uri}] of their regional tables
    ]
)
LINEAGE = pa.schema(
    [
        ("run_id", pa.string()),
        ("dataset_id", pa.string()),
        ("dataset_version", pa.int64()),
        ("partitions", pa.list_(pa.string())),
        ("upstream_json", pa.string()),
        ("code_version", pa.string()),
        ("row_count", pa.int64()),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
        ("schema_version", pa.int64()),
    ]
)
COLUMN_LINEAGE = pa.schema(
    [
        ("dataset_id", pa.string()),
        ("column", pa.string()),
        ("upstream_json", pa.string()),
        ("updated_at", pa.timestamp("us", tz="UTC")),
    ]
)
SCHEMA_VERSIONS = pa.schema(
    [
        ("dataset_id", pa.string()),
        ("version", pa.int64()),
        ("fields_json", pa.string()),
        ("code_version", pa.string()),
        ("compatibility", pa.string()),
        ("first_partition", pa.string()),
        ("last_partition", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("updated_at", pa.timestamp("us", tz="UTC")),
    ]
)
KEYS = {
    "datasets": ("dataset_id",),
    "lineage": ("run_id", "dataset_id"),
    "column_lineage": ("dataset_id", "column"),
    "schema_versions": ("dataset_id", "version"),
}
SCHEMAS = {
    "datasets": DATASETS,
    "lineage": LINEAGE,
    "column_lineage": COLUMN_LINEAGE,
    "schema_versions": SCHEMA_VERSIONS,
}


def dataset_id(path: str) -> str:
    """`layer/domain/name` -> `layer.domain.name`: the catalog's stable identifier."""
    return path.replace("/", ".")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    description: str | None = None
    classification: str | None = None


@dataclass(frozen=True)
class Entry:
    """What one materialization says about one dataset."""

    path: str  # layer/domain/name
    owner: str
    description: str
    location: str
    fields: Sequence[Field]
    tags: Sequence[str] = ()
    retention_days: int | None = None
    regions: Sequence[str] = ()
    subject_columns: Sequence[str] = ()
    # raw tables and landing sources: subject column -> JSON paths in a line
    subject_paths: Mapping[str, Sequence[str]] = field(default_factory=dict)
    tenant_column: str | None = None
    region_column: str | None = None
    latest_partition: str | None = None
    row_count: int | None = None
    delta_version: int | None = None
    quality_status: str = "unknown"
    schema_version: int | None = None  # the schema registry's version of what was written
    privacy_json: str | None = None  # declared privacy of a differentially private release (epsilon, ...)
    locations: Mapping[str, str] = field(default_factory=dict)  # resident datasets: region -> table URI


@dataclass(frozen=True)
class Materialization:
    run_id: str
    entry: Entry
    partitions: Sequence[str]
    rows_written: int
    code_version: str
    # (path, Delta version, or a resident dataset's version per region)
    upstream: Sequence[tuple[str, int | Mapping[str, int] | None]] = ()
    column_lineage: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # column -> (path, column)


def _uri(config: LakehouseConfig, table: str) -> str:
    return f"{config.root}/catalog/{table}"


def _upsert(
    config: LakehouseConfig,
    table: str,
    rows: list[dict[str, Any]],
    keep: Sequence[str] = (),
    combine: dict[str, str] | None = None,
    replace_within: str | None = None,
) -> dict[str, Any]:
    """Insert or update `rows` by the table's key (the last row per key wins); returns the merge's metrics
    (rows inserted, updated, deleted; files scanned and skipped).

    `keep`: columns never overwritten once set; `combine`: column -> SQL over t./s. for the updated
    value; `replace_within`: a key column whose values in `rows` own their target rows, so target rows
    with those values that `rows` no longer has are deleted.
    """
    if not rows:
        return {}
    schema, keys = SCHEMAS[table], KEYS[table]
    data = pa.Table.from_pylist(list({tuple(r[k] for k in keys): r for r in rows}.values()), schema=schema)
    updates = {f"`{c}`": f"s.`{c}`" for c in schema.names if c not in keep}
    updates.update({f"`{c}`": expression for c, expression in (combine or {}).items()})
    # The keys' values as literals too: delta-rs then skips, by their statistics, the files that cannot
    # match (without them a merge read every file, and grew slower with every commit).
    predicate = " AND ".join(
        f"t.`{k}` = s.`{k}` AND t.`{k}` IN ({_literals(data.column(k).to_pylist())})" for k in keys
    )
    attempt = 0
    while True:
        attempt += 1
        try:
            merge = (
                _created(config, table)
                .merge(data, predicate, source_alias="s", target_alias="t", merge_schema=True)
                .when_matched_update(updates)
                .when_not_matched_insert_all()
            )
            if replace_within:
                owned = _literals(data.column(replace_within).to_pylist())
                merge = merge.when_not_matched_by_source_delete(f"t.`{replace_within}` IN ({owned})")
            return merge.execute()
        except CommitFailedError:
            if attempt == 5:
                raise
            time.sleep(0.2 * attempt)


def _table(config: LakehouseConfig, table: str) -> DeltaTable | None:
    """The catalog table, or None when there is none yet."""
    return delta.existing(_uri(config, table), config.storage_options)


def _created(config: LakehouseConfig, table: str) -> DeltaTable:
    """The catalog table, created empty when there is none yet."""
    found = _table(config, table)
    if found is not None:
        return found
    uri = _uri(config, table)
    from lakehouse.maintenance import CHECKPOINT_EVERY  # it loads the engine: only when creating

    # delta-rs then checkpoints every CHECKPOINT_EVERY commits: a table loads in a few reads
    write_deltalake(
        uri,
        pa.Table.from_pylist([], SCHEMAS[table]),
        mode="append",
        configuration={"delta.checkpointInterval": str(CHECKPOINT_EVERY)},
        storage_options=config.storage_options,
    )
    return DeltaTable(uri, storage_options=config.storage_options)


def _literals(values: Sequence[Any]) -> str:
    """SQL literals of distinct key values (strings quoted, numbers as they are)."""
    return ", ".join(
        str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'" for v in sorted(set(values))
    )


def _extreme(column: str, beats: str) -> str:
    """SQL for a merge: the source's `column` when it `beats` (<, >) the target's, else the target's."""
    source, target = f"s.{column}", f"t.{column}"
    return f"CASE WHEN {target} IS NULL OR {source} {beats} {target} THEN {source} ELSE {target} END"


def record(
    config: LakehouseConfig,
    materializations: Sequence[Materialization],
    schema_version: dict[str, Any] | None = None,
) -> None:
    """Register each output and its lineage, and the schema version the step wrote
    (`schemas.written_version`); idempotent per (run, dataset)."""
    now = dt.datetime.now(dt.UTC)
    entries, lineage, columns = [], [], []
    for m in materializations:
        e = m.entry
        entries.append(
            {
                "dataset_id": dataset_id(e.path),
                "domain": e.path.split("/")[1],
                "name": e.path.split("/")[2],
                "layer": e.path.split("/")[0],
                "description": e.description,
                "owner": e.owner,
                "tags": list(e.tags),
                "location": e.location,
                "schema_json": json.dumps({"fields": [f.__dict__ for f in e.fields]}),
                "retention_days": e.retention_days,
                "regions": list(e.regions),
                "subject_columns": list(e.subject_columns),
                "tenant_column": e.tenant_column,
                "subject_paths_json": json.dumps({c: list(p) for c, p in e.subject_paths.items()}),
                "region_column": e.region_column,
                "latest_partition": e.latest_partition,
                "row_count": e.row_count,
                "delta_version": e.delta_version,
                "last_run_id": m.run_id,
                "quality_status": e.quality_status,
                "created_at": now,
                "updated_at": now,
                "schema_version": e.schema_version,
                "privacy_json": e.privacy_json,
                "locations_json": json.dumps(
                    [{"region": region, "uri": uri} for region, uri in sorted(e.locations.items())]
                ),
            }
        )
        lineage.append(
            {
                "run_id": m.run_id,
                "dataset_id": dataset_id(e.path),
                "dataset_version": e.delta_version,
                "partitions": list(m.partitions),
                "code_version": m.code_version,
                "row_count": m.rows_written,
                "upstream_json": json.dumps(
                    [{"dataset_id": dataset_id(p), "version": v} for p, v in m.upstream]
                ),
                "recorded_at": now,
                "schema_version": e.schema_version,
            }
        )
        columns += [
            {
                "dataset_id": dataset_id(e.path),
                "column": column,
                "updated_at": now,
                "upstream_json": json.dumps([{"dataset_id": dataset_id(p), "column": c} for p, c in sources]),
            }
            for column, sources in m.column_lineage.items()
        ]
    # Up to four tables, four commits at once: a merge mostly waits on S3 and on delta-rs, which releases
    # the GIL (measured: four merges 0.20 s one after another, 0.10 s at once).
    with ThreadPoolExecutor(max_workers=4) as pool:
        merges: list[Future[Any]] = [
            # A backfill of older partitions must not move the latest partition back.
            pool.submit(
                _upsert,
                config,
                "datasets",
                entries,
                keep=("created_at",),
                combine={"latest_partition": _extreme("latest_partition", ">")},
            ),
            pool.submit(_upsert, config, "lineage", lineage),
            pool.submit(_upsert, config, "column_lineage", columns, replace_within="dataset_id"),
        ]
        if schema_version is not None:
            merges.append(pool.submit(record_schema_version, config, schema_version))
        for merge in merges:
            merge.result()  # the first failure, raised here


def record_schema_version(config: LakehouseConfig, row: dict[str, Any]) -> None:
    """Upsert one schema version; its creation time, introducing code version and the mode it was admitted
    under stay, and its partition range only grows (a backfill of older days moves the first one back)."""
    now = dt.datetime.now(dt.UTC)
    _upsert(
        config,
        "schema_versions",
        [{**row, "created_at": now, "updated_at": now}],
        keep=("created_at", "code_version", "compatibility"),
        combine={
            "first_partition": _extreme("first_partition", "<"),
            "last_partition": _extreme("last_partition", ">"),
        },
    )


def schema_versions(config: LakehouseConfig, dataset: str) -> list[dict[str, Any]]:
    return [row for row in _rows(config, "schema_versions") if row["dataset_id"] == dataset]


def refresh_stats(config: LakehouseConfig, dataset_ids: Collection[str]) -> None:
    """Re-read row counts and versions from the tables' logs after rows were removed outside a
    materialization (retention, erasure); targets of `located` count as their dataset."""
    from lakehouse.maintenance import TableMaintenance

    now, rows = dt.datetime.now(dt.UTC), []
    dataset_ids = {_unlocated(target) for target in dataset_ids}
    for row in _rows(config, "datasets"):
        if row["dataset_id"] not in dataset_ids or row["layer"] == "landing":
            continue
        tables = [TableMaintenance(str(place["uri"]), config.storage_options) for place in locations(row)]
        tables = [table for table in tables if table.exists()]
        if tables:
            rows.append(
                {
                    "dataset_id": row["dataset_id"],
                    "row_count": sum(table.stats().row_count for table in tables),
                    "delta_version": max(table.version() for table in tables),
                    "updated_at": now,
                }
            )
    refreshed = ("row_count", "delta_version", "updated_at")
    _upsert(config, "datasets", rows, keep=[c for c in DATASETS.names if c not in refreshed])


def locations(row: Mapping[str, Any]) -> list[dict[str, str | None]]:
    """Where a catalog row's data lives: each regional table with its region (resident datasets), else the
    one location without a region."""
    regional = json.loads(row.get("locations_json") or "[]")
    return regional or [{"region": None, "uri": row["location"]}]


def located(entry: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(target, URI) of each table of a catalog entry (`list_entries`' shape): a resident dataset's regional
    tables as `<datasetId>@<region>`, any other's one location as its `datasetId` (what audits name)."""
    places = entry.get("locations") or [{"region": None, "uri": entry["location"]}]
    return [
        (f"{entry['datasetId']}@{place['region']}" if place["region"] else entry["datasetId"], place["uri"])
        for place in places
    ]


def _unlocated(target: str) -> str:
    """The dataset id of a target from `located`."""
    return target.split("@")[0]


def _rows(config: LakehouseConfig, table: str) -> list[dict[str, Any]]:
    found = _table(config, table)
    return [] if found is None else pa.table(found.to_pyarrow_table()).to_pylist()


def materializations(config: LakehouseConfig) -> list[dict[str, Any]]:
    """The lineage table's rows (one per run and dataset: version written, partitions, upstream), oldest
    first."""
    return sorted(_rows(config, "lineage"), key=lambda r: r["recorded_at"])


def _entry(row: dict[str, Any], columns: list[dict[str, Any]]) -> dict[str, Any]:
    """A catalog row in the AIC catalog shape (camelCase), with the lakehouse's extra fields."""
    schema = json.loads(row["schema_json"])
    lineage = {
        c["column"]: [
            {"datasetId": u["dataset_id"], "column": u["column"]} for u in json.loads(c["upstream_json"])
        ]
        for c in columns
        if c["dataset_id"] == row["dataset_id"]
    }
    return {
        "datasetId": row["dataset_id"],
        "domain": row["domain"],
        "name": row["name"],
        "layer": row["layer"],
        "description": row["description"],
        "schema": schema,
        "owner": row["owner"],
        "tags": row["tags"],
        "location": row["location"],
        "createdAt": row["created_at"].isoformat(),
        "updatedAt": row["updated_at"].isoformat(),
        "classification": {f["name"]: f.get("classification") for f in schema["fields"]},
        "retentionDays": row["retention_days"],
        "regions": row["regions"],
        "subjectColumns": row["subject_columns"],
        "subjectPaths": json.loads(row.get("subject_paths_json") or "{}"),
        "tenantColumn": row["tenant_column"],
        "regionColumn": row["region_column"],
        "latestPartition": row["latest_partition"],
        "rowCount": row["row_count"],
        "deltaVersion": row["delta_version"],
        "lastRunId": row["last_run_id"],
        "qualityStatus": row["quality_status"],
        "columnLineage": lineage,
        "schemaVersion": row.get("schema_version"),
        "privacy": json.loads(row.get("privacy_json") or "null"),  # epsilon, delta, threshold, clipping
        "locations": locations(row),
    }


def list_entries(
    config: LakehouseConfig,
    domain: str | None = None,
    tag: str | None = None,
    classification: str | None = None,
    text: str | None = None,
) -> list[dict[str, Any]]:
    """Catalog entries, filtered; `text` matches id, description, owner, tags and column names."""
    columns = _rows(config, "column_lineage")
    found = []
    for row in sorted(_rows(config, "datasets"), key=lambda r: r["dataset_id"]):
        entry = _entry(row, columns)
        if domain and entry["domain"] != domain:
            continue
        if tag and tag not in entry["tags"]:
            continue
        if classification and classification not in entry["classification"].values():
            continue
        if text:
            haystack = " ".join(
                [
                    entry["datasetId"],
                    entry["description"] or "",
                    entry["owner"],
                    *entry["tags"],
                    *(f["name"] for f in entry["schema"]["fields"]),
                ]
            ).lower()
            if text.lower() not in haystack:
                continue
        found.append(entry)
    return found


def get_entry(config: LakehouseConfig, dataset: str) -> dict[str, Any] | None:
    matches = [e for e in list_entries(config) if e["datasetId"] == dataset]
    return matches[0] if matches else None


def lineage(config: LakehouseConfig, dataset: str, direction: str = "upstream") -> list[dict[str, Any]]:
    """The chain of datasets feeding (upstream) or fed by (downstream) `dataset`, nearest first,
    from the latest materialization of each dataset."""
    if direction not in ("upstream", "downstream"):
        raise ValueError(f"direction must be upstream or downstream, not {direction!r}")
    latest: dict[str, dict[str, Any]] = {}
    for row in sorted(_rows(config, "lineage"), key=lambda r: r["recorded_at"]):
        latest[row["dataset_id"]] = row
    edges = [
        (up["dataset_id"], out, row) for out, row in latest.items() for up in json.loads(row["upstream_json"])
    ]
    seen, frontier, chain = {dataset}, [dataset], []
    while frontier:
        current, frontier = frontier, []
        for source, target, row in edges:
            node, other = (source, target) if direction == "upstream" else (target, source)
            if other in current and node not in seen:
                seen.add(node)
                frontier.append(node)
                chain.append(
                    {
                        "datasetId": node,
                        "via": other,
                        "runId": row["run_id"],
                        "codeVersion": row["code_version"],
                        "partitions": row["partitions"],
                        "schemaVersion": row.get("schema_version"),
                    }
                )
    return chain
