"""The schema registry: every dataset's schema versions, and the compatibility rule a new one must meet.

Versions live in the catalog (`<root>/catalog/schema_versions`, written by `lakehouse.catalog`): a version is
the dataset's fields with their types and whether they are required, the code version that introduced it and
the first and last partition written with it. A write whose fields differ from the latest version is first
checked against the dataset's compatibility mode (refused before anything is written, naming the fields and
the mode) and, once written, recorded as the next version. A schema identical to the latest one reuses it;
a dataset's first registered write is version 1 (nothing to check against).

The modes mean what Confluent Schema Registry gives them, checked against the latest version:
- `backward`: a reader of the new schema reads data written with the previous one: fields may be removed,
  added fields must be optional, a type may only widen (int -> bigint, float -> double, ...);
- `forward`: a reader of the previous schema reads data written with the new one: fields may be added,
  removed fields must have been optional, a type may only narrow;
- `full`: both; `none`: anything goes.
In a Delta table every column is nullable, so a field is optional unless the declaration requires it: `dt`
and the primary key are required (rows without them are refused by the quality gate). A reader needs its
required fields present and required in what it reads; fields it does not know are ignored.
The physical rules of the Delta writer (`schema_policy`) still apply after this logical check.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from pyspark.sql import types as T

from lakehouse import catalog
from lakehouse.config import LakehouseConfig
from lakehouse.delta import PARTITION_COLUMN, SchemaChangeError

if TYPE_CHECKING:
    from lakehouse.datasets import Dataset


class Compatibility(str, Enum):
    BACKWARD = "backward"
    FORWARD = "forward"
    FULL = "full"
    NONE = "none"


# type -> the types its values can be read as (Avro's promotions, with Spark's type names)
WIDENS_TO = {
    "tinyint": {"smallint", "int", "bigint", "float", "double"},
    "smallint": {"int", "bigint", "float", "double"},
    "int": {"bigint", "float", "double"},
    "bigint": {"float", "double"},
    "float": {"double"},
    "string": {"binary"},
    "binary": {"string"},
}


class SchemaCompatibilityError(SchemaChangeError):
    """A change the dataset's compatibility mode refuses: nothing was written."""


@dataclass(frozen=True)
class SchemaField:
    name: str
    type: str  # Spark's simpleString
    required: bool = False

    @property
    def kind(self) -> str:
        return f"{self.type}{' required' if self.required else ''}"


@dataclass(frozen=True)
class Version:
    dataset_id: str
    version: int
    fields: tuple[SchemaField, ...]
    code_version: str
    compatibility: str
    first_partition: str | None
    last_partition: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class Diff:
    added: tuple[SchemaField, ...] = ()
    removed: tuple[SchemaField, ...] = ()
    changed: tuple[tuple[SchemaField, SchemaField], ...] = ()  # (old, new): type or required changed

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self) -> str:
        """One line: `+name type`, `-name type`, `~name old -> new`."""
        parts = (
            [f"+{f.name} {f.kind}" for f in self.added]
            + [f"-{f.name} {f.kind}" for f in self.removed]
            + [f"~{old.name} {old.kind} -> {new.kind}" for old, new in self.changed]
        )
        return ", ".join(parts) or "no change"


@dataclass(frozen=True)
class Change:
    """What writing `fields` would do to a dataset's registered schema."""

    dataset_id: str
    compatibility: Compatibility
    current: Version | None
    diff: Diff
    problems: tuple[str, ...]

    @property
    def verdict(self) -> str:
        if self.current is None:
            return "new: version 1"
        if not self.diff:
            return f"unchanged: version {self.current.version}"
        if self.problems:
            return f"refused ({self.compatibility.value}): " + "; ".join(self.problems)
        return f"compatible ({self.compatibility.value}): version {self.current.version + 1}"


def required_fields(dataset: Dataset) -> set[str]:
    return {PARTITION_COLUMN, *dataset.primary_key}


def fields_of(dataset: Dataset, columns: Iterable[tuple[str, str]]) -> tuple[SchemaField, ...]:
    """(name, type) pairs as the registry's fields of `dataset` (required as it declares)."""
    required = required_fields(dataset)
    return tuple(SchemaField(name, type_, name in required) for name, type_ in columns)


def struct_fields(dataset: Dataset, schema: T.StructType) -> tuple[SchemaField, ...]:
    return fields_of(dataset, [(f.name, f.dataType.simpleString()) for f in schema.fields])


def diff(old: Sequence[SchemaField], new: Sequence[SchemaField]) -> Diff:
    before, after = {f.name: f for f in old}, {f.name: f for f in new}
    return Diff(
        added=tuple(f for f in new if f.name not in before),
        removed=tuple(f for f in old if f.name not in after),
        changed=tuple((before[f.name], f) for f in new if f.name in before and before[f.name] != f),
    )


def _unreadable(reader: Sequence[SchemaField], writer: Sequence[SchemaField]) -> list[str]:
    """Why a reader of `reader` cannot read data written with `writer` (empty: it can)."""
    written = {f.name: f for f in writer}
    missing = [f.name for f in reader if f.required and f.name not in written]
    optional = [f.name for f in reader if f.required and f.name in written and not written[f.name].required]
    types = [
        f"{f.name} ({written[f.name].type} -> {f.type})"
        for f in reader
        if f.name in written
        and written[f.name].type != f.type
        and f.type not in WIDENS_TO.get(written[f.name].type, ())
    ]
    found = [
        ("required field(s) missing from the other schema", missing),
        ("required field(s) optional in the other schema", optional),
        ("type(s) that cannot be read", types),
    ]
    return [f"{what}: {', '.join(names)}" for what, names in found if names]


def problems(mode: Compatibility, old: Sequence[SchemaField], new: Sequence[SchemaField]) -> tuple[str, ...]:
    """What `mode` refuses in going from `old` to `new` (empty: allowed)."""
    found = []
    if mode in (Compatibility.BACKWARD, Compatibility.FULL):
        found += [f"new schema cannot read old data: {p}" for p in _unreadable(new, old)]
    if mode in (Compatibility.FORWARD, Compatibility.FULL):
        found += [f"old schema cannot read new data: {p}" for p in _unreadable(old, new)]
    return tuple(found)


def _version(row: Mapping) -> Version:
    return Version(
        dataset_id=row["dataset_id"],
        version=row["version"],
        fields=tuple(SchemaField(**f) for f in json.loads(row["fields_json"])),
        code_version=row["code_version"],
        compatibility=row["compatibility"],
        first_partition=row["first_partition"],
        last_partition=row["last_partition"],
        created_at=row["created_at"],
    )


def history(config: LakehouseConfig, dataset_id: str) -> list[Version]:
    """The dataset's versions, oldest first."""
    versions = (_version(row) for row in catalog.schema_versions(config, dataset_id))
    return sorted(versions, key=lambda v: v.version)


def change(config: LakehouseConfig, dataset: Dataset, fields: Sequence[SchemaField]) -> Change:
    """What writing `fields` would change (against the latest registered version)."""
    versions = history(config, catalog.dataset_id(dataset.path))
    current = versions[-1] if versions else None
    found = diff(current.fields, fields) if current else Diff()
    return Change(
        catalog.dataset_id(dataset.path),
        dataset.compatibility,
        current,
        found,
        problems(dataset.compatibility, current.fields, fields) if current and found else (),
    )


def require_compatible(config: LakehouseConfig, dataset: Dataset, schema: T.StructType) -> Change:
    """Refuse, before any write, a schema the dataset's compatibility mode does not allow."""
    found = change(config, dataset, struct_fields(dataset, schema))
    if found.problems:
        assert found.current is not None  # only a change from a registered version has problems
        fields = sorted(
            {f.name for f in (*found.diff.added, *found.diff.removed)}
            | {old.name for old, _ in found.diff.changed}
        )
        raise SchemaCompatibilityError(
            f"{dataset.path}: schema change of field(s) {', '.join(fields)} refused by compatibility mode "
            f"{dataset.compatibility.value} (against version {found.current.version}): "
            f"{'; '.join(found.problems)}. Nothing was written."
        )
    return found


def written_version(
    config: LakehouseConfig,
    dataset: Dataset,
    fields: Sequence[SchemaField],
    code_version: str,
    partitions: Sequence[str],
) -> dict[str, Any]:
    """The registry row of a write of `fields` to `partitions`: the latest version if it has these fields,
    else a new one (`catalog.record_schema_version` upserts it)."""
    versions = history(config, catalog.dataset_id(dataset.path))
    current = versions[-1] if versions else None
    if current is None:
        number = 1
    else:
        number = current.version if not diff(current.fields, fields) else current.version + 1
    return {
        "dataset_id": catalog.dataset_id(dataset.path),
        "version": number,
        "fields_json": json.dumps([f.__dict__ for f in fields]),
        "code_version": code_version,
        "compatibility": dataset.compatibility.value,
        "first_partition": min(partitions) if partitions else None,
        "last_partition": max(partitions) if partitions else None,
    }
