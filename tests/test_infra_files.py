"""The deployment files are valid and agree with what `make` and the tests use: manifests against the schemas
of the Kubernetes version each declares, the image installs as `make install` does, the cluster's concurrency
is the embedded one, the Spark Connect jars are infra/spark/pom.xml's, and the IAM and lifecycle rules fit
the lake's prefixes."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO

INFRA = REPO / "infra"
MANIFESTS = sorted((INFRA / "k8s").glob("*.yaml"))


def _target(path) -> str:
    found = re.search(r"^# Targets Kubernetes (\d+\.\d+)", path.read_text(), re.MULTILINE)
    assert found, f"{path.name} does not say which Kubernetes version it targets"
    return found.group(1)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_validates_against_its_kubernetes_version(path):
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, f"{_target(path)}.0", strict=True)


def test_an_invalid_manifest_is_refused():
    [deployment] = [
        d
        for d in yaml.safe_load_all((INFRA / "k8s" / "spark-connect.yaml").read_text())
        if d and d["kind"] == "Deployment"
    ]
    deployment["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.34.0", strict=True)
    deployment["spec"]["replicas"] = 1
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy2"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.34.0", strict=True)


def _make_install_commands() -> list[str]:
    """The install recipe of `make install` (`$(VENV)/.installed`), its variables expanded as the image names
    them: the venv in the working directory, the interpreter on the PATH."""
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^\$\(VENV\)/\.installed:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1)
    variables = dict(re.findall(r"^(VENV|BIN) := (.*)$", makefile, re.MULTILINE))
    commands = []
    for line in recipe.splitlines():
        if " install " not in line or line.strip().startswith("@"):
            continue
        command = line.strip().replace("$(BIN)", variables["BIN"]).replace("$(VENV)", variables["VENV"])
        commands.append(command.replace("$(VENV)", variables["VENV"]))
    return commands


def test_the_image_installs_exactly_as_make_install():
    dockerfile = (INFRA / "Dockerfile").read_text()
    commands = _make_install_commands()
    assert len(commands) == 2 and '"uv>=' in commands[0] and "uv pip install" in commands[1]
    run = re.search(r"^RUN (.*?)(?<!\\)\n", dockerfile, re.MULTILINE | re.DOTALL).group(1)
    steps = [step.strip().rstrip("\\").strip() for step in run.replace("\\\n", "\n").split("&&")]
    assert [s for s in steps if " install " in s and "useradd" not in s] == commands
    assert re.search(r"^FROM python:3\.11\.\d+-slim-\w+$", dockerfile, re.MULTILINE)  # a pinned base
    assert re.search(r"^USER 10001:10001$", dockerfile, re.MULTILINE)  # not root
    # every package the project installs is in the image
    packages = re.search(r"^include = \[(.*)\]$", (REPO / "pyproject.toml").read_text(), re.MULTILINE).group(
        1
    )
    for package in re.findall(r'"(\w+)\*"', packages):
        assert f"COPY {package} {package}\n" in dockerfile, package
    ignored = (INFRA / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", ".lakehouse", ".git"} <= set(ignored)  # no local state or keys in the image


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def test_the_cluster_has_the_concurrency_of_the_embedded_setup():
    embedded = yaml.safe_load((INFRA / "dagster.yaml").read_text())["concurrency"]
    postgres = yaml.safe_load((INFRA / "postgres" / "dagster.yaml").read_text())
    helm = yaml.safe_load((INFRA / "helm" / "dagster-values.yaml").read_text())["concurrency"]
    assert postgres["concurrency"] == embedded
    assert {group: {_snake(k): v for k, v in values.items()} for group, values in helm.items()} == embedded
    assert postgres["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_POSTGRES_URL"}
    # a dead run's pool slots are freed (else its tables' next writers wait forever)
    monitoring = postgres["run_monitoring"]
    assert monitoring["enabled"] and monitoring["free_slots_after_run_end_seconds"] > 0
    chart = yaml.safe_load((INFRA / "helm" / "dagster-values.yaml").read_text())["dagsterDaemon"]
    chart = chart["runMonitoring"]
    assert chart["enabled"] and chart["freeSlotsAfterRunEndSeconds"] > 0


def test_spark_connect_loads_the_jars_of_the_local_cluster():
    pom = ET.parse(INFRA / "spark" / "pom.xml").getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    properties = {p.tag.split("}")[1]: p.text for p in pom.find("m:properties", ns)}
    [config] = [
        d
        for d in yaml.safe_load_all((INFRA / "k8s" / "spark-connect.yaml").read_text())
        if d and d["kind"] == "ConfigMap"
    ]
    lines = config["data"]["spark-defaults.conf"].splitlines()
    defaults = dict(line.split(None, 1) for line in lines if line)
    assert defaults["spark.jars.packages"].split(",") == [
        f"io.delta:delta-spark_4.1_2.13:{properties['delta.version']}",
        f"org.apache.hadoop:hadoop-aws:{properties['hadoop.version']}",
    ]
    assert defaults["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    import pyspark

    assert defaults["spark.kubernetes.container.image"].startswith(f"apache/spark:{pyspark.__version__}-")


def _grants(policy: dict, effect: str = "Allow") -> dict[str, set[str]]:
    """Lake prefix -> the object actions `effect` statements give on it."""
    grants: dict[str, set[str]] = {}
    for statement in policy["Statement"]:
        resources = statement["Resource"]
        for resource in resources if isinstance(resources, list) else [resources]:
            if statement["Effect"] == effect and resource.endswith("/*"):
                prefix = resource.split(":::", 1)[1].split("/", 2)[2].removesuffix("/*")
                grants.setdefault(prefix, set()).update(statement["Action"])
    return grants


def test_the_iam_policies_give_each_lake_prefix_least_privilege():
    import json

    from lakehouse.config import LAYERS

    pipeline = json.loads((INFRA / "aws" / "iam-pipeline-policy.json").read_text())
    allowed, denied = _grants(pipeline), _grants(pipeline, "Deny")
    written = {
        *LAYERS,
        *("curated", "catalog", "features", "_staging", "_lakehouse", "_review", "privacy", "exports"),
    } - {"landing"}
    assert {prefix for prefix, actions in allowed.items() if "s3:PutObject" in actions} == written | {"audit"}
    assert allowed["landing"] == {"s3:GetObject", "s3:DeleteObject"}
    assert "s3:DeleteObject" not in allowed["audit"] and "s3:DeleteObject" in denied["audit"]
    erasure = json.loads((INFRA / "aws" / "iam-erasure-policy.json").read_text())
    assert set(_grants(erasure)) == {"landing"}
    api = json.loads((INFRA / "aws" / "iam-catalog-api-policy.json").read_text())
    assert _grants(api) == {"catalog": {"s3:GetObject"}}
    [listing] = [s for s in api["Statement"] if s["Action"] == ["s3:ListBucket"]]
    assert listing["Condition"]["StringLike"]["s3:prefix"] == ["prod/catalog/*"]


def test_the_lifecycle_rules_follow_the_tiers_and_never_expire_landing_before_retention():
    import json

    from lakehouse.retention import DEFAULT_SAFETY_WINDOW_HOURS

    lifecycle = json.loads((INFRA / "aws" / "s3-lifecycle.json").read_text())
    rules = {rule["ID"]: rule for rule in lifecycle["Rules"]}
    landing = rules["landing-expiry"]
    # after the pipeline's own retention of landing (7 days) and its safety window
    assert landing["Expiration"]["Days"] > 7 + DEFAULT_SAFETY_WINDOW_HOURS / 24
    for layer in ("raw", "processed", "curated", "quarantine", "audit"):
        rule = rules[f"tiers-{layer}"]
        assert [(t["Days"], t["StorageClass"]) for t in rule["Transitions"]] == [
            (8, "INTELLIGENT_TIERING"),
            (90, "GLACIER_IR"),
        ]  # warm 8-90, cold 90+, still readable in place
        assert rule["Filter"]["And"]["ObjectSizeGreaterThan"] >= 128 * 1024  # Delta logs stay in Standard


def test_the_image_can_load_the_instance_the_chart_writes():
    """Every run pod of the code location image loads the chart's dagster.yaml: its run launcher and storage
    classes must be dependencies of the project, not of the chart's own images only."""
    import importlib
    from importlib.metadata import requires

    names = {re.split(r"[<>=\[ ;]", requirement, maxsplit=1)[0] for requirement in requires("lakehouse")}
    assert {"dagster-k8s", "dagster-postgres"} <= names
    for module, cls in (
        ("dagster_k8s.launcher", "K8sRunLauncher"),
        ("dagster_postgres.run_storage", "PostgresRunStorage"),
        ("dagster_postgres.event_log", "PostgresEventLogStorage"),
        ("dagster_postgres.schedule_storage", "PostgresScheduleStorage"),
    ):
        assert hasattr(importlib.import_module(module), cls)
