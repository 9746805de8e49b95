"""Synthetic landing data: one generator module per domain, one writer for all."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from lakehouse import storage
from lakehouse.config import LakehouseConfig

LINES_PER_FILE = 250_000
DAY_MS = 86_400_000
_HEX_PAIRS = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype="<u2")


def dumps(record: dict) -> str:
    """One compact JSON line."""
    return json.dumps(record, separators=(",", ":"))


def iso_millis(ts: dt.datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a Z, as upstream systems send it."""
    return (
        f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}."
        f"{ts.microsecond // 1000:03d}Z"
    )


def numpy_rng(domain: str, seed: int, day: dt.date) -> np.random.Generator:
    """The generator of one (domain, seed, day): PCG64 seeded from a hash of them (stable across runs)."""
    key = f"{domain}-{seed}-{day.isoformat()}".encode()
    return np.random.Generator(np.random.PCG64(int.from_bytes(hashlib.sha256(key).digest()[:16], "big")))


def pick(rng: np.random.Generator, cum_weights: np.ndarray, n: int) -> np.ndarray:
    """`n` indices drawn by cumulative weights (what `random.choices(cum_weights=...)` draws, in bulk)."""
    drawn = np.searchsorted(cum_weights, rng.random(n) * cum_weights[-1], side="right")
    return np.minimum(drawn, len(cum_weights) - 1)


def rows_text(matrix: np.ndarray) -> list[str]:
    """The rows of an (n, width) array of ASCII bytes as n strings (one decode, then slices)."""
    n, width = matrix.shape
    text = np.ascontiguousarray(matrix).tobytes().decode("ascii")
    return [text[i : i + width] for i in range(0, n * width, width)]


def fixed_rows(n: int, *parts: bytes | np.ndarray) -> np.ndarray:
    """An (n, width) byte array of the `parts` side by side: constants (bytes) or (n, w) byte arrays."""
    widths = [len(p) if isinstance(p, bytes) else p.shape[1] for p in parts]
    out = np.empty((n, sum(widths)), dtype=np.uint8)
    at = 0
    for part, width in zip(parts, widths):
        out[:, at : at + width] = np.frombuffer(part, dtype=np.uint8) if isinstance(part, bytes) else part
        at += width
    return out


def hex_bytes(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    """(n, 2 * nbytes) random lower-case hex digits (ASCII)."""
    raw = np.frombuffer(rng.bytes(nbytes * n), dtype=np.uint8).reshape(n, nbytes)
    return _HEX_PAIRS[raw].view(np.uint8).reshape(n, 2 * nbytes)


def hex_strings(rng: np.random.Generator, n: int, nbytes: int) -> list[str]:
    """`n` random lower-case hex strings of `2 * nbytes` digits."""
    return rows_text(hex_bytes(rng, n, nbytes))


def uuid4_bytes(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 36) ASCII text of version-4 UUIDs: random bytes with the version and variant bits set."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    digits = _HEX_PAIRS[raw].view(np.uint8).reshape(n, 32)
    out = np.empty((n, 36), dtype=np.uint8)
    out[:, [8, 13, 18, 23]] = ord("-")
    for start, stop, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        out[:, at : at + stop - start] = digits[:, start:stop]
    return out


def uuid4_strings(rng: np.random.Generator, n: int) -> list[str]:
    """`n` version-4 UUIDs as text."""
    return rows_text(uuid4_bytes(rng, n))


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) zero-padded ASCII decimal digits of non-negative integers below 10**width."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((np.asarray(values, dtype=np.int64)[:, None] // powers) % 10 + ord("0")).astype(np.uint8)


def iso_millis_bytes(day: dt.date, ms: np.ndarray) -> np.ndarray:
    """(n, 24) ASCII `iso_millis` text of milliseconds of `day` (0 <= ms < DAY_MS): ...Thh:mm:ss.mmmZ."""
    ms = np.asarray(ms, dtype=np.int64)
    hours, rest = np.divmod(ms, 3_600_000)
    minutes, rest = np.divmod(rest, 60_000)
    seconds, millis = np.divmod(rest, 1000)
    n = len(ms)
    return fixed_rows(
        n,
        f"{day.isoformat()}T".encode(),
        _digits(hours, 2),
        b":",
        _digits(minutes, 2),
        b":",
        _digits(seconds, 2),
        b".",
        _digits(millis, 3),
        b"Z",
    )


def iso_millis_of_day(day: dt.date, ms: np.ndarray) -> list[str]:
    """Milliseconds of `day` as `iso_millis` text."""
    return rows_text(iso_millis_bytes(day, ms))


_TABLE = 1 << 17  # number texts looked up below this many units of the last decimal place


@lru_cache(maxsize=8)
def _number_table(places: int, fixed: bool) -> np.ndarray:
    """The text of k / 10**places for every k below _TABLE, as an object array: repr's shortest form, or
    exactly `places` decimals when `fixed`."""
    if places == 0:
        return np.array([str(k) for k in range(_TABLE)], dtype=object)
    scale = 10**places
    if fixed:
        fractions = [f".{k:0{places}d}" for k in range(scale)]
    else:
        fractions = [repr(k / scale)[1:] if k else ".0" for k in range(scale)]
    return np.array([f"{k // scale}{fractions[k % scale]}" for k in range(_TABLE)], dtype=object)


@lru_cache(maxsize=8)
def _negative_table(places: int, fixed: bool) -> np.ndarray:
    return np.array(["-" + text for text in _number_table(places, fixed).tolist()], dtype=object)


def number_text(values: np.ndarray, places: int, fixed: bool = False) -> list[str]:
    """`values` rounded to `places` decimals as text: `repr(round(value, places))`, or `f"{value:.2f}"`-like
    with `fixed` (`str(int)` for places 0). Float formatting is the slowest step of a line: texts come from
    a table where they can."""
    scaled = np.rint(np.asarray(values, dtype=np.float64) * 10**places).astype(np.int64)
    magnitude = np.abs(scaled)
    inside = magnitude < _TABLE
    at = np.where(inside, magnitude, 0)
    text = _number_table(places, fixed)[at]
    negative = np.flatnonzero(inside & (scaled < 0))
    if len(negative):
        text[negative] = _negative_table(places, fixed)[at[negative]]
    for i in np.flatnonzero(~inside).tolist():
        k = int(scaled[i])
        if places == 0:
            text[i] = str(k)
        else:
            text[i] = f"{k / 10**places:.{places}f}" if fixed else repr(k / 10**places)
    return text.tolist()


def json_safe(values: Sequence[str]) -> None:
    """Raise unless every value can be written between JSON quotes as it is (the templates do no escaping)."""
    for value in values:
        if json.dumps(value)[1:-1] != value:
            raise ValueError(f"{value!r} needs JSON escaping: the line templates would write invalid JSON")


def scatter_at(lines: list[str], extra: Sequence[str], positions: Sequence[int]) -> list[str]:
    """`lines` with extra[k] inserted before lines[positions[k]] (positions ascending, both orders kept)."""
    merged: list[str] = []
    previous = 0
    for position, line in zip(positions, extra):
        merged.extend(lines[previous:position])
        merged.append(line)
        previous = position
    return merged + lines[previous:]


def scatter(rng: random.Random, lines: list[str], extra: list[str]) -> list[str]:
    """`extra` inserted at random positions of `lines` (the order of both kept)."""
    return scatter_at(lines, extra, sorted(rng.randrange(len(lines) + 1) for _ in extra))


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
