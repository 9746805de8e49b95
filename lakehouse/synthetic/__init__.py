"""Synthetic landing data: one generator module per domain, one writer for all."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from lakehouse import storage
from lakehouse.config import LakehouseConfig


def record_uri(config: LakehouseConfig, domain: str, day: dt.date) -> str:
    """Where the generator's record of a day lives (outside the landing folder the raw layer reads)."""
    return f"{config.root}/landing/_generator/{domain}/dt={day.isoformat()}.json"


def write_landing(config: LakehouseConfig, domain: str, day: dt.date, files: Sequence[Sequence[str]],
                  record: dict, extension: str = "jsonl") -> list[str]:
    """Replace the day's landing folder with `files` (idempotent) and store the record."""
    folder = config.landing_uri(domain, day)
    storage.delete_dir(config, folder)
    written = []
    for index, lines in enumerate(files):
        uri = f"{folder}/part-{index:05d}.{extension}"
        storage.write_text(config, uri, "".join(line + "\n" for line in lines))
        written.append(uri)
    storage.write_text(config, record_uri(config, domain, day), json.dumps(record, indent=2))
    return written


def read_record(config: LakehouseConfig, domain: str, day: dt.date) -> dict:
    return json.loads(storage.read_text(config, record_uri(config, domain, day)))
