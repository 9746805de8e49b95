"""The bench's single-machine peer reproduces our events day: same counts, same curated values, same
protected personal data, on real S3, Sail, Delta and a Dagster instance (what `make bench` relies on
when it compares speeds)."""

from __future__ import annotations

import datetime as dt
import json

from deltalake import DeltaTable

from benchmarks import peer, pipeline, suite
from synthetic.events import generate_day

DAY = dt.date(2024, 1, 1)


def _parsed(line: str) -> dict:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return {}


def _with_rule_breakers(generated) -> None:
    """Add lines the residency and envelope-version rules quarantine (the generator writes none)."""
    [files] = generated.sources.values()
    valid = next(
        event
        for event in map(_parsed, files[0])
        if event.get("eventType") == "system.health.check" and event.get("region") == "eu-west-1"
    )
    files[-1] += [
        json.dumps({**valid, "eventId": "00000000-0000-4000-8000-000000000001", "region": "mars-1"}),
        json.dumps({**valid, "eventId": "00000000-0000-4000-8000-000000000002", "version": "2.0"}),
    ]


def test_peer_reproduces_our_day(lake, spark, instance):
    generated = generate_day(DAY, 300)
    _with_rule_breakers(generated)
    generated.write(lake, "events")
    from orchestration.definitions import defs

    result = defs.resolve_job_def("events_daily").execute_in_process(
        instance=instance, partition_key=DAY.isoformat()
    )
    assert result.success
    metadata = {
        "/".join(event.materialization.asset_key.path): {
            k: v.value for k, v in event.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }
    ours = pipeline._counts(lake, "events", DAY, metadata)
    theirs = peer.run(lake, "events", DAY, run_id="test").counts

    expected = generated.record["expected"]
    assert theirs["quarantined"] == expected["quarantined"] + 2 == ours["quarantine/events/events"]
    assert theirs["duplicates"] == expected["duplicates"] == ours["processed/events/events:duplicates"]
    assert theirs["processed"] == expected["processed"] == ours["processed/events/events"]
    assert suite._peer_agrees(ours, theirs, "events") == []
    assert suite._curated_values_agree(lake, "events") == []
    assert suite._processed_sample_agrees(lake, "events", prefix="") == []
    reasons = set(
        DeltaTable(f"{lake.root}/peer/events/quarantine", storage_options=lake.storage_options).to_pandas(
            columns=["reason"]
        )["reason"]
    )
    assert {"region_not_allowed:mars-1", "unknown_version:2.0", "malformed_json"} <= reasons


def test_peer_differences_are_named():
    ours = {
        "processed/events/events": 10,
        "quarantine/events/events": 2,
        "processed/events/events:duplicates": 1,
        "curated/events/hourly_event_counts": 5,
        "curated/events/daily_active_users": 1,
        "curated/events/daily_order_revenue": 3,
    }
    theirs = {
        "processed": 11,
        "quarantined": 2,
        "duplicates": 0,
        "hourly_event_counts": 5,
        "daily_active_users": 1,
        "daily_order_revenue": 3,
    }
    assert suite._peer_agrees(ours, theirs, "events") == [
        "processed: peer 11, ours 10",
        "duplicates: peer 0, ours 1",
    ]
