"""Benchmark: one events partition of N rows, landing -> raw -> processed -> curated, in a fresh lake.

Runs the real Dagster job in process (real S3, real engine) `--runs` times, each in
a fresh lake root, and prints the median seconds and rows/s per layer and end to
end, the peak memory of the process (the Sail engine runs inside it), and the
ratio against a baseline measured in the same invocation: the same landing lines
written straight to one Delta table by delta-rs (no engine, no parsing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

DAY = dt.date(2024, 1, 1)
LAYERS = {
    "raw": "raw__events__",
    "processed + quarantine": "processed__events__",
    "curated (3 tables)": "curated__events__",
}


def _pipeline_run(instance) -> dict[str, float]:
    """Seconds per layer (from Dagster's step events) and end to end."""
    from dagster import DagsterEventType

    from orchestration.definitions import defs

    started = time.perf_counter()
    result = defs.resolve_job_def("events_daily").execute_in_process(
        instance=instance, partition_key=DAY.isoformat()
    )
    total = time.perf_counter() - started
    assert result.success
    step_seconds: dict[str, float] = {}
    begun: dict[str, float] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            begun[event.step_key] = entry.timestamp
        elif event.event_type == DagsterEventType.STEP_SUCCESS:
            step_seconds[event.step_key] = entry.timestamp - begun[event.step_key]
    figures = {
        layer: sum(s for step, s in step_seconds.items() if step.startswith(prefix))
        for layer, prefix in LAYERS.items()
    }
    figures["end to end"] = total
    return figures


def _baseline_run(config) -> float:
    """Landing lines -> one Delta table with delta-rs: the cost of moving the bytes, nothing else."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from lakehouse import landing, storage

    started = time.perf_counter()
    files = landing.landing_files(config, "events", [DAY], "events")
    tables = [
        part
        for uri in files[DAY]
        for part in landing.numbered_lines(DAY, uri, [storage.read_bytes(config, uri)])
        if isinstance(part, pa.Table)
    ]
    write_deltalake(
        f"{config.root}/baseline/events",
        pa.concat_tables(tables),
        partition_by=["dt"],
        mode="overwrite",
        storage_options=config.storage_options,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import dagster as dg

    from lakehouse import storage
    from lakehouse.config import LakehouseConfig
    from synthetic.events import generate_day

    base = os.environ.get("LAKEHOUSE_ROOT", "s3://lakehouse").rstrip("/") + f"/_bench/{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    generated = generate_day(DAY, args.rows)
    print(
        f"generated {args.rows:,} landing lines in {time.perf_counter() - started:.1f} s "
        f"({generated.record['files']} files); lake {base}"
    )

    home = Path(tempfile.mkdtemp(prefix="bench-dagster-"))
    shutil.copy(Path(__file__).resolve().parents[1] / "infra" / "dagster.yaml", home / "dagster.yaml")
    runs, baselines = [], []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for run in range(args.runs):
            os.environ["LAKEHOUSE_ROOT"] = f"{base}/run{run}"
            config = LakehouseConfig.from_env()
            # Written, not copied: SeaweedFS serves server-side copies several times slower.
            generated.write(config, "events")
            baselines.append(_baseline_run(config))
            runs.append(_pipeline_run(instance))
            print(
                f"run {run + 1}: "
                + ", ".join(f"{k} {v:.2f} s" for k, v in runs[-1].items())
                + f"; baseline {baselines[-1]:.2f} s"
            )
    shutil.rmtree(home, ignore_errors=True)
    storage.delete_dir(LakehouseConfig.from_env(), base)

    baseline = statistics.median(baselines)
    print(f"\nmedian of {args.runs} runs, {args.rows:,} rows, one partition")
    print(f"{'stage':<24}{'seconds':>10}{'rows/s':>14}{'x baseline':>12}")
    for stage in runs[0]:
        seconds = statistics.median(run[stage] for run in runs)
        print(f"{stage:<24}{seconds:>10.2f}{args.rows / seconds:>14,.0f}{seconds / baseline:>12.2f}")
    print(f"{'baseline (delta-rs copy)':<24}{baseline:>10.2f}{args.rows / baseline:>14,.0f}{1.0:>12.2f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS of this process, engine included): {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
