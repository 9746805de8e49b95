"""A dataset's expectation suite: the rules its declaration implies plus the rules it declares (`checks`).

The implied rules are the day and primary key present, the key unique per day, the region allowed and
tenant and region complete; the declared ones live on each dataset, in its domain's module, and cover
the event-driven data architecture document: required fields, types, formats, ranges and business
rules, referential integrity and the completeness / validity / consistency targets.
"""

from __future__ import annotations

from typing import cast

from lakehouse.datasets import Dataset
from quality.rules import Rule, complete, one_of, required, unique


def derived_rules(dataset: Dataset) -> list[Rule]:
    """What the declaration already says: day and key present, key unique per day, residency, tenancy."""
    key = tuple(c for c in dataset.primary_key if c != "dt")
    rules = required("dt", *key)
    if dataset.primary_key:
        rules.append(unique("dt", *key))
    if dataset.allowed_regions and dataset.region_column:
        rules.append(one_of(dataset.region_column, dataset.allowed_regions))
    rules += complete(*[c for c in (dataset.tenant_column, dataset.region_column) if c])
    return rules


def suite_rules(dataset: Dataset) -> list[Rule]:
    """The dataset's whole suite; rule names are unique (a declared rule replaces a derived one of its
    name)."""
    rules = {rule.name: rule for rule in derived_rules(dataset)}
    rules.update({rule.name: cast(Rule, rule) for rule in dataset.checks})
    return list(rules.values())


def reference_paths(dataset: Dataset) -> list[str]:
    """Datasets the suite's referential rules read: they must be built before the dataset's checks run."""
    return sorted({rule.reference[0] for rule in suite_rules(dataset) if rule.reference} - {dataset.path})
