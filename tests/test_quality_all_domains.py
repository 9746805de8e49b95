"""Every domain, one clean day, through Dagster: every processed and curated dataset has its suite's checks,
a clean partition passes every one, the metrics table and the catalog say so."""

from __future__ import annotations

import datetime as dt
import importlib

import dagster as dg

from assets import DATASETS, DOMAINS, domain_datasets
from lakehouse import catalog
from orchestration import cli
from orchestration.cli import GENERATORS
from orchestration.definitions import defs
from orchestration.factory import domain_assets
from quality import metrics
from tests.helpers import run_assets

DAY = dt.date(2024, 1, 5)
ROWS = {"events": 600, "commerce": 300, "finance": 300, "iot": 1_500, "ai_ops": 300}


def test_a_clean_partition_passes_every_check_of_every_domain(spark, lake, instance, capsys):
    for domain in GENERATORS:  # the usage domain has no landing data: it is built from the others
        importlib.import_module(GENERATORS[domain]).generate_day(DAY, ROWS[domain], bad_share=0).write(
            lake, domain
        )
    result = run_assets(instance, domain_assets(DATASETS), DAY)
    assert result.success

    gated = [d for d in DATASETS if d.layer != "raw"]
    evaluations = result.get_asset_check_evaluations()
    failed = [(e.asset_key.to_user_string(), e.check_name, e.metadata) for e in evaluations if not e.passed]
    assert failed == []
    checked = {e.asset_key for e in evaluations}
    assert checked == {dg.AssetKey(d.key_path) for d in gated}
    assert len(evaluations) >= 5 * len(gated)

    seconds = {
        d.path: instance.get_latest_materialization_event(dg.AssetKey(d.key_path))
        .asset_materialization.metadata["quality_seconds"]
        .value
        for d in gated
    }
    print("quality seconds per step:", seconds, "total", round(sum(seconds.values()), 2))
    for dataset in gated:
        table = spark.read.format("delta").load(lake.table_uri(*metrics.metrics_path(dataset).split("/")))
        row = table.where(f"dt = DATE'{DAY}'").collect()
        assert len(row) == 1 and row[0]["status"] == "passed" and row[0]["checks_failed"] == 0, dataset.path
        # a private release may publish no cell of a small day (all below its threshold)
        assert (row[0]["rows"] > 0 or dataset.privacy) and row[0]["completeness"] in (None, 1.0), (
            dataset.path,
            row[0],
        )
        assert row[0]["validity"] in (None, 1.0) and row[0]["consistency"] in (None, 1.0), (
            dataset.path,
            row[0],
        )
        assert catalog.get_entry(lake, catalog.dataset_id(dataset.path))["qualityStatus"] == "passed"

    for domain in DOMAINS:
        [summary] = (
            spark.read.format("delta").load(lake.table_uri("curated", domain, "quality_summary")).collect()
        )
        gated_here = [d for d in domain_datasets(domain) if d.layer != "raw"]  # YAML declarations too
        assert (summary["dt"], summary["domain"], summary["datasets"]) == (DAY, domain, len(gated_here))
        assert (summary["status"], summary["meets_targets"], summary["checks_failed"]) == ("passed", True, 0)
        # a domain without processed datasets (usage) has no quarantine rate
        rate = 0.0 if any(d.layer == "processed" for d in gated_here) else None
        assert summary["quarantined_rows"] == 0 and summary["quarantine_rate"] == rate
        assert summary["checks_passed"] == sum(
            len(e)
            for e in [[x for x in evaluations if x.asset_key == dg.AssetKey(d.key_path)] for d in gated_here]
        )

    undescribed = {}
    for dataset in (d for d in DATASETS if d.layer == "curated"):
        metadata = instance.get_latest_materialization_event(
            dg.AssetKey(dataset.key_path)
        ).asset_materialization.metadata
        columns = metadata["dagster/column_schema"].schema.columns
        entry = {
            f["name"]: f["description"]
            for f in catalog.get_entry(lake, catalog.dataset_id(dataset.path))["schema"]["fields"]
        }
        assert {c.name: c.description for c in columns} == entry, dataset.path  # the UI and the catalog agree
        undescribed[dataset.path] = [c.name for c in columns if not c.description]
    missing = {path: names for path, names in undescribed.items() if names}
    assert missing == {}, f"curated columns without a description: {missing}"

    capsys.readouterr()
    assert cli.main(["quality"]) == 0
    printed = {line.split()[0]: line.split()[1:6] for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(printed) == {d.path.replace("/", ".") for d in gated}
    for dataset in gated:
        partitions, status, passed, failed, quarantined = printed[dataset.path.replace("/", ".")]
        assert (partitions, status, failed, quarantined) == ("1", "passed", "0", "0"), dataset.path
        assert int(passed) == len([e for e in evaluations if e.asset_key == dg.AssetKey(dataset.key_path)])


def test_every_gated_dataset_has_its_suite_blocking_checks_and_a_freshness_check():
    graph = defs.resolve_asset_graph()
    checks = {(key.asset_key, key.name) for key in graph.asset_check_keys}
    for dataset in (d for d in DATASETS if d.layer != "raw"):
        key = dg.AssetKey(dataset.key_path)
        specs = list(defs.resolve_assets_def(key).check_specs)
        assert {s.name for s in specs} >= {"dt_present"}, dataset.path
        assert any(s.blocking for s in specs), dataset.path  # at least the key / day rules gate downstream
        assert (key, "freshness_check") in checks, dataset.path
        assert dg.AssetKey(metrics.metrics_path(dataset).split("/")) in graph.get_all_asset_keys()
    orders = {
        s.name: s.blocking
        for s in defs.resolve_assets_def(dg.AssetKey(["processed", "commerce", "orders"])).check_specs
    }
    assert orders["user_id_in_users"] and orders["total_amount_positive"] and orders["rows_reconcile"]
    assert not orders["accepted_share"] and not orders["region_present"]
    # the referenced users are built before the orders' checks read them
    assert (
        dg.AssetKey(["processed", "commerce", "users"])
        in graph.get(dg.AssetKey(["processed", "commerce", "orders"])).parent_keys
    )
