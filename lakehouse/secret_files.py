"""Secrets on local disk (S3 credentials, the token key): readable by their owner only from the first byte.

A file is never written first and restricted afterwards (someone could open it in between), and a secret
created once is never replaced by a second process that raced the first: it is written to a private
temporary file (O_CREAT | O_EXCL, mode 0600) and then linked into place, which fails if the name exists.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def private_dir(path: Path) -> Path:
    """`path` and any missing parents, created 0700; `path` itself is made 0700 if it exists."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
    os.chmod(path, 0o700)
    return path


def _private_temp(directory: Path, text: str) -> Path:
    temp = directory / f".{secrets.token_hex(8)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    return temp


def create_secret(path: Path, text: str) -> str:
    """Create `path` (mode 0600) holding `text` unless it exists; returns what the file holds."""
    temp = _private_temp(path.parent, text)
    try:
        os.link(temp, path)
    except FileExistsError:
        return path.read_text()
    finally:
        temp.unlink()
    return text


def write_secret(path: Path, text: str) -> None:
    """Replace `path` atomically by a file of mode 0600 holding `text`."""
    os.replace(_private_temp(path.parent, text), path)
