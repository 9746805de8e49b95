"""`make bench`: the suite in one invocation, every contender on the same landing data.

Per run, in a fresh lake root each: (a) our pipeline on Sail, (b) the same on Apache Spark + Delta (the
local cluster, started here when it is not running), (c) the DuckDB + delta-rs peer (events only) and
(d) the delta-rs copy baseline, each in its own process so that its peak RSS is its own. The peer's
counts must equal ours (processed, quarantined, duplicates, curated rows) and the curated values must
agree, or the suite fails. Output: medians of `--runs` runs per stage (seconds, rows/s, MB/s of landing
bytes, peak RSS), the ratios ours/peer, ours/Spark and ours/baseline, as JSON and a PNG in
`<state dir>/bench/` (`latest.json`, `latest.png`); `--readme` writes the table into README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from benchmarks.pipeline import GATED

DAY = dt.date(2024, 1, 1)
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"
PIPELINES = ("sail", "spark")


def _contender(name: str, domain: str, env: dict[str, str]) -> dict:
    """Run one contender in its own process; its figures are the last line it prints."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.pipeline", name, "--domain", domain, "--day", DAY.isoformat()],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench contender {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peer_agrees(ours: dict[str, int], peer: dict[str, int], domain: str) -> list[str]:
    """Where the peer's counts differ from ours: empty when they reproduce the same day."""
    pairs = {
        "processed": f"processed/{domain}/events",
        "quarantined": f"quarantine/{domain}/events",
        "duplicates": f"processed/{domain}/events:duplicates",
        **{
            name: f"curated/{domain}/{name}"
            for name in ("hourly_event_counts", "daily_active_users", "daily_order_revenue")
        },
    }
    return [
        f"{name}: peer {peer[name]}, ours {ours[path]}"
        for name, path in pairs.items()
        if peer[name] != ours[path]
    ]


def _comparable(frame, columns):
    """Rows as text, sorted; timestamps as naive UTC (Sail reads them zoned, delta-rs as written)."""
    import pandas as pd

    frame = frame[columns].copy()
    for column in columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
        frame[column] = frame[column].astype(str)
    return frame.sort_values(columns).reset_index(drop=True)


PROTECTED = ["event_id", "user_id", "email", "first_name", "last_name", "ip_address", "payload", "metadata"]


def _processed_sample_agrees(config, domain: str, prefix: str = "00") -> list[str]:
    """The peer tokenized, masked and nulled personal data exactly as we did: the processed rows of the
    event ids starting with `prefix` (`00`: about 1 in 256) compared whole."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    samples = []
    for uri in (config.table_uri("processed", domain, "events"), f"{config.root}/peer/{domain}/processed"):
        table = DeltaTable(uri, storage_options=config.storage_options).to_pyarrow_table(columns=PROTECTED)
        sample = table.filter(pc.starts_with(table.column("event_id"), prefix)).to_pandas()
        samples.append(sample.sort_values("event_id").reset_index(drop=True))
    ours, theirs = samples
    if len(ours) == 0 or not ours.equals(theirs):
        return [f"processed: the peer's protected columns differ from ours ({len(ours)} sampled rows)"]
    return []


def _curated_values_agree(config, domain: str) -> list[str]:
    """The peer's curated tables hold our values (sorted rows compared whole)."""
    from deltalake import DeltaTable

    differences = []
    for name in ("daily_active_users", "daily_order_revenue", "hourly_event_counts"):
        ours, theirs = (
            DeltaTable(uri, storage_options=config.storage_options).to_pandas()
            for uri in (config.table_uri("curated", domain, name), f"{config.root}/peer/{domain}/{name}")
        )
        columns = list(ours.columns)
        if sorted(columns) != sorted(theirs.columns):
            differences.append(f"{name}: peer columns {sorted(theirs.columns)}, ours {sorted(columns)}")
            continue
        ours, theirs = _comparable(ours, columns), _comparable(theirs, columns)
        if not ours.equals(theirs):
            unequal = (ours != theirs).any(axis=1)
            differences.append(
                f"{name}: values differ, first ours {ours[unequal].head(1).to_dict('records')}, "
                f"peer {theirs[unequal].head(1).to_dict('records')}"
            )
    return differences


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run["seconds"][key] for run in runs)


def summarize(figures: dict[str, list[dict]], rows: int, landing_bytes: int) -> dict:
    """Medians per contender and stage, with rows/s and MB/s, and the ratios of ours to the others."""
    summary: dict = {"contenders": {}, "ratios": {}}
    for name, runs in figures.items():
        stages = {}
        for stage in runs[0]["seconds"]:
            seconds = _median(runs, stage)
            stages[stage] = {
                "seconds": round(seconds, 3),
                "rows_per_s": round(rows / seconds) if seconds else None,
                "mb_per_s": round(landing_bytes / 1e6 / seconds, 2) if seconds else None,
            }
        summary["contenders"][name] = {
            "stages": stages,
            "peak_rss_mib": round(statistics.median(r["peak_rss_mib"] for r in runs)),
            "runs_seconds": [round(r["seconds"]["end to end"], 3) for r in runs],
        }
    ours = figures.get("sail")
    if ours:
        for other in ("peer", "spark", "baseline"):
            if other in figures:
                summary["ratios"][f"sail/{other}"] = round(
                    _median(ours, "end to end") / _median(figures[other], "end to end"), 2
                )
        if "baseline" in figures:
            summary["ratios"]["processed/baseline"] = round(
                _median(ours, "processed") / _median(figures["baseline"], "end to end"), 2
            )
        for layer in GATED:
            summary["ratios"][f"{layer}_gate_share"] = round(
                _median(ours, f"{layer} gate") / _median(ours, layer), 3
            )
        steps, total = _median(ours, "steps"), _median(ours, "end to end")
        summary["ratios"]["orchestration_share"] = round((total - steps) / total, 3)
    return summary


def table(summary: dict) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| contender | stage | seconds | rows/s | MB/s | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, entry in summary["contenders"].items():
        for stage, f in entry["stages"].items():
            if stage == "steps":
                continue
            lines.append(
                f"| {name} | {stage} | {f['seconds']:.2f} | {f['rows_per_s'] or 0:,} "
                f"| {f['mb_per_s'] or 0:.1f} "
                f"| {entry['peak_rss_mib']:,} |"
            )
    ratios = ", ".join(f"{k} {v}" for k, v in summary["ratios"].items())
    meta = summary["meta"]
    return "\n".join(
        [
            f"{meta['domain']}, {meta['rows']:,} landing lines, median of {meta['runs']} runs "
            f"({meta['finished']}); generator {meta['generate_seconds']:.1f} s.",
            "",
            *lines,
            "",
            f"Ratios (end to end unless named): {ratios}. Spark's peak RSS is its client's (the cluster's "
            "JVMs are apart). Runs per contender: "
            + ", ".join(
                f"{name} {len(entry['runs_seconds'])}" for name, entry in summary["contenders"].items()
            )
            + ".",
        ]
    )


def chart(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = ["raw", "processed", "curated", "end to end"]
    names = list(summary["contenders"])
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [summary["contenders"][name]["stages"].get(s, {}).get("seconds", 0) for s in stages]
        ax.bar([x + i * width for x in range(len(stages))], values, width, label=name)
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(stages))], stages)
    ax.set_ylabel("seconds (median)")
    meta = summary["meta"]
    ax.set_title(f"{meta['domain']}: {meta['rows']:,} lines, median of {meta['runs']} runs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_readme(summary: dict, readme: Path) -> None:
    """Replace the text between the bench markers of README.md with the latest table."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise SystemExit(
            f"{readme} has no {README_START} ... {README_END} markers to write the table between"
        )
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{table(summary)}\n{README_END}{tail}")


def _spark_url() -> str:
    from infra import spark_connect

    return spark_connect.url() or spark_connect.start()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--domain", default="events")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--contenders", default="sail,spark,peer,baseline")
    parser.add_argument(
        "--spark-runs",
        type=int,
        default=None,
        help="runs of the Spark contender (default --runs): it is slow",
    )
    parser.add_argument("--readme", action="store_true", help="also write the table into README.md")
    parser.add_argument("--table-only", action="store_true", help="print the table of the latest figures")
    args = parser.parse_args()

    from infra import local_s3
    from lakehouse import storage
    from lakehouse.config import LakehouseConfig

    out = LakehouseConfig.from_env().state_dir / "bench"
    readme = Path(__file__).resolve().parents[1] / "README.md"
    if args.table_only:
        summary = json.loads((out / "latest.json").read_text())
        write_readme(summary, readme) if args.readme else print(table(summary))
        return
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    if args.domain != "events" and "peer" in contenders:
        print(f"the peer implements the events domain only: left out for {args.domain}")
        contenders.remove("peer")

    generator = importlib.import_module(f"synthetic.{args.domain}")
    started = time.perf_counter()
    generated = generator.generate_day(DAY, args.rows)
    generate_seconds = time.perf_counter() - started
    landing_bytes = sum(
        len(line.encode()) + 1 for files in generated.sources.values() for f in files for line in f
    )
    print(
        f"generated {args.rows:,} {args.domain} lines ({landing_bytes / 1e6:.0f} MB) "
        f"in {generate_seconds:.1f} s"
    )

    base = os.environ.get("LAKEHOUSE_ROOT", "s3://lakehouse").rstrip("/") + f"/_bench/{uuid.uuid4().hex[:8]}"
    spark_url = _spark_url() if "spark" in contenders else None
    figures: dict[str, list[dict]] = {name: [] for name in contenders}
    for run in range(args.runs):
        roots = {name: f"{base}/run{run}/{'spark' if name == 'spark' else 'sail'}" for name in contenders}
        for root in sorted(set(roots.values())):
            os.environ["LAKEHOUSE_ROOT"] = root
            generated.write(
                LakehouseConfig.from_env(), args.domain
            )  # written: SeaweedFS serves copies slower
        for name in contenders:
            if name == "spark" and args.spark_runs is not None and run >= args.spark_runs:
                continue
            env = {**os.environ, "LAKEHOUSE_ROOT": roots[name]}
            env.pop("LAKEHOUSE_SPARK_REMOTE", None)
            if name == "spark" and spark_url:
                env["LAKEHOUSE_SPARK_REMOTE"] = spark_url
            figures[name].append(_contender(name, args.domain, env))
            print(
                f"run {run + 1} {name}: "
                + ", ".join(f"{k} {v:.2f} s" for k, v in figures[name][-1]["seconds"].items())
            )
        if "peer" in contenders and "sail" in contenders:
            os.environ["LAKEHOUSE_ROOT"] = roots["sail"]
            problems = _peer_agrees(figures["sail"][-1]["counts"], figures["peer"][-1]["counts"], args.domain)
            problems += _curated_values_agree(LakehouseConfig.from_env(), args.domain)
            problems += _processed_sample_agrees(LakehouseConfig.from_env(), args.domain)
            if problems:
                raise SystemExit("the peer does not reproduce our day:\n  " + "\n  ".join(problems))
        for root in sorted(set(roots.values())):
            os.environ["LAKEHOUSE_ROOT"] = root
            storage.delete_dir(LakehouseConfig.from_env(), root)
        embedded = local_s3.current()
        if embedded and LakehouseConfig.from_env().storage_env.get("AWS_ENDPOINT_URL") == embedded.endpoint:
            local_s3.vacuum()  # else every run leaves its GBs on the embedded S3's disk

    summary = summarize(figures, args.rows, landing_bytes)
    summary["meta"] = {
        "domain": args.domain,
        "rows": args.rows,
        "runs": args.runs,
        "landing_bytes": landing_bytes,
        "generate_seconds": round(generate_seconds, 2),
        "finished": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": os.getloadavg(),
    }
    summary["runs"] = figures
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    for path in (out / f"{args.domain}-{stamp}.json", out / "latest.json"):
        path.write_text(json.dumps(summary, indent=2, default=str))
    chart(summary, out / "latest.png")
    print()
    print(table(summary))
    print(f"\nJSON and chart: {out}/latest.json, {out}/latest.png")
    if args.readme:
        write_readme(summary, readme)


if __name__ == "__main__":
    main()
