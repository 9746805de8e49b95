"""The differentially private usage release: the noise has its declared scale, one user moves the tallies
within the mechanism's bound, nothing below the threshold is published, the budget ledger refuses and
does not double-spend, consent leaves users out, and the release runs through Dagster."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import statistics
from decimal import Decimal

import pytest
from deltalake import DeltaTable
from pyspark.sql import Row

from assets import usage
from lakehouse import audit, catalog, privacy
from lakehouse.lake import Lake
from tests.helpers import run_assets
from transforms.usage import usage_tallies

D1, D2, D3 = dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 3)
BIG: privacy.Cell = ("events", "created", "order")
RUNS: privacy.Cell = ("ai_ops", "run", "gpt-4o")
SMALL: privacy.Cell = ("events", "registered", "user")
RELEASES = 300


def _discrete_laplace_std(scale: float) -> float:
    """Standard deviation of OpenDP's integer Laplace of `scale`."""
    q = math.exp(-1 / scale)
    return math.sqrt(2 * q) / (1 - q)


def _fixed_tallies() -> privacy.DayTallies:
    return privacy.DayTallies(
        rows={BIG: 5000, RUNS: 4000, SMALL: 5},
        users={BIG: 2600, RUNS: 2100, SMALL: 5},
        status={(RUNS, "success"): 3000, (RUNS, "error"): 800, (RUNS, "timeout"): 200},
        latency_bin={(RUNS, 1): 1000, (RUNS, 2): 2000, (RUNS, 3): 1000},
    )


def test_the_declaration_is_within_its_declared_epsilon_and_delta():
    declared = usage.PRIVACY
    epsilon, delta_ = privacy.privacy_loss(declared)
    assert epsilon == pytest.approx(declared.epsilon)
    assert 0 < delta_ <= declared.delta
    privacy.check_declaration(declared)
    with pytest.raises(ValueError, match=r"delta=.* more than the declared"):
        privacy.check_declaration(dataclasses.replace(declared, threshold=20))


def test_noise_has_the_declared_scale_over_many_releases():
    declared, tallies = usage.PRIVACY, _fixed_tallies()
    scales = declared.scales()
    errors: dict[str, list[int]] = {"events": [], "users": []}
    for _ in range(RELEASES):
        cells = {(r["source"], r["action"], r["resource"]): r for r in privacy.release(declared, tallies)}
        for cell in (BIG, RUNS):
            errors["events"].append(cells[cell]["events"] - tallies.rows[cell])
            errors["users"].append(cells[cell]["users"] - tallies.users[cell])
    for column, query in (("events", "rows"), ("users", "users")):
        ratio = statistics.pstdev(errors[column]) / _discrete_laplace_std(scales[query])
        # missing noise gives 0, noise of twice the scale about 2: both outside
        assert 0.8 <= ratio <= 1.25, (column, ratio)
        assert abs(statistics.fmean(errors[column])) < 0.25 * _discrete_laplace_std(scales[query])


def test_nothing_below_the_threshold_is_published_and_nothing_is_exact():
    declared, tallies = usage.PRIVACY, _fixed_tallies()
    exact, published_small = 0, 0
    for _ in range(RELEASES):
        released = privacy.release(declared, tallies)
        assert all(r["events"] >= declared.threshold for r in released)
        cells = {(r["source"], r["action"], r["resource"]): r for r in released}
        published_small += SMALL in cells
        exact += cells[BIG]["events"] == tallies.rows[BIG]
        shares = [cells[RUNS][f"{s}_share"] for s in declared.statuses]
        assert sum(shares) == pytest.approx(1.0)
        assert cells[RUNS]["p50_latency_ms"] in declared.latency_bins_ms
        assert cells[BIG]["p50_latency_ms"] is None and cells[BIG]["success_share"] is None
    assert published_small == 0  # 5 rows against a threshold of 100: only with probability ~delta
    # the chance of a zero draw at this scale is about 6%: exact values are the exception, never the rule
    assert exact < 0.15 * RELEASES


def _usage_inputs(spark, users_in_events: int, heavy: bool = True):
    """Events and runs of `users_in_events` consenting users (u000..), two non-consenting (nc0, nc1) and one
    absent from the users snapshot (ghost); `heavy`: u000 also does far more than the clipping allows."""
    events, runs = [], []
    for i in range(users_in_events):
        user = f"u{i:03d}"
        events += [
            Row(dt=D1, event_id=f"e-{user}-{n}", event_type="order.created", user_id=user) for n in range(3)
        ]
        runs.append(
            Row(dt=D1, run_id=f"r-{user}", user_id=user, model="gpt-4o", latency_ms=700, status="success")
        )
    if heavy:
        for kind in (
            "order.created",
            "user.registered",
            "ml.model.inference",
            "integration.webhook.received",
        ):
            events += [
                Row(dt=D1, event_id=f"e-u000-{kind}-{n}", event_type=kind, user_id="u000") for n in range(9)
            ]
    for outsider in ("nc0", "nc1", "ghost"):
        events += [
            Row(dt=D1, event_id=f"e-{outsider}-{n}", event_type="order.created", user_id=outsider)
            for n in range(2)
        ]
    events.append(Row(dt=D1, event_id="e-system", event_type="system.health.check", user_id=None))
    users = [Row(dt=D1, user_id=f"u{i:03d}", consent_analytics=True) for i in range(users_in_events)]
    users += [Row(dt=D1, user_id=u, consent_analytics=False) for u in ("nc0", "nc1")]
    schema_events = "dt date, event_id string, event_type string, user_id string"
    schema_runs = "dt date, run_id string, user_id string, model string, latency_ms bigint, status string"
    return (
        spark.createDataFrame(events, schema_events),
        spark.createDataFrame(runs, schema_runs),
        spark.createDataFrame(users, "dt date, user_id string, consent_analytics boolean"),
    )


def _tallies(spark, without: str | None = None) -> privacy.DayTallies:
    declared = usage.PRIVACY
    events, runs, users = _usage_inputs(spark, 6)
    if without:
        events, runs = (
            events.where(f"user_id IS NULL OR user_id != '{without}'"),
            runs.where(f"user_id != '{without}'"),
        )
    rows = usage_tallies(
        events,
        runs,
        users,
        max_rows_per_cell=declared.max_rows_per_cell,
        max_cells_per_user=declared.max_cells_per_user,
        latency_bins_ms=declared.latency_bins_ms,
    ).collect()
    return privacy.tallies_by_day([r.asDict() for r in rows], len(declared.latency_bins_ms))[D1]


def test_consent_clipping_and_one_users_influence(spark):
    declared = usage.PRIVACY
    c, k = declared.max_cells_per_user, declared.max_rows_per_cell
    full, without_heavy = _tallies(spark), _tallies(spark, without="u000")
    # nc0, nc1 (consent refused) and ghost (no consent on record) are left out; the system event is no one's
    assert full.excluded_no_consent == 3
    # without u000: five users, three order.created each clipped to k, one run each
    assert (without_heavy.rows[BIG], without_heavy.rows[RUNS], without_heavy.users[BIG]) == (5 * k, 5, 5)
    assert full.users[RUNS] <= 6 and full.users[BIG] <= 6
    assert all(cell[2] != "system.health" for cell in full.rows)
    # u000 asked for 5 cells with up to 9 rows each: it keeps at most c cells of at most k rows
    cells = set(full.rows) | set(without_heavy.rows)
    moved = {cell: full.rows.get(cell, 0) - without_heavy.rows.get(cell, 0) for cell in cells}
    assert sum(1 for m in moved.values() if m) <= c  # l0
    assert sum(abs(m) for m in moved.values()) <= c * k  # l1
    assert max(abs(m) for m in moved.values()) <= k  # linf
    assert sum(abs(full.users.get(cell, 0) - without_heavy.users.get(cell, 0)) for cell in cells) <= c
    statuses = set(full.status) | set(without_heavy.status)
    assert sum(abs(full.status.get(s, 0) - without_heavy.status.get(s, 0)) for s in statuses) <= c * k
    # the mechanism's privacy map at exactly those distances is the declared epsilon
    epsilon, _ = privacy.privacy_loss(declared)
    assert epsilon <= declared.epsilon + 1e-9


def test_ledger_refuses_over_budget_and_does_not_spend_twice(lake):
    declared, target = usage.PRIVACY, "curated.usage.test_ledger"
    budget = 2 * declared.epsilon + 0.5
    first = privacy.charge(lake, target, [D1, D2], declared, budget, "run-1")
    assert (first.draw, first.published, first.charged_epsilon) == ([D1, D2], [], 2 * declared.epsilon)
    privacy.mark_published(lake, target, [D1, D2], declared, "run-1")
    again = privacy.charge(lake, target, [D1], declared, budget, "run-2")
    assert (again.draw, again.published, again.charged_epsilon) == ([], [D1], 0.0)
    assert privacy.spent(lake, target, "2024-03") == pytest.approx(2 * declared.epsilon)
    with pytest.raises(
        privacy.PrivacyBudgetExceeded, match=r"for 2024-03 exceeded: 4 spent \+ 2 asked > budget 4.5"
    ):
        privacy.charge(lake, target, [D3], declared, budget, "run-3")
    assert privacy.spent(lake, target, "2024-03") == pytest.approx(2 * declared.epsilon)
    refused = [r for r in audit.read(lake, "run-3") if r["action"] == "privacy"]
    assert [(r["step"], r["target"], r["partitions"]) for r in refused] == [
        ("refused", target, ["2024-03-03"])
    ]
    # another month has its own budget
    assert (
        privacy.charge(lake, target, [dt.date(2024, 4, 1)], declared, budget, "run-4").charged_epsilon == 2.0
    )


def _write_inputs(spark, users_in_events: int) -> None:
    events, runs, users = _usage_inputs(spark, users_in_events, heavy=False)
    lake = Lake()
    lake.write("processed/events/events", events, [D1])
    lake.write("processed/ai_ops/agent_runs", runs, [D1])
    lake.write("processed/commerce/users", users, [D1])


def test_the_release_through_dagster(lake, spark, instance, monkeypatch):
    from orchestration.private_release import release_asset

    # a test-sized declaration: big epsilon so that 40 users clear the threshold
    declared = dataclasses.replace(usage.PRIVACY, epsilon=40.0, threshold=25)
    dataset = dataclasses.replace(usage.DAILY_USAGE, privacy=declared, checks=usage.release_checks(declared))
    monkeypatch.setenv("LAKEHOUSE_PRIVACY_BUDGET_EPSILON", "80")
    _write_inputs(spark, 40)
    asset = release_asset(dataset)

    result = run_assets(instance, [asset], D1)
    meta = result.asset_materializations_for_node("curated__usage__daily_usage")[0].metadata
    assert meta["users_excluded_no_consent"].value == 3
    assert meta["epsilon_charged"].value == 40.0
    assert json.loads(json.dumps(meta["privacy"].value))["epsilon"] == 40.0
    table = DeltaTable(
        lake.table_uri("curated", "usage", "daily_usage"), storage_options=lake.storage_options
    )
    released = {(r["source"], r["action"], r["resource"]): r for r in table.to_pyarrow_table().to_pylist()}
    # 40 users x 2 clipped rows of order.created, 40 runs of gpt-4o; the system event and nobody else
    assert set(released) == {BIG, RUNS}
    scales = declared.scales()
    assert abs(released[BIG]["events"] - 80) <= 12 * scales["rows"]
    assert abs(released[RUNS]["users"] - 40) <= 12 * scales["users"]
    entry = catalog.get_entry(lake, "curated.usage.daily_usage")
    assert entry is not None and (entry["privacy"]["epsilon"], entry["privacy"]["threshold"]) == (40.0, 25)
    assert privacy.spent(lake, "curated.usage.daily_usage", "2024-03") == 40.0

    # a re-run keeps the published day: same values, no new spend
    rerun = run_assets(instance, [asset], D1)
    meta = rerun.asset_materializations_for_node("curated__usage__daily_usage")[0].metadata
    assert meta["partitions_kept_as_published"].value == ["2024-03-01"] and meta["epsilon_charged"].value == 0
    table.update_incremental()
    assert {
        (r["source"], r["action"], r["resource"]): r for r in table.to_pyarrow_table().to_pylist()
    } == released
    assert privacy.spent(lake, "curated.usage.daily_usage", "2024-03") == 40.0

    # two more days would exceed the month's 80: refused, audited, nothing charged or written
    refused = run_assets(instance, [asset], D2, D3, raise_on_error=False)
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    assert "exceeded: 40 spent + 80 asked > budget 80" in str(failure.event_specific_data.error)
    assert privacy.spent(lake, "curated.usage.daily_usage", "2024-03") == 40.0
    assert [r["step"] for r in audit.read(lake) if r["action"] == "privacy"] == ["refused"]


def test_training_sets_leave_out_users_without_consent(lake, spark, tmp_path, monkeypatch):
    import pandas as pd

    from lakehouse import delta, features
    from lakehouse.features.training import consenting_entities

    monkeypatch.setenv("LAKEHOUSE_FEAST_DIR", str(tmp_path / "feast"))
    monkeypatch.delenv("LAKEHOUSE_FEAST_ONLINE_STORE", raising=False)
    monkeypatch.delenv("LAKEHOUSE_FEAST_REDIS", raising=False)
    assert features.apply(lake)
    stats = [(D1, user, "t", "eu-west-1", 1, Decimal("10.00"), dt.datetime(2024, 3, 1, 9)) for user in "abc"]
    delta.write_partitions(
        spark.createDataFrame(
            stats,
            "dt date, user_id string, tenant_id string, region string, order_count bigint, "
            "total_spend decimal(18,2), last_order_at timestamp",
        ),
        lake.table_uri("curated", "commerce", "customer_order_stats"),
        [D1],
        lake.storage_options,
    )
    # a consents on both days, b withdrew on D2, c has no consent on record (absent from the snapshot)
    consent = [(D1, "a", True), (D2, "a", True), (D1, "b", True), (D2, "b", False)]
    delta.write_partitions(
        spark.createDataFrame(consent, "dt date, user_id string, consent_analytics boolean"),
        lake.table_uri("processed", "commerce", "users"),
        [D1, D2],
        lake.storage_options,
    )
    entities = pd.DataFrame(
        {
            "user_id": ["a", "b", "c", "a", "b"],
            "event_timestamp": pd.to_datetime(["2024-03-01"] * 3 + ["2024-03-02"] * 2, utc=True),
            "label": [1, 2, 3, 4, 5],
        }
    )
    written = features.write_training_set(lake, spark, "churn", entities, "consent")
    assert (written.row_count, written.users_excluded_no_consent) == (3, 2)
    rows = spark.read.format("delta").load(features.training_set_uri(lake, "consent")).collect()
    assert sorted((r["dt"], r["user_id"], r["label"]) for r in rows) == [
        (D1, "a", 1),
        (D1, "b", 2),
        (D2, "a", 4),
    ]
    # fraud prevention rests on legitimate interest: its training sets keep every user
    kept, excluded = consenting_entities(lake, "fraud_scoring", entities)
    assert (len(kept), excluded) == (5, 0)


def test_generated_users_carry_consent_lines_and_all():
    from synthetic import commerce as generator
    from synthetic.population import population

    users = population().users  # the generator's default seed
    consents = [generator.user_consent(u) for u in users]
    granted = sum(1 for at, _ in consents if at) / len(users)
    analytics = sum(1 for _, yes in consents if yes) / len(users)
    assert abs(granted - generator.GDPR_CONSENT_SHARE) < 0.03
    assert abs(analytics - generator.GDPR_CONSENT_SHARE * generator.ANALYTICS_CONSENT_SHARE) < 0.03
    assert all(at for at, yes in consents if yes)  # analytics consent only with GDPR consent on record
    day = generator.generate_day(D1, 50, bad_share=0)
    lines = [json.loads(line) for f in day.sources["users"] for line in f]
    by_user = {u.user_id: u for u in users}
    for line in lines:
        at, yes = generator.user_consent(by_user[line["user_id"]])
        assert line["consent_analytics"] is yes
        assert (line["gdpr_consent_at"] is None) == (at is None)
