"""Synthetic landing files for the finance domain (AIC data model: accounts and their transactions).

Two landing sources per day, both drawn from the shared population:
- `accounts`: a full snapshot of the accounts opened up to the end of the day, so that the
  rule "transactions reference known accounts" is checked against the same partition;
- `transactions`: the day's card payments, transfers, refunds, fees and deposits on accounts
  opened before the day began. Amounts are signed (debits negative), lognormal per kind.

Deterministic per (seed, day). About `bad_share` of each source's lines are bad on purpose; the
record says how many of each kind were written and what every processed dataset should hold.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json
import math
import random
from functools import lru_cache

from synthetic import GeneratedDay, dumps, iso_millis, split_files
from synthetic.population import Account, Population, new_uuid
from synthetic.population import population as synthetic_population

DOMAIN = "finance"
STATUSES = {"settled": 0.88, "pending": 0.07, "failed": 0.04, "reversed": 0.01}
ACCOUNT_STATUSES = {"active": 0.93, "frozen": 0.03, "closed": 0.04}
# type: (share, sign, channels)
TRANSACTION_TYPES = {
    "card_payment": (0.55, -1, {"pos": 0.65, "online": 0.35}),
    "transfer": (0.18, 0, {"mobile": 0.7, "web": 0.3}),  # sign 0: outgoing or incoming
    "refund": (0.04, 1, {"online": 0.6, "pos": 0.4}),
    "fee": (0.08, -1, {"system": 1.0}),
    "deposit": (0.15, 1, {"payroll": 0.6, "branch": 0.1, "mobile": 0.3}),
}
# merchant category: (share, lognormal mu, sigma) of a card payment's amount
MERCHANT_CATEGORIES = {
    "groceries": (0.25, 3.5, 0.6),
    "restaurants": (0.15, 3.2, 0.6),
    "online_retail": (0.14, 3.6, 0.9),
    "fuel": (0.08, 4.0, 0.3),
    "travel": (0.05, 5.5, 0.9),
    "entertainment": (0.07, 3.0, 0.7),
    "utilities": (0.06, 4.3, 0.5),
    "health": (0.05, 3.6, 0.8),
    "electronics": (0.05, 5.0, 1.0),
    "cash_withdrawal": (0.10, 4.2, 0.6),
}
FEES = (0.5, 1.0, 2.5, 5.0, 15.0, 25.0)
MAX_AMOUNT = 250_000.0
TRANSACTION_BAD_KINDS = (
    "malformed_json",
    "missing_id",
    "missing_account_id",
    "invalid_uuid",
    "amount_zero",
    "amount_absurd",
    "amount_not_a_number",
    "invalid_timestamp",
    "unknown_account",
    "unknown_status",
    "duplicate_transaction_id",
)
ACCOUNT_BAD_KINDS = ("malformed_json", "missing_account_id", "region_not_allowed", "duplicate_account_id")
NOT_NUMBERS = ("abc", "12,50", "", "N/A", "1.2.3")
BAD_TIMESTAMPS = ("2024-13-45T25:61:00Z", "yesterday", "01/02/2024 10:00", "")
BAD_STATUSES = ("SETTLED", "cancelled", "unknown", "processing")
FOREIGN_REGIONS = ("us-west-2", "sa-east-1", "cn-north-1")
# Hour-of-day weights (UTC): quiet nights, a daytime peak.
HOUR_CUM_WEIGHTS = tuple(itertools.accumulate(0.15 + math.exp(-((h - 14) ** 2) / 20) for h in range(24)))


def _cum(weights: dict) -> tuple[list, list[float]]:
    shares = [v[0] if isinstance(v, tuple) else v for v in weights.values()]
    return list(weights), list(itertools.accumulate(shares))


STATUS_CHOICES = _cum(STATUSES)
ACCOUNT_STATUS_CHOICES = _cum(ACCOUNT_STATUSES)
TYPE_CHOICES = _cum(TRANSACTION_TYPES)
CATEGORY_CHOICES = _cum(MERCHANT_CATEGORIES)
CHANNEL_CHOICES = {kind: _cum(channels) for kind, (_, _, channels) in TRANSACTION_TYPES.items()}


def _pick(rng: random.Random, choices: tuple[list, list[float]]):
    """One value by cumulative weights (what `rng.choices` does, without its per-call overhead)."""
    values, cum = choices
    return values[bisect.bisect(cum, rng.random() * cum[-1], 0, len(cum) - 1)]


@lru_cache(maxsize=4)
def account_book(seed: int = 7) -> tuple[tuple[Account, ...], dict[str, str], tuple[float, ...]]:
    """The population's accounts by opening time, each one's status, and its owner's activity weight."""
    world = synthetic_population(seed)
    rng = random.Random(f"{DOMAIN}-accounts-{seed}")
    accounts = tuple(sorted(world.accounts, key=lambda a: a.opened_at))
    statuses = {a.account_id: _pick(rng, ACCOUNT_STATUS_CHOICES) for a in accounts}
    weight = {
        u.user_id: w - prev
        for u, w, prev in zip(world.users, world.user_cum_weights, (0.0, *world.user_cum_weights[:-1]))
    }
    return accounts, statuses, tuple(weight[a.customer_id] for a in accounts)


def accounts_as_of(day: dt.date, seed: int = 7) -> list[Account]:
    """Accounts opened up to the end of `day` (the snapshot of that day)."""
    accounts, _, _ = account_book(seed)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return list(accounts[: bisect.bisect_left([a.opened_at for a in accounts], end)])


def account_line(account: Account, status: str, owners: dict) -> dict:
    """An accounts-snapshot row: the account, its status, and its owner's region and tenant."""
    owner = owners[account.customer_id]
    return {
        "account_id": account.account_id,
        "customer_id": account.customer_id,
        "currency": account.currency,
        "opened_at": iso_millis(account.opened_at),
        "region": owner.region,
        "tenant_id": owner.tenant_id,
        "status": status,
    }


HOURS = (list(range(24)), list(HOUR_CUM_WEIGHTS))


def _timestamp(rng: random.Random, day: dt.date) -> str:
    """An ISO time of the day, UTC, millisecond precision, mostly in daytime hours."""
    second = _pick(rng, HOURS) * 3600 + rng.randrange(3600)
    clock = f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
    return f"{day.isoformat()}T{clock}.{rng.randrange(1000):03d}Z"


def _amount(rng: random.Random, kind: str, category: str | None) -> float:
    if kind in ("card_payment", "refund"):
        assert category is not None, kind
        _, mu, sigma = MERCHANT_CATEGORIES[category]
        size = rng.lognormvariate(mu, sigma) * (0.6 if kind == "refund" else 1.0)
    elif kind == "transfer":
        size = rng.lognormvariate(5.0, 1.3)
    elif kind == "fee":
        size = rng.choice(FEES)
    else:
        size = rng.lognormvariate(7.0, 0.7)
    size = max(0.01, min(round(size, 2), MAX_AMOUNT))
    sign = TRANSACTION_TYPES[kind][1] or (-1 if rng.random() < 0.6 else 1)
    return sign * size


def _transaction(rng: random.Random, world: Population, day: dt.date, account: Account) -> dict:
    kind = _pick(rng, TYPE_CHOICES)
    category = _pick(rng, CATEGORY_CHOICES) if kind in ("card_payment", "refund") else None
    channel = "atm" if category == "cash_withdrawal" else _pick(rng, CHANNEL_CHOICES[kind])
    row = {
        "id": new_uuid(rng),
        "account_id": account.account_id,
        "amount": _amount(rng, kind, category),
        "currency": account.currency,
        "timestamp": _timestamp(rng, day),
        "status": "settled" if kind == "fee" else _pick(rng, STATUS_CHOICES),
        "type": kind,
        "merchant_category": category,
        "channel": channel,
    }
    if kind == "transfer":
        other = world.pick_user(rng)
        row["counterparty_name"] = f"{other.first_name} {other.last_name}"
    if channel == "online":
        row["ip_address"] = (
            f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        )
    return row


def _merge(rng: random.Random, base: list[str], extras: list[tuple[int | None, str]]) -> list[str]:
    """Insert extra lines into `base`: anywhere (anchor None) or somewhere after base[anchor]."""
    placed = sorted(
        (
            (rng.randrange(len(base) + 1) if anchor is None else rng.randrange(anchor + 1, len(base) + 1)),
            order,
            line,
        )
        for order, (anchor, line) in enumerate(extras)
    )
    merged: list[str] = []
    previous = 0
    for position, _, line in placed:
        merged.extend(base[previous:position])
        merged.append(line)
        previous = position
    return merged + base[previous:]


def _kinds(kinds: tuple[str, ...], n: int) -> list[str]:
    return [kinds[i % len(kinds)] for i in range(n)]


def _accounts(rng: random.Random, world: Population, day: dt.date, seed: int, bad_share: float):
    _, statuses, _ = account_book(seed)
    owners = {u.user_id: u for u in world.users}
    base = [dumps(account_line(a, statuses[a.account_id], owners)) for a in accounts_as_of(day, seed)]
    bad = {kind: 0 for kind in ACCOUNT_BAD_KINDS}
    extras: list[tuple[int | None, str]] = []
    for kind in _kinds(ACCOUNT_BAD_KINDS, round(len(base) * bad_share) if base else 0):
        bad[kind] += 1
        index = rng.randrange(len(base))
        if kind == "duplicate_account_id":  # the same account again, later in the file
            extras.append((index, base[index]))
            continue
        row = json.loads(base[index])
        if kind == "malformed_json":
            text = base[index]
            extras.append((None, text[: rng.randrange(10, len(text) // 2)]))
            continue
        if kind == "missing_account_id":
            del row["account_id"]
        else:
            row["region"] = rng.choice(FOREIGN_REGIONS)
        extras.append((None, dumps(row)))
    lines = _merge(rng, base, extras)
    quarantined = bad["malformed_json"] + bad["missing_account_id"] + bad["region_not_allowed"]
    expected = {
        "input": len(lines),
        "accepted": len(base),
        "quarantined": quarantined,
        "duplicates": bad["duplicate_account_id"],
    }
    return lines, bad, expected


def _transactions(
    rng: random.Random, world: Population, day: dt.date, rows: int, seed: int, bad_share: float
):
    accounts, statuses, weights = account_book(seed)
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    opened = bisect.bisect_left([a.opened_at for a in accounts], start)  # opened before the day began
    active = [i for i in range(opened) if statuses[accounts[i].account_id] == "active"]
    later = accounts[len(accounts_as_of(day, seed)) :]  # not in today's snapshot
    bad = {kind: 0 for kind in TRANSACTION_BAD_KINDS}
    n_bad = min(round(rows * bad_share), max(rows - 1, 0))  # at least one valid line to duplicate
    if not active:
        return [], bad, {"input": 0, "accepted": 0, "quarantined": 0, "duplicates": 0}
    pool = [accounts[i] for i in active]
    cum = list(itertools.accumulate(weights[i] for i in active))
    choices = (pool, cum)
    base = [dumps(_transaction(rng, world, day, _pick(rng, choices))) for _ in range(rows - n_bad)]
    extras: list[tuple[int | None, str]] = []
    for kind in _kinds(TRANSACTION_BAD_KINDS, n_bad):
        bad[kind] += 1
        if kind == "duplicate_transaction_id":  # a re-sent valid line, later in the file
            index = rng.randrange(len(base))
            extras.append((index, base[index]))
            continue
        row = _transaction(rng, world, day, _pick(rng, choices))
        if kind == "malformed_json":
            text = dumps(row)
            extras.append((None, text[: rng.randrange(10, len(text) // 2)]))
            continue
        if kind == "missing_id":
            del row["id"]
        elif kind == "missing_account_id":
            del row["account_id"]
        elif kind == "invalid_uuid":
            row["id"] = rng.choice(
                ["txn-" + str(rng.randrange(10**8)), row["id"][:-1], row["id"].replace("-", "")]
            )
        elif kind == "amount_zero":
            row["amount"] = rng.choice([0, 0.0, "0.00"])
        elif kind == "amount_absurd":
            row["amount"] = rng.choice([-1, 1]) * round(rng.uniform(1_000_000.01, 99_000_000), 2)
        elif kind == "amount_not_a_number":
            row["amount"] = rng.choice(NOT_NUMBERS)
        elif kind == "invalid_timestamp":
            row["timestamp"] = rng.choice(BAD_TIMESTAMPS)
        elif kind == "unknown_account":  # an account opened later, or one that never existed
            row["account_id"] = (
                rng.choice(later).account_id if later and rng.random() < 0.5 else new_uuid(rng)
            )
        else:
            row["status"] = rng.choice(BAD_STATUSES)
        extras.append((None, dumps(row)))
    lines = _merge(rng, base, extras)
    duplicates = bad["duplicate_transaction_id"]
    quarantined = n_bad - duplicates
    expected = {
        "input": len(lines),
        "accepted": len(lines) - quarantined - duplicates,
        "quarantined": quarantined,
        "duplicates": duplicates,
    }
    return lines, bad, expected


def generate_day(day: dt.date, rows: int, seed: int = 7, bad_share: float = 0.02) -> GeneratedDay:
    """The day's accounts snapshot and `rows` transaction lines; the record counts each kind of bad line."""
    rng = random.Random(f"{DOMAIN}-{seed}-{day.isoformat()}")
    world = synthetic_population(seed)
    account_lines, account_bad, account_expected = _accounts(rng, world, day, seed, bad_share)
    txn_lines, txn_bad, txn_expected = _transactions(rng, world, day, rows, seed, bad_share)
    sources = {"accounts": split_files(account_lines), "transactions": split_files(txn_lines)}
    record = {
        "domain": DOMAIN,
        "day": day.isoformat(),
        "seed": seed,
        "lines": {"accounts": len(account_lines), "transactions": len(txn_lines)},
        "files": {source: len(files) for source, files in sources.items()},
        "bad": {"accounts": account_bad, "transactions": txn_bad},
        "expected": {"accounts": account_expected, "transactions": txn_expected},
    }
    return GeneratedDay(day=day, sources=sources, record=record)
