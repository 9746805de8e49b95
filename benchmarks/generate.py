"""How fast each domain's generator makes a day of landing lines (issue #14: 1M lines in at most 5 s).

`python -m benchmarks.generate --rows 1000000 --runs 3 [--domains events,iot,...]` times
`synthetic.<domain>.generate_day(day, rows)` only (nothing is written to S3), each domain in its own
process so that its peak RSS is its own, and prints per domain the median seconds of the runs, lines/s and
MB/s of landing bytes (every source's lines, newline included) and the process's peak RSS (the interpreter
and the imports included; `base` is the RSS before the first run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import resource
import statistics
import subprocess
import sys
import time

DAY = dt.date(2024, 1, 1)
DOMAINS = ("events", "iot", "commerce", "finance", "ai_ops")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _measure(domain: str, rows: int, runs: int) -> dict:
    """Run in the child process: `runs` timed calls of the domain's generate_day."""
    generator = importlib.import_module(f"synthetic.{domain}")
    from synthetic.population import population

    population(7)  # built once per process and cached: not a cost of a day
    base = _rss_mb()
    seconds, lines, size = [], 0, 0
    for _ in range(runs):
        started = time.perf_counter()
        generated = generator.generate_day(DAY, rows)
        seconds.append(time.perf_counter() - started)
        files = [f for source in generated.sources.values() for f in source]
        lines = sum(len(f) for f in files)
        size = sum(len(line.encode()) + 1 for f in files for line in f)
        del generated, files
    median = statistics.median(seconds)
    return {
        "domain": domain,
        "rows": rows,
        "runs": seconds,
        "seconds": median,
        "lines": lines,
        "lines_per_s": lines / median,
        "mb": size / 1e6,
        "mb_per_s": size / 1e6 / median,
        "base_rss_mb": base,
        "peak_rss_mb": _rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="also print each domain's figures as JSON")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.child, args.rows, args.runs)))
        return
    print(f"{'domain':<10}{'rows':>11}{'median s':>10}{'lines/s':>12}{'MB':>8}{'MB/s':>8}{'peak RSS':>10}")
    for domain in [d.strip() for d in args.domains.split(",") if d.strip()]:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.generate", "--child", domain]
            + ["--rows", str(args.rows), "--runs", str(args.runs)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"{domain} failed:\n{done.stderr[-4000:]}")
        f = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{domain:<10}{f['rows']:>11,}{f['seconds']:>10.2f}{f['lines_per_s']:>12,.0f}"
            f"{f['mb']:>8.0f}{f['mb_per_s']:>8.1f}{f['peak_rss_mb']:>8.0f}MB"
            + (f"  {json.dumps(f)}" if args.json else ""),
            flush=True,
        )


if __name__ == "__main__":
    main()
