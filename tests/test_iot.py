"""The iot domain: transforms on small DataFrames, the generator's record, and two days through Dagster."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from collections import Counter, defaultdict

import dagster as dg
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from orchestration.factory import domain_assets
from synthetic import read_record
from synthetic.iot import READING_BAD_KINDS, generate_day
from synthetic.population import SENSOR_KINDS, population
from transforms import common
from transforms import iot as t

DAY = dt.date(2024, 1, 2)
FILE = "s3://lake/landing/iot/dt=2024-01-02/readings-00000.jsonl"
DEV = [
    "3f1c2a4e-8b7d-4c1e-9a2b-1234567890ab",
    "9b2d7e1f-0c3a-4d5e-8f6a-abcdefabcdef",
    "0a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
]
UNREGISTERED = "11111111-2222-4333-8444-555555555555"
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
RAW_DDL = "dt date, source_file string, line_number int, line string"
HOUR = dt.timedelta(hours=1)


def reading(device_id=DEV[0], ts="2024-01-02T10:15:00.000Z", value=21.5, kind="temperature", **extra):
    body = {
        "device_id": device_id,
        "timestamp": ts,
        "value": value,
        "unit": "C",
        "kind": kind,
        "tenant_id": "tenant-acme",
        "region": "us-east-1",
        "firmware": "2.0.1",
        **extra,
    }
    return json.dumps({k: v for k, v in body.items() if v != "<absent>"}, separators=(",", ":"))


def device(device_id=DEV[0], kind="temperature", installed_at="2023-05-01T00:00:00Z"):
    body = {
        "device_id": device_id,
        "tenant_id": "tenant-acme",
        "region": "us-east-1",
        "kind": kind,
        "installed_at": installed_at,
    }
    return json.dumps({k: v for k, v in body.items() if v != "<absent>"}, separators=(",", ":"))


def raw_frame(engine, lines, name="readings"):
    rows = [(DAY, FILE.replace("readings", name), i + 1, line) for i, line in enumerate(lines)]
    return engine.createDataFrame(rows, RAW_DDL)


# --- transforms
# ------------------------------------------------------------------------------------------------

READING_LINES = [
    reading(),  # 1 valid
    reading(value=22.0),  # 2 same device and instant: a resend
    reading(DEV[1], "2024-01-02T12:00:00+02:00", 1013, "pressure"),  # 3 valid, offset time, integer value
    reading()[:40],  # 4 malformed
    reading(device_id="<absent>"),  # 5 missing device id
    reading(device_id=""),  # 6 empty device id
    reading(device_id="dev-00042"),  # 7 invalid uuid
    reading(ts="2024-13-45T25:61:00Z"),  # 8 unparseable timestamp
    reading(value="n/a"),  # 9 not a number
    reading(value="NaN"),  # 10 not a number
    reading(value=None),  # 11 not a number
    reading(kind="radiation"),  # 12 unknown kind
    reading(value=-999.0),  # 13 out of physical range
    reading(DEV[1], value=1100.5, kind="pressure"),  # 14 out of physical range
    reading(UNREGISTERED),  # 15 not in the registry
    reading(DEV[0].upper(), "2024-01-02T10:16:00Z", 125.0),  # 16 valid: upper-case id, at the limit
]
READING_REASONS = {
    1: None,
    2: None,
    3: None,
    4: "malformed_json",
    5: "missing_device_id",
    6: "missing_device_id",
    7: "invalid_device_id",
    8: "unparseable_timestamp",
    9: "value_not_a_number",
    10: "value_not_a_number",
    11: "value_not_a_number",
    12: "unknown_kind",
    13: "value_out_of_range",
    14: "value_out_of_range",
    15: "unknown_device",
    16: None,
}


@pytest.fixture()
def registry(engine):
    return common.accepted_rows(
        t.parse_devices(raw_frame(engine, [device(), device(DEV[1], "pressure")], "devices"))
    )


def test_sensor_limits_are_the_data_sheet_the_generator_uses():
    assert t.SENSOR_KINDS == SENSOR_KINDS


def test_readings_get_the_first_broken_rule(engine, registry):
    out = t.parse_readings(raw_frame(engine, READING_LINES), registry)
    reasons = {r["line_number"]: r["quarantine_reason"] for r in out.collect()}
    assert reasons == READING_REASONS
    held = common.quarantine_records(out, "run-1", dt.datetime(2024, 1, 3)).where("line_number = 4").first()
    assert json.loads(held["record"])["line"] == READING_LINES[3]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{}", "missing_device_id"),  # an object, without the reading's fields
        ('{"sensor":{"device_id":"x"}}', "missing_device_id"),
        ("[1,2]", "malformed_json"),  # JSON, but not an object
        ('"text"', "malformed_json"),
        ("", "malformed_json"),
    ],
)
def test_malformed_means_not_one_json_object(engine, registry, line, reason):
    assert t.parse_readings(raw_frame(engine, [line]), registry).first()["quarantine_reason"] == reason


def test_a_reading_needs_its_device_in_the_same_days_registry(engine, registry):
    other_day = registry.withColumn("dt", F.lit(DAY - dt.timedelta(days=1)))
    out = t.parse_readings(raw_frame(engine, [reading()]), other_day).first()
    assert out["quarantine_reason"] == "unknown_device"


def test_processed_readings_are_typed_and_deduplicated(engine, registry):
    out = common.deduplicate(
        common.accepted_rows(t.parse_readings(raw_frame(engine, READING_LINES), registry)),
        ["device_id", "timestamp"],
    )
    rows = {r["line_number"]: r for r in out.collect()}
    assert sorted(rows) == [1, 3, 16]  # line 2 repeats line 1's device and timestamp: the first line wins
    assert rows[1]["value"] == 21.5 and rows[1]["timestamp"] == dt.datetime(2024, 1, 2, 10, 15)
    assert rows[3]["value"] == 1013.0 and rows[3]["timestamp"] == dt.datetime(2024, 1, 2, 10, 0)
    assert rows[16]["device_id"] == DEV[0]
    assert (
        rows[1]["unit"],
        rows[1]["kind"],
        rows[1]["tenant_id"],
        rows[1]["region"],
        rows[1]["firmware"],
    ) == ("C", "temperature", "tenant-acme", "us-east-1", "2.0.1")
    assert dict(out.dtypes)["value"] == "double" and dict(out.dtypes)["timestamp"] == "timestamp"


def test_devices_get_the_first_broken_rule(engine):
    lines = [
        device(),
        device(),
        device()[:30],
        device("<absent>"),
        device("not-a-uuid"),
        device(DEV[1], "radiation"),
        device(DEV[2], installed_at="last spring"),
    ]
    out = t.parse_devices(raw_frame(engine, lines, "devices"))
    reasons = {r["line_number"]: r["quarantine_reason"] for r in out.collect()}
    assert reasons == {
        1: None,
        2: None,
        3: "malformed_json",
        4: "missing_device_id",
        5: "invalid_device_id",
        6: "unknown_kind",
        7: "unparseable_installed_at",
    }
    first = out.where("line_number = 1").first()
    assert first["installed_at"] == dt.datetime(2023, 5, 1) and first["kind"] == "temperature"


SCHEMA = T.StructType(
    [
        T.StructField("dt", T.DateType()),
        T.StructField("device_id", T.StringType()),
        T.StructField("timestamp", T.TimestampType()),
        T.StructField("value", T.DoubleType()),
        T.StructField("kind", T.StringType()),
        T.StructField("tenant_id", T.StringType()),
        T.StructField("region", T.StringType()),
        T.StructField("line_number", T.IntegerType()),
    ]
)
T0 = dt.datetime(2024, 1, 2, 8, 0)
# Device A: 12 temperature readings 10 minutes apart, the 7th a spike.
A_VALUES = [21.0, 21.5, 22.0, 21.0, 22.5, 21.5, 35.0, 22.0, 21.0, 21.5, 22.0, 21.0]
# Device B: humidity; in band, a single high reading, in band, then 4 low readings spanning 61 minutes, in
# band.
B_TIMES = [0, 30, 60, 90, 100, 130, 151, 200]
B_VALUES = [45.0, 65.0, 45.0, 20.0, 22.0, 25.0, 28.0, 44.0]
# Device C: pressure out of band for exactly one hour: not more than an hour, not sustained.
C_TIMES, C_VALUES = [0, 60, 120], [1040.0, 1045.0, 1000.0]


@pytest.fixture()
def readings(engine):
    rows = [
        (DAY, "A", T0 + dt.timedelta(minutes=10 * i), v, "temperature", "tenant-acme", "us-east-1", i)
        for i, v in enumerate(A_VALUES)
    ]
    rows += [
        (DAY, "B", T0 + dt.timedelta(minutes=m), v, "humidity", "tenant-hooli", "eu-west-1", 100 + i)
        for i, (m, v) in enumerate(zip(B_TIMES, B_VALUES))
    ]
    rows += [
        (DAY, "C", T0 + dt.timedelta(minutes=m), v, "pressure", "tenant-acme", "us-east-1", 200 + i)
        for i, (m, v) in enumerate(zip(C_TIMES, C_VALUES))
    ]
    return engine.createDataFrame(rows, SCHEMA)


def loo_z(values, i):
    others = values[:i] + values[i + 1 :]
    mean = sum(others) / len(others)
    sd = math.sqrt(sum((x - mean) ** 2 for x in others) / (len(others) - 1))
    return (values[i] - mean) / sd, mean, sd


def test_hourly_aggregates(readings):
    rows = {(r["device_id"], r["hour"]): r for r in t.device_hourly_aggregates(readings).collect()}
    assert set(rows) == {
        ("A", T0),
        ("A", T0 + HOUR),
        ("B", T0),
        ("B", T0 + HOUR),
        ("B", T0 + 2 * HOUR),
        ("B", T0 + 3 * HOUR),
        ("C", T0),
        ("C", T0 + HOUR),
        ("C", T0 + 2 * HOUR),
    }
    first = rows[("A", T0)]
    assert (first["readings"], first["min"], first["max"], first["tenant_id"], first["kind"]) == (
        6,
        21.0,
        22.5,
        "tenant-acme",
        "temperature",
    )
    assert first["mean"] == pytest.approx(21.583333333333332)
    assert first["stddev"] == pytest.approx(
        0.5845225972250061
    )  # sample stddev of 21, 21.5, 22, 21, 22.5, 21.5
    assert rows[("C", T0)]["stddev"] is None and rows[("C", T0)]["readings"] == 1


def test_anomalies_z_score_and_sustained_out_of_band(readings):
    rows = {(r["device_id"], r["timestamp"]): r for r in t.reading_anomalies(readings).collect()}
    spike = T0 + dt.timedelta(minutes=60)
    low_run = [T0 + dt.timedelta(minutes=m) for m in (90, 100, 130, 151)]
    assert {k: r["reason"] for k, r in rows.items()} == {
        ("A", spike): "z_score",
        **{("B", ts): "out_of_band_sustained" for ts in low_run},
    }
    z, mean, sd = loo_z(A_VALUES, 6)
    assert z > 3 and rows[("A", spike)]["z_score"] == pytest.approx(z)
    assert (rows[("A", spike)]["baseline_mean"], rows[("A", spike)]["baseline_stddev"]) == pytest.approx(
        (mean, sd)
    )
    assert rows[("B", low_run[0])]["out_of_band_minutes"] == pytest.approx(61.0)
    assert rows[("B", low_run[0])]["z_score"] is None  # 7 other readings are too few for a z-score
    # every other reading of A is close to the baseline of the others
    scored = {(r["device_id"], r["timestamp"]): r for r in t.scored_readings(readings).collect()}
    for i in range(len(A_VALUES)):
        assert scored[("A", T0 + dt.timedelta(minutes=10 * i))]["z_score"] == pytest.approx(
            loo_z(A_VALUES, i)[0]
        )
    assert scored[("C", T0)]["out_of_band_minutes"] == pytest.approx(60.0)
    assert not scored[("C", T0)]["sustained_out_of_band"]
    assert (
        scored[("B", T0 + dt.timedelta(minutes=30))]["out_of_band_minutes"] == 0.0
    )  # a single stray reading


def test_daily_health(readings):
    health = {
        r["device_id"]: r
        for r in t.device_daily_health(
            readings=readings, reading_anomalies=t.reading_anomalies(readings)
        ).collect()
    }
    assert {
        k: (r["readings"], r["anomalies"], r["z_score_anomalies"], r["active_hours"])
        for k, r in health.items()
    } == {"A": (12, 1, 1, 2), "B": (8, 4, 0, 4), "C": (3, 0, 0, 3)}
    assert health["A"]["anomaly_rate"] == pytest.approx(1 / 12) and health["B"]["anomaly_rate"] == 0.5
    assert health["C"]["anomaly_rate"] == 0.0 and health["B"]["region"] == "eu-west-1"


# --- an independent reading of the landing lines
# -----------------------------------------------------------------


def parse_time(text):
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, AttributeError, TypeError):
        return None


def number(value):
    if isinstance(value, bool) or value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def classify_devices(lines):
    registry, reasons, duplicates = {}, Counter(), 0
    for line in lines:
        try:
            body = json.loads(line)
        except json.JSONDecodeError:
            reasons["malformed_json"] += 1
            continue
        if body["device_id"] in registry:
            duplicates += 1
        else:
            registry[body["device_id"]] = body
    return registry, reasons, duplicates


def classify_readings(lines, registry):
    """(accepted readings after de-duplication, reasons per kind, duplicates) — the rules, written again."""
    accepted, reasons, duplicates = {}, Counter(), 0
    for line in lines:
        try:
            body = json.loads(line)
        except json.JSONDecodeError:
            reasons["malformed_json"] += 1
            continue
        device_id, stamp, value = (
            body.get("device_id"),
            parse_time(body.get("timestamp")),
            number(body.get("value")),
        )
        kind = body.get("kind")
        if not device_id or not device_id.strip():
            reasons["missing_device_id"] += 1
        elif not UUID.match(device_id):
            reasons["invalid_device_id"] += 1
        elif stamp is None:
            reasons["unparseable_timestamp"] += 1
        elif value is None:
            reasons["value_not_a_number"] += 1
        elif kind not in SENSOR_KINDS:
            reasons["unknown_kind"] += 1
        elif not SENSOR_KINDS[kind][0][0] <= value <= SENSOR_KINDS[kind][0][1]:
            reasons["value_out_of_range"] += 1
        elif device_id.lower() not in registry:
            reasons["unknown_device"] += 1
        elif (device_id.lower(), stamp) in accepted:
            duplicates += 1
        else:
            accepted[(device_id.lower(), stamp)] = {**body, "timestamp": stamp, "value": value}
    return list(accepted.values()), reasons, duplicates


def expected_anomalies(accepted):
    """{(device_id, timestamp): (reason, z)} by the documented definition, computed naively."""
    by_device = defaultdict(list)
    for r in accepted:
        by_device[r["device_id"]].append(r)
    found = {}
    for device_id, rows in by_device.items():
        rows.sort(key=lambda r: r["timestamp"])
        values = [r["value"] for r in rows]
        (_, _), (low, high) = SENSOR_KINDS[rows[0]["kind"]]
        sustained, run = set(), []
        for r in rows + [None]:
            if r is not None and not low <= r["value"] <= high:
                run.append(r["timestamp"])
                continue
            if run and run[-1] - run[0] > HOUR:
                sustained.update(run)
            run = []
        for i, r in enumerate(rows):
            z = loo_z(values, i)[0] if len(values) - 1 >= 10 else None
            if r["timestamp"] in sustained:
                found[(device_id, r["timestamp"])] = ("out_of_band_sustained", z)
            elif z is not None and abs(z) > 3:
                found[(device_id, r["timestamp"])] = ("z_score", z)
    return found


def planted(record):
    anomalies = record["anomalies"]
    return {(d, parse_time(ts)): "z_score" for d, ts in anomalies["spike_readings"]} | {
        (d, parse_time(ts)): "out_of_band_sustained" for d, ts in anomalies["sustained_readings"]
    }


# --- generator
# -------------------------------------------------------------------------------------------------


def test_the_record_matches_the_lines_written():
    generated = generate_day(DAY, 20_000)
    record = generated.record
    readings = [line for file in generated.sources["readings"] for line in file]
    devices = generated.sources["devices"][0]
    registry, device_reasons, device_duplicates = classify_devices(devices)
    accepted, reasons, duplicates = classify_readings(readings, registry)

    assert record["lines"] == {"readings": len(readings), "devices": len(devices)} and len(readings) == 20_000
    assert record["bad"]["devices"] == {
        "malformed_json": device_reasons["malformed_json"],
        "duplicate": device_duplicates,
    }
    assert record["expected"]["devices"] == {
        "input": len(devices),
        "accepted": len(registry),
        "quarantined": sum(device_reasons.values()),
        "duplicates": device_duplicates,
    }
    assert record["bad"]["readings"] == {
        **{k: reasons[k] for k in READING_BAD_KINDS},
        "duplicate": duplicates,
    }
    assert all(n == 50 for n in record["bad"]["readings"].values())  # 2%, every kind
    assert record["expected"]["readings"] == {
        "input": 20_000,
        "accepted": len(accepted),
        "quarantined": sum(reasons.values()),
        "duplicates": duplicates,
    }
    # the planted anomalies, and only they, are what the documented definition finds
    found = expected_anomalies(accepted)
    assert {k: reason for k, (reason, _) in found.items()} == planted(record)
    assert record["anomalies"]["spikes"] == 20 and record["anomalies"]["excursions"] == 1
    # normal readings stay inside their kind's band
    outside = [
        r
        for r in accepted
        if (r["device_id"], r["timestamp"]) not in found
        and not SENSOR_KINDS[r["kind"]][1][0] <= r["value"] <= SENSOR_KINDS[r["kind"]][1][1]
    ]
    assert outside == []


def test_generation_is_deterministic_fast_and_consistent_with_the_population():
    assert generate_day(DAY, 800).sources == generate_day(DAY, 800).sources
    assert generate_day(DAY, 800).sources != generate_day(DAY + dt.timedelta(days=1), 800).sources
    assert generate_day(DAY, 800, seed=1).sources != generate_day(DAY, 800, seed=2).sources
    fleet = {d.device_id: d for d in population().devices}
    started = time.perf_counter()
    big = generate_day(DAY, 1_000_000)
    assert time.perf_counter() - started < 20
    assert [len(f) for f in big.sources["readings"]] == [250_000] * 4
    registry, _, _ = classify_devices(big.sources["devices"][0])
    valid, _, _ = classify_readings(big.sources["readings"][0][:50_000], registry)
    assert {
        (r["tenant_id"], r["region"], r["kind"])
        == (fleet[r["device_id"]].tenant_id, fleet[r["device_id"]].region, fleet[r["device_id"]].kind)
        for r in valid
    } == {True}
    assert {r["kind"] for r in valid} == set(SENSOR_KINDS) and len({r["region"] for r in valid}) == 3
    per_device = Counter(r["device_id"] for r in valid)
    assert len(per_device) == big.record["registered_devices"]


# --- end to end
# --------------------------------------------------------------------------------------------------

DAYS = [dt.date(2024, 1, 9), dt.date(2024, 1, 10)]
ROWS = 3_000


@pytest.fixture()
def landed(lake):
    lines = {}
    for day in DAYS:
        generated = generate_day(day, ROWS)
        generated.write(lake, "iot")
        lines[day] = {
            source: [line for file in files for line in file] for source, files in generated.sources.items()
        }
    return {day: read_record(lake, "iot", day) for day in DAYS}, lines


def table(spark, lake, layer, name):
    return spark.read.format("delta").load(lake.table_uri(layer, "iot", name))


def by_day(df):
    return {r["dt"]: r["n"] for r in df.groupBy("dt").agg(F.count(F.lit(1)).alias("n")).collect()}


def test_two_days_reconcile_exactly_and_carry_no_personal_data(spark, lake, landed, instance):
    from assets.iot import DATASETS
    from tests.helpers import run_assets

    records, lines = landed
    started = time.perf_counter()
    assert run_assets(instance, domain_assets(DATASETS), DAYS[0], DAYS[-1]).success
    print(f"iot pipeline, 2 days x {ROWS} readings: {time.perf_counter() - started:.1f} s")
    assert len(instance.get_runs()) == 1

    for name in ("readings", "devices"):
        raw, processed = table(spark, lake, "raw", name), table(spark, lake, "processed", name)
        held = table(spark, lake, "quarantine", name)
        expected = {day: records[day]["expected"][name] for day in DAYS}
        assert by_day(raw) == {day: e["input"] for day, e in expected.items()}
        assert by_day(processed) == {day: e["accepted"] for day, e in expected.items()}
        assert by_day(held) == {day: e["quarantined"] for day, e in expected.items()}
        for e in expected.values():
            assert e["input"] == e["accepted"] + e["quarantined"] + e["duplicates"] and e["duplicates"] > 0
        reasons = Counter(
            {(r["dt"], r["reason"]): r["count"] for r in held.groupBy("dt", "reason").count().collect()}
        )
        for day in DAYS:
            bad = {kind: n for kind, n in records[day]["bad"][name].items() if kind != "duplicate" and n}
            assert {reason: n for (d, reason), n in reasons.items() if d == day} == bad
    metadata = instance.get_latest_materialization_event(
        dg.AssetKey(["processed", "iot", "readings"])
    ).asset_materialization.metadata
    assert metadata["duplicates_removed"].value == sum(
        records[d]["expected"]["readings"]["duplicates"] for d in DAYS
    )

    # The curated tables against the same definitions computed in Python from the landing lines.
    for day in DAYS:
        registry, _, _ = classify_devices(lines[day]["devices"])
        accepted, _, _ = classify_readings(lines[day]["readings"], registry)
        expected = expected_anomalies(accepted)
        rows = table(spark, lake, "curated", "reading_anomalies").where(F.col("dt") == day).collect()
        got = {(r["device_id"], r["timestamp"]): (r["reason"], r["z_score"]) for r in rows}
        assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in expected.items()}
        for key, (_, z) in expected.items():
            assert got[key][1] == (pytest.approx(z, rel=1e-9) if z is not None else None)
        assert planted(records[day]) == {
            k: v[0] for k, v in got.items()
        }  # every planted spike and excursion found
        assert (
            records[day]["anomalies"]["spikes"] >= 2 and records[day]["anomalies"]["excursion_readings"] >= 2
        )

        hourly = defaultdict(list)
        for r in accepted:
            hourly[(r["device_id"], r["timestamp"].replace(minute=0, second=0, microsecond=0))].append(
                r["value"]
            )
        rows = table(spark, lake, "curated", "device_hourly_aggregates").where(F.col("dt") == day).collect()
        assert {(r["device_id"], r["hour"]): (r["readings"], r["min"], r["max"]) for r in rows} == {
            k: (len(v), min(v), max(v)) for k, v in hourly.items()
        }
        for r in rows:
            values = hourly[(r["device_id"], r["hour"])]
            assert r["mean"] == pytest.approx(sum(values) / len(values), rel=1e-12)

        health = {
            r["device_id"]: (r["readings"], r["anomalies"])
            for r in table(spark, lake, "curated", "device_daily_health").where(F.col("dt") == day).collect()
        }
        per_device = Counter(r["device_id"] for r in accepted)
        flagged = Counter(device_id for device_id, _ in expected)
        assert health == {d: (n, flagged[d]) for d, n in per_device.items()}

    assert_no_personal_data(
        spark, lake, [line for day in DAYS for source in lines[day].values() for line in source]
    )


def assert_no_personal_data(spark, lake, landing_lines):
    """No email, first or last name, or IP address in the landing lines, nor in any processed, curated or
    quarantine table of the domain (every string column scanned)."""
    from assets.iot import DATASETS

    people = population().users
    names = {u.first_name for u in people} | {u.last_name for u in people}
    ip = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
    email = re.compile(r"[^@\s\"]+@[^@\s\"]+\.[a-z]+")
    word = re.compile(r"[A-Za-z]+")

    def leaks(text):
        return email.search(text) or ip.search(text) or set(word.findall(text)) & names  # any email: any "@"

    assert not any(leaks(line) for line in landing_lines)
    assert leaks(f'{{"note":"{people[0].email}"}}') and leaks("from 10.1.2.3") and leaks(people[0].last_name)
    scanned = 0
    for dataset in DATASETS:
        if dataset.layer == "raw":
            continue
        for path in [dataset.path] + ([dataset.quarantine_path] if dataset.has_quarantine else []):
            layer, _, name = path.split("/")
            df = table(spark, lake, layer, name)
            strings = [f.name for f in df.schema.fields if isinstance(f.dataType, T.StringType)]
            for row in df.select(*strings).collect():
                for value in row:
                    assert value is None or not leaks(value), (path, value)
                    scanned += 1
    assert scanned > 10_000
