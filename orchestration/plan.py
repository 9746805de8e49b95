"""What a backfill would do, before it runs (`lakehouse plan`, `plan_job`): per selected asset and
partition, the table's current version and rows, the landing input, what the run would refuse or keep,
the assets and feature views downstream, and the rows to expect."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

from lakehouse import landing
from lakehouse.datasets import Dataset
from lakehouse.lake import Lake
from lakehouse.maintenance import TableMaintenance
from orchestration.resources import LakeResource

HEADER = ("asset", "partition", "version", "rows", "landing", "action", "estimated rows", "downstream")


@dataclass(frozen=True)
class PlannedStep:
    asset: str  # layer/domain/name
    day: dt.date
    version: int | None  # the table's current Delta version; None before its first write
    rows: int  # the partition's rows now
    landing: str  # raw: the day's landing files, or "missing"; derived: "-"
    action: str  # build | keep: ... | refused: ...
    estimated_rows: int | None  # raw: lines to read; processed: input rows to judge; curated: unknown
    downstream: tuple[str, ...]

    def line(self) -> tuple[str, ...]:
        return (
            self.asset,
            self.day.isoformat(),
            "-" if self.version is None else str(self.version),
            str(self.rows),
            self.landing,
            self.action,
            "?" if self.estimated_rows is None else str(self.estimated_rows),
            ", ".join(self.downstream) or "-",
        )


def _version(lake: Lake, path: str) -> int | None:
    table = TableMaintenance(lake.uri(path), lake.config.storage_options)
    return table.version() if table.exists() else None


def _expired(lake: Lake, day: dt.date) -> bool:
    return day < dt.datetime.now(dt.UTC).date() - dt.timedelta(days=lake.config.landing_retention_days)


def _raw_steps(lake: Lake, dataset: Dataset, days: Sequence[dt.date], downstream: tuple[str, ...]):
    listing = landing.list_landing(
        lake.config, dataset.domain, days, dataset.landing_source, dataset.landing_format
    )
    current, version = lake.rows_per_partition(dataset.path, days), _version(lake, dataset.path)
    for day in days:
        files = listing.files.get(day, [])
        if files:
            lines = sum(landing.count_lines(lake.config, uri) for uri in files)
            yield PlannedStep(
                dataset.path, day, version, current[day], f"{len(files)} files", "build", lines, downstream
            )
        elif current[day]:
            action = "refused: landing expired" if _expired(lake, day) else "keep: landing missing"
            yield PlannedStep(
                dataset.path, day, version, current[day], "missing", action, current[day], downstream
            )
        else:
            yield PlannedStep(dataset.path, day, version, 0, "missing", "build (empty)", 0, downstream)


def plan(
    lake: Lake, datasets: Sequence[Dataset], days: Sequence[dt.date], downstream: dict[str, tuple[str, ...]]
) -> list[PlannedStep]:
    """The steps of a run of `datasets` (in dependency order) over `days`, each partition's figures."""
    steps: list[PlannedStep] = []
    expected: dict[tuple[str, dt.date], int | None] = {}  # rows each planned step will leave behind
    for dataset in datasets:
        below = downstream.get(dataset.path, ())
        if dataset.layer == "raw":
            found = list(_raw_steps(lake, dataset, days, below))
        else:
            primary = dataset.upstream[0]
            upstream_now = lake.rows_per_partition(primary, days)
            current, version = lake.rows_per_partition(dataset.path, days), _version(lake, dataset.path)
            found = []
            estimate: int | None
            for day in days:
                incoming = expected.get((primary, day), upstream_now[day])
                if current[day] and incoming == 0:
                    action, estimate = f"refused: {primary} has no rows", current[day]
                else:
                    action = "build"
                    estimate = incoming if dataset.layer == "processed" else None
                found.append(
                    PlannedStep(dataset.path, day, version, current[day], "-", action, estimate, below)
                )
        for step in found:
            kept = step.action.startswith(("refused", "keep"))
            expected[(step.asset, step.day)] = step.rows if kept else step.estimated_rows
        steps += found
    return steps


def asset_plan(
    asset_graph, selection: str, datasets: Sequence[Dataset], days: Sequence[dt.date], lake: Lake
) -> list[PlannedStep]:
    """Resolve a Dagster asset selection over the code location's graph and plan its datasets."""
    keys = dg.AssetSelection.from_string(selection).resolve(asset_graph)
    by_path = {d.path: d for d in datasets}
    chosen = {"/".join(key.path) for key in keys} & set(by_path)
    order = [p for p in (("/".join(k.path)) for k in asset_graph.toposorted_asset_keys) if p in chosen]

    def below(key: dg.AssetKey) -> tuple[str, ...]:
        found = dg.AssetSelection.assets(key).downstream().resolve(asset_graph) - {key}
        return tuple(sorted("/".join(k.path) for k in found))

    downstream = {path: below(dg.AssetKey(path.split("/"))) for path in order}
    return plan(lake, [by_path[p] for p in order], days, downstream)


def partition_range(text: str) -> list[dt.date]:
    """`A...B` (inclusive) or one day."""
    first, _, last = text.partition("...")
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last or first)
    if end < start:
        raise ValueError(f"partition range {text}: the end is before the start")
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


class PlanConfig(dg.Config):
    select: str
    partition_range: str


@dg.op
def plan_backfill(context: dg.OpExecutionContext, config: PlanConfig, lake: LakeResource) -> dg.Output:
    """The plan as the run's metadata, for an operator to read before launching the backfill."""
    from assets import DATASETS
    from orchestration.definitions import defs  # this op runs in the code location: already loaded

    steps = asset_plan(
        defs.resolve_asset_graph(), config.select, DATASETS, partition_range(config.partition_range), lake
    )
    table = "\n".join(
        ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        + ["| " + " | ".join(step.line()) + " |" for step in steps]
    )
    refused = [f"{s.asset} {s.day}: {s.action}" for s in steps if s.action.startswith("refused")]
    return dg.Output(
        None,
        metadata={
            "plan": dg.MetadataValue.md(table),
            "steps": len(steps),
            "refused": refused,
            "estimated_rows": sum(s.estimated_rows or 0 for s in steps),
        },
    )


@dg.job(description="Print what a backfill of `select` over `partition_range` would do; changes nothing.")
def plan_job():
    plan_backfill()
