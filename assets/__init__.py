"""Every domain's dataset declarations: what the lake holds. Orchestration turns them into Dagster assets;
the CLI, the catalog and the governance jobs read them from here without loading the code location."""

from types import ModuleType

from assets import ai_ops, commerce, events, finance, iot
from lakehouse.datasets import Dataset
from quality.summary import summary_dataset

DOMAINS: dict[str, ModuleType] = {
    "events": events,
    "commerce": commerce,
    "finance": finance,
    "iot": iot,
    "ai_ops": ai_ops,
}
QUALITY_SUMMARIES: dict[str, Dataset] = {
    domain: summary_dataset(domain, module.DATASETS) for domain, module in DOMAINS.items()
}
DATASETS: list[Dataset] = [
    dataset for domain, module in DOMAINS.items() for dataset in (*module.DATASETS, QUALITY_SUMMARIES[domain])
]
