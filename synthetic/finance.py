"""Synthetic landing files for the finance domain (AIC data model: accounts and their transactions).

Two landing sources per day, both drawn from the shared population:
- `accounts`: a full snapshot of the accounts opened up to the end of the day, so that the
  rule "transactions reference known accounts" is checked against the same partition;
- `transactions`: the day's card payments, transfers, refunds, fees and deposits on accounts
  opened before the day began. Amounts are signed (debits negative), lognormal per kind.

Deterministic per (seed, day): one numpy PCG64 stream per day draws the transactions as columns, written
with one template. About `bad_share` of each source's lines are bad on purpose; the record says how many
of each kind were written and what every processed dataset should hold.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json
import math
import random
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
    split_files,
    uuid4_bytes,
    uuid4_strings,
)
from synthetic.population import Account, Population
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


_NAMES = list(TRANSACTION_TYPES)
_TYPE_CUM = np.cumsum([share for share, _, _ in TRANSACTION_TYPES.values()])
_CATEGORIES = list(MERCHANT_CATEGORIES)
_CATEGORY_CUM = np.cumsum([share for share, _, _ in MERCHANT_CATEGORIES.values()])
_CATEGORY_MU = np.array([mu for _, mu, _ in MERCHANT_CATEGORIES.values()])
_CATEGORY_SIGMA = np.array([sigma for _, _, sigma in MERCHANT_CATEGORIES.values()])
_CHANNELS = sorted({c for _, _, channels in TRANSACTION_TYPES.values() for c in channels} | {"atm"})
_CHANNEL_PICKS = [  # per type: (channel indices, cumulative weights)
    (np.array([_CHANNELS.index(c) for c in channels]), np.cumsum(list(channels.values())))
    for _, _, channels in TRANSACTION_TYPES.values()
]
_STATUS_CUM = np.cumsum(list(STATUSES.values()))
_STATUSES = list(STATUSES)
_HOUR_CUM = np.asarray(HOUR_CUM_WEIGHTS)


def _words(values) -> np.ndarray:
    return np.asarray(list(values), dtype=object)


@lru_cache(maxsize=4)
def _counterparties(world: Population) -> np.ndarray:
    """A transfer's counterparty field per population user (plain names: checked to need no escaping)."""
    json_safe([f"{u.first_name} {u.last_name}" for u in world.users])
    return _words(f',"counterparty_name":"{u.first_name} {u.last_name}"' for u in world.users)


def _transaction_lines(
    rng: np.random.Generator, world: Population, day: dt.date, pool: list[Account], cum: np.ndarray, n: int
) -> list[str]:
    """`n` valid transaction lines: columns drawn whole, one template (what dumps of the row would give)."""
    if n == 0:
        return []
    account = pick(rng, cum, n)
    kind = pick(rng, _TYPE_CUM, n)
    category = pick(rng, _CATEGORY_CUM, n)
    has_category = (kind == _NAMES.index("card_payment")) | (kind == _NAMES.index("refund"))
    channel = np.empty(n, dtype=np.int64)
    for index, (channels, channel_cum) in enumerate(_CHANNEL_PICKS):
        rows = np.flatnonzero(kind == index)
        channel[rows] = channels[pick(rng, channel_cum, len(rows))]
    channel[has_category & (category == _CATEGORIES.index("cash_withdrawal"))] = _CHANNELS.index("atm")
    # amounts: lognormal per type (per merchant category for card payments and refunds), fees from a list
    mu = np.select(
        [has_category, kind == _NAMES.index("transfer")], [_CATEGORY_MU[category], 5.0], default=7.0
    )
    sigma = np.select(
        [has_category, kind == _NAMES.index("transfer")], [_CATEGORY_SIGMA[category], 1.3], default=0.7
    )
    size = np.exp(mu + sigma * rng.standard_normal(n)) * np.where(kind == _NAMES.index("refund"), 0.6, 1.0)
    size = np.where(kind == _NAMES.index("fee"), np.asarray(FEES)[rng.integers(0, len(FEES), n)], size)
    size = np.clip(np.round(size, 2), 0.01, MAX_AMOUNT)
    fixed_sign = np.array([sign for _, sign, _ in TRANSACTION_TYPES.values()])[kind]
    sign = np.where(fixed_sign == 0, np.where(rng.random(n) < 0.6, -1, 1), fixed_sign)
    status = np.where(kind == _NAMES.index("fee"), 0, pick(rng, _STATUS_CUM, n))
    ms = pick(rng, _HOUR_CUM, n) * 3_600_000 + rng.integers(0, 3600, n) * 1000 + rng.integers(0, 1000, n)
    # extras: a transfer's counterparty (a population user), an online payment's IP address
    extra = np.full(n, "", dtype=object)
    transfers = np.flatnonzero(kind == _NAMES.index("transfer"))
    extra[transfers] = _counterparties(world)[pick(rng, np.asarray(world.user_cum_weights), len(transfers))]
    online = np.flatnonzero(channel == _CHANNELS.index("online"))
    octets = [
        rng.integers(low, high, len(online)).tolist()
        for low, high in ((1, 224), (0, 256), (0, 256), (1, 255))
    ]
    extra[online] = [f',"ip_address":"{a}.{b}.{c}.{d}"' for a, b, c, d in zip(*octets)]
    ids = np.frombuffer("".join(a.account_id for a in pool).encode(), dtype=np.uint8).reshape(-1, 36)
    head = rows_text(
        fixed_rows(n, b'{"id":"', uuid4_bytes(rng, n), b'","account_id":"', ids[account], b'","amount":')
    )
    middle = rows_text(fixed_rows(n, b'","timestamp":"', iso_millis_bytes(day, ms), b'","status":"'))
    currency = _words(f',"currency":"{a.currency}' for a in pool)[account].tolist()
    categories = _words([f'"{c}"' for c in _CATEGORIES])[category]
    category_text = np.where(has_category, categories, "null").tolist()
    return [
        f'{h}{a}{c}{m}{st}","type":"{t}","merchant_category":{mc},"channel":"{ch}"{x}}}'
        for h, a, c, m, st, t, mc, ch, x in zip(
            head,
            number_text(sign * size, 2),
            currency,
            middle,
            _words(_STATUSES)[status].tolist(),
            _words(_NAMES)[kind].tolist(),
            category_text,
            _words(_CHANNELS)[channel].tolist(),
            extra.tolist(),
        )
    ]


def _merge(rng: np.random.Generator, base: list[str], extras: list[tuple[int | None, str]]) -> list[str]:
    """Insert extra lines into `base`: anywhere (anchor None) or somewhere after base[anchor]."""
    low = np.array([0 if anchor is None else anchor + 1 for anchor, _ in extras], dtype=np.int64)
    positions = rng.integers(low, len(base) + 1) if extras else np.array([], dtype=np.int64)
    placed = sorted(
        (position, order, line) for order, (position, (_, line)) in enumerate(zip(positions.tolist(), extras))
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


def _accounts(rng: np.random.Generator, world: Population, day: dt.date, seed: int, bad_share: float):
    _, statuses, _ = account_book(seed)
    owners = {u.user_id: u for u in world.users}
    base = [dumps(account_line(a, statuses[a.account_id], owners)) for a in accounts_as_of(day, seed)]
    bad = {kind: 0 for kind in ACCOUNT_BAD_KINDS}
    extras: list[tuple[int | None, str]] = []
    for kind in _kinds(ACCOUNT_BAD_KINDS, round(len(base) * bad_share) if base else 0):
        bad[kind] += 1
        index = int(rng.integers(len(base)))
        if kind == "duplicate_account_id":  # the same account again, later in the file
            extras.append((index, base[index]))
            continue
        row = json.loads(base[index])
        if kind == "malformed_json":
            text = base[index]
            extras.append((None, text[: int(rng.integers(10, len(text) // 2))]))
            continue
        if kind == "missing_account_id":
            del row["account_id"]
        else:
            row["region"] = FOREIGN_REGIONS[int(rng.integers(len(FOREIGN_REGIONS)))]
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
    rng: np.random.Generator, world: Population, day: dt.date, rows: int, seed: int, bad_share: float
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
    cum = np.cumsum([weights[i] for i in active])
    base = _transaction_lines(rng, world, day, pool, cum, rows - n_bad)
    kinds = _kinds(TRANSACTION_BAD_KINDS, n_bad)
    broken = [kind for kind in kinds if kind != "duplicate_transaction_id"]
    rows_broken = [json.loads(line) for line in _transaction_lines(rng, world, day, pool, cum, len(broken))]
    draws = rng.random((len(broken), 2)).tolist()
    fresh = uuid4_strings(rng, len(broken))
    extras: list[tuple[int | None, str]] = []
    for index in rng.integers(0, max(len(base), 1), kinds.count("duplicate_transaction_id")).tolist():
        bad["duplicate_transaction_id"] += 1  # a re-sent valid line, later in the file
        extras.append((index, base[index]))
    for i, (kind, row, (u, w)) in enumerate(zip(broken, rows_broken, draws)):
        bad[kind] += 1
        if kind == "malformed_json":
            text = dumps(row)
            extras.append((None, text[: 10 + int(u * (len(text) // 2 - 10))]))
            continue
        if kind == "missing_id":
            del row["id"]
        elif kind == "missing_account_id":
            del row["account_id"]
        elif kind == "invalid_uuid":
            row["id"] = ["txn-" + str(int(w * 10**8)), row["id"][:-1], row["id"].replace("-", "")][int(u * 3)]
        elif kind == "amount_zero":
            row["amount"] = [0, 0.0, "0.00"][int(u * 3)]
        elif kind == "amount_absurd":
            row["amount"] = (-1 if u < 0.5 else 1) * round(1_000_000.01 + w * (99_000_000 - 1_000_000.01), 2)
        elif kind == "amount_not_a_number":
            row["amount"] = NOT_NUMBERS[int(u * len(NOT_NUMBERS))]
        elif kind == "invalid_timestamp":
            row["timestamp"] = BAD_TIMESTAMPS[int(u * len(BAD_TIMESTAMPS))]
        elif kind == "unknown_account":  # an account opened later, or one that never existed
            row["account_id"] = later[int(w * len(later))].account_id if later and u < 0.5 else fresh[i]
        else:
            row["status"] = BAD_STATUSES[int(u * len(BAD_STATUSES))]
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
    rng = numpy_rng(DOMAIN, seed, day)
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
