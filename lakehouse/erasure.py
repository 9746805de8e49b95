"""Erasure (right to be forgotten): remove one subject from every table, landing file and store.

The catalog says where to look: every dataset that declares the subject column (processed,
curated and their quarantine tables), and, through lineage, the raw tables and landing sources
upstream of them, which keep records as received. A table that has the column matches the
value or its token (personal data is tokenized with the lake's key); a table of records as
received (`line`, `record`) matches the value or token as a JSON string. After deleting, the
affected tables are vacuumed with no retention so earlier versions cannot return the rows, and a
scan verifies that nothing is left. Every step is audited with the subject's token, never the
subject itself. Re-running is safe: it finds nothing more to delete and verifies again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from deltalake import DeltaTable, QueryBuilder

from lakehouse import audit, catalog, delta, landing, storage
from lakehouse.config import LakehouseConfig
from lakehouse.maintenance import TableMaintenance

PAYLOAD_COLUMNS = ("line", "record")  # records kept as received: raw lines, quarantined rows
MIN_SUBJECT_LENGTH = 4


class ErasureError(ValueError):
    pass


def subject_token(value: str, key: str) -> str:
    """The token `transforms.common.tokenize` gives the value: sha2-256 of `key|value`, hex."""
    return hashlib.sha256(f"{key}|{value}".encode()).hexdigest()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Place:
    """Where the subject may be: a table (by its column or its payload) or a landing source."""

    target: str  # catalog dataset id
    location: str
    kind: str  # column | payload | landing
    column: str

    def delete_predicate(self, value: str, token: str) -> str:
        if self.kind == "column":
            return f"`{self.column}` IN ({_literal(value)}, {_literal(token)})"
        return " OR ".join(f"strpos(`{self.column}`, {_literal(chr(34) + v + chr(34))}) > 0" for v in (value, token))

    def verify_predicate(self, value: str, token: str) -> str:
        """Broader than the delete: any mention at all, so a form the delete missed fails verification."""
        if self.kind == "column":
            return self.delete_predicate(value, token)
        return " OR ".join(f"strpos(`{self.column}`, {_literal(v)}) > 0" for v in (value, token))


@dataclass(frozen=True)
class Subject:
    column: str
    value: str
    token: str


def subject_columns(config: LakehouseConfig) -> list[str]:
    return sorted({c for e in catalog.list_entries(config) for c in e["subjectColumns"] or ()})


def locate(config: LakehouseConfig, column: str) -> list[Place]:
    """Every place the catalog says a subject of `column` can be; refuses an unknown column."""
    entries = {e["datasetId"]: e for e in catalog.list_entries(config)}
    declaring = [i for i, e in entries.items() if column in (e["subjectColumns"] or ())]
    if not declaring:
        known = ", ".join(subject_columns(config)) or "none"
        raise ErasureError(f"no catalogued dataset names {column!r} as a subject column (subject columns: {known})")
    ids = set(declaring)
    for dataset in declaring:
        ids |= {s["datasetId"] for s in catalog.lineage(config, dataset, "upstream")
                if s["datasetId"].split(".")[0] in ("raw", "landing")}
    places = []
    for target in sorted(ids):
        entry = entries.get(target)
        if entry is None:
            continue
        fields = {f["name"] for f in entry["schema"]["fields"]}
        if entry["layer"] == "landing":
            places.append(Place(target, entry["location"], "landing", "line"))
        elif column in fields:
            places.append(Place(target, entry["location"], "column", column))
        elif payload := next((c for c in PAYLOAD_COLUMNS if c in fields), None):
            places.append(Place(target, entry["location"], "payload", payload))
    return places


def _count(config: LakehouseConfig, place: Place, predicate: str) -> int:
    if not DeltaTable.is_deltatable(place.location, storage_options=config.storage_options):
        return 0
    table = DeltaTable(place.location, storage_options=config.storage_options)
    result = QueryBuilder().register("t", table).execute(f"SELECT count(*) AS n FROM t WHERE {predicate}").read_all()
    return int(result.column("n")[0].as_py())


def _erase_table(config: LakehouseConfig, place: Place, subject: Subject) -> audit.Record:
    if not DeltaTable.is_deltatable(place.location, storage_options=config.storage_options):
        return audit.Record("erasure", "delete", place.target, detail="no table")
    deleted = delta.delete_rows(place.location, place.delete_predicate(subject.value, subject.token),
                                config.storage_options)
    # No retention: the versions before the delete must not be able to return the subject's rows.
    table = TableMaintenance(place.location, config.storage_options)
    table.vacuum(retention_hours=0, dry_run=False)
    remaining = _count(config, place, place.verify_predicate(subject.value, subject.token))
    active = {f"{place.location}/{path}" for path in table.active_files()}
    left_behind = [uri for uri in storage.list_tree(config, place.location)
                   if "/_delta_log/" not in uri and uri not in active]
    return audit.Record("erasure", "delete", place.target, rows=deleted.rows_deleted, files=deleted.files_removed,
                        verified=remaining == 0 and not left_behind,
                        detail=f"by {place.kind} {place.column}; {remaining} matching rows and "
                               f"{len(left_behind)} data files of earlier versions left")


def _erase_landing(config: LakehouseConfig, place: Place, subject: Subject) -> audit.Record:
    """Rewrite the source's landing files without the subject's lines."""
    _, domain, source = place.target.split(".")
    quoted = [f'"{subject.value}"', f'"{subject.token}"']
    lines_removed, files_rewritten, still_there = 0, 0, 0
    for uri in sorted(landing.source_files(config, domain, source)):
        text = storage.read_text(config, uri)
        if subject.value not in text and subject.token not in text:
            continue
        lines = text.splitlines(keepends=True)
        kept = [line for line in lines if not any(q in line for q in quoted)]
        if len(kept) != len(lines):
            storage.write_text(config, uri, "".join(kept))
            lines_removed, files_rewritten = lines_removed + len(lines) - len(kept), files_rewritten + 1
        still_there += sum(subject.value in line or subject.token in line for line in kept)
    return audit.Record("erasure", "landing", place.target, rows=lines_removed, files=files_rewritten,
                        verified=still_there == 0, detail=f"{still_there} lines still mention the subject")


# Extra stores to erase from (e.g. the feature store's online store): (subject, config) -> audit record or None.
OnlineEraser = Callable[[LakehouseConfig, Subject], "audit.Record | None"]


def feature_store_eraser(config: LakehouseConfig, subject: Subject) -> audit.Record | None:
    """The subject's entity out of the online store and the offline snapshots (after the tables)."""
    from lakehouse import features

    done = features.erase_subject_online(config, subject.column, [subject.value, subject.token])
    if done is None:
        return None
    return audit.Record("erasure", "delete", f"online.{done.entity}", rows=done.removed, verified=done.remaining == 0,
                        detail=f"feature views {', '.join(done.views)}; {done.remaining} keys left")


STORES: tuple[OnlineEraser, ...] = (feature_store_eraser,)


def erase(config: LakehouseConfig, column: str, value: str, run_id: str,
          stores: Sequence[OnlineEraser] = STORES) -> list[audit.Record]:
    """Erase the subject everywhere and verify; every step is audited. Raises if anything is left."""
    value = value.strip()
    if len(value) < MIN_SUBJECT_LENGTH:
        raise ErasureError(f"subject value {value!r} is too short to match safely (at least {MIN_SUBJECT_LENGTH} characters)")
    places = locate(config, column)
    subject = Subject(column, value, subject_token(value, config.token_key()))
    records = [_erase_landing(config, p, subject) if p.kind == "landing" else _erase_table(config, p, subject)
               for p in places]
    records += [record for store in stores if (record := store(config, subject)) is not None]
    records = [audit.Record(**{**r.__dict__, "subject_column": column, "subject_token": subject.token})
               for r in records]
    failed = [r.target for r in records if r.verified is False]
    records.append(audit.Record(
        "erasure", "verify", "*", rows=sum(r.rows for r in records), files=sum(r.files for r in records),
        subject_column=column, subject_token=subject.token, verified=not failed,
        detail=f"{len(places)} places searched; not verified: {', '.join(failed) or 'none'}"))
    audit.write(config, run_id, records)
    catalog.refresh_stats(config, [r.target for r in records if r.step == "delete" and r.rows])
    if failed:
        raise ErasureError(f"the subject is still found in: {', '.join(failed)} (see the audit table)")
    return records
