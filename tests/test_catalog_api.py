"""The catalog's read side over real HTTP (uvicorn on 127.0.0.1) and the CLI, on a catalog recorded on the
test S3.

Requests carry a platform admin's token of the local issuer (the embedded setup's default trust); tokens,
refusals and tenant scoping are tests/test_api_auth.py's."""

from __future__ import annotations

import dataclasses
import datetime as dt
import urllib.parse
import uuid
from collections.abc import Iterator

import pytest
from deltalake import DeltaTable

from lakehouse import catalog
from lakehouse.auth import ADMIN, CATALOG_READ
from lakehouse.catalog import Entry, Field, Materialization
from lakehouse.catalog_api import create_app
from lakehouse.config import LakehouseConfig
from lakehouse.local_issuer import LocalIssuer
from orchestration.cli import main as cli_main
from tests.helpers import call_http, served

EVENTS = ("raw.events.events", "processed.events.events", "curated.events.daily_active_users")
COMMERCE = ("processed.commerce.orders", "raw.commerce.orders")
ALL = sorted(EVENTS + COMMERCE)


def _m(
    run: str,
    path: str,
    owner: str,
    fields: list[Field],
    upstream=(),
    rows: int = 100,
    tags=(),
    columns=None,
    partitions=("2024-01-01", "2024-01-02"),
    version: int = 1,
    code: str = "abc123",
) -> Materialization:
    entry = Entry(
        path=path,
        owner=owner,
        description=f"the {path} table",
        location=f"s3://lakehouse/{path}",
        fields=fields,
        tags=tags,
        retention_days=365 if path.startswith("raw") else None,
        regions=("eu", "us"),
        subject_columns=("user_id",) if "events" in path else (),
        latest_partition=partitions[-1],
        row_count=rows,
        delta_version=version,
        quality_status="passed",
    )
    return Materialization(
        run_id=run,
        entry=entry,
        partitions=partitions,
        rows_written=rows,
        code_version=code,
        upstream=upstream,
        column_lineage=columns or {},
    )


def materializations() -> list[Materialization]:
    """landing.events.events -> raw -> processed -> curated.events.daily_active_users; commerce raw ->
    processed."""
    return [
        _m(
            "run-raw-1",
            "raw/events/events",
            "events-team",
            [
                Field("event_id", "string", "event key", "internal"),
                Field("user_id", "string", "who", "personal"),
            ],
            upstream=[("landing/events/events", None)],
            rows=1000,
            tags=("events",),
            version=3,
            columns={"user_id": [("landing/events/events", "user")]},
        ),
        _m(
            "run-processed-1",
            "processed/events/events",
            "events-team",
            [
                Field("event_id", "string", None, "internal"),
                Field("user_id", "string", "token", "pseudonymous"),
            ],
            upstream=[("raw/events/events", 3)],
            rows=990,
            tags=("events",),
            version=5,
            columns={
                "user_id": [("raw/events/events", "user_id")],
                "event_id": [("raw/events/events", "event_id")],
            },
        ),
        _m(
            "run-curated-1",
            "curated/events/daily_active_users",
            "analytics",
            [Field("day", "date", "the day"), Field("active_users", "bigint", "distinct users", "aggregate")],
            upstream=[("processed/events/events", 5)],
            rows=2,
            tags=("events", "kpi"),
            version=7,
            code="def456",
            columns={"active_users": [("processed/events/events", "user_id")]},
        ),
        _m(
            "run-orders-1",
            "raw/commerce/orders",
            "commerce-team",
            [Field("order_id", "string", None, "internal"), Field("email", "string", "buyer", "personal")],
            upstream=[("landing/commerce/orders", None)],
            rows=300,
            tags=("commerce", "pii"),
        ),
        _m(
            "run-orders-2",
            "processed/commerce/orders",
            "commerce-team",
            [
                Field("order_id", "string", None, "internal"),
                Field("email_token", "string", None, "pseudonymous"),
            ],
            upstream=[("raw/commerce/orders", 1)],
            rows=298,
            tags=("commerce",),
        ),
    ]


@pytest.fixture(scope="module")
def recorded(s3_server) -> LakehouseConfig:
    """A catalog of its own on the session's S3 (module-wide: recorded once, only read afterwards)."""
    config = dataclasses.replace(
        LakehouseConfig.from_env(), root=f"s3://lakehouse/tests/catalog-api-{uuid.uuid4().hex[:8]}"
    )
    catalog.record(config, materializations())
    return config


@pytest.fixture(scope="module")
def api(recorded: LakehouseConfig) -> Iterator[str]:
    """The app under uvicorn in a background thread, on a free port of 127.0.0.1; stopped at the end."""
    with served(create_app(lambda: recorded)) as base:
        yield base


def get(base: str, path: str, **query: str) -> tuple[int, dict]:
    """GET as a platform admin (a token of the local issuer the app trusts by default)."""
    url = base + urllib.parse.quote(path) + (f"?{urllib.parse.urlencode(query)}" if query else "")
    token = LocalIssuer().issue([CATALOG_READ, ADMIN], subject="catalog-api-test")
    status, _, body = call_http(url, headers={"Authorization": f"Bearer {token}"})
    return status, body


def ids(body: dict) -> list[str]:
    assert body["count"] == len(body["datasets"])
    return [entry["datasetId"] for entry in body["datasets"]]


def tables(out: str) -> list[list[dict[str, str]]]:
    """The tables `print_table` printed: each a list of {header: cell}, cut at the dash line's columns."""
    lines, found = out.splitlines(), []
    for i in range(1, len(lines)):
        if lines[i].startswith("-") and set(lines[i]) <= {"-", " "}:
            spans, start = [], 0
            for dashes in lines[i].split("  "):
                spans.append((start, start + len(dashes)))
                start += len(dashes) + 2

            def cut(line: str, spans: list = spans) -> list[str]:
                return [line[a : b if k < len(spans) - 1 else None].strip() for k, (a, b) in enumerate(spans)]

            header, rows = cut(lines[i - 1]), []
            for line in lines[i + 1 :]:
                if not line.strip():
                    break
                rows.append(dict(zip(header, cut(line))))
            found.append(rows)
    return found


def run_cli(capsys, monkeypatch, config: LakehouseConfig, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setenv("LAKEHOUSE_ROOT", config.root)
    capsys.readouterr()
    code = cli_main(["catalog", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_and_filters(api: str) -> None:
    assert ids(get(api, "/v1/data/catalog")[1]) == ALL
    assert ids(get(api, "/v1/data/catalog", domain="events")[1]) == sorted(EVENTS)
    assert ids(get(api, "/v1/data/catalog", tag="pii")[1]) == ["raw.commerce.orders"]
    assert ids(get(api, "/v1/data/catalog", tag="kpi")[1]) == ["curated.events.daily_active_users"]
    assert ids(get(api, "/v1/data/catalog", classification="personal")[1]) == [
        "raw.commerce.orders",
        "raw.events.events",
    ]
    assert ids(get(api, "/v1/data/catalog", domain="commerce", classification="pseudonymous")[1]) == [
        "processed.commerce.orders"
    ]
    assert ids(get(api, "/v1/data/catalog", tag="nothing")[1]) == []


def test_entry_has_the_aic_fields(api: str, recorded: LakehouseConfig) -> None:
    status, entry = get(api, "/v1/data/catalog/processed.events.events")
    assert status == 200
    assert {
        "datasetId",
        "domain",
        "name",
        "schema",
        "owner",
        "tags",
        "location",
        "createdAt",
        "updatedAt",
        "layer",
        "classification",
        "retentionDays",
        "regions",
        "subjectColumns",
        "latestPartition",
        "rowCount",
        "lastRunId",
        "qualityStatus",
        "columnLineage",
    } <= set(entry)
    assert (entry["datasetId"], entry["domain"], entry["name"], entry["layer"]) == (
        "processed.events.events",
        "events",
        "events",
        "processed",
    )
    assert (entry["owner"], entry["tags"], entry["location"]) == (
        "events-team",
        ["events"],
        "s3://lakehouse/processed/events/events",
    )
    assert entry["schema"] == {
        "fields": [
            {"name": "event_id", "type": "string", "description": None, "classification": "internal"},
            {"name": "user_id", "type": "string", "description": "token", "classification": "pseudonymous"},
        ]
    }
    assert entry["classification"] == {"event_id": "internal", "user_id": "pseudonymous"}
    assert (entry["rowCount"], entry["latestPartition"], entry["lastRunId"], entry["qualityStatus"]) == (
        990,
        "2024-01-02",
        "run-processed-1",
        "passed",
    )
    assert (entry["regions"], entry["subjectColumns"], entry["retentionDays"], entry["deltaVersion"]) == (
        ["eu", "us"],
        ["user_id"],
        None,
        5,
    )
    assert entry["columnLineage"] == {
        "user_id": [{"datasetId": "raw.events.events", "column": "user_id"}],
        "event_id": [{"datasetId": "raw.events.events", "column": "event_id"}],
    }
    created = dt.datetime.fromisoformat(entry["createdAt"])
    assert created.tzinfo is not None and created <= dt.datetime.fromisoformat(entry["updatedAt"])
    stored = catalog.get_entry(recorded, "processed.events.events")
    assert {k: v for k, v in entry.items() if k != "columnLineage"} == {
        k: v for k, v in stored.items() if k != "columnLineage"
    }


def test_unknown_dataset_is_404(api: str) -> None:
    assert get(api, "/v1/data/catalog/raw.nope.nothing") == (
        404,
        {"detail": "unknown dataset 'raw.nope.nothing'"},
    )
    assert get(api, "/v1/data/catalog/raw.nope.nothing/lineage") == (
        404,
        {"detail": "unknown dataset 'raw.nope.nothing'"},
    )


def test_lineage(api: str) -> None:
    status, body = get(api, "/v1/data/catalog/curated.events.daily_active_users/lineage")
    assert status == 200 and body["direction"] == "upstream"
    assert [(s["datasetId"], s["via"], s["runId"]) for s in body["lineage"]] == [
        ("processed.events.events", "curated.events.daily_active_users", "run-curated-1"),
        ("raw.events.events", "processed.events.events", "run-processed-1"),
        ("landing.events.events", "raw.events.events", "run-raw-1"),
    ]
    assert body["lineage"][0]["codeVersion"] == "def456"
    assert body["lineage"][0]["partitions"] == ["2024-01-01", "2024-01-02"]
    _, down = get(api, "/v1/data/catalog/raw.events.events/lineage", direction="downstream")
    assert [s["datasetId"] for s in down["lineage"]] == [
        "processed.events.events",
        "curated.events.daily_active_users",
    ]
    # A landing source is not catalogued, but lineage knows it.
    _, landing = get(api, "/v1/data/catalog/landing.commerce.orders/lineage", direction="downstream")
    assert [s["datasetId"] for s in landing["lineage"]] == [
        "raw.commerce.orders",
        "processed.commerce.orders",
    ]
    status, error = get(api, "/v1/data/catalog/raw.events.events/lineage", direction="sideways")
    assert status == 422 and error["detail"][0]["loc"] == ["query", "direction"]


def test_openapi_describes_the_api(api: str) -> None:
    status, doc = get(api, "/openapi.json")
    assert status == 200 and doc["info"]["title"] == "Lakehouse data catalog"
    assert {
        "/v1/data/catalog",
        "/v1/data/catalog/{datasetId}",
        "/v1/data/catalog/{datasetId}/lineage",
    } <= set(doc["paths"])
    schemas = doc["components"]["schemas"]
    assert {"CatalogEntry", "CatalogList", "Lineage", "LineageStep", "SchemaField"} <= set(schemas)
    assert {"datasetId", "schema", "owner", "columnLineage"} <= set(schemas["CatalogEntry"]["properties"])
    ok = doc["paths"]["/v1/data/catalog/{datasetId}"]["get"]["responses"]
    assert (
        ok["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/CatalogEntry") and "404" in ok
    )


def test_cli_says_what_the_api_says(api: str, recorded: LakehouseConfig, capsys, monkeypatch) -> None:
    for argv, query in [
        (["list"], {}),
        (["list", "--domain", "commerce"], {"domain": "commerce"}),
        (["list", "--tag", "pii"], {"tag": "pii"}),
        (["list", "--classification", "personal"], {"classification": "personal"}),
    ]:
        code, out, _ = run_cli(capsys, monkeypatch, recorded, *argv)
        assert code == 0
        printed = [(r["dataset"], r["owner"], r["rows"]) for r in tables(out)[0]]
        body = get(api, "/v1/data/catalog", **query)[1]
        assert printed == [(e["datasetId"], e["owner"], str(e["rowCount"])) for e in body["datasets"]] != []

    code, out, _ = run_cli(capsys, monkeypatch, recorded, "search", "pii")
    assert [r["dataset"] for r in tables(out)[0]] == ["raw.commerce.orders"]
    code, out, _ = run_cli(capsys, monkeypatch, recorded, "search", "analytics")
    assert [r["dataset"] for r in tables(out)[0]] == ["curated.events.daily_active_users"]

    code, out, _ = run_cli(capsys, monkeypatch, recorded, "show", "processed.events.events")
    entry = get(api, "/v1/data/catalog/processed.events.events")[1]
    fields = dict(line.split(":", 1) for line in out.split("\n\n")[0].splitlines())
    assert code == 0 and {k: fields[k].strip() for k in ("datasetId", "owner", "rowCount", "lastRunId")} == {
        "datasetId": entry["datasetId"],
        "owner": entry["owner"],
        "rowCount": str(entry["rowCount"]),
        "lastRunId": entry["lastRunId"],
    }
    schema, column_lineage = tables(out)
    assert [(r["column"], r["type"], r["classification"]) for r in schema] == [
        (f["name"], f["type"], f["classification"]) for f in entry["schema"]["fields"]
    ]
    assert {r["column"]: r["upstream"] for r in column_lineage} == {
        column: ", ".join(f"{s['datasetId']}.{s['column']}" for s in sources)
        for column, sources in entry["columnLineage"].items()
    }

    for dataset, flags, direction in [
        ("curated.events.daily_active_users", [], "upstream"),
        ("raw.events.events", ["--downstream"], "downstream"),
    ]:
        code, out, _ = run_cli(capsys, monkeypatch, recorded, "lineage", dataset, *flags)
        body = get(api, f"/v1/data/catalog/{dataset}/lineage", direction=direction)[1]
        assert (
            code == 0
            and [(r["dataset"], r["via"], r["run"], r["code version"]) for r in tables(out)[0]]
            == [(s["datasetId"], s["via"], s["runId"], s["codeVersion"]) for s in body["lineage"]]
            != []
        )

    for argv in (["show", "raw.nope.nothing"], ["lineage", "raw.nope.nothing"]):
        code, out, err = run_cli(capsys, monkeypatch, recorded, *argv)
        assert code == 1 and "unknown dataset 'raw.nope.nothing'" in err and out == ""


def test_recording_again_does_not_duplicate(lake: LakehouseConfig) -> None:
    chain = materializations()
    catalog.record(lake, chain)
    first = {e["datasetId"]: e for e in catalog.list_entries(lake)}
    catalog.record(lake, chain)
    catalog.record(lake, chain[:2])

    def count(table: str) -> int:
        return (
            DeltaTable(f"{lake.root}/catalog/{table}", storage_options=lake.storage_options)
            .to_pyarrow_table()
            .num_rows
        )

    again = {e["datasetId"]: e for e in catalog.list_entries(lake)}
    assert sorted(again) == ALL and (count("datasets"), count("lineage"), count("column_lineage")) == (
        5,
        5,
        4,
    )
    assert all(again[d]["createdAt"] == first[d]["createdAt"] for d in ALL)
    assert again["raw.events.events"]["updatedAt"] > first["raw.events.events"]["updatedAt"]
    assert [s["datasetId"] for s in catalog.lineage(lake, "curated.events.daily_active_users")] == [
        "processed.events.events",
        "raw.events.events",
        "landing.events.events",
    ]
    # A new run of the same dataset updates its entry and adds one lineage row.
    newer = dataclasses.replace(chain[0].entry, row_count=1200, latest_partition="2024-01-03")
    rerun = dataclasses.replace(chain[0], run_id="run-raw-2", entry=newer)
    catalog.record(lake, [rerun])
    entry = catalog.get_entry(lake, "raw.events.events")
    assert (entry["lastRunId"], entry["rowCount"], entry["latestPartition"]) == (
        "run-raw-2",
        1200,
        "2024-01-03",
    )
    assert (count("datasets"), count("lineage")) == (5, 6)
    assert catalog.lineage(lake, "landing.events.events", "downstream")[0]["runId"] == "run-raw-2"
