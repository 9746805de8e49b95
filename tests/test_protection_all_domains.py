"""Every domain, one day, through Dagster: no subject id (user, customer, account), email, name or IP address
from the landing files survives into any processed or curated column, inside JSON text included, and every
declared tenant/region column is there.

A value is found when a column holds it whole, when a JSON text (a column value, at any depth) holds it as a
string or number, or, for ids, emails and IPs, when it is one of the id-, email- or IP-shaped words of a
longer text. Names are only looked for whole (as values or JSON members): a first name can be a word of
another value."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import re
from collections import Counter
from collections.abc import Iterator

from orchestration.cli import GENERATORS
from tests.helpers import run_assets

DAY = dt.date(2024, 1, 3)
ROWS = 600
SUBJECT_ID_KEYS = {"userId", "user_id", "customerId", "customer_id", "accountId", "account_id"}
EMAIL_OR_IP_KEYS = {"email", "ipAddress", "ip_address", "ip"}
NAME_KEYS = {"firstName", "lastName", "first_name", "last_name", "name", "counterparty_name"}
WORD = re.compile(r"[A-Za-z0-9@._+-]+")  # the ids, emails and IPs of a longer text are such words


def leaves(value, key: str | None = None) -> Iterator[tuple[str | None, str]]:
    """(key, text) of every scalar in a parsed JSON value or a collected row, at any depth."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, k)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from leaves(v, key)
    elif value is not None and not isinstance(value, bool):
        yield key, str(value)


def as_json(text: str):
    if text[:1] in "{[":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return None
    return None


def found_in(text: str, words: set[str], names: set[str]) -> str | None:
    """The personal value `text` reveals, if any (see the module docstring)."""
    if text in words or text in names:
        return text
    parsed = as_json(text)
    for _, leaf in leaves(parsed) if parsed is not None else ():
        if leaf in words or leaf in names:
            return leaf
    return next((w for w in (m.rstrip(".") for m in WORD.findall(text)) if w in words), None)


def test_finding_sees_json_members_and_words_but_not_parts_of_words():
    words, names = {"0b1c2d3e-aaaa-4bbb-8ccc-123456789abc", "a.b@example.com", "10.1.2.3"}, {"Ken"}
    assert found_in('{"x":{"userId":"0b1c2d3e-aaaa-4bbb-8ccc-123456789abc"}}', words, names)
    assert found_in('{"who":["Ken"]}', words, names) == "Ken"
    assert found_in("Draft an email to Ada <a.b@example.com>.", words, names) == "a.b@example.com"
    assert found_in("from 10.1.2.3.", words, names) == "10.1.2.3"
    assert found_in("0b1c2d3e-20240103-1", words, names) is None  # a session id: the id's first 8 characters
    assert found_in("10.1.2.34", words, names) is None
    assert found_in("tokens of Kenneth", words, names) is None


def test_no_personal_data_beyond_raw_in_any_domain(spark, lake, instance):
    from orchestration.definitions import DATASETS, defs

    found: dict[str, set[str]] = {"ids": set(), "emails_and_ips": set(), "names": set()}
    for domain, module in GENERATORS.items():
        generated = importlib.import_module(module).generate_day(DAY, ROWS)
        generated.write(lake, domain)
        # a tenant's name is an organisation's (Data Plane `tenants`), not a person's: not searched
        people = (files for source, files in generated.sources.items() if source != "tenants")
        for line in (line for files in people for file in files for line in file):
            try:
                parsed = json.loads(line)
            except json.JSONDecodeError:
                continue
            for key, value in leaves(parsed):
                kind = (
                    "ids"
                    if key in SUBJECT_ID_KEYS
                    else "emails_and_ips"
                    if key in EMAIL_OR_IP_KEYS
                    else "names"
                    if key in NAME_KEYS
                    else None
                )
                if kind and value:
                    found[kind].add(value)
    assert len(found["ids"]) > 500 and len(found["emails_and_ips"]) > 20 and len(found["names"]) > 5

    assert run_assets(instance, list(defs.assets), DAY).success

    words, names = found["ids"] | found["emails_and_ips"], found["names"]
    leaks, scanned = [], 0
    for dataset in DATASETS:
        if dataset.layer == "raw":
            continue
        table = spark.read.format("delta").load(lake.table_uri(dataset.layer, dataset.domain, dataset.name))
        for column in (dataset.tenant_column, dataset.region_column):
            assert column is None or column in table.columns, f"{dataset.path} lacks declared {column}"
        for row in table.collect():
            for column, value in row.asDict(recursive=True).items():
                for _, text in leaves(value):
                    scanned += 1
                    revealed = found_in(text, words, names)
                    if revealed:
                        leaks.append((dataset.path, column, revealed))
    assert scanned > 10_000
    places = Counter((path, column) for path, column, _ in leaks)
    assert not leaks, f"{len(leaks)} values in clear: {dict(places)}, e.g. {leaks[:3]}"
