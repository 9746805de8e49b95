"""The Spark Connect engine: an in-process Sail server by default, any Spark Connect URL by configuration.

Two engines run the same pipeline code; what differs between them lives here and in the
Delta writer (`lakehouse/delta.py`), never in transforms, assets or the pipeline.

What, on Sail (embedded) / on Apache Spark + delta-spark (`LAKEHOUSE_SPARK_REMOTE`):
- lake URIs the engine reads and writes: `s3://bucket/...` / `s3a://bucket/...` (`engine_path`: the only
  translation);
- partition overwrite: `replaceWhere`, after the writer checked every row is inside (Sail writes stray
  rows) / `replaceWhere` (Delta on Spark refuses stray rows itself; the writer checks first all the same);
- table creation, added columns: delta-rs (`DeltaTable.create`, `alter.add_columns`): Sail records
  non-null columns as NOT NULL and drops new columns on append / Delta on Spark: an empty write creates
  the table, `ALTER TABLE ... ADD COLUMNS`;
- row deletes (retention, erasure): delta-rs `delete` / SQL `DELETE FROM delta.\\`uri\\``; predicates are
  written in delta-rs's dialect and `spark_predicate` maps `strpos` to Spark's `instr`;
- vacuum, optimize, history, checkpoint: delta-rs (Sail cannot parse VACUUM/OPTIMIZE/DESCRIBE HISTORY) /
  SQL `VACUUM` / `OPTIMIZE` / `DESCRIBE HISTORY` (`lakehouse/maintenance.py`); checkpoints by delta-rs;
- reads pinned to a version: `versionAsOf` on both;
- versions, row counts per partition, active files: delta-rs, from the Delta log only (no scan), on both;
- small platform tables (catalog, lineage, audit, quality metrics' reads, Feast snapshots): delta-rs on
  both (the same Delta format; no engine job for a few rows).

Which engine a session talks to is asked once per session (`is_apache_spark`): Apache Spark
always answers `spark.master`, Sail does not.
"""

from __future__ import annotations

import atexit
import os
import re
import socket
import threading
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from lakehouse.config import LakehouseConfig

_lock = threading.RLock()
_sail_server = None
_sessions: dict[str, SparkSession] = {}
_kinds: dict[str, bool] = {}  # session id -> is Apache Spark
CONNECT_TIMEOUT_SECONDS = 5.0


class EngineUnavailableError(ConnectionError):
    """The configured Spark Connect server does not answer."""


def _sail_url(config: LakehouseConfig) -> str:
    """Start Sail once per process; it reads S3 settings from the environment only."""
    global _sail_server
    with _lock:
        if _sail_server is None:
            os.environ.update(config.storage_env)
            os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
            from pysail.spark import SparkConnectServer

            server = SparkConnectServer("127.0.0.1", 0)
            server.start(background=True)
            _sail_server = server
        host, port = _sail_server.listening_address
        return f"sc://{host}:{port}"


def _check_reachable(url: str) -> None:
    """Fail in seconds, naming the URL, rather than after the client's ten minutes of retries."""
    parsed = urlparse(url.replace("sc://", "http://", 1))
    host, port = parsed.hostname or "localhost", parsed.port or 15002
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS):
            pass
    except OSError as error:
        raise EngineUnavailableError(
            f"the Spark Connect server at {url} (LAKEHOUSE_SPARK_REMOTE) is unreachable: {error}"
        ) from None


def _short_retries(spark: SparkSession) -> None:
    """A remote engine that goes away mid-run fails the step within seconds (about 6 s of retries)."""
    from pyspark.sql.connect.client.retries import DefaultPolicy

    spark.client.set_retry_policies([DefaultPolicy(max_retries=5, max_backoff=3000)])  # type: ignore[operator]


def spark_session(config: LakehouseConfig) -> SparkSession:
    """The process's Spark Connect session on the configured engine, in UTC.

    Created with `create()` and kept here rather than by `getOrCreate()`, which
    returns whatever session is active (or refuses when a classic one runs).
    """
    url = config.spark_remote or _sail_url(config)
    with _lock:
        spark = _sessions.get(url)
        if spark is None or spark.is_stopped:  # type: ignore[attr-defined]  # Spark Connect sessions
            if config.spark_remote:
                _check_reachable(url)
            spark = SparkSession.builder.remote(url).create()
            if config.spark_remote:
                _short_retries(spark)
            spark.conf.set("spark.sql.session.timeZone", "UTC")
            # pyspark asks the server to drop its ML cache at exit; Sail answers "ml command" with an
            # error log.
            atexit.unregister(spark.client._cleanup_ml_cache)
            _sessions[url] = spark
        return spark


def is_apache_spark(spark: SparkSession) -> bool:
    """True when the session's server is Apache Spark (JVM), False on Sail."""
    key = spark.session_id  # type: ignore[attr-defined]  # Spark Connect sessions
    with _lock:
        if key not in _kinds:
            _kinds[key] = bool(spark.conf.get("spark.master", ""))
        return _kinds[key]


def engine_path(spark: SparkSession, uri: str) -> str:
    """The URI the engine reads and writes for a lake URI: S3 through S3A on Apache Spark."""
    if uri.startswith("s3://") and is_apache_spark(spark):
        return "s3a://" + uri[len("s3://") :]
    return uri


def spark_predicate(predicate: str) -> str:
    """A predicate written for delta-rs (DataFusion) in Spark SQL: Spark has `instr`, not `strpos`
    (same arguments, same 1-based result; delta-rs cannot turn `instr` back into a predicate)."""
    parts = re.split(r"('(?:[^']|'')*')", predicate)  # string literals are the odd parts
    return "".join(
        _spark_literal(part) if i % 2 else re.sub(r"\bstrpos\s*\(", "instr(", part, flags=re.IGNORECASE)
        for i, part in enumerate(parts)
    )


def _spark_literal(literal: str) -> str:
    """A DataFusion string literal (backslashes as they are, quotes doubled) in Spark SQL, where a backslash
    escapes and adjacent literals concatenate: JSON text such as `\"` would otherwise lose its backslash."""
    text = literal[1:-1].replace("''", "'")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def delta_sql_engine() -> SparkSession | None:
    """The configured engine's session when Delta operations go through Delta Lake on Spark
    (SQL DELETE, VACUUM, OPTIMIZE, DESCRIBE HISTORY); None when they go through delta-rs (Sail)."""
    config = LakehouseConfig.from_env()
    if not config.spark_remote:
        return None
    spark = spark_session(config)
    return spark if is_apache_spark(spark) else None
