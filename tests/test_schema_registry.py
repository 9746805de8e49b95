"""The schema registry: versions in the catalog, compatibility modes, envelope versions, lineage, the CLI."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import uuid
from collections import Counter

import dagster as dg
import pytest
from deltalake import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from assets import events
from lakehouse import catalog, schemas, storage
from lakehouse.config import LakehouseConfig
from lakehouse.datasets import Dataset
from lakehouse.delta import SchemaPolicy
from lakehouse.openlineage import default_log_path, openlineage_run_id
from lakehouse.schemas import Compatibility as C
from lakehouse.schemas import SchemaField
from orchestration import cli, lineage, schemas_cli
from orchestration.factory import domain_assets
from synthetic.events import generate_day
from tests.helpers import counts_by_day, run_assets
from tests.test_openlineage import _rebuild, _validate, registry  # noqa: F401  (registry is a fixture)
from transforms import events as t

D1, D2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
ROWS = 300
COUNTS_ID = "curated.events.event_type_counts"


def event_type_counts(events: DataFrame) -> DataFrame:
    return events.groupBy("dt", "event_type").agg(F.count(F.lit(1)).alias("events"))


def event_type_counts_with_users(events: DataFrame) -> DataFrame:
    return events.groupBy("dt", "event_type").agg(
        F.count(F.lit(1)).alias("events"), F.countDistinct("user_id").alias("users")
    )


def event_type_counts_by_region(events: DataFrame) -> DataFrame:
    return events.groupBy("dt", "event_type", "region").agg(F.count(F.lit(1)).alias("events"))


def event_counts(events: DataFrame) -> DataFrame:
    return events.groupBy("dt").agg(F.count(F.lit(1)).alias("events"))


def parse_events_line_number_as_text(raw: DataFrame) -> DataFrame:
    return t.parse_events(raw).withColumn("line_number", F.col("line_number").cast("string"))


COUNTS = Dataset(
    name="event_type_counts",
    domain="events",
    layer="curated",
    owner="team:test",
    upstream=(events.PROCESSED.path,),
    transform=event_type_counts,
    primary_key=("dt", "event_type"),
    schema_policy=SchemaPolicy.ADDITIVE,
    description="Events per type and day.",
    retention_days=30,
)


def _valid_on(line: str, day: dt.date) -> bool:
    """A well-formed event of `day` (a model for lines of other versions)."""
    try:
        event = json.loads(line)
    except ValueError:
        return False
    complete = all(event.get(name) for name in t.REQUIRED_FIELDS)
    return complete and event["timestamp"].startswith(day.isoformat())


def _envelope(line: str, version: str, drop: str | None = None) -> str:
    event = {**json.loads(line), "eventId": str(uuid.uuid4()), "version": version}
    event.pop(drop, None)
    return json.dumps(event)


@pytest.fixture(scope="module")
def built(s3_server, spark, tmp_path_factory):
    """Raw, processed and a curated events table for D1..D2 in one run; D1 also has lines of envelope
    versions 2.0 (unknown), 2.1 without eventId (unknown) and 1.7 (known)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LAKEHOUSE_ROOT", f"s3://lakehouse/tests/schema-registry-{uuid.uuid4().hex[:8]}")
    config = LakehouseConfig.from_env()
    generated = {day: generate_day(day, ROWS) for day in (D1, D2)}
    for day in generated.values():
        day.write(config, "events")
    records = {day: g.record["expected"] for day, g in generated.items()}
    sample = next(line for line in generated[D1].sources["events"][0] if _valid_on(line, D1))
    extra = [_envelope(sample, "2.0"), _envelope(sample, "2.1", drop="eventId"), _envelope(sample, "1.7")]
    other_versions = f"{config.landing_uri('events', D1)}/events-00090.jsonl"
    storage.write_text(config, other_versions, "\n".join(extra) + "\n")
    with dg.DagsterInstance.local_temp(str(tmp_path_factory.mktemp("dagster_home"))) as instance:
        result = run_assets(instance, domain_assets([events.RAW, events.PROCESSED, COUNTS]), D1, D2)
        assert result.success
        yield config, instance, result, records, extra
    mp.undo()


def _table_version(config: LakehouseConfig, path: str) -> int:
    return DeltaTable(config.table_uri(*path.split("/")), storage_options=config.storage_options).version()


def test_every_write_records_its_schema_version(built, spark):
    config, _, result, _, _ = built
    [version] = schemas.history(config, COUNTS_ID)
    assert version.version == 1 and version.compatibility == "backward"
    assert version.fields == (
        SchemaField("dt", "date", True),
        SchemaField("event_type", "string", True),
        SchemaField("events", "bigint", False),
    )
    assert version.code_version == lineage.code_version(COUNTS)
    assert (version.first_partition, version.last_partition) == ("2024-01-01", "2024-01-02")
    [processed] = schemas.history(config, "processed.events.events")
    table = spark.read.format("delta").load(config.table_uri("processed", "events", "events"))
    assert [(f.name, f.type) for f in processed.fields] == [
        (f.name, f.dataType.simpleString()) for f in table.schema.fields
    ]
    assert [f.name for f in processed.fields if f.required] == ["dt", "event_id"]
    # the catalog and its lineage show the schema version of the write
    assert catalog.get_entry(config, COUNTS_ID)["schemaVersion"] == 1
    rows = {r["dataset_id"]: r for r in catalog._rows(config, "lineage") if r["run_id"] == result.run_id}
    assert rows[COUNTS_ID]["schema_version"] == 1 and rows["raw.events.events"]["schema_version"] == 1
    assert rows["quarantine.events.events"]["schema_version"] is None  # quarantine tables are not registered


def test_unknown_envelope_major_version_is_quarantined_and_rows_still_reconcile(built, spark):
    config, _, result, records, extra = built
    quarantine = spark.read.format("delta").load(config.table_uri("quarantine", "events", "events"))
    reasons = Counter(r["reason"] for r in quarantine.where(F.col("dt") == D1).collect())
    # an unknown version comes first: the line without eventId is not judged by version 1's rules
    assert reasons["unknown_version:2.0"] == 1 and reasons["unknown_version:2.1"] == 1
    processed = spark.read.format("delta").load(config.table_uri("processed", "events", "events"))
    known = json.loads(extra[2])["eventId"]
    assert [r["version"] for r in processed.where(F.col("event_id") == known).collect()] == ["1.7"]
    assert counts_by_day(spark, config.table_uri("raw", "events", "events"))[D1] == records[D1]["raw"] + 3
    assert counts_by_day(spark, config.table_uri("processed", "events", "events")) == {
        D1: records[D1]["processed"] + 1,
        D2: records[D2]["processed"],
    }
    assert sum(reasons.values()) == records[D1]["quarantined"] + 2
    [check] = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "rows_reconcile" and e.asset_key == dg.AssetKey(events.PROCESSED.key_path)
    ]
    assert check.passed


def test_a_compatible_change_is_a_new_version_shown_in_catalog_and_openlineage(built, registry):  # noqa: F811
    config, instance, first, _, _ = built
    widened = dataclasses.replace(COUNTS, transform=event_type_counts_with_users)
    second = run_assets(instance, domain_assets([widened]), D2)
    assert second.success
    old, new = schemas.history(config, COUNTS_ID)
    assert (old.version, old.first_partition, old.last_partition) == (1, "2024-01-01", "2024-01-02")
    assert new.version == 2 and new.fields[-1] == SchemaField("users", "bigint", False)
    assert new.code_version == lineage.code_version(widened) != old.code_version
    assert (new.first_partition, new.last_partition) == ("2024-01-02", "2024-01-02")
    assert catalog.get_entry(config, COUNTS_ID)["schemaVersion"] == 2
    by_run = {
        r["run_id"]: r["schema_version"]
        for r in catalog._rows(config, "lineage")
        if r["dataset_id"] == COUNTS_ID
    }
    assert by_run == {first.run_id: 1, second.run_id: 2}
    step = "curated__events__event_type_counts"
    [complete] = [
        json.loads(line)
        for line in default_log_path().read_text().splitlines()
        if openlineage_run_id(second.run_id, step) in line and '"COMPLETE"' in line
    ]
    _validate(complete, registry)
    _rebuild(complete)
    output = next(o for o in complete["outputs"] if o["name"] == COUNTS.path)
    tags = output["facets"]["tags"]["tags"]
    assert [(tag["key"], tag["value"], tag["source"]) for tag in tags] == [
        ("schemaVersion", "2", "lakehouse")
    ]
    # the same schema written to an older day is the same version, whose partition range grows
    assert run_assets(instance, domain_assets([widened]), D1).success
    assert [(v.version, v.first_partition, v.last_partition) for v in schemas.history(config, COUNTS_ID)] == [
        (1, "2024-01-01", "2024-01-02"),
        (2, "2024-01-01", "2024-01-02"),
    ]


@pytest.mark.parametrize(
    "dataset, fields, mode",
    [
        # backward: the new schema must read the old data; a retyped column cannot be read
        (
            dataclasses.replace(events.PROCESSED, transform=parse_events_line_number_as_text),
            ["line_number"],
            "backward",
        ),
        # full: adding a required field (a new key column) breaks reading the old data
        (
            dataclasses.replace(
                COUNTS,
                transform=event_type_counts_by_region,
                compatibility=C.FULL,
                primary_key=("dt", "event_type", "region"),
            ),
            ["region"],
            "full",
        ),
        # forward: old readers need the required field the new schema drops
        (
            dataclasses.replace(COUNTS, transform=event_counts, compatibility=C.FORWARD, primary_key=("dt",)),
            ["event_type"],
            "forward",
        ),
    ],
    ids=["backward-retype", "full-required-added", "forward-required-removed"],
)
def test_a_breaking_change_is_refused_before_any_write(built, dataset, fields, mode):
    config, instance, _, _, _ = built
    paths = [dataset.path, *([dataset.quarantine_path] if dataset.has_quarantine else [])]
    before = {path: _table_version(config, path) for path in paths}
    versions = schemas.history(config, catalog.dataset_id(dataset.path))
    result = run_assets(instance, domain_assets([dataset]), D2, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    error = failure.step_failure_data.error.cause or failure.step_failure_data.error
    message = error.message
    assert error.cls_name == "SchemaCompatibilityError"
    assert f"compatibility mode {mode}" in message and all(field in message for field in fields), message
    assert {path: _table_version(config, path) for path in paths} == before  # nothing written, quarantine too
    assert schemas.history(config, catalog.dataset_id(dataset.path)) == versions


def _fields(*spec: str) -> tuple[SchemaField, ...]:
    """ "name type" or "name type required"."""
    return tuple(SchemaField(words[0], words[1], len(words) > 2) for words in map(str.split, spec))


BASE = _fields("dt date required", "id string required", "amount int", "note string")
WIDE = _fields("dt date required", "id string required", "amount bigint", "note string")
TEXT = _fields("dt date required", "id string required", "amount string", "note string")
CHANGES = {  # old, new, the modes that allow it (Confluent's meanings); `none` allows everything
    "add optional": (BASE, (*BASE, *_fields("extra string")), {"backward", "forward", "full"}),
    "add required": (BASE, (*BASE, *_fields("key string required")), {"forward"}),
    "remove optional": (BASE, BASE[:3], {"backward", "forward", "full"}),
    "remove required": (BASE, (BASE[0], *BASE[2:]), {"backward"}),
    "widen int to bigint": (BASE, WIDE, {"backward"}),
    "narrow bigint to int": (WIDE, BASE, {"forward"}),
    "retype int to string": (BASE, TEXT, set()),
    "make optional required": (BASE, (*BASE[:3], *_fields("note string required")), {"forward"}),
    "make required optional": (BASE, (BASE[0], *_fields("id string"), *BASE[2:]), {"backward"}),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_mode_allows_and_refuses_what_confluent_says(change):
    old, new, allowed = CHANGES[change]
    assert {mode.value for mode in C if not schemas.problems(mode, old, new)} == allowed | {"none"}


def _record_write(config: LakehouseConfig, dataset: Dataset, fields, code_version: str, partitions) -> int:
    """Register a write as a step's catalog record does; the version's number."""
    row = schemas.written_version(config, dataset, fields, code_version, partitions)
    catalog.record_schema_version(config, row)
    return row["version"]


def test_a_refusal_names_the_fields_and_the_mode(lake):
    struct = T.StructType(
        [
            T.StructField("dt", T.DateType()),
            T.StructField("event_type", T.StringType()),
            T.StructField("events", T.IntegerType()),
        ]
    )
    _record_write(lake, COUNTS, schemas.struct_fields(COUNTS, struct), "v1", ["2024-01-01"])
    narrowed = T.StructType([*struct.fields[:2], T.StructField("events", T.ByteType())])
    for mode, refused in ((C.BACKWARD, True), (C.FULL, True), (C.FORWARD, False), (C.NONE, False)):
        dataset = dataclasses.replace(COUNTS, compatibility=mode)
        if refused:
            with pytest.raises(schemas.SchemaCompatibilityError) as caught:
                schemas.require_compatible(lake, dataset, narrowed)
            assert str(caught.value).startswith(
                "curated/events/event_type_counts: schema change of field(s) events refused by "
                f"compatibility mode {mode.value} (against version 1)"
            )
            assert "events (int -> tinyint)" in str(caught.value)
        else:
            found = schemas.require_compatible(lake, dataset, narrowed)
            assert found.verdict == f"compatible ({mode.value}): version 2"
    assert len(schemas.history(lake, COUNTS_ID)) == 1  # checking records nothing


def test_cli_history_diff_and_check(lake, spark, capsys):
    v1 = _fields("dt date required", "event_type string required", "events bigint")
    v2 = _fields("dt date required", "event_type string required", "events double", "users bigint")
    assert _record_write(lake, COUNTS, v1, "aaa111", ["2024-01-01"]) == 1
    assert _record_write(lake, COUNTS, v1, "bbb222", ["2024-01-03"]) == 1
    assert _record_write(lake, COUNTS, v2, "ccc333", ["2024-01-02"]) == 2

    assert cli.main(["schema", "history", COUNTS_ID]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines[3:5]]
    assert rows[0][:5] == ["1", "aaa111", "backward", "2024-01-01", "2024-01-03"]
    assert rows[0][-2:] == ["3", "fields"]
    assert rows[1][:5] == ["2", "ccc333", "backward", "2024-01-02", "2024-01-02"]
    assert lines[4].endswith("+users bigint, ~events bigint -> double")
    assert [line.split() for line in lines[-4:]] == [
        ["dt", "date", "yes"],
        ["event_type", "string", "yes"],
        ["events", "double", "no"],
        ["users", "bigint", "no"],
    ]
    assert cli.main(["schema", "history", "curated.events.nothing"]) == 1
    assert "no schema versions of 'curated.events.nothing'" in capsys.readouterr().err

    assert cli.main(["schema", "diff", "curated/events/event_type_counts", "1", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{COUNTS_ID} version 1 -> 2: +users bigint, ~events bigint -> double")
    assert "backward: allowed" in out and "none: allowed" in out
    assert (
        "forward: refused: old schema cannot read new data: type(s) that cannot be read: "
        "events (double -> bigint)"
    ) in out
    assert "full: refused" in out
    assert cli.main(["schema", "diff", COUNTS_ID, "1", "3"]) == 1
    assert "has no version 3 (versions: 1, 2)" in capsys.readouterr().err

    declared = [events.RAW, events.PROCESSED, events.HOURLY_EVENT_COUNTS, events.DAILY_ORDER_REVENUE]
    proposed = schemas_cli.proposed_schemas(spark, declared)
    processed = schemas.struct_fields(events.PROCESSED, proposed[events.PROCESSED.path])
    without_metadata = [f for f in processed if f.name != "metadata"]
    _record_write(lake, events.PROCESSED, without_metadata, "old", ["2024-01-01"])
    hourly = schemas.struct_fields(events.HOURLY_EVENT_COUNTS, proposed[events.HOURLY_EVENT_COUNTS.path])
    _record_write(lake, events.HOURLY_EVENT_COUNTS, hourly, "old", ["2024-01-01"])
    revenue = [
        dataclasses.replace(f, type="int") if f.name == "currency" else f
        for f in schemas.struct_fields(events.DAILY_ORDER_REVENUE, proposed[events.DAILY_ORDER_REVENUE.path])
    ]
    _record_write(lake, events.DAILY_ORDER_REVENUE, revenue, "old", ["2024-01-01"])
    assert schemas_cli.check_command(argparse.Namespace(), declared) == 1
    captured = capsys.readouterr()
    shown = {line.split()[0]: line for line in captured.out.splitlines()[2:]}
    assert shown["raw/events/events"].endswith("new: version 1")
    assert "+metadata string" in shown["processed/events/events"]
    assert shown["processed/events/events"].endswith("compatible (backward): version 2")
    hourly_line = shown["curated/events/hourly_event_counts"]
    assert "no change" in hourly_line and hourly_line.endswith("unchanged: version 1")
    assert (
        "refused (backward): new schema cannot read old data: type(s) that cannot be read: "
        "currency (int -> string)"
    ) in shown["curated/events/daily_order_revenue"]
    assert "1 dataset(s) would be refused: curated/events/daily_order_revenue" in captured.err
    assert len(schemas.history(lake, "processed.events.events")) == 1  # checking writes nothing

    # every declared dataset, dataset by dataset, from the current code
    from assets import DATASETS

    assert cli.main(["schema", "check"]) == 1
    shown = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(shown) == {d.path for d in DATASETS}
    assert shown["curated/events/quality_summary"].endswith("new: version 1")  # reads quality metrics
    assert sum(line.endswith("new: version 1") for line in shown.values()) == len(DATASETS) - 3
