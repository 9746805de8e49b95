"""The declaration of a dataset: what a data engineer writes to add one to the lake."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import DataFrame

from lakehouse.delta import SchemaPolicy


@dataclass(frozen=True)
class Dataset:
    """A daily-partitioned Delta table at `<root>/<layer>/<domain>/<name>`.

    `transform` receives the upstream tables' rows for the partitions being built,
    as keyword arguments named after the upstream datasets, and returns the rows
    to write (with a DATE column `dt`).
    """

    name: str
    domain: str
    layer: str
    description: str
    owner: str
    transform: Callable[..., DataFrame] | None = None
    upstream: tuple[str, ...] = ()  # "layer/domain/name"
    primary_key: tuple[str, ...] = ()
    schema_policy: SchemaPolicy = SchemaPolicy.STRICT
    columns: dict[str, str] = field(default_factory=dict)  # column -> description

    @property
    def path(self) -> str:
        return f"{self.layer}/{self.domain}/{self.name}"

    @property
    def key_path(self) -> list[str]:
        return [self.layer, self.domain, self.name]


def split_path(path: str) -> tuple[str, str, str]:
    layer, domain, name = path.split("/")
    return layer, domain, name
