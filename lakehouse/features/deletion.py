"""Online deletes: an entity's rows in every view, for erasure and for entities gone from a snapshot."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lakehouse.config import LakehouseConfig
from lakehouse.features.online import OnlineStore
from lakehouse.features.snapshots import export_snapshot, read_partitions, view_source_uris
from lakehouse.features.store import entity_for, feature_store


def _views_of_entity(store, entity_name: str) -> list:
    return [v for v in store.list_feature_views() if entity_name in v.entities]


def delete_online_entities(config: LakehouseConfig | None, entity_name: str, keys: Iterable[str]) -> int:
    """Delete `keys` (join-key values, e.g. tokenized user_ids for `customer`) from the online store of
    every feature view keyed by `entity_name`; returns how many of the keys had online rows (erasure)."""
    store = feature_store(config)
    if entity_name not in {e.name for e in store.list_entities()}:
        raise ValueError(f"unknown entity {entity_name!r}")
    return OnlineStore(store).delete(_views_of_entity(store, entity_name), keys)


@dataclass(frozen=True)
class OnlineErasure:
    entity: str
    views: tuple[str, ...]
    removed: int  # keys that had online rows
    remaining: int  # keys still online or in an offline snapshot afterwards (0 when verified)


def erase_subject_online(
    config: LakehouseConfig | None, column: str, keys: Iterable[str], dry_run: bool = False
) -> OnlineErasure | None:
    """Erasure of a subject column's values (pass the value and its token) from every feature view keyed
    by the column's entity, verified by looking the keys up again; None when no entity has that join
    key or the feature store was never applied. A dry run counts the keys online and changes nothing."""
    entity = entity_for(column)
    store = feature_store(config)
    if entity is None or entity not in {e.name for e in store.list_entities()}:
        return None
    keys = list(dict.fromkeys(str(k) for k in keys))
    views = _views_of_entity(store, entity)
    online = OnlineStore(store)
    if dry_run:
        found = len({key for view in views for key in online.timestamps(view, keys)})
        return OnlineErasure(entity, tuple(sorted(v.name for v in views)), found, found)
    removed = online.delete(views, keys)
    remaining = sum(len(online.timestamps(view, keys)) for view in views)
    # The offline snapshots are copies of the curated tables: rewrite them from the erased tables
    # (a view whose table was never built in this lake has no snapshot).
    config = config or LakehouseConfig.from_env()
    for view in views:
        if not view_source_uris(config, view):
            continue
        export_snapshot(config, view)  # rewrites the partitions the erasure changed
        remaining += read_partitions(view, keys=keys).num_rows
    return OnlineErasure(entity, tuple(sorted(v.name for v in views)), removed, remaining)
