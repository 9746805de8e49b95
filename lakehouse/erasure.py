"""Erasure (right to be forgotten): remove one subject from every table, landing file and store.

Requests. An erasure carries out a request record, `<root>/audit/erasure_requests/<id>.json`: the one
place that holds the subject's value in clear (restricted). `file_request` writes it; `execute_request`
carries it out and, once verified, drops the clear value from it, keeping column, token and status. A job
is given the request id, so run storage, logs and metadata only ever see the id and the token.

Places, found through the catalog:
- tables with the subject column (processed, curated, training sets): rows whose column holds the value
  or its token;
- raw tables and landing sources, which keep lines as received and declare where each subject is in a
  line (`Dataset.subject_paths`, e.g. `$.userId`): a line goes only when a declared path holds exactly
  the value or its token;
- quarantine tables, whose `record` is the refused row as JSON: a record goes when its subject column
  holds the value or token (`$.user_id`), or when a declared path of the raw lines it was parsed from holds
  it inside the line it carries (`$.line.userId`; the quarantine of a raw table, holding lines that are
  not text, declares those paths itself);
- the staging and review folders of the domains erased from (`_staging/<domain>/`: raw lines left by
  killed runs; `_review/<domain>/`: what a failed quality gate refused to publish);
- the feature store (online keys and offline snapshots), after the tables it is rebuilt from.
A text that is not JSON (a malformed or truncated line) cannot be walked: it matches when the last key of a
declared path is followed by exactly the value or token as a JSON string (`"userId": "<value>"`), so a
truncated id, which could be anyone's prefix, matches nobody. Reading is prefiltered by substring (the
value, its JSON-escaped form or the token), then every candidate is parsed; DataFusion (delta-rs) has no
JSON functions.

Safety. Every place is planned first: that is what a dry run reports (rows, files, partitions), and a plan
removing more than `BRAKE_SHARE` of a table's rows (beyond `BRAKE_MIN_ROWS`) is refused unless forced (a
dry run is not refused: it flags such places).
Each place is audited as soon as it is done, so a failure half-way leaves the record of what was removed
and running the request again finishes the rest. Deleted rows are vacuumed with no retention (earlier
versions must not return them); then a scan verifies that no record left holds the value or token as a JSON
value anywhere (any key, any depth, inside JSON text too: a form the delete missed) and that no data file
of an earlier version is left.

Erasure must not run concurrently with the runs of the domains it erases from: it removes their staging
folders, and a run writing meanwhile could put back rows it read before the delete.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from deltalake import DeltaTable

from lakehouse import audit, catalog, delta, landing, storage
from lakehouse.config import LakehouseConfig
from lakehouse.maintenance import TableMaintenance

MIN_SUBJECT_LENGTH = 4
BRAKE_SHARE = 0.01  # one subject is a small part of any table: more than this looks like a wrong value
BRAKE_MIN_ROWS = 10  # small tables: up to this many rows are allowed whatever their share


class ErasureError(ValueError):
    """A refused or failed erasure. Messages never hold the subject's value."""


def subject_token(value: str, key: str) -> str:
    """The token `transforms.common.tokenize` gives the value: sha2-256 of `key|value`, hex."""
    return hashlib.sha256(f"{key}|{value}".encode()).hexdigest()


@dataclass(frozen=True)
class Subject:
    column: str
    value: str
    token: str

    @property
    def targets(self) -> tuple[str, str]:
        return self.value, self.token

    @property
    def needles(self) -> tuple[str, ...]:
        """Substrings a record holding the subject must contain: the prefilter of every scan."""
        return tuple(dict.fromkeys((self.value, json.dumps(self.value)[1:-1], self.token)))


# -- matching records as received ----------------------------------------------------------------------


def _is_target(node: Any, targets: Collection[str]) -> bool:
    if isinstance(node, bool):
        return False
    return isinstance(node, str) and node in targets or isinstance(node, int) and str(node) in targets


def _json_strings(targets: Collection[str]) -> str:
    return "|".join(re.escape(json.dumps(t)) for t in targets)


def _holds(node: Any, keys: Sequence[str], targets: Collection[str]) -> bool:
    for key in keys:
        if isinstance(node, str):  # JSON text (a line, or a line carried in a record): walk into it
            try:
                node = json.loads(node)
            except ValueError:
                key_then_value = rf'"{re.escape(keys[-1])}"\s*:\s*(?:{_json_strings(targets)})'
                return re.search(key_then_value, node) is not None
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return _is_target(node, targets)


def holds(text: str, paths: Sequence[str], targets: Collection[str]) -> bool:
    """Whether one of the JSON paths (`$.a.b`) holds exactly one of `targets` in `text`; a path steps
    into JSON text held as a string (`$.line.userId`). Text that is not JSON: see the module's rule."""
    return any(_holds(text, path[2:].split("."), targets) for path in paths)


def mentions(node: Any, targets: Collection[str], path: str = "$") -> list[str]:
    """Every JSON path at which one of `targets` is a whole value (any key, any depth, JSON text held as a
    string included); in text that is not JSON, a target as a JSON string after a colon. Verification."""
    if isinstance(node, dict):
        return [m for k, v in node.items() for m in mentions(v, targets, f"{path}.{k}")]
    if isinstance(node, list):
        return [m for i, v in enumerate(node) for m in mentions(v, targets, f"{path}[{i}]")]
    if _is_target(node, targets):
        return [path]
    if not isinstance(node, str):
        return []
    if node.lstrip().startswith(("{", "[")):
        try:
            return mentions(json.loads(node), targets, path)
        except ValueError:
            pass
    return [f"{path} (not JSON)"] if re.search(rf":\s*(?:{_json_strings(targets)})", node) else []


# -- places ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where the subject may be: a table by its column, a table of records as received (`line`, `record`)
    by JSON paths, a landing source by JSON paths, or a domain's staging folder."""

    target: str  # catalog dataset id, or staging.<domain>
    location: str
    kind: str  # column | records | landing | staging
    column: str = ""  # the subject column, or the column holding the records
    paths: tuple[str, ...] = ()


def subject_columns(config: LakehouseConfig) -> list[str]:
    return sorted({c for e in catalog.list_entries(config) for c in e["subjectColumns"] or ()})


def _raw_inputs(
    config: LakehouseConfig, entries: dict, dataset: str, column: str
) -> tuple[list[str], list[str]]:
    """The raw tables `dataset` is read from directly, and the paths they declare for `column`."""
    raw = [
        s["datasetId"]
        for s in catalog.lineage(config, dataset, "upstream")
        if s["via"] == dataset and s["datasetId"].startswith("raw.")
    ]
    return raw, [p for r in raw for p in (entries.get(r, {}).get("subjectPaths") or {}).get(column, ())]


def locate(config: LakehouseConfig, column: str) -> list[Place]:
    """Every place the catalog says a subject of `column` can be; refuses an unknown column."""
    entries = {e["datasetId"]: e for e in catalog.list_entries(config)}
    declaring = sorted(i for i, e in entries.items() if column in (e["subjectColumns"] or ()))
    if not declaring:
        known = ", ".join(subject_columns(config)) or "none"
        raise ErasureError(
            f"no catalogued dataset names {column!r} as a subject column (subject columns: {known})"
        )
    places, unmapped = [], []
    for target in declaring:
        entry = entries[target]
        fields = {f["name"] for f in entry["schema"]["fields"]}
        declared = tuple((entry.get("subjectPaths") or {}).get(column, ()))
        if entry["layer"] in ("processed", "quarantine"):
            raw, carried = _raw_inputs(config, entries, target, column)
            if raw and not carried and entry["layer"] == "processed":
                unmapped.append(f"{target} (from {', '.join(raw)})")
        if entry["layer"] == "landing":
            places.append(Place(target, entry["location"], "landing", "line", declared))
        elif entry["layer"] == "quarantine" and "record" in fields:
            paths = (f"$.{column}", *dict.fromkeys([*(f"$.line{p[1:]}" for p in carried), *declared]))
            places.append(Place(target, entry["location"], "records", "record", paths))
        elif column in fields:  # a resident dataset: every region's table
            places += [Place(at, uri, "column", column) for at, uri in catalog.located(entry)]
        elif declared and "line" in fields:
            places.append(Place(target, entry["location"], "records", "line", declared))
    if unmapped:  # the raw lines would keep the subject while verification passes: refuse instead
        raise ErasureError(
            f"the raw inputs of {'; '.join(unmapped)} declare no subject paths for "
            f"{column!r} in the catalog: declare subject_paths and re-materialize them "
            "(entries catalogued before subject paths existed have none)"
        )
    for domain in sorted({entries[path]["domain"] for path in declaring}):
        places.append(Place(f"staging.{domain}", f"{config.root}/_staging/{domain}", "staging"))
        places.append(Place(f"review.{domain}", f"{config.root}/_review/{domain}", "staging"))
    return places


# -- planning (what a dry run reports and the brake judges) ---------------------------------------------


@dataclass(frozen=True)
class Plan:
    place: Place
    rows: int  # rows, lines or (staging) files to remove
    files: int  # data or landing files holding them
    total: int  # rows (lines) of the table or source: the brake's base
    partitions: tuple[str, ...] = ()
    records: frozenset[str] = frozenset()  # records-as-received to delete, by their exact text
    bytes: int = 0

    def over_brake(self) -> bool:
        return self.place.kind != "staging" and self.rows > max(BRAKE_MIN_ROWS, int(BRAKE_SHARE * self.total))


@dataclass(frozen=True)
class _Scan:
    rows: int
    files: int
    partitions: tuple[str, ...]
    records: frozenset[str]


def _matches(
    dataset: pds.Dataset, place: Place, keep: Callable[[str], bool] | None, subject: Subject
) -> Iterator[tuple[pds.Fragment, list[int], list[str]]]:
    """The data files of a table holding the subject: each file, the positions of its rows that hold it and
    their values of the place's column. By column value, or by substring then `keep`."""
    for fragment in dataset.get_fragments():
        # as large_string: files may hold string_view, which pyarrow's filter kernels lack
        column = fragment.to_table(columns=[place.column]).column(0).cast(pa.large_string())
        mask = (
            pc.is_in(column, pa.array(subject.targets, pa.large_string()))
            if place.kind == "column"
            else functools.reduce(pc.or_, [pc.match_substring(column, n) for n in subject.needles])
        )
        nonzero = pc.indices_nonzero(mask)
        positions, values = nonzero.to_pylist(), column.take(nonzero).to_pylist()
        if keep is not None:
            kept = [(p, v) for p, v in zip(positions, values) if keep(v)]
            positions, values = [p for p, _ in kept], [v for _, v in kept]
        if values:
            yield fragment, positions, values


def _scan_table(
    config: LakehouseConfig, place: Place, keep: Callable[[str], bool] | None, subject: Subject
) -> _Scan:
    """Rows of a table holding the subject, file by file: by column value, or by substring then `keep`."""
    dataset = DeltaTable(place.location, storage_options=config.storage_options).to_pyarrow_dataset()
    rows, files, days, records = 0, 0, set(), set()
    for fragment, _, values in _matches(dataset, place, keep, subject):
        if keep is not None:
            records.update(values)
        rows, files = rows + len(values), files + 1
        days.add(str(pds.get_partition_keys(fragment.partition_expression).get("dt")))
    return _Scan(rows, files, tuple(sorted(days)), frozenset(records))


def subject_rows(config: LakehouseConfig, place: Place, subject: Subject) -> tuple[int, list[dict[str, Any]]]:
    """The rows of a table place that hold the subject (what `plan` counts and erasure deletes), read at the
    table's current version, which is returned with them (subject export)."""
    table = DeltaTable(place.location, storage_options=config.storage_options)
    dataset = table.to_pyarrow_dataset()
    keep = None if place.kind == "column" else _matcher(place, subject)
    rows = [
        row
        for fragment, positions, _ in _matches(dataset, place, keep, subject)
        for row in fragment.to_table(schema=dataset.schema).take(pa.array(positions, pa.int64())).to_pylist()
    ]
    return table.version(), rows


def subject_lines(config: LakehouseConfig, place: Place, subject: Subject) -> list[dict[str, Any]]:
    """The lines of a landing place that hold the subject (what erasure removes): file, line number, text."""
    found, _ = _landing_lines(config, place, subject, _matcher(place, subject))
    return [
        {"file": uri, "line_number": index + 1, "line": lines[index].rstrip(b"\r").decode(errors="replace")}
        for uri, (lines, chosen) in sorted(found.items())
        for index in sorted(chosen)
    ]


def _matcher(place: Place, subject: Subject) -> Callable[[str], bool]:
    return lambda text: holds(text, place.paths, subject.targets)


def _landing_lines(
    config: LakehouseConfig, place: Place, subject: Subject, keep: Callable[[str], bool]
) -> tuple[dict[str, tuple[list[bytes], set[int]]], int]:
    """Landing file -> (its lines, the indexes of lines `keep` selects), for files that have any, and the
    source's line count. Bytes in, bytes out: a file that is not UTF-8 keeps every other byte as it was."""
    _, domain, source = place.target.split(".")
    needles = [n.encode() for n in subject.needles]
    found, total = {}, 0
    for uri in sorted(landing.source_files(config, domain, source)):
        content = storage.read_bytes(config, uri)
        total += content.count(b"\n")
        if not any(n in content for n in needles):
            continue
        lines = content.split(b"\n")
        chosen = {
            i
            for i, line in enumerate(lines)
            if any(n in line for n in needles) and keep(line.rstrip(b"\r").decode(errors="replace"))
        }
        if chosen:
            found[uri] = (lines, chosen)
    return found, total


def plan(config: LakehouseConfig, place: Place, subject: Subject) -> Plan:
    if place.kind == "staging":
        tree = {
            uri: size
            for uri, size in storage.list_tree(config, place.location).items()
            if not uri.endswith("/")
        }  # folder markers are not files
        return Plan(place, rows=0, files=len(tree), total=0, bytes=sum(tree.values()))
    if place.kind == "landing":
        found, total = _landing_lines(config, place, subject, _matcher(place, subject))
        days = {uri.rsplit("/dt=", 1)[-1].split("/")[0] for uri in found}
        return Plan(
            place,
            rows=sum(len(c) for _, c in found.values()),
            files=len(found),
            total=total,
            partitions=tuple(sorted(days)),
        )
    table = TableMaintenance(place.location, config.storage_options)
    if not table.exists():
        return Plan(place, rows=0, files=0, total=0)
    scan = _scan_table(config, place, None if place.kind == "column" else _matcher(place, subject), subject)
    return Plan(
        place,
        rows=scan.rows,
        files=scan.files,
        total=table.stats().row_count,
        partitions=scan.partitions,
        records=scan.records,
    )


# -- doing ------------------------------------------------------------------------------------------------


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _erase_table(config: LakehouseConfig, planned: Plan, subject: Subject) -> audit.Record:
    place = planned.place
    if planned.rows:
        predicate = (
            f"`{place.column}` IN ({_literal(subject.value)}, {_literal(subject.token)})"
            if place.kind == "column"
            else f"dt IN ({', '.join(map(_literal, planned.partitions))}) AND "
            f"`{place.column}` IN ({', '.join(map(_literal, sorted(planned.records)))})"
        )
        deleted = delta.delete_rows(place.location, predicate, config.storage_options)
        rows, files = deleted.rows_deleted, deleted.files_removed
        # No retention: the versions before the delete must not be able to return the subject's rows.
        TableMaintenance(place.location, config.storage_options).vacuum(retention_hours=0, dry_run=False)
    else:
        rows = files = 0
    table = TableMaintenance(place.location, config.storage_options)
    if not table.exists():
        return _record(place, "delete", detail="no table", verified=True)
    keep = None if place.kind == "column" else (lambda text: bool(mentions(text, subject.targets)))
    still = _scan_table(config, place, keep, subject)
    active = {f"{place.location}/{path}" for path in table.active_files()}
    left_behind = [
        uri
        for uri in storage.list_tree(config, place.location)
        if "/_delta_log/" not in uri and uri not in active
    ]
    return _record(
        place,
        "delete",
        rows,
        files,
        planned.partitions,
        verified=still.rows == 0 and not left_behind,
        detail=f"by {place.kind} {place.column}{_paths(place)}; {still.rows} records still hold "
        f"the subject{_where(still.records, subject)}, {len(left_behind)} data files of "
        "earlier versions left",
    )


def _erase_landing(config: LakehouseConfig, planned: Plan, subject: Subject) -> audit.Record:
    """Rewrite the source's landing files without the subject's lines."""
    place = planned.place
    found, _ = _landing_lines(config, place, subject, _matcher(place, subject))
    for uri, (lines, chosen) in found.items():
        storage.write_bytes(config, uri, b"\n".join(line for i, line in enumerate(lines) if i not in chosen))
    still, _ = _landing_lines(config, place, subject, lambda text: bool(mentions(text, subject.targets)))
    remaining = sum(len(chosen) for _, chosen in still.values())
    texts = [lines[i].decode(errors="replace") for lines, chosen in still.values() for i in chosen]
    return _record(
        place,
        "landing",
        sum(len(c) for _, c in found.values()),
        len(found),
        planned.partitions,
        verified=remaining == 0,
        detail=f"by{_paths(place)}; {remaining} lines still hold the subject{_where(texts, subject)}",
    )


def _erase_staging(config: LakehouseConfig, planned: Plan, subject: Subject) -> audit.Record:
    """Staging folders exist only while a run is going: whatever is left is a killed run's, unprotected;
    review folders hold what a failed gate refused to publish, unprotected too. Both go whole."""
    storage.delete_dir(config, planned.place.location)
    left = len(storage.list_tree(config, planned.place.location))
    return _record(
        planned.place,
        "staging",
        0,
        planned.files,
        bytes_=planned.bytes,
        verified=left == 0,
        detail=f"files of killed runs' staging or of refused publications under review removed; {left} left",
    )


def _where(texts: Collection[str], subject: Subject) -> str:
    """Where records still hold the value or token (e.g. an undeclared path): what the operator needs."""
    found = sorted({re.sub(r"\[\d+\]", "[*]", m) for text in texts for m in mentions(text, subject.targets)})
    return f" (at {', '.join(found[:5])})" if found else ""


def _paths(place: Place) -> str:
    return f" at {', '.join(place.paths)}" if place.paths else ""


def _record(
    place: Place,
    step: str,
    rows: int = 0,
    files: int = 0,
    partitions: Sequence[str] = (),
    verified: bool | None = None,
    detail: str = "",
    bytes_: int = 0,
) -> audit.Record:
    return audit.Record(
        "erasure",
        step,
        place.target,
        rows=rows,
        files=files,
        bytes=bytes_,
        partitions=tuple(partitions),
        verified=verified,
        detail=detail,
    )


ERASERS = {
    "column": _erase_table,
    "records": _erase_table,
    "landing": _erase_landing,
    "staging": _erase_staging,
}


# Stores to erase from after the tables (the feature store): (config, subject, dry_run) -> record or None.
Store = Callable[[LakehouseConfig, Subject, bool], "audit.Record | None"]


def feature_store_eraser(config: LakehouseConfig, subject: Subject, dry_run: bool) -> audit.Record | None:
    """The subject's entity out of the online store and the offline snapshots (after the tables)."""
    from lakehouse import features

    done = features.erase_subject_online(config, subject.column, subject.targets, dry_run=dry_run)
    if done is None:
        return None
    return audit.Record(
        "erasure",
        "delete",
        f"online.{done.entity}",
        rows=done.removed,
        dry_run=dry_run,
        verified=None if dry_run else done.remaining == 0,
        detail=f"feature views {', '.join(done.views)}; {done.remaining} keys left",
    )


STORES: tuple[Store, ...] = (feature_store_eraser,)


# -- requests ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    request_id: str
    subject_column: str
    subject_token: str
    subject_value: str | None  # None once the erasure is done
    status: str  # pending | done
    created_at: str
    completed_at: str | None = None
    run_id: str | None = None


def request_uri(config: LakehouseConfig, request_id: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{32}", request_id):
        raise ErasureError(f"not an erasure request id: {request_id!r}")
    return f"{config.root}/audit/erasure_requests/{request_id}.json"


def _save(config: LakehouseConfig, request: Request) -> None:
    uri = request_uri(config, request.request_id)
    storage.write_text(config, uri, json.dumps(dataclasses.asdict(request), indent=2))
    if not config.is_s3:
        os.chmod(uri, 0o600)


def new_request(config: LakehouseConfig, column: str, value: str) -> Request:
    """A request checked against the catalog, not yet saved (a direct dry run saves nothing)."""
    value = value.strip()
    if len(value) < MIN_SUBJECT_LENGTH:
        raise ErasureError(
            f"the subject value is too short to match safely (at least {MIN_SUBJECT_LENGTH} characters)"
        )
    locate(config, column)  # refuses an unknown column now rather than in the job
    return Request(
        uuid.uuid4().hex,
        column,
        subject_token(value, config.token_key()),
        value,
        "pending",
        dt.datetime.now(dt.UTC).isoformat(),
    )


def file_request(config: LakehouseConfig, column: str, value: str) -> Request:
    """Save a request (the only record of the clear value) for `execute_request` or `erasure_job`."""
    request = new_request(config, column, value)
    _save(config, request)
    return request


def load_request(config: LakehouseConfig, request_id: str) -> Request:
    uri = request_uri(config, request_id)
    try:
        return Request(**json.loads(storage.read_text(config, uri)))
    except FileNotFoundError:
        raise ErasureError(f"no erasure request {request_id}") from None


def execute_request(
    config: LakehouseConfig,
    request_id: str,
    run_id: str,
    dry_run: bool = False,
    force: bool = False,
    stores: Sequence[Store] = STORES,
) -> list[audit.Record]:
    return execute(config, load_request(config, request_id), run_id, dry_run, force, stores)


def erase(
    config: LakehouseConfig,
    column: str,
    value: str,
    run_id: str,
    dry_run: bool = False,
    force: bool = False,
    stores: Sequence[Store] = STORES,
) -> list[audit.Record]:
    """File a request and carry it out at once. It is saved just before the first change, so that a
    failure leaves it for a re-run; a dry run or a refusal keeps nothing."""
    request = new_request(config, column, value)
    return execute(config, request, run_id, dry_run, force, stores, save_first=True)


def _brake_message(refused: Sequence[Plan]) -> str:
    tables = "; ".join(
        f"{p.place.target}: {p.rows} of {p.total} rows ({p.rows / max(p.total, 1):.1%})" for p in refused
    )
    return (
        f"refused: the erasure would remove more than {BRAKE_SHARE:.0%} of a table (and more than "
        f"{BRAKE_MIN_ROWS} rows): {tables}. Check the subject column and value; force to go on."
    )


def execute(
    config: LakehouseConfig,
    request: Request,
    run_id: str,
    dry_run: bool = False,
    force: bool = False,
    stores: Sequence[Store] = STORES,
    save_first: bool = False,
) -> list[audit.Record]:
    """Plan every place, apply the brake, then erase place by place, auditing each as it is done, and verify.
    Returns the audit records (a dry run's: what would be removed, nothing changed). Raises if anything is
    left, or when refused."""
    if request.subject_value is None:
        raise ErasureError(
            f"erasure request {request.request_id} is {request.status}: its value is no longer kept"
        )
    subject = Subject(request.subject_column, request.subject_value, request.subject_token)
    tagged = functools.partial(
        dataclasses.replace, subject_column=subject.column, subject_token=subject.token, dry_run=dry_run
    )
    plans = [plan(config, place, subject) for place in locate(config, subject.column)]
    refused = [p for p in plans if p.over_brake()]
    if refused and not force and not dry_run:
        raise ErasureError(_brake_message(refused))
    if save_first and not dry_run:
        _save(config, request)
    records = []
    for planned in plans:
        if dry_run:
            step = "delete" if planned.place.kind in ("column", "records") else planned.place.kind
            brake = "; over the brake" if planned.over_brake() else ""
            record = _record(
                planned.place,
                step,
                planned.rows,
                planned.files,
                planned.partitions,
                bytes_=planned.bytes,
                detail=f"dry run: would remove {planned.rows} of {planned.total}{brake}",
            )
        else:
            record = ERASERS[planned.place.kind](config, planned, subject)
        records.append(tagged(record))
        audit.write(config, run_id, records[-1:])  # as it is done: a failure later keeps this record
    for store in stores:
        if (removed := store(config, subject, dry_run)) is not None:
            records.append(tagged(removed))
            audit.write(config, run_id, records[-1:])
    failed = [r for r in records if r.verified is False]
    summary = tagged(
        audit.Record(
            "erasure",
            "verify",
            "*",
            rows=sum(r.rows for r in records),
            files=sum(r.files for r in records),
            verified=None if dry_run else not failed,
            detail=f"request {request.request_id}; {len(plans)} places searched; "
            f"not verified: {', '.join(r.target for r in failed) or 'none'}; over the brake: "
            f"{', '.join(p.place.target for p in refused) or 'none'}"
            f"{' (forced)' if refused and force else ''}",
        )
    )
    records.append(summary)
    audit.write(config, run_id, [summary])
    if dry_run:
        return records
    # every table place, so that a re-run after a failure also corrects the counts of the first run
    catalog.refresh_stats(config, [r.target for r in records if r.step == "delete"])
    if failed:
        where = "; ".join(f"{r.target} ({r.detail})" for r in failed)
        raise ErasureError(f"the subject is still found in: {where}")
    _save(
        config,
        dataclasses.replace(
            request,
            subject_value=None,
            status="done",
            run_id=run_id,
            completed_at=dt.datetime.now(dt.UTC).isoformat(),
        ),
    )
    return records
