"""Configuration from environment variables, with embedded defaults.

| variable | default | meaning |
|---|---|---|
| LAKEHOUSE_ROOT | s3://lakehouse (embedded S3) | lake root: s3://bucket[/prefix] or a local path |
| LAKEHOUSE_SPARK_REMOTE | unset = in-process Sail | a Spark Connect URL, e.g. sc://spark:15002 |
| LAKEHOUSE_START_DATE | 2024-01-01 | first daily partition |
| LAKEHOUSE_STATE_DIR | .lakehouse | local state: embedded S3 data, credentials, Dagster home |
| LAKEHOUSE_LANDING_RETENTION_DAYS | 7 | days landing files are kept (retention deletes older ones) |
| LAKEHOUSE_TOKEN_KEY | generated into the state dir | key of the deterministic tokenization of personal data |
| AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP | embedded S3 | S3 access |
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

LAYERS = ("raw", "processed", "curated", "quarantine", "quality")  # quality: metrics tables
_S3_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
           "AWS_ALLOW_HTTP")


@dataclass(frozen=True)
class LakehouseConfig:
    root: str
    spark_remote: str | None
    start_date: dt.date
    state_dir: Path
    storage_env: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls) -> "LakehouseConfig":
        state_dir = Path(os.environ.get("LAKEHOUSE_STATE_DIR", ".lakehouse")).resolve()
        root = os.environ.get("LAKEHOUSE_ROOT", "s3://lakehouse").rstrip("/")
        if "://" not in root:
            root = str(Path(root).resolve())
        start = dt.date.fromisoformat(os.environ.get("LAKEHOUSE_START_DATE", "2024-01-01"))
        storage_env = {key: os.environ[key] for key in _S3_ENV if os.environ.get(key)}
        if root.startswith("s3://") and "AWS_ACCESS_KEY_ID" not in storage_env:
            storage_env.update(_embedded_s3_env())
        if "AWS_ENDPOINT_URL" not in storage_env and os.environ.get("AWS_ENDPOINT"):
            storage_env["AWS_ENDPOINT_URL"] = os.environ["AWS_ENDPOINT"]
        if root.startswith("s3://"):
            storage_env.setdefault("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
            if storage_env.get("AWS_ENDPOINT_URL", "").startswith("http://"):
                storage_env.setdefault("AWS_ALLOW_HTTP", "true")
        remote = os.environ.get("LAKEHOUSE_SPARK_REMOTE") or None
        return cls(root=root, spark_remote=remote, start_date=start, state_dir=state_dir, storage_env=storage_env)

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    @property
    def storage_options(self) -> dict[str, str]:
        """delta-rs storage options (the same names as the environment)."""
        return dict(self.storage_env)

    @property
    def landing_retention_days(self) -> int:
        return int(os.environ.get("LAKEHOUSE_LANDING_RETENTION_DAYS", "7"))

    def token_key(self) -> str:
        """The tokenization key: from the environment, else generated once for this machine (never printed)."""
        if os.environ.get("LAKEHOUSE_TOKEN_KEY"):
            return os.environ["LAKEHOUSE_TOKEN_KEY"]
        path = self.state_dir / "token.key"
        if not path.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def table_uri(self, layer: str, domain: str, dataset: str) -> str:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}; expected one of {LAYERS}")
        return f"{self.root}/{layer}/{domain}/{dataset}"

    def landing_uri(self, domain: str, day: dt.date | None = None) -> str:
        base = f"{self.root}/landing/{domain}"
        return base if day is None else f"{base}/dt={day.isoformat()}"


def _embedded_s3_env() -> dict[str, str]:
    """The embedded S3's settings when it runs and nothing else is configured."""
    from infra import local_s3

    server = local_s3.current()
    if server is None:
        return {}
    return {key: value for key, value in server.environment().items() if key in _S3_ENV}
