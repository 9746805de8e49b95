"""Data residency: which regions' roots hold a resident dataset's rows, and the refusals that keep personal
data inside its region (each refusal audited before it is raised).

Where a resident dataset lives is recorded in the lake root (`_lakehouse/residency/<path>.json`: its regions
and their table URIs) when it is first written, so that readers find its regional tables without probing
every region's root, and a plain table never depends on the regions' buckets being reachable."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, NoReturn

from lakehouse import audit, storage
from lakehouse.config import LakehouseConfig

if TYPE_CHECKING:
    from lakehouse.datasets import Dataset

# region -> Delta version of that region's table: what a read of a resident dataset was pinned to
RegionalVersions = dict[str, int]


class ResidencyError(PermissionError):
    """A read or write would move personal data out of its region; nothing was read or written."""


def _marker_uri(config: LakehouseConfig, path: str) -> str:
    return f"{config.root}/_lakehouse/residency/{path}.json"


def record_locations(config: LakehouseConfig, path: str, locations: dict[str, str]) -> None:
    """Record that the dataset at `path` keeps its rows in `locations` (region -> table URI)."""
    if recorded_locations(config, path) != locations:
        storage.write_text(
            config, _marker_uri(config, path), json.dumps({"locations": locations}, sort_keys=True)
        )


def recorded_locations(config: LakehouseConfig, path: str) -> dict[str, str]:
    """Region -> table URI of a resident dataset (empty: not resident in this lake)."""
    text = storage.read_text_if_exists(config, _marker_uri(config, path))
    return {} if text is None else dict(json.loads(text)["locations"])


def refuse(config: LakehouseConfig, run_id: str, target: str, detail: str) -> NoReturn:
    """Audit the refusal, then raise it."""
    audit.write(config, run_id, [audit.Record("residency", "refused", target, detail=detail)])
    raise ResidencyError(f"{target}: {detail}")


def check_crossing_columns(
    config: LakehouseConfig,
    run_id: str,
    target: str,
    columns: Sequence[str],
    personal_columns: Collection[str],
) -> None:
    """A reader outside the regions (a cross-region aggregate) may take only non-personal columns."""
    personal = [c for c in columns if c in personal_columns]
    if personal:
        refuse(
            config,
            run_id,
            target,
            f"reading personal column(s) {', '.join(personal)} across regions is refused: cross-region "
            "readers use only declared, non-personal columns",
        )


def check_crossings(datasets: Iterable[Dataset]) -> None:
    """Refuse declarations that would move personal data out of its region: a dataset without residency
    reading a resident dataset takes only the columns it declares for it (`cross_region_columns`), and none
    of them may be personal (protected or a subject). Run over every declaration, before any asset runs."""
    datasets = list(datasets)
    by_path = {d.path: d for d in datasets}
    problems = []
    for reader in datasets:
        if reader.resident:
            continue
        for path in reader.upstream:
            source = by_path.get(path)
            if source is None or not source.resident:
                continue
            personal = {*source.personal_data, *source.subjects}
            declared = reader.cross_region_columns.get(path)
            if declared is None and personal:
                problems.append(
                    f"{reader.path} reads the resident {path} (personal: {', '.join(sorted(personal))}) "
                    "without declaring the non-personal columns it uses (cross_region_columns)"
                )
            elif declared is not None and personal & set(declared):
                crossing = ", ".join(sorted(personal & set(declared)))
                problems.append(
                    f"{reader.path} declares personal column(s) {crossing} of the resident {path} as "
                    "cross-region columns"
                )
    if problems:
        raise ResidencyError("; ".join(problems))
