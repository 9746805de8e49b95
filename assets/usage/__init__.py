"""The usage domain: what people do on the platform, released with differential privacy.

Built from the events and ai_ops domains' processed tables, from users with analytics consent in the
commerce users snapshot only (joined by user_id token), each user's contribution clipped; the noise,
the threshold and the budget ledger are `lakehouse.privacy`'s, the release step is
`orchestration.private_release`."""

import functools

from lakehouse.datasets import Dataset
from lakehouse.privacy import PrivacyDeclaration
from quality.rules import between, one_of
from transforms import ai_ops, usage

DOMAIN = "usage"
OWNER = "team:data-platform"
PRIVACY = PrivacyDeclaration(
    epsilon=2.0,
    delta=1e-5,
    threshold=100,
    max_rows_per_cell=2,
    max_cells_per_user=2,
    statuses=ai_ops.RUN_STATUSES,
    latency_bins_ms=(250, 500, 1000, 2000, 4000, 8000, 16000),
    measured_sources=("ai_ops",),
)


def release_checks(declared: PrivacyDeclaration) -> tuple:
    """The release's checks: a published cell reached the threshold; counts are not negative."""
    return (
        between("events", declared.threshold, name="published_cells_reach_the_threshold"),
        between("users", 0, name="users_not_negative"),
        one_of("source", ("events", "ai_ops")),
    )


DAILY_USAGE = Dataset(
    name="daily_usage",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=("processed/events/events", "processed/ai_ops/agent_runs", "processed/commerce/users"),
    transform=functools.partial(
        usage.usage_tallies,
        max_rows_per_cell=PRIVACY.max_rows_per_cell,
        max_cells_per_user=PRIVACY.max_cells_per_user,
        latency_bins_ms=PRIVACY.latency_bins_ms,
    ),
    primary_key=("dt", "source", "action", "resource"),
    retention_days=1095,
    privacy=PRIVACY,
    description="Anonymized usage per day and action x resource (events: entity and verb of the event type; "
    "ai_ops: agent runs per model), released with differential privacy: consenting users only, at most "
    f"{PRIVACY.max_rows_per_cell} rows per user and cell in {PRIVACY.max_cells_per_user} cells per user "
    f"and day, Laplace noise for epsilon={PRIVACY.epsilon} and delta={PRIVACY.delta} per day; cells whose "
    f"noisy count is below {PRIVACY.threshold} are not published. No value is exact.",
    columns={
        "source": "the domain the usage comes from: events or ai_ops",
        "action": "what was done (the event type's verb, or run)",
        "resource": "what it was done to (the event type's entity, or the model)",
        "events": "noisy count of the cell's clipped rows (at least the threshold)",
        "users": "noisy count of the cell's distinct users",
        **{f"{s}_share": f"share of {s} runs, from noisy counts (ai_ops cells)" for s in PRIVACY.statuses},
        "p50_latency_ms": "upper edge of the latency bin holding the noisy median (ai_ops cells)",
        "p95_latency_ms": "upper edge of the latency bin holding the noisy 95th percentile (ai_ops cells)",
    },
    column_lineage={
        "source": (),
        "action": ("events.event_type",),
        "resource": ("events.event_type", "agent_runs.model"),
        "events": ("events.event_id", "agent_runs.run_id", "users.consent_analytics"),
        "users": ("events.user_id", "agent_runs.user_id", "users.consent_analytics"),
        **{f"{s}_share": ("agent_runs.status",) for s in PRIVACY.statuses},
        "p50_latency_ms": ("agent_runs.latency_ms",),
        "p95_latency_ms": ("agent_runs.latency_ms",),
    },
    checks=release_checks(PRIVACY),
)

DATASETS = (DAILY_USAGE,)
