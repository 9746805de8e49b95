"""Synthetic landing data: one generator module per domain, one writer for all."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lakehouse import storage
from lakehouse.config import LakehouseConfig

LINES_PER_FILE = 250_000


def dumps(record: dict) -> str:
    """One compact JSON line."""
    return json.dumps(record, separators=(",", ":"))


def iso_millis(ts: dt.datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a Z, as upstream systems send it."""
    return (
        f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}."
        f"{ts.microsecond // 1000:03d}Z"
    )


def scatter(rng: random.Random, lines: list[str], extra: list[str]) -> list[str]:
    """`extra` inserted at random positions of `lines` (the order of both kept)."""
    positions = sorted(rng.randrange(len(lines) + 1) for _ in extra)
    merged: list[str] = []
    previous = 0
    for position, line in zip(positions, extra):
        merged.extend(lines[previous:position])
        merged.append(line)
        previous = position
    return merged + lines[previous:]


def split_files(lines: list[str]) -> list[list[str]]:
    """A day's lines as landing files of at most LINES_PER_FILE lines (one empty file for no lines)."""
    return [lines[i : i + LINES_PER_FILE] for i in range(0, len(lines), LINES_PER_FILE)] or [[]]


@dataclass
class GeneratedDay:
    """One day of one domain's landing data: lines per file per source, and what was written."""

    day: dt.date
    sources: dict[str, list[list[str]]]
    record: dict = field(default_factory=dict)
    extension: str = "jsonl"

    def write(self, config: LakehouseConfig, domain: str) -> list[str]:
        return write_landing(config, domain, self.day, self.sources, self.record, self.extension)


def record_uri(config: LakehouseConfig, domain: str, day: dt.date) -> str:
    """Where the generator's record of a day lives (outside the landing folder the raw layer reads)."""
    return f"{config.root}/landing/_generator/{domain}/dt={day.isoformat()}.json"


def write_landing(
    config: LakehouseConfig,
    domain: str,
    day: dt.date,
    sources: Mapping[str, Sequence[Sequence[str]]],
    record: dict,
    extension: str = "jsonl",
) -> list[str]:
    """Replace the day's landing folder with each source's files, `<source>-NNNNN.<ext>` (idempotent)."""
    folder = config.landing_uri(domain, day)
    storage.delete_dir(config, folder)
    written = []
    for source, files in sources.items():
        for index, lines in enumerate(files):
            uri = f"{folder}/{source}-{index:05d}.{extension}"
            storage.write_text(config, uri, "".join(line + "\n" for line in lines))
            written.append(uri)
    storage.write_text(config, record_uri(config, domain, day), json.dumps(record, indent=2))
    return written


def read_record(config: LakehouseConfig, domain: str, day: dt.date) -> dict:
    return json.loads(storage.read_text(config, record_uri(config, domain, day)))
