"""The declaration of a dataset: what a data engineer writes to add one to the lake.

Everything else follows from it: the Dagster asset, the Delta table at
`<root>/<layer>/<domain>/<name>`, its quarantine table, the protection of its
personal data, its residency rule and the metadata shown in the UI.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from pyspark.sql import DataFrame

from lakehouse.delta import SchemaPolicy
from lakehouse.privacy import PrivacyDeclaration
from lakehouse.schemas import Compatibility

LAYERS = ("raw", "processed", "curated")
QUARANTINE_REASON = "quarantine_reason"  # the first rule a row breaks (null: accepted)
QUARANTINE_REASONS = "quarantine_reasons"  # every rule it breaks, in the rules' order
ENVELOPE_VERSION = "version"  # the column of a landing envelope's version ("1.0"), see `envelope_versions`
JSON_PATH = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_]*)+$")  # $.key.key...: what erasure can follow in a line


class TableRule(Protocol):
    """A rule over the rows a step wrote (built with `quality.rules`' constructors, judged by its gate)."""

    @property
    def name(self) -> str: ...


class Classification(str, Enum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"


class Protection(str, Enum):
    TOKENIZE = "tokenize"  # keyed deterministic hash: joins still work
    MASK = "mask"  # partly hidden, for display; not joinable


@dataclass(frozen=True)
class Dataset:
    """A daily-partitioned Delta table.

    Raw datasets name the `landing` source whose files they ingest (file names
    `<landing>-NNNNN.<ext>` under `landing/<domain>/dt=YYYY-MM-DD/`). Other
    datasets name a `transform` that receives the upstream tables' rows for the
    partitions being built (one upstream: as its argument; several: as keyword
    arguments named after the upstream datasets), and returns the rows to write with a DATE column `dt`. When
    `quarantine` is set the transform may add a `quarantine_reason` column: rows
    with a reason go to `quarantine/<domain>/<name>` instead, and columns whose
    names start with `_` are carried into the quarantine record only.
    """

    name: str
    domain: str
    layer: str
    description: str
    owner: str
    transform: Callable[..., DataFrame] | None = None
    upstream: tuple[str, ...] = ()  # "layer/domain/name"
    landing: str | None = None
    landing_format: str = "jsonl"
    primary_key: tuple[str, ...] = ()
    deduplicate_on: tuple[str, ...] = ()  # keep the first row per key and partition (by source line)
    schema_policy: SchemaPolicy = SchemaPolicy.STRICT
    compatibility: Compatibility = Compatibility.BACKWARD  # what a schema change may do (`lakehouse.schemas`)
    # major versions of the landing envelope's version (column ENVELOPE_VERSION) the transform parses; rows of
    # another major version are quarantined as `unknown_version:<version>` (empty: not versioned)
    envelope_versions: tuple[str, ...] = ()
    quarantine: bool = False
    columns: dict[str, str] = field(default_factory=dict)  # column -> description
    # column -> upstream columns ("column" or "upstream_name.column") it is computed from; undeclared
    # columns take the upstream columns of the same name, and values parsed from raw lines the line
    column_lineage: dict[str, tuple[str, ...]] = field(default_factory=dict)
    classification: dict[str, Classification] = field(default_factory=dict)  # unlisted columns: internal
    personal_data: dict[str, Protection] = field(default_factory=dict)
    subject_columns: tuple[str, ...] = ()  # who a row is about, for erasure
    # raw datasets: subject column -> JSON paths in the landing line that hold that subject's id (e.g.
    # {"user_id": ("$.userId", "$.data.payload.userId")}); erasure removes a line only when one of them
    # holds exactly the id or its token
    subject_paths: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tenant_column: str | None = None
    region_column: str | None = None
    allowed_regions: tuple[str, ...] = ()  # empty: any region
    # each region's rows live under that region's storage root (LAKEHOUSE_REGION_ROOTS), by region_column;
    # readers outside the region get only its non-personal columns (`lakehouse.residency`)
    resident: bool = False
    # a dataset without residency reading resident upstream datasets (a cross-region aggregate): upstream
    # path -> the non-personal columns it uses (`lakehouse.residency.check_crossings`)
    cross_region_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    retention_days: int = 365
    partitioning: str = "daily"
    # table rules (quality.rules) over what a step writes, besides those the declaration implies (keys
    # present and unique, regions allowed, tenant and region complete); a rule of a derived name replaces it
    checks: tuple[TableRule, ...] = ()
    # a differentially private release: its rows are the transform's exact tallies with noise added by
    # `lakehouse.privacy` (clipping bounds, epsilon, delta, threshold declared here), built by its own asset
    privacy: PrivacyDeclaration | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.layer not in LAYERS:
            problems.append(f"layer must be one of {LAYERS}")
        if self.partitioning != "daily":
            problems.append("only daily partitioning (by dt) is supported")
        if self.layer == "raw" and not self.landing:
            problems.append("a raw dataset names the landing source it ingests")
        if self.layer != "raw" and self.transform is None:
            problems.append("a processed or curated dataset needs a transform")
        if self.layer != "raw" and not self.upstream:
            problems.append("a processed or curated dataset needs upstream datasets")
        if self.subject_paths and self.layer != "raw":
            problems.append("subject_paths locate subjects in raw lines: only raw datasets declare them")
        bad_paths = [p for paths in self.subject_paths.values() for p in paths if not JSON_PATH.match(p)]
        if bad_paths:
            problems.append(f"subject paths must look like $.key or $.key.key: {bad_paths}")
        if self.envelope_versions and not self.quarantine:
            problems.append("envelope_versions quarantine rows of other versions: declare quarantine=True")
        if self.checks and self.layer == "raw":
            problems.append("raw datasets keep every line as received: they declare no checks")
        if self.allowed_regions and not self.region_column:
            problems.append("allowed_regions needs a region_column")
        if self.privacy and (self.layer != "curated" or self.personal_data or self.subject_columns):
            problems.append("a private release is a curated dataset without personal data or subjects")
        stray = sorted(set(self.cross_region_columns) - set(self.upstream))
        if stray:
            problems.append(f"cross_region_columns name datasets that are not upstream: {stray}")
        masked = [c for c in self.deduplicate_on if self.personal_data.get(c) == Protection.MASK]
        if masked:
            problems.append(
                f"a masked value no longer tells rows apart: de-duplicate on no masked column {masked}"
            )
        if self.resident and not (self.region_column and self.allowed_regions):
            problems.append("a resident dataset declares its region_column and allowed_regions")
        if problems:
            raise ValueError(f"dataset {self.path}: " + "; ".join(problems))

    @property
    def path(self) -> str:
        return f"{self.layer}/{self.domain}/{self.name}"

    @property
    def landing_source(self) -> str:
        """The landing source of a raw dataset (its declaration must name one)."""
        if self.landing is None:
            raise ValueError(f"{self.path} is not a raw dataset: it ingests no landing source")
        return self.landing

    @property
    def quarantine_path(self) -> str:
        """Raw datasets' quarantine holds the landing lines and files that are not text (named after the
        landing source, as processed datasets often share their raw dataset's name)."""
        if self.layer == "raw":
            return f"quarantine/{self.domain}/landing_{self.landing}"
        return f"quarantine/{self.domain}/{self.name}"

    @property
    def subjects(self) -> tuple[str, ...]:
        """Subject columns of the rows, or (raw) of the declared paths in the lines."""
        return tuple(dict.fromkeys((*self.subject_columns, *self.subject_paths)))

    @property
    def has_quarantine(self) -> bool:
        return self.layer == "raw" or self.quarantine or bool(self.allowed_regions)

    @property
    def key_path(self) -> list[str]:
        return [self.layer, self.domain, self.name]

    def classification_of(self, column: str) -> Classification:
        if column in self.personal_data:
            return self.classification.get(column, Classification.RESTRICTED)
        return self.classification.get(column, Classification.INTERNAL)
