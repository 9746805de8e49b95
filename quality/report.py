"""What `lakehouse quality` prints: the metrics tables read back through their Delta logs (small tables)."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
from deltalake import DeltaTable

from lakehouse.config import LakehouseConfig
from lakehouse.datasets import Dataset
from quality import metrics


def _weakest(rows: list[dict], name: str) -> str:
    values = [r[name] for r in rows if r[name] is not None]
    return f"{min(values):.2%}" if values else "-"


def quality_lines(
    config: LakehouseConfig, datasets: Iterable[Dataset], domain: str | None = None
) -> list[tuple[str, ...]]:
    """Per processed and curated dataset: partitions measured, the latest run's status and checks, rows
    quarantined over all partitions, and the weakest value of each metric."""
    lines: list[tuple[str, ...]] = []
    for dataset in datasets:
        if dataset.layer == "raw" or (domain and dataset.domain != domain):
            continue
        uri = config.table_uri(*metrics.metrics_path(dataset).split("/"))
        name = dataset.path.replace("/", ".")
        if not DeltaTable.is_deltatable(uri, storage_options=config.storage_options):
            lines.append((name, "0", "not measured", "-", "-", "-", "-", "-", "-", "-"))
            continue
        rows = pa.table(
            DeltaTable(uri, storage_options=config.storage_options).to_pyarrow_table()
        ).to_pylist()
        if not rows:
            lines.append((name, "0", "not measured", "-", "-", "-", "-", "-", "-", "-"))
            continue
        latest = max(rows, key=lambda r: r["measured_at"])
        lines.append(
            (
                name,
                str(len(rows)),
                latest["status"],
                str(latest["checks_passed"]),
                str(latest["checks_failed"]),
                str(sum(r["quarantined"] for r in rows)),
                _weakest(rows, "completeness"),
                _weakest(rows, "validity"),
                _weakest(rows, "uniqueness"),
                _weakest(rows, "consistency"),
            )
        )
    return lines
