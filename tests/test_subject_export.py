"""Subject export through its Dagster job: a user present in the commerce and events domains gets every row
about them, in every layer, landing and the online feature store, counted as a direct query counts them;
another user's rows are absent; the audit trail, the logs and the manifest hold the token, never the value."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from assets import commerce, events
from lakehouse import audit, catalog, erasure, landing, storage, subject_export
from orchestration import features as fa
from orchestration.factory import domain_assets
from synthetic.commerce import generate_day as commerce_day
from synthetic.events import generate_day as events_day
from tests.helpers import run_assets

DAY = dt.date(2024, 1, 2)


def _users_in(lines, key: str) -> list[str]:
    found = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get(key), str):
            found.append(record[key])
    return found


@pytest.fixture()
def two_domains(lake, instance, tmp_path, monkeypatch):
    """One day of commerce (with its customer features online) and of events; two users with orders in
    commerce and events of their own."""
    monkeypatch.setenv("LAKEHOUSE_FEAST_DIR", str(tmp_path / "feast"))
    monkeypatch.delenv("LAKEHOUSE_FEAST_REDIS", raising=False)
    shop, stream = commerce_day(DAY, 300), events_day(DAY, 300)
    shop.write(lake, "commerce")
    stream.write(lake, "events")
    in_events = set(_users_in([line for f in stream.sources["events"] for line in f], "userId"))
    ordering = _users_in([line for f in shop.sources["orders"] for line in f], "user_id")
    both = list(dict.fromkeys(u for u in ordering if u in in_events))
    assert len(both) >= 2, "the generators share a population: some users order and emit events"
    wanted = {fa.REGISTRY_KEY, fa.view_key("customer_order_stats")}
    assets = [
        *domain_assets(commerce.DATASETS),
        *domain_assets(events.DATASETS),
        *(f for f in fa.ASSETS if set(f.keys) & wanted),
    ]
    assert run_assets(instance, assets, DAY).success
    return both[0], both[1]


def _direct_count(spark, lake, entry: dict, column: str, value: str) -> int:
    """Rows of a catalogued table holding the value or its token, by a plain query."""
    token = erasure.subject_token(value, lake.token_key())
    rows = spark.read.format("delta").load(entry["location"])
    fields = {f["name"] for f in entry["schema"]["fields"]}
    if column in fields and entry["layer"] != "quarantine":
        return rows.where(f"{column} IN ('{value}', '{token}')").count()
    text = "record" if "record" in fields else "line"
    return rows.where(f"instr({text}, '\"{value}\"') > 0 OR instr({text}, '\"{token}\"') > 0").count()


def _landing_lines(lake, dataset_id: str, value: str) -> int:
    _, domain, source = dataset_id.split(".")
    return sum(
        line.count(f'"{value}"') > 0
        for uri in landing.source_files(lake, domain, source)
        for line in storage.read_text(lake, uri).splitlines()
    )


def test_an_export_holds_every_row_about_the_subject_and_nobody_else(spark, lake, instance, two_domains):
    from orchestration.definitions import defs

    subject, other = two_domains
    token = erasure.subject_token(subject, lake.token_key())
    request_id = subject_export.file_request(lake, "user_id", subject)
    result = defs.resolve_job_def("export_job").execute_in_process(
        instance=instance, run_config={"ops": {"export_subject": {"config": {"request_id": request_id}}}}
    )
    assert result.success
    output = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"][0]
    archive = output.event_specific_data.metadata["archive"].value
    manifest = json.loads(storage.read_text(lake, f"{archive}/manifest.json"))
    assert manifest["subject_token"] == token and subject not in json.dumps(manifest)
    exported = {d["dataset_id"]: d for d in manifest["datasets"]}
    with_rows = {i for i, d in exported.items() if d["rows"]}
    assert {
        "landing.commerce.orders",
        "raw.commerce.orders",
        "processed.commerce.orders",
        "curated.commerce.customer_order_stats",
        "landing.events.events",
        "raw.events.events",
        "processed.events.events",
        "feature_store.online",
    } <= with_rows
    for dataset_id, d in exported.items():  # each dataset: the rows a direct query finds, at the version read
        rows = storage.read_text(lake, f"{archive}/{d['file']}").splitlines()
        assert len(rows) == d["rows"], dataset_id
        if d["kind"] == "landing":
            assert d["rows"] == _landing_lines(lake, dataset_id, subject), dataset_id
        elif d["kind"] != "online":
            entry = catalog.get_entry(lake, dataset_id)
            assert d["version"] == entry["deltaVersion"], dataset_id
            assert d["rows"] == _direct_count(spark, lake, entry, "user_id", subject), dataset_id
    online = [
        json.loads(r) for r in storage.read_text(lake, f"{archive}/feature_store.online.jsonl").splitlines()
    ]
    assert {r["entityKey"] for r in online} == {token}
    # another user's rows are absent
    other_token = erasure.subject_token(other, lake.token_key())
    for d in exported.values():
        text = storage.read_text(lake, f"{archive}/{d['file']}")
        assert other not in text and other_token not in text, d["dataset_id"]
    # the audit trail and the run's logs hold the token, never the value; the request no longer holds it
    trail = [r for r in audit.read(lake, result.run_id) if r["action"] == "export"]
    assert {r["target"] for r in trail} == {*exported, "*"}
    assert all(r["subject_token"] == token for r in trail)
    assert subject not in json.dumps(trail, default=str)
    logs = " ".join(str(e.user_message) + str(e.dagster_event) for e in instance.all_logs(result.run_id))
    assert subject not in logs
    request = storage.read_text(lake, subject_export.request_uri(lake, request_id))
    assert subject not in request and json.loads(request)["status"] == "done"


def test_an_export_refuses_a_short_value_and_an_unknown_column_without_printing_the_value(lake, capsys):
    from orchestration.cli import main

    assert main(["export-subject", "user_id", "ab"]) == 1
    assert "too short to match safely" in capsys.readouterr().err
    assert main(["export-subject", "nobody_id", "someone-7"]) == 1
    error = capsys.readouterr().err
    assert "no catalogued dataset names 'nobody_id'" in error and "someone-7" not in error
    assert audit.read(lake) == []  # nothing exported, nothing audited
