"""The Spark Connect engine: an in-process Sail server by default, any Spark Connect URL by configuration."""

from __future__ import annotations

import atexit
import os
import threading

from pyspark.sql import SparkSession

from lakehouse.config import LakehouseConfig

_lock = threading.RLock()
_sail_server = None
_sessions: dict[str, SparkSession] = {}


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


def spark_session(config: LakehouseConfig) -> SparkSession:
    """The process's Spark Connect session on the configured engine, in UTC.

    Created with `create()` and kept here rather than by `getOrCreate()`, which
    returns whatever session is active (or refuses when a classic one runs).
    """
    url = config.spark_remote or _sail_url(config)
    with _lock:
        spark = _sessions.get(url)
        if spark is None or spark.is_stopped:
            spark = SparkSession.builder.remote(url).create()
            spark.conf.set("spark.sql.session.timeZone", "UTC")
            # pyspark asks the server to drop its ML cache at exit; Sail answers "ml command" with an error log.
            atexit.unregister(spark.client._cleanup_ml_cache)
            _sessions[url] = spark
        return spark
