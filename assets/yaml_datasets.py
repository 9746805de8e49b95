"""Datasets declared in YAML: `assets/<domain>/<dataset>/defs.yaml`, the file `dg scaffold defs` writes for
`orchestration.components.DatasetComponent`.

The attributes are read here with plain YAML, so the CLI, the catalog and the quality summaries see these
datasets without loading Dagster; the component turns its attributes into a `Dataset` with the same
`dataset_from` (one mapping, so a YAML dataset is exactly the declaration a Python one would be).
Values are literal: Dagster's `{{ }}` templates are not rendered here, and are refused.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import DataFrame

from lakehouse.datasets import Classification, Dataset, Protection
from lakehouse.delta import SchemaPolicy
from quality import rules
from quality.rules import Dimension, Rule, Severity

COMPONENT_TYPE = "orchestration.components.DatasetComponent"
ROOT = Path(__file__).parent
# A check in YAML names one of the rule constructors and passes it its arguments by name:
# `{rule: between, column: quantity, min_value: 1, name: quantity_at_least_one}`; `columns: [a, b]` feeds the
# ones that take several columns (required, complete, unique).
RULES: dict[str, Callable[..., Rule | list[Rule]]] = {
    "required": rules.required,
    "complete": rules.complete,
    "unique": rules.unique,
    "between": rules.between,
    "one_of": rules.one_of,
    "matches": rules.matches,
    "holds": rules.holds,
    "typed": rules.typed,
    "references": rules.references,
}
TUPLES = ("upstream", "primary_key", "deduplicate_on", "subject_columns", "allowed_regions")


def rules_from(check: Mapping[str, Any]) -> list[Rule]:
    """The rules of one YAML check, built by the constructor it names (a constructor may return several)."""
    arguments = dict(check)
    name = arguments.pop("rule", None)
    if name not in RULES:
        raise ValueError(f"check {dict(check)}: `rule` must be one of {sorted(RULES)}")
    constructor = RULES[name]
    if "severity" in arguments:
        arguments["severity"] = Severity(arguments["severity"])
    if "dimension" in arguments:
        arguments["dimension"] = Dimension(arguments["dimension"])
    if "values" in arguments:
        arguments["values"] = tuple(arguments["values"])
    columns = arguments.pop("columns", None)
    variadic = any(p.kind is p.VAR_POSITIONAL for p in inspect.signature(constructor).parameters.values())
    if variadic:
        single = arguments.pop("column", None)
        columns = columns if columns is not None else [single] if single is not None else []
    elif columns is not None:
        raise ValueError(f"check {dict(check)}: {name} takes one `column`, not `columns`")
    try:
        built = constructor(*(columns if variadic else ()), **arguments)
    except TypeError as error:
        raise ValueError(f"check {dict(check)}: {error}") from None
    return built if isinstance(built, list) else [built]


def transform_at(path: str) -> Callable[..., DataFrame]:
    """The function at an importable path such as `transforms.commerce.orders_by_status`."""
    module, _, attribute = path.rpartition(".")
    function = getattr(importlib.import_module(module), attribute, None) if module else None
    if not callable(function):
        raise ValueError(f"transform {path!r} is not an importable function (module.function)")
    return function


def _literal(value: Any, where: str) -> None:
    if isinstance(value, str) and "{{" in value:
        raise ValueError(f"{where}: templates are not rendered in dataset declarations ({value!r})")
    for item in value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else ():
        _literal(item, where)


def dataset_from(attributes: Mapping[str, Any]) -> Dataset:
    """The declaration a defs.yaml's `attributes` describe (keys as `Dataset`'s fields; lists for tuples)."""
    values = {key: value for key, value in attributes.items() if value is not None}
    _literal(values, f"dataset {values.get('domain')}/{values.get('name')}")
    for key in TUPLES:
        if key in values:
            values[key] = tuple(values[key])
    if "transform" in values:
        values["transform"] = transform_at(values["transform"])
    if "schema_policy" in values:
        values["schema_policy"] = SchemaPolicy(values["schema_policy"])
    for key, kind in (
        ("column_lineage", tuple),
        ("subject_paths", tuple),
        ("classification", Classification),
        ("personal_data", Protection),
    ):
        if key in values:
            values[key] = {column: kind(value) for column, value in values[key].items()}
    values["checks"] = tuple(rule for check in values.get("checks", ()) for rule in rules_from(check))
    try:
        return Dataset(**values)
    except TypeError as error:
        raise ValueError(f"dataset {values.get('domain')}/{values.get('name')}: {error}") from None


def declaration_files(root: Path = ROOT) -> list[Path]:
    """Every `<domain>/<dataset>/defs.yaml` under the defs folder."""
    return sorted(root.glob("*/*/defs.yaml"))


def load(domains: Iterable[str], root: Path = ROOT) -> tuple[Dataset, ...]:
    """The YAML declarations of the known domains; each lives in `<domain>/<name>/defs.yaml`."""
    known, found = set(domains), []
    for path in declaration_files(root):
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("type") == COMPONENT_TYPE]
        for document in documents:
            dataset = dataset_from(document.get("attributes") or {})
            where = path.relative_to(root).parent
            if (dataset.domain, dataset.name) != (
                where.parent.name,
                where.name,
            ) or dataset.domain not in known:
                raise ValueError(
                    f"{path}: a dataset of a known domain ({sorted(known)}) lives in "
                    f"<domain>/<name>/defs.yaml, not {dataset.domain}/{dataset.name} in {where}"
                )
            found.append(dataset)
    return tuple(found)
