"""One contender of the bench suite, run in its own process: `python -m benchmarks.pipeline NAME`.

`sail` and `spark` run the domain's daily Dagster job in process (real S3, real engine, every quality
gate, the catalog, lineage and OpenLineage on) over the landing data already in `LAKEHOUSE_ROOT`;
`spark` differs only by `LAKEHOUSE_SPARK_REMOTE` (Apache Spark + Delta, infra/spark_connect.py). `peer`
is benchmarks/peer.py (events only); `baseline` writes the landing lines straight to one Delta table
with delta-rs (no engine, no parsing): the cost of moving the bytes. The last line printed is JSON:
seconds per stage, the counts the suite reconciles, and this process's peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

STAGES = ("raw", "processed", "curated")
GATED = ("processed", "curated")  # the layers whose steps stage rows and gate them before a write


@contextlib.contextmanager
def feast_state_in(folder: Path) -> Iterator[None]:
    """Feast's registry, online store and snapshots in `folder`, for the bench's own lake root: under the
    state dir they are shared by every root (the dev lake's online rows, an earlier bench's), so a bench
    would measure, and overwrite, another lake's features."""
    previous = os.environ.get("LAKEHOUSE_FEAST_DIR")
    os.environ["LAKEHOUSE_FEAST_DIR"] = str(folder)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("LAKEHOUSE_FEAST_DIR", None)
        else:
            os.environ["LAKEHOUSE_FEAST_DIR"] = previous


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    """Seconds of every step, from Dagster's STEP_START and STEP_SUCCESS events."""
    from dagster import DagsterEventType

    begun: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            begun[event.step_key] = entry.timestamp
        elif event.event_type == DagsterEventType.STEP_SUCCESS:
            seconds[event.step_key] = entry.timestamp - begun[event.step_key]
    return seconds


def _table_rows(config, path: str, day: dt.date) -> int:
    from deltalake import DeltaTable

    from lakehouse import delta

    table = DeltaTable(config.table_uri(*path.split("/")), storage_options=config.storage_options)
    return delta.rows_per_partition(table, [day])[day]


def _counts(config, domain: str, day: dt.date, metadata: dict[str, dict]) -> dict[str, int]:
    """Rows of every table the job wrote, and the duplicates its processed steps removed."""
    from assets import DATASETS

    counts = {}
    for dataset in (d for d in DATASETS if d.domain == domain):
        counts[dataset.path] = _table_rows(config, dataset.path, day)
        if dataset.has_quarantine:
            counts[dataset.quarantine_path] = _table_rows(config, dataset.quarantine_path, day)
        if dataset.deduplicate_on:
            counts[f"{dataset.path}:duplicates"] = int(
                metadata.get("/".join(dataset.key_path), {}).get("duplicates_removed", 0)
            )
    return counts


def _gate_seconds(domain: str, metadata: dict[str, dict]) -> dict[str, float]:
    """Seconds the quality gates of each derived layer took (their steps' `quality_seconds`)."""
    from assets import DATASETS

    gated = [d for d in DATASETS if d.domain == domain and d.layer in GATED]
    return {
        f"{layer} gate": sum(
            float(metadata.get("/".join(d.key_path), {}).get("quality_seconds", 0))
            for d in gated
            if d.layer == layer
        )
        for layer in GATED
    }


def pipeline(domain: str, day: dt.date) -> dict:
    """The domain's daily job, in process; seconds per layer summed over its steps."""
    import dagster as dg

    from lakehouse.config import LakehouseConfig
    from orchestration.definitions import defs

    home = Path(tempfile.mkdtemp(prefix="bench-dagster-"))
    shutil.copy(Path(__file__).resolve().parents[1] / "infra" / "dagster.yaml", home / "dagster.yaml")
    try:
        with feast_state_in(home / "feast"), dg.DagsterInstance.from_config(str(home)) as instance:
            job = defs.resolve_job_def(f"{domain}_daily")
            started = time.perf_counter()
            result = job.execute_in_process(instance=instance, partition_key=day.isoformat())
            total = time.perf_counter() - started
            if not result.success:
                raise RuntimeError(f"{domain}_daily failed in the bench")
            steps = _step_seconds(instance, result.run_id)
            materialized = [event.materialization for event in result.get_asset_materialization_events()]
            metadata = {
                "/".join(m.asset_key.path): {k: v.value for k, v in m.metadata.items()} for m in materialized
            }
    finally:
        shutil.rmtree(home, ignore_errors=True)
    seconds = {
        stage: sum(s for step, s in steps.items() if step.startswith(f"{stage}__{domain}__"))
        for stage in STAGES
    }
    seconds["end to end"] = total
    seconds["steps"] = sum(steps.values())
    seconds |= _gate_seconds(domain, metadata)
    return {"seconds": seconds, "counts": _counts(LakehouseConfig.from_env(), domain, day, metadata)}


def baseline(domain: str, day: dt.date) -> dict:
    """Landing lines -> one Delta table with delta-rs: the cost of moving the bytes, nothing else."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from assets import DATASETS
    from lakehouse import landing, storage
    from lakehouse.config import LakehouseConfig

    config = LakehouseConfig.from_env()
    started = time.perf_counter()
    rows = 0
    for source in sorted({d.landing_source for d in DATASETS if d.domain == domain and d.layer == "raw"}):
        files = landing.landing_files(config, domain, [day], source)
        tables = [
            part
            for uri in files[day]
            for part in landing.numbered_lines(day, uri, [storage.read_bytes(config, uri)])
            if isinstance(part, pa.Table)
        ]
        write_deltalake(
            f"{config.root}/baseline/{domain}/{source}",
            pa.concat_tables(tables),
            partition_by=["dt"],
            mode="overwrite",
            storage_options=config.storage_options,
        )
        rows += sum(t.num_rows for t in tables)
    return {"seconds": {"end to end": time.perf_counter() - started}, "counts": {"landing lines": rows}}


def peer(domain: str, day: dt.date) -> dict:
    from benchmarks import peer as single_machine
    from lakehouse.config import LakehouseConfig

    if domain != "events":
        raise ValueError(f"the peer implements the events domain only, not {domain}")
    result = single_machine.run(LakehouseConfig.from_env(), domain, day, run_id="bench-peer")
    return {"seconds": result.seconds, "counts": result.counts}


CONTENDERS = {"sail": pipeline, "spark": pipeline, "peer": peer, "baseline": baseline}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("contender", choices=sorted(CONTENDERS))
    parser.add_argument("--domain", default="events")
    parser.add_argument("--day", type=dt.date.fromisoformat, required=True)
    args = parser.parse_args()
    figures = CONTENDERS[args.contender](args.domain, args.day)
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
