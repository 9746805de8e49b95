"""Every domain's dataset declarations: what the lake holds. Orchestration turns them into Dagster assets;
the CLI, the catalog and the governance jobs read them from here without loading the code location.

A dataset is declared in Python (in `assets/<domain>/__init__.py`) or in YAML
(`assets/<domain>/<dataset>/defs.yaml`, scaffolded with `dg scaffold defs`): both are `Dataset`s here."""

from types import ModuleType

from assets import ai_ops, commerce, events, finance, iot, usage, yaml_datasets
from lakehouse.datasets import Dataset
from quality.summary import summary_dataset

DOMAINS: dict[str, ModuleType] = {
    "events": events,
    "commerce": commerce,
    "finance": finance,
    "iot": iot,
    "ai_ops": ai_ops,
    "usage": usage,
}
DECLARED_IN_YAML: tuple[Dataset, ...] = yaml_datasets.load(DOMAINS)


def domain_datasets(domain: str) -> tuple[Dataset, ...]:
    """A domain's declarations, Python then YAML (its quality summary excluded)."""
    return (*DOMAINS[domain].DATASETS, *(d for d in DECLARED_IN_YAML if d.domain == domain))


QUALITY_SUMMARIES: dict[str, Dataset] = {
    domain: summary_dataset(domain, domain_datasets(domain)) for domain in DOMAINS
}
DATASETS: list[Dataset] = [
    dataset for domain in DOMAINS for dataset in (*domain_datasets(domain), QUALITY_SUMMARIES[domain])
]


def declarations(*, yaml: bool = True) -> list[Dataset]:
    """Every dataset of the lake: Python and YAML declarations and each domain's quality summary.
    `yaml=False` leaves the YAML ones out, for the code location, whose components build those."""
    return [d for d in DATASETS if yaml or d not in DECLARED_IN_YAML]
