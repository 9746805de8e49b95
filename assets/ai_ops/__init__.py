"""The ai_ops domain: agent runs (LLM calls), their tool calls and tenant budgets; cost against budget per
tenant and performance per model. landing -> raw -> processed (+ quarantine) -> curated."""

from lakehouse.datasets import Classification as C
from lakehouse.datasets import Dataset
from lakehouse.datasets import Protection as P
from quality.rules import between, one_of, references, required, typed
from transforms import ai_ops as t
from transforms import residency

DOMAIN = "ai_ops"
OWNER = "team:ai-platform"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")
RAW_COLUMNS = {"line": "the landing line exactly as received", "line_number": "1-based line in source_file"}


def _raw(name: str, description: str, subject_paths: dict[str, tuple[str, ...]] | None = None) -> Dataset:
    return Dataset(
        name=name,
        domain=DOMAIN,
        layer="raw",
        owner=OWNER,
        landing=name,
        retention_days=90,
        description=description,
        columns=RAW_COLUMNS,
        classification={"line": C.RESTRICTED},
        subject_paths=subject_paths or {},
    )


RAW_BUDGETS = _raw(
    "tenant_budgets", "Every line of the day's tenant budget snapshots, unparsed, with ingestion metadata."
)
RAW_RUNS = _raw(
    "agent_runs",
    "Every agent-run line of the day (LLM calls, prompt excerpts included), unparsed, "
    "with its source file, line number, ingestion time and run.",
    {"user_id": ("$.user_id",)},
)
RAW_TOOL_CALLS = _raw("tool_calls", "Every tool-call line of the day, unparsed, with ingestion metadata.")
RAW_TENANTS = _raw("tenants", "Every line of the day's tenants snapshot (Data Plane `tenants`), unparsed.")

TENANTS = Dataset(
    name="tenants",
    domain=DOMAIN,
    layer="processed",
    owner=OWNER,
    upstream=(RAW_TENANTS.path,),
    transform=residency.parse_tenants,
    quarantine=True,
    primary_key=("tenant_id",),
    deduplicate_on=("tenant_id",),
    retention_days=365,
    description="Reference data, the source of truth of residency: each tenant's home region (data_region) "
    "and the regions its rows may be stored in (allowed_regions), one row per tenant and day.",
    columns={
        "name": "tenant name",
        "plan_id": "the tenant's plan",
        "status": "active, suspended or trial",
        "data_region": "the region the tenant's data lives in",
        "allowed_regions": "regions the tenant's rows may be stored in, comma-separated (data_region too)",
    },
    tenant_column="tenant_id",
    region_column="data_region",
    allowed_regions=REGIONS,
    checks=(*required("name", "allowed_regions"), one_of("status", residency.TENANT_STATUSES)),
)

TENANT_BUDGETS = Dataset(
    name="tenant_budgets",
    domain=DOMAIN,
    layer="processed",
    owner=OWNER,
    upstream=(RAW_BUDGETS.path,),
    transform=t.parse_tenant_budgets,
    quarantine=True,
    primary_key=("tenant_id", "period"),
    deduplicate_on=("tenant_id", "period"),
    retention_days=365,
    description="Reference data: each tenant's budget for the month of the day (the day's snapshot), "
    "one row per tenant and period.",
    columns={
        "period": "budget month, YYYY-MM (the month of dt)",
        "amount_usd": "monthly budget, USD",
        "warning_threshold": "fraction of the budget that raises a warning",
        "critical_threshold": "fraction of the budget that is critical",
    },
    classification={"amount_usd": C.CONFIDENTIAL},
    tenant_column="tenant_id",
    region_column="region",
    allowed_regions=REGIONS,
    checks=(between("amount_usd", 0, name="budget_not_negative"),),
)
AGENT_RUNS = Dataset(
    name="agent_runs",
    domain=DOMAIN,
    layer="processed",
    owner=OWNER,
    upstream=(RAW_RUNS.path, TENANT_BUDGETS.path, TENANTS.path),
    transform=residency.within_tenant_regions(t.parse_agent_runs),
    quarantine=True,
    primary_key=("run_id",),
    deduplicate_on=("run_id",),
    retention_days=365,
    description="Typed agent runs, one per run_id per day, of tenants in the day's budget snapshot, each in "
    "a region its tenant allows (the day's tenants snapshot). "
    "The prompt excerpt is not kept (only its length); user_id is tokenized.",
    columns={
        "tokens_in": "prompt tokens",
        "tokens_out": "completion tokens",
        "latency_ms": "end-to-end latency",
        "cost_usd": "cost billed for the run, USD, exact to the nano-dollar (DECIMAL(18,9))",
        "status": "success, error or timeout",
        "started_at": "run start (UTC)",
        "prompt_chars": "length of the prompt excerpt (the text itself stays in raw)",
        "user_id": "the user who started the run (null for scheduled runs), tokenized",
    },
    personal_data={"user_id": P.TOKENIZE},
    classification={"cost_usd": C.CONFIDENTIAL},
    subject_columns=("user_id",),
    tenant_column="tenant_id",
    region_column="region",
    allowed_regions=REGIONS,
    checks=(
        *required("status", "started_at"),
        one_of("status", t.RUN_STATUSES),
        between("cost_usd", 0, name="cost_not_negative"),
        between("latency_ms", 0, name="latency_not_negative"),
        between("tokens_in", 0, name="tokens_in_not_negative"),
        typed("started_at", "TimestampType"),
        references("tenant_id", "processed/ai_ops/tenant_budgets"),
    ),
)
TOOL_CALLS = Dataset(
    name="tool_calls",
    domain=DOMAIN,
    layer="processed",
    owner=OWNER,
    upstream=(RAW_TOOL_CALLS.path, AGENT_RUNS.path),
    transform=t.parse_tool_calls,
    quarantine=True,
    primary_key=("call_id",),
    deduplicate_on=("call_id",),
    retention_days=365,
    description="Typed tool calls, one per call_id per day, each of a processed run of the same day "
    "(tenant and region taken from the run).",
    columns={"input": "tool input as JSON", "output": "tool output as JSON", "latency_ms": "tool latency"},
    classification={"input": C.CONFIDENTIAL, "output": C.CONFIDENTIAL},
    tenant_column="tenant_id",
    region_column="region",
    allowed_regions=REGIONS,
    checks=(
        *required("run_id", "tool_name"),
        one_of("status", t.TOOL_STATUSES),
        between("latency_ms", 0, name="latency_not_negative"),
        references("run_id", "processed/ai_ops/agent_runs"),
    ),
)
TENANT_DAILY_COST_VS_BUDGET = Dataset(
    name="tenant_daily_cost_vs_budget",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=(AGENT_RUNS.path, TENANT_BUDGETS.path),
    transform=t.tenant_daily_cost_vs_budget,
    primary_key=("dt", "tenant_id"),
    retention_days=1095,
    description="Per tenant and day: runs, tokens and cost against the daily share of the monthly budget "
    "(amount / days in month), with warning and critical flags.",
    columns={
        "runs": "agent runs of the tenant that day",
        "monthly_budget_usd": "the tenant's monthly budget (USD)",
        "daily_budget_usd": "monthly budget / days in the month, 6 decimals",
        "budget_used_ratio": "cost_usd / daily_budget_usd, 6 decimals",
        "is_warning": "budget_used_ratio >= warning_threshold",
        "is_critical": "budget_used_ratio >= critical_threshold",
    },
    classification={
        "cost_usd": C.CONFIDENTIAL,
        "monthly_budget_usd": C.CONFIDENTIAL,
        "daily_budget_usd": C.CONFIDENTIAL,
    },
    tenant_column="tenant_id",
    region_column="region",
    checks=(between("cost_usd", 0, name="cost_not_negative"),),
)
MODEL_DAILY_PERFORMANCE = Dataset(
    name="model_daily_performance",
    domain=DOMAIN,
    layer="curated",
    owner=OWNER,
    upstream=(AGENT_RUNS.path,),
    transform=t.model_daily_performance,
    primary_key=("dt", "model", "provider"),
    retention_days=1095,
    description="Per model and day: runs, p50/p95 latency (percentile_approx), error rate (error or "
    "timeout), "
    "tokens and cost.",
    columns={
        "runs": "agent runs of the model that day",
        "failed_runs": "runs that ended in error or timeout",
        "timeouts": "runs that timed out",
        "error_rate": "share of runs that ended in error or timeout",
        "p50_latency_ms": "approximate median latency",
        "p95_latency_ms": "approximate 95th percentile",
    },
    checks=(
        between("error_rate", 0, 1, name="error_rate_is_a_share"),
        between("runs", 1, name="runs_positive"),
        between("cost_usd", 0, name="cost_not_negative"),
    ),
)

DATASETS = (
    RAW_BUDGETS,
    RAW_RUNS,
    RAW_TOOL_CALLS,
    RAW_TENANTS,
    TENANTS,
    TENANT_BUDGETS,
    AGENT_RUNS,
    TOOL_CALLS,
    TENANT_DAILY_COST_VS_BUDGET,
    MODEL_DAILY_PERFORMANCE,
)
