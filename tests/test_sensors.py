"""The landing sensor asks for exactly the partitions whose landing files are new or changed."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from synthetic.events import generate_day

DAYS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]


def tick(instance, cursor):
    from orchestration.definitions import defs

    sensor = defs.resolve_sensor_def("events_landing_sensor")
    result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
    assert sensor.job_name == "events_daily"
    return [r.partition_key for r in result.run_requests], result.cursor


def test_new_and_changed_landing_days_are_requested_once(lake, instance):
    assert tick(instance, None)[0] == []
    for day in DAYS:
        generate_day(day, 200).write(lake, "events")
    requested, cursor = tick(instance, None)
    assert requested == ["2024-01-02", "2024-01-03"]
    assert tick(instance, cursor)[0] == []
    generate_day(DAYS[1], 300).write(lake, "events")  # a corrected delivery for one day
    generate_day(dt.date(2024, 1, 4), 100).write(lake, "commerce")  # another domain's landing
    requested, cursor = tick(instance, cursor)
    assert requested == ["2024-01-03"]
    assert tick(instance, cursor)[0] == []
