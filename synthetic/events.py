"""Synthetic landing files for the events domain (event-driven data architecture document).

Deterministic per (seed, day): re-generating a day writes identical files.
About 2% of lines are bad on purpose; the generator's record says how many of
each kind it wrote, so tests can reconcile every layer against it.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

from synthetic import GeneratedDay, dumps, iso_millis, scatter, split_files
from synthetic.population import REGIONS, Population, User, new_uuid
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
# Hour-of-day weights (UTC): quiet nights, a business-hours peak.
HOUR_WEIGHTS = [0.3 + math.exp(-((hour - 15) ** 2) / 18) for hour in range(24)]


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _payload(rng: random.Random, event_type: str, user: User) -> dict:
    user_id = user.user_id
    if event_type == "user.registered":
        return {
            "payload": {
                "userId": user_id,
                "email": user.email,
                "firstName": user.first_name,
                "lastName": user.last_name,
                "registrationSource": rng.choice(["web", "ios", "android", "partner"]),
            },
            "metadata": {
                "ipAddress": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                "userAgent": rng.choice(["Mozilla/5.0", "okhttp/4.12", "curl/8.5"]),
                "referrer": rng.choice(["google", "newsletter", "direct"]),
            },
        }
    if event_type == "order.created":
        items: list[dict[str, Any]] = [
            {
                "productId": f"prod-{rng.randrange(500):04d}",
                "quantity": rng.randint(1, 4),
                "price": round(rng.lognormvariate(3.0, 0.8), 2),
            }
            for _ in range(rng.randint(1, 4))
        ]
        total = round(sum(i["quantity"] * i["price"] for i in items), 2)
        return {
            "payload": {
                "orderId": new_uuid(rng),
                "userId": user_id,
                "items": items,
                "totalAmount": total,
                "currency": _pick(rng, CURRENCIES),
            },
            "metadata": {
                "paymentMethod": rng.choice(["card", "paypal", "bank_transfer"]),
                "shippingAddress": {"country": rng.choice(["US", "DE", "GB", "SG"])},
            },
        }
    if event_type == "system.health.check":
        healthy = rng.random() < 0.97
        return {
            "payload": {
                "serviceName": rng.choice(SERVICES),
                "status": "healthy" if healthy else "degraded",
                "responseTime": round(rng.lognormvariate(3.5, 0.5), 1),
                "errorCount": 0 if healthy else rng.randint(1, 20),
            },
            "metadata": {
                "instanceId": f"i-{rng.getrandbits(32):08x}",
                "region": _pick(rng, REGIONS),
                "availabilityZone": rng.choice("abc"),
            },
        }
    if event_type == "integration.webhook.received":
        return {
            "payload": {
                "webhookId": new_uuid(rng),
                "source": rng.choice(["stripe", "github", "slack"]),
                "payload": {"kind": rng.choice(["created", "updated", "deleted"])},
            },
            "metadata": {
                "headers": {"content-type": "application/json"},
                "signature": f"{rng.getrandbits(64):016x}",
                "processingTime": round(rng.uniform(1, 200), 1),
            },
        }
    model, model_type = rng.choice(MODELS)
    return {
        "payload": {
            "modelId": model,
            "modelVersion": f"v{rng.randint(1, 3)}",
            "input": {"features": rng.randint(5, 50)},
            "output": {"score": round(rng.random(), 4)},
            "confidence": round(rng.uniform(0.5, 1.0), 4),
        },
        "metadata": {
            "inferenceTime": round(rng.lognormvariate(3.0, 0.6), 1),
            "endpoint": f"/v1/models/{model}",
            "modelType": model_type,
        },
    }


def _timestamp(rng: random.Random, day: dt.date) -> dt.datetime:
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC) + dt.timedelta(
        seconds=rng.randrange(3600), microseconds=rng.randrange(1000) * 1000
    )


def _event(rng: random.Random, population: Population, day: dt.date, ts: dt.datetime | None = None) -> dict:
    user = population.pick_user(rng)
    event_type = rng.choices(list(EVENT_TYPES), weights=[share for _, share in EVENT_TYPES.values()])[0]
    return {
        "eventId": new_uuid(rng),
        "eventType": event_type,
        "eventSource": EVENT_TYPES[event_type][0],
        "timestamp": iso_millis(ts or _timestamp(rng, day)),
        "version": rng.choice(["1.0", "1.1"]),
        "data": _payload(rng, event_type, user),
        "correlationId": new_uuid(rng),
        "userId": user.user_id,
        "sessionId": f"{user.user_id[:8]}-{day:%Y%m%d}-{rng.randrange(3)}",
        "environment": "production" if rng.random() < 0.9 else "staging",
        "region": user.region,
        "tenantId": user.tenant_id,
    }


def generate_day(day: dt.date, rows: int, seed: int = 7, bad_share: float = 0.02) -> GeneratedDay:
    """`rows` landing lines for `day`; the record counts each kind of bad line written."""
    rng = random.Random(f"events-{seed}-{day.isoformat()}")
    population = synthetic_population(seed)
    bad = {kind: 0 for kind in BAD_KINDS}
    n_bad = round(rows * bad_share)
    kinds = [BAD_KINDS[i % len(BAD_KINDS)] for i in range(n_bad)]
    lines = [dumps(_event(rng, population, day)) for _ in range(rows - n_bad)]
    scattered: list[str] = []
    duplicates: list[str] = []
    for kind in kinds:
        bad[kind] += 1
        if kind == "duplicate_event_id":  # a copy of an earlier valid line, later in the file
            duplicates.append(rng.choice(lines))
            continue
        event = _event(rng, population, day)
        if kind == "malformed_json":
            text = dumps(event)
            scattered.append(text[: rng.randrange(10, len(text) // 2)])
            continue
        if kind == "missing_required_field":
            del event[rng.choice(REQUIRED_FIELDS)]
        elif kind == "invalid_timestamp":
            event["timestamp"] = rng.choice(["2024-13-45T25:61:00Z", "yesterday", "01/02/2024 10:00", ""])
        else:  # late_event: a valid event dated the previous day, arriving today
            event["timestamp"] = iso_millis(_timestamp(rng, day - dt.timedelta(days=1)))
        scattered.append(dumps(event))
    lines = scatter(rng, lines, scattered) + duplicates
    files = split_files(lines)
    invalid = bad["malformed_json"] + bad["missing_required_field"] + bad["invalid_timestamp"]
    record = {
        "domain": "events",
        "day": day.isoformat(),
        "seed": seed,
        "lines": len(lines),
        "files": len(files),
        "bad": bad,
        "expected": {
            "raw": len(lines),
            "quarantined": invalid,
            "duplicates": bad["duplicate_event_id"],
            "processed": len(lines) - invalid - bad["duplicate_event_id"],
            "late": bad["late_event"],
        },
    }
    return GeneratedDay(day=day, sources={"events": files}, record=record)
