"""The Feast repository: configuration shared with the CLI and `feature_store.yaml`, and `feast apply`."""

from __future__ import annotations

import importlib.util
import os
import string
from pathlib import Path
from typing import Any

import yaml

from lakehouse.config import PROJECT_DIR, LakehouseConfig

REPO = PROJECT_DIR / "feature_repo"
TIMESTAMP = "event_timestamp"


def feast_dir(config: LakehouseConfig | None = None) -> Path:
    """Where the registry, the SQLite online store and the offline snapshots live."""
    if os.environ.get("LAKEHOUSE_FEAST_DIR"):
        return Path(os.environ["LAKEHOUSE_FEAST_DIR"]).resolve()
    return (config or LakehouseConfig.from_env()).state_dir / "feast"


def offline_dir(config: LakehouseConfig | None = None) -> str:
    """The folder of the Parquet snapshots the feature views' FileSources point to."""
    return str(feast_dir(config) / "offline")


def feast_environment(config: LakehouseConfig | None = None) -> dict[str, str]:
    """The variables `feature_store.yaml` expands, from the environment or their defaults."""
    folder = feast_dir(config)
    online = os.environ.get("LAKEHOUSE_FEAST_ONLINE_STORE")
    if not online:
        redis = os.environ.get("LAKEHOUSE_FEAST_REDIS")
        store = (
            {"type": "redis", "connection_string": redis}
            if redis
            else {"type": "sqlite", "path": str(folder / "online.db")}
        )
        online = yaml.safe_dump(store, default_flow_style=True).strip()
    return {"LAKEHOUSE_FEAST_DIR": str(folder), "LAKEHOUSE_FEAST_ONLINE_STORE": online}


def repo_config(config: LakehouseConfig | None = None):
    """`feature_store.yaml` read as the Feast CLI reads it, with the defaults filled in."""
    from feast.repo_config import RepoConfig

    values = {**os.environ, **feast_environment(config)}
    text = string.Template((REPO / "feature_store.yaml").read_text()).safe_substitute(values)
    repo = RepoConfig(**yaml.safe_load(text))
    repo.repo_path = REPO
    return repo


def feature_store(config: LakehouseConfig | None = None):
    """A FeatureStore on the configured registry and online store."""
    from feast import FeatureStore

    feast_dir(config).mkdir(parents=True, exist_ok=True)
    return FeatureStore(repo_path=str(REPO), config=repo_config(config))


def _definitions_module():
    """`feature_repo/definitions.py` under a name of its own: no module cache keeps another folder's paths."""
    spec = importlib.util.spec_from_file_location("lakehouse_feature_definitions", REPO / "definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def definitions(config: LakehouseConfig | None = None) -> dict[str, Any]:
    """The repository's objects, built for the configured snapshot folder."""
    return _definitions_module().build(offline_dir(config))


def entity_for(join_key: str) -> str | None:
    """The entity whose join key is `join_key` (a subject column such as `user_id` -> `customer`), if any."""
    return next((name for name, (key, _) in _definitions_module().ENTITIES.items() if key == join_key), None)


def view_tables() -> dict[str, str]:
    """Feature view -> the curated table it reads (`layer/domain/name`), without building anything."""
    return {name: spec[1] for name, spec in _definitions_module().VIEWS.items()}


def _repo_contents(store, config: LakehouseConfig | None):
    """The definitions as Feast's `parse_repo` would collect them (with its project and dummy entity)."""
    from feast import Entity, FeatureService, FeatureView, Project
    from feast.feature_view import DUMMY_ENTITY
    from feast.repo_contents import RepoContents

    objects = list(definitions(config).values())
    views = [o for o in objects if isinstance(o, FeatureView)]
    return RepoContents(
        projects=[Project(name=store.project)],
        data_sources=[v.batch_source for v in views if v.batch_source is not None],
        entities=[*(o for o in objects if isinstance(o, Entity)), DUMMY_ENTITY],
        feature_views=views,
        feature_services=[o for o in objects if isinstance(o, FeatureService)],
        on_demand_feature_views=[],
        stream_feature_views=[],
        label_views=[],
        permissions=[],
    )


def apply(config: LakehouseConfig | None = None) -> list[str]:
    """`feast apply`: register the definitions, delete registered objects no longer defined, create the
    online tables. Returns the changes made (`CREATE feature view x`, ...), empty when in sync."""
    from feast.repo_operations import extract_objects_for_apply_delete

    store = feature_store(config)
    repo = _repo_contents(store, config)
    changes = registry_changes(config, store)
    to_apply, to_delete, _, _ = extract_objects_for_apply_delete(store.project, store.registry, repo)
    store.apply(to_apply, objects_to_delete=to_delete, partial=False)
    return changes


def apply_if_changed(config: LakehouseConfig | None = None) -> list[str]:
    """Apply only when the registry differs from the definitions (a domain job or a shell may run
    materialization without the registry asset); returns the changes applied."""
    return apply(config) if registry_changes(config) else []


def registry_changes(config: LakehouseConfig | None = None, store=None) -> list[str]:
    """What `feast plan` would change in the registry (empty when it matches the definitions)."""
    from feast.diff.property_diff import TransitionType

    store = store or feature_store(config)
    registry_diff, _, _ = store.plan(_repo_contents(store, config))
    return [
        f"{d.transition_type.name} {d.feast_object_type.name.lower()} {d.name}"
        for d in registry_diff.feast_object_diffs
        if d.transition_type != TransitionType.UNCHANGED
    ]
