"""Shared transforms: protection of personal data, residency, quarantine records."""

from __future__ import annotations

import datetime as dt
import json

from lakehouse.datasets import Protection
from transforms import common

DAY = dt.date(2024, 1, 2)


def people(engine):
    return engine.createDataFrame(
        [
            (DAY, "ada@example.com", "Ada", "10.1.2.3", "eu-west-1"),
            (DAY, "bob@example.org", "Bob", None, "us-east-1"),
            (DAY, None, None, "192.168.0.1", None),
        ],
        "dt date, email string, name string, ip string, region string",
    )


def test_tokenize_is_keyed_deterministic_and_keeps_nulls(engine):
    df = people(engine)
    first = [r["email"] for r in common.protect(df, {"email": Protection.TOKENIZE}, "key-1").collect()]
    again = [r["email"] for r in common.protect(df, {"email": Protection.TOKENIZE}, "key-1").collect()]
    other = [r["email"] for r in common.protect(df, {"email": Protection.TOKENIZE}, "key-2").collect()]
    assert first == again and first[2] is None
    assert len(first[0]) == 64 and first[0] != first[1] and "ada" not in first[0]
    assert first[0] != other[0]


def test_a_declared_json_field_gets_the_token_of_its_column_at_any_depth(engine):
    payloads = [
        '{"orderId":"o-1","userId":"u-1","items":[{"userId": "u\\"2"}]}',
        '{"userId":42,"n":{"userId":4}}',
        '{"other":"userId"}',
        None,
    ]
    df = engine.createDataFrame(
        [(DAY, p, u) for p, u in zip(payloads, ["u-1", "42", None, None])],
        "dt date, payload string, user_id string",
    )
    rows = common.protect(
        df, {"user_id": Protection.TOKENIZE, "payload.userId": Protection.TOKENIZE}, "key-1"
    ).collect()
    parsed = [json.loads(r["payload"]) if r["payload"] else None for r in rows]
    assert parsed[0]["userId"] == rows[0]["user_id"] == common_token(engine, "u-1")
    assert parsed[0]["orderId"] == "o-1"
    assert parsed[0]["items"][0]["userId"] == common_token(engine, 'u"2')
    assert parsed[1] == {"userId": rows[1]["user_id"], "n": {"userId": common_token(engine, "4")}}
    assert parsed[2] == {"other": "userId"} and parsed[3] is None


def common_token(engine, value: str) -> str:
    df = engine.createDataFrame([(value,)], "v string")
    return common.protect(df, {"v": Protection.TOKENIZE}, "key-1").collect()[0]["v"]


def test_mask_keeps_a_recognisable_shape(engine):
    rows = common.protect(
        people(engine), {"email": Protection.MASK, "name": Protection.MASK, "ip": Protection.MASK}, "k"
    ).collect()
    assert [(r["email"], r["name"], r["ip"]) for r in rows] == [
        ("a***@example.com", "A***", "10.1.x.x"),
        ("b***@example.org", "B***", None),
        (None, None, "192.168.x.x"),
    ]


def test_rows_from_regions_not_allowed_are_marked_for_quarantine(engine):
    marked = common.require_region(people(engine), "region", ["eu-west-1"])
    assert [r["quarantine_reason"] for r in marked.collect()] == [
        None,
        "region_not_allowed:us-east-1",
        "region_not_allowed:null",
    ]
    assert [r["email"] for r in common.accepted_rows(marked).collect()] == ["ada@example.com"]
    records = common.quarantine_records(marked, "run-1", dt.datetime(2024, 1, 3)).collect()
    assert [json.loads(r["record"]).get("email") for r in records] == ["bob@example.org", None]
    assert {r["source_file"] for r in records} == {None}
