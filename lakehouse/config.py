"""Configuration from environment variables, with embedded defaults.

| variable | default | meaning |
|---|---|---|
| LAKEHOUSE_ROOT | s3://lakehouse (embedded S3) | lake root: s3://bucket[/prefix] or a local path |
| LAKEHOUSE_SPARK_REMOTE | unset = in-process Sail | a Spark Connect URL, e.g. sc://spark:15002 |
| LAKEHOUSE_START_DATE | 2024-01-01 | first daily partition |
| LAKEHOUSE_STATE_DIR | <project>/.lakehouse | local state: embedded S3 data, credentials, Dagster home |
| LAKEHOUSE_LANDING_RETENTION_DAYS | 7 | days landing files are kept (retention deletes older ones) |
| LAKEHOUSE_TOKEN_KEY | generated once into <state dir>/token.key | key of the deterministic tokenization |
| LAKEHOUSE_REGION_ROOTS | s3://<bucket>-<region>, each region | roots of resident data: region=root,... |
| AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY | embedded S3 | S3 access |
| AWS_REGION, AWS_ALLOW_HTTP | embedded S3 | S3 region, plain HTTP allowed |
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse.secret_files import create_secret, private_dir

LAYERS = ("raw", "processed", "curated", "quarantine", "quality")  # quality: metrics tables
# The regions the product stores data in (the Data Plane's `tenants.data_region`): each gets its own root
# unless LAKEHOUSE_REGION_ROOTS names the roots.
DEFAULT_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")
PROJECT_DIR = Path(__file__).resolve().parents[1]
_S3_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_ALLOW_HTTP",
)


@dataclass(frozen=True)
class LakehouseConfig:
    root: str
    spark_remote: str | None
    start_date: dt.date
    state_dir: Path
    storage_env: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls) -> LakehouseConfig:
        state_dir = default_state_dir()
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
        return cls(
            root=root, spark_remote=remote, start_date=start, state_dir=state_dir, storage_env=storage_env
        )

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

    @property
    def privacy_budget_epsilon(self) -> float:
        """Epsilon a differentially private dataset may spend per calendar month (default: 31 daily releases
        of epsilon 2)."""
        return float(os.environ.get("LAKEHOUSE_PRIVACY_BUDGET_EPSILON", "62"))

    def token_key(self) -> str:
        """The tokenization key, checked against the fingerprint the lake recorded with its first use.

        From `LAKEHOUSE_TOKEN_KEY`, else `<state dir>/token.key` (one absolute place for every entry point),
        generated only for a lake that has no fingerprint yet: a different key would make tokens stop
        matching and erasure miss the subject, so a mismatch is an error, never a new key.
        """
        cached = _checked_keys.get(self.root)
        if cached is not None:
            return cached
        recorded = _recorded_fingerprint(self)
        if os.environ.get("LAKEHOUSE_TOKEN_KEY"):
            key, origin = os.environ["LAKEHOUSE_TOKEN_KEY"], "LAKEHOUSE_TOKEN_KEY"
        else:
            path = self.state_dir / "token.key"
            origin = str(path)
            if not path.exists():
                if recorded is not None:
                    raise TokenKeyError(
                        f"the lake {self.root} was written with the tokenization key of fingerprint "
                        f"{recorded}, and no key is at {path}: restore that file or set "
                        "LAKEHOUSE_TOKEN_KEY (a new key would not match the lake's tokens)"
                    )
                private_dir(self.state_dir)
                key = create_secret(path, secrets.token_hex(32)).strip()
            else:
                key = path.read_text().strip()
        fingerprint = key_fingerprint(key)
        if recorded is None:
            _record_fingerprint(self, fingerprint)
        elif recorded != fingerprint:
            raise TokenKeyError(
                f"the tokenization key from {origin} (fingerprint {fingerprint}) is not the key the "
                f"lake {self.root} was written with (fingerprint {recorded})"
            )
        _checked_keys[self.root] = key
        return key

    def table_uri(self, layer: str, domain: str, dataset: str) -> str:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}; expected one of {LAYERS}")
        return f"{self.root}/{layer}/{domain}/{dataset}"

    @property
    def region_roots(self) -> dict[str, str]:
        """Region -> the root its resident datasets' rows live under (`LAKEHOUSE_REGION_ROOTS`)."""
        return region_roots(self.root)

    def regional_table_uri(self, region: str, layer: str, domain: str, dataset: str) -> str:
        """The table of `region`'s rows of a resident dataset; an unknown region is an error, never the
        default root."""
        roots = self.region_roots
        if region not in roots:
            raise UnknownRegionError(
                f"region {region!r} has no storage root; configured regions: {sorted(roots)} "
                "(LAKEHOUSE_REGION_ROOTS)"
            )
        return self.table_uri(layer, domain, dataset).replace(self.root, roots[region], 1)

    def landing_uri(self, domain: str, day: dt.date | None = None) -> str:
        base = f"{self.root}/landing/{domain}"
        return base if day is None else f"{base}/dt={day.isoformat()}"


class TokenKeyError(RuntimeError):
    pass


class UnknownRegionError(ValueError):
    """A row or a request names a region that has no storage root."""


def regional_root(root: str, region: str) -> str:
    """The default root of `region` beside `root`: its bucket suffixed on S3 (one bucket per region, the
    same prefix), its folder suffixed on a local path."""
    if root.startswith("s3://"):
        bucket, _, prefix = root[len("s3://") :].partition("/")
        return f"s3://{bucket}-{region}" + (f"/{prefix}" if prefix else "")
    return f"{root}-{region}"


def region_roots(root: str) -> dict[str, str]:
    """`LAKEHOUSE_REGION_ROOTS` (`region=root,...`), else one root per default region beside `root`."""
    configured = os.environ.get("LAKEHOUSE_REGION_ROOTS", "").strip()
    if not configured:
        return {region: regional_root(root, region) for region in DEFAULT_REGIONS}
    roots: dict[str, str] = {}
    for item in configured.split(","):
        region, sep, uri = (part.strip() for part in item.partition("="))
        if not sep or not region or not uri:
            raise ValueError(f"LAKEHOUSE_REGION_ROOTS: expected region=root, got {item.strip()!r}")
        if region in roots:
            raise ValueError(f"LAKEHOUSE_REGION_ROOTS names region {region!r} twice")
        uri = uri.rstrip("/")
        roots[region] = uri if "://" in uri else str(Path(uri).resolve())
    if root in roots.values():
        raise ValueError("LAKEHOUSE_REGION_ROOTS: a region's root must not be LAKEHOUSE_ROOT itself")
    return roots


_checked_keys: dict[str, str] = {}


def default_state_dir() -> Path:
    """`LAKEHOUSE_STATE_DIR`, else the project's `.lakehouse`: the same folder whatever the working
    directory."""
    configured = os.environ.get("LAKEHOUSE_STATE_DIR")
    return Path(configured).resolve() if configured else PROJECT_DIR / ".lakehouse"


def key_fingerprint(key: str) -> str:
    """Identifies a key without revealing it."""
    return hashlib.sha256(f"lakehouse-token-key-fingerprint|{key}".encode()).hexdigest()[:16]


def _fingerprint_uri(config: LakehouseConfig) -> str:
    return f"{config.root}/_lakehouse/token_key.json"


def _recorded_fingerprint(config: LakehouseConfig) -> str | None:
    from lakehouse import storage

    text = storage.read_text_if_exists(config, _fingerprint_uri(config))
    return None if text is None else json.loads(text)["fingerprint"]


def _record_fingerprint(config: LakehouseConfig, fingerprint: str) -> None:
    from lakehouse import storage

    storage.write_text(
        config,
        _fingerprint_uri(config),
        json.dumps({"fingerprint": fingerprint, "recordedAt": dt.datetime.now(dt.UTC).isoformat()}),
    )


def _embedded_s3_env() -> dict[str, str]:
    """The embedded S3's settings when it runs and nothing else is configured."""
    from infra import local_s3

    server = local_s3.current()
    if server is None:
        return {}
    return {key: value for key, value in server.environment().items() if key in _S3_ENV}
