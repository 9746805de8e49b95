"""OpenLineage run events: emitted through the client's file transport, valid against the spec's schemas."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_dataset,
    dataset_version_dataset,
    datasource_dataset,
    error_message_run,
    ownership_dataset,
    schema_dataset,
    tags_dataset,
)
from openlineage.client.serde import Serde
from referencing import Registry, Resource

from lakehouse.openlineage import DatasetInfo, default_log_path, emit_run_event, openlineage_run_id

SPEC = Path(__file__).resolve().parents[2] / "shared" / "standards" / "openlineage"
CORE_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
# facet key -> its schema file in the standards folder
FACET_SCHEMAS = {
    "schema": "SchemaDatasetFacet.json",
    "columnLineage": "ColumnLineageDatasetFacet.json",
    "ownership": "OwnershipDatasetFacet.json",
    "dataSource": "DatasourceDatasetFacet.json",
    "version": "DatasetVersionDatasetFacet.json",
    "dataQualityMetrics": "DataQualityMetricsDatasetFacet.json",
    "dataQualityAssertions": "DataQualityAssertionsDatasetFacet.json",
}
# Facets without a schema in the standards folder (validated only as core RunFacet/JobFacet):
# ours (errorMessage; tags on outputs: schemaVersion) and the ones the client itself adds (tags;
# sourceCodeLocation inside a git checkout).
UNSCHEMED = {"errorMessage", "tags", "sourceCodeLocation"}

DAGSTER_RUN = "3f1b8e4c-0d2a-4c5e-9b7a-1e2f3a4b5c6d"
JOB = "events_sessions"
ROOT = "s3://lakehouse"
EVENTS = DatasetInfo(
    name="processed/events/events",
    uri=f"{ROOT}/processed/events/events",
    fields=[("user_id", "string", "tokenized user"), ("ts", "timestamp", None)],
    owner="team:events",
    version=7,
    row_count=1000,
    quality={"assertions": [{"assertion": "not_null", "success": True, "column": "user_id"}]},
)
USERS = DatasetInfo(
    name="processed/commerce/users",
    uri=f"{ROOT}/processed/commerce/users",
    fields=[("user_id", "string", None), ("country", "string", "ISO 3166-1 alpha-2")],
    version=3,
)
SESSIONS = DatasetInfo(
    name="curated/events/sessions",
    uri=f"{ROOT}/curated/events/sessions",
    fields=[("user_id", "string", None), ("country", "string", None), ("started_at", "timestamp", None)],
    owner="team:analytics",
    version=12,
    row_count=240,
    column_lineage={
        "user_id": [("processed/events/events", "user_id"), ("processed/commerce/users", "user_id")],
        "country": [("processed/commerce/users", "country")],
        "started_at": [("processed/events/events", "ts")],
    },
    quality={"columnMetrics": {"user_id": {"nullCount": 0, "distinctCount": 200}}},
)


def _resource(name: str) -> Resource:
    return Resource.from_contents(json.loads((SPEC / name).read_text()))


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The core spec registered under its $id, as the facet schemas refer to it by that id."""
    core = _resource("OpenLineage.json")
    assert core.id() == CORE_ID
    facets = [_resource(name) for name in FACET_SCHEMAS.values()]
    return Registry().with_resources([(CORE_ID, core), *((str(facet.id()), facet) for facet in facets)])


def _formats() -> jsonschema.FormatChecker:
    """uuid is built in; date-time and uri are checked here so no optional validator package is needed."""
    checker = jsonschema.FormatChecker(["uuid"])
    checker.checks("date-time", raises=ValueError)(
        lambda v: not isinstance(v, str) or dt.datetime.fromisoformat(v).tzinfo is not None
    )
    checker.checks("uri")(lambda v: not isinstance(v, str) or bool(urlparse(v).scheme))
    return checker


def _validate(event: dict[str, Any], registry: Registry) -> None:
    """The core RunEvent, then every facet against its own facet schema."""
    formats = _formats()
    jsonschema.Draft202012Validator(
        {"$ref": f"{CORE_ID}#/$defs/RunEvent"}, registry=registry, format_checker=formats
    ).validate(event)
    facet_groups = [event["run"].get("facets", {}), event["job"].get("facets", {})]
    for dataset in event.get("inputs", []) + event.get("outputs", []):
        facet_groups += [
            dataset.get("facets", {}),
            dataset.get("inputFacets", {}),
            dataset.get("outputFacets", {}),
        ]
    for facets in facet_groups:
        for key, facet in facets.items():
            if key in UNSCHEMED:
                continue
            assert key in FACET_SCHEMAS, f"facet {key!r} has no schema in {SPEC}"
            schema = json.loads((SPEC / FACET_SCHEMAS[key]).read_text())
            jsonschema.Draft202012Validator(schema, registry=registry, format_checker=formats).validate(
                {key: facet}
            )
            assert facet["_schemaURL"].split("#")[0].rsplit("/", 1)[1] == FACET_SCHEMAS[key]


def _rebuild(event: dict[str, Any]) -> RunEvent:
    """The event rebuilt with the client's own classes (the client has no deserializer)."""

    def dataset_facets(facets: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, f in facets.items():
            if key == "schema":
                out[key] = schema_dataset.SchemaDatasetFacet(
                    fields=[
                        schema_dataset.SchemaDatasetFacetFields(**{"fields": None, **x}) for x in f["fields"]
                    ]
                )
            elif key == "columnLineage":
                out[key] = column_lineage_dataset.ColumnLineageDatasetFacet(
                    fields={
                        col: column_lineage_dataset.Fields(
                            inputFields=[
                                column_lineage_dataset.InputField(**{"transformations": None, **i})
                                for i in v["inputFields"]
                            ]
                        )
                        for col, v in f["fields"].items()
                    }
                )
            elif key == "ownership":
                out[key] = ownership_dataset.OwnershipDatasetFacet(
                    owners=[ownership_dataset.Owner(**o) for o in f["owners"]]
                )
            elif key == "dataSource":
                out[key] = datasource_dataset.DatasourceDatasetFacet(name=f["name"], uri=f["uri"])
            elif key == "version":
                out[key] = dataset_version_dataset.DatasetVersionDatasetFacet(
                    datasetVersion=f["datasetVersion"]
                )
            elif key == "dataQualityMetrics":
                out[key] = data_quality_metrics_dataset.DataQualityMetricsDatasetFacet(
                    rowCount=f.get("rowCount"),
                    columnMetrics={
                        c: data_quality_metrics_dataset.ColumnMetrics(**{"quantiles": None, **m})
                        for c, m in f["columnMetrics"].items()
                    },
                )
            elif key == "dataQualityAssertions":
                out[key] = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                    assertions=[
                        data_quality_assertions_dataset.Assertion(**{"params": None, **a})
                        for a in f["assertions"]
                    ]
                )
            elif key == "tags":  # the schema registry's version of an output
                out[key] = tags_dataset.TagsDatasetFacet(
                    tags=[tags_dataset.TagsDatasetFacetFields(**{"field": None, **t}) for t in f["tags"]]
                )
            else:
                raise AssertionError(f"unexpected dataset facet {key}")
        return out

    run_facets = {k: v for k, v in event["run"].get("facets", {}).items() if k != "tags"}
    if "errorMessage" in run_facets:
        m = run_facets["errorMessage"]
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=m["message"], programmingLanguage=m["programmingLanguage"]
        )
    return RunEvent(
        eventType=RunState(event["eventType"]),
        eventTime=event["eventTime"],
        producer=event["producer"],
        run=Run(runId=event["run"]["runId"], facets=run_facets),
        job=Job(namespace=event["job"]["namespace"], name=event["job"]["name"]),
        inputs=[
            InputDataset(
                namespace=d["namespace"],
                name=d["name"],
                facets=dataset_facets(d.get("facets", {})),
                inputFacets=dataset_facets(d.get("inputFacets", {})),
            )
            for d in event["inputs"]
        ],
        outputs=[
            OutputDataset(
                namespace=d["namespace"], name=d["name"], facets=dataset_facets(d.get("facets", {}))
            )
            for d in event["outputs"]
        ],
    )


@pytest.fixture()
def emitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No client configuration anywhere: the default file transport under the state dir."""
    for name in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE_DISABLED", "OPENLINEAGE_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    for name in [k for k in os.environ if k.startswith("OPENLINEAGE__")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no openlineage.yml, no git checkout
    monkeypatch.setenv("LAKEHOUSE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OPENLINEAGE_NAMESPACE", "lakehouse-test")
    path = default_log_path()
    assert path == tmp_path / "state" / "openlineage" / "events.jsonl"
    return path


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_start_complete_fail_are_valid_and_consistent(emitted: Path, registry: Registry) -> None:
    t0 = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    returned = [
        emit_run_event("START", DAGSTER_RUN, JOB, [EVENTS, USERS], [SESSIONS], event_time=t0),
        emit_run_event(
            "COMPLETE", DAGSTER_RUN, JOB, [EVENTS, USERS], [SESSIONS], event_time=t0 + dt.timedelta(minutes=1)
        ),
        emit_run_event(
            "FAIL",
            DAGSTER_RUN,
            "events_daily",
            [EVENTS, USERS],
            [SESSIONS],
            error="AnalysisException: column ts not found",
        ),
    ]
    events = _read(emitted)
    assert len(events) == 3
    start, complete, fail = events

    for event, built in zip(events, returned):
        _validate(event, registry)
        rebuilt = _rebuild(event)
        assert isinstance(rebuilt, RunEvent)
        expected = Serde.to_dict(rebuilt)
        actual = dict(
            event,
            run={
                **event["run"],
                "facets": {k: v for k, v in event["run"].get("facets", {}).items() if k != "tags"},
            },
        )
        assert actual == expected  # every emitted field is one the client's classes carry
        assert Serde.to_dict(built)["run"]["runId"] == event["run"]["runId"]

    assert [e["eventType"] for e in events] == ["START", "COMPLETE", "FAIL"]
    assert start["run"]["runId"] == complete["run"]["runId"] == openlineage_run_id(DAGSTER_RUN, JOB)
    assert uuid.UUID(start["run"]["runId"])
    assert fail["run"]["runId"] != start["run"]["runId"]  # another step of the same Dagster run
    assert [(e["job"]["namespace"], e["job"]["name"]) for e in (start, complete)] == [
        ("lakehouse-test", JOB)
    ] * 2
    identity = [(d["namespace"], d["name"]) for d in start["outputs"]]
    assert (
        identity
        == [(d["namespace"], d["name"]) for d in complete["outputs"]]
        == [("s3://lakehouse", "curated/events/sessions")]
    )
    assert [(d["namespace"], d["name"]) for d in start["inputs"]] == [
        ("s3://lakehouse", "processed/events/events"),
        ("s3://lakehouse", "processed/commerce/users"),
    ]
    assert start["eventTime"] == "2024-01-02T03:04:05+00:00"

    assert "errorMessage" not in start["run"].get("facets", {})
    assert fail["run"]["facets"]["errorMessage"]["message"] == "AnalysisException: column ts not found"

    out = complete["outputs"][0]["facets"]
    lineage = {
        col: [(f["namespace"], f["name"], f["field"]) for f in v["inputFields"]]
        for col, v in out["columnLineage"]["fields"].items()
    }
    assert lineage == {
        "user_id": [
            ("s3://lakehouse", "processed/events/events", "user_id"),
            ("s3://lakehouse", "processed/commerce/users", "user_id"),
        ],
        "country": [("s3://lakehouse", "processed/commerce/users", "country")],
        "started_at": [("s3://lakehouse", "processed/events/events", "ts")],
    }
    assert out["version"]["datasetVersion"] == "12"
    assert out["dataQualityMetrics"]["rowCount"] == 240
    assert out["dataQualityMetrics"]["columnMetrics"]["user_id"] == {"nullCount": 0, "distinctCount": 200}
    assert out["ownership"]["owners"] == [{"name": "team:analytics", "type": "MAINTAINER"}]
    assert (out["dataSource"]["name"], out["dataSource"]["uri"]) == (
        "s3://lakehouse",
        "s3://lakehouse/curated/events/sessions",
    )
    assert [f["name"] for f in out["schema"]["fields"]] == ["user_id", "country", "started_at"]
    events_in = complete["inputs"][0]
    assert events_in["facets"]["schema"]["fields"][0] == {
        "name": "user_id",
        "type": "string",
        "description": "tokenized user",
        "ordinal_position": 1,
    }
    assert events_in["facets"]["dataQualityMetrics"]["rowCount"] == 1000
    assert events_in["inputFacets"]["dataQualityAssertions"]["assertions"] == [
        {"assertion": "not_null", "success": True, "column": "user_id"}
    ]


def test_local_lake_uses_file_namespace(emitted: Path, registry: Registry, tmp_path: Path) -> None:
    table = DatasetInfo(
        name="raw/iot/readings",
        uri=str(tmp_path / "lake" / "raw" / "iot" / "readings"),
        fields=[("device", "string", None)],
        version=0,
    )
    source = DatasetInfo(name="landing/iot", uri=str(tmp_path / "lake" / "landing" / "iot"))
    event = emit_run_event(
        "COMPLETE",
        DAGSTER_RUN,
        "iot_raw",
        [source],
        [table],
        namespace="explicit",
        event_time=dt.datetime.now(dt.UTC),
    )
    (line,) = _read(emitted)
    _validate(line, registry)
    assert line["job"]["namespace"] == "explicit" == event.job.namespace
    assert line["outputs"][0]["namespace"] == "file" and line["outputs"][0]["name"] == "raw/iot/readings"
    assert line["outputs"][0]["facets"]["dataSource"]["uri"].startswith("file:///")


def test_column_lineage_must_name_an_input(emitted: Path) -> None:
    with pytest.raises(ValueError, match="not inputs"):
        emit_run_event("START", DAGSTER_RUN, JOB, [USERS], [SESSIONS])
    assert not emitted.exists() or _read(emitted) == []


def test_client_configuration_wins(emitted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An OPENLINEAGE_CONFIG file's transport is used instead of the default file."""
    target = tmp_path / "configured.jsonl"
    config = tmp_path / "openlineage-config.yml"
    config.write_text(f"transport:\n  type: file\n  log_file_path: {target}\n  append: true\n")
    monkeypatch.setenv("OPENLINEAGE_CONFIG", str(config))
    emit_run_event("START", DAGSTER_RUN, JOB, [EVENTS, USERS], [SESSIONS])
    assert [e["eventType"] for e in _read(target)] == ["START"]
    assert not emitted.exists()
