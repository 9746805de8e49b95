"""LAKEHOUSE_ENV=production: the code location and the CLI refuse to start on embedded defaults, and one error
lists every missing setting; a complete production environment starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from lakehouse.production import ProductionConfigError, check_production, missing
from tests.conftest import REPO

# Everything the check reads: removed from the environment of each case first.
CHECKED = (
    "LAKEHOUSE_TOKEN_KEY",
    "LAKEHOUSE_ROOT",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT",
    "LAKEHOUSE_SPARK_REMOTE",
    "DAGSTER_HOME",
)
TOPICS = (
    "a tokenization key",
    "a non-embedded S3",
    "TLS on a remote Spark Connect URL",
    "PostgreSQL instance storage",
)


def _home(tmp_path, config: str):
    home = tmp_path / f"home-{config.replace('/', '-')}"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "infra" / config, home / "dagster.yaml")
    return str(home)


def _production(tmp_path) -> dict[str, str]:
    return {
        "LAKEHOUSE_ENV": "production",
        "LAKEHOUSE_TOKEN_KEY": "k" * 64,
        "LAKEHOUSE_ROOT": "s3://acme-lake/prod",
        "LAKEHOUSE_SPARK_REMOTE": "sc://spark-connect.lakehouse.svc:15002/;use_ssl=true;token=t0k3n",
        "DAGSTER_HOME": _home(tmp_path, "postgres/dagster.yaml"),
    }


def _embedded(tmp_path) -> dict[str, str]:
    """What `make env` gives on one machine: the local S3, Sail, SQLite, a generated key."""
    return {
        "LAKEHOUSE_ENV": "production",
        "LAKEHOUSE_ROOT": "s3://lakehouse",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:8333",
        "DAGSTER_HOME": _home(tmp_path, "dagster.yaml"),
    }


def _start(code: str, overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in CHECKED}
    env.update(overrides, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_code_location_and_the_cli_refuse_embedded_defaults_listing_all(tmp_path):
    cli = "import sys; from orchestration.cli import main; sys.argv = ['lakehouse', 'summary']; main()"
    for number, code in enumerate(("import orchestration.definitions", cli)):
        started = _start(code, _embedded(tmp_path / f"start-{number}"))
        assert started.returncode != 0
        error = started.stderr.strip().splitlines()
        first = next(
            i
            for i, line in enumerate(error)
            if line.startswith("lakehouse.production.ProductionConfigError:")
        )
        listed = error[first + 1 : first + 5]
        assert [line.strip(" -")[: len(topic)] for line, topic in zip(listed, TOPICS)] == list(TOPICS), error
        assert "127.0.0.1:8333" in listed[1] and "unset (the in-process Sail" in listed[2]
        assert "SQLite" in listed[3]


def test_a_complete_production_environment_starts(tmp_path):
    code = "import orchestration.definitions as d; print(len(d.defs.assets))"
    started = _start(code, _production(tmp_path))
    assert started.returncode == 0, started.stderr[-3000:]
    assert int(started.stdout.strip().splitlines()[-1]) > 10


def test_without_production_the_embedded_defaults_are_fine(tmp_path):
    env = _embedded(tmp_path)
    del env["LAKEHOUSE_ENV"]
    check_production(env)
    with pytest.raises(ProductionConfigError):
        check_production({**env, "LAKEHOUSE_ENV": "Production"})


@pytest.mark.parametrize(
    ("change", "topic"),
    [
        ({"LAKEHOUSE_TOKEN_KEY": ""}, TOPICS[0]),
        ({"LAKEHOUSE_ROOT": "/data/lake"}, TOPICS[1]),
        ({"AWS_ENDPOINT_URL": "http://minio.internal:9000"}, TOPICS[1]),
        ({"AWS_ENDPOINT_URL": "http://localhost:8333"}, TOPICS[1]),
        ({"LAKEHOUSE_SPARK_REMOTE": "sc://spark-connect.lakehouse.svc:15002"}, TOPICS[2]),
        ({"LAKEHOUSE_SPARK_REMOTE": "sc://spark-connect:15002/;use_ssl=false;token=t"}, TOPICS[2]),
        ({"LAKEHOUSE_SPARK_REMOTE": "sc://127.0.0.1:15002/;use_ssl=true"}, TOPICS[2]),
        ({"DAGSTER_HOME": ""}, TOPICS[3]),
    ],
)
def test_each_missing_setting_is_named_alone(tmp_path, change, topic):
    env = _production(tmp_path)
    assert missing(env) == []
    env.update(change)
    problems = missing(env)
    assert len(problems) == 1 and problems[0].startswith(topic), problems


def test_postgres_storage_may_also_be_declared_per_storage(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    storages = (
        ("run_storage", "run_storage", "PostgresRunStorage"),
        ("event_log_storage", "event_log", "PostgresEventLogStorage"),
        ("schedule_storage", "schedule_storage", "PostgresScheduleStorage"),
    )
    (home / "dagster.yaml").write_text(
        "".join(
            f"{name}:\n  module: dagster_postgres.{module}\n  class: {cls}\n"
            for name, module, cls in storages
        )
    )
    assert missing({**_production(tmp_path), "DAGSTER_HOME": str(home)}) == []
    (home / "dagster.yaml").write_text("run_storage:\n  module: dagster_postgres.run_storage\n")
    assert missing({**_production(tmp_path), "DAGSTER_HOME": str(home)})[0].startswith(TOPICS[3])
