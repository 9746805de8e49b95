"""Landing files -> numbered lines the engine can read.

Sail has no `input_file_name`, and its `wholetext` and `binaryFile` readers split
large files into byte ranges (a 3 MB file came back as two half-files, or twice),
so neither the file nor the line number of a landing line can come from the
engine. The lines are numbered here, one pass over each file, and staged as
Parquet next to the lake; the engine then reads the staged Parquet, which it
splits correctly, on one machine or a cluster.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakehouse import storage
from lakehouse.config import LakehouseConfig

LINES_SCHEMA = pa.schema([
    pa.field("dt", pa.date32()), pa.field("source_file", pa.string()), pa.field("line_number", pa.int32()),
    pa.field("line", pa.large_string()),
])
LINES_DDL = "dt date, source_file string, line_number int, line string"


def landing_files(config: LakehouseConfig, domain: str, days: Sequence[dt.date], source: str,
                  extension: str = "jsonl") -> dict[dt.date, list[str]]:
    """The `<source>-*.<extension>` files of each day's landing folder."""
    found = {}
    for day in days:
        uris = storage.list_files(config, config.landing_uri(domain, day), suffix=f".{extension}")
        found[day] = [uri for uri in uris if uri.rsplit("/", 1)[-1].startswith(f"{source}-")]
    return found


_LANDING_FILE = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/([^/]+)$")


def source_files(config: LakehouseConfig, domain: str, source: str) -> dict[str, tuple[dt.date, int]]:
    """URI -> (day, size) of every landing file of one source, on every day (retention, erasure)."""
    found = {}
    for uri, size in storage.list_tree(config, config.landing_uri(domain)).items():
        match = _LANDING_FILE.search(uri)
        if match and match.group(2).startswith(f"{source}-"):
            found[uri] = (dt.date.fromisoformat(match.group(1)), size)
    return found


def numbered_lines(day: dt.date, uri: str, content: bytes) -> pa.Table:
    """One row per line of the file, numbered from 1; the text after the final newline is not a line.

    Split by Arrow compute: building the array from Python strings is ten times slower.
    """
    lines = pc.split_pattern(pa.array([content], pa.large_binary()), b"\n")[0].values
    if len(lines) and len(lines[-1].as_py()) == 0:
        lines = lines.slice(0, len(lines) - 1)
    if b"\r" in content:
        lines = pc.replace_substring_regex(lines, "\r$", "")
    count = len(lines)
    return pa.table([
        pa.repeat(pa.scalar(day, pa.date32()), count),
        pa.repeat(pa.scalar(uri, pa.string()), count),
        pa.array(np.arange(1, count + 1, dtype=np.int32)),
        lines.cast(pa.large_string()),
    ], schema=LINES_SCHEMA)


@contextmanager
def staging_folder(config: LakehouseConfig, domain: str) -> Iterator[str]:
    """A fresh folder under `<root>/_staging/` for intermediate files, removed afterwards whatever happens."""
    folder = f"{config.root}/_staging/{domain}/{uuid.uuid4().hex}"
    try:
        yield folder
    finally:
        storage.delete_dir(config, folder)


@contextmanager
def staged_lines(config: LakehouseConfig, domain: str, files: dict[dt.date, list[str]]) -> Iterator[str | None]:
    """Stage the files' numbered lines as Parquet; yields the folder (None if there are no files)."""
    filesystem = storage.filesystem(config)
    with staging_folder(config, domain) as folder:
        staged = 0
        for day, uris in files.items():
            for uri in uris:
                table = numbered_lines(day, uri, storage.read_bytes(config, uri))
                path = storage.fs_path(f"{folder}/part-{staged:05d}.parquet")
                if not config.is_s3:
                    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
                pq.write_table(table, path, filesystem=filesystem)
                staged += 1
        yield folder if staged else None
