"""The ai_ops domain: transforms on small in-memory DataFrames, the generator against an independent
re-classification of its lines, and two partitions through Dagster reconciled with the generator's record."""

from __future__ import annotations

import calendar
import datetime as dt
import json
import math
import re
import shutil
import uuid
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal, localcontext

import dagster as dg
import pytest
from pyspark.sql import functions as F

from assets.ai_ops import AGENT_RUNS
from lakehouse.config import LakehouseConfig
from lakehouse.datasets import Protection
from orchestration.factory import domain_assets
from synthetic import read_record
from synthetic.ai_ops import MODELS, NANO_PRICES, TIMEOUT_MS, generate_day
from synthetic.population import REGIONS, TENANTS
from synthetic.population import population as synthetic_population
from tests.conftest import REPO
from tests.helpers import counts_by_day, run_assets
from transforms import ai_ops as t
from transforms import common

DAY = dt.date(2024, 1, 2)
NEXT = dt.date(2024, 1, 3)
LINES_DDL = "dt date, source_file string, line_number int, line string"
RUN_IDS = [str(uuid.UUID(int=i, version=4)) for i in range(1, 20)]
CALL_IDS = [str(uuid.UUID(int=1000 + i, version=4)) for i in range(1, 20)]
SIX = Decimal("0.000001")


def raw_df(engine, lines, day=DAY, source="landing"):
    rows = [line if isinstance(line, tuple) else (day, line) for line in lines]
    return engine.createDataFrame(
        [
            (d, f"s3://lake/landing/ai_ops/dt={d}/{source}-00000.jsonl", i + 1, line)
            for i, (d, line) in enumerate(rows)
        ],
        LINES_DDL,
    )


def dumps(obj: dict) -> str:
    return json.dumps({k: v for k, v in obj.items() if v is not None}, separators=(",", ":"))


# --------------------------------------------------------------------------------------------- end to end

E2E_DAYS = [dt.date(2024, 1, 31), dt.date(2024, 2, 1)]  # a month boundary: 31 then 29 days, two periods
E2E_ROWS = 1_500
PROCESSED = ("agent_runs", "tool_calls", "tenant_budgets")
DUPLICATE_KIND = {
    "agent_runs": "duplicate_run_id",
    "tool_calls": "duplicate_call_id",
    "tenant_budgets": "duplicate_tenant_budget",
}


@pytest.fixture(scope="module")
def pipeline(s3_server, spark, tmp_path_factory):
    """Two days landed by the generator and built once through a real Dagster instance."""
    from assets.ai_ops import DATASETS

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_ROOT", f"s3://lakehouse/tests/ai_ops-{uuid.uuid4().hex[:8]}")
        lake = LakehouseConfig.from_env()
        landed = {}
        for day in E2E_DAYS:
            generated = generate_day(day, E2E_ROWS)
            generated.write(lake, "ai_ops")
            landed[day] = generated.sources
        home = tmp_path_factory.mktemp("ai_ops_dagster")
        shutil.copy(REPO / "infra" / "dagster.yaml", home / "dagster.yaml")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            result = run_assets(instance, domain_assets(DATASETS), E2E_DAYS[0], E2E_DAYS[-1])
            yield {
                "lake": lake,
                "instance": instance,
                "result": result,
                "sources": landed,
                "records": {day: read_record(lake, "ai_ops", day) for day in E2E_DAYS},
            }


def table(spark, lake, layer, name):
    return spark.read.format("delta").load(lake.table_uri(layer, "ai_ops", name))


def test_two_partitions_reconcile_with_the_generator(spark, pipeline):
    lake, records = pipeline["lake"], pipeline["records"]
    assert pipeline["result"].success
    assert len(pipeline["instance"].get_runs()) == 1
    for name in PROCESSED:
        expected = {day: records[day]["expected"][name] for day in E2E_DAYS}
        raw = counts_by_day(spark, lake.table_uri("raw", "ai_ops", name))
        accepted = counts_by_day(spark, lake.table_uri("processed", "ai_ops", name))
        held = counts_by_day(spark, lake.table_uri("quarantine", "ai_ops", name))
        for day, e in expected.items():
            assert raw[day] == e["input"] == records[day]["lines"][name], name
            assert accepted[day] == e["accepted"] and held.get(day, 0) == e["quarantined"], name
            assert e["input"] == e["accepted"] + e["quarantined"] + e["duplicates"]
        reasons = Counter((r["dt"], r["reason"]) for r in table(spark, lake, "quarantine", name).collect())
        for day in E2E_DAYS:
            bad = {k: n for k, n in records[day]["bad"][name].items() if k != DUPLICATE_KIND[name] and n}
            assert {reason: n for (d, reason), n in reasons.items() if d == day} == bad, name
        metadata = (
            pipeline["instance"]
            .get_latest_materialization_event(dg.AssetKey(["processed", "ai_ops", name]))
            .asset_materialization.metadata
        )
        assert metadata["duplicates_removed"].value == sum(e["duplicates"] for e in expected.values()), name


def test_curated_results_match_the_landing_lines_exactly(spark, pipeline):
    lake = pipeline["lake"]
    cost = table(spark, lake, "curated", "tenant_daily_cost_vs_budget").collect()
    perf = table(spark, lake, "curated", "model_daily_performance").collect()
    flags = Counter()
    for day in E2E_DAYS:
        found = classify_day(pipeline["sources"][day])
        got = {
            r["tenant_id"]: (
                r["runs"],
                r["tokens_in"],
                r["tokens_out"],
                r["cost_usd"],
                r["daily_budget_usd"],
                r["budget_used_ratio"],
                r["is_warning"],
                r["is_critical"],
            )
            for r in cost
            if r["dt"] == day
        }
        expected = expected_cost_vs_budget(day, found)
        assert got == expected
        flags.update((row[6], row[7]) for row in expected.values())
        models = defaultdict(list)
        for r in found["runs"].values():
            models[(r["model"], r["provider"])].append(r)
        rows = {(r["model"], r["provider"]): r for r in perf if r["dt"] == day}
        assert set(rows) == set(models)
        for key, runs in models.items():
            row, failed = rows[key], sum(r["status"] != "success" for r in runs)
            assert (row["runs"], row["failed_runs"], row["error_rate"]) == (
                len(runs),
                failed,
                failed / len(runs),
            )
            assert row["cost_usd"] == sum(r["cost_usd"] for r in runs)
            latencies = sorted(r["latency_ms"] for r in runs)
            for q, value in ((0.5, row["p50_latency_ms"]), (0.95, row["p95_latency_ms"])):
                slack = max(2, math.ceil(0.03 * len(latencies)))
                at = q * (len(latencies) - 1)
                low = latencies[max(0, math.floor(at) - slack)]
                high = latencies[min(len(latencies) - 1, math.ceil(at) + slack)]
                assert low <= value <= high, (key, q)
    assert flags[(True, True)] == 2 and flags[(True, False)] == 2 and flags[(False, False)] == 6


EMAIL = re.compile(r"<([^<>@\s]+@[^<>\s]+)>")
NAME = re.compile(r"\b([A-Z][a-z]+) ([A-Z][a-z]+) <")


def test_no_raw_personal_data_leaves_raw(spark, pipeline):
    lake = pipeline["lake"]
    emails, names, user_ids, prompts = set(), set(), set(), set()
    for sources in pipeline["sources"].values():
        for file in sources["agent_runs"]:
            for line in file:
                emails.update(EMAIL.findall(line))
                for first, last in NAME.findall(line):
                    names.update((first, last))
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if record.get("user_id"):
                    user_ids.add(record["user_id"])
                if record.get("prompt_excerpt"):
                    prompts.add(record["prompt_excerpt"])
    assert len(emails) > 50 and len(names) > 10 and len(user_ids) > 100  # the check below is not vacuous
    word = re.compile(r"\b(" + "|".join(sorted(names)) + r")\b")
    tables = [("processed", name) for name in PROCESSED] + [
        ("curated", "tenant_daily_cost_vs_budget"),
        ("curated", "model_daily_performance"),
    ]
    for layer, name in tables:
        df = table(spark, lake, layer, name)
        strings = [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]
        assert not any(c.startswith("prompt") for c in strings)
        for row in df.select(*strings).collect():
            for column, value in zip(strings, row):
                if value is None:
                    continue
                assert "@" not in value, (layer, name, column)
                assert not word.search(value), (layer, name, column, value)
                assert value not in user_ids and value not in prompts, (layer, name, column)
    tokens = {r["user_id"] for r in table(spark, lake, "processed", "agent_runs").collect()} - {None}
    assert tokens and all(re.fullmatch("[0-9a-f]{64}", token) for token in tokens)


# --------------------------------------------------------------------------------------------- budgets


def budget(
    tenant="tenant-acme", period="2024-01", amount=3000.0, warning=0.8, critical=1.0, region="us-east-1"
):
    return dumps(
        {
            "tenant_id": tenant,
            "region": region,
            "period": period,
            "amount": amount,
            "currency": "USD",
            "warning_threshold": warning,
            "critical_threshold": critical,
        }
    )


BUDGET_LINES = [
    budget(),  # 1 valid
    budget(amount=3100.0),  # 2 duplicate (tenant, period): the first line wins
    '{"tenant_id":"tenant-acme","peri',  # 3 malformed
    budget(tenant=None),  # 4 missing tenant
    budget(period="2024-1"),  # 5 invalid period
    budget(period="2023-12"),  # 6 not the month of the day
    budget(amount=-5.0),  # 7 negative amount
    budget(warning=1.2, critical=1.0),  # 8 warning above critical
    budget("tenant-hooli", amount=400.0, region="eu-west-1"),  # 9 valid
    budget("tenant-globex", amount=1500.0, region="sa-east-1"),  # 10 region not allowed (factory rule)
]


def processed_budgets(engine):
    parsed = common.require_region(t.parse_tenant_budgets(raw_df(engine, BUDGET_LINES)), "region", REGIONS)
    return common.deduplicate(common.accepted_rows(parsed), ["tenant_id", "period"])


def test_budget_lines_get_their_exact_reason_and_are_typed(engine):
    parsed = common.require_region(t.parse_tenant_budgets(raw_df(engine, BUDGET_LINES)), "region", REGIONS)
    reasons = {r["line_number"]: r["quarantine_reason"] for r in parsed.collect()}
    assert reasons == {
        1: None,
        2: None,
        3: "malformed_json",
        4: "missing_required_field:tenant_id",
        5: "invalid_period",
        6: "period_not_current",
        7: "invalid_amount",
        8: "invalid_thresholds",
        9: None,
        10: "region_not_allowed:sa-east-1",
    }
    rows = {r["tenant_id"]: r for r in processed_budgets(engine).collect()}
    assert sorted(rows) == ["tenant-acme", "tenant-hooli"]
    acme = rows["tenant-acme"]
    assert (
        acme["line_number"],
        acme["amount_usd"],
        acme["warning_threshold"],
        acme["critical_threshold"],
    ) == (1, Decimal("3000.00"), Decimal("0.8000"), Decimal("1.0000"))
    assert (acme["period"], acme["region"], acme["currency"]) == ("2024-01", "us-east-1", "USD")


# --------------------------------------------------------------------------------------------- runs


def run(
    run_id=RUN_IDS[0],
    tenant="tenant-acme",
    region="us-east-1",
    model="gpt-4o",
    tokens_in=1000,
    tokens_out=200,
    cost=0.0045,
    latency=1200,
    status="success",
    started_at="2024-01-02T10:15:00.000Z",
    user="u-1",
    prompt="Summarize the ticket of Ada Lovelace <ada.lovelace@example.com>",
    **extra,
):
    record = {
        "run_id": run_id,
        "tenant_id": tenant,
        "region": region,
        "user_id": user,
        "workflow": "support_triage",
        "model": model,
        "provider": MODELS.get(model, ("x",))[0],
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "latency_ms": latency,
        "cost_usd": cost,
        "status": status,
        "started_at": started_at,
        "prompt_excerpt": prompt,
    }
    record.update(extra)
    return dumps(record)


RUN_LINES = [
    run(),  # 1 valid
    run(cost=0.9),  # 2 duplicate run_id of line 1
    '{"run_id":"' + RUN_IDS[2] + '","tenant_id":"tenant-ac',  # 3 malformed
    run(run_id=None),  # 4 missing run_id
    run(RUN_IDS[4], tenant=None),  # 5 missing tenant
    run(RUN_IDS[5], tenant="tenant-wayne"),  # 6 unknown tenant
    run(RUN_IDS[6], tokens_out=-1),  # 7 negative tokens
    run(RUN_IDS[7], cost=-0.01),  # 8 negative cost
    run(RUN_IDS[8], latency=0),  # 9 latency <= 0
    run(RUN_IDS[9], status="cancelled"),  # 10 unknown status
    run(RUN_IDS[10], started_at="yesterday"),  # 11 unparseable started_at
    run(RUN_IDS[11], region="sa-east-1"),  # 12 region not allowed (factory rule)
    run(RUN_IDS[12], tokens_in="many"),  # 13 tokens not a number
    run(
        RUN_IDS[13],
        tenant="tenant-hooli",
        region="eu-west-1",
        model="gemini-1.5-flash",
        tokens_in=12,  # 14 valid
        tokens_out=3,
        cost=1.8e-06,
        latency=300,
        status="error",
        user=None,
        prompt="Plot weekly accounts",
    ),
    run(
        RUN_IDS[14],
        model="claude-3-5-sonnet",
        tokens_in=2000,
        tokens_out=0,
        cost=0.006,  # 15 valid
        latency=60500,
        status="timeout",
        started_at="2024-01-02T12:00:00+02:00",
    ),
    (NEXT, run(RUN_IDS[15])),  # 16 acme has no budget on the 3rd
]


def parsed_runs(engine):
    parsed = t.parse_agent_runs(raw_df(engine, RUN_LINES), tenant_budgets=processed_budgets(engine))
    return common.require_region(parsed, "region", REGIONS)


def processed_runs(engine):
    return common.deduplicate(common.accepted_rows(parsed_runs(engine)), ["run_id"])


def test_run_lines_get_their_exact_reason(engine):
    reasons = {r["line_number"]: r["quarantine_reason"] for r in parsed_runs(engine).collect()}
    assert reasons == {
        1: None,
        2: None,
        3: "malformed_json",
        4: "missing_required_field:run_id",
        5: "missing_required_field:tenant_id",
        6: "unknown_tenant",
        7: "negative_tokens",
        8: "negative_cost",
        9: "non_positive_latency",
        10: "unknown_status",
        11: "invalid_started_at",
        12: "region_not_allowed:sa-east-1",
        13: "invalid_tokens",
        14: None,
        15: None,
        16: "unknown_tenant",
    }


def test_processed_runs_are_typed_deduplicated_and_keep_no_prompt(engine):
    df = processed_runs(engine)
    assert "prompt_excerpt" not in df.columns and "_line" not in df.columns
    rows = {r["line_number"]: r for r in df.collect()}
    assert sorted(rows) == [1, 14, 15]  # line 2 repeats line 1's run_id: the first line wins
    first = rows[1]
    assert (first["tokens_in"], first["tokens_out"], first["latency_ms"], first["cost_usd"]) == (
        1000,
        200,
        1200,
        Decimal("0.004500000"),
    )
    assert (first["tenant_id"], first["region"], first["user_id"], first["prompt_chars"]) == (
        "tenant-acme",
        "us-east-1",
        "u-1",
        63,
    )
    assert first["started_at"] == dt.datetime(2024, 1, 2, 10, 15)
    assert rows[14]["cost_usd"] == Decimal("0.000001800")  # 1.8e-06 in the JSON: exact, below a micro-dollar
    assert rows[14]["user_id"] is None and rows[14]["status"] == "error"
    assert rows[15]["started_at"] == dt.datetime(2024, 1, 2, 10, 0)  # +02:00 normalized to UTC
    assert AGENT_RUNS.personal_data == {
        "user_id": Protection.TOKENIZE
    }  # applied by the factory (checked end to end)


def test_quarantined_runs_keep_the_line_and_reason(engine):
    rows = common.quarantine_records(parsed_runs(engine), "run-1", dt.datetime(2024, 1, 3)).collect()
    assert len(rows) == 12 and 3 + 1 + len(rows) == len(RUN_LINES)  # accepted + duplicate + quarantined
    malformed = next(r for r in rows if r["reason"] == "malformed_json")
    assert json.loads(malformed["record"])["line"] == RUN_LINES[2]


# --------------------------------------------------------------------------------------------- tool calls


def call(call_id=CALL_IDS[0], run_id=RUN_IDS[0], status="success", latency=250, **extra):
    record = {
        "call_id": call_id,
        "run_id": run_id,
        "tool_name": "vector_search",
        "input": {"query": "refund policy", "top_k": 5},
        "output": {"items": 3},
        "status": status,
        "latency_ms": latency,
        "started_at": "2024-01-02T10:15:01.000Z",
    }
    record.update(extra)
    return dumps(record)


CALL_LINES = [
    call(),  # 1 valid, run of acme
    call(status="error"),  # 2 duplicate call_id
    '{"call_id":"' + CALL_IDS[2] + '","run_',  # 3 malformed
    call(call_id=None),  # 4 missing call_id
    call(CALL_IDS[4], run_id=None),  # 5 missing run_id
    call(CALL_IDS[5], run_id=RUN_IDS[18]),  # 6 run never seen
    (NEXT, call(CALL_IDS[6], run_id=RUN_IDS[13])),  # 7 run of another day
    call(CALL_IDS[7], status="weird"),  # 8 unknown status
    call(CALL_IDS[8], run_id=RUN_IDS[13]),  # 9 valid, run of hooli
    call(CALL_IDS[9], run_id=RUN_IDS[5]),  # 10 run quarantined (unknown tenant)
]


def test_tool_calls_need_a_run_of_the_same_day_and_take_its_tenant(engine):
    parsed = common.require_region(
        t.parse_tool_calls(raw_df(engine, CALL_LINES), agent_runs=processed_runs(engine)), "region", REGIONS
    )
    reasons = {r["line_number"]: r["quarantine_reason"] for r in parsed.collect()}
    assert reasons == {
        1: None,
        2: None,
        3: "malformed_json",
        4: "missing_required_field:call_id",
        5: "missing_required_field:run_id",
        6: "unknown_run",
        7: "unknown_run",
        8: "unknown_status",
        9: None,
        10: "unknown_run",
    }
    rows = {
        r["line_number"]: r for r in common.deduplicate(common.accepted_rows(parsed), ["call_id"]).collect()
    }
    assert sorted(rows) == [1, 9]
    assert (rows[1]["tenant_id"], rows[1]["region"], rows[1]["status"]) == (
        "tenant-acme",
        "us-east-1",
        "success",
    )
    assert (rows[9]["tenant_id"], rows[9]["region"]) == ("tenant-hooli", "eu-west-1")
    assert json.loads(rows[1]["input"]) == {"query": "refund policy", "top_k": 5}
    assert json.loads(rows[1]["output"]) == {"items": 3}


# --------------------------------------------------------------------------------------------- curated

FEB = dt.date(2024, 2, 10)


def typed_budgets(engine):
    rows = [
        (DAY, "tenant-acme", "us-east-1", "2024-01", "3100.00"),  # daily 100.000000
        (DAY, "tenant-hooli", "eu-west-1", "2024-01", "400.00"),  # daily 12.903226
        (DAY, "tenant-initech", "us-east-1", "2024-01", "800.00"),  # daily 25.806452
        (DAY, "tenant-globex", "eu-west-1", "2024-01", "1500.00"),  # no runs
        (FEB, "tenant-acme", "us-east-1", "2024-02", "2900.00"),
    ]  # leap February: daily 100.000000
    df = engine.createDataFrame(
        rows, "dt date, tenant_id string, region string, period string, amount string"
    )
    return df.select(
        "dt",
        "tenant_id",
        "region",
        "period",
        df["amount"].cast(t.MONEY).alias("amount_usd"),
        F.lit("0.8").cast(t.THRESHOLD).alias("warning_threshold"),
        F.lit("1.0").cast(t.THRESHOLD).alias("critical_threshold"),
    )


def typed_runs(engine, rows):
    df = engine.createDataFrame(
        rows,
        "dt date, tenant_id string, model string, provider string, tokens_in long, "
        "tokens_out long, latency_ms long, cost string, status string",
    )
    return df.withColumn("cost_usd", df["cost"].cast(t.COST)).drop("cost")


def test_tenant_cost_against_the_daily_budget_share_with_exact_flags(engine):
    runs = typed_runs(
        engine,
        [
            (DAY, "tenant-acme", "gpt-4o", "openai", 1000, 100, 900, "50.000000000", "success"),
            (DAY, "tenant-acme", "gpt-4o", "openai", 2000, 0, 800, "30.500000000", "error"),
            (DAY, "tenant-hooli", "gpt-4o", "openai", 10, 1, 700, "12.903226000", "success"),
            (DAY, "tenant-initech", "gpt-4o", "openai", 10, 1, 700, "20.000000001", "success"),
            (FEB, "tenant-acme", "gpt-4o", "openai", 5, 5, 600, "99.999900000", "success"),
        ],
    )
    out = t.tenant_daily_cost_vs_budget(agent_runs=runs, tenant_budgets=typed_budgets(engine)).collect()
    got = {
        (r["dt"], r["tenant_id"]): (
            r["runs"],
            r["tokens_in"],
            r["tokens_out"],
            r["cost_usd"],
            r["daily_budget_usd"],
            r["budget_used_ratio"],
            r["is_warning"],
            r["is_critical"],
        )
        for r in out
    }
    d = Decimal
    assert got == {
        (DAY, "tenant-acme"): (2, 3000, 100, d("80.500000000"), d("100.000000"), d("0.805000"), True, False),
        (DAY, "tenant-hooli"): (1, 10, 1, d("12.903226000"), d("12.903226"), d("1.000000"), True, True),
        (DAY, "tenant-initech"): (1, 10, 1, d("20.000000001"), d("25.806452"), d("0.775000"), False, False),
        (DAY, "tenant-globex"): (0, 0, 0, d("0E-9"), d("48.387097"), d("0E-6"), False, False),
        (FEB, "tenant-acme"): (1, 5, 5, d("99.999900000"), d("100.000000"), d("0.999999"), True, False),
    }
    assert {r["region"] for r in out} == {"us-east-1", "eu-west-1"}


def test_model_performance_has_exact_percentiles_error_rate_and_cost(engine):
    # 20 runs: 12 at 1000 ms, 6 at 2000 ms, 2 at 9000 ms (plateaus make any percentile method agree)
    latencies = [1000] * 12 + [2000] * 6 + [9000] * 2
    statuses = ["success"] * 16 + ["error"] * 3 + ["timeout"]
    rows = [
        (DAY, "tenant-acme", "gpt-4o", "openai", 100, 10, lat, "0.001250000", st)
        for lat, st in zip(latencies, statuses)
    ]
    rows.append((DAY, "tenant-acme", "gpt-4o-mini", "openai", 7, 0, 400, "0.000001050", "success"))
    out = {r["model"]: r for r in t.model_daily_performance(typed_runs(engine, rows)).collect()}
    gpt = out["gpt-4o"]
    assert (gpt["runs"], gpt["failed_runs"], gpt["timeouts"], gpt["error_rate"]) == (20, 4, 1, 0.2)
    assert (gpt["p50_latency_ms"], gpt["p95_latency_ms"]) == (1000.0, 9000.0)
    assert (gpt["tokens_in"], gpt["tokens_out"], gpt["cost_usd"]) == (2000, 200, Decimal("0.025000000"))
    mini = out["gpt-4o-mini"]
    assert (mini["runs"], mini["error_rate"], mini["p50_latency_ms"], mini["cost_usd"]) == (
        1,
        0.0,
        400.0,
        Decimal("0.000001050"),
    )


# --------------------------------------------------------------------------------------------- generator


def _valid_time(text) -> bool:
    try:
        dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        return bool(text)
    except ValueError:
        return False


def classify_day(sources: dict[str, list[list[str]]]) -> dict:
    """Every line's kind, by inspecting it (independent of the generator's bookkeeping); and the accepted
    rows."""
    lines = {source: [line for file in files for line in file] for source, files in sources.items()}
    kinds = {source: Counter() for source in lines}
    budgets: dict[str, dict] = {}
    for line in lines["tenant_budgets"]:
        try:
            b = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError:
            kinds["tenant_budgets"]["malformed_json"] += 1
            continue
        if b["tenant_id"] in budgets:
            kinds["tenant_budgets"]["duplicate_tenant_budget"] += 1
            continue
        budgets[b["tenant_id"]] = b
        kinds["tenant_budgets"]["valid"] += 1
    for line in lines.get("tenants", []):  # the generator lands only valid tenants
        t = json.loads(line)
        kinds["tenants"][
            "valid" if t["data_region"] in t["allowed_regions"] else "data_region_not_allowed"
        ] += 1
    runs: dict[str, dict] = {}
    for line in lines["agent_runs"]:
        try:
            r = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError:
            kind = "malformed_json"
        else:
            kind = next(
                (
                    k
                    for k, broken in (
                        ("missing_required_field:run_id", "run_id" not in r),
                        ("missing_required_field:tenant_id", "tenant_id" not in r),
                        ("unknown_tenant", r.get("tenant_id") not in budgets),
                        ("negative_tokens", r["tokens_in"] < 0 or r["tokens_out"] < 0),
                        ("negative_cost", r["cost_usd"] < 0),
                        ("non_positive_latency", r["latency_ms"] <= 0),
                        ("unknown_status", r["status"] not in ("success", "error", "timeout")),
                        ("invalid_started_at", not _valid_time(r["started_at"])),
                        (f"region_not_allowed:{r['region']}", r["region"] not in REGIONS),
                        ("duplicate_run_id", r.get("run_id") in runs),
                    )
                    if broken
                ),
                None,
            )
        if kind is None:
            runs[r["run_id"]] = r
            kind = "valid"
        kinds["agent_runs"][kind] += 1
    calls: dict[str, dict] = {}
    for line in lines["tool_calls"]:
        try:
            c = json.loads(line)
        except json.JSONDecodeError:
            kind = "malformed_json"
        else:
            kind = next(
                (
                    k
                    for k, broken in (
                        ("missing_required_field:call_id", "call_id" not in c),
                        ("missing_required_field:run_id", "run_id" not in c),
                        ("unknown_run", c.get("run_id") not in runs),
                        ("duplicate_call_id", c.get("call_id") in calls),
                    )
                    if broken
                ),
                None,
            )
        if kind is None:
            calls[c["call_id"]] = c
            kind = "valid"
        kinds["tool_calls"][kind] += 1
    return {"lines": lines, "kinds": kinds, "budgets": budgets, "runs": runs, "calls": calls}


def expected_cost_vs_budget(day: dt.date, classified: dict) -> dict:
    """tenant_daily_cost_vs_budget computed in Python from the landing lines."""
    totals = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    for r in classified["runs"].values():
        total = totals[r["tenant_id"]]
        total[0] += 1
        total[1] += r["tokens_in"]
        total[2] += r["tokens_out"]
        total[3] += r["cost_usd"]
    expected = {}
    with localcontext() as ctx:
        ctx.prec = 50
        for tenant_id, b in classified["budgets"].items():
            runs, tokens_in, tokens_out, cost = totals[tenant_id]
            daily = (b["amount"] / calendar.monthrange(day.year, day.month)[1]).quantize(SIX, ROUND_HALF_UP)
            ratio = (cost / daily).quantize(SIX, ROUND_HALF_UP)
            expected[tenant_id] = (
                runs,
                tokens_in,
                tokens_out,
                cost,
                daily,
                ratio,
                ratio >= b["warning_threshold"],
                ratio >= b["critical_threshold"],
            )
    return expected


GEN_DAY = dt.date(2024, 3, 5)


def test_generator_record_matches_an_independent_classification():
    generated = generate_day(GEN_DAY, 3_000)
    found = classify_day(generated.sources)
    record = generated.record
    for source, counted in found["kinds"].items():
        assert record["lines"][source] == len(found["lines"][source])
        assert {kind: counted[kind] for kind in record["bad"][source]} == record["bad"][source], source
        assert record["expected"][source]["accepted"] == counted["valid"], source
        e = record["expected"][source]
        assert e["input"] == e["accepted"] + e["quarantined"] + e["duplicates"]
    assert record["lines"]["agent_runs"] == 3_000 and sum(record["bad"]["agent_runs"].values()) == 60  # 2%
    assert all(n > 0 for n in record["bad"]["agent_runs"].values())
    assert all(n > 0 for n in record["bad"]["tool_calls"].values())
    # cost = tokens priced by model, exactly
    for r in found["runs"].values():
        price_in, price_out = NANO_PRICES[r["model"]]
        assert r["cost_usd"] == Decimal(r["tokens_in"] * price_in + r["tokens_out"] * price_out) / 10**9
        assert r["provider"] == MODELS[r["model"]][0]
    # some tenants run into the warning band, some over budget: both flags are exercised every day
    flags = {tenant: row[6:] for tenant, row in expected_cost_vs_budget(GEN_DAY, found).items()}
    assert sorted(flags.values()) == [(False, False)] * 3 + [(True, False), (True, True)]


def test_generator_is_deterministic_and_realistic():
    assert generate_day(GEN_DAY, 400).sources == generate_day(GEN_DAY, 400).sources
    assert generate_day(GEN_DAY, 400).sources != generate_day(GEN_DAY + dt.timedelta(days=1), 400).sources
    assert generate_day(GEN_DAY, 400, seed=1).sources != generate_day(GEN_DAY, 400, seed=2).sources
    runs = [json.loads(line) for line in generate_day(GEN_DAY, 5_000, bad_share=0).sources["agent_runs"][0]]
    users = {u.user_id: u for u in synthetic_population(7).users}
    assert all(users[r["user_id"]].tenant_id == r["tenant_id"] for r in runs if r["user_id"])
    assert {r["region"] for r in runs} == set(REGIONS) and {r["tenant_id"] for r in runs} == {
        x.tenant_id for x in TENANTS
    }
    statuses = Counter(r["status"] for r in runs)
    assert statuses["success"] > 0.9 * len(runs) and statuses["error"] > statuses["timeout"] > 0
    assert set(Counter(r["model"] for r in runs)) == set(MODELS)

    def latencies(model):
        return sorted(r["latency_ms"] for r in runs if r["model"] == model and r["status"] == "success")

    gpt, flash = latencies("gpt-4o"), latencies("gemini-1.5-flash")
    assert gpt[int(len(gpt) * 0.95)] > 1.5 * gpt[len(gpt) // 2]  # lognormal tail
    assert flash[len(flash) // 2] < 0.7 * gpt[len(gpt) // 2]  # fast models are faster
    assert all(r["latency_ms"] > TIMEOUT_MS for r in runs if r["status"] == "timeout")
    assert all(0 < r["latency_ms"] < TIMEOUT_MS for r in runs if r["status"] != "timeout")
