"""Helpers the end-to-end tests share: run assets through a real Dagster instance, count table rows, serve
an app over real HTTP and call it."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg

from orchestration.resources import LakeResource


def run_assets(
    instance: dg.DagsterInstance,
    assets: Sequence,
    first: dt.date,
    last: dt.date | None = None,
    raise_on_error: bool = True,
    tags: dict[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize `assets` for the partitions first..last in one run (as a single-run backfill does)."""
    job = dg.define_asset_job("test_run", selection=dg.AssetSelection.all())
    defs = dg.Definitions(
        assets=list(assets), jobs=[job], resources={"lake": LakeResource()}, executor=dg.in_process_executor
    )
    return defs.resolve_job_def("test_run").execute_in_process(
        instance=instance,
        raise_on_error=raise_on_error,
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": (last or first).isoformat(),
            **(tags or {}),
        },
    )


def counts_by_day(spark, uri: str, where: str | None = None) -> dict[dt.date, int]:
    df = spark.read.format("delta").load(uri)
    if where:
        df = df.where(where)
    return {row["dt"]: row["count"] for row in df.groupBy("dt").count().collect()}


@contextlib.contextmanager
def served(app) -> Iterator[str]:
    """`app` under uvicorn in a background thread, on a free port of 127.0.0.1; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
        assert not thread.is_alive()


def call_http(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    """Status, headers (names in lower case) and JSON body of one request (`body` sent as JSON)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {**(headers or {}), **({"Content-Type": "application/json"} if data is not None else {})}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, _lower(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers), json.loads(error.read())


def _lower(headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}
