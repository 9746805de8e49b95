"""With `LAKEHOUSE_ENV=production`, start-up refuses every embedded default at once.

The embedded defaults (a key generated into the state dir, the local SeaweedFS, the in-process Sail engine,
SQLite under `DAGSTER_HOME`) make one machine work with no setup; on a cluster each of them silently loses
data or joins: a key per pod breaks tokens, SQLite per pod loses run history. So the code location and the CLI
call `check_production()` first, and one error names everything still missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import yaml

LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
POSTGRES_STORAGES = ("run_storage", "event_log_storage", "schedule_storage")


class ProductionConfigError(RuntimeError):
    """Production settings are missing; the message lists every one."""


def _loopback(host: str | None) -> bool:
    return (host or "").lower() in LOOPBACK or (host or "").startswith("127.")


def _token_key(env: Mapping[str, str]) -> str | None:
    if env.get("LAKEHOUSE_TOKEN_KEY"):
        return None
    return (
        "a tokenization key: set LAKEHOUSE_TOKEN_KEY from a secret (Kubernetes: secretKeyRef); "
        "a key generated into the state dir would differ per pod and tokens would stop joining"
    )


def _s3(env: Mapping[str, str]) -> str | None:
    root = env.get("LAKEHOUSE_ROOT", "")
    if not root:
        return "a non-embedded S3: LAKEHOUSE_ROOT is unset (the embedded default s3://lakehouse)"
    if not root.startswith("s3://"):
        return f"a non-embedded S3: LAKEHOUSE_ROOT={root} is not an s3:// URI"
    endpoint = env.get("AWS_ENDPOINT_URL") or env.get("AWS_ENDPOINT")
    if endpoint and _loopback(urlsplit(endpoint).hostname):
        return f"a non-embedded S3: AWS_ENDPOINT_URL={endpoint} is this machine (the embedded SeaweedFS)"
    if endpoint and not endpoint.startswith("https://"):
        return f"a non-embedded S3: AWS_ENDPOINT_URL={endpoint} is not https"
    return None


def _spark(env: Mapping[str, str]) -> str | None:
    remote = env.get("LAKEHOUSE_SPARK_REMOTE", "")
    if not remote:
        return (
            "TLS on a remote Spark Connect URL: LAKEHOUSE_SPARK_REMOTE is unset (the in-process Sail "
            "engine); set sc://host:15002/;use_ssl=true;token=..."
        )
    address, _, options = remote.partition(";")
    host = urlsplit(address).hostname
    params = {
        key.strip().lower(): value.strip().lower()
        for key, _, value in (option.partition("=") for option in options.split(";"))
    }
    if _loopback(host):
        return f"TLS on a remote Spark Connect URL: LAKEHOUSE_SPARK_REMOTE points at this machine ({host})"
    if params.get("use_ssl") != "true":
        return f"TLS on a remote Spark Connect URL: LAKEHOUSE_SPARK_REMOTE for {host} lacks ;use_ssl=true"
    return None


def _postgres(env: Mapping[str, str]) -> str | None:
    home = env.get("DAGSTER_HOME", "")
    hint = "PostgreSQL instance storage"
    if not home:
        return f"{hint}: DAGSTER_HOME is unset"
    path = Path(home) / "dagster.yaml"
    if not path.is_file():
        return f"{hint}: no {path}"
    settings = yaml.safe_load(path.read_text()) or {}
    if "postgres" in (settings.get("storage") or {}):
        return None
    modules = [str((settings.get(name) or {}).get("module", "")) for name in POSTGRES_STORAGES]
    if all(module.startswith("dagster_postgres") for module in modules):
        return None
    return (
        f"{hint}: {path} keeps runs, events and schedules elsewhere (SQLite by default); "
        "use infra/postgres/dagster.yaml or the Helm chart's"
    )


def missing(env: Mapping[str, str] | None = None) -> list[str]:
    """What production still lacks, in a fixed order (empty when everything is set)."""
    env = os.environ if env is None else env
    return [problem for check in (_token_key, _s3, _spark, _postgres) if (problem := check(env))]


def check_production(env: Mapping[str, str] | None = None) -> None:
    """Raise one error listing every missing production setting, when LAKEHOUSE_ENV=production."""
    env = os.environ if env is None else env
    if env.get("LAKEHOUSE_ENV", "").lower() != "production":
        return
    problems = missing(env)
    if problems:
        raise ProductionConfigError(
            "LAKEHOUSE_ENV=production refuses the embedded defaults; missing:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
        )
