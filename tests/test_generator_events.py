"""The events generator: deterministic, and its record says exactly what it wrote."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

from synthetic.events import EVENT_TYPES, REQUIRED_FIELDS, generate_day

DAY = dt.date(2024, 3, 5)


def classify(lines: list[str]) -> Counter:
    """Count each kind of line by inspecting it, independently of the generator's bookkeeping."""
    kinds: Counter = Counter()
    seen: set[str] = set()
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            kinds["malformed_json"] += 1
            continue
        if any(name not in event for name in REQUIRED_FIELDS):
            kinds["missing_required_field"] += 1
            continue
        try:
            stamp = dt.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
        except ValueError:
            kinds["invalid_timestamp"] += 1
            continue
        if event["eventId"] in seen:
            kinds["duplicate_event_id"] += 1
            continue
        seen.add(event["eventId"])
        kinds["late_event" if stamp.date() < DAY else "valid"] += 1
    return kinds


def test_the_record_matches_the_lines_written():
    generated = generate_day(DAY, 10_000)
    lines = [line for file in generated.sources["events"] for line in file]
    kinds = classify(lines)
    record = generated.record
    assert record["lines"] == len(lines) == 10_000
    assert {kind: kinds[kind] for kind in record["bad"]} == record["bad"]
    assert sum(record["bad"].values()) == 200  # 2%
    assert all(count == 40 for count in record["bad"].values())
    assert record["expected"]["processed"] == kinds["valid"] + kinds["late_event"]


def test_generation_is_deterministic_per_day_and_seed():
    assert generate_day(DAY, 500).sources == generate_day(DAY, 500).sources
    assert generate_day(DAY, 500).sources != generate_day(DAY + dt.timedelta(days=1), 500).sources
    assert generate_day(DAY, 500, seed=1).sources != generate_day(DAY, 500, seed=2).sources


def test_distributions_look_like_a_real_platform():
    events = [json.loads(line) for line in generate_day(DAY, 20_000, bad_share=0).sources["events"][0]]
    types = Counter(e["eventType"] for e in events)
    assert set(types) == set(EVENT_TYPES)
    assert types["system.health.check"] > types["user.registered"] * 3
    hours = Counter(int(e["timestamp"][11:13]) for e in events)
    assert hours[15] > 2 * hours[3]  # business hours busier than the night
    users = Counter(e["userId"] for e in events)
    top_share = sum(count for _, count in users.most_common(len(users) // 100)) / len(events)
    assert top_share > 0.05  # heavy users: the top 1% of users produce more than 5% of events
    assert len({e["region"] for e in events}) == 3 and len({e["tenantId"] for e in events}) == 5


def test_large_days_are_split_into_several_files(monkeypatch):
    monkeypatch.setattr("synthetic.LINES_PER_FILE", 1_000)
    generated = generate_day(DAY, 2_500)
    assert [len(f) for f in generated.sources["events"]] == [1_000, 1_000, 500]
    assert generated.record["files"] == 3


def test_generated_ids_are_version_4_uuids_from_the_seeded_stream():
    import random
    import uuid

    from synthetic.population import new_uuid

    ours, reference = random.Random(3), random.Random(3)
    for _ in range(1000):
        assert new_uuid(ours) == str(uuid.UUID(int=reference.getrandbits(128), version=4))
