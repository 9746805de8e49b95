"""Quarantine replay: re-evaluate one partition's quarantined rows against the current transform, rules and
reference data (after a rule fix, or once late reference data has landed), and publish the rows that now
pass, in one audited action.

The partition is re-derived from its upstream rows as a run would, staged and audited (write-audit-publish);
a replay only moves rows out of the quarantine: when a row the dataset accepts today would be quarantined
by the re-derivation (the rules tightened), it refuses and says to rebuild the partition instead. The
dataset, its quarantine and its metrics are then rewritten for that partition, so input = accepted +
quarantined + duplicates holds exactly as after a run; the catalog records the replay as a materialization.
"""

from __future__ import annotations

import argparse
import datetime as dt
import uuid
from collections import Counter
from dataclasses import dataclass, field

from pyspark.sql import DataFrame

from lakehouse import audit, catalog
from lakehouse.datasets import Dataset
from orchestration import factory
from orchestration.resources import LakeResource
from transforms import common

Line = tuple[str, int]  # (source_file, line_number): where a quarantined row came from


class ReplayRefused(RuntimeError):
    """The replay changed nothing, and says why."""


@dataclass
class Replay:
    dataset: str
    day: dt.date
    run_id: str
    dry_run: bool
    quarantined: int  # rows in the partition's quarantine before the replay
    moved: int  # rows that now pass and are (or would be) published
    moved_by_reason: dict[str, int] = field(default_factory=dict)  # their former first reason
    published_rows: int = 0  # the dataset's rows of the partition after the replay

    def summary(self) -> str:
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.moved_by_reason.items())) or "none"
        verb = "would move" if self.dry_run else "moved"
        return (
            f"{self.dataset} {self.day}: {verb} {self.moved} of {self.quarantined} quarantined rows "
            f"(former reasons: {reasons})"
            + ("" if self.dry_run else f"; {self.published_rows} rows published")
        )


def _lines(df: DataFrame) -> dict[Line, str]:
    return {(r["source_file"], r["line_number"]): r["reason"] for r in df.collect()}


def replay(lake: LakeResource, dataset: Dataset, day: dt.date, dry_run: bool = False) -> Replay:
    """Replay the quarantined rows of `dataset` at `day` (see the module docstring)."""
    if not dataset.has_quarantine or dataset.layer == "raw" or not dataset.upstream[0].startswith("raw/"):
        raise ReplayRefused(
            f"{dataset.path}: only a processed dataset with a quarantine, derived from raw lines, replays"
        )
    run_id = f"replay-{uuid.uuid4().hex[:12]}"
    target = catalog.dataset_id(dataset.path)
    quarantine, _ = lake.read(dataset.quarantine_path, [day])
    before = _lines(quarantine.select("source_file", "line_number", "reason"))
    reads = {path: lake.read(path, [day]) for path in dataset.upstream}
    upstream = [(path, version) for path, (_, version) in reads.items()]
    output = common.derive(dataset, {path.split("/")[-1]: rows for path, (rows, _) in reads.items()})
    with factory.audited(lake, dataset, [day], output, run_id, upstream) as (staged, quality):
        assert staged.rejected is not None  # the dataset has a quarantine
        after = _lines(staged.rejected.select("source_file", "line_number", "reason"))
        newly_refused = sorted(set(after) - set(before))
        if newly_refused:
            example = newly_refused[0]
            raise ReplayRefused(
                f"{dataset.path} {day}: {len(newly_refused)} rows outside the quarantine would now be "
                f"quarantined (e.g. {example[0]} line {example[1]}: {after[example]}); a replay only moves "
                "rows out of the quarantine: rebuild the partition with a run instead"
            )
        moved = [line for line in before if line not in after]
        report = Replay(
            dataset.path,
            day,
            run_id,
            dry_run,
            quarantined=len(before),
            moved=len(moved),
            moved_by_reason=dict(Counter(before[line] for line in moved)),
        )
        record = audit.Record(
            "replay",
            "publish",
            target,
            rows=len(moved),
            partitions=[day.isoformat()],
            dry_run=dry_run,
            detail=report.summary(),
        )
        if dry_run or not moved:
            audit.write(lake.config, run_id, [record])
            return report
        if quality.blocking:
            review = factory.keep_for_review(lake, dataset, run_id, staged)
            refusal = (
                f"{dataset.path} {day}: blocking checks failed: {', '.join(quality.blocking)}; nothing was "
                f"published, the rows wait for review at {review}"
            )
            audit.write(lake.config, run_id, [audit.Record("replay", "refused", target, detail=refusal)])
            raise ReplayRefused(refusal)
        schemas = {path: rows.schema for path, (rows, _) in reads.items()}
        published = factory.publish(lake, dataset, [day], staged, quality, run_id, upstream, schemas)
    report.published_rows = published.written.rows_per_partition.get(day, 0)
    audit.write(lake.config, run_id, [record])
    return report


def _command(args: argparse.Namespace) -> int:
    from assets import DATASETS

    found = {d.path: d for d in DATASETS}
    if args.dataset not in found:
        raise SystemExit(f"unknown dataset {args.dataset!r}; e.g. {next(iter(found))}")
    try:
        report = replay(
            LakeResource(), found[args.dataset], dt.date.fromisoformat(args.partition), args.dry_run
        )
    except ReplayRefused as refused:
        raise SystemExit(str(refused)) from None
    print(report.summary())
    return 0


def add_parser(commands) -> None:
    """`lakehouse quarantine replay <dataset> --partition P [--dry-run]`."""
    quarantine = commands.add_parser("quarantine", help="the quarantined rows of a dataset")
    actions = quarantine.add_subparsers(dest="action", required=True)
    replay_parser = actions.add_parser(
        "replay", help="publish a partition's quarantined rows that pass the current rules and reference data"
    )
    replay_parser.add_argument("dataset", help="layer/domain/name, e.g. processed/finance/transactions")
    replay_parser.add_argument("--partition", required=True, help="the day, YYYY-MM-DD")
    replay_parser.add_argument("--dry-run", action="store_true", help="count what would move; change nothing")
    replay_parser.set_defaults(handler=_command)
