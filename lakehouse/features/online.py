"""The online store as rows: one reader and writer over SQLite or Redis, keyed like Feast keys it."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pandas as pd

from lakehouse.features.snapshots import view_join_key

_SQL_PARAMETERS = 500  # keys per SQLite query (older builds allow 999 parameters)


def _entity_key(join_key: str, value: Any):
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    return EntityKey(join_keys=[join_key], entity_values=[Value(string_val=str(value))])


class OnlineStore:
    """Listing and deleting online rows: Feast has no API for either; SQLite and Redis are covered."""

    def __init__(self, store):
        self.store = store
        self.repo = store.config
        self.kind = self.repo.online_store.type

    @contextlib.contextmanager
    def _sqlite(self) -> Iterator[sqlite3.Connection]:
        """A connection to the SQLite online store, committed and closed at the end."""
        with contextlib.closing(sqlite3.connect(self.repo.online_store.path)) as conn, conn:
            yield conn

    def _redis(self):
        from feast.infra.online_stores.redis import RedisOnlineStore

        return RedisOnlineStore()._get_client(self.repo.online_store)

    def _key_bytes(self, join_key: str, value: Any) -> bytes:
        from feast.infra.key_encoding_utils import serialize_entity_key

        return serialize_entity_key(
            _entity_key(join_key, value),
            entity_key_serialization_version=self.repo.entity_key_serialization_version,
        )

    def timestamps(self, view, values: Iterable[Any]) -> dict[str, pd.Timestamp]:
        """The event time of the view's stored row of each of `values` (keys of its entity) that has one.
        Only those keys are looked up: listing the whole view grew with the entities it ever held."""
        join_key = view_join_key(view)
        keys = {self._key_bytes(join_key, value): value for value in dict.fromkeys(str(v) for v in values)}
        found: dict[str, pd.Timestamp] = {}
        if self.kind == "sqlite":
            from feast.infra.online_stores.helpers import compute_table_id

            table = compute_table_id(self.repo.project, view)
            serialized = list(keys)
            with self._sqlite() as conn:
                for start in range(0, len(serialized), _SQL_PARAMETERS):
                    chunk = serialized[start : start + _SQL_PARAMETERS]
                    rows = conn.execute(
                        f'SELECT entity_key, MAX(event_ts) FROM "{table}" '
                        f"WHERE entity_key IN ({', '.join('?' * len(chunk))}) GROUP BY entity_key",
                        chunk,
                    ).fetchall()
                    found |= {keys[raw]: pd.Timestamp(int(ts), unit="s", tz="UTC") for raw, ts in rows}
            return found
        if self.kind == "redis":
            from google.protobuf.timestamp_pb2 import Timestamp

            client, project = self._redis(), self.repo.project.encode()
            with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hget(key + project, f"_ts:{view.name}")
                stamps = pipe.execute()
            for value, raw in zip(keys.values(), stamps):
                if raw is not None:
                    stamp = Timestamp()
                    stamp.ParseFromString(raw)
                    found[value] = pd.Timestamp(stamp.ToDatetime(), tz="UTC")
            return found
        raise NotImplementedError(f"online store {self.kind!r}: only sqlite and redis are supported")

    def delete(self, views: Sequence, values: Iterable[Any]) -> int:
        """Delete the rows of `values` (keys of the views' one entity) from `views`; returns keys removed."""
        values = list(dict.fromkeys(str(v) for v in values))
        if not values or not views:
            return 0
        join_key = view_join_key(views[0])
        removed: set[str] = set()
        if self.kind == "sqlite":
            from feast.infra.online_stores.helpers import compute_table_id

            with self._sqlite() as conn:
                for view in views:
                    table = compute_table_id(self.repo.project, view)
                    for value in values:
                        if conn.execute(
                            f'DELETE FROM "{table}" WHERE entity_key = ?', (self._key_bytes(join_key, value),)
                        ).rowcount:
                            removed.add(value)
            return len(removed)
        if self.kind == "redis":
            from feast.infra.online_stores.helpers import _mmh3

            client, project = self._redis(), self.repo.project.encode()
            fields = [
                field
                for view in views
                for field in [*(_mmh3(f"{view.name}:{f.name}") for f in view.features), f"_ts:{view.name}"]
            ]
            stamps = {f"_ts:{view.name}".encode() for view in views}
            for value in values:
                key = self._key_bytes(join_key, value) + project
                present = set(client.hkeys(key))
                if not present & stamps:
                    continue
                removed.add(value)
                # The hash holds every view of the entity: drop it whole when only these views are in it.
                if not {f for f in present if f.startswith(b"_ts:")} - stamps:
                    client.delete(key)
                else:
                    client.hdel(key, *fields)
            return len(removed)
        raise NotImplementedError(f"online store {self.kind!r}: only sqlite and redis are supported")
