"""The dataset declaration as a Dagster component: `dg scaffold defs orchestration.components.DatasetComponent
<domain>/<name>` writes `assets/<domain>/<name>/defs.yaml`, whose attributes are the fields of a `Dataset`.

The component only maps: `assets.yaml_datasets.dataset_from` turns the attributes into the `Dataset` (the
same function the CLI and the quality summaries read YAML with) and `build_defs` builds it with the
factory every Python declaration goes through, so the asset, checks, pool, metadata, catalog entry and
lineage are the same as a Python declaration's.
"""

import re
from pathlib import Path
from typing import Literal

import dagster as dg
import yaml
from pydantic import BaseModel

from assets.yaml_datasets import COMPONENT_TYPE, RULES, dataset_from
from lakehouse.datasets import LAYERS, Classification, Dataset, Protection
from lakehouse.delta import SchemaPolicy
from orchestration.factory import domain_assets
from quality.rules import Dimension, Severity

NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Check(dg.Model):
    """One table rule: `rule` names a constructor of quality/rules.py, the other keys are its arguments."""

    rule: Literal[tuple(RULES)]  # type: ignore[valid-type]
    column: str | None = None
    columns: list[str] | None = None  # required, complete, unique: several columns
    name: str | None = None  # between: the rule's name
    min_value: int | float | None = None
    max_value: int | float | None = None
    strict_min: bool | None = None
    values: list[str | int | float | bool] | None = None  # one_of
    pattern: str | None = None  # matches: a regular expression
    format_name: str | None = None  # matches: names the rule <column>_is_<format_name>
    flag: str | None = None  # holds: a boolean column
    type_name: str | None = None  # typed: e.g. TimestampType
    dataset: str | None = None  # references: layer/domain/name
    target_column: str | None = None  # references
    severity: Literal[tuple(s.value for s in Severity)] | None = None  # type: ignore[valid-type]
    mostly: float | None = None
    dimension: Literal[tuple(d.value for d in Dimension)] | None = None  # type: ignore[valid-type]


class DatasetScaffoldParams(BaseModel):
    """What `dg scaffold defs` can fill in besides the name and domain it reads from the path."""

    layer: Literal[LAYERS] = "curated"  # type: ignore[valid-type]
    owner: str | None = None
    upstream: str | None = None  # comma-separated layer/domain/name
    transform: str | None = None


class DatasetScaffolder(dg.Scaffolder[DatasetScaffoldParams]):
    """Writes `<domain>/<name>/defs.yaml` with the name and domain taken from the path."""

    @classmethod
    def get_scaffold_params(cls) -> type[DatasetScaffoldParams]:
        return DatasetScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[DatasetScaffoldParams]) -> None:
        target, params = Path(request.target_path), request.params or DatasetScaffoldParams()
        name, domain = target.name, target.parent.name
        if not (NAME.match(name) and NAME.match(domain)):
            raise ValueError(f"scaffold a dataset at <domain>/<name> in snake_case, not {domain}/{name}")
        upstream = [path.strip() for path in (params.upstream or "").split(",") if path.strip()]
        attributes = {
            "name": name,
            "domain": domain,
            "layer": params.layer,
            "owner": params.owner or f"team:{domain}",
            "description": f"TODO: what one row of {domain}.{name} is, and for whom.",
            "upstream": upstream
            or [f"{'raw' if params.layer == 'processed' else 'processed'}/{domain}/TODO"],
            "transform": params.transform or f"transforms.{domain}.{name}",
            "primary_key": ["dt"],
            "retention_days": 1095 if params.layer == "curated" else 365,
            "columns": {},
            "checks": [],
        }
        if params.layer == "raw":
            attributes = {
                **{k: attributes[k] for k in ("name", "domain", "layer", "owner", "description")},
                "landing": name,
                "retention_days": 90,
            }
        target.mkdir(parents=True, exist_ok=True)
        (target / "defs.yaml").write_text(
            yaml.safe_dump({"type": COMPONENT_TYPE, "attributes": attributes}, sort_keys=False)
        )


@dg.scaffold_with(DatasetScaffolder)
class DatasetComponent(dg.Component, dg.Model, dg.Resolvable):
    """A daily-partitioned Delta table of the lake, declared in YAML: the fields of
    `lakehouse.datasets.Dataset` (tuples as lists, `transform` as an importable path such as
    `transforms.commerce.orders_by_status`, `checks` as rules named after quality/rules.py)."""

    name: str
    domain: str
    layer: Literal[LAYERS]  # type: ignore[valid-type]
    description: str
    owner: str
    transform: str | None = None
    upstream: list[str] = []
    landing: str | None = None
    landing_format: str = "jsonl"
    primary_key: list[str] = []
    deduplicate_on: list[str] = []
    schema_policy: Literal[tuple(p.value for p in SchemaPolicy)] = SchemaPolicy.STRICT.value  # type: ignore
    quarantine: bool = False
    columns: dict[str, str] = {}
    column_lineage: dict[str, list[str]] = {}
    classification: dict[str, Literal[tuple(c.value for c in Classification)]] = {}  # type: ignore
    personal_data: dict[str, Literal[tuple(p.value for p in Protection)]] = {}  # type: ignore
    subject_columns: list[str] = []
    subject_paths: dict[str, list[str]] = {}
    tenant_column: str | None = None
    region_column: str | None = None
    allowed_regions: list[str] = []
    retention_days: int = 365
    checks: list[Check] = []

    def dataset(self) -> Dataset:
        """The declaration these attributes describe."""
        attributes = self.model_dump(exclude={"checks"})
        attributes["checks"] = [check.model_dump(exclude_none=True) for check in self.checks]
        return dataset_from(attributes)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return dg.Definitions(assets=domain_assets([self.dataset()]))
