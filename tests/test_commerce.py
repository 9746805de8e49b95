"""The commerce domain: transforms on small frames, the generator's record, the whole pipeline through
Dagster, and no personal data in clear outside raw and quarantine."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict
from decimal import Decimal, InvalidOperation

import dagster as dg
import pytest

from assets import commerce as a
from orchestration.factory import domain_assets
from synthetic import commerce as g
from synthetic import dumps, read_record
from tests.helpers import counts_by_day, run_assets
from transforms import commerce as t
from transforms import common

DAY, DAY2 = dt.date(2024, 1, 2), dt.date(2024, 1, 3)
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")


def js(**fields) -> str:
    return json.dumps(fields, separators=(",", ":"))


def user(user_id="u1", status="active", created_at="2023-05-01T08:00:00Z", region="eu-west-1", **extra):
    record = {
        "user_id": user_id,
        "email": f"{user_id}@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "status": status,
        "created_at": created_at,
        "region": region,
        "tenant_id": "tenant-globex",
        **extra,
    }
    return js(**{k: v for k, v in record.items() if v != "<absent>"})


def order(order_id="o1", user_id="u1", total=30.0, currency="EUR", status="paid", ts="2024-01-02T10:00:00Z"):
    record = {
        "order_id": order_id,
        "user_id": user_id,
        "total_amount": total,
        "currency": currency,
        "status": status,
        "created_at": ts,
        "region": "eu-west-1",
        "tenant_id": "tenant-globex",
    }
    return js(**{k: v for k, v in record.items() if v != "<absent>"})


def item(item_id="i1", order_id="o1", quantity=2, price=10.0):
    record = {
        "item_id": item_id,
        "order_id": order_id,
        "product_id": "prod-0001",
        "quantity": quantity,
        "price": price,
    }
    return js(**{k: v for k, v in record.items() if v != "<absent>"})


USERS = [  # (dt, line), expected reason from parse_users (+ residency, as the factory adds it)
    (DAY, user("u1"), None),
    (
        DAY,
        user(
            "u2",
            region="us-east-1",
            status="suspended",
            gdpr_consent_at="2023-05-01T08:00:00Z",
            consent_analytics=True,
        ),
        None,
    ),
    (DAY, user("u1"), None),  # duplicate, removed by de-duplication
    (DAY, '{"user_id":"u4","email":', "malformed_json"),
    (DAY, user("<absent>"), "missing_required_field:user_id"),
    (DAY, user(""), "missing_required_field:user_id"),
    (DAY, user("u5", status="deleted"), "invalid_status"),
    (DAY, user("u6", created_at="last tuesday"), "invalid_timestamp"),
    (DAY, user("u3", region="sa-east-1"), "region_not_allowed:sa-east-1"),
    (DAY, user("u7", gdpr_consent_at="yesterday"), "invalid_consent_timestamp"),
    (DAY, user("u8", gdpr_consent_at="2023-05-01T08:00:00Z", consent_analytics="maybe"), "invalid_consent"),
    (DAY, user("u9", consent_analytics=True), "analytics_consent_without_gdpr_consent"),
]
ORDERS = [
    (DAY, order(), None),
    (DAY, order("o2", "u2", 10.0, "USD", "cancelled", "2024-01-02T11:00:00Z"), None),
    (DAY, order(), None),  # duplicate
    (DAY, '{"order_id":"o9","total_amount":1', "malformed_json"),
    (DAY, order("<absent>"), "missing_required_field:order_id"),
    (DAY, order("o10", user_id=None), "missing_required_field:user_id"),
    (DAY, order("o11", total="abc"), "invalid_type:total_amount"),
    (DAY, order("o12", total=0), "invalid_amount"),
    (DAY, order("o13", total=-5.5), "invalid_amount"),
    (DAY, order("o14", total=100000.01), "invalid_amount"),
    (
        DAY,
        order("o3", "u1", 100000, "EUR", "shipped", "2024-01-02T18:30:00Z"),
        None,
    ),  # the largest sane total
    (DAY, order("o15", currency="JPY"), "invalid_currency"),
    (DAY, order("o16", status="refunded"), "invalid_status"),
    (DAY, order("o17", ts="yesterday"), "invalid_timestamp"),
    (DAY, order("o18", user_id="u404"), "unknown_user_id"),
    (DAY, order("o19", user_id="u3"), "unknown_user_id"),  # u3 is refused by the users rules (region)
    (DAY, order("o20", user_id="u5"), "unknown_user_id"),  # u5's only line is quarantined
    (DAY2, order("o21", user_id="u1", ts="2024-01-03T09:00:00Z"), "unknown_user_id"),  # no users that day
    (DAY, order("o4", "u2", "12.50", "USD", "paid", "2024-01-02T12:00:00.250+01:00"), None),  # amount as text
]
ITEMS = [
    (DAY, item(), None),
    (DAY, item("i2", quantity=1), None),
    (DAY, item(), None),  # duplicate
    (DAY, '{"item_id":"i9","order_id":"o1","quan', "malformed_json"),
    (DAY, item("<absent>"), "missing_required_field:item_id"),
    (DAY, item("i4", quantity="two"), "invalid_type:quantity"),
    (DAY, item("i5", quantity=1.5), "invalid_type:quantity"),
    (DAY, item("i6", price="abc"), "invalid_type:price"),
    (DAY, item("i7", quantity=0), "invalid_quantity"),
    (DAY, item("i8", price=-1.0), "invalid_price"),
    (DAY, item("i10", order_id="o404"), "unknown_order_id"),
    (DAY, item("i11", order_id="o15"), "unknown_order_id"),  # its order was refused
    (DAY, item("i3", order_id="o2", quantity=1, price=0), None),  # free item
]


def frame(engine, rows):
    data = [
        (day, f"s3://lake/landing/commerce/dt={day}/x-00000.jsonl", i + 1, line)
        for i, (day, line, _) in enumerate(rows)
    ]
    return engine.createDataFrame(data, "dt date, source_file string, line_number int, line string")


def reasons(df) -> dict[int, str | None]:
    df = common.require_region(df, "region", REGIONS)
    return {
        r["line_number"]: r["quarantine_reason"]
        for r in df.select("line_number", "quarantine_reason").collect()
    }


def processed(df, key: str):
    """What the factory writes, without protection: accepted, in an allowed region, de-duplicated."""
    return common.deduplicate(common.accepted_rows(common.require_region(df, "region", REGIONS)), [key])


@pytest.fixture()
def raw(engine):
    return {
        "users": frame(engine, USERS),
        "orders": frame(engine, ORDERS),
        "order_items": frame(engine, ITEMS),
    }


@pytest.fixture()
def tables(raw):
    users = processed(t.parse_users(raw["users"]), "user_id")
    orders = processed(t.parse_orders(raw["orders"], raw["users"]), "order_id")
    items = processed(t.parse_order_items(raw["order_items"], orders), "item_id")
    return {"users": users, "orders": orders, "order_items": items}


@pytest.mark.parametrize("source", ["users", "orders", "order_items"])
def test_each_bad_record_gets_its_exact_reason(raw, tables, source):
    rows = {"users": USERS, "orders": ORDERS, "order_items": ITEMS}[source]
    if source == "users":
        out = t.parse_users(raw["users"])
    elif source == "orders":
        out = t.parse_orders(raw["orders"], raw["users"])
    else:
        out = t.parse_order_items(raw["order_items"], tables["orders"])
    assert reasons(out) == {i + 1: reason for i, (_, _, reason) in enumerate(rows)}


def test_processed_rows_are_typed_and_deduplicated(tables):
    users = {r["user_id"]: r for r in tables["users"].collect()}
    assert sorted(users) == ["u1", "u2"] and users["u1"]["line_number"] == 1
    assert users["u2"]["created_at"] == dt.datetime(2023, 5, 1, 8) and users["u2"]["status"] == "suspended"
    # consent: given with its time, or absent, which is no consent
    assert (users["u2"]["gdpr_consent_at"], users["u2"]["consent_analytics"]) == (
        dt.datetime(2023, 5, 1, 8),
        True,
    )
    assert (users["u1"]["gdpr_consent_at"], users["u1"]["consent_analytics"]) == (None, False)
    orders = {r["order_id"]: r for r in tables["orders"].collect()}
    assert sorted(orders) == ["o1", "o2", "o3", "o4"]
    assert orders["o4"]["total_amount"] == Decimal("12.50") and orders["o3"]["total_amount"] == Decimal(
        "100000.00"
    )
    assert orders["o4"]["created_at"] == dt.datetime(2024, 1, 2, 11, 0, 0, 250000)  # +01:00 normalized to UTC
    assert (orders["o1"]["tenant_id"], orders["o1"]["region"]) == ("tenant-globex", "eu-west-1")
    schema = dict(tables["orders"].dtypes)
    assert (schema["total_amount"], schema["created_at"]) == ("decimal(10,2)", "timestamp")
    items = {r["item_id"]: r for r in tables["order_items"].collect()}
    assert sorted(items) == ["i1", "i2", "i3"]
    assert (items["i1"]["quantity"], items["i1"]["price"], items["i1"]["region"]) == (
        2,
        Decimal("10.00"),
        "eu-west-1",
    )
    assert dict(tables["order_items"].dtypes)["quantity"] == "int"
    assert dict(tables["order_items"].dtypes)["price"] == "decimal(10,2)"
    for name in tables:
        assert not [c for c in tables[name].columns if c.startswith("_") or c == "quarantine_reason"]


def test_the_referential_set_is_what_processed_users_accepts(raw, tables):
    known = {(r["dt"], r["user_id"]) for r in t.known_users(raw["users"]).collect()}
    assert known == {(r["dt"], r["user_id"]) for r in tables["users"].collect()} == {(DAY, "u1"), (DAY, "u2")}


def test_user_tokens_match_between_users_and_orders(tables):
    """The declarations tokenize user_id alike in users and orders: protected tables still join."""
    users = common.protect(tables["users"], a.USERS.personal_data, "k-1")
    orders = common.protect(tables["orders"], a.ORDERS.personal_data, "k-1")
    user_tokens = {r["user_id"] for r in users.collect()}
    order_tokens = {r["user_id"] for r in orders.collect()}
    assert order_tokens <= user_tokens and len(user_tokens) == 2 and not user_tokens & {"u1", "u2"}
    row = users.where(users.status == "active").first()
    assert (row["first_name"], row["last_name"]) == ("A***", "L***") and "@" not in row["email"]


def test_quarantine_keeps_the_line_and_the_reason(raw):
    stamp = dt.datetime(2024, 1, 3)
    out = common.require_region(t.parse_orders(raw["orders"], raw["users"]), "region", REGIONS)
    rows = {r["line_number"]: r for r in common.quarantine_records(out, "run-1", stamp).collect()}
    assert len(rows) == sum(1 for *_, reason in ORDERS if reason)
    assert (
        json.loads(rows[7]["record"])["line"] == ORDERS[6][1]
        and rows[7]["reason"] == "invalid_type:total_amount"
    )


def test_orders_conformed(tables):
    rows = {r["order_id"]: r for r in t.orders_conformed(tables["orders"], tables["order_items"]).collect()}
    got = {
        k: (r["item_count"], r["units"], r["items_amount"], r["amount_matches_items"])
        for k, r in rows.items()
    }
    assert got == {
        "o1": (2, 3, Decimal("30.00"), True),
        "o2": (1, 1, Decimal("0.00"), False),
        "o3": (0, 0, Decimal("0.00"), False),
        "o4": (0, 0, Decimal("0.00"), False),
    }
    assert rows["o1"]["total_amount"] == Decimal("30.00") and rows["o1"]["user_id"] == "u1"


def test_daily_revenue_by_currency(tables):
    rows = {r["currency"]: tuple(r) for r in t.daily_revenue_by_currency(tables["orders"]).collect()}
    assert rows == {
        "EUR": (DAY, "EUR", 2, Decimal("100030.00"), Decimal("50015.00"), 0),
        "USD": (DAY, "USD", 2, Decimal("12.50"), Decimal("12.50"), 1),
    }


def test_customer_order_stats(tables):
    rows = {
        r["user_id"]: (r["order_count"], r["total_spend"], r["last_order_at"])
        for r in t.customer_order_stats(tables["orders"]).collect()
    }
    assert rows == {
        "u1": (2, Decimal("100030.00"), dt.datetime(2024, 1, 2, 18, 30)),
        "u2": (2, Decimal("12.50"), dt.datetime(2024, 1, 2, 11, 0, 0, 250000)),
    }


# -- an independent re-classification of landing lines, used by the generator and end-to-end tests
# ------------


def _json(line: str):
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _absent(record: dict, name: str) -> bool:
    return record.get(name) is None or str(record[name]).strip() == ""


def _number(value) -> Decimal | None:
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return None


def _time(value) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _classify(lines, key, rules):
    """(accepted records by key, reasons counted, duplicates) of one source's lines, first line winning."""
    accepted, found, duplicates = {}, Counter(), 0
    for line in lines:
        record = _json(line)
        reason = "malformed_json" if record is None else next((r for r in rules(record) if r), None)
        if reason:
            found[reason] += 1
        elif record[key] in accepted:
            duplicates += 1
        else:
            accepted[record[key]] = record
    return accepted, found, duplicates


def _missing(record, names):
    return [f"missing_required_field:{n}" if _absent(record, n) else None for n in names]


def user_rules(record):
    yield from _missing(record, ("user_id", "status", "created_at"))
    yield "invalid_status" if record["status"] not in ("active", "suspended", "closed") else None
    yield "invalid_timestamp" if _time(record["created_at"]) is None else None
    yield None if record.get("region") in REGIONS else f"region_not_allowed:{record.get('region')}"


def order_rules(users):
    def rules(record):
        yield from _missing(
            record, ("order_id", "user_id", "total_amount", "currency", "status", "created_at")
        )
        amount = _number(record["total_amount"])
        yield "invalid_type:total_amount" if amount is None else None
        yield "invalid_amount" if not 0 < amount <= 100_000 else None
        yield "invalid_currency" if record["currency"] not in ("USD", "EUR", "GBP") else None
        yield (
            "invalid_status" if record["status"] not in ("created", "paid", "shipped", "cancelled") else None
        )
        yield "invalid_timestamp" if _time(record["created_at"]) is None else None
        yield "unknown_user_id" if record["user_id"] not in users else None
        yield None if record.get("region") in REGIONS else f"region_not_allowed:{record.get('region')}"

    return rules


def item_rules(orders):
    def rules(record):
        yield from _missing(record, ("item_id", "order_id", "product_id", "quantity", "price"))
        quantity, price = record["quantity"], _number(record["price"])
        yield None if re.fullmatch(r"\s*-?[0-9]+\s*", str(quantity)) else "invalid_type:quantity"
        yield "invalid_type:price" if price is None else None
        yield "invalid_quantity" if int(quantity) < 1 else None
        yield "invalid_price" if price < 0 else None
        yield "unknown_order_id" if record["order_id"] not in orders else None

    return rules


def classify_day(sources: dict[str, list[list[str]]]) -> dict[str, tuple]:
    lines = {source: [line for file in files for line in file] for source, files in sources.items()}
    users = _classify(lines["users"], "user_id", user_rules)
    orders = _classify(lines["orders"], "order_id", order_rules(users[0]))
    items = _classify(lines["order_items"], "item_id", item_rules(orders[0]))
    return {"users": users, "orders": orders, "order_items": items}


def expected_from_lines(sources) -> dict[str, dict]:
    return {
        source: {
            "input": sum(map(len, sources[source])),
            "accepted": len(accepted),
            "quarantined": sum(found.values()),
            "duplicates": duplicates,
        }
        for source, (accepted, found, duplicates) in classify_day(sources).items()
    }


def test_generator_record_matches_an_independent_classification():
    generated = g.generate_day(DAY, 3_000)
    record, classified = generated.record, classify_day(generated.sources)
    assert record["expected"] == expected_from_lines(generated.sources)
    for source, (_, found, duplicates) in classified.items():
        bad = record["bad"][source]
        assert {k: v for k, v in bad.items() if k != g.DUPLICATE[source]} == dict(found), source
        assert bad[g.DUPLICATE[source]] == duplicates and all(count > 0 for count in bad.values()), source
    assert record["lines"]["orders"] == 3_000 and sum(record["bad"]["orders"].values()) == 60
    assert record["lines"]["users"] - sum(record["bad"]["users"].values()) == len(
        g.synthetic_population(7).users_as_of(DAY)
    )  # the full snapshot, one good line per user


def test_generator_is_deterministic_and_realistic():
    day = g.generate_day(DAY, 4_000)
    assert day.sources == g.generate_day(DAY, 4_000).sources
    assert day.sources["orders"] != g.generate_day(DAY2, 4_000).sources["orders"]
    assert day.sources["orders"] != g.generate_day(DAY, 4_000, seed=8).sources["orders"]
    accepted = classify_day(day.sources)
    orders, items = accepted["orders"][0], accepted["order_items"][0]
    statuses = Counter(o["status"] for o in orders.values())
    assert statuses["paid"] > statuses["cancelled"] * 3 and set(statuses) == {
        "created",
        "paid",
        "shipped",
        "cancelled",
    }
    eu = Counter(o["currency"] for o in orders.values() if o["region"] == "eu-west-1")
    assert eu["EUR"] > eu["USD"] and eu["GBP"] > eu["USD"]  # currency follows the customer's region
    buyers = Counter(o["user_id"] for o in orders.values())
    assert sum(n for _, n in buyers.most_common(len(buyers) // 20)) > 0.15 * len(orders)  # heavy buyers
    hours = Counter(int(o["created_at"][11:13]) for o in orders.values())
    assert hours[14] > 2 * hours[3]
    assert 1.5 < len(items) / len(orders) < 2.5
    # prices add up: with no item refused, an order's total is the sum of its items
    sums = defaultdict(Decimal)
    for i in items.values():
        sums[i["order_id"]] += int(i["quantity"]) * Decimal(str(i["price"]))
    assert sum(Decimal(str(o["total_amount"])) == sums[k] for k, o in orders.items()) > 0.9 * len(orders)
    snapshot = {u.user_id for u in g.synthetic_population(7).users_as_of(DAY)}
    assert {o["user_id"] for o in orders.values()} <= snapshot


def test_generator_lines_are_exactly_the_json_of_their_records():
    orders, items = g._Day(DAY, 7, g.synthetic_population(7)).orders(50)
    assert len(orders) == 50 and 50 <= len(items) <= 200
    assert all(line == dumps(json.loads(line)) for line in orders + items)


# -- the pipeline end to end ---------------------------------------------------------------------------------

DAYS = [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]
ROWS = 1_500


@pytest.fixture()
def landed(lake):
    days = {}
    for day in DAYS:
        generated = g.generate_day(day, ROWS)
        generated.write(lake, "commerce")
        days[day] = generated
    return days


def _revenue(orders: dict) -> dict:
    out: dict = defaultdict(lambda: [0, Decimal(0), 0, 0])
    for o in orders.values():
        row = out[o["currency"]]
        row[0] += 1
        if o["status"] == "cancelled":
            row[3] += 1
        else:
            row[1] += Decimal(str(o["total_amount"]))
            row[2] += 1
    return {
        c: (n, revenue, (revenue / kept).quantize(Decimal("0.01")), cancelled)
        for c, (n, revenue, kept, cancelled) in out.items()
    }


def _matches(orders: dict, items: dict) -> int:
    sums = defaultdict(Decimal)
    for i in items.values():
        sums[i["order_id"]] += int(i["quantity"]) * Decimal(str(i["price"]))
    return sum(Decimal(str(o["total_amount"])) == sums[k] for k, o in orders.items())


def test_two_partitions_reconcile_and_no_personal_data_leaks(spark, lake, landed, instance):
    result = run_assets(instance, domain_assets(a.DATASETS), DAYS[0], DAYS[-1])
    assert result.success
    load = lambda layer, name: spark.read.format("delta").load(lake.table_uri(layer, "commerce", name))  # noqa: E731
    records = {day: read_record(lake, "commerce", day) for day in DAYS}
    classified = {day: classify_day(generated.sources) for day, generated in landed.items()}

    for name in ("users", "orders", "order_items"):
        expected = {day: records[day]["expected"][name] for day in DAYS}
        for day, e in expected.items():
            assert e == expected_from_lines(landed[day].sources)[name]
            assert e["input"] == e["accepted"] + e["quarantined"] + e["duplicates"]
        assert counts_by_day(spark, lake.table_uri("raw", "commerce", name)) == {
            d: e["input"] for d, e in expected.items()
        }
        assert counts_by_day(spark, lake.table_uri("processed", "commerce", name)) == {
            d: e["accepted"] for d, e in expected.items()
        }, name
        assert counts_by_day(spark, lake.table_uri("quarantine", "commerce", name)) == {
            d: e["quarantined"] for d, e in expected.items()
        }, name
        found = Counter(
            {
                (r["dt"], r["reason"]): r["count"]
                for r in load("quarantine", name).groupBy("dt", "reason").count().collect()
            }
        )
        wanted = Counter(
            {
                (day, kind): n
                for day in DAYS
                for kind, n in records[day]["bad"][name].items()
                if kind != g.DUPLICATE[name] and n
            }
        )
        assert found == wanted, name
        event = instance.get_latest_materialization_event(dg.AssetKey(["processed", "commerce", name]))
        removed = event.asset_materialization.metadata["duplicates_removed"].value
        assert removed == sum(e["duplicates"] for e in expected.values())

    # curated values recomputed from the landing lines in Python
    revenue = {
        (r["dt"], r["currency"]): (r["orders"], r["revenue"], r["avg_order_value"], r["cancelled_orders"])
        for r in load("curated", "daily_revenue_by_currency").collect()
    }
    assert revenue == {(day, c): v for day in DAYS for c, v in _revenue(classified[day]["orders"][0]).items()}
    conformed = load("curated", "orders_conformed")
    matching = counts_by_day(
        spark, lake.table_uri("curated", "commerce", "orders_conformed"), "amount_matches_items"
    )
    assert matching == {
        day: _matches(classified[day]["orders"][0], classified[day]["order_items"][0]) for day in DAYS
    }
    assert counts_by_day(spark, lake.table_uri("curated", "commerce", "orders_conformed")) == {
        day: records[day]["expected"]["orders"]["accepted"] for day in DAYS
    }
    units = {
        r["dt"]: r["units"]
        for r in conformed.groupBy("dt")
        .agg({"units": "sum"})
        .withColumnRenamed("sum(units)", "units")
        .collect()
    }
    assert units == {
        day: sum(int(i["quantity"]) for i in classified[day]["order_items"][0].values()) for day in DAYS
    }
    stats = {
        r["dt"]: (r["customers"], r["orders"])
        for r in load("curated", "customer_order_stats")
        .groupBy("dt")
        .agg({"user_id": "count", "order_count": "sum"})
        .withColumnsRenamed({"count(user_id)": "customers", "sum(order_count)": "orders"})
        .collect()
    }
    assert stats == {
        day: (
            len({o["user_id"] for o in classified[day]["orders"][0].values()}),
            len(classified[day]["orders"][0]),
        )
        for day in DAYS
    }

    # tokens join: every order's and every customer's user_id is a user of the same day
    users = {(r["dt"], r["user_id"]) for r in load("processed", "users").select("dt", "user_id").collect()}
    for name in ("orders", "customer_order_stats", "orders_conformed"):
        table = load("processed" if name == "orders" else "curated", name)
        assert {(r["dt"], r["user_id"]) for r in table.select("dt", "user_id").collect()} <= users

    # no raw email, name or user id in any processed or curated table of the domain
    raw_users = [
        json.loads(line)
        for generated in landed.values()
        for line in generated.sources["users"][0]
        if _json(line)
    ]
    secrets = {str(u[k]) for u in raw_users for k in ("email", "user_id") if u.get(k)}
    names = {u[k] for u in raw_users for k in ("first_name", "last_name")}
    assert len(names) > 20 and len(secrets) > 5_000
    for dataset in a.DATASETS:
        if dataset.layer not in ("processed", "curated"):
            continue
        df = load(dataset.layer, dataset.name)
        strings = [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]
        assert df.count() > 0 and strings
        for row in df.select(*strings).collect():
            for value in row:
                if value is None:
                    continue
                assert value not in secrets and "@" not in value, (dataset.path, value)
                assert not any(n in value for n in names), (dataset.path, value)
