"""Synthetic landing files for the events domain (event-driven data architecture document).

Deterministic per (seed, day): re-generating a day writes identical files.
About 2% of lines are bad on purpose; the generator's record says how many of
each kind it wrote, so tests can reconcile every layer against it.

Columns are drawn whole with numpy (one PCG64 stream per seed and day) and the
lines written from them with one template per event type: the fixed-width parts
(ids, timestamps) as byte arrays, words and numbers from tables. Every string a
template writes comes from a fixed vocabulary, the population (checked to need no
JSON escaping), digits or hex, so the lines are valid JSON without json.dumps.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from functools import lru_cache

import numpy as np

from synthetic import (
    GeneratedDay,
    dumps,
    fixed_rows,
    hex_strings,
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
from synthetic.population import REGIONS
from synthetic.population import population as synthetic_population

EVENT_TYPES = {  # event type: (source, share)
    "user.registered": ("user-service", 0.05),
    "order.created": ("order-service", 0.15),
    "system.health.check": ("monitoring", 0.30),
    "integration.webhook.received": ("integration-gateway", 0.20),
    "ml.model.inference": ("ml-platform", 0.30),
}
CURRENCIES = {"USD": 0.55, "EUR": 0.30, "GBP": 0.15}
SERVICES = ["checkout", "catalog", "search", "auth", "payments"]
MODELS = [("fraud-detector", "xgboost"), ("recommender", "two-tower"), ("churn", "logreg")]
BAD_KINDS = (
    "malformed_json",
    "missing_required_field",
    "invalid_timestamp",
    "duplicate_event_id",
    "late_event",
)
REQUIRED_FIELDS = ("eventId", "eventType", "timestamp", "data")
BAD_TIMESTAMPS = ("2024-13-45T25:61:00Z", "yesterday", "01/02/2024 10:00", "")
ENVIRONMENTS = ("production", "staging")  # 90% / 10%
# Hour-of-day weights (UTC): quiet nights, a business-hours peak.
HOUR_WEIGHTS = [0.3 + math.exp(-((hour - 15) ** 2) / 18) for hour in range(24)]

_TYPE_CUM = np.cumsum([share for _, share in EVENT_TYPES.values()])
_HOUR_CUM = np.cumsum(HOUR_WEIGHTS)
_CURRENCY_CUM = np.cumsum(list(CURRENCIES.values()))
_REGION_CUM = np.cumsum(list(REGIONS.values()))


def _words(values) -> np.ndarray:
    return np.asarray(list(values), dtype=object)


_PRODUCTS = _words(f"prod-{i:04d}" for i in range(500))
_SMALL_INTS = _words(str(i) for i in range(256))


def _choose(rng: np.random.Generator, values, n: int) -> list:
    """`n` uniform picks of `values` (strings)."""
    return _words(values)[rng.integers(0, len(values), n)].tolist()


class _Users:
    """The population's users as lookup arrays (row = the user's index in `population.users`)."""

    def __init__(self, seed: int):
        population = synthetic_population(seed)
        users = population.users
        for user in users:
            json_safe(
                [user.user_id, user.email, user.first_name, user.last_name, user.region, user.tenant_id]
            )
        self.cum_weights = np.asarray(population.user_cum_weights)
        self.ids = np.frombuffer("".join(u.user_id for u in users).encode(), dtype=np.uint8).reshape(-1, 36)
        self.user_id = _words(u.user_id for u in users)
        # the envelope's end per (environment, user): environment, region, tenant
        self.ends = _words(
            f'","environment":"{env}","region":"{u.region}","tenantId":"{u.tenant_id}"}}'
            for env in ENVIRONMENTS
            for u in users
        )
        self.registered = _words(
            f'"userId":"{u.user_id}","email":"{u.email}","firstName":"{u.first_name}","lastName":"{u.last_name}"'
            for u in users
        )


@lru_cache(maxsize=4)
def _users(seed: int) -> _Users:
    return _Users(seed)


def _timestamp_ms(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` milliseconds of a day by the hour-of-day weights."""
    return pick(rng, _HOUR_CUM, n) * 3_600_000 + rng.integers(0, 3600, n) * 1000 + rng.integers(0, 1000, n)


def _registered(
    rng, users: _Users, user: np.ndarray, head: list[str], tail: list[str], end: list[str]
) -> list[str]:
    m = len(user)
    person = users.registered[user].tolist()
    source = _choose(rng, ["web", "ios", "android", "partner"], m)
    a, b = (_SMALL_INTS[rng.integers(0, 256, m)].tolist() for _ in "ab")
    c = _SMALL_INTS[rng.integers(1, 255, m)].tolist()
    agent = _choose(rng, ["Mozilla/5.0", "okhttp/4.12", "curl/8.5"], m)
    referrer = _choose(rng, ["google", "newsletter", "direct"], m)
    return [
        f'{h}{{"payload":{{{p},"registrationSource":"{s}"}},"metadata":{{"ipAddress":"10.{x}.{y}.{z}",'
        f'"userAgent":"{g}","referrer":"{r}"}}}}{t}{en}'
        for h, p, s, x, y, z, g, r, t, en in zip(head, person, source, a, b, c, agent, referrer, tail, end)
    ]


def _orders(
    rng, users: _Users, user: np.ndarray, head: list[str], tail: list[str], end: list[str]
) -> list[str]:
    m = len(user)
    counts = rng.integers(1, 5, m)
    k = int(counts.sum())
    product = _PRODUCTS[rng.integers(0, 500, k)].tolist()
    quantity = rng.integers(1, 5, k)
    price = np.round(rng.lognormal(3.0, 0.8, k), 2)
    bounds = np.cumsum(counts)
    starts = bounds - counts
    totals = number_text(np.add.reduceat(quantity * price, starts), 2) if m else []
    items = [
        f'{{"productId":"{p}","quantity":{q},"price":{v}}}'
        for p, q, v in zip(product, _SMALL_INTS[quantity].tolist(), number_text(price, 2))
    ]
    basket = [",".join(items[a:b]) for a, b in zip(starts.tolist(), bounds.tolist())]
    order_id = uuid4_strings(rng, m)
    currency = _words(CURRENCIES)[pick(rng, _CURRENCY_CUM, m)].tolist()
    method = _choose(rng, ["card", "paypal", "bank_transfer"], m)
    country = _choose(rng, ["US", "DE", "GB", "SG"], m)
    return [
        f'{h}{{"payload":{{"orderId":"{o}","userId":"{u}","items":[{i}],"totalAmount":{a},"currency":"{c}"}},'
        f'"metadata":{{"paymentMethod":"{p}","shippingAddress":{{"country":"{s}"}}}}}}{t}{en}'
        for h, o, u, i, a, c, p, s, t, en in zip(
            head, order_id, users.user_id[user].tolist(), basket, totals, currency, method, country, tail, end
        )
    ]


def _health_checks(
    rng, users: _Users, user: np.ndarray, head: list[str], tail: list[str], end: list[str]
) -> list[str]:
    m = len(user)
    healthy = rng.random(m) < 0.97
    service = _choose(rng, SERVICES, m)
    status = np.where(healthy, '"healthy"', '"degraded"').astype(object).tolist()
    response = number_text(rng.lognormal(3.5, 0.5, m), 1)
    errors = _SMALL_INTS[np.where(healthy, 0, rng.integers(1, 21, m))].tolist()
    instance = hex_strings(rng, m, 4)
    region = _words(REGIONS)[pick(rng, _REGION_CUM, m)].tolist()
    zone = _choose(rng, ["a", "b", "c"], m)
    return [
        f'{h}{{"payload":{{"serviceName":"{s}","status":{st},"responseTime":{r},"errorCount":{e}}},'
        f'"metadata":{{"instanceId":"i-{i}","region":"{g}","availabilityZone":"{z}"}}}}{t}{en}'
        for h, s, st, r, e, i, g, z, t, en in zip(
            head, service, status, response, errors, instance, region, zone, tail, end
        )
    ]


def _webhooks(
    rng, users: _Users, user: np.ndarray, head: list[str], tail: list[str], end: list[str]
) -> list[str]:
    m = len(user)
    webhook = uuid4_bytes(rng, m)
    source = _choose(rng, ["stripe", "github", "slack"], m)
    kind = _choose(rng, ["created", "updated", "deleted"], m)
    signature = hex_strings(rng, m, 8)
    processing = number_text(rng.uniform(1, 200, m), 1)
    ids = rows_text(webhook)
    return [
        f'{h}{{"payload":{{"webhookId":"{w}","source":"{s}","payload":{{"kind":"{k}"}}}},'
        f'"metadata":{{"headers":{{"content-type":"application/json"}},"signature":"{g}",'
        f'"processingTime":{p}}}}}{t}{en}'
        for h, w, s, k, g, p, t, en in zip(head, ids, source, kind, signature, processing, tail, end)
    ]


_MODEL_TEXT = _words(
    (f'"modelId":"{model}"', f'"endpoint":"/v1/models/{model}","modelType":"{kind}"')
    for model, kind in MODELS
)


def _inferences(
    rng, users: _Users, user: np.ndarray, head: list[str], tail: list[str], end: list[str]
) -> list[str]:
    m = len(user)
    model = rng.integers(0, len(MODELS), m)
    version = _SMALL_INTS[rng.integers(1, 4, m)].tolist()
    features = _SMALL_INTS[rng.integers(5, 51, m)].tolist()
    score = number_text(rng.random(m), 4)
    confidence = number_text(rng.uniform(0.5, 1.0, m), 4)
    inference = number_text(rng.lognormal(3.0, 0.6, m), 1)
    names = [_MODEL_TEXT[i] for i in model.tolist()]
    return [
        f'{h}{{"payload":{{{n[0]},"modelVersion":"v{v}","input":{{"features":{f}}},'
        f'"output":{{"score":{s}}},"confidence":{c}}},"metadata":{{"inferenceTime":{i},{n[1]}}}}}{t}{en}'
        for h, n, v, f, s, c, i, t, en in zip(
            head, names, version, features, score, confidence, inference, tail, end
        )
    ]


_TEMPLATES = (_registered, _orders, _health_checks, _webhooks, _inferences)


CHUNK = 1 << 17  # events built per batch: bounded intermediate memory


def _events(rng: np.random.Generator, seed: int, day: dt.date, ms: np.ndarray) -> list[str]:
    """One event line per millisecond of `day` in `ms`: users by activity weight, types by share."""
    lines: list[str] = []
    for start in range(0, len(ms), CHUNK):
        lines.extend(_batch(rng, _users(seed), day, ms[start : start + CHUNK]))
    return lines


def _batch(rng: np.random.Generator, users: _Users, day: dt.date, ms: np.ndarray) -> list[str]:
    n = len(ms)
    user = pick(rng, users.cum_weights, n)
    kind = pick(rng, _TYPE_CUM, n)
    version = (rng.integers(0, 2, n) + ord("0")).astype(np.uint8)[:, None]
    environment = (rng.random(n) >= 0.9).astype(np.int64)  # 0: production, 1: staging
    session = (rng.integers(0, 3, n) + ord("0")).astype(np.uint8)[:, None]
    event_id, correlation_id = uuid4_bytes(rng, n), uuid4_bytes(rng, n)
    stamps = iso_millis_bytes(day, ms)
    ids = users.ids[user]
    tails = fixed_rows(
        n,
        b',"correlationId":"',
        correlation_id,
        b'","userId":"',
        ids,
        b'","sessionId":"',
        ids[:, :8],
        f"-{day:%Y%m%d}-".encode(),
        session,
    )
    ends = users.ends[environment * len(users.user_id) + user]
    lines = np.empty(n, dtype=object)
    for index, ((name, (source, _)), template) in enumerate(zip(EVENT_TYPES.items(), _TEMPLATES)):
        rows = np.flatnonzero(kind == index)
        head = fixed_rows(
            len(rows),
            b'{"eventId":"',
            event_id[rows],
            f'","eventType":"{name}","eventSource":"{source}","timestamp":"'.encode(),
            stamps[rows],
            b'","version":"1.',
            version[rows],
            b'","data":',
        )
        lines[rows] = template(
            rng, users, user[rows], rows_text(head), rows_text(tails[rows]), ends[rows].tolist()
        )
    return lines.tolist()


def generate_day(day: dt.date, rows: int, seed: int = 7, bad_share: float = 0.02) -> GeneratedDay:
    """`rows` landing lines for `day`; the record counts each kind of bad line written."""
    rng = numpy_rng("events", seed, day)
    n_bad = round(rows * bad_share)
    kinds = [BAD_KINDS[i % len(BAD_KINDS)] for i in range(n_bad)]
    bad = {kind: kinds.count(kind) for kind in BAD_KINDS}
    lines = _events(rng, seed, day, _timestamp_ms(rng, rows - n_bad))

    # Bad events: drawn like good ones, then broken by kind (late ones re-dated to the previous day).
    broken = [kind for kind in kinds if kind != "duplicate_event_id"]
    scattered = _events(rng, seed, day, _timestamp_ms(rng, len(broken)))
    cut = rng.random(len(broken)).tolist()
    missing = rng.integers(0, len(REQUIRED_FIELDS), len(broken)).tolist()
    invalid = rng.integers(0, len(BAD_TIMESTAMPS), len(broken)).tolist()
    today, yesterday = f'"timestamp":"{day.isoformat()}T', f'"timestamp":"{day - dt.timedelta(days=1)}T'
    for i, kind in enumerate(broken):
        text = scattered[i]
        if kind == "malformed_json":  # a truncated write: cut somewhere in its first half
            scattered[i] = text[: 10 + int(cut[i] * (len(text) // 2 - 10))]
        elif kind == "missing_required_field":
            event = json.loads(text)
            del event[REQUIRED_FIELDS[missing[i]]]
            scattered[i] = dumps(event)
        elif kind == "invalid_timestamp":
            at = text.index(today) + 13
            scattered[i] = text[:at] + BAD_TIMESTAMPS[invalid[i]] + text[at + 24 :]
        else:  # late_event: a valid event dated the previous day, arriving today
            scattered[i] = text.replace(today, yesterday, 1)
    positions = np.sort(rng.integers(0, len(lines) + 1, len(broken))).tolist()
    # duplicates: copies of valid lines, after all of them
    duplicates = [lines[i] for i in rng.integers(0, max(len(lines), 1), bad["duplicate_event_id"]).tolist()]
    lines = scatter_at(lines, scattered, positions) + duplicates
    files = split_files(lines)
    quarantined = bad["malformed_json"] + bad["missing_required_field"] + bad["invalid_timestamp"]
    record = {
        "domain": "events",
        "day": day.isoformat(),
        "seed": seed,
        "lines": len(lines),
        "files": len(files),
        "bad": bad,
        "expected": {
            "raw": len(lines),
            "quarantined": quarantined,
            "duplicates": bad["duplicate_event_id"],
            "processed": len(lines) - quarantined - bad["duplicate_event_id"],
            "late": bad["late_event"],
        },
    }
    return GeneratedDay(day=day, sources={"events": files}, record=record)
