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

Columns are drawn whole with numpy (one PCG64 stream per seed and day) and the lines written from them with
one template per source: ids and timestamps as byte arrays, words, prompts and tool inputs from tables (the
population's names and emails are checked to need no JSON escaping), so the lines are valid JSON without
json.dumps; only the few bad lines are edited as records.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import math
from functools import lru_cache
from typing import Any

import numpy as np

from synthetic import (
    DAY_MS,
    GeneratedDay,
    dumps,
    fixed_rows,
    iso_millis_bytes,
    json_safe,
    number_text,
    numpy_rng,
    pick,
    rows_text,
    scatter_at,
    split_files,
    uuid4_bytes,
)
from synthetic.population import TENANT_WEIGHTS
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
_MODEL_CUM = np.cumsum([m[5] for m in MODELS.values()])
_WORKFLOW_NAMES = list(WORKFLOWS)
_WORKFLOW_CUM = np.cumsum([w[0] for w in WORKFLOWS.values()])
_STATUS_NAMES = list(STATUSES)
_STATUS_CUM = np.cumsum(list(STATUSES.values()))
_TOOL_STATUS_NAMES = list(TOOL_STATUSES)
_TOOL_STATUS_CUM = np.cumsum(list(TOOL_STATUSES.values()))
_HOUR_CUM = np.cumsum(HOUR_WEIGHTS)
_TOOLS_CUM = np.cumsum(TOOL_CALLS_PER_RUN)
_TENANT_CUM = np.cumsum(TENANT_WEIGHTS)
_SUCCESS, _ERROR, _TIMEOUT = (_STATUS_NAMES.index(s) for s in ("success", "error", "timeout"))
_TOOL_SUCCESS, _TOOL_TIMEOUT = _TOOL_STATUS_NAMES.index("success"), _TOOL_STATUS_NAMES.index("timeout")

_PRICE_IN = np.array([NANO_PRICES[m][0] for m in MODELS], dtype=np.int64)
_PRICE_OUT = np.array([NANO_PRICES[m][1] for m in MODELS], dtype=np.int64)
_BASE_MS = np.array([spec[3] for spec in MODELS.values()], dtype=np.float64)
_MS_PER_TOKEN = np.array([spec[4] for spec in MODELS.values()], dtype=np.float64)
# Prompt templates of all workflows in one list: workflow w has _TEMPLATE_COUNT[w] from _TEMPLATE_START[w].
_TEMPLATES = [template for w in WORKFLOWS.values() for template in w[2]]
_TEMPLATE_COUNT = np.array([len(w[2]) for w in WORKFLOWS.values()], dtype=np.int64)
_TEMPLATE_START = np.cumsum(_TEMPLATE_COUNT) - _TEMPLATE_COUNT
# Tools of all workflows: workflow w's tools are _WORKFLOW_TOOLS[w, 0.._TOOL_COUNT[w]-1] (indices of _TOOLS).
_TOOLS = sorted({tool for w in WORKFLOWS.values() for tool in w[1]})
_TOOL_COUNT = np.array([len(w[1]) for w in WORKFLOWS.values()], dtype=np.int64)
_WORKFLOW_TOOLS = np.array(
    [
        [_TOOLS.index(t) for t in w[1]] + [0] * (int(_TOOL_COUNT.max()) - len(w[1]))
        for w in WORKFLOWS.values()
    ],
    dtype=np.int64,
)
CHUNK = 1 << 17  # runs built per batch
_QUERIES = ("refund policy", "sso setup", "rate limits", "data retention", "sla")
_TOP_K = (3, 5, 10)


def _words(values) -> np.ndarray:
    return np.asarray(list(values), dtype=object)


def _ints(values: np.ndarray) -> list[str]:
    """Non-negative integers as text (from a table where they can)."""
    return number_text(values, 0)


def _decimal_digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) zero-padded ASCII digits of non-negative integers below 10**width."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((np.asarray(values, dtype=np.int64)[:, None] // powers) % 10 + ord("0")).astype(np.uint8)


# per (workflow, model): index workflow * len(MODELS) + model
_WORKFLOW_MODEL_TEXT = _words(
    f'"workflow":"{w}","model":"{m}","provider":"{spec[0]}"' for w in WORKFLOWS for m, spec in MODELS.items()
)
# A tool call's output and status: items 0..19 on success, then the timeout, then the two errors.
_OUTPUTS = (
    [({"items": i, "status_code": 200}, "success") for i in range(20)]
    + [({"error": "timeout"}, "timeout")]
    + [({"error": e}, "error") for e in ("rate_limited", "bad_request")]
)
_OUTPUT_TEXT = _words(f'{dumps(o)},"status":"{s}","latency_ms":' for o, s in _OUTPUTS)


def _grouped_rows(group: np.ndarray, parts) -> list[str]:
    """Row i's text is `fixed_rows` of `parts(g, rows)` for its group g = group[i] (the parts' widths may
    differ between groups): fixed-width byte rows per group, one text column in the end."""
    out = np.empty(len(group), dtype=object)
    for g in np.unique(group).tolist():
        rows = np.flatnonzero(group == g)
        out[rows] = rows_text(fixed_rows(len(rows), *parts(g, rows)))
    return out.tolist()


def cost_nano_usd(model: str, tokens_in: int, tokens_out: int) -> int:
    """Exact cost in nano-dollars: the model's price per token times the tokens."""
    price_in, price_out = NANO_PRICES[model]
    return tokens_in * price_in + tokens_out * price_out


def daily_budget(monthly: float, day: dt.date) -> float:
    return monthly / calendar.monthrange(day.year, day.month)[1]


def target_ratios(rng: np.random.Generator, tenants) -> dict[str, float]:
    """Each tenant's share of its daily budget spent today: one critical, one in the warning band."""
    order = [tenants[i] for i in rng.permutation(len(tenants)).tolist()]
    targets = {
        order[0].tenant_id: float(rng.uniform(1.10, 1.45)),
        order[1].tenant_id: float(rng.uniform(0.84, 0.94)),
    }
    for tenant in order[2:]:
        targets[tenant.tenant_id] = float(rng.uniform(0.15, 0.65))
    return targets


class _People:
    """The population's users as lookup arrays (row = the user's index in `population.users`; the row
    past the last one stands for no user), and every prompt text per (template, user or none)."""

    def __init__(self, seed: int):
        population = synthetic_population(seed)
        users = population.users
        for user in users:
            json_safe([user.user_id, user.email, user.first_name, user.last_name])
        self.tenants = population.tenants
        self.count = len(users)
        self.weights = np.diff(np.asarray(population.user_cum_weights), prepend=0.0)
        self.created = np.array([u.created_at.date().toordinal() for u in users], dtype=np.int64)
        index = {t.tenant_id: i for i, t in enumerate(population.tenants)}
        self.tenant = np.array([index[u.tenant_id] for u in users], dtype=np.int64)
        self.ids = np.frombuffer("".join(u.user_id for u in users).encode(), dtype=np.uint8).reshape(-1, 36)
        who = [f"{u.first_name} {u.last_name} <{u.email}>" for u in users] + ["the customer"]
        self.prompts = np.array(
            [[template.format(who=w)[:200] for w in who] for template in _TEMPLATES], dtype=object
        )
        json_safe(_TEMPLATES)
        self.tenant_text = [
            f'","tenant_id":"{t.tenant_id}","region":"{t.region}","user_id":' for t in self.tenants
        ]

    def by_tenant(self, day: dt.date) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per tenant: its users registered by the end of `day` and their cumulative activity weights."""
        known = self.created <= day.toordinal()
        members = [np.flatnonzero(known & (self.tenant == t)) for t in range(len(self.tenants))]
        return [(m, np.cumsum(self.weights[m])) for m in members]


@lru_cache(maxsize=4)
def _people(seed: int) -> _People:
    return _People(seed)


def _stamps(day: dt.date, ms: np.ndarray) -> np.ndarray:
    """(n, 24) `iso_millis` text of milliseconds from the start of `day` (past its end: the next days)."""
    out = np.empty((len(ms), 24), dtype=np.uint8)
    offset = ms // DAY_MS
    for days in np.unique(offset).tolist():
        rows = np.flatnonzero(offset == days)
        out[rows] = iso_millis_bytes(day + dt.timedelta(days=days), ms[rows] - days * DAY_MS)
    return out


def _draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """Tenant, model, status and unscaled tokens of `n` runs (pass one: what the cost depends on)."""
    tenant = pick(rng, _TENANT_CUM, n)
    model = pick(rng, _MODEL_CUM, n)
    status = pick(rng, _STATUS_CUM, n)
    tokens_in = np.maximum(1, np.rint(rng.lognormal(math.log(2500), 0.8, n))).astype(np.int64)
    tokens_out = np.maximum(1, np.rint(rng.lognormal(math.log(450), 0.7, n))).astype(np.int64)
    return tenant, model, status, tokens_in, np.where(status == _SUCCESS, tokens_out, 0)


class _Runs:
    """`n` agent runs drawn whole: their lines and what their tool calls depend on."""

    def __init__(
        self,
        rng: np.random.Generator,
        people: _People,
        day: dt.date,
        columns: tuple[np.ndarray, ...],
    ):
        tenant, model, status, tokens_in, tokens_out = columns
        n = len(tenant)
        expected = _BASE_MS[model] + tokens_out * _MS_PER_TOKEN[model] + tokens_in / 20
        latency = np.clip(np.rint(expected * rng.lognormal(0.0, 0.35, n)), 1, TIMEOUT_MS - 1).astype(np.int64)
        latency = np.where(status == _ERROR, np.maximum(1, latency // 4), latency)
        latency = np.where(status == _TIMEOUT, TIMEOUT_MS + rng.integers(1, 2000, n), latency)
        workflow = pick(rng, _WORKFLOW_CUM, n)
        user = np.full(n, people.count, dtype=np.int64)
        started = rng.random(n) < USER_SHARE  # a run started by a user (when its tenant has any yet)
        for index, (members, cum) in enumerate(people.by_tenant(day)):
            rows = np.flatnonzero((tenant == index) & started)
            if len(members) and len(rows):
                user[rows] = members[pick(rng, cum, len(rows))]
        named = (user < people.count) & (rng.random(n) < PII_PROMPT_SHARE)
        template = _TEMPLATE_START[workflow] + rng.integers(0, _TEMPLATE_COUNT[workflow])
        prompt = people.prompts[template, np.where(named, user, people.count)]
        self.start = pick(rng, _HOUR_CUM, n) * 3_600_000 + rng.integers(0, 3_600_000, n)
        self.run_id = uuid4_bytes(rng, n)
        self.workflow = workflow
        cost = tokens_in * _PRICE_IN[model] + tokens_out * _PRICE_OUT[model]  # nano-dollars, exact
        has_user = user < people.count
        users = people.ids[np.where(has_user, user, 0)]

        def head(group: int, rows: np.ndarray) -> tuple:  # group: tenant * 2 + has a user
            who = (b'"', users[rows], b'",') if group % 2 else (b"null,",)
            return (b'{"run_id":"', self.run_id[rows], people.tenant_text[group // 2].encode(), *who)

        stamps, fractions = iso_millis_bytes(day, self.start), _decimal_digits(cost % 10**9, 9)

        def tail(group: int, rows: np.ndarray) -> tuple:  # group: status; cost's 9 decimals first
            return (
                b".",
                fractions[rows],
                f',"status":"{_STATUS_NAMES[group]}","started_at":"'.encode(),
                stamps[rows],
                b'","prompt_excerpt":"',
            )

        # cost_usd: an exact JSON number with 9 decimals (what DECIMAL(18,9) holds)
        self.lines = [
            f'{h}{wm},"tokens_in":{ti},"tokens_out":{to},"latency_ms":{la},"cost_usd":{c}{tl}{p}"}}'
            for h, wm, ti, to, la, c, tl, p in zip(
                _grouped_rows(tenant * 2 + has_user, head),
                _WORKFLOW_MODEL_TEXT[workflow * len(MODELS) + model].tolist(),
                _ints(tokens_in),
                _ints(tokens_out),
                _ints(latency),
                _ints(cost // 10**9),
                _grouped_rows(status, tail),
                prompt.tolist(),
            )
        ]


def _tool_inputs(rng: np.random.Generator, tool: str, m: int) -> list[str]:
    """`m` inputs of `tool` calls (the JSON objects a tool is called with)."""
    if tool in ("vector_search", "web_search"):
        table = _words(dumps({"query": q, "top_k": k}) for q in _QUERIES for k in _TOP_K)
        return table[
            rng.integers(0, len(_QUERIES), m) * len(_TOP_K) + rng.integers(0, len(_TOP_K), m)
        ].tolist()
    if tool == "sql_query":
        table = _words(
            dumps({"sql": f"select region, count(*) from accounts where plan = 'p{p}' group by 1"})
            for p in range(4)
        )
        return table[rng.integers(0, 4, m)].tolist()
    if tool == "fetch_url":
        table = _words(dumps({"url": f"https://docs.example.com/guides/{i}"}) for i in range(200))
        return table[rng.integers(0, 200, m)].tolist()
    if tool == "crm_lookup":
        digits = _decimal_digits(rng.integers(0, 10**6, m), 6)
        return rows_text(fixed_rows(m, b'{"account_ref":"acct-', digits, b'"}'))
    if tool == "create_ticket":
        table = _words(dumps({"priority": p, "queue": "support"}) for p in ("low", "normal", "high"))
        return table[rng.integers(0, 3, m)].tolist()
    if tool == "send_email":
        table = _words(
            dumps({"template": t, "dry_run": d}) for t in ("renewal", "follow_up") for d in (False, True)
        )
        return table[rng.integers(0, 2, m) * 2 + (rng.random(m) < 0.3)].tolist()
    if tool == "git_diff":
        repo, pr = _ints(rng.integers(0, 30, m)), _ints(rng.integers(1, 5000, m))
        return [f'{{"repo":"service-{r}","pr":{p}}}' for r, p in zip(repo, pr)]
    table = _words(dumps({"language": "python", "lines": k}) for k in range(5, 200))
    return table[rng.integers(0, len(table), m)].tolist()


def _tool_calls(
    rng: np.random.Generator,
    day: dt.date,
    run_id: np.ndarray,
    workflow: np.ndarray,
    start: np.ndarray,
    count: np.ndarray,
) -> list[str]:
    """`count[i]` tool call lines of run i (run_id (n, 36) bytes), one after the other from its start."""
    of = np.repeat(np.arange(len(count)), count)
    k = len(of)
    calls_workflow = workflow[of]
    tool = _WORKFLOW_TOOLS[calls_workflow, rng.integers(0, _TOOL_COUNT[calls_workflow])]
    status = pick(rng, _TOOL_STATUS_CUM, k)
    latency = np.maximum(1, np.rint(rng.lognormal(math.log(300), 0.9, k))).astype(np.int64)
    latency = np.where(status == _TOOL_TIMEOUT, 30_000, latency)
    # a call starts a gap after the previous one ended (the first: a gap after the run's start)
    elapsed = np.cumsum(rng.integers(50, 1500, k) + latency)
    first = np.cumsum(count) - count
    before = np.concatenate(([0], elapsed))[first]
    at = start[of] + elapsed - latency - before[of]
    output = np.where(
        status == _TOOL_SUCCESS,
        rng.integers(0, 20, k),
        np.where(status == _TOOL_TIMEOUT, 20, 21 + rng.integers(0, 2, k)),
    )
    inputs = np.empty(k, dtype=object)
    for index, name in enumerate(_TOOLS):
        rows = np.flatnonzero(tool == index)
        if len(rows):
            inputs[rows] = _tool_inputs(rng, name, len(rows))
    call_id = uuid4_bytes(rng, k)

    def head(group: int, rows: np.ndarray) -> tuple:  # group: the tool
        return (
            b'{"call_id":"',
            call_id[rows],
            b'","run_id":"',
            run_id[of[rows]],
            f'","tool_name":"{_TOOLS[group]}","input":'.encode(),
        )

    tail = rows_text(fixed_rows(k, b',"started_at":"', _stamps(day, at), b'"}'))
    return [
        f'{h}{i},"output":{o}{la}{tl}'
        for h, i, o, la, tl in zip(
            _grouped_rows(tool, head), inputs.tolist(), _OUTPUT_TEXT[output].tolist(), _ints(latency), tail
        )
    ]


def _truncated(text: str, u: float) -> str:
    """A truncated write: `text` cut somewhere in its first half (after at least 10 characters)."""
    return text[: 10 + int(u * (max(11, len(text) // 2) - 10))]


def _bad_run(kind: str, line: str, u: float) -> str:
    if kind == "malformed_json":
        return _truncated(line, u)
    run = json.loads(line)
    if kind.startswith("missing_required_field:"):
        del run[kind.split(":")[1]]
    elif kind == "unknown_tenant":
        run["tenant_id"] = UNKNOWN_TENANT
    elif kind == "negative_tokens":
        field = ("tokens_in", "tokens_out")[int(u * 2)]
        run[field] = -max(1, run[field])
    elif kind == "negative_cost":
        run["cost_usd"] = -max(run["cost_usd"], 0.000001)
    elif kind == "non_positive_latency":
        run["latency_ms"] = (0, -1, -250)[int(u * 3)]
    elif kind == "unknown_status":
        run["status"] = ("cancelled", "pending", "SUCCESS")[int(u * 3)]
    elif kind == "invalid_started_at":
        run["started_at"] = INVALID_TIMESTAMPS[int(u * len(INVALID_TIMESTAMPS))]
    elif kind.startswith("region_not_allowed:"):
        run["region"] = kind.split(":")[1]
    else:
        raise ValueError(kind)
    return dumps(run)


def _bad_tool_call(kind: str, line: str, u: float) -> str:
    """A call of a run that is not in the day (a fresh run id) broken by `kind`."""
    if kind == "malformed_json":
        return _truncated(line, u)
    if kind == "unknown_run":
        return line
    call = json.loads(line)
    if kind.startswith("missing_required_field:"):
        del call[kind.split(":")[1]]
    else:
        raise ValueError(kind)
    return dumps(call)


def _kinds(kinds: tuple[str, ...], n: int) -> list[str]:
    return [kinds[i % len(kinds)] for i in range(n)]


def _spoil(rng: np.random.Generator, lines: list[str], broken: list[str], duplicates: int) -> list[str]:
    """`broken` lines inserted at random positions of `lines`, then `duplicates` copies of its lines (a
    re-sent valid line, later in the file)."""
    positions = np.sort(rng.integers(0, len(lines) + 1, len(broken))).tolist()
    copies = [lines[i] for i in rng.integers(0, max(len(lines), 1), duplicates).tolist()]
    return scatter_at(lines, broken, positions) + copies


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
    rng = numpy_rng(DOMAIN, seed, day)
    people = _people(seed)
    tenants = people.tenants
    targets = target_ratios(rng, tenants)
    n_bad = round(rows * bad_share)
    n_valid = rows - n_bad

    # Pass one: what each valid run's cost depends on; then a token scale per tenant meeting its target.
    tenant, model, status, tokens_in, tokens_out = _draw(rng, n_valid)
    unit_nano = tokens_in * _PRICE_IN[model] + tokens_out * _PRICE_OUT[model]
    unit_spend = np.bincount(tenant, weights=unit_nano / 1e9, minlength=len(tenants))
    scale = np.array(
        [
            targets[t.tenant_id] * daily_budget(t.monthly_budget_usd, day) / spend if spend else 1.0
            for t, spend in zip(tenants, unit_spend.tolist())
        ]
    )
    factor = scale[tenant]
    tokens_in = np.maximum(1, np.rint(tokens_in * factor)).astype(np.int64)
    tokens_out = np.where(tokens_out > 0, np.maximum(1, np.rint(tokens_out * factor)), 0).astype(np.int64)

    # Pass two: the lines, CHUNK runs (and their tool calls) at a time: bounded intermediate memory.
    run_lines: list[str] = []
    tool_lines: list[str] = []
    for at in range(0, n_valid, CHUNK):
        part = slice(at, at + CHUNK)
        runs = _Runs(
            rng, people, day, (tenant[part], model[part], status[part], tokens_in[part], tokens_out[part])
        )
        run_lines.extend(runs.lines)
        count = pick(rng, _TOOLS_CUM, len(runs.lines))
        tool_lines.extend(_tool_calls(rng, day, runs.run_id, runs.workflow, runs.start, count))

    bad = {
        "agent_runs": {kind: 0 for kind in RUN_BAD_KINDS},
        "tool_calls": {kind: 0 for kind in TOOL_BAD_KINDS},
        "tenant_budgets": {kind: 0 for kind in BUDGET_BAD_KINDS},
    }

    def spoil(source: str, lines: list[str], kinds: list[str], make_bad) -> list[str]:
        for kind in kinds:
            bad[source][kind] += 1
        broken = [kind for kind in kinds if kind != DUPLICATE_KINDS[source]]
        return _spoil(rng, lines, make_bad(broken), len(kinds) - len(broken))

    def bad_runs(kinds: list[str]) -> list[str]:  # drawn like valid runs (unscaled), then broken
        lines = _Runs(rng, people, day, _draw(rng, len(kinds))).lines
        draws = rng.random(len(kinds)).tolist()
        return [_bad_run(kind, line, u) for kind, line, u in zip(kinds, lines, draws)]

    def bad_calls(kinds: list[str]) -> list[str]:  # one call each of runs that are not in the day
        m = len(kinds)
        fake = uuid4_bytes(rng, m)
        workflow = pick(rng, _WORKFLOW_CUM, m)
        start = pick(rng, _HOUR_CUM, m) * 3_600_000 + rng.integers(0, 3_600_000, m)
        lines = _tool_calls(rng, day, fake, workflow, start, np.ones(m, dtype=np.int64))
        draws = rng.random(m).tolist()
        return [_bad_tool_call(kind, line, u) for kind, line, u in zip(kinds, lines, draws)]

    if run_lines:
        run_lines = spoil("agent_runs", run_lines, _kinds(RUN_BAD_KINDS, n_bad), bad_runs)
    if tool_lines:
        n_tool_bad = round(len(tool_lines) * bad_share)
        tool_lines = spoil("tool_calls", tool_lines, _kinds(TOOL_BAD_KINDS, n_tool_bad), bad_calls)

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
            "tenant_budgets",
            budget_lines,
            list(BUDGET_BAD_KINDS),
            lambda kinds: [_truncated(budget_lines[0], u) for u in rng.random(len(kinds)).tolist()],
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
