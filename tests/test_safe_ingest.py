"""Everyday operations that must not destroy data, and landing input that must not crash a step:
a backfill after landing expiry, a derived step whose input is gone, files that are not text,
misnamed files and folders, leftovers of killed runs, a second tokenization key."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter

import dagster as dg
import pytest
from deltalake import DeltaTable

from assets import events
from lakehouse import audit, erasure, landing, storage
from lakehouse import config as config_module
from lakehouse.config import LakehouseConfig, TokenKeyError
from orchestration.factory import ALLOW_EMPTY_TAG, domain_assets
from synthetic import read_record
from synthetic.events import generate_day
from tests.helpers import counts_by_day, run_assets

DAYS = [dt.date(2024, 1, 3), dt.date(2024, 1, 4)]
ROWS = 300
RAW_AND_PROCESSED = domain_assets([events.RAW, events.PROCESSED])
RAW_ONLY = domain_assets([events.RAW])


def _warnings(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(result.run_id) if entry.level == 30]


def _version(lake: LakehouseConfig, layer: str, name: str = "events") -> int:
    return DeltaTable(lake.table_uri(layer, "events", name), storage_options=lake.storage_options).version()


def test_a_backfill_after_landing_expiry_keeps_the_days_it_has_no_files_for(spark, lake, instance):
    for day in DAYS:
        generate_day(day, ROWS).write(lake, "events")
    assert run_assets(instance, RAW_AND_PROCESSED, DAYS[0], DAYS[-1]).success
    raw_uri, processed_uri = (
        lake.table_uri("raw", "events", "events"),
        lake.table_uri("processed", "events", "events"),
    )
    raw_before, processed_before = counts_by_day(spark, raw_uri), counts_by_day(spark, processed_uri)
    assert raw_before[DAYS[0]] == read_record(lake, "events", DAYS[0])["expected"]["raw"]

    # the first day's landing files expire; a killed run left staged raw lines behind
    storage.delete_files(lake, landing.landing_files(lake, "events", [DAYS[0]], "events")[DAYS[0]])
    leftover = f"{lake.root}/_staging/events/raw/events/0123abcd/lines/part-00000.parquet"
    storage.write_bytes(lake, leftover, b"staged personal data")

    result = run_assets(instance, RAW_AND_PROCESSED, DAYS[0], DAYS[-1])  # "backfill the last days"
    assert result.success
    assert counts_by_day(spark, raw_uri) == raw_before
    assert counts_by_day(spark, processed_uri) == processed_before  # rebuilt from the kept raw rows
    warnings = _warnings(instance, result)
    kept = [w for w in warnings if "2024-01-03: kept as it is" in w]
    assert kept and "landing.events.events has no files for 2024-01-03" in kept[0]
    assert "expired on 2024-01-10" in kept[0] and ALLOW_EMPTY_TAG in kept[0]
    materialization = instance.get_latest_materialization_event(
        dg.AssetKey(events.RAW.key_path)
    ).asset_materialization
    assert materialization.metadata["partitions_kept"].value == ["2024-01-03"]
    assert storage.list_tree(lake, f"{lake.root}/_staging/events") == {}

    # emptying the day is possible, explicitly, on the raw table only
    raw_version = _version(lake, "raw")
    emptied = run_assets(instance, RAW_ONLY, DAYS[0], tags={ALLOW_EMPTY_TAG: "true"})
    assert emptied.success and _version(lake, "raw") == raw_version + 1
    assert DAYS[0] not in counts_by_day(spark, raw_uri)
    [record] = [r for r in audit.read(lake, emptied.run_id) if r["action"] == "backfill"]
    assert (record["step"], record["target"], record["partitions"], record["rows"]) == (
        "emptied",
        "raw.events.events",
        ["2024-01-03"],
        raw_before[DAYS[0]],
    )
    # ...and the processed step then refuses to empty its partition, naming the day, and commits nothing
    processed_version = _version(lake, "processed")
    refused = run_assets(instance, RAW_AND_PROCESSED, DAYS[0], raise_on_error=False)
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.error.cause.message
    assert "raw/events/events has no rows for 2024-01-03 while processed/events/events has" in message
    assert _version(lake, "processed") == processed_version
    assert counts_by_day(spark, processed_uri) == processed_before


def test_landing_input_that_is_not_text_or_misnamed_is_quarantined_or_warned(
    spark, lake, instance, monkeypatch
):
    monkeypatch.setenv("LAKEHOUSE_MAX_LINE_BYTES", "4096")
    day = DAYS[0]
    generate_day(day, ROWS).write(lake, "events")
    expected = read_record(lake, "events", day)["expected"]
    folder = lake.landing_uri("events", day)
    good = json.dumps({"eventId": "x"}).encode()
    bad_text = b'{"userId": "u-erase-me-0001", "name": "\xff\xfe"}'
    storage.write_bytes(lake, f"{folder}/events-90001.jsonl", good + b"\n" + bad_text + b"\n" + good + b"\n")
    storage.write_bytes(lake, f"{folder}/events-90002.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    storage.write_bytes(lake, f"{folder}/events-90003.jsonl", good + b"\n" + b"y" * 10_000 + b"\n" + good)
    storage.write_bytes(lake, f"{folder}/events-00001.jsonl.part", good + b"\n")
    storage.write_bytes(lake, f"{folder}/notes.txt", b"hello\n")
    storage.write_bytes(lake, f"{lake.landing_uri('events')}/dt=2024-02-30/events-00001.jsonl", good + b"\n")

    result = run_assets(instance, RAW_AND_PROCESSED, day)
    assert result.success
    raw = counts_by_day(spark, lake.table_uri("raw", "events", "events"))
    assert raw == {day: expected["raw"] + 4}  # the good lines of the two text files
    held = spark.read.format("delta").load(lake.table_uri("quarantine", "events", "landing_events")).collect()
    reasons = Counter(r["reason"] for r in held)
    assert reasons == Counter(
        {
            "invalid_utf8": 1,
            "binary_file": 1,
            "line_too_long: 10000 bytes > 4096": 1,
            "file_name_outside_pattern": 1,
        }
    )
    by_reason = {r["reason"]: r for r in held}
    assert by_reason["invalid_utf8"]["line_number"] == 2
    assert by_reason["invalid_utf8"]["source_file"].endswith("events-90001.jsonl")
    assert json.loads(by_reason["invalid_utf8"]["record"]) == {
        "line": '{"userId": "u-erase-me-0001", "name": "\\xff\\xfe"}'
    }
    assert by_reason["binary_file"]["line_number"] is None
    assert by_reason["line_too_long: 10000 bytes > 4096"]["line_number"] == 2
    assert by_reason["file_name_outside_pattern"]["source_file"].endswith("events-00001.jsonl.part")
    warnings = " ".join(_warnings(instance, result))
    assert "dt=2024-02-30: not a landing folder" in warnings
    assert "notes.txt: name outside the landing pattern" in warnings
    checks = {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }
    assert checks["rows_reconcile"]
    # erasure finds the subject of a refused line where the raw dataset declares it, under `line`
    planned = {
        r.target: r.rows for r in erasure.erase(lake, "user_id", "u-erase-me-0001", "dry", dry_run=True)
    }
    assert planned["quarantine.events.landing_events"] == 1


def test_a_landing_file_is_read_in_bounded_memory():
    """Half a gigabyte of lines through the reader in a fresh process: its peak memory stays far below.
    (VmHWM, not ru_maxrss, which Linux carries over from the forking test process.)"""
    script = """
import datetime as dt, re
from lakehouse import landing
line = b'{"eventId":"' + b"e" * 200 + b'"}\\n'
chunk = line * (landing.CHUNK_BYTES // len(line))
lines = 0
for part in landing.numbered_lines(dt.date(2024, 1, 1), "big.jsonl", (chunk for _ in range(32))):
    lines += part.num_rows
print(lines, int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) // 1024)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    lines, peak_mib = int(out[0]), int(out[1])
    assert lines == 32 * (landing.CHUNK_BYTES // 215)  # 512 MiB of input
    assert peak_mib < 400, f"peak RSS {peak_mib} MiB for 512 MiB of landing lines"


def test_a_lake_refuses_a_tokenization_key_it_was_not_written_with(lake, monkeypatch, tmp_path):
    key = lake.token_key()  # the first use records the key's fingerprint in the lake
    recorded = json.loads(storage.read_text(lake, f"{lake.root}/_lakehouse/token_key.json"))["fingerprint"]
    assert recorded == config_module.key_fingerprint(key) and key not in recorded

    config_module._checked_keys.clear()
    monkeypatch.setenv("LAKEHOUSE_TOKEN_KEY", "another key")
    with pytest.raises(
        TokenKeyError, match=f"is not the key the lake .* was written with \\(fingerprint {recorded}\\)"
    ):
        LakehouseConfig.from_env().token_key()

    monkeypatch.delenv("LAKEHOUSE_TOKEN_KEY")
    monkeypatch.setenv("LAKEHOUSE_STATE_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(TokenKeyError, match="no key is at .*elsewhere/token.key"):
        LakehouseConfig.from_env().token_key()
    assert not (tmp_path / "elsewhere" / "token.key").exists()  # never a silent new key


def test_the_key_file_is_created_owner_only_in_one_absolute_place(tmp_path):
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "AWS_"))}
    script = (
        "from lakehouse.config import LakehouseConfig; c = LakehouseConfig.from_env(); "
        "print(c.state_dir); c.token_key()"
    )
    default = subprocess.run(
        [
            sys.executable,
            "-c",
            "from lakehouse.config import LakehouseConfig; print(LakehouseConfig.from_env().state_dir)",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert default == str(config_module.PROJECT_DIR / ".lakehouse")  # not relative to the working directory
    subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        env={**env, "LAKEHOUSE_STATE_DIR": str(state), "LAKEHOUSE_ROOT": str(tmp_path / "lake")},
    )
    assert (state / "token.key").stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700
