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
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import itertools
import math
import random
import zlib
from dataclasses import dataclass
from functools import lru_cache

from synthetic import GeneratedDay, dumps, iso_millis, scatter, split_files
from synthetic.population import Population, User, new_uuid
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


STATUS_CHOICES, ORDER_STATUS_CUM = _cum(ORDER_STATUSES)
ITEM_COUNTS, ITEM_COUNT_CUM = _cum(ITEMS_PER_ORDER)
QUANTITIES, QUANTITY_CUM = _cum(QUANTITY)
CURRENCY_CUM = {region: _cum(weights) for region, weights in CURRENCY_BY_REGION.items()}
HOUR_CUM = list(itertools.accumulate(HOUR_WEIGHTS))
PRODUCT_IDS = [f"prod-{rank:04d}" for rank in range(PRODUCTS)]
PRODUCT_CUM = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(PRODUCTS)))  # a few best sellers


def _pick(rng: random.Random, values: list, cum: list[float]):
    """`rng.choices(values, cum_weights=cum)[0]`, without its per-call overhead (the same draw)."""
    return values[bisect.bisect(cum, rng.random() * cum[-1], 0, len(cum) - 1)]


def _money(cents: int) -> float:
    return cents / 100


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


@dataclass(frozen=True)
class Item:
    item_id: str
    order_id: str
    product_id: str
    quantity: int
    cents: int

    def record(self) -> dict:
        return {
            "item_id": self.item_id,
            "order_id": self.order_id,
            "product_id": self.product_id,
            "quantity": self.quantity,
            "price": _money(self.cents),
        }

    def line(self) -> str:  # what `dumps(self.record())` gives, ten times faster
        return (
            f'{{"item_id":"{self.item_id}","order_id":"{self.order_id}","product_id":"{self.product_id}",'
            f'"quantity":{self.quantity},"price":{_money(self.cents)!r}}}'
        )


@dataclass(frozen=True)
class Order:
    order_id: str
    user: User
    cents: int
    currency: str
    status: str
    created_at: str

    def record(self) -> dict:
        return {
            "order_id": self.order_id,
            "user_id": self.user.user_id,
            "total_amount": _money(self.cents),
            "currency": self.currency,
            "status": self.status,
            "created_at": self.created_at,
            "region": self.user.region,
            "tenant_id": self.user.tenant_id,
        }

    def line(self) -> str:  # what `dumps(self.record())` gives
        return (
            f'{{"order_id":"{self.order_id}","user_id":"{self.user.user_id}",'
            f'"total_amount":{_money(self.cents)!r},"currency":"{self.currency}","status":"{self.status}",'
            f'"created_at":"{self.created_at}","region":"{self.user.region}",'
            f'"tenant_id":"{self.user.tenant_id}"}}'
        )


class _Day:
    """The state of one day's generation."""

    def __init__(self, day: dt.date, seed: int, population: Population):
        self.day, self.seed = day, seed
        self.rng = random.Random(f"{DOMAIN}-{seed}-{day.isoformat()}")
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
        self.customer_cum = list(itertools.accumulate(w for _, w in eligible))
        self.future_users = [u for u in population.users if u.created_at.date() > day]
        self.prefix = day.isoformat() + "T"

    def timestamp(self) -> str:
        """A time of the day (UTC, ISO-8601 with milliseconds): quiet nights, busy afternoons."""
        hour = _pick(self.rng, HOURS, HOUR_CUM)
        second, millisecond = self.rng.randrange(3600), self.rng.randrange(1000)
        return f"{self.prefix}{hour:02d}:{second // 60:02d}:{second % 60:02d}.{millisecond:03d}Z"

    def order(self) -> tuple[Order, list[Item]]:
        """A valid order of a customer, and its items (prices in cents add up to the total)."""
        rng = self.rng
        user = _pick(rng, self.customers, self.customer_cum)
        order_id = new_uuid(rng)
        items, total = [], 0
        for _ in range(_pick(rng, ITEM_COUNTS, ITEM_COUNT_CUM)):
            quantity = _pick(rng, QUANTITIES, QUANTITY_CUM)
            cents = min(int(rng.lognormvariate(7.6, 0.9)), 250_000)  # median ~20.00, capped at 2,500.00
            total += quantity * cents
            items.append(Item(new_uuid(rng), order_id, _pick(rng, PRODUCT_IDS, PRODUCT_CUM), quantity, cents))
        currencies, cum = CURRENCY_CUM[user.region]
        order = Order(
            order_id,
            user,
            total,
            _pick(rng, currencies, cum),
            _pick(rng, STATUS_CHOICES, ORDER_STATUS_CUM),
            self.timestamp(),
        )
        return order, items


def _bad_user(rng: random.Random, kind: str, user: User, status: str) -> str:
    record = _user_line(user, status)
    if kind == "malformed_json":
        text = dumps(record)
        return text[: rng.randrange(10, len(text) // 2)]
    if kind == "missing_required_field:user_id":
        if rng.random() < 0.5:
            del record["user_id"]
        else:
            record["user_id"] = rng.choice([None, ""])
    elif kind == "invalid_status":
        record["status"] = rng.choice(["deleted", "ACTIVE", "pending"])
    elif kind == "invalid_timestamp":
        record["created_at"] = rng.choice(["2023-02-30T10:00:00Z", "last tuesday", "13/01/2023 10:00"])
    return dumps(record)


def _bad_order(state: _Day, kind: str) -> str:
    rng = state.rng
    order, _ = state.order()  # its items are dropped: a refused order has none
    record = order.record()
    if kind == "malformed_json":
        text = dumps(record)
        return text[: rng.randrange(10, len(text) // 2)]
    if kind == "missing_required_field:order_id":
        del record["order_id"]
    elif kind == "missing_required_field:user_id":
        if rng.random() < 0.5:
            del record["user_id"]
        else:
            record["user_id"] = rng.choice([None, ""])
    elif kind == "invalid_type:total_amount":
        record["total_amount"] = rng.choice(["abc", "12,50", "N/A", "ten"])
    elif kind == "invalid_amount":
        record["total_amount"] = rng.choice(
            [0, -round(rng.uniform(1, 500), 2), round(rng.uniform(100_001, 10**7), 2)]
        )
    elif kind == "invalid_currency":
        record["currency"] = rng.choice(["usd", "JPY", "EURO", "$"])
    elif kind == "unknown_user_id":  # a user who registers only later: not in today's snapshot
        record["user_id"] = rng.choice(state.future_users).user_id if state.future_users else new_uuid(rng)
    elif kind.startswith("region_not_allowed:"):
        record["region"] = FOREIGN_REGION
    return dumps(record)


def _bad_item(rng: random.Random, kind: str, item: dict) -> str:
    """`item` broken as `kind` (it replaces the good item line)."""
    record = dict(item)
    if kind == "malformed_json":
        text = dumps(record)
        return text[: rng.randrange(10, len(text) // 2)]
    if kind == "missing_required_field:item_id":
        del record["item_id"]
    elif kind == "invalid_type:quantity":
        record["quantity"] = rng.choice(["two", "1.5", "x", "3 pcs"])
    elif kind == "invalid_type:price":
        record["price"] = rng.choice(["free", "$10.00", "ten"])
    elif kind == "invalid_quantity":
        record["quantity"] = rng.choice([0, -1, -5])
    elif kind == "invalid_price":
        record["price"] = -record["price"] if record["price"] > 0 else -1.0
    return dumps(record)


def _kinds(source: str, count: int) -> list[str]:
    kinds = BAD_KINDS[source]
    return [kinds[i % len(kinds)] for i in range(count)]


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
            duplicate_users.append(rng.choice(user_lines))
        else:
            user = rng.choice(state.snapshot)
            broken_users.append(_bad_user(rng, kind, user, state.statuses[user.user_id]))
    users = scatter(rng, user_lines, broken_users) + duplicate_users

    # orders: good orders with their items; bad orders (no items) scattered; duplicates at the end
    order_kinds = _kinds("orders", min(round(rows * bad_share), rows - 1))
    good_orders, items = [], []
    for _ in range(rows - len(order_kinds)):
        order, its = state.order()
        good_orders.append(order.line())
        items.extend(its)
    broken_orders, duplicate_orders = [], []
    for kind in order_kinds:
        bad["orders"][kind] += 1
        if kind == DUPLICATE["orders"]:
            duplicate_orders.append(rng.choice(good_orders))
        else:
            broken_orders.append(_bad_order(state, kind))
    orders = scatter(rng, good_orders, broken_orders) + duplicate_orders

    # items: a bad item replaces a good one (orphans are extra); duplicates copy good lines, at the end
    item_lines = [item.line() for item in items]
    item_kinds = _kinds("order_items", round(len(item_lines) * bad_share)) if item_lines else []
    replace = [k for k in item_kinds if k not in (DUPLICATE["order_items"], "unknown_order_id")]
    victims = rng.sample(range(len(item_lines)), len(replace))
    for index, kind in zip(victims, replace):
        bad["order_items"][kind] += 1
        item_lines[index] = _bad_item(rng, kind, items[index].record())
    replaced = set(victims)
    orphans, duplicate_items = [], []
    for kind in item_kinds:
        if kind == "unknown_order_id":
            bad["order_items"][kind] += 1
            orphan = dataclasses.replace(rng.choice(items), item_id=new_uuid(rng), order_id=new_uuid(rng))
            orphans.append(orphan.line())
        elif kind == DUPLICATE["order_items"]:
            bad["order_items"][kind] += 1
            index = rng.randrange(len(item_lines))
            while index in replaced:
                index = rng.randrange(len(item_lines))
            duplicate_items.append(item_lines[index])
    order_items = scatter(rng, item_lines, orphans) + duplicate_items

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
