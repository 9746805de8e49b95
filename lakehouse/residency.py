"""Data residency: which regions' roots hold a resident dataset's rows, and the refusals that keep personal
data inside its region (each refusal audited before it is raised)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NoReturn

from lakehouse import audit
from lakehouse.config import LakehouseConfig

# region -> Delta version of that region's table: what a read of a resident dataset was pinned to
RegionalVersions = dict[str, int]


class ResidencyError(PermissionError):
    """A read or write would move personal data out of its region; nothing was read or written."""


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
