"""Erasure that cannot destroy data: structural matching, dry run, brake, audit as it goes, requests.

One commerce day through Dagster with three subjects of our own: a user whose id is a prefix of another
user's id, a heavy user (many orders: over the brake) and an ordinary one.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster._serdes import serialize_value
from deltalake import DeltaTable

from assets import commerce as a
from lakehouse import audit, catalog, erasure, landing, storage
from orchestration import features as fa
from orchestration.factory import domain_assets
from synthetic import commerce as g
from synthetic import dumps, write_landing
from tests.helpers import run_assets
from tests.test_erasure import _first_orders_by_user, _online_spend, run_erasure_job

DAY = dt.date(2024, 1, 2)
HEAVY_ORDERS = 16  # of about 420 orders: over the 1% brake and its floor of 10 rows


def _user_line(lines: list[str], user_id: str) -> dict:
    return next(json.loads(line) for line in lines if f'"user_id":"{user_id}"' in line)


@pytest.fixture()
def subjects(lake, instance, tmp_path, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("LAKEHOUSE_FEAST_DIR", str(tmp_path / "feast"))
    monkeypatch.delenv("LAKEHOUSE_FEAST_REDIS", raising=False)
    generated = g.generate_day(DAY, 400)
    users = [line for f in generated.sources["users"] for line in f]
    orders = _first_orders_by_user([line for f in generated.sources["orders"] for line in f])
    longer, heavy, ordinary = list(orders)[:3]
    prefix = longer[:30]  # a user whose id is a prefix of another's
    extra_users = [dumps({**_user_line(users, longer), "user_id": prefix, "email": "prefix@example.com"})]
    extra_orders = [dumps({**orders[longer], "order_id": str(uuid.UUID(int=1)), "user_id": prefix})]
    extra_orders += [
        dumps({**orders[heavy], "order_id": str(uuid.UUID(int=100 + n))}) for n in range(HEAVY_ORDERS)
    ]
    extra_orders.append(dumps(orders[ordinary])[:110])  # malformed: cut short after the user_id
    sources = {
        **generated.sources,
        "users": [*generated.sources["users"], extra_users],
        "orders": [*generated.sources["orders"], extra_orders],
    }
    write_landing(lake, "commerce", DAY, sources, generated.record)
    wanted = {fa.REGISTRY_KEY, fa.view_key("customer_order_stats")}
    assert run_assets(
        instance, [*domain_assets(a.DATASETS), *(f for f in fa.ASSETS if set(f.keys) & wanted)], DAY
    ).success
    return {"prefix": prefix, "longer": longer, "heavy": heavy, "ordinary": ordinary}


def places(lake, column: str = "user_id") -> dict[str, str]:
    return {p.target: p.location for p in erasure.locate(lake, column) if p.kind != "staging"}


def _state(lake) -> dict[str, object]:
    """Every table's Delta version and every landing file's bytes: what 'nothing changed' compares."""
    state: dict[str, object] = {}
    for target, location in places(lake).items():
        if target.startswith("landing."):
            _, domain, source = target.split(".")
            state.update(
                {uri: storage.read_bytes(lake, uri) for uri in landing.source_files(lake, domain, source)}
            )
        else:
            state[target] = DeltaTable(location, storage_options=lake.storage_options).version()
    return state


def holding(
    spark, lake, value: str, column: str = "user_id", keys: tuple[str, ...] = ("user_id",)
) -> dict[str, int]:
    """Records holding the subject at its places, counted independently of the erasure code: Spark SQL on
    the column, on the quarantine record's key, and the line keys (`keys`) with the value as the generators
    write them (compact JSON; malformed lines are cut short)."""
    token = erasure.subject_token(value, lake.token_key())
    quoted = [f'"{key}":"{value}"' for key in keys]
    found = {}
    for target, location in places(lake, column).items():
        if target.startswith("landing."):
            _, domain, source = target.split(".")
            lines = [
                line
                for uri in landing.source_files(lake, domain, source)
                for line in storage.read_text(lake, uri).splitlines()
            ]
            found[target] = sum(any(q in line for q in quoted) for line in lines)
            continue
        rows = spark.read.format("delta").load(location)
        if column in rows.columns:
            where = f"{column} IN ('{value}', '{token}')"
        elif "record" in rows.columns:
            where = " OR ".join(
                [
                    f"get_json_object(record, '$.{column}') IN ('{value}', '{token}')",
                    *(f"instr(get_json_object(record, '$.line'), '{q}') > 0" for q in quoted),
                ]
            )
        else:
            where = " OR ".join(f"instr(line, '{q}') > 0" for q in quoted)
        found[target] = rows.where(where).count()
    return found


def removed(records: list) -> dict[str, int]:
    return {
        r.target: r.rows
        for r in records
        if r.step in ("delete", "landing") and not r.target.startswith("online.")
    }


def test_values_that_are_no_subject_remove_nothing_and_a_prefix_id_erases_only_itself(
    spark, lake, subjects, capsys
):
    from orchestration.cli import main

    before = _state(lake)
    # the key name: today every commerce line goes, since "user_id" is in each of them
    assert main(["erase", "user_id", "user_id"]) == 0
    assert "dry run" not in capsys.readouterr().out
    assert _state(lake) == before
    # a region and a status are values of other keys: nothing removed, and verification says where they are
    for value, path in (("eu-west-1", "$.region"), ("suspended", "$.status")):
        assert main(["erase", "user_id", value]) == 1
        assert path in capsys.readouterr().err
        assert _state(lake) == before
    assert sum(r["rows"] for r in audit.read(lake) if r["step"] != "verify") == 0

    prefix, longer = subjects["prefix"], subjects["longer"]
    holding_longer = holding(spark, lake, longer)
    holding_prefix = holding(spark, lake, prefix)
    assert holding_prefix["raw.commerce.users"] == 1 and holding_prefix["raw.commerce.orders"] == 1
    records = erasure.erase(lake, "user_id", prefix, "prefix-run")  # raises unless verified
    assert records[-1].verified is True
    assert removed(records) == {t: n for t, n in holding_prefix.items()}
    assert holding(spark, lake, prefix) == {t: 0 for t in holding_prefix}
    assert holding(spark, lake, longer) == holding_longer  # the longer id is untouched

    # the CLI's two-step form: file a request (prints its id), then carry it out (here: a dry run)
    capsys.readouterr()
    assert main(["erase", "request", "user_id", longer]) == 0
    request_id = capsys.readouterr().out.strip()
    assert main(["erase", "--request-id", request_id, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dry run: nothing removed") and "raw.commerce.users" in out and longer not in out
    assert erasure.load_request(lake, request_id).status == "pending"
    assert holding(spark, lake, longer) == holding_longer


def test_dry_run_reports_exactly_then_the_brake_refuses_and_force_goes_through(spark, lake, subjects):
    heavy = subjects["heavy"]
    before, held = _state(lake), holding(spark, lake, heavy)
    assert held["raw.commerce.orders"] == HEAVY_ORDERS + 1
    total_orders = DeltaTable(
        places(lake)["raw.commerce.orders"], storage_options=lake.storage_options
    ).count()

    dry = erasure.erase(lake, "user_id", heavy, "dry-run", dry_run=True)
    assert _state(lake) == before
    assert all(r.dry_run for r in dry) and dry[-1].verified is None
    assert removed(dry) == held
    orders = next(r for r in dry if r.target == "raw.commerce.orders")
    assert orders.partitions == (DAY.isoformat(),) and "over the brake" in orders.detail
    assert storage.list_tree(lake, f"{lake.root}/audit/erasure_requests") == {}  # nothing filed, nothing kept

    with pytest.raises(erasure.ErasureError) as refused:
        erasure.erase(lake, "user_id", heavy, "braked")
    message = str(refused.value)
    assert f"raw.commerce.orders: {HEAVY_ORDERS + 1} of {total_orders} rows" in message
    assert "more than 1% of a table" in message and heavy not in message
    assert _state(lake) == before
    assert storage.list_tree(lake, f"{lake.root}/audit/erasure_requests") == {}  # a refused value is not kept

    forced = erasure.erase(lake, "user_id", heavy, "forced", force=True)
    assert removed(forced) == held  # exactly what the dry run said, rows and files
    assert {r.target: r.files for r in forced if r.step == "delete"} == {
        r.target: r.files for r in dry if r.step == "delete"
    }
    assert holding(spark, lake, heavy) == {t: 0 for t in held}
    assert "over the brake: " in forced[-1].detail and "(forced)" in forced[-1].detail


def _failing_store(config, subject, dry_run):
    raise RuntimeError("the online store is unreachable")


def test_a_failure_half_way_is_audited_a_rerun_finishes_and_dagster_never_holds_the_value(
    spark, lake, subjects, instance
):
    ordinary = subjects["ordinary"]
    held = holding(spark, lake, ordinary)
    assert held["quarantine.commerce.orders"] >= 1  # the malformed line, matched by the key-value rule
    # a killed run's staging folder: raw lines of the subject, unprotected
    leftover = f"{lake.root}/_staging/commerce/{uuid.uuid4().hex}/part-00000.parquet"
    # and rows a failed gate kept for review: unprotected too
    reviewed = (
        f"{lake.root}/_review/commerce/processed/orders/{uuid.uuid4().hex}/quarantine/part-00000.parquet"
    )
    for path in (leftover, reviewed):
        with storage.filesystem(lake).open_output_stream(storage.fs_path(path)) as out:
            pq.write_table(pa.table({"line": [f'{{"user_id":"{ordinary}"}}']}), out)

    request = erasure.file_request(lake, "user_id", ordinary)
    filed = json.loads(storage.read_text(lake, erasure.request_uri(lake, request.request_id)))
    assert filed["subject_value"] == ordinary
    with pytest.raises(RuntimeError, match="unreachable"):
        erasure.execute_request(lake, request.request_id, "half-way", stores=(_failing_store,))
    done = {r["target"]: r["rows"] for r in audit.read(lake, "half-way")}
    assert {t: done[t] for t in held} == held  # every place done before the failure is in the audit
    assert done["staging.commerce"] == 0 and "*" not in done
    assert _online_spend(lake, ordinary)[0] is not None  # the store it failed on still has the subject

    result = run_erasure_job(instance, request.request_id)
    assert result.success
    rerun = {r["target"]: r for r in audit.read(lake, result.run_id)}
    assert all(rerun[t]["rows"] == 0 for t in held) and rerun["*"]["verified"] is True
    assert rerun["online.customer"]["rows"] == 1 and _online_spend(lake, ordinary) == [None]
    assert holding(spark, lake, ordinary) == {t: 0 for t in held}
    assert next(r for r in audit.read(lake, "half-way") if r["target"] == "staging.commerce")["files"] == 1
    assert storage.list_tree(lake, f"{lake.root}/_staging/commerce") == {}
    assert next(r for r in audit.read(lake, "half-way") if r["target"] == "review.commerce")["files"] == 1
    assert storage.list_tree(lake, f"{lake.root}/_review/commerce") == {}
    for dataset_id, table in places(lake).items():  # the counts of the first, failed run are corrected too
        if not dataset_id.startswith("landing."):
            assert (
                catalog.get_entry(lake, dataset_id)["rowCount"]
                == DeltaTable(table, storage_options=lake.storage_options).count()
            )

    kept = json.loads(storage.read_text(lake, erasure.request_uri(lake, request.request_id)))
    assert kept["status"] == "done" and kept["subject_value"] is None and ordinary not in json.dumps(kept)
    run = instance.get_run_by_id(result.run_id)
    assert run.run_config["ops"]["erase_subject"]["config"] == {"request_id": request.request_id}
    stored = serialize_value(run) + "".join(serialize_value(e) for e in instance.all_logs(result.run_id))
    assert request.subject_token in stored and ordinary not in stored
