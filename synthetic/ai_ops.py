"""Synthetic landing files for the ai_ops domain: agent runs (LLM calls), their tool calls, tenant budgets.

Deterministic per (seed, day). Tenants and users come from the shared population.
Four landing sources:

- `agent_runs`: one line per agent run (run_id, tenant_id, region, user_id, workflow,
  model, provider, tokens_in, tokens_out, latency_ms, cost_usd, status, started_at,
  prompt_excerpt). `rows` is the number of these lines.
- `tool_calls`: 0-4 tool calls per valid run (call_id, run_id, tool_name, input,
  output, status, latency_ms, started_at).
- `tenant_budgets`: the daily snapshot of every tenant's budget for the month of the
  day (period 'YYYY-MM', amount = monthly budget, warning 0.8, critical 1.0).
- `tenants`: the daily snapshot of the Data Plane's tenants (tenant_id, name, plan_id, status,
  data_region, allowed_regions): where each tenant's data may live (`TENANT_RESIDENCY`).

Costs are priced per model from realistic list prices per 1K tokens, exactly: prices
are whole nano-dollars per token, so a run's cost has at most 9 decimals (processed
keeps it as DECIMAL(18,9)). Each day every tenant gets a spending intensity (a target share of
its daily budget): one tenant runs over budget (critical), one into the warning
band, the others stay below. Token volumes are scaled per tenant and day so that the
valid runs' cost meets the target whatever `rows` is, which keeps the budget
flags meaningful at 1,500 rows as at 1,000,000.
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
import itertools
import math
import random
from typing import Any

from synthetic import GeneratedDay, dumps, iso_millis, scatter, split_files
from synthetic.population import TENANT_WEIGHTS, new_uuid
from synthetic.population import population as synthetic_population

DOMAIN = "ai_ops"
# model: (provider, USD per 1K input tokens, USD per 1K output tokens, base latency ms, ms per output token,
#         share of runs). Latency = (base + output tokens x ms per token + input tokens / 20) x lognormal(0,
# 0.35).
MODELS = {
    "gpt-4o": ("openai", 0.0025, 0.01, 600, 12, 0.22),
    "gpt-4o-mini": ("openai", 0.00015, 0.0006, 400, 8, 0.25),
    "claude-3-5-sonnet": ("anthropic", 0.003, 0.015, 800, 14, 0.18),
    "claude-3-haiku": ("anthropic", 0.00025, 0.00125, 350, 7, 0.15),
    "gemini-1.5-pro": ("google", 0.00125, 0.005, 700, 13, 0.10),
    "gemini-1.5-flash": ("google", 0.000075, 0.0003, 300, 5, 0.10),
}
# Price per token in nano-dollars (integers), so that cost is exact: 0.0025 USD / 1K = 2500 nUSD per token.
NANO_PRICES = {m: (round(spec[1] * 1e6), round(spec[2] * 1e6)) for m, spec in MODELS.items()}
STATUSES = {"success": 0.94, "error": 0.04, "timeout": 0.02}
TOOL_STATUSES = {"success": 0.95, "error": 0.04, "timeout": 0.01}
TIMEOUT_MS = 300_000  # an agent run is stopped after 5 minutes
WORKFLOWS = {  # workflow: (share, tools it uses, prompt templates; {who} = the user, when there is one)
    "support_triage": (
        0.30,
        ("crm_lookup", "vector_search", "create_ticket"),
        (
            "Triage the ticket from {who}: the export to CSV fails since this morning.",
            "Classify urgency of the request from {who} about a double charge on the invoice.",
        ),
    ),
    "code_review": (
        0.15,
        ("git_diff", "code_interpreter"),
        (
            "Review the pull request for race conditions in the retry loop.",
            "Explain why the integration test is flaky and suggest a fix.",
        ),
    ),
    "doc_summarization": (
        0.20,
        ("vector_search", "fetch_url"),
        (
            "Summarize the onboarding guide for {who} in five bullet points.",
            "Summarize the quarterly architecture review notes.",
        ),
    ),
    "sales_email_draft": (
        0.10,
        ("crm_lookup", "send_email"),
        (
            "Draft a renewal email to {who} mentioning the new analytics tier.",
            "Write a follow-up for {who} after the product demo.",
        ),
    ),
    "data_analysis": (
        0.15,
        ("sql_query", "code_interpreter"),
        (
            "Which regions had the highest churn last month and why?",
            "Plot weekly active accounts by plan for the last quarter.",
        ),
    ),
    "rag_search": (
        0.10,
        ("vector_search", "web_search"),
        (
            "Find the SLA terms for premium support in the contract archive.",
            "What does our policy say about data retention for backups?",
        ),
    ),
}
TOOL_CALLS_PER_RUN = (0.25, 0.35, 0.20, 0.12, 0.08)  # 0..4 calls
USER_SHARE = 0.85  # runs started by a user (the rest are scheduled, without user_id)
PII_PROMPT_SHARE = 0.5  # of prompts with a {who} slot that name the user (name and email)
HOUR_WEIGHTS = [0.3 + math.exp(-((hour - 15) ** 2) / 18) for hour in range(24)]
WARNING, CRITICAL = 0.8, 1.0
UNKNOWN_TENANT = "tenant-wayne"  # not in the population, so never in a budget snapshot
FOREIGN_REGION = "sa-east-1"  # not one of the population's regions

RUN_BAD_KINDS = (
    "malformed_json",
    "missing_required_field:run_id",
    "missing_required_field:tenant_id",
    "unknown_tenant",
    "negative_tokens",
    "negative_cost",
    "non_positive_latency",
    "unknown_status",
    "invalid_started_at",
    f"region_not_allowed:{FOREIGN_REGION}",
    "duplicate_run_id",
)
TOOL_BAD_KINDS = (
    "malformed_json",
    "missing_required_field:call_id",
    "missing_required_field:run_id",
    "unknown_run",
    "duplicate_call_id",
)
BUDGET_BAD_KINDS = ("malformed_json", "duplicate_tenant_budget")
DUPLICATE_KINDS = {
    "agent_runs": "duplicate_run_id",
    "tool_calls": "duplicate_call_id",
    "tenant_budgets": "duplicate_tenant_budget",
}
# The Data Plane's tenants: plan, status and the regions a tenant's data may live in (its data_region first).
TENANT_RESIDENCY = {
    "tenant-acme": ("plan-enterprise", "active", ("us-east-1", "eu-west-1")),
    "tenant-globex": ("plan-business", "active", ("eu-west-1",)),
    "tenant-initech": ("plan-starter", "active", ("us-east-1",)),
    "tenant-umbrella": ("plan-business", "active", ("ap-southeast-1",)),
    "tenant-hooli": ("plan-starter", "trial", ("eu-west-1",)),
}
INVALID_TIMESTAMPS = ("2024-13-45T25:61:00Z", "yesterday", "01/02/2024 10:00", "")

_MODEL_NAMES = list(MODELS)
_MODEL_CUM = list(itertools.accumulate(m[5] for m in MODELS.values()))
_WORKFLOW_NAMES = list(WORKFLOWS)
_WORKFLOW_CUM = list(itertools.accumulate(w[0] for w in WORKFLOWS.values()))
_STATUS_NAMES = list(STATUSES)
_STATUS_CUM = list(itertools.accumulate(STATUSES.values()))
_TOOL_STATUS_NAMES = list(TOOL_STATUSES)
_TOOL_STATUS_CUM = list(itertools.accumulate(TOOL_STATUSES.values()))
_HOUR_CUM = list(itertools.accumulate(HOUR_WEIGHTS))
_TOOLS_CUM = list(itertools.accumulate(TOOL_CALLS_PER_RUN))
_TENANT_CUM = list(itertools.accumulate(TENANT_WEIGHTS))


def cost_nano_usd(model: str, tokens_in: int, tokens_out: int) -> int:
    """Exact cost in nano-dollars: the model's price per token times the tokens."""
    price_in, price_out = NANO_PRICES[model]
    return tokens_in * price_in + tokens_out * price_out


def _choose(rng: random.Random, items, cum: list[float]):
    """`rng.choices(items, cum_weights=cum)[0]`, without its per-call overhead."""
    return items[bisect.bisect(cum, rng.random() * cum[-1], 0, len(cum) - 1)]


def daily_budget(monthly: float, day: dt.date) -> float:
    return monthly / calendar.monthrange(day.year, day.month)[1]


def target_ratios(rng: random.Random, tenants) -> dict[str, float]:
    """Each tenant's share of its daily budget spent today: one critical, one in the warning band."""
    order = list(tenants)
    rng.shuffle(order)
    targets = {order[0].tenant_id: rng.uniform(1.10, 1.45), order[1].tenant_id: rng.uniform(0.84, 0.94)}
    for tenant in order[2:]:
        targets[tenant.tenant_id] = rng.uniform(0.15, 0.65)
    return targets


class _Users:
    """The tenant's users registered by the day, picked by activity (heavy users first)."""

    def __init__(self, population, day: dt.date):
        weights = [
            b - a for a, b in zip((0.0, *population.user_cum_weights[:-1]), population.user_cum_weights)
        ]
        self.by_tenant: dict[str, tuple[list, list[float]]] = {}
        for tenant in population.tenants:
            members = [
                (u, w)
                for u, w in zip(population.users, weights)
                if u.tenant_id == tenant.tenant_id and u.created_at.date() <= day
            ]
            self.by_tenant[tenant.tenant_id] = (
                [u for u, _ in members],
                list(itertools.accumulate(w for _, w in members)),
            )

    def pick(self, rng: random.Random, tenant_id: str):
        users, cum = self.by_tenant[tenant_id]
        if not users or rng.random() >= USER_SHARE:
            return None
        return _choose(rng, users, cum)


def _start(rng: random.Random, day: dt.date) -> dt.datetime:
    hour = _choose(rng, range(24), _HOUR_CUM)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC) + dt.timedelta(
        seconds=rng.randrange(3600), microseconds=rng.randrange(1000) * 1000
    )


def _draw(rng: random.Random) -> tuple[int, int, int, int, int]:
    """Tenant, model, status and unscaled tokens of one run (pass one: what the cost depends on)."""
    tenant = _choose(rng, range(len(TENANT_WEIGHTS)), _TENANT_CUM)
    model = _choose(rng, range(len(MODELS)), _MODEL_CUM)
    status = _choose(rng, range(len(STATUSES)), _STATUS_CUM)
    tokens_in = max(1, round(rng.lognormvariate(math.log(2500), 0.8)))
    tokens_out = 0 if status else max(1, round(rng.lognormvariate(math.log(450), 0.7)))
    return tenant, model, status, tokens_in, tokens_out


def _run(
    rng: random.Random,
    day: dt.date,
    tenant,
    users: _Users,
    model: str,
    status: str,
    tokens_in: int,
    tokens_out: int,
) -> dict:
    provider, _, _, base_ms, ms_per_token, _ = MODELS[model]
    if status == "timeout":
        latency = TIMEOUT_MS + rng.randrange(1, 2000)
    else:
        expected = base_ms + tokens_out * ms_per_token + tokens_in / 20
        latency = min(TIMEOUT_MS - 1, max(1, round(expected * rng.lognormvariate(0.0, 0.35))))
        if status == "error":
            latency = max(1, latency // 4)
    workflow = _choose(rng, _WORKFLOW_NAMES, _WORKFLOW_CUM)
    user = users.pick(rng, tenant.tenant_id)
    template = rng.choice(WORKFLOWS[workflow][2])
    if user is not None and rng.random() < PII_PROMPT_SHARE:
        who = f"{user.first_name} {user.last_name} <{user.email}>"
    else:
        who = "the customer"
    return {
        "run_id": new_uuid(rng),
        "tenant_id": tenant.tenant_id,
        "region": tenant.region,
        "user_id": user.user_id if user else None,
        "workflow": workflow,
        "model": model,
        "provider": provider,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "latency_ms": latency,
        "cost_usd": cost_nano_usd(model, tokens_in, tokens_out) / 1e9,
        "status": status,
        "started_at": iso_millis(_start(rng, day)),
        "prompt_excerpt": template.format(who=who)[:200],
    }


def _tool_input(rng: random.Random, tool: str) -> dict:
    if tool in ("vector_search", "web_search"):
        return {
            "query": rng.choice(["refund policy", "sso setup", "rate limits", "data retention", "sla"]),
            "top_k": rng.choice([3, 5, 10]),
        }
    if tool == "sql_query":
        return {"sql": f"select region, count(*) from accounts where plan = 'p{rng.randrange(4)}' group by 1"}
    if tool == "fetch_url":
        return {"url": f"https://docs.example.com/guides/{rng.randrange(200)}"}
    if tool == "crm_lookup":
        return {"account_ref": f"acct-{rng.randrange(10**6):06d}"}
    if tool == "create_ticket":
        return {"priority": rng.choice(["low", "normal", "high"]), "queue": "support"}
    if tool == "send_email":
        return {"template": rng.choice(["renewal", "follow_up"]), "dry_run": rng.random() < 0.3}
    if tool == "git_diff":
        return {"repo": f"service-{rng.randrange(30)}", "pr": rng.randrange(1, 5000)}
    return {"language": "python", "lines": rng.randrange(5, 200)}


def _tool_calls(rng: random.Random, run: dict) -> list[dict]:
    count = _choose(rng, range(len(TOOL_CALLS_PER_RUN)), _TOOLS_CUM)
    tools = WORKFLOWS[run["workflow"]][1]
    at = dt.datetime.fromisoformat(run["started_at"].replace("Z", "+00:00"))
    calls = []
    for _ in range(count):
        tool = rng.choice(tools)
        status = _choose(rng, _TOOL_STATUS_NAMES, _TOOL_STATUS_CUM)
        latency = 30_000 if status == "timeout" else max(1, round(rng.lognormvariate(math.log(300), 0.9)))
        at += dt.timedelta(milliseconds=rng.randrange(50, 1500))
        output = (
            {"items": rng.randrange(0, 20), "status_code": 200}
            if status == "success"
            else {"error": "timeout" if status == "timeout" else rng.choice(["rate_limited", "bad_request"])}
        )
        calls.append(
            {
                "call_id": new_uuid(rng),
                "run_id": run["run_id"],
                "tool_name": tool,
                "input": _tool_input(rng, tool),
                "output": output,
                "status": status,
                "latency_ms": latency,
                "started_at": iso_millis(at),
            }
        )
        at += dt.timedelta(milliseconds=latency)
    return calls


def _truncated(rng: random.Random, text: str) -> str:
    return text[: rng.randrange(10, max(11, len(text) // 2))]


def _bad_run(rng: random.Random, kind: str, run: dict) -> str:
    if kind == "malformed_json":
        return _truncated(rng, dumps(run))
    if kind.startswith("missing_required_field:"):
        del run[kind.split(":")[1]]
    elif kind == "unknown_tenant":
        run["tenant_id"] = UNKNOWN_TENANT
    elif kind == "negative_tokens":
        field = rng.choice(["tokens_in", "tokens_out"])
        run[field] = -max(1, run[field])
    elif kind == "negative_cost":
        run["cost_usd"] = -max(run["cost_usd"], 0.000001)
    elif kind == "non_positive_latency":
        run["latency_ms"] = rng.choice([0, -1, -250])
    elif kind == "unknown_status":
        run["status"] = rng.choice(["cancelled", "pending", "SUCCESS"])
    elif kind == "invalid_started_at":
        run["started_at"] = rng.choice(INVALID_TIMESTAMPS)
    elif kind.startswith("region_not_allowed:"):
        run["region"] = kind.split(":")[1]
    else:
        raise ValueError(kind)
    return dumps(run)


def _bad_tool_call(rng: random.Random, kind: str, call: dict) -> str:
    if kind == "malformed_json":
        return _truncated(rng, dumps(call))
    if kind.startswith("missing_required_field:"):
        del call[kind.split(":")[1]]
    elif kind == "unknown_run":
        call["run_id"] = new_uuid(rng)
    else:
        raise ValueError(kind)
    return dumps(call)


def _kinds(kinds: tuple[str, ...], n: int) -> list[str]:
    return [kinds[i % len(kinds)] for i in range(n)]


def _expected(lines: int, bad: dict[str, int], duplicate_kind: str) -> dict[str, int]:
    duplicates = bad.get(duplicate_kind, 0)
    quarantined = sum(n for kind, n in bad.items() if kind != duplicate_kind)
    return {
        "input": lines,
        "accepted": lines - quarantined - duplicates,
        "quarantined": quarantined,
        "duplicates": duplicates,
    }


def tenant_records(tenants) -> list[dict[str, Any]]:
    """The tenants snapshot (Data Plane `tenants`): where each tenant's data lives and may live."""
    return [
        {
            "tenant_id": t.tenant_id,
            "name": t.name,
            "plan_id": TENANT_RESIDENCY[t.tenant_id][0],
            "status": TENANT_RESIDENCY[t.tenant_id][1],
            "data_region": t.region,
            "allowed_regions": list(TENANT_RESIDENCY[t.tenant_id][2]),
        }
        for t in tenants
    ]


def generate_day(day: dt.date, rows: int, seed: int = 7, bad_share: float = 0.02) -> GeneratedDay:
    """`rows` agent-run lines for `day`, their tool calls and the day's budget snapshot."""
    rng = random.Random(f"{DOMAIN}-{seed}-{day.isoformat()}")
    population = synthetic_population(seed)
    tenants = population.tenants
    users = _Users(population, day)
    targets = target_ratios(rng, tenants)
    n_bad = round(rows * bad_share)
    n_valid = rows - n_bad

    # Pass one: what each valid run's cost depends on; then a token scale per tenant meeting its target.
    drawn = [_draw(rng) for _ in range(n_valid)]
    unit_spend = [0.0] * len(tenants)
    for tenant, model, _, tokens_in, tokens_out in drawn:
        unit_spend[tenant] += cost_nano_usd(_MODEL_NAMES[model], tokens_in, tokens_out) / 1e9
    scale = [
        targets[t.tenant_id] * daily_budget(t.monthly_budget_usd, day) / spend if spend else 1.0
        for t, spend in zip(tenants, unit_spend)
    ]

    # Pass two: the lines.
    run_lines: list[str] = []
    tool_lines: list[str] = []
    for tenant, model, status, tokens_in, tokens_out in drawn:
        factor = scale[tenant]
        run = _run(
            rng,
            day,
            tenants[tenant],
            users,
            _MODEL_NAMES[model],
            _STATUS_NAMES[status],
            max(1, round(tokens_in * factor)),
            max(1, round(tokens_out * factor)) if tokens_out else 0,
        )
        run_lines.append(dumps(run))
        tool_lines.extend(dumps(call) for call in _tool_calls(rng, run))

    bad = {
        "agent_runs": {kind: 0 for kind in RUN_BAD_KINDS},
        "tool_calls": {kind: 0 for kind in TOOL_BAD_KINDS},
        "tenant_budgets": {kind: 0 for kind in BUDGET_BAD_KINDS},
    }

    def spoil(lines: list[str], kinds: list[str], source: str, make_bad) -> list[str]:
        scattered, duplicates = [], []
        for kind in kinds:
            bad[source][kind] += 1
            if kind == DUPLICATE_KINDS[source]:  # a copy of an earlier valid line, later in the file
                duplicates.append(rng.choice(lines))
            else:
                scattered.append(make_bad(kind))
        return scatter(rng, lines, scattered) + duplicates

    def bad_run(kind: str) -> str:
        tenant, model, status, tokens_in, tokens_out = _draw(rng)
        return _bad_run(
            rng,
            kind,
            _run(
                rng,
                day,
                tenants[tenant],
                users,
                _MODEL_NAMES[model],
                _STATUS_NAMES[status],
                tokens_in,
                tokens_out,
            ),
        )

    def bad_call(kind: str) -> str:
        tenant, model, status, tokens_in, tokens_out = _draw(rng)
        run = _run(
            rng,
            day,
            tenants[tenant],
            users,
            _MODEL_NAMES[model],
            _STATUS_NAMES[status],
            tokens_in,
            tokens_out,
        )
        calls: list[dict[str, Any]] = []
        while not calls:
            calls = _tool_calls(rng, run)
        return _bad_tool_call(rng, kind, calls[0])

    run_lines = (
        spoil(run_lines, _kinds(RUN_BAD_KINDS, n_bad), "agent_runs", bad_run) if run_lines else run_lines
    )
    n_tool_bad = round(len(tool_lines) * bad_share)
    tool_lines = (
        spoil(tool_lines, _kinds(TOOL_BAD_KINDS, n_tool_bad), "tool_calls", bad_call)
        if tool_lines
        else tool_lines
    )

    period = f"{day:%Y-%m}"
    budget_lines = [
        dumps(
            {
                "tenant_id": t.tenant_id,
                "region": t.region,
                "period": period,
                "amount": t.monthly_budget_usd,
                "currency": "USD",
                "warning_threshold": WARNING,
                "critical_threshold": CRITICAL,
                "snapshot_date": day.isoformat(),
            }
        )
        for t in tenants
    ]
    if bad_share > 0:
        budget_lines = spoil(
            budget_lines,
            list(BUDGET_BAD_KINDS),
            "tenant_budgets",
            lambda kind: _truncated(rng, budget_lines[0]),
        )

    tenant_lines = [dumps(line) for line in tenant_records(tenants)]
    sources = {
        "agent_runs": split_files(run_lines),
        "tool_calls": split_files(tool_lines),
        "tenant_budgets": split_files(budget_lines),
        "tenants": split_files(tenant_lines),
    }
    lines = {source: sum(map(len, files)) for source, files in sources.items()}
    bad["tenants"] = {}
    record = {
        "domain": DOMAIN,
        "day": day.isoformat(),
        "seed": seed,
        "lines": lines,
        "files": {source: len(files) for source, files in sources.items()},
        "bad": bad,
        "expected": {
            source: _expected(lines[source], bad[source], DUPLICATE_KINDS.get(source, ""))
            for source in sources
        },
        "target_budget_ratios": targets,
    }
    return GeneratedDay(day=day, sources=sources, record=record)
