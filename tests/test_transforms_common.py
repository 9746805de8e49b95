"""Shared transforms: protection of personal data, residency, quarantine records."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from lakehouse.datasets import Dataset, Protection
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


def lines(engine, rows):
    return engine.createDataFrame(
        [(DAY, *row) for row in rows], "dt date, source_file string, line_number int, key string, value int"
    )


def test_deduplicate_keeps_the_first_row_by_file_and_line_and_groups_null_keys(engine):
    rows = [
        ("b.jsonl", 1, "k1", 1),
        ("a.jsonl", 9, "k1", 2),  # the first of k1: a.jsonl comes before b.jsonl
        ("a.jsonl", 2, None, 3),  # null keys are one key, as a window's partition is
        ("a.jsonl", 5, None, 4),
        ("a.jsonl", 3, "k2", 5),  # a key seen once
    ]
    kept = common.deduplicate(lines(engine, rows), ["key"])
    assert kept.columns == ["dt", "source_file", "line_number", "key", "value"]
    assert sorted(r["value"] for r in kept.collect()) == [2, 3, 5]
    firsts = {
        r["key"]: (r["first_file"], r["first_line"])
        for r in common.first_lines(lines(engine, rows), ["key"]).collect()
    }
    assert firsts == {"k1": ("a.jsonl", 9), None: ("a.jsonl", 2)}  # only repeated keys


def test_deduplicate_drops_no_row_of_the_first_line(engine):
    # two rows of one line with one key: neither is "later", so both stay for the key's uniqueness check
    rows = [("a.jsonl", 1, "k1", 1), ("a.jsonl", 1, "k1", 2), ("a.jsonl", 2, "k1", 3)]
    assert sorted(r["value"] for r in common.deduplicate(lines(engine, rows), ["key"]).collect()) == [1, 2]


def test_a_masked_column_cannot_be_a_deduplication_key():
    declared = {
        "name": "p",
        "domain": "d",
        "layer": "processed",
        "description": "",
        "owner": "o",
        "transform": lambda r: r,
        "upstream": ("raw/d/r",),
        "deduplicate_on": ("email",),
    }
    assert Dataset(**declared, personal_data={"email": Protection.TOKENIZE}).deduplicate_on == ("email",)
    with pytest.raises(ValueError, match=r"de-duplicate on no masked column \['email'\]"):
        Dataset(**declared, personal_data={"email": Protection.MASK})
