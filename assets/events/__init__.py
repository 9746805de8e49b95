"""The events domain: event envelopes of the event-driven platform, landing -> raw -> processed -> curated."""

from lakehouse.datasets import Classification as C
from lakehouse.datasets import Dataset
from lakehouse.datasets import Protection as P
from quality.rules import CURRENCY_CODE, UUID, Severity, between, complete, matches, one_of, required, typed
from transforms import events as t

DOMAIN = "events"
OWNER = "team:event-platform"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")

RAW = Dataset(
    name="events",
    domain=DOMAIN,
    layer="raw",
    owner=OWNER,
    landing="events",
    retention_days=90,
    description="Every landing line of the day, unparsed, with its source file, line number, ingestion time "
    "and run.",
    columns={"line": "the landing line exactly as received", "line_number": "1-based line in source_file"},
    classification={"line": C.RESTRICTED},
    subject_paths={"user_id": ("$.userId", "$.data.payload.userId")},
)
PROCESSED = Dataset(
    name="events",
    domain=DOMAIN,
    layer="processed",
    owner=OWNER,
    upstream=(RAW.path,),
    transform=t.parse_events,
    quarantine=True,
    primary_key=("event_id",),
    deduplicate_on=("event_id",),
    retention_days=365,
    envelope_versions=("1",),
    description="Typed events, one per eventId per day; late events (dated before arrival) flagged is_late. "
    "Personal data from user.registered payloads is lifted out of the JSON and protected.",
    columns={
        "event_ts": "event time (UTC)",
        "payload": "data.payload as JSON, personal fields removed, userId tokenized (as user_id)",
        "metadata": "data.metadata as JSON, personal fields removed",
        "email": "registration email, tokenized",
        "ip_address": "client IP, masked",
    },
    personal_data={
        "user_id": P.TOKENIZE,
        "email": P.TOKENIZE,
        "first_name": P.MASK,
        "last_name": P.MASK,
        "ip_address": P.MASK,
        "payload.userId": P.TOKENIZE,
    },
    classification={"payload": C.CONFIDENTIAL, "metadata": C.CONFIDENTIAL},
    subject_columns=("user_id",),
    tenant_column="tenant_id",
    region_column="region",
    allowed_regions=REGIONS,
    checks=(
        *required("event_type", "event_ts"),
        typed("event_ts", "TimestampType"),
        matches("event_id", UUID, "uuid"),
        one_of("event_type", t.EVENT_TYPES),
        *complete("event_source", "version"),
    ),
)
HOURLY_EVENT_COUNTS = Dataset(
    name="hourly_event_counts",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=(PROCESSED.path,),
    transform=t.hourly_event_counts,
    primary_key=("dt", "event_hour", "event_type", "region"),
    description="Events and distinct users per event hour, type and region, by arrival day.",
    region_column="region",
    retention_days=1095,
    column_lineage={"event_hour": ("event_ts",), "event_count": ("event_id",), "unique_users": ("user_id",)},
    checks=(
        between("event_count", 1, name="event_count_positive"),
        between("unique_users", 0, name="users_not_negative"),
    ),
)
DAILY_ACTIVE_USERS = Dataset(
    name="daily_active_users",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=(PROCESSED.path,),
    transform=t.daily_active_users,
    primary_key=("dt",),
    retention_days=1095,
    description="Distinct users, sessions, events and registrations per day.",
    column_lineage={
        "active_users": ("user_id",),
        "sessions": ("session_id",),
        "events": ("event_id",),
        "registrations": ("event_type",),
    },
    checks=(
        between("events", 1, name="events_positive"),
        between("active_users", 0, name="active_users_not_negative"),
    ),
)
DAILY_ORDER_REVENUE = Dataset(
    name="daily_order_revenue",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=(PROCESSED.path,),
    transform=t.daily_order_revenue,
    primary_key=("dt", "currency"),
    retention_days=1095,
    description="Orders and revenue per day and currency, from order.created payloads.",
    column_lineage={
        "currency": ("event_type", "payload"),
        "orders": ("event_type",),
        "revenue": ("event_type", "payload"),
        "orders_without_amount": ("event_type", "payload"),
    },
    checks=(
        between("revenue", 0, name="revenue_not_negative", severity=Severity.WARN),
        matches("currency", CURRENCY_CODE, "currency_code", severity=Severity.WARN),
    ),
)

DATASETS = (RAW, PROCESSED, HOURLY_EVENT_COUNTS, DAILY_ACTIVE_USERS, DAILY_ORDER_REVENUE)
