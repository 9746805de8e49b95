"""Erasure's matching rules alone: a declared JSON path holds exactly the value or token, else nothing."""

from __future__ import annotations

import json

import pytest

from lakehouse.datasets import Dataset
from lakehouse.erasure import holds, mentions

ID, TOKEN = "6f1c2d3e-aaaa-bbbb-cccc-000000000001", "ab" * 32
TARGETS = (ID, TOKEN)
EVENT_PATHS = ("$.userId", "$.data.payload.userId")


@pytest.mark.parametrize(
    "line, expected",
    [
        (json.dumps({"userId": ID}), True),
        (json.dumps({"userId": TOKEN}), True),
        (json.dumps({"data": {"payload": {"userId": ID}}}), True),
        (json.dumps({"userId": ID + "99"}), False),  # an id this one is a prefix of
        (json.dumps({"userId": ID[:-1]}), False),  # a prefix of this id
        (json.dumps({"referrerId": ID}), False),  # an undeclared key
        (json.dumps({"data": {"userId": ID}}), False),  # the key at another depth
        (json.dumps({"data": json.dumps({"payload": {"userId": ID}})}), True),  # JSON text inside a string
        ('{"userId":"' + ID + '","eventType":"order.cre', True),  # malformed: the key and the whole value
        ('{"userId": "' + ID + '", "eventTy', True),
        ('{"userId":"' + ID[:20], False),  # malformed: a truncated id is nobody's
        ('{"note":"userId","x":"' + ID + '"', False),  # malformed: the value not after the key
        ("not json at all " + ID, False),
    ],
)
def test_a_line_matches_only_at_a_declared_path_holding_exactly_the_value(line: str, expected: bool):
    assert holds(line, EVENT_PATHS, TARGETS) is expected


def test_key_names_and_values_of_other_keys_match_nothing():
    line = json.dumps({"user_id": "u-0001", "status": "active", "region": "eu-west-1"})
    for value in ("user_id", "active", "eu-west-1", "status"):
        assert not holds(line, ("$.user_id",), (value, "token-of-" + value))


def test_a_quarantine_record_matches_by_its_column_or_inside_the_line_it_carries():
    paths = ("$.user_id", "$.line.user_id")
    assert holds(json.dumps({"user_id": ID, "line": "{}"}), paths, TARGETS)
    assert holds(json.dumps({"user_id": None, "line": json.dumps({"user_id": ID})}), paths, TARGETS)
    assert holds(json.dumps({"user_id": None, "line": '{"user_id":"' + ID + '","amo'}), paths, TARGETS)
    assert not holds(json.dumps({"user_id": None, "line": '{"user_id":"' + ID[:10]}), paths, TARGETS)
    assert not holds(json.dumps({"user_id": ID + "x", "line": "{}"}), paths, TARGETS)


def test_verification_finds_the_value_anywhere_as_a_whole_value_never_as_a_part():
    record = json.dumps({"line": json.dumps({"items": [{"buyer": ID}]}), "session": ID[:8] + "-20240101"})
    assert mentions(record, TARGETS) == ["$.line.items[0].buyer"]  # a form the delete's paths missed
    assert mentions('{"a":"x","b":"' + ID + '"', TARGETS) == ["$ (not JSON)"]
    assert mentions(json.dumps({"id": ID + "0", "key": "userId"}), TARGETS) == []
    assert mentions(json.dumps({"n": 1234}), ("1234",)) == ["$.n"]


def test_subject_paths_are_declared_on_raw_datasets_in_the_form_erasure_follows():
    raw = {"name": "r", "domain": "d", "layer": "raw", "description": "", "owner": "o", "landing": "r"}
    assert Dataset(**raw, subject_paths={"user_id": EVENT_PATHS}).subjects == ("user_id",)
    with pytest.raises(ValueError, match=r"subject paths must look like \$.key"):
        Dataset(**raw, subject_paths={"user_id": ("userId",)})
    with pytest.raises(ValueError, match="only raw datasets"):
        Dataset(
            name="p",
            domain="d",
            layer="processed",
            description="",
            owner="o",
            transform=lambda r: r,
            upstream=("raw/d/r",),
            subject_paths={"user_id": ("$.userId",)},
        )
