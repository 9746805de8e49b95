"""`lakehouse` command line: generate landing data, summarize the lake."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import sys

from lakehouse.config import LakehouseConfig

GENERATORS = {domain: f"lakehouse.synthetic.{domain}" for domain in ("events", "commerce", "finance", "iot", "ai_ops")}
DEFAULT_ROWS = {"events": 5_000, "commerce": 3_000, "finance": 3_000, "iot": 20_000, "ai_ops": 2_000}


def _days(start: str, count: int) -> list[dt.date]:
    first = dt.date.fromisoformat(start)
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
            print(f"{domain} {day}: {_total(generated.record['lines'])} lines in {len(files)} file(s), "
                  f"{_total(generated.record['bad'])} bad on purpose")
    return 0


def summary(args: argparse.Namespace) -> int:
    """Dataset, layer, partitions and rows of every table, from the Delta logs (no scan)."""
    import pyarrow as pa
    from deltalake import DeltaTable

    from orchestration.definitions import DATASETS

    config = LakehouseConfig.from_env()
    rows = []
    tables = [(d.domain, d.name, d.layer) for d in DATASETS]
    tables += [(d.domain, d.name, "quarantine") for d in DATASETS if d.has_quarantine]
    order = ("raw", "processed", "quarantine", "curated")
    for domain, name, layer in sorted(tables, key=lambda table: (table[0], order.index(table[2]), table[1])):
        uri = config.table_uri(layer, domain, name)
        if not DeltaTable.is_deltatable(uri, storage_options=config.storage_options):
            rows.append((f"{domain}.{name}", layer, "-", "missing"))
            continue
        actions = pa.table(DeltaTable(uri, storage_options=config.storage_options).get_add_actions(flatten=True))
        partitions = sorted({str(day) for day in actions.column("partition.dt").to_pylist()})
        span = f"{len(partitions)} ({partitions[0]}..{partitions[-1]})" if partitions else "0"
        rows.append((f"{domain}.{name}", layer, span,
                     str(sum(n or 0 for n in actions.column("num_records").to_pylist()))))
    print_table(("dataset", "layer", "partitions", "rows"), rows)
    return 0


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(value)) for value in column) for column in zip(header, *rows)]
    for line in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(str(value).ljust(width) for value, width in zip(line, widths)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="write synthetic landing files for some days")
    gen.add_argument("--domain", action="append", choices=sorted(GENERATORS),
                     help="a domain to generate (repeatable; default: all)")
    gen.add_argument("--start", default=os.environ.get("LAKEHOUSE_START_DATE", "2024-01-01"))
    gen.add_argument("--days", type=int, default=7)
    gen.add_argument("--rows", type=int, default=None, help="lines per day (default LAKEHOUSE_EVENTS_PER_DAY or 5000)")
    gen.add_argument("--seed", type=int, default=7)
    gen.set_defaults(handler=generate)
    summ = commands.add_parser("summary", help="print every table's partitions and rows")
    summ.set_defaults(handler=summary)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
