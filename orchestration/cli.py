"""`lakehouse` command line: generate landing data, summarize the lake, browse the data catalog."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import sys
import warnings

from lakehouse.config import LakehouseConfig
from lakehouse.console import print_table
from lakehouse.production import check_production
from lakehouse.retention import DEFAULT_SAFETY_WINDOW_HOURS, MAX_SHARE, SAFETY_WINDOW_FLOOR_HOURS

GENERATORS = {domain: f"synthetic.{domain}" for domain in ("events", "commerce", "finance", "iot", "ai_ops")}
DEFAULT_ROWS = {"events": 5_000, "commerce": 3_000, "finance": 3_000, "iot": 20_000, "ai_ops": 2_000}


def _days(start: str | None, count: int) -> list[dt.date]:
    today = dt.datetime.now(dt.UTC).date()
    first = dt.date.fromisoformat(start) if start else today - dt.timedelta(days=count)
    return [first + dt.timedelta(days=offset) for offset in range(count)]


def _total(counts: int | dict) -> int:
    """A count, or the sum of a (nested) dict of counts: generators record per source and kind."""
    return sum(map(_total, counts.values())) if isinstance(counts, dict) else counts


def generate(args: argparse.Namespace) -> int:
    config = LakehouseConfig.from_env()
    for domain in args.domain or list(GENERATORS):
        generate_day = importlib.import_module(GENERATORS[domain]).generate_day
        rows = args.rows or int(os.environ.get(f"LAKEHOUSE_{domain.upper()}_PER_DAY", DEFAULT_ROWS[domain]))
        for day in _days(args.start, args.days):
            generated = generate_day(day, rows, seed=args.seed)
            files = generated.write(config, domain)
            print(
                f"{domain} {day}: {_total(generated.record['lines'])} lines in {len(files)} file(s), "
                f"{_total(generated.record['bad'])} bad on purpose"
            )
    return 0


def summary(args: argparse.Namespace) -> int:
    """Dataset, layer, partitions and rows of every table, from the Delta logs (no scan)."""
    import pyarrow as pa
    from deltalake import DeltaTable

    from assets import declarations

    config = LakehouseConfig.from_env()
    rows, datasets = [], declarations()
    tables = [(d.domain, d.name, d.layer) for d in datasets]
    tables += [
        (d.domain, d.quarantine_path.rsplit("/", 1)[-1], "quarantine") for d in datasets if d.has_quarantine
    ]
    order = ("raw", "processed", "quarantine", "curated")
    for domain, name, layer in sorted(tables, key=lambda table: (table[0], order.index(table[2]), table[1])):
        uri = config.table_uri(layer, domain, name)
        if not DeltaTable.is_deltatable(uri, storage_options=config.storage_options):
            rows.append((f"{domain}.{name}", layer, "-", "missing"))
            continue
        actions = pa.table(
            DeltaTable(uri, storage_options=config.storage_options).get_add_actions(flatten=True)
        )
        partitions = sorted({str(day) for day in actions.column("partition.dt").to_pylist()})
        span = f"{len(partitions)} ({partitions[0]}..{partitions[-1]})" if partitions else "0"
        rows.append(
            (
                f"{domain}.{name}",
                layer,
                span,
                str(sum(n or 0 for n in actions.column("num_records").to_pylist())),
            )
        )
    print_table(("dataset", "layer", "partitions", "rows"), rows)
    return 0


def quality(args: argparse.Namespace) -> int:
    """One line per processed and curated dataset from its metrics table (`quality/<domain>/<layer>_<name>`):
    the latest run's checks passed / failed and status, rows quarantined and the weakest metrics."""
    from assets import declarations
    from quality.report import quality_lines

    config = LakehouseConfig.from_env()
    lines = quality_lines(config, declarations(), args.domain)
    print_table(
        (
            "dataset",
            "partitions",
            "status",
            "checks passed",
            "checks failed",
            "quarantined",
            "completeness",
            "validity",
            "uniqueness",
            "consistency",
        ),
        lines,
    )
    return 0


def _join(values) -> str:
    return ", ".join(str(v) for v in values or ()) or "-"


def _classes(entry: dict) -> str:
    return _join(sorted({c for c in entry["classification"].values() if c}))


def _entries_table(entries: list[dict]) -> None:
    print_table(
        ("dataset", "layer", "owner", "rows", "latest partition", "quality", "classification", "tags"),
        [
            (
                e["datasetId"],
                e["layer"],
                e["owner"],
                "-" if e["rowCount"] is None else str(e["rowCount"]),
                e["latestPartition"] or "-",
                e["qualityStatus"],
                _classes(e),
                _join(e["tags"]),
            )
            for e in entries
        ],
    )


def catalog_command(args: argparse.Namespace) -> int:
    """list / show / lineage / search over the catalog tables (`lakehouse.catalog`)."""
    from lakehouse import catalog

    config = LakehouseConfig.from_env()
    if args.action in ("list", "search"):
        filters = (
            {"text": args.text}
            if args.action == "search"
            else {"domain": args.domain, "tag": args.tag, "classification": args.classification}
        )
        _entries_table(catalog.list_entries(config, **filters))
        return 0
    entry = catalog.get_entry(config, args.dataset)
    if args.action == "lineage":
        chain = catalog.lineage(config, args.dataset, args.direction)
        if (
            not chain
            and entry is None
            and not catalog.lineage(
                config, args.dataset, "downstream" if args.direction == "upstream" else "upstream"
            )
        ):
            print(f"lakehouse catalog: unknown dataset {args.dataset!r}", file=sys.stderr)
            return 1
        print(f"{args.direction} of {args.dataset}:")
        print_table(
            ("dataset", "via", "run", "code version", "partitions"),
            [
                (s["datasetId"], s["via"], s["runId"], s["codeVersion"] or "-", _join(s["partitions"]))
                for s in chain
            ],
        )
        return 0
    if entry is None:
        print(f"lakehouse catalog: unknown dataset {args.dataset!r}", file=sys.stderr)
        return 1
    keys = (
        "datasetId",
        "domain",
        "name",
        "layer",
        "description",
        "owner",
        "tags",
        "location",
        "retentionDays",
        "regions",
        "subjectColumns",
        "subjectPaths",
        "tenantColumn",
        "regionColumn",
        "latestPartition",
        "rowCount",
        "deltaVersion",
        "lastRunId",
        "qualityStatus",
        "createdAt",
        "updatedAt",
    )
    width = max(map(len, keys))
    for key in keys:
        value = entry[key]
        if isinstance(value, dict):
            value = [f"{column} at {', '.join(paths)}" for column, paths in value.items()]
        shown = _join(value) if isinstance(value, list) else "-" if value in (None, "") else value
        print(f"{key + ':':<{width + 1}}  {shown}")
    print()
    print_table(
        ("column", "type", "classification", "description"),
        [
            (f["name"], f["type"], f.get("classification") or "-", f.get("description") or "-")
            for f in entry["schema"]["fields"]
        ],
    )
    print()
    print_table(
        ("column", "upstream"),
        [
            (column, _join(f"{s['datasetId']}.{s['column']}" for s in sources))
            for column, sources in sorted(entry["columnLineage"].items())
        ],
    )
    return 0


def retention_command(args: argparse.Namespace) -> int:
    """Apply (or with --dry-run, report) retention to every catalogued table, landing source and staging
    folder; refused (exit 1) when a brake stops it."""
    import uuid

    from lakehouse import retention

    config = LakehouseConfig.from_env()
    reference = (
        dt.date.fromisoformat(args.reference_date) if args.reference_date else dt.datetime.now(dt.UTC).date()
    )
    try:
        removals = retention.apply(
            config,
            reference,
            f"cli-{uuid.uuid4()}",
            dry_run=args.dry_run,
            safety_window_hours=args.safety_window_hours,
            override_safety_floor=args.allow_short_safety_window,
            confirm=args.confirm,
        )
    except retention.RetentionRefused as refused:
        print(f"lakehouse retention: refused: {refused}", file=sys.stderr)
        return 1
    print(f"retention as of {reference} ({'dry run: nothing removed' if args.dry_run else 'applied'}):")
    print_table(retention.REPORT_COLUMNS, retention.report(removals))
    return 0


def erase_command(args: argparse.Namespace) -> int:
    """`erase COLUMN VALUE`: file a request and carry it out; `erase request COLUMN VALUE`: only file it (for
    the Dagster job); `erase --request-id ID`: carry out a filed request. Then verify (audited)."""
    import uuid

    from lakehouse import erasure

    config, run_id = LakehouseConfig.from_env(), f"cli-{uuid.uuid4()}"
    words = args.subject
    try:
        if args.request_id and not words:
            records = erasure.execute_request(config, args.request_id, run_id, args.dry_run, args.force)
        elif len(words) == 3 and words[0] == "request" and not args.request_id:
            print(erasure.file_request(config, words[1], words[2]).request_id)
            return 0
        elif len(words) == 2 and not args.request_id:
            column, value = words
            records = erasure.erase(config, column, value, run_id, dry_run=args.dry_run, force=args.force)
        else:
            print(
                "lakehouse erase: give COLUMN VALUE, request COLUMN VALUE, or --request-id ID",
                file=sys.stderr,
            )
            return 2
    except erasure.ErasureError as error:
        print(f"lakehouse erase: {error}", file=sys.stderr)
        return 1
    if args.dry_run:
        print("dry run: nothing removed")
    print_table(
        ("place", "step", "partitions", "rows", "files", "verified"),
        [
            (r.target, r.step, _join(r.partitions), str(r.rows), str(r.files), str(r.verified))
            for r in records
        ],
    )
    return 0


def rollback_command(args: argparse.Namespace) -> int:
    """`rollback --run ID` or `rollback DATASET --partition P --to-version V`; refused (exit 1) by a later
    write, vacuumed files or the brake."""
    import uuid

    from lakehouse import rollback
    from lakehouse.lake import Lake
    from orchestration.governance import run_rollback

    try:
        records = run_rollback(
            Lake(),
            f"cli-{uuid.uuid4()}",
            target_run=args.run or "",
            dataset=args.dataset or "",
            partition=args.partition or "",
            to_version=-1 if args.to_version is None else args.to_version,
            dry_run=args.dry_run,
            allow_later_writes=args.allow_later_writes,
            confirm=args.confirm,
        )
    except (rollback.RollbackError, ValueError) as error:
        print(f"lakehouse rollback: {error}", file=sys.stderr)
        return 1
    if args.dry_run:
        print("dry run: nothing written")
    print_table(
        ("table", "step", "partitions", "rows after", "verified", "detail"),
        [(r.target, r.step, _join(r.partitions), str(r.rows), str(r.verified), r.detail) for r in records],
    )
    return 0


def export_subject_command(args: argparse.Namespace) -> int:
    """`export-subject COLUMN VALUE`: write the archive now; `export-subject request COLUMN VALUE`: only file
    a request (for the Dagster job) and print its id. The value is never printed."""
    import uuid

    from lakehouse import erasure, subject_export

    config, words = LakehouseConfig.from_env(), args.subject
    try:
        if len(words) == 3 and words[0] == "request":
            print(subject_export.file_request(config, words[1], words[2]))
            return 0
        if len(words) != 2:
            print("lakehouse export-subject: give COLUMN VALUE, or request COLUMN VALUE", file=sys.stderr)
            return 2
        archive = subject_export.export(config, words[0], words[1], f"cli-{uuid.uuid4()}")
    except erasure.ErasureError as error:
        print(f"lakehouse export-subject: {error}", file=sys.stderr)
        return 1
    print(f"archive {archive.uri} (subject token {archive.subject_token}):")
    print_table(
        ("dataset", "kind", "rows", "version", "file"),
        [(d.dataset_id, d.kind, str(d.rows), str(d.version), d.file) for d in archive.datasets],
    )
    return 0


def plan_command(args: argparse.Namespace) -> int:
    """The asset graph is the code location's: selections mean what they mean in Dagster."""
    from assets import DATASETS
    from lakehouse.lake import Lake
    from orchestration.definitions import defs
    from orchestration.plan import HEADER, asset_plan, partition_range

    steps = asset_plan(
        defs.resolve_asset_graph(), args.select, DATASETS, partition_range(args.partition_range), Lake()
    )
    print_table(HEADER, [step.line() for step in steps])
    return 0


def audit_command(args: argparse.Namespace) -> int:
    from lakehouse import audit

    rows = audit.read(LakehouseConfig.from_env(), args.run_id)[-args.limit :]
    print_table(
        ("time", "action", "step", "target", "dry run", "rows", "files", "bytes", "verified", "run"),
        [
            (
                r["recorded_at"].isoformat(timespec="seconds"),
                r["action"],
                r["step"],
                r["target"],
                str(r["dry_run"]),
                str(r["rows"]),
                str(r["files"]),
                str(r["bytes"]),
                "-" if r["verified"] is None else str(r["verified"]),
                r["run_id"],
            )
            for r in rows
        ],
    )
    return 0


def _quiet_library_notices() -> None:
    """Deprecation and beta notices of libraries (Dagster, pydantic) are for developers, not command output.
    Filters alone do not hold: importing some libraries puts their own filters first."""
    show = warnings.showwarning

    def _show(message, category, *args, **kwargs):
        if not (issubclass(category, DeprecationWarning) or "currently in beta" in str(message)):
            show(message, category, *args, **kwargs)

    warnings.showwarning = _show


def main(argv: list[str] | None = None) -> int:
    check_production()
    _quiet_library_notices()
    parser = argparse.ArgumentParser(prog="lakehouse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="write synthetic landing files for some days")
    gen.add_argument(
        "--domain",
        action="append",
        choices=sorted(GENERATORS),
        help="a domain to generate (repeatable; default: all)",
    )
    gen.add_argument(
        "--start", default=None, help="first day (default: DAYS days ago, so the last complete days)"
    )
    gen.add_argument("--days", type=int, default=7)
    gen.add_argument(
        "--rows", type=int, default=None, help="lines per day (default LAKEHOUSE_EVENTS_PER_DAY or 5000)"
    )
    gen.add_argument("--seed", type=int, default=7)
    gen.set_defaults(handler=generate)
    summ = commands.add_parser("summary", help="print every table's partitions and rows")
    summ.set_defaults(handler=summary)
    qual = commands.add_parser(
        "quality", help="every dataset's quality: checks passed/failed, rows quarantined"
    )
    qual.add_argument("--domain", choices=sorted(GENERATORS))
    qual.set_defaults(handler=quality)
    cat = commands.add_parser("catalog", help="browse the data catalog: datasets, schemas, lineage")
    actions = cat.add_subparsers(dest="action", required=True)
    cat_list = actions.add_parser("list", help="catalogued datasets, filtered")
    for flag in ("--domain", "--tag", "--classification"):
        cat_list.add_argument(flag)
    actions.add_parser("show", help="one dataset: fields, schema, column lineage").add_argument("dataset")
    cat_lineage = actions.add_parser("lineage", help="the datasets upstream (default) or downstream of one")
    cat_lineage.add_argument("dataset")
    way = cat_lineage.add_mutually_exclusive_group()
    way.add_argument(
        "--upstream", dest="direction", action="store_const", const="upstream", default="upstream"
    )
    way.add_argument("--downstream", dest="direction", action="store_const", const="downstream")
    actions.add_parser(
        "search", help="datasets whose id, description, owner, tags or columns contain TEXT"
    ).add_argument("text")
    cat.set_defaults(handler=catalog_command)
    ret = commands.add_parser(
        "retention", help="delete partitions past their retention, vacuum, expire landing"
    )
    ret.add_argument("--dry-run", action="store_true", help="report what would be removed; remove nothing")
    ret.add_argument(
        "--reference-date", help="ISO date retention counts back from, not after today (default: today, UTC)"
    )
    ret.add_argument(
        "--safety-window-hours",
        type=int,
        default=DEFAULT_SAFETY_WINDOW_HOURS,
        help="vacuum files deleted, and delete expired landing files modified, longer ago "
        f"than this (default {DEFAULT_SAFETY_WINDOW_HOURS}, at least "
        f"{SAFETY_WINDOW_FLOOR_HOURS})",
    )
    ret.add_argument(
        "--allow-short-safety-window",
        action="store_true",
        help=f"allow a safety window under {SAFETY_WINDOW_FLOOR_HOURS} h",
    )
    ret.add_argument(
        "--confirm",
        action="store_true",
        help=f"apply even where more than {MAX_SHARE * 100:.0f}%% of a table's rows would be deleted",
    )
    ret.set_defaults(handler=retention_command)
    erase = commands.add_parser("erase", help="erase one subject from every layer, landing and online store")
    erase.add_argument(
        "subject",
        nargs="*",
        metavar="[request] COLUMN VALUE",
        help="subject column (e.g. user_id, account_id, customer_id) and the identifier as it "
        "arrives; with `request` first: only file the request and print its id",
    )
    erase.add_argument("--request-id", help="carry out a filed request")
    erase.add_argument("--dry-run", action="store_true", help="report places, rows and files; remove nothing")
    erase.add_argument(
        "--force",
        action="store_true",
        help="go past the brake that refuses to remove more than a small share of a table",
    )
    erase.set_defaults(handler=erase_command)
    pln = commands.add_parser(
        "plan", help="what a backfill would do, per asset and partition; changes nothing"
    )
    pln.add_argument("--select", required=True, help="a Dagster asset selection, e.g. 'raw/events/events+'")
    pln.add_argument("--partition-range", required=True, help="A...B (inclusive) or one day")
    pln.set_defaults(handler=plan_command)
    rol = commands.add_parser(
        "rollback", help="restore the partitions a run wrote (or one partition) to their content before"
    )
    rol.add_argument(
        "dataset", nargs="?", help="a dataset id (layer.domain.name), with --partition/--to-version"
    )
    rol.add_argument("--run", help="roll back every partition this run wrote, in every table")
    rol.add_argument("--partition", help="with DATASET: the partition (ISO day)")
    rol.add_argument("--to-version", type=int, help="with DATASET: the Delta version to restore")
    rol.add_argument("--dry-run", action="store_true", help="report what would be restored; write nothing")
    rol.add_argument(
        "--allow-later-writes", action="store_true", help="also undo later commits to the run's partitions"
    )
    rol.add_argument("--confirm", action="store_true", help="go past the brake on rows removed")
    rol.set_defaults(handler=rollback_command)
    exp = commands.add_parser(
        "export-subject", help="write every row about one subject (every layer, feature store) to an archive"
    )
    exp.add_argument(
        "subject",
        nargs="+",
        metavar="[request] COLUMN VALUE",
        help="subject column and identifier; with `request` first: only file a request for the Dagster job",
    )
    exp.set_defaults(handler=export_subject_command)
    aud = commands.add_parser("audit", help="the retention and erasure audit trail")
    aud.add_argument("--run-id")
    aud.add_argument("--limit", type=int, default=50)
    aud.set_defaults(handler=audit_command)
    from lakehouse import features_cli, local_issuer
    from orchestration import replay, schemas_cli

    features_cli.add_parser(commands)
    replay.add_parser(commands)
    local_issuer.add_parser(commands)
    schemas_cli.add_parser(commands)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
