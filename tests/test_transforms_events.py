"""Events transforms on small in-memory DataFrames, on Sail and on Apache Spark's own Spark Connect server."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from transforms import common
from transforms import events as t

DAY = dt.date(2024, 1, 2)
UUIDS = [
    "3f1c2a4e-8b7d-4c1e-9a2b-1234567890ab",
    "9b2d7e1f-0c3a-4d5e-8f6a-abcdefabcdef",
    "0a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
]


def event(event_id=UUIDS[0], event_type="order.created", ts="2024-01-02T10:15:00.000Z", **extra):
    envelope = {
        "eventId": event_id,
        "eventType": event_type,
        "eventSource": "order-service",
        "timestamp": ts,
        "version": "1.0",
        "data": {"payload": {"totalAmount": 12.5, "currency": "EUR"}, "metadata": {}},
        "correlationId": "c-1",
        "userId": "u-1",
        "sessionId": "s-1",
        "environment": "production",
        "region": "eu-west-1",
        "tenantId": "tenant-acme",
    }
    envelope.update(extra)
    return json.dumps({k: v for k, v in envelope.items() if v is not None}, separators=(",", ":"))


LINES = [
    event(),  # 1 valid
    event(),  # 2 duplicate of line 1
    event(
        UUIDS[1],
        "user.registered",
        "2024-01-01T23:59:59.500Z",  # 3 valid, late (previous day)
        data={
            "payload": {"email": "a@example.com", "firstName": "Ada", "source": "web"},
            "metadata": {"ipAddress": "10.1.2.3", "userAgent": "curl"},
        },
    ),
    '{"eventId":"' + UUIDS[2] + '","eventType":"order.cr',  # 4 malformed
    event(UUIDS[2], timestamp=None),  # 5 missing timestamp
    event(UUIDS[2], ts="2024-13-45T25:61:00Z"),  # 6 invalid timestamp
    event("not-a-uuid"),  # 7 invalid event id
    event(UUIDS[2], "payment.refunded"),  # 8 unknown type
    event(
        UUIDS[2],
        ts="2024-01-02T12:00:00+02:00",  # 9 valid, offset time, USD order
        data={"payload": {"totalAmount": "7.25", "currency": "USD"}, "metadata": {}},
    ),
]


@pytest.fixture()
def raw(engine):
    rows = [
        (DAY, "s3://lake/landing/events/dt=2024-01-02/part-00000.jsonl", i + 1, line)
        for i, line in enumerate(LINES)
    ]
    return engine.createDataFrame(rows, "dt date, source_file string, line_number int, line string")


def test_parse_assigns_the_first_broken_rule(raw):
    reasons = {
        r["line_number"]: r["quarantine_reason"]
        for r in t.parse_events(raw).select("line_number", "quarantine_reason").collect()
    }
    assert reasons == {
        1: None,
        2: None,
        3: None,
        4: "malformed_json",
        5: "missing_required_field:timestamp",
        6: "invalid_timestamp",
        7: "invalid_event_id",
        8: "unknown_event_type",
        9: None,
    }


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{}", "missing_required_field:eventId"),  # an object, without the envelope's fields
        ('{"other":{"eventId":"x"}}', "missing_required_field:eventId"),
        ('{"eventId":null,"eventType":null}', "missing_required_field:eventId"),
        ("[1,2]", "malformed_json"),  # JSON, but not an object
        ('"text"', "malformed_json"),
        ("", "malformed_json"),
        (event()[:-1], "malformed_json"),  # cut short (text after a whole object: Spark reads the object)
    ],
)
def test_malformed_means_not_one_json_object(engine, line, reason):
    rows = engine.createDataFrame(
        [(DAY, "f.jsonl", 1, line)], "dt date, source_file string, line_number int, line string"
    )
    assert t.parse_events(rows).first()["quarantine_reason"] == reason


def processed(raw):
    return common.deduplicate(common.accepted_rows(t.parse_events(raw)), ["event_id"])


def test_processed_deduplicates_types_and_flags_late_events(raw):
    rows = {r["line_number"]: r for r in processed(raw).collect()}
    assert sorted(rows) == [1, 3, 9]  # line 2 repeats line 1's eventId; the first line wins
    assert "_line" not in processed(raw).columns and "quarantine_reason" not in processed(raw).columns
    assert rows[1]["event_ts"] == dt.datetime(2024, 1, 2, 10, 15)
    assert rows[9]["event_ts"] == dt.datetime(2024, 1, 2, 10, 0)  # +02:00 normalized to UTC
    assert [rows[n]["is_late"] for n in (1, 3, 9)] == [False, True, False]
    assert rows[3]["event_date"] == dt.date(2024, 1, 1) and rows[3]["dt"] == DAY
    assert rows[1]["tenant_id"] == "tenant-acme" and rows[1]["region"] == "eu-west-1"


def test_personal_fields_are_lifted_out_of_the_json(raw):
    row = processed(raw).where("line_number = 3").first()
    assert (row["email"], row["first_name"], row["ip_address"]) == ("a@example.com", "Ada", "10.1.2.3")
    assert json.loads(row["payload"]) == {"email": None, "firstName": None, "source": "web"}
    assert json.loads(row["metadata"]) == {"ipAddress": None, "userAgent": "curl"}


def test_quarantine_keeps_the_line_and_reason(raw):
    stamp = dt.datetime(2024, 1, 3, 0, 0)
    rows = common.quarantine_records(t.parse_events(raw), "run-1", stamp).orderBy("line_number").collect()
    assert [(r["line_number"], r["reason"]) for r in rows] == [
        (4, "malformed_json"),
        (5, "missing_required_field:timestamp"),
        (6, "invalid_timestamp"),
        (7, "invalid_event_id"),
        (8, "unknown_event_type"),
    ]
    assert json.loads(rows[0]["record"])["line"] == LINES[3] and {r["run_id"] for r in rows} == {"run-1"}
    # every input line is accounted for: processed + duplicates + quarantined
    assert 3 + 1 + len(rows) == len(LINES)


def test_raw_keeps_every_line_with_ingestion_metadata(raw):
    stamp = dt.datetime(2024, 1, 3, 1, 2, 3)
    rows = common.raw_lines(raw, "run-7", stamp).collect()
    assert len(rows) == len(LINES)
    assert {(r["run_id"], r["ingested_at"]) for r in rows} == {("run-7", stamp)}
    assert [r["line"] for r in sorted(rows, key=lambda r: r["line_number"])] == LINES


def test_curated_aggregates(raw):
    events = processed(raw)
    hourly = {
        (r["event_hour"], r["event_type"]): (r["event_count"], r["unique_users"])
        for r in t.hourly_event_counts(events).collect()
    }
    assert hourly == {
        (dt.datetime(2024, 1, 2, 10), "order.created"): (2, 1),
        (dt.datetime(2024, 1, 1, 23), "user.registered"): (1, 1),
    }
    dau = [tuple(r) for r in t.daily_active_users(events).collect()]
    assert dau == [(DAY, 1, 1, 3, 1)]
    revenue = {
        r["currency"]: (r["orders"], r["revenue"], r["orders_without_amount"])
        for r in t.daily_order_revenue(events).collect()
    }
    assert revenue == {"EUR": (1, Decimal("12.50"), 0), "USD": (1, Decimal("7.25"), 0)}
