"""The dataset component: `dg` sees the project (list, check, scaffold), a YAML declaration is the `Dataset` a
Python one would be, and the code location and the CLI's declarations hold every dataset once."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dagster as dg
import pydantic
import pytest
import yaml

import assets
from assets import yaml_datasets
from orchestration.components import DatasetComponent, DatasetScaffolder, DatasetScaffoldParams
from orchestration.factory import dataset_specs, pool_for
from quality import suites
from quality.rules import Severity, between, one_of, references, required, unique
from tests.conftest import REPO
from transforms import commerce as t

DG = Path(sys.executable).parent / "dg"
KEY = "curated/commerce/orders_by_status"


def _dg(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    venv = Path(sys.executable).parent.parent
    env = {
        **os.environ,
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "NO_COLOR": "1",
    }
    return subprocess.run([str(DG), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_declarations_are_read_without_dagster():
    # What the CLI does: every declaration, the YAML ones included, and Dagster is not even imported.
    code = "import sys, assets; print(len(assets.declarations()), 'dagster' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(assets.declarations())), "False"]
    assert KEY in {d.path for d in assets.declarations()}


def test_yaml_names_the_component_class():
    assert yaml_datasets.COMPONENT_TYPE == f"{DatasetComponent.__module__}.{DatasetComponent.__qualname__}"


def test_a_yaml_declaration_is_the_dataset_python_would_declare():
    component = dg.ComponentTree.for_project(REPO).load_component(
        "commerce/orders_by_status", DatasetComponent
    )
    by_path = Counter(d.path for d in assets.declarations())
    assert by_path[KEY] == 1 and max(by_path.values()) == 1
    declared = next(d for d in assets.declarations() if d.path == KEY)
    assert component.dataset() == declared
    assert (
        declared.transform is t.orders_by_status
        and declared.classification["revenue"].value == "confidential"
    )
    assert declared.checks == (
        *required("orders", "revenue"),
        one_of("status", t.ORDER_STATUSES),
        one_of("currency", t.CURRENCIES),
        between("orders", 1, name="orders_at_least_one"),
        between("revenue", 0, name="revenue_not_negative"),
    )
    assert declared not in assets.declarations(yaml=False)
    # The domain's quality summary reads its metrics like any Python dataset's.
    assert "quality/commerce/curated_orders_by_status" in assets.QUALITY_SUMMARIES["commerce"].upstream


def test_checks_map_onto_the_rule_constructors_by_name():
    rules = yaml_datasets.rules_from
    assert rules({"rule": "unique", "columns": ["dt", "order_id"]}) == [unique("dt", "order_id")]
    assert rules({"rule": "required", "column": "x", "severity": "warn"}) == required(
        "x", severity=Severity.WARN
    )
    assert rules({"rule": "references", "column": "user_id", "dataset": "processed/commerce/users"}) == [
        references("user_id", "processed/commerce/users")
    ]
    with pytest.raises(ValueError, match="must be one of"):
        rules({"rule": "no_such_rule", "column": "x"})
    with pytest.raises(ValueError, match="name"):
        rules({"rule": "between", "column": "x", "min_value": 1})  # a range rule needs its name
    with pytest.raises(ValueError, match="not `columns`"):
        rules({"rule": "one_of", "columns": ["a", "b"], "values": [1]})


def test_the_component_refuses_what_a_declaration_would():
    attributes = yaml.safe_load((REPO / "assets/commerce/orders_by_status/defs.yaml").read_text())[
        "attributes"
    ]
    with pytest.raises(pydantic.ValidationError):  # an attribute Dataset does not have: refused by the schema
        DatasetComponent.from_attributes_dict(attributes={**attributes, "colums": {}})
    with pytest.raises(ValueError, match="importable"):
        DatasetComponent.from_attributes_dict(
            attributes={**attributes, "transform": "transforms.commerce.nope"}
        ).dataset()
    with pytest.raises(ValueError, match="needs upstream"):
        yaml_datasets.dataset_from({**attributes, "upstream": []})
    with pytest.raises(ValueError, match="templates"):
        yaml_datasets.dataset_from({**attributes, "owner": "{{ env.OWNER }}"})


def test_the_code_location_builds_every_declaration_once_through_the_factory():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert {dg.AssetKey(d.key_path) for d in assets.declarations()} <= keys
    yaml_asset = defs.resolve_assets_def(dg.AssetKey(KEY.split("/")))
    declared = next(d for d in assets.declarations() if d.path == KEY)

    # The same asset a Python declaration gets (specs, checks, pool, job), plus dg's link to its defs.yaml.
    def spec(s: dg.AssetSpec) -> tuple:
        return (
            s.deps,
            s.tags,
            s.owners,
            s.group_name,
            s.code_version,
            s.description,
            {
                k: v
                for k, v in s.metadata.items()
                if k not in ("dagster/code_references", "dagster/component_origin")
            },
        )

    assert {s.key: spec(s) for s in yaml_asset.specs} == {s.key: spec(s) for s in dataset_specs(declared)}
    assert all("dagster/code_references" in s.metadata for s in yaml_asset.specs)
    assert {c.name for c in yaml_asset.check_specs} == {r.name for r in suites.suite_rules(declared)}
    assert yaml_asset.node_def.pool == pool_for(KEY)
    assert (
        dg.AssetKey(KEY.split("/")) in defs.resolve_job_def("commerce_daily").asset_layer.selected_asset_keys
    )


def test_the_scaffold_of_a_raw_dataset_is_a_raw_declaration(tmp_path):
    target = tmp_path / "assets" / "iot" / "firmware"
    request = dg.ScaffoldRequest(
        type_name=yaml_datasets.COMPONENT_TYPE,
        target_path=target,
        scaffold_format="yaml",
        project_root=tmp_path,
        params=DatasetScaffoldParams(layer="raw"),
    )
    DatasetScaffolder().scaffold(request)
    [dataset] = yaml_datasets.load(assets.DOMAINS, tmp_path / "assets")
    assert (dataset.path, dataset.landing, dataset.retention_days, dataset.owner) == (
        "raw/iot/firmware",
        "firmware",
        90,
        "team:iot",
    )
    with pytest.raises(ValueError, match="snake_case"):
        DatasetScaffolder().scaffold(
            dataclasses.replace(request, target_path=tmp_path / "assets" / "iot" / "Bad")
        )


def test_dg_lists_the_component_and_checks_and_lists_the_defs():
    components = _dg("list", "components", "--json")
    assert components.returncode == 0, components.stderr
    assert "orchestration.components.DatasetComponent" in {
        c["key"] for c in json.loads(components.stdout)["items"]
    }
    checked = _dg("check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    listed = _dg("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    listed_keys = Counter(a["asset_key"] for a in json.loads(listed.stdout)["assets"])
    assert listed_keys[KEY] == 1
    assert {d.path for d in assets.declarations()} <= set(listed_keys)


def test_dg_scaffold_defs_writes_a_declaration_that_loads(tmp_path):
    # A copy of the project's dg configuration and defs folder: the scaffold writes into the copy only.
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copytree(REPO / "assets", tmp_path / "assets", ignore=shutil.ignore_patterns("__pycache__"))
    scaffolded = _dg(
        "scaffold",
        "defs",
        "orchestration.components.DatasetComponent",
        "commerce/status_mix",
        "--upstream",
        "processed/commerce/orders",
        "--transform",
        "transforms.commerce.orders_by_status",
        cwd=tmp_path,
    )
    assert scaffolded.returncode == 0, scaffolded.stdout + scaffolded.stderr
    document = yaml.safe_load((tmp_path / "assets/commerce/status_mix/defs.yaml").read_text())
    assert document["type"] == yaml_datasets.COMPONENT_TYPE
    assert {k: document["attributes"][k] for k in ("name", "domain", "layer", "owner", "upstream")} == {
        "name": "status_mix",
        "domain": "commerce",
        "layer": "curated",
        "owner": "team:commerce",
        "upstream": ["processed/commerce/orders"],
    }
    loaded = {d.path: d for d in yaml_datasets.load(assets.DOMAINS, tmp_path / "assets")}
    assert set(loaded) == {KEY, "curated/commerce/status_mix"}
    component = DatasetComponent.from_attributes_dict(attributes=document["attributes"])
    assert component.dataset() == loaded["curated/commerce/status_mix"]
    assert component.dataset().transform is t.orders_by_status and component.dataset().retention_days == 1095
    checked = _dg("check", "yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
