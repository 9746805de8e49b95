"""Synthetic landing files for the commerce domain: users, orders and order items.

Deterministic per (seed, day). The day's `users` file is a full snapshot of the
shared population's users registered by the end of the day (one line each, plus
bad copies); `orders` has `rows` orders of active users registered before the
day; `order_items` has one to four items per valid order, whose prices add up to
the order's total. About `bad_share` of each source's lines are bad on purpose;
every bad kind is named by the quarantine reason the pipeline must give it
(duplicates are removed, not quarantined), and the record says how many of each
were written and what every processed dataset must hold.

Bad lines never change a good record's fate: bad users are extra, broken copies
of users who also have their good line; bad orders have no items; a bad item
replaces one item of a good order (whose total then no longer matches its items).

Orders and items are drawn as numpy columns (one PCG64 stream per seed and day) and written with
one template each, byte for byte what json.dumps of their records gives.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import random
import zlib
from functools import lru_cache

import numpy as np

from synthetic import (
    GeneratedDay,
    dumps,
    fixed_rows,
    iso_millis,
    iso_millis_bytes,
    json_safe,
    number_text,
    numpy_rng,
    pick,
    rows_text,
    scatter_at,
    split_files,
    uuid4_bytes,
    uuid4_strings,
)
from synthetic.population import Population, User
from synthetic.population import population as synthetic_population

DOMAIN = "commerce"
SOURCES = ("users", "orders", "order_items")
USER_STATUSES = {"active": 0.90, "suspended": 0.06, "closed": 0.04}
# GDPR consent recorded at registration, and of those users the share who also allow analytics
GDPR_CONSENT_SHARE = 0.95
ANALYTICS_CONSENT_SHARE = 0.80
ORDER_STATUSES = {"created": 0.12, "paid": 0.43, "shipped": 0.37, "cancelled": 0.08}
CURRENCY_BY_REGION = {
    "us-east-1": {"USD": 0.97, "EUR": 0.02, "GBP": 0.01},
    "eu-west-1": {"EUR": 0.68, "GBP": 0.27, "USD": 0.05},
    "ap-southeast-1": {"USD": 0.85, "EUR": 0.10, "GBP": 0.05},
}
ITEMS_PER_ORDER = {1: 0.45, 2: 0.30, 3: 0.15, 4: 0.10}
QUANTITY = {1: 0.70, 2: 0.20, 3: 0.07, 5: 0.03}
PRODUCTS = 800
HOURS = list(range(24))
HOUR_WEIGHTS = [0.3 + math.exp(-((hour - 14) ** 2) / 20) for hour in range(24)]
FOREIGN_REGION = "sa-east-1"  # a region the shop does not operate in

BAD_KINDS = {  # source: kinds, each the exact quarantine reason, or a duplicate (removed by de-duplication)
    "users": (
        "malformed_json",
        "missing_required_field:user_id",
        "invalid_status",
        "invalid_timestamp",
        "duplicate_user_id",
    ),
    "orders": (
        "malformed_json",
        "missing_required_field:order_id",
        "missing_required_field:user_id",
        "invalid_type:total_amount",
        "invalid_amount",
        "invalid_currency",
        "unknown_user_id",
        f"region_not_allowed:{FOREIGN_REGION}",
        "duplicate_order_id",
    ),
    "order_items": (
        "malformed_json",
        "missing_required_field:item_id",
        "invalid_type:quantity",
        "invalid_type:price",
        "invalid_quantity",
        "invalid_price",
        "unknown_order_id",
        "duplicate_item_id",
    ),
}
DUPLICATE = {"users": "duplicate_user_id", "orders": "duplicate_order_id", "order_items": "duplicate_item_id"}


def _cum(weights: dict) -> tuple[list, list[float]]:
    return list(weights), list(itertools.accumulate(weights.values()))


def _words(values) -> np.ndarray:
    return np.asarray(list(values), dtype=object)


STATUS_CHOICES, ORDER_STATUS_CUM = _cum(ORDER_STATUSES)
ITEM_COUNTS, ITEM_COUNT_CUM = _cum(ITEMS_PER_ORDER)
QUANTITIES, QUANTITY_CUM = _cum(QUANTITY)
CURRENCY_CUM = {region: _cum(weights) for region, weights in CURRENCY_BY_REGION.items()}
HOUR_CUM = list(itertools.accumulate(HOUR_WEIGHTS))
PRODUCT_IDS = [f"prod-{rank:04d}" for rank in range(PRODUCTS)]
PRODUCT_CUM = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(PRODUCTS)))  # a few best sellers
_PRODUCT_BYTES = np.frombuffer("".join(PRODUCT_IDS).encode(), dtype=np.uint8).reshape(PRODUCTS, 9)


@lru_cache(maxsize=4)
def user_statuses(seed: int) -> dict[str, str]:
    """Each population user's account status (stable across days)."""
    rng = random.Random(f"{DOMAIN}-status-{seed}")
    names, cum = _cum(USER_STATUSES)
    return {user.user_id: rng.choices(names, cum_weights=cum)[0] for user in synthetic_population(seed).users}


def user_consent(user: User) -> tuple[dt.datetime | None, bool]:
    """(gdpr_consent_at, consent_analytics) of a user: stable per user id (a hash of it), so every day's
    snapshot agrees; analytics consent only with GDPR consent on record."""
    draw = zlib.crc32(f"consent-{user.user_id}".encode()) / 2**32
    if draw >= GDPR_CONSENT_SHARE:
        return None, False
    return user.created_at, draw < GDPR_CONSENT_SHARE * ANALYTICS_CONSENT_SHARE


def _user_line(user: User, status: str) -> dict:
    consent_at, analytics = user_consent(user)
    return {
        "user_id": user.user_id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "status": status,
        "created_at": iso_millis(user.created_at),
        "region": user.region,
        "tenant_id": user.tenant_id,
        "gdpr_consent_at": iso_millis(consent_at) if consent_at else None,
        "consent_analytics": analytics,
    }


class _Day:
    """The state of one day's generation: who can order, who registers later."""

    def __init__(self, day: dt.date, seed: int, population: Population):
        self.day, self.seed = day, seed
        self.rng = numpy_rng(DOMAIN, seed, day)
        self.statuses = user_statuses(seed)
        self.snapshot = population.users_as_of(day)
        # Customers who can order today: active, registered before the day; heavy buyers keep their weight.
        weights = [
            w - p for w, p in zip(population.user_cum_weights, (0.0, *population.user_cum_weights[:-1]))
        ]
        eligible = [
            (u, w)
            for u, w in zip(population.users, weights)
            if self.statuses[u.user_id] == "active" and u.created_at.date() < day
        ]
        if not eligible:
            raise ValueError(f"no active customer registered before {day}: the population starts later")
        self.customers = [u for u, _ in eligible]
        for u in self.customers:
            json_safe([u.user_id, u.region, u.tenant_id])
        self.customer_cum = np.cumsum([w for _, w in eligible])
        self.customer_ids = np.frombuffer("".join(u.user_id for u in self.customers).encode(), np.uint8)
        self.customer_ids = self.customer_ids.reshape(-1, 36)
        self.customer_tails = _words(
            f'","region":"{u.region}","tenant_id":"{u.tenant_id}"}}' for u in self.customers
        )
        regions = list(CURRENCY_BY_REGION)
        self.customer_region = np.array([regions.index(u.region) for u in self.customers])
        self.future_users = [u for u in population.users if u.created_at.date() > day]

    def orders(self, n: int) -> tuple[list[str], list[str]]:
        """`n` valid order lines and their items' lines (1-4 per order, item prices add up to the total)."""
        rng = self.rng
        customer = pick(rng, self.customer_cum, n)
        counts = np.asarray(ITEM_COUNTS)[pick(rng, np.asarray(ITEM_COUNT_CUM), n)]
        k = int(counts.sum())
        quantity = np.asarray(QUANTITIES)[pick(rng, np.asarray(QUANTITY_CUM), k)]
        cents = np.minimum(rng.lognormal(7.6, 0.9, k).astype(np.int64), 250_000)  # median ~20.00, <= 2,500.00
        product = pick(rng, np.asarray(PRODUCT_CUM), k)
        bounds = np.cumsum(counts)
        totals = np.add.reduceat(quantity * cents, bounds - counts) if n else np.zeros(0, dtype=np.int64)
        currency = np.empty(n, dtype=object)
        for index, (names, cum) in enumerate(CURRENCY_CUM.values()):
            rows = np.flatnonzero(self.customer_region[customer] == index)
            currency[rows] = _words(names)[pick(rng, np.asarray(cum), len(rows))]
        status = _words(STATUS_CHOICES)[pick(rng, np.asarray(ORDER_STATUS_CUM), n)]
        ms = (
            pick(rng, np.asarray(HOUR_CUM), n) * 3_600_000
            + rng.integers(0, 3600, n) * 1000
            + rng.integers(0, 1000, n)
        )
        order_ids = uuid4_bytes(rng, n)
        item_ids = uuid4_bytes(rng, k)
        head = rows_text(
            fixed_rows(
                n,
                b'{"order_id":"',
                order_ids,
                b'","user_id":"',
                self.customer_ids[customer],
                b'","total_amount":',
            )
        )
        stamp = rows_text(fixed_rows(n, b'","created_at":"', iso_millis_bytes(self.day, ms)))
        orders = [
            f'{h}{a},"currency":"{c}","status":"{s}{t}{e}'
            for h, a, c, s, t, e in zip(
                head,
                number_text(totals / 100, 2),
                currency.tolist(),
                status.tolist(),
                stamp,
                self.customer_tails[customer].tolist(),
            )
        ]
        digits = (quantity + ord("0")).astype(np.uint8)[:, None]
        item_head = rows_text(
            fixed_rows(
                k,
                b'{"item_id":"',
                item_ids,
                b'","order_id":"',
                np.repeat(order_ids, counts, axis=0),
                b'","product_id":"',
                _PRODUCT_BYTES[product],
                b'","quantity":',
                digits,
                b',"price":',
            )
        )
        items = [f"{h}{p}}}" for h, p in zip(item_head, number_text(cents / 100, 2))]
        return orders, items


def _bad_user(kind: str, user: User, status: str, u: float, w: float) -> str:
    record = _user_line(user, status)
    if kind == "malformed_json":
        text = dumps(record)
        return text[: 10 + int(u * (len(text) // 2 - 10))]
    if kind == "missing_required_field:user_id":
        if u < 0.5:
            del record["user_id"]
        else:
            record["user_id"] = None if w < 0.5 else ""
    elif kind == "invalid_status":
        record["status"] = ["deleted", "ACTIVE", "pending"][int(u * 3)]
    elif kind == "invalid_timestamp":
        record["created_at"] = ["2023-02-30T10:00:00Z", "last tuesday", "13/01/2023 10:00"][int(u * 3)]
    return dumps(record)


def _bad_order(state: _Day, kind: str, record: dict, u: float, w: float, fresh: str) -> str:
    """`record` (a valid order, its items dropped: a refused order has none) broken as `kind`."""
    if kind == "malformed_json":
        text = dumps(record)
        return text[: 10 + int(u * (len(text) // 2 - 10))]
    if kind == "missing_required_field:order_id":
        del record["order_id"]
    elif kind == "missing_required_field:user_id":
        if u < 0.5:
            del record["user_id"]
        else:
            record["user_id"] = None if w < 0.5 else ""
    elif kind == "invalid_type:total_amount":
        record["total_amount"] = ["abc", "12,50", "N/A", "ten"][int(u * 4)]
    elif kind == "invalid_amount":
        record["total_amount"] = [0, -round(1 + w * 499, 2), round(100_001 + w * (10**7 - 100_001), 2)][
            int(u * 3)
        ]
    elif kind == "invalid_currency":
        record["currency"] = ["usd", "JPY", "EURO", "$"][int(u * 4)]
    elif kind == "unknown_user_id":  # a user who registers only later: not in today's snapshot
        future = state.future_users
        record["user_id"] = future[int(u * len(future))].user_id if future else fresh
    elif kind.startswith("region_not_allowed:"):
        record["region"] = FOREIGN_REGION
    return dumps(record)


def _bad_item(kind: str, record: dict, u: float) -> str:
    """`record` (a good item) broken as `kind` (it replaces the good item line)."""
    if kind == "malformed_json":
        text = dumps(record)
        return text[: 10 + int(u * (len(text) // 2 - 10))]
    if kind == "missing_required_field:item_id":
        del record["item_id"]
    elif kind == "invalid_type:quantity":
        record["quantity"] = ["two", "1.5", "x", "3 pcs"][int(u * 4)]
    elif kind == "invalid_type:price":
        record["price"] = ["free", "$10.00", "ten"][int(u * 3)]
    elif kind == "invalid_quantity":
        record["quantity"] = [0, -1, -5][int(u * 3)]
    elif kind == "invalid_price":
        record["price"] = -record["price"] if record["price"] > 0 else -1.0
    return dumps(record)


def _kinds(source: str, count: int) -> list[str]:
    kinds = BAD_KINDS[source]
    return [kinds[i % len(kinds)] for i in range(count)]


def _scatter(rng: np.random.Generator, lines: list[str], extra: list[str]) -> list[str]:
    """`extra` inserted at random positions of `lines` (the order of both kept)."""
    return scatter_at(lines, extra, np.sort(rng.integers(0, len(lines) + 1, len(extra))).tolist())


def generate_day(day: dt.date, rows: int, seed: int = 7, bad_share: float = 0.02) -> GeneratedDay:
    """`rows` order lines for `day` (bad ones included), their items, and the day's users snapshot."""
    population = synthetic_population(seed)
    state = _Day(day, seed, population)
    rng = state.rng
    bad = {source: {kind: 0 for kind in kinds} for source, kinds in BAD_KINDS.items()}

    # users: one good line per user of the snapshot; bad lines are extra broken copies or duplicates
    user_lines = [dumps(_user_line(u, state.statuses[u.user_id])) for u in state.snapshot]
    broken_users, duplicate_users = [], []
    for kind in _kinds("users", round(len(user_lines) * bad_share)):
        bad["users"][kind] += 1
        if kind == DUPLICATE["users"]:
            duplicate_users.append(user_lines[int(rng.integers(len(user_lines)))])
        else:
            user = state.snapshot[int(rng.integers(len(state.snapshot)))]
            u, w = rng.random(2).tolist()
            broken_users.append(_bad_user(kind, user, state.statuses[user.user_id], u, w))
    users = _scatter(rng, user_lines, broken_users) + duplicate_users

    # orders: good orders with their items; bad orders (no items) scattered; duplicates at the end
    order_kinds = _kinds("orders", min(round(rows * bad_share), rows - 1))
    good_orders, item_lines = state.orders(rows - len(order_kinds))
    broken_kinds = [kind for kind in order_kinds if kind != DUPLICATE["orders"]]
    broken_records = [json.loads(line) for line in state.orders(len(broken_kinds))[0]]
    draws = rng.random((len(broken_kinds), 2)).tolist()
    fresh = uuid4_strings(rng, len(broken_kinds))
    broken_orders = [
        _bad_order(state, kind, record, u, w, new)
        for kind, record, (u, w), new in zip(broken_kinds, broken_records, draws, fresh)
    ]
    n_duplicates = len(order_kinds) - len(broken_kinds)
    duplicate_orders = [good_orders[i] for i in rng.integers(0, len(good_orders), n_duplicates).tolist()]
    for kind in order_kinds:
        bad["orders"][kind] += 1
    orders = _scatter(rng, good_orders, broken_orders) + duplicate_orders

    # items: a bad item replaces a good one (orphans are extra); duplicates copy good lines, at the end
    item_kinds = _kinds("order_items", round(len(item_lines) * bad_share)) if item_lines else []
    replace = [k for k in item_kinds if k not in (DUPLICATE["order_items"], "unknown_order_id")]
    victims = rng.choice(len(item_lines), len(replace), replace=False).tolist() if replace else []
    cuts = rng.random(len(replace)).tolist()
    originals = list(item_lines)
    for index, kind, u in zip(victims, replace, cuts):
        bad["order_items"][kind] += 1
        item_lines[index] = _bad_item(kind, json.loads(originals[index]), u)
    replaced = set(victims)
    orphans, duplicate_items = [], []
    for kind in item_kinds:
        if kind == "unknown_order_id":
            bad["order_items"][kind] += 1
            orphan = json.loads(originals[int(rng.integers(len(originals)))])
            orphan["item_id"], orphan["order_id"] = uuid4_strings(rng, 2)
            orphans.append(dumps(orphan))
        elif kind == DUPLICATE["order_items"]:
            bad["order_items"][kind] += 1
            index = int(rng.integers(len(item_lines)))
            while index in replaced:
                index = int(rng.integers(len(item_lines)))
            duplicate_items.append(item_lines[index])
    order_items = _scatter(rng, item_lines, orphans) + duplicate_items

    sources = {"users": users, "orders": orders, "order_items": order_items}
    expected = {}
    for source, lines in sources.items():
        duplicates = bad[source][DUPLICATE[source]]
        quarantined = sum(bad[source].values()) - duplicates
        expected[source] = {
            "input": len(lines),
            "accepted": len(lines) - quarantined - duplicates,
            "quarantined": quarantined,
            "duplicates": duplicates,
        }
    record = {
        "domain": DOMAIN,
        "day": day.isoformat(),
        "seed": seed,
        "lines": {source: len(lines) for source, lines in sources.items()},
        "files": {source: len(split_files(lines)) for source, lines in sources.items()},
        "bad": bad,
        "expected": expected,
    }
    return GeneratedDay(
        day=day, sources={source: split_files(lines) for source, lines in sources.items()}, record=record
    )
