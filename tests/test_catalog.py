"""The catalog after materializing two partitions of every domain through Dagster."""

from __future__ import annotations

import datetime as dt
import importlib
import json

import dagster as dg
import pytest

from lakehouse import catalog
from lakehouse.catalog import dataset_id
from lakehouse.config import LakehouseConfig
from lakehouse.datasets import Dataset
from lakehouse.openlineage import default_log_path, openlineage_run_id
from orchestration.cli import GENERATORS
from orchestration.factory import domain_assets
from tests.helpers import run_assets
from tests.test_openlineage import _rebuild, _validate, registry  # noqa: F401  (registry is a fixture)

DAYS = [dt.date(2024, 1, 4), dt.date(2024, 1, 5)]
ROWS = 400


@pytest.fixture(scope="module")
def built(s3_server, spark, tmp_path_factory):
    """Every domain, two partitions, one run; then the same range again (a re-run)."""
    from orchestration.definitions import defs

    mp = pytest.MonkeyPatch()
    mp.setenv("LAKEHOUSE_ROOT", f"s3://lakehouse/tests/catalog-{dt.datetime.now().timestamp():.0f}")
    config = LakehouseConfig.from_env()
    for domain, module in GENERATORS.items():
        for day in DAYS:
            importlib.import_module(module).generate_day(day, ROWS).write(config, domain)
    home = tmp_path_factory.mktemp("dagster_home")
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        first = run_assets(instance, list(defs.assets), DAYS[0], DAYS[-1])
        assert first.success
        before = catalog.list_entries(config)
        second = run_assets(instance, list(defs.assets), DAYS[0], DAYS[-1])
        assert second.success
        yield config, before, first.run_id, second.run_id, instance
    mp.undo()


def test_every_dataset_is_in_the_catalog_with_schema_and_owner(built, spark):
    from orchestration.definitions import DATASETS

    config, _, _, last_run, _ = built
    entries = {e["datasetId"]: e for e in catalog.list_entries(config)}
    for dataset in DATASETS:
        entry = entries[dataset_id(dataset.path)]
        table = spark.read.format("delta").load(config.table_uri(dataset.layer, dataset.domain, dataset.name))
        assert [(f["name"], f["type"]) for f in entry["schema"]["fields"]] == [
            (f.name, f.dataType.simpleString()) for f in table.schema.fields
        ]
        assert (entry["owner"], entry["domain"], entry["layer"]) == (
            dataset.owner,
            dataset.domain,
            dataset.layer,
        )
        assert entry["location"] == config.table_uri(dataset.layer, dataset.domain, dataset.name)
        assert entry["lastRunId"] == last_run and entry["latestPartition"] == DAYS[-1].isoformat()
        assert entry["rowCount"] == table.count()
        assert entry["retentionDays"] == dataset.retention_days
        if dataset.has_quarantine:
            assert dataset_id(dataset.quarantine_path) in entries
    processed = entries["processed.events.events"]
    assert processed["classification"]["email"] == "restricted" and "gdpr" in processed["tags"]
    assert processed["subjectColumns"] == ["user_id"] and processed["regions"] == [
        "us-east-1",
        "eu-west-1",
        "ap-southeast-1",
    ]


def test_rerun_updates_and_never_duplicates(built):
    config, before, first_run, last_run, _ = built
    after = catalog.list_entries(config)
    assert [e["datasetId"] for e in after] == [e["datasetId"] for e in before]
    by_id = {e["datasetId"]: e for e in before}
    for entry in after:
        assert entry["createdAt"] == by_id[entry["datasetId"]]["createdAt"]
        assert entry["updatedAt"] > by_id[entry["datasetId"]]["updatedAt"]
    rows = catalog._rows(config, "lineage")
    keys = [(r["run_id"], r["dataset_id"]) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * len(after)  # one per run and table
    assert {r["run_id"] for r in rows} == {first_run, last_run}


def test_lineage_walks_from_curated_back_to_landing(built):
    config, *_ = built
    chain = [
        step["datasetId"] for step in catalog.lineage(config, "curated.commerce.daily_revenue_by_currency")
    ]
    assert chain[0] == "processed.commerce.orders"
    assert "raw.commerce.orders" in chain and "landing.commerce.orders" in chain
    assert chain.index("raw.commerce.orders") < chain.index("landing.commerce.orders")
    downstream = [step["datasetId"] for step in catalog.lineage(config, "raw.events.events", "downstream")]
    assert downstream[0] == "processed.events.events"
    assert {"curated.events.daily_active_users", "curated.events.hourly_event_counts"} <= set(downstream)
    record = [
        r for r in catalog._rows(config, "lineage") if r["dataset_id"] == "curated.events.daily_active_users"
    ]
    upstream = json.loads(record[-1]["upstream_json"])
    assert [u["dataset_id"] for u in upstream] == ["processed.events.events"]
    assert isinstance(upstream[0]["version"], int)
    assert sorted(record[-1]["partitions"]) == [d.isoformat() for d in DAYS]


def test_column_lineage_in_the_catalog_and_in_dagster(built):
    config, _, _, _, instance = built
    entry = catalog.get_entry(config, "curated.events.daily_order_revenue")
    assert entry["columnLineage"]["revenue"] == [
        {"datasetId": "processed.events.events", "column": "event_type"},
        {"datasetId": "processed.events.events", "column": "payload"},
    ]
    assert entry["columnLineage"]["dt"] == [{"datasetId": "processed.events.events", "column": "dt"}]
    processed = catalog.get_entry(config, "processed.events.events")
    assert processed["columnLineage"]["event_id"] == [{"datasetId": "raw.events.events", "column": "line"}]
    event = instance.get_latest_materialization_event(
        dg.AssetKey(["curated", "events", "daily_active_users"])
    )
    deps = event.asset_materialization.metadata["dagster/column_lineage"].value.deps_by_column
    assert [(d.asset_key.path, d.column_name) for d in deps["active_users"]] == [
        (["processed", "events", "events"], "user_id")
    ]


def test_a_failed_run_leaves_the_catalog_as_it_was(built):
    from assets import events

    config, *_ = built
    fail = {"now": False}

    def flaky(events_rows):
        if fail["now"]:
            raise RuntimeError("transform broke on purpose")
        return events_rows.groupBy("dt").count()

    flaky_dataset = Dataset(
        name="flaky_counts",
        domain="events",
        layer="curated",
        owner="team:test",
        description="Fails when told to.",
        upstream=(events.PROCESSED.path,),
        transform=flaky,
    )
    assets = domain_assets([flaky_dataset])
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_assets(instance, assets, DAYS[0]).success
        before = catalog.get_entry(config, "curated.events.flaky_counts")
        lineage_rows = len(catalog._rows(config, "lineage"))
        fail["now"] = True
        result = run_assets(instance, assets, DAYS[0], raise_on_error=False)
        assert result.run_id
        assert not result.success
    assert catalog.get_entry(config, "curated.events.flaky_counts") == before
    assert len(catalog._rows(config, "lineage")) == lineage_rows
    failed = [e for e in emitted_events() if e["run"]["runId"] == openlineage_run_id(result.run_id, STEP)]
    assert [e["eventType"] for e in failed] == ["START", "FAIL"]
    assert "RuntimeError: transform broke on purpose" in failed[1]["run"]["facets"]["errorMessage"]["message"]


STEP = "curated__events__flaky_counts"


def emitted_events() -> list[dict]:
    return [json.loads(line) for line in default_log_path().read_text().splitlines()]


def test_every_step_emits_valid_openlineage_start_then_complete(built, registry):  # noqa: F811
    from orchestration.definitions import DATASETS

    config, _, _, last_run, _ = built
    events = emitted_events()
    for dataset in DATASETS:
        step = dataset.path.replace("/", "__")
        run = [e for e in events if e["run"]["runId"] == openlineage_run_id(last_run, step)]
        assert [e["eventType"] for e in run] == ["START", "COMPLETE"], step
        start, complete = run
        for event in run:
            _validate(event, registry)
            _rebuild(event)
        assert start["job"] == complete["job"] and complete["job"]["name"] == step
        outputs = {o["name"]: o for o in complete["outputs"]}
        assert [o["name"] for o in start["outputs"]] == list(outputs)
        output = outputs[dataset.path]
        entry = catalog.get_entry(config, dataset_id(dataset.path))
        assert output["facets"]["version"]["datasetVersion"] == str(entry["deltaVersion"])
        assert [f["name"] for f in output["facets"]["schema"]["fields"]] == [
            f["name"] for f in entry["schema"]["fields"]
        ]
        assert output["facets"]["ownership"]["owners"][0]["name"] == dataset.owner
        expected_inputs = (
            {f"landing/{dataset.domain}/{dataset.landing}"}
            if dataset.layer == "raw"
            else set(dataset.upstream)
        )
        assert {i["name"] for i in complete["inputs"]} == expected_inputs
    revenue = [
        e
        for e in events
        if e["eventType"] == "COMPLETE"
        and e["run"]["runId"] == openlineage_run_id(last_run, "curated__events__daily_order_revenue")
    ][0]
    fields = revenue["outputs"][0]["facets"]["columnLineage"]["fields"]["revenue"]["inputFields"]
    assert [(f["name"], f["field"]) for f in fields] == [
        ("processed/events/events", "event_type"),
        ("processed/events/events", "payload"),
    ]


def _lineage_row(run_id: str, rows: int) -> dict:
    return {
        "run_id": run_id,
        "dataset_id": "curated.qa.daily",
        "dataset_version": rows,
        "partitions": ["2024-01-04"],
        "upstream_json": "[]",
        "code_version": "v1",
        "row_count": rows,
        "recorded_at": dt.datetime.now(dt.UTC),
        "schema_version": 1,
    }


def test_a_catalog_merge_reads_only_the_files_its_keys_can_be_in(lake):
    """Every run adds a lineage file: a merge that read them all grew slower with every run."""
    runs = [f"run-{n}" for n in range(6)]
    for n, run_id in enumerate(runs):
        catalog._upsert(lake, "lineage", [_lineage_row(run_id, n)])
    added = catalog._upsert(lake, "lineage", [_lineage_row("run-new", 6)])
    assert (added["num_target_files_scanned"], added["num_target_files_skipped_during_scan"]) == (0, 6)
    again = catalog._upsert(lake, "lineage", [_lineage_row("run-2", 20)])  # the same key: updated in place
    assert again["num_target_files_scanned"] == 1 and again["num_target_rows_updated"] == 1
    rows = {r["run_id"]: r["row_count"] for r in catalog.materializations(lake)}
    assert rows == {**{run_id: n for n, run_id in enumerate(runs)}, "run-new": 6, "run-2": 20}
