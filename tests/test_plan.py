"""`lakehouse plan` says what a backfill would do before it runs, and a run then does exactly that: the
rows it reads and writes per partition, the day it refuses because its landing files expired."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from assets import events
from lakehouse import landing, storage
from lakehouse.lake import Lake
from orchestration import cli
from orchestration.factory import domain_assets
from orchestration.plan import asset_plan, partition_range
from orchestration.resources import LakeResource
from synthetic.events import generate_day
from tests.helpers import counts_by_day, run_assets

EXPIRED, LANDED, NEW = dt.date(2024, 1, 3), dt.date(2024, 1, 4), dt.date(2024, 1, 5)
RAW_AND_PROCESSED = domain_assets([events.RAW, events.PROCESSED])
SELECTION = "key:raw/events/events or key:processed/events/events"


def _graph():
    return dg.Definitions(assets=RAW_AND_PROCESSED, resources={"lake": LakeResource()}).resolve_asset_graph()


def test_the_plan_of_a_backfill_matches_what_the_run_then_does(spark, lake, instance, capsys):
    for day in (EXPIRED, LANDED):
        generate_day(day, 200).write(lake, "events")
    assert run_assets(instance, RAW_AND_PROCESSED, EXPIRED, LANDED).success
    storage.delete_files(lake, landing.landing_files(lake, "events", [EXPIRED], "events")[EXPIRED])
    generate_day(LANDED, 300, seed=11).write(lake, "events")  # new input for a day already built
    generate_day(NEW, 250).write(lake, "events")
    raw_uri = lake.table_uri("raw", "events", "events")
    raw_before = counts_by_day(spark, raw_uri)

    steps = asset_plan(_graph(), SELECTION, [events.RAW, events.PROCESSED], [EXPIRED, LANDED, NEW], Lake())
    by = {(s.asset, s.day): s for s in steps}
    assert [s.asset for s in steps] == ["raw/events/events"] * 3 + ["processed/events/events"] * 3
    assert by[("raw/events/events", EXPIRED)].action == "refused: landing expired"
    assert by[("raw/events/events", EXPIRED)].landing == "missing"
    assert by[("raw/events/events", LANDED)].rows == raw_before[LANDED]  # what the table holds now
    assert by[("raw/events/events", NEW)].version == by[("raw/events/events", LANDED)].version is not None
    assert by[("raw/events/events", NEW)].rows == 0
    assert by[
        ("raw/events/events", LANDED)
    ].downstream == (  # the derived step's tables: rows, quarantine, metrics
        "processed/events/events",
        "quality/events/processed_events",
        "quarantine/events/events",
    )

    result = run_assets(instance, RAW_AND_PROCESSED, EXPIRED, NEW)
    assert result.success
    raw_after = counts_by_day(spark, raw_uri)
    for day in (EXPIRED, LANDED, NEW):
        assert raw_after[day] == by[("raw/events/events", day)].estimated_rows, day
    key = dg.AssetKey(["processed", "events", "events"])
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == key}
    partitions = evaluations["rows_reconcile"].metadata["partitions"].value
    for day in (LANDED, NEW):  # the processed step judged exactly the rows the plan announced
        assert partitions[day.isoformat()]["input"] == by[("processed/events/events", day)].estimated_rows

    from orchestration.definitions import defs

    config = {"select": "key:raw/events/events+", "partition_range": "2024-01-03...2024-01-05"}
    planned = defs.resolve_job_def("plan_job").execute_in_process(
        instance=instance, run_config={"ops": {"plan_backfill": {"config": config}}}
    )
    output = [e for e in planned.all_node_events if e.event_type_value == "STEP_OUTPUT"][0]
    shown = {k: v.value for k, v in output.event_specific_data.metadata.items()}
    assert shown["refused"] == ["raw/events/events 2024-01-03: refused: landing expired"]
    assert (
        "| raw/events/events | 2024-01-04 |" in shown["plan"]
        and "features/" not in shown["plan"].split("\n")[2]
    )

    capsys.readouterr()
    assert (
        cli.main(
            ["plan", "--select", "key:raw/events/events", "--partition-range", "2024-01-03...2024-01-05"]
        )
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == [
        "asset",
        "partition",
        "version",
        "rows",
        "landing",
        "action",
        "estimated",
        "rows",
        "downstream",
    ]
    assert len(printed) == 2 + 3 and "refused: landing expired" in printed[2]


def test_partition_ranges_are_inclusive_and_ordered():
    assert partition_range("2024-01-30...2024-02-02") == [
        dt.date(2024, 1, 30),
        dt.date(2024, 1, 31),
        dt.date(2024, 2, 1),
        dt.date(2024, 2, 2),
    ]
    assert partition_range("2024-01-03") == [dt.date(2024, 1, 3)]
    try:
        partition_range("2024-01-05...2024-01-03")
    except ValueError as error:
        assert "the end is before the start" in str(error)
    else:
        raise AssertionError("a reversed range was accepted")
