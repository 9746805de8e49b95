"""Plain-text tables for the command line (every subcommand prints through one function)."""

from __future__ import annotations

from collections.abc import Sequence


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    widths = [max(len(str(value)) for value in column) for column in zip(header, *rows)]
    for line in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(str(value).ljust(width) for value, width in zip(line, widths)).rstrip())
