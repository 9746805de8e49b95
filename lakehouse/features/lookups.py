"""Online lookups: feature values for entity keys, as Feast serves them and as typed records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from lakehouse.config import LakehouseConfig
from lakehouse.features.snapshots import view_join_key
from lakehouse.features.store import feature_store


def online_features(
    config: LakehouseConfig | None, features: str | Sequence[str], entity_rows: Sequence[Mapping[str, Any]]
) -> dict[str, list]:
    """Online values for `entity_rows` (e.g. [{"user_id": "tok..."}]): `features` is a feature service
    name or a list of `view:feature` refs. Columns are `<view>__<feature>`; absent keys give None."""
    store = feature_store(config)
    refs = store.get_feature_service(features) if isinstance(features, str) else list(features)
    return store.get_online_features(
        features=refs, entity_rows=[dict(r) for r in entity_rows], full_feature_names=True
    ).to_dict()


_RECORD_TYPES = {"Int64": "int", "Float64": "float", "Bool": "boolean", "String": "string"}


def feature_records(
    config: LakehouseConfig | None, features: str | Sequence[str], entity_rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Online values as the platform's feature records (product docs §3.2: featureId, entity, name, type,
    value, timestamp, source, tags; plus entityKey), one per entity row and feature that has a value,
    ordered by entity row then featureId."""
    from feast.online_response import TIMESTAMP_POSTFIX

    store = feature_store(config)
    refs = store.get_feature_service(features) if isinstance(features, str) else list(features)
    found = store.get_online_features(
        features=refs, entity_rows=[dict(r) for r in entity_rows], full_feature_names=True
    ).to_dict(include_event_timestamps=True)
    views = {v.name: v for v in store.list_feature_views()}
    columns = sorted(c for c in found if c.partition("__")[0] in views and not c.endswith(TIMESTAMP_POSTFIX))
    records = []
    for index, row in enumerate(entity_rows):  # by entity row, then featureId
        for column in columns:
            if found[column][index] is None:
                continue
            view_name, _, name = column.partition("__")
            view = views[view_name]
            dtype = next(str(f.dtype) for f in view.features if f.name == name)
            stamp = dt.datetime.fromtimestamp(found[column + TIMESTAMP_POSTFIX][index], dt.UTC)
            records.append(
                {
                    "featureId": f"{view_name}:{name}",
                    "entity": view.entities[0],
                    "entityKey": row[view_join_key(view)],
                    "name": name,
                    "type": _RECORD_TYPES.get(dtype, dtype.lower()),
                    "value": found[column][index],
                    "timestamp": stamp.isoformat().replace("+00:00", "Z"),
                    "source": view.tags["source_table"].replace("/", "."),
                    "tags": ["online", f"ttl:{int(view.ttl.total_seconds())}s"],
                }
            )
    return records
