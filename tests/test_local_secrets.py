"""Secrets on local disk: the embedded S3's credentials readable by their owner only, in private folders,
created once; `make env` output that a shell can `eval` whatever the paths and values hold."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from lakehouse.secret_files import create_secret, private_dir, write_secret

REPO = Path(__file__).resolve().parents[1]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_embedded_s3_credentials_are_0600_in_0700_folders(s3_server):
    from infra import local_s3

    folder = local_s3.state_dir()
    assert {name: mode(folder / name) for name in ("credentials.json", "s3.json")} == {
        "credentials.json": 0o600,
        "s3.json": 0o600,
    }
    assert {name: mode(folder / name) for name in (".", "data", "log", "run")} == dict.fromkeys(
        (".", "data", "log", "run"), 0o700
    )
    assert json.loads((folder / "credentials.json").read_text())["secret_key"] == s3_server.secret_key


def test_a_secret_is_private_from_creation_and_never_replaced(tmp_path):
    previous = os.umask(0)  # a permissive umask must not widen anything
    try:
        folder = private_dir(tmp_path / "new state" / "s3")
        assert mode(folder) == mode(folder.parent) == 0o700
        path = folder / "token.key"
        assert create_secret(path, "first") == "first" and mode(path) == 0o600
        assert create_secret(path, "second") == "first" and path.read_text() == "first"
        write_secret(folder / "s3.json", "{}")
        write_secret(folder / "s3.json", '{"v": 2}')
        assert mode(folder / "s3.json") == 0o600 and (folder / "s3.json").read_text() == '{"v": 2}'
        assert sorted(p.name for p in folder.iterdir()) == ["s3.json", "token.key"]  # no temporary files left
    finally:
        os.umask(previous)


def test_make_env_output_survives_spaces_quotes_and_dollars(s3_server, tmp_path):
    odd = tmp_path / 'it\'s a "state" dir $(touch pwned) `touch pwned`'
    env = {
        **os.environ,
        "DAGSTER_HOME": str(odd / "dagster"),
        "LAKEHOUSE_ROOT": "s3://lakehouse/a b/it's",
        "LAKEHOUSE_FEAST_DIR": str(odd / "feast"),
    }
    script = (
        'eval "$(make -s --no-print-directory -C "$REPO" env)" && printf "%s\\0" '
        '"$DAGSTER_HOME" "$LAKEHOUSE_ROOT" "$LAKEHOUSE_FEAST_DIR" "$AWS_SECRET_ACCESS_KEY"'
    )
    shown = subprocess.run(
        ["bash", "-c", script],
        env={**env, "REPO": str(REPO)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert shown.split("\0")[:-1] == [
        env["DAGSTER_HOME"],
        env["LAKEHOUSE_ROOT"],
        env["LAKEHOUSE_FEAST_DIR"],
        s3_server.secret_key,
    ]
    assert not (tmp_path / "pwned").exists() and not (REPO / "pwned").exists()
