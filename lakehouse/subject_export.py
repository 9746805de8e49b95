"""Subject data export (data portability): every row about one subject, in every layer and the feature store,
as a machine-readable archive.

The rows are found exactly as erasure finds them (`erasure.locate`, `erasure.subject_rows`,
`erasure.subject_lines`): tables by the subject column (value or token), raw and quarantine records by the
declared JSON paths, landing lines by the same paths, and the online feature store by the entity's key.
Offline feature snapshots are copies of curated tables, which are exported themselves.

The archive, under `LAKEHOUSE_EXPORT_ROOT` (default `<lake root>/exports`, so it has the lake's storage and
access rules; a local folder works too), at `<root>/<column>/<token prefix>/<time>-<run>/`:
- `<dataset id>.jsonl`: one JSON object per row (landing: file, line number, line), values as JSON or text;
- `feature_store.online.jsonl`: the subject's online feature records;
- `manifest.json`: subject column and token (never the value), time, run, and per dataset its kind, rows,
  Delta version read and file.
The archive holds the subject's own data, value included (it is for them); the audit trail and logs hold the
token only.

Requests. Dagster keeps run config forever, so the job is given the id of a request,
`<root>/audit/export_requests/<id>.json`, the one place that holds the value (restricted); once the export is
written the value is dropped from it, keeping column, token, status and archive.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any

from lakehouse import audit, erasure, storage
from lakehouse.config import LakehouseConfig
from lakehouse.maintenance import TableMaintenance

ARCHIVE_ROOT_ENV = "LAKEHOUSE_EXPORT_ROOT"


def export_root(config: LakehouseConfig) -> str:
    return os.environ.get(ARCHIVE_ROOT_ENV, f"{config.root}/exports").rstrip("/")


@dataclass(frozen=True)
class Exported:
    dataset_id: str
    kind: str  # column | records | landing | online
    rows: int
    version: int | None  # Delta version read (tables)
    file: str  # in the archive
    partitions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Archive:
    uri: str
    subject_column: str
    subject_token: str
    datasets: tuple[Exported, ...]

    @property
    def rows(self) -> int:
        return sum(d.rows for d in self.datasets)


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, default=str, sort_keys=True) + "\n" for row in rows)


def _online_records(config: LakehouseConfig, subject: erasure.Subject) -> list[dict[str, Any]]:
    """The subject's online feature records (value or token as the entity key); none without a feature store
    or an entity keyed by the column."""
    from lakehouse import features

    entity = features.entity_for(subject.column)
    store = features.feature_store(config)
    if entity is None or entity not in {e.name for e in store.list_entities()}:
        return []
    refs = [
        f"{view.name}:{f.name}"
        for view in store.list_feature_views()
        if entity in view.entities
        for f in view.features
    ]
    return features.feature_records(config, refs, [{subject.column: key} for key in subject.targets])


def export(
    config: LakehouseConfig, column: str, value: str, run_id: str, include_feature_store: bool = True
) -> Archive:
    """Write the subject's archive and audit it (token only); returns where it is and what it holds."""
    request = erasure.new_request(config, column, value)  # checks the value and the column, gives the token
    subject = erasure.Subject(column, request.subject_value or "", request.subject_token)
    stamp = dt.datetime.now(dt.UTC)
    uri = (
        f"{export_root(config)}/{column}/{subject.token[:16]}/"
        f"{stamp.strftime('%Y%m%dT%H%M%SZ')}-{re.sub(r'[^A-Za-z0-9-]', '', run_id)[:36]}"
    )
    exported = []
    version: int | None
    for place in erasure.locate(config, column):
        if place.kind == "staging":
            continue  # staging folders hold killed runs' leftovers, not data about anyone
        if place.kind == "landing":
            version, rows = None, erasure.subject_lines(config, place, subject)
            days = sorted({r["file"].rsplit("/dt=", 1)[-1].split("/")[0] for r in rows})
        else:
            if not TableMaintenance(place.location, config.storage_options).exists():
                continue
            version, rows = erasure.subject_rows(config, place, subject)
            days = sorted({str(r["dt"]) for r in rows if r.get("dt") is not None})
        name = f"{place.target}.jsonl"
        storage.write_text(config, f"{uri}/{name}", _jsonl(rows))
        exported.append(Exported(place.target, place.kind, len(rows), version, name, tuple(days)))
    if include_feature_store:
        online = _online_records(config, subject)
        storage.write_text(config, f"{uri}/feature_store.online.jsonl", _jsonl(online))
        exported.append(
            Exported("feature_store.online", "online", len(online), None, "feature_store.online.jsonl")
        )
    archive = Archive(uri, column, subject.token, tuple(exported))
    manifest = {
        "subject_column": column,
        "subject_token": subject.token,
        "created_at": stamp.isoformat(),
        "run_id": run_id,
        "rows": archive.rows,
        "datasets": [dataclasses.asdict(d) for d in exported],
    }
    storage.write_text(config, f"{uri}/manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    audit.write(
        config,
        run_id,
        [
            *(
                audit.Record(
                    "export",
                    "export",
                    d.dataset_id,
                    rows=d.rows,
                    partitions=d.partitions,
                    detail=f"{d.kind}; version {d.version}; {uri}/{d.file}",
                    subject_column=column,
                    subject_token=subject.token,
                )
                for d in exported
            ),
            audit.Record(
                "export",
                "summary",
                "*",
                rows=archive.rows,
                detail=f"archive {uri}; {len(exported)} datasets",
                subject_column=column,
                subject_token=subject.token,
            ),
        ],
    )
    return archive


# -- requests (for the Dagster job) -------------------------------------------------------------------------


def request_uri(config: LakehouseConfig, request_id: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{32}", request_id):
        raise erasure.ErasureError(f"not an export request id: {request_id!r}")
    return f"{config.root}/audit/export_requests/{request_id}.json"


def _save(config: LakehouseConfig, request_id: str, body: dict[str, Any]) -> None:
    uri = request_uri(config, request_id)
    storage.write_text(config, uri, json.dumps(body, indent=2))
    if not config.is_s3:
        os.chmod(uri, 0o600)


def file_request(config: LakehouseConfig, column: str, value: str) -> str:
    """Save a request (the only record of the value) for `export_job`; returns its id."""
    request = erasure.new_request(config, column, value)
    request_id = uuid.uuid4().hex
    _save(
        config,
        request_id,
        {
            "subject_column": column,
            "subject_token": request.subject_token,
            "subject_value": request.subject_value,
            "status": "pending",
            "created_at": request.created_at,
        },
    )
    return request_id


def export_request(config: LakehouseConfig, request_id: str, run_id: str) -> Archive:
    """Carry out a filed request; the value is then dropped from it."""
    try:
        body = json.loads(storage.read_text(config, request_uri(config, request_id)))
    except FileNotFoundError:
        raise erasure.ErasureError(f"no export request {request_id}") from None
    if body.get("subject_value") is None:
        raise erasure.ErasureError(f"export request {request_id} is {body.get('status')}: its value is gone")
    archive = export(config, body["subject_column"], body["subject_value"], run_id)
    _save(
        config,
        request_id,
        {**body, "subject_value": None, "status": "done", "run_id": run_id, "archive": archive.uri},
    )
    return archive
