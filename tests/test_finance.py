"""The finance domain: transforms on small DataFrames, the generator against an independent reading of its
lines, and two days through Dagster reconciled with the generator and recomputed in Python."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import uuid
from collections import Counter, defaultdict
from decimal import Decimal, InvalidOperation

import dagster as dg
import pytest

from lakehouse.config import LakehouseConfig
from lakehouse.datasets import Protection
from orchestration.factory import domain_assets
from synthetic import read_record
from synthetic.finance import ACCOUNT_BAD_KINDS, TRANSACTION_BAD_KINDS, generate_day
from tests.conftest import REPO
from tests.helpers import counts_by_day, run_assets
from transforms import common
from transforms import finance as t

DAY = dt.date(2024, 1, 2)
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")
ACC1, ACC2, ACC3, ACC_UNKNOWN = (
    "a0000000-0000-4000-8000-000000000001",
    "a0000000-0000-4000-8000-000000000002",
    "a0000000-0000-4000-8000-000000000003",
    "a0000000-0000-4000-8000-00000000dead",
)
CUST1, CUST2 = "c0000000-0000-4000-8000-000000000001", "c0000000-0000-4000-8000-000000000002"
TX = [f"70000000-0000-4000-8000-0000000000{i:02d}" for i in range(30)]


def line(**fields) -> str:
    return json.dumps({k: v for k, v in fields.items() if v is not None}, separators=(",", ":"))


def account(
    account_id=ACC1,
    customer_id=CUST1,
    region="eu-west-1",
    tenant_id="tenant-globex",
    status="active",
    opened_at="2023-05-01T08:00:00.000Z",
    **extra,
):
    return line(
        account_id=account_id,
        customer_id=customer_id,
        currency="EUR",
        opened_at=opened_at,
        region=region,
        tenant_id=tenant_id,
        status=status,
        **extra,
    )


def txn(
    i,
    account_id=ACC1,
    amount=-12.34,
    ts="2024-01-02T10:00:00.000Z",
    status="settled",
    kind="card_payment",
    **extra,
):
    return line(
        id=TX[i],
        account_id=account_id,
        amount=amount,
        currency="EUR",
        timestamp=ts,
        status=status,
        type=kind,
        **extra,
    )


ACCOUNT_LINES = [
    account(),  # 1 valid
    account(ACC2, CUST2, "us-east-1", "tenant-acme"),  # 2 valid
    account(tenant_id="tenant-late"),  # 3 duplicate of ACC1: the first line wins
    account(ACC3, region="us-west-2"),  # 4 parses; region not allowed
    account()[:40],  # 5 malformed
    account(account_id="", customer_id=CUST2).replace('"account_id":"",', ""),  # 6 missing account_id
    account(customer_id=None),  # 7 missing customer_id
    account("acct-1"),  # 8 invalid account id
    account(opened_at="soon"),  # 9 invalid opened_at
    account(status="dormant"),  # 10 unknown status
]
TRANSACTION_LINES = [
    txn(1, merchant_category="groceries", channel="online", ip_address="81.2.69.160"),  # 1 valid
    txn(1, merchant_category="groceries", channel="online", ip_address="81.2.69.160"),  # 2 duplicate of 1
    txn(3, amount=100.0, ts="2024-01-02T02:30:00.000Z", kind="deposit"),  # 3 valid, night
    txn(
        4,
        ACC2,
        -50.5,
        "2024-01-02T03:00:00.000Z",
        "failed",
        "transfer",  # 4 valid, failed, night
        counterparty_name="Ada Lovelace",
    ),
    txn(5, ACC2, -20, "2024-01-02T12:00:00.000Z", "pending", merchant_category="travel"),  # 5 valid, pending
    txn(
        6, amount=5.0, ts="2024-01-02T11:00:00.000Z", kind="refund", merchant_category="restaurants"
    ),  # 6 valid
    txn(7)[:30],  # 7 malformed
    txn(8).replace(f'"id":"{TX[8]}",', ""),  # 8 missing id
    txn(9, account_id=None),  # 9 missing account_id
    txn(10).replace(TX[10], "txn-10"),  # 10 invalid id
    txn(11, amount="abc"),  # 11 not a number
    txn(12, amount=0),  # 12 zero
    txn(13, amount=-1000000.01),  # 13 absurd
    txn(14, ts="yesterday"),  # 14 bad timestamp
    txn(15, status="cancelled"),  # 15 unknown status
    txn(16, ACC_UNKNOWN),  # 16 unknown account
    txn(17, ACC3),  # 17 account not allowed
    txn(18, kind="chargeback"),  # 18 unknown type
    txn(19, ACC2, 1000000, "2024-01-02T23:00:00.000Z", kind="deposit"),  # 19 valid, the limit
    txn(20, ACC2, "-7.25", "2024-01-02T12:00:00+02:00", kind="fee"),  # 20 valid, text, offset
]


def lines_frame(engine, lines, source):
    rows = [
        (DAY, f"s3://lake/landing/finance/dt={DAY}/{source}-00000.jsonl", i + 1, text)
        for i, text in enumerate(lines)
    ]
    return engine.createDataFrame(rows, "dt date, source_file string, line_number int, line string")


@pytest.fixture()
def raw_accounts(engine):
    return lines_frame(engine, ACCOUNT_LINES, "accounts")


@pytest.fixture()
def raw_transactions(engine):
    return lines_frame(engine, TRANSACTION_LINES, "transactions")


def test_accounts_get_the_first_broken_rule_and_residency(raw_accounts):
    parsed = common.require_region(t.parse_accounts(raw_accounts), "region", REGIONS)
    reasons = {r["line_number"]: r["quarantine_reason"] for r in parsed.collect()}
    assert reasons == {
        1: None,
        2: None,
        3: None,
        4: "region_not_allowed:us-west-2",
        5: "malformed_json",
        6: "missing_required_field:account_id",
        7: "missing_required_field:customer_id",
        8: "invalid_account_id",
        9: "invalid_opened_at",
        10: "unknown_account_status",
    }
    known = {r["account_id"]: r for r in t.known_accounts(raw_accounts, REGIONS).collect()}
    assert sorted(known) == [ACC1, ACC2]
    assert (known[ACC1]["line_number"], known[ACC1]["tenant_id"]) == (1, "tenant-globex")
    assert known[ACC1]["opened_at"] == dt.datetime(2023, 5, 1, 8, 0)


def test_transactions_get_the_first_broken_rule(raw_transactions, raw_accounts):
    out = t.processed_transactions(raw_transactions, raw_accounts, REGIONS)
    reasons = {r["line_number"]: r["quarantine_reason"] for r in out.collect()}
    assert reasons == {
        1: None,
        2: None,
        3: None,
        4: None,
        5: None,
        6: None,
        7: "malformed_json",
        8: "missing_required_field:id",
        9: "missing_required_field:account_id",
        10: "invalid_transaction_id",
        11: "amount_not_a_number",
        12: "amount_zero",
        13: "amount_out_of_range",
        14: "invalid_timestamp",
        15: "unknown_status",
        16: "unknown_account",
        17: "unknown_account",
        18: "unknown_transaction_type",
        19: None,
        20: None,
    }
    # without the residency rule the snapshot's ACC3 is a known account: the region decides
    anywhere = t.processed_transactions(raw_transactions, raw_accounts)
    assert anywhere.where("line_number = 17").first()["quarantine_reason"] is None
    held = common.quarantine_records(out, "run-1", dt.datetime(2024, 1, 3)).where("line_number = 16").first()
    assert json.loads(held["record"])["line"] == TRANSACTION_LINES[15]


def processed(raw_transactions, raw_accounts):
    out = t.processed_transactions(raw_transactions, raw_accounts, REGIONS)
    return common.deduplicate(common.accepted_rows(out), ["transaction_id"])


def test_processed_transactions_are_typed_and_enriched_from_the_account(raw_transactions, raw_accounts):
    df = processed(raw_transactions, raw_accounts)
    rows = {r["line_number"]: r for r in df.collect()}
    assert sorted(rows) == [1, 3, 4, 5, 6, 19, 20]  # line 2 repeats line 1's id
    assert dict(df.dtypes)["amount"] == "decimal(10,2)"
    first = rows[1]
    assert (first["transaction_id"], first["account_id"], first["customer_id"]) == (TX[1], ACC1, CUST1)
    assert (first["amount"], first["transaction_ts"]) == (Decimal("-12.34"), dt.datetime(2024, 1, 2, 10))
    assert (first["region"], first["tenant_id"], first["ip_address"]) == (
        "eu-west-1",
        "tenant-globex",
        "81.2.69.160",
    )
    assert (rows[20]["amount"], rows[20]["transaction_ts"]) == (Decimal("-7.25"), dt.datetime(2024, 1, 2, 10))
    assert rows[19]["amount"] == Decimal("1000000.00")
    assert (rows[4]["customer_id"], rows[4]["tenant_id"], rows[4]["counterparty_name"]) == (
        CUST2,
        "tenant-acme",
        "Ada Lovelace",
    )
    masked = common.protect(df, {"counterparty_name": Protection.MASK, "ip_address": Protection.MASK}, "k")
    rows = {r["line_number"]: r for r in masked.collect()}
    assert (rows[4]["counterparty_name"], rows[1]["ip_address"]) == ("A***", "81.2.x.x")


def test_curated_settled_balances_and_risk_features(raw_transactions, raw_accounts):
    df = processed(raw_transactions, raw_accounts)
    settled = t.settled_transactions(df)
    assert sorted(r["transaction_id"] for r in settled.collect()) == [TX[1], TX[3], TX[6], TX[19], TX[20]]
    assert dict(settled.dtypes)["amount"] == "decimal(10,2)"
    balances = {
        r["account_id"]: tuple(
            r[c]
            for c in (
                "opening_balance",
                "debits",
                "credits",
                "net",
                "closing_balance",
                "min_running_balance",
                "transaction_count",
            )
        )
        for r in t.account_daily_balances(df).collect()
    }
    d = Decimal
    assert balances == {
        ACC1: (d("0.00"), d("12.34"), d("105.00"), d("92.66"), d("92.66"), d("0.00"), 3),
        ACC2: (d("0.00"), d("7.25"), d("1000000.00"), d("999992.75"), d("999992.75"), d("-7.25"), 2),
    }
    risk = {
        r["account_id"]: tuple(
            r[c]
            for c in (
                "txn_count",
                "failed_ratio",
                "max_amount",
                "distinct_merchant_categories",
                "night_txn_share",
            )
        )
        for r in t.account_risk_features(df).collect()
    }
    assert risk == {
        ACC1: (3, 0.0, d("100.00"), 2, pytest.approx(1 / 3)),
        ACC2: (4, 0.25, d("1000000.00"), 1, 0.25),
    }
    assert {r["dt"] for r in t.account_risk_features(df).collect()} == {DAY}


# --- an independent reading of generated lines
# -------------------------------------------------------------------

TXN_REASONS = {
    "malformed_json": "malformed_json",
    "missing_id": "missing_required_field:id",
    "missing_account_id": "missing_required_field:account_id",
    "invalid_uuid": "invalid_transaction_id",
    "amount_zero": "amount_zero",
    "amount_absurd": "amount_out_of_range",
    "amount_not_a_number": "amount_not_a_number",
    "invalid_timestamp": "invalid_timestamp",
    "unknown_account": "unknown_account",
    "unknown_status": "unknown_status",
}
ACCOUNT_REASONS = {
    "malformed_json": "malformed_json",
    "missing_account_id": "missing_required_field:account_id",
    "region_not_allowed": "region_not_allowed",
}


def _is_uuid(value) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value.lower() and len(value) == 36
    except ValueError:
        return False


def classify(accounts: list[str], transactions: list[str]):
    """Kinds of lines per source, the accepted accounts and the accepted transactions, by reading the
    lines."""
    kinds = {"accounts": Counter(), "transactions": Counter()}
    known: dict[str, dict] = {}
    for text in accounts:
        try:
            row = json.loads(text)
        except json.JSONDecodeError:
            kinds["accounts"]["malformed_json"] += 1
            continue
        kind = (
            "missing_account_id"
            if "account_id" not in row
            else "region_not_allowed"
            if row["region"] not in REGIONS
            else "duplicate_account_id"
            if row["account_id"] in known
            else "valid"
        )
        kinds["accounts"][kind] += 1
        if kind == "valid":
            known[row["account_id"]] = row
    valid: list[dict] = []
    seen: set[str] = set()
    for text in transactions:
        try:
            row = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError:
            kinds["transactions"]["malformed_json"] += 1
            continue
        try:
            amount = Decimal(str(row.get("amount")))
            amount = amount if amount.is_finite() else None
        except InvalidOperation:
            amount = None
        try:
            ts = dt.datetime.fromisoformat(row.get("timestamp", ""))
        except ValueError:
            ts = None
        kind = (
            "missing_id"
            if "id" not in row
            else "missing_account_id"
            if "account_id" not in row
            else "invalid_uuid"
            if not _is_uuid(row["id"])
            else "amount_not_a_number"
            if amount is None
            else "amount_zero"
            if amount == 0
            else "amount_absurd"
            if abs(amount) > 1_000_000
            else "invalid_timestamp"
            if ts is None
            else "unknown_status"
            if row["status"] not in ("pending", "settled", "failed", "reversed")
            else "unknown_account"
            if row["account_id"] not in known
            else "duplicate_transaction_id"
            if row["id"] in seen
            else "valid"
        )
        kinds["transactions"][kind] += 1
        if kind == "valid":
            seen.add(row["id"])
            valid.append({**row, "amount": amount, "ts": ts.astimezone(dt.UTC).replace(tzinfo=None)})
    return kinds, known, valid


def all_lines(generated, source):
    return [text for file in generated.sources[source] for text in file]


def test_the_generator_record_matches_an_independent_reading_of_its_lines():
    generated = generate_day(DAY, 5_000)
    kinds, known, valid = classify(all_lines(generated, "accounts"), all_lines(generated, "transactions"))
    record = generated.record
    for source, bad_kinds in (("accounts", ACCOUNT_BAD_KINDS), ("transactions", TRANSACTION_BAD_KINDS)):
        assert record["lines"][source] == sum(kinds[source].values())
        assert record["bad"][source] == {kind: kinds[source][kind] for kind in bad_kinds}
        assert all(count > 0 for count in record["bad"][source].values())
        e = record["expected"][source]
        assert e["input"] == e["accepted"] + e["quarantined"] + e["duplicates"] == record["lines"][source]
        assert e["accepted"] == kinds[source]["valid"]
    assert record["lines"]["transactions"] == 5_000 and sum(record["bad"]["transactions"].values()) == 100
    # every account was opened by the end of the day; every transaction after its account was opened
    assert all(dt.datetime.fromisoformat(a["opened_at"]).date() <= DAY for a in known.values())
    assert all(
        v["ts"] > dt.datetime.fromisoformat(known[v["account_id"]]["opened_at"]).replace(tzinfo=None)
        for v in valid
    )


def test_the_generator_is_deterministic_and_realistic():
    assert generate_day(DAY, 300).sources == generate_day(DAY, 300).sources
    assert generate_day(DAY, 300).sources != generate_day(DAY + dt.timedelta(days=1), 300).sources
    assert generate_day(DAY, 300, seed=1).sources != generate_day(DAY, 300, seed=2).sources
    generated = generate_day(DAY, 20_000, bad_share=0)
    assert generated.record["bad"]["transactions"] == {kind: 0 for kind in TRANSACTION_BAD_KINDS}
    rows = [json.loads(text, parse_float=Decimal) for text in all_lines(generated, "transactions")]
    types = Counter(r["type"] for r in rows)
    assert set(types) == set(t.TRANSACTION_TYPES) and types["card_payment"] > 0.4 * len(rows)
    assert set(Counter(r["status"] for r in rows)) == set(t.STATUSES)
    assert all(r["amount"] < 0 for r in rows if r["type"] in ("card_payment", "fee"))
    assert all(r["amount"] > 0 for r in rows if r["type"] in ("deposit", "refund"))
    cards = sorted(abs(r["amount"]) for r in rows if r["type"] == "card_payment")
    assert (
        15 < cards[len(cards) // 2] < 80 and cards[-1] > 20 * cards[len(cards) // 2]
    )  # lognormal: long tail
    per_account = Counter(r["account_id"] for r in rows)
    assert sum(n for _, n in per_account.most_common(len(per_account) // 100)) > 0.05 * len(rows)
    accounts = [json.loads(text) for text in all_lines(generated, "accounts")]
    assert {a["region"] for a in accounts} == set(REGIONS) and len({a["tenant_id"] for a in accounts}) == 5
    currency = {a["account_id"]: a["currency"] for a in accounts}
    assert all(r["currency"] == currency[r["account_id"]] for r in rows)


# --- two days through Dagster
# ----------------------------------------------------------------------------------

DAYS = [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]
ROWS = 1_500


@pytest.fixture(scope="module")
def built(s3_server, spark, tmp_path_factory):
    """Two generated days landed in a fresh lake, every finance asset built in one run."""
    from assets.finance import DATASETS

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_ROOT", f"s3://lakehouse/tests/finance-{uuid.uuid4().hex[:8]}")
        config = LakehouseConfig.from_env()
        generated = {day: generate_day(day, ROWS) for day in DAYS}
        for day in DAYS:
            generated[day].write(config, "finance")
        home = tmp_path_factory.mktemp("dagster_home")
        shutil.copy(REPO / "infra" / "dagster.yaml", home / "dagster.yaml")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            result = run_assets(instance, domain_assets(DATASETS), DAYS[0], DAYS[-1])
            assert result.success
            records = {day: read_record(config, "finance", day) for day in DAYS}
            yield {"config": config, "generated": generated, "records": records, "instance": instance}


def table(spark, config, layer, name):
    return spark.read.format("delta").load(config.table_uri(layer, "finance", name))


def test_every_processed_partition_reconciles_with_the_generator(spark, built):
    config, records = built["config"], built["records"]
    assert len(built["instance"].get_runs()) == 1
    for name, reasons in (("accounts", ACCOUNT_REASONS), ("transactions", TXN_REASONS)):
        expected = {day: record["expected"][name] for day, record in records.items()}
        raw = counts_by_day(spark, config.table_uri("raw", "finance", name))
        accepted = counts_by_day(spark, config.table_uri("processed", "finance", name))
        held = counts_by_day(spark, config.table_uri("quarantine", "finance", name))
        for day, e in expected.items():
            assert raw[day] == e["input"] == built["records"][day]["lines"][name]
            assert (accepted[day], held[day]) == (e["accepted"], e["quarantined"])
            assert raw[day] == accepted[day] + held[day] + e["duplicates"]
        counted = Counter()
        for r in table(spark, config, "quarantine", name).groupBy("dt", "reason").count().collect():
            counted[
                (r["dt"], r["reason"].split(":")[0] if r["reason"].startswith("region_") else r["reason"])
            ] += r["count"]
        wanted = Counter(
            {
                (day, reasons[kind]): n
                for day, record in records.items()
                for kind, n in record["bad"][name].items()
                if kind in reasons and n
            }
        )
        assert counted == wanted
    metadata = (
        built["instance"]
        .get_latest_materialization_event(dg.AssetKey(["processed", "finance", "transactions"]))
        .asset_materialization.metadata
    )
    assert metadata["duplicates_removed"].value == sum(
        r["expected"]["transactions"]["duplicates"] for r in records.values()
    )


def _token(key: str, value: str) -> str:
    return hashlib.sha256(f"{key}|{value}".encode()).hexdigest()


def test_curated_tables_match_a_python_recomputation_of_the_landing_lines(spark, built):
    config, generated = built["config"], built["generated"]
    key = config.token_key()
    balances, risk, settled = {}, {}, {}
    for day in DAYS:
        _, known, valid = classify(
            all_lines(generated[day], "accounts"), all_lines(generated[day], "transactions")
        )
        by_account = defaultdict(list)
        for v in valid:
            by_account[v["account_id"]].append(v)
        settled[day] = (
            sum(1 for v in valid if v["status"] == "settled"),
            sum(v["amount"] for v in valid if v["status"] == "settled"),
        )
        for account_id, txns in by_account.items():
            token = _token(key, account_id)
            risk[(day, token)] = (
                len(txns),
                sum(v["status"] == "failed" for v in txns) / len(txns),
                max(abs(v["amount"]) for v in txns),
                len({v["merchant_category"] for v in txns if v.get("merchant_category")}),
                sum(v["ts"].hour < 6 for v in txns) / len(txns),
                known[account_id]["region"],
            )
            done = sorted((v for v in txns if v["status"] == "settled"), key=lambda v: (v["ts"], v["id"]))
            if done:
                running, lowest = Decimal(0), Decimal(0)
                for v in done:
                    running += v["amount"]
                    lowest = min(lowest, running)
                balances[(day, token)] = (
                    sum(-v["amount"] for v in done if v["amount"] < 0),
                    sum(v["amount"] for v in done if v["amount"] > 0),
                    running,
                    running,
                    lowest,
                    len(done),
                    Decimal(0),
                )
    got = {
        (r["dt"], r["account_id"]): (
            r["debits"],
            r["credits"],
            r["net"],
            r["closing_balance"],
            r["min_running_balance"],
            r["transaction_count"],
            r["opening_balance"],
        )
        for r in table(spark, config, "curated", "account_daily_balances").collect()
    }
    assert got == balances
    got = {
        (r["dt"], r["account_id"]): (
            r["txn_count"],
            pytest.approx(r["failed_ratio"]),
            r["max_amount"],
            r["distinct_merchant_categories"],
            pytest.approx(r["night_txn_share"]),
            r["region"],
        )
        for r in table(spark, config, "curated", "account_risk_features").collect()
    }
    assert got == risk
    rows = table(spark, config, "curated", "settled_transactions").collect()
    totals = defaultdict(lambda: [0, Decimal(0)])
    for r in rows:
        totals[r["dt"]][0] += 1
        totals[r["dt"]][1] += r["amount"]
    assert {day: tuple(v) for day, v in totals.items()} == settled
    assert dict(table(spark, config, "curated", "settled_transactions").dtypes)["amount"] == "decimal(10,2)"


CANDIDATES = (
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"  # ids
    r"|\d{1,3}(?:\.\d{1,3}){3}|[\w.+-]+@[\w-]+\.[\w.]+"
)  # IP addresses, emails


def test_no_clear_personal_data_reaches_processed_or_curated_tables(spark, built):
    config, generated = built["config"], built["generated"]
    whole, words = set(), set()
    for day in DAYS:
        for source in ("accounts", "transactions"):
            for text in all_lines(generated[day], source):
                whole.update(re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", text))  # emails, if any
                try:
                    row = json.loads(text)
                except json.JSONDecodeError:
                    continue
                whole.update(
                    v for k, v in row.items() if k in ("account_id", "customer_id", "ip_address") and v
                )
                if row.get("counterparty_name"):
                    whole.add(row["counterparty_name"])
                    words.update(row["counterparty_name"].split())
    assert any("." in v and v.count(".") == 3 for v in whole) and words  # there was something to protect
    tables = [
        ("processed", "accounts"),
        ("processed", "transactions"),
        ("curated", "settled_transactions"),
        ("curated", "account_daily_balances"),
        ("curated", "account_risk_features"),
    ]
    for layer, name in tables:
        df = table(spark, config, layer, name)
        strings = [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]
        for r in df.select(*strings).collect():
            for value in filter(None, r):
                candidates = {value, *re.findall(CANDIDATES, value)}
                assert not whole.intersection(candidates), (layer, name, value)
                assert not words.intersection(re.findall(r"[A-Za-z]+", value)), (layer, name, value)
    masked = table(spark, config, "processed", "transactions").where("counterparty_name is not null").first()
    assert re.fullmatch(r"[A-Z]\*\*\*", masked["counterparty_name"])
