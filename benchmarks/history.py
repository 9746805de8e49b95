"""Flat in history: does a day cost the same with 60 days behind it as with one?

In a fresh lake root (with Feast state of its own), each domain's daily job in turn runs day 1, then day
2 (timed), then days 3..60 in one run (a single-run backfill), then day 61 (timed); each day's
landing data is generated at `--rows` lines per domain. A timed day runs `--repeats` times (each run
replaces the same partitions), and its figures are medians: one run of a 0.1 s step is noise. Printed and
written to `<state dir>/bench/history-latest.json`: each step's seconds on day 2 and day 61 and their
ratio (the target is at most 1.2), and per run the wall time, the sum of its steps and the share of the
run outside its steps (orchestration overhead).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.pipeline import _step_seconds, feast_state_in

FIRST = dt.date(2024, 1, 1)
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _run(instance, job, first: dt.date, last: dt.date) -> dict:
    """One run of `job` over first..last; its wall seconds and each step's."""
    tags = {} if first == last else {RANGE_START: first.isoformat(), RANGE_END: last.isoformat()}
    started = time.perf_counter()
    result = job.execute_in_process(
        instance=instance, partition_key=first.isoformat() if first == last else None, tags=tags
    )
    wall = time.perf_counter() - started
    if not result.success:
        raise RuntimeError(f"{job.name} {first}..{last} failed")
    steps = _step_seconds(instance, result.run_id)
    return {"wall": wall, "steps": steps, "outside_steps": (wall - sum(steps.values())) / wall}


def _median_run(runs: list[dict]) -> dict:
    """Per figure, the median of runs of the same job and days (a run again replaces the same partitions)."""
    return {
        "wall": statistics.median(r["wall"] for r in runs),
        "steps": {step: statistics.median(r["steps"][step] for r in runs) for step in runs[0]["steps"]},
        "outside_steps": statistics.median(r["outside_steps"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200, help="landing lines per domain and day")
    parser.add_argument("--days", type=int, default=61)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each timed day (medians)")
    parser.add_argument("--domains", help="comma-separated, in the order they run (default: every domain)")
    args = parser.parse_args()
    base = os.environ.get("LAKEHOUSE_ROOT", "s3://lakehouse").rstrip("/")
    os.environ["LAKEHOUSE_ROOT"] = f"{base}/_bench_history/{uuid.uuid4().hex[:8]}"

    import dagster as dg

    from lakehouse import storage
    from lakehouse.config import LakehouseConfig
    from orchestration.definitions import DOMAINS, LANDS, defs

    # every domain by default, in declaration order: a domain built from others' tables (usage) after them
    domains = args.domains.split(",") if args.domains else list(DOMAINS)

    config = LakehouseConfig.from_env()
    days = [FIRST + dt.timedelta(days=n) for n in range(args.days)]
    started = time.perf_counter()
    landed = [d for d in domains if LANDS[d]]
    for domain in landed:
        generate_day = importlib.import_module(f"synthetic.{domain}").generate_day
        for day in days:
            generate_day(day, args.rows).write(config, domain)
    print(
        f"generated {args.days} days x {len(landed)} domains x {args.rows} lines in "
        f"{time.perf_counter() - started:.0f} s; lake {config.root}"
    )

    home = Path(tempfile.mkdtemp(prefix="bench-history-"))
    shutil.copy(Path(__file__).resolve().parents[1] / "infra" / "dagster.yaml", home / "dagster.yaml")
    timed: dict[str, dict[str, dict]] = {}
    try:
        with feast_state_in(home / "feast"), dg.DagsterInstance.from_config(str(home)) as instance:
            # A domain's whole history before the next domain's: its day 2 and day 61 are minutes apart,
            # not the whole bench, so the shared machine's load drifts less between them. Only usage
            # reads other domains' tables, and it comes last.
            for job in (defs.resolve_job_def(f"{domain}_daily") for domain in domains):
                for label, first, last, times in (
                    ("day 1", days[0], days[0], 1),
                    ("day 2", days[1], days[1], args.repeats),
                    (f"days 3..{len(days) - 1}", days[2], days[-2], 1),
                    (f"day {len(days)}", days[-1], days[-1], args.repeats),
                ):
                    runs_of_day = [_run(instance, job, first, last) for _ in range(times)]
                    timed.setdefault(label, {})[job.name] = _median_run(runs_of_day)
                print(
                    f"{job.name}: "
                    + ", ".join(f"{label} {t[job.name]['wall']:.1f} s" for label, t in timed.items())
                )
    finally:
        shutil.rmtree(home, ignore_errors=True)
        storage.delete_dir(config, config.root)

    early, late = timed["day 2"], timed[f"day {len(days)}"]
    steps = {
        step: {
            "day 2": round(early[job]["steps"][step], 3),
            f"day {len(days)}": round(late[job]["steps"][step], 3),
            "ratio": round(late[job]["steps"][step] / max(early[job]["steps"][step], 1e-3), 2),
        }
        for job in early
        for step in early[job]["steps"]
        if step in late[job]["steps"]
    }
    runs = {
        label: {
            job: {"wall": round(r["wall"], 2), "outside_steps": round(r["outside_steps"], 3)}
            for job, r in by_job.items()
        }
        for label, by_job in timed.items()
    }
    print(f"\n{'step':<60}{'day 2':>8}{'day ' + str(len(days)):>8}{'ratio':>7}")
    late_label = f"day {len(days)}"
    for step, figures in sorted(steps.items(), key=lambda item: -item[1]["ratio"]):
        print(f"{step[:59]:<60}{figures['day 2']:>8.2f}{figures[late_label]:>8.2f}{figures['ratio']:>7.2f}")
    for label, by_job in runs.items():
        print(
            label
            + ": "
            + ", ".join(
                f"{j} {r['wall']} s ({r['outside_steps']:.0%} outside steps)" for j, r in by_job.items()
            )
        )
    out = config.state_dir / "bench"
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "rows": args.rows,
        "days": args.days,
        "repeats": args.repeats,
        "steps": steps,
        "runs": runs,
        "load": os.getloadavg(),
    }
    (out / "history-latest.json").write_text(json.dumps(summary, indent=2))
    over = {step: f["ratio"] for step, f in steps.items() if f["ratio"] > 1.2}
    print(f"\nsteps over 1.2x: {over or 'none'}")


if __name__ == "__main__":
    main()
