"""`lakehouse schema ...`: the schema registry from a shell (history, diff, check of the current code)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Mapping, Sequence

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from assets import DATASETS
from lakehouse import landing, schemas
from lakehouse.config import LakehouseConfig
from lakehouse.console import print_table
from lakehouse.datasets import Dataset
from lakehouse.engine import spark_session
from quality import metrics
from transforms import common


def _dataset_id(text: str) -> str:
    """`layer.domain.name` or `layer/domain/name`."""
    return text.replace("/", ".")


def _history(args: argparse.Namespace) -> int:
    versions = schemas.history(LakehouseConfig.from_env(), _dataset_id(args.dataset))
    if not versions:
        print(f"lakehouse schema: no schema versions of {args.dataset!r}", file=sys.stderr)
        return 1
    rows: list[tuple[str, ...]] = []
    previous: tuple[schemas.SchemaField, ...] = ()
    for v in versions:
        change = schemas.diff(previous, v.fields).describe() if previous else f"{len(v.fields)} fields"
        rows.append(
            (
                str(v.version),
                v.code_version,
                v.compatibility,
                v.first_partition or "-",
                v.last_partition or "-",
                v.created_at.isoformat(timespec="seconds"),
                change,
            )
        )
        previous = v.fields
    print(f"schema versions of {_dataset_id(args.dataset)}:")
    print_table(
        (
            "version",
            "code version",
            "compatibility",
            "first partition",
            "last partition",
            "created",
            "change",
        ),
        rows,
    )
    latest = versions[-1]
    print(f"\nfields of version {latest.version}:")
    print_table(
        ("field", "type", "required"),
        [(f.name, f.type, "yes" if f.required else "no") for f in latest.fields],
    )
    return 0


def _diff(args: argparse.Namespace) -> int:
    versions = {v.version: v for v in schemas.history(LakehouseConfig.from_env(), _dataset_id(args.dataset))}
    unknown = [n for n in (args.v1, args.v2) if n not in versions]
    if unknown:
        print(
            f"lakehouse schema: {args.dataset} has no version {unknown[0]} (versions: "
            f"{', '.join(map(str, sorted(versions))) or 'none'})",
            file=sys.stderr,
        )
        return 1
    old, new = versions[args.v1].fields, versions[args.v2].fields
    found = schemas.diff(old, new)
    print(f"{_dataset_id(args.dataset)} version {args.v1} -> {args.v2}: {found.describe()}")
    rows = (
        [("added", f.name, "-", f.kind) for f in found.added]
        + [("removed", f.name, f.kind, "-") for f in found.removed]
        + [("changed", old_f.name, old_f.kind, new_f.kind) for old_f, new_f in found.changed]
    )
    if rows:
        print_table(("change", "field", "before", "after"), rows)
    for mode in schemas.Compatibility:
        refused = schemas.problems(mode, old, new)
        print(f"{mode.value}: {'refused: ' + '; '.join(refused) if refused else 'allowed'}")
    return 0


def proposed_schemas(
    spark: SparkSession, datasets: Sequence[Dataset], other_tables: Mapping[str, str] | None = None
) -> dict[str, T.StructType | str]:
    """Path -> the schema the current code writes (from empty inputs: nothing is read or written), or why
    it cannot tell. `other_tables`: DDL schemas of upstream tables that are not declared (quality metrics)."""
    declared, known = {d.path: d for d in datasets}, other_tables or {}
    found: dict[str, T.StructType] = {}

    def schema_of(path: str) -> T.StructType:
        if path not in found:
            dataset = declared.get(path)
            if dataset is None:
                if path not in known:
                    raise LookupError(f"upstream {path} is not declared")
                found[path] = spark.createDataFrame([], known[path]).schema
            elif dataset.privacy:  # a private release writes noisy cells, not its transform's tallies
                from orchestration.private_release import release_schema

                found[path] = release_schema(dataset.privacy)
            elif dataset.layer == "raw":
                lines = spark.createDataFrame([], landing.LINES_DDL)
                found[path] = common.raw_lines(lines, "", dt.datetime.now(dt.UTC)).schema
            else:
                inputs = {
                    up.split("/")[-1]: spark.createDataFrame([], schema_of(up)) for up in dataset.upstream
                }
                found[path] = common.written_schema(dataset, common.derive(dataset, inputs))
        return found[path]

    proposed: dict[str, T.StructType | str] = {}
    for dataset in datasets:
        try:
            proposed[dataset.path] = schema_of(dataset.path)
        except LookupError as error:
            proposed[dataset.path] = f"not checked: {error}"
    return proposed


def check(
    config: LakehouseConfig,
    spark: SparkSession,
    datasets: Sequence[Dataset],
    other_tables: Mapping[str, str] | None = None,
) -> list[tuple[Dataset, schemas.Change | str]]:
    """Each dataset with what its current code would change (a `schemas.Change`), or why it cannot tell."""
    proposed = proposed_schemas(spark, datasets, other_tables)
    found: list[tuple[Dataset, schemas.Change | str]] = []
    for dataset in datasets:
        schema = proposed[dataset.path]
        found.append(
            (
                dataset,
                schema
                if isinstance(schema, str)
                else schemas.change(config, dataset, schemas.struct_fields(dataset, schema)),
            )
        )
    return found


def check_command(args: argparse.Namespace, datasets: Sequence[Dataset] | None = None) -> int:
    """Print `check`'s answer for `datasets` (default: every declared one); 1 when one would be refused."""
    declared: Sequence[Dataset] = DATASETS if datasets is None else datasets

    config = LakehouseConfig.from_env()
    tables = {metrics.metrics_path(d): metrics.SCHEMA for d in declared if d.layer != "raw"}
    results = check(config, spark_session(config), declared, tables)
    rows = []
    for dataset, found in results:
        if isinstance(found, str):
            rows.append((dataset.path, dataset.compatibility.value, "-", "-", found))
        else:
            version = str(found.current.version) if found.current else "-"
            rows.append(
                (dataset.path, dataset.compatibility.value, version, found.diff.describe(), found.verdict)
            )
    print_table(("dataset", "compatibility", "version", "change", "verdict"), rows)
    refused = [d.path for d, found in results if not isinstance(found, str) and found.problems]
    if refused:
        print(f"\n{len(refused)} dataset(s) would be refused: {', '.join(refused)}", file=sys.stderr)
    return 1 if refused else 0


def add_parser(commands) -> None:
    """Register `schema` and its actions on the `lakehouse` command's subparsers."""
    parser = commands.add_parser("schema", help="the schema registry: history, diff, check")
    actions = parser.add_subparsers(dest="action", required=True)
    hist = actions.add_parser("history", help="a dataset's schema versions")
    hist.add_argument("dataset", help="layer.domain.name")
    hist.set_defaults(handler=_history)
    diff = actions.add_parser("diff", help="what changed between two versions, and which modes allow it")
    diff.add_argument("dataset", help="layer.domain.name")
    diff.add_argument("v1", type=int)
    diff.add_argument("v2", type=int)
    diff.set_defaults(handler=_diff)
    actions.add_parser(
        "check", help="what the current code would change, dataset by dataset (1: refused)"
    ).set_defaults(handler=check_command)
