"""Feast over the curated Delta tables: configuration, apply, snapshots, materialization, online
deletes and lookups, point-in-time training sets.

Why it is built this way (measured, see `notes/engine-findings.md` and `tests/test_features.py`):
- Feast's file offline store reads every Parquet file in a Delta table's folder, including files the
  log has removed. So Feast only ever reads a Parquet *snapshot* of the table's current version
  (read through the Delta log by delta-rs), rewritten whole before each materialization and each
  training set: overwritten partitions and deleted subjects are gone from it.
- `materialize` only upserts, and Redis skips a write whose event time is not newer than the stored
  one. Materialization here therefore computes the online state itself: the latest snapshot row per
  entity is written for entities with rows in (or after) the partitions built, or whose online value
  is not their latest row; entities no longer in the snapshot are deleted from the online store.
- Feast's point-in-time join drops entity rows without a value in the TTL window. Training sets use
  an as-of join of our own (same rule: latest feature row with timestamp <= the row's, within the
  view's TTL), so every entity row comes back, with nulls where nothing is in the window.

Configuration (environment, with defaults; `feature_repo/feature_store.yaml` uses the same names):
| variable | default | meaning |
|---|---|---|
| LAKEHOUSE_FEAST_DIR | $LAKEHOUSE_STATE_DIR/feast | registry, SQLite online store, offline snapshots |
| LAKEHOUSE_FEAST_REDIS | unset | Redis connection string (`host:port[,password=...]`): Redis online store |
| LAKEHOUSE_FEAST_ONLINE_STORE | SQLite in LAKEHOUSE_FEAST_DIR, or Redis as above | the online store as a YAML mapping |
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import os
import sqlite3
import string
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from deltalake import DeltaTable

from lakehouse.config import LakehouseConfig

REPO = Path(__file__).resolve().parents[1] / "feature_repo"
TIMESTAMP = "event_timestamp"
TRAINING_ROOT = "features/training_sets"


# ---------------------------------------------------------------- configuration


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
        store = ({"type": "redis", "connection_string": redis} if redis
                 else {"type": "sqlite", "path": str(folder / "online.db")})
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


# ---------------------------------------------------------------- apply


def _repo_contents(store, config: LakehouseConfig | None):
    """The definitions as Feast's `parse_repo` would collect them (with its project and dummy entity)."""
    from feast import Entity, FeatureService, FeatureView, Project
    from feast.feature_view import DUMMY_ENTITY
    from feast.repo_contents import RepoContents

    objects = list(definitions(config).values())
    views = [o for o in objects if isinstance(o, FeatureView)]
    return RepoContents(
        projects=[Project(name=store.project)], data_sources=[v.batch_source for v in views],
        entities=[*(o for o in objects if isinstance(o, Entity)), DUMMY_ENTITY], feature_views=views,
        feature_services=[o for o in objects if isinstance(o, FeatureService)],
        on_demand_feature_views=[], stream_feature_views=[], label_views=[], permissions=[])


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
    return [f"{d.transition_type.name} {d.feast_object_type.name.lower()} {d.name}"
            for d in registry_diff.feast_object_diffs if d.transition_type != TransitionType.UNCHANGED]


# ---------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Snapshot:
    view: str
    path: str
    table_version: int
    rows: int
    seconds: float


_PANDAS = {"Int64": "Int64", "Float64": "float64", "Bool": "boolean", "String": "string"}
_ARROW = {"Int64": pa.int64(), "Float64": pa.float64(), "Bool": pa.bool_(), "String": pa.string()}


def _join_key(view) -> str:
    return view.entity_columns[0].name


def _period(view) -> pd.Timedelta:
    return pd.Timedelta(view.tags["period"])


def _source_uri(config: LakehouseConfig, view) -> str:
    return config.table_uri(*view.tags["source_table"].split("/"))


def export_snapshot(config: LakehouseConfig, view) -> Snapshot:
    """Rewrite the view's Parquet snapshot from the current version of its curated table.

    The table is read through its Delta log (delta-rs), so removed files never reach Feast; the
    file is replaced atomically and whole. `event_timestamp` (microseconds, UTC) is the end of
    the row's period: the moment the aggregate was complete.
    """
    started = time.monotonic()
    table = DeltaTable(_source_uri(config, view), storage_options=config.storage_options)
    key, column = _join_key(view), view.tags["period_column"]
    features = {f.name: _ARROW[str(f.dtype)] for f in view.features}
    frame = table.to_pandas(columns=[key, column, *features])
    frame[TIMESTAMP] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]") + _period(view)
    for name, arrow_type in features.items():
        if arrow_type == pa.float64():
            frame[name] = pd.to_numeric(frame[name].astype(object), errors="coerce").astype("float64")
    schema = pa.schema([(key, pa.string()), (TIMESTAMP, pa.timestamp("us", tz="UTC")),
                        *features.items()])
    data = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    path = Path(view.batch_source.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")  # concurrent exports each replace whole
    pq.write_table(data, partial, coerce_timestamps="us")
    os.replace(partial, path)
    return Snapshot(view.name, str(path), table.version(), data.num_rows, time.monotonic() - started)


# ---------------------------------------------------------------- online store


def _python_value(value) -> Any:
    from feast.type_map import feast_value_type_to_python_type

    return feast_value_type_to_python_type(value)


def _entity_key(join_key: str, value: Any):
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    return EntityKey(join_keys=[join_key], entity_values=[Value(string_val=str(value))])


class _Online:
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

        return serialize_entity_key(_entity_key(join_key, value),
                                    entity_key_serialization_version=self.repo.entity_key_serialization_version)

    def _key_value(self, raw: bytes) -> str:
        from feast.infra.key_encoding_utils import deserialize_entity_key

        key = deserialize_entity_key(raw, entity_key_serialization_version=self.repo.entity_key_serialization_version)
        return _python_value(key.entity_values[0])

    def timestamps(self, view) -> dict[str, pd.Timestamp]:
        """Every entity key the view has online, with the event time of its stored row."""
        if self.kind == "sqlite":
            from feast.infra.online_stores.helpers import compute_table_id

            table = compute_table_id(self.repo.project, view)
            with self._sqlite() as conn:
                rows = conn.execute(f'SELECT entity_key, MAX(event_ts) FROM "{table}" GROUP BY entity_key').fetchall()
            return {self._key_value(raw): pd.Timestamp(int(ts), unit="s", tz="UTC") for raw, ts in rows}
        if self.kind == "redis":
            from feast.infra.online_stores.helpers import _redis_key_prefix
            from google.protobuf.timestamp_pb2 import Timestamp

            client, project = self._redis(), self.repo.project.encode()
            keys = list(client.scan_iter(_redis_key_prefix([_join_key(view)]) + b"*" + project, count=1000))
            with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hget(key, f"_ts:{view.name}")
                stamps = pipe.execute()
            found = {}
            for key, raw in zip(keys, stamps):
                if raw is not None:
                    stamp = Timestamp()
                    stamp.ParseFromString(raw)
                    found[self._key_value(key[:-len(project)])] = pd.Timestamp(stamp.ToDatetime(), tz="UTC")
            return found
        raise NotImplementedError(f"online store {self.kind!r}: only sqlite and redis are supported")

    def delete(self, views: Sequence, values: Iterable[Any]) -> int:
        """Delete the rows of `values` (keys of the views' one entity) from `views`; returns keys removed."""
        values = list(dict.fromkeys(str(v) for v in values))
        if not values or not views:
            return 0
        join_key = _join_key(views[0])
        removed: set[str] = set()
        if self.kind == "sqlite":
            from feast.infra.online_stores.helpers import compute_table_id

            with self._sqlite() as conn:
                for view in views:
                    table = compute_table_id(self.repo.project, view)
                    for value in values:
                        if conn.execute(f'DELETE FROM "{table}" WHERE entity_key = ?',
                                        (self._key_bytes(join_key, value),)).rowcount:
                            removed.add(value)
            return len(removed)
        if self.kind == "redis":
            from feast.infra.online_stores.helpers import _mmh3

            client, project = self._redis(), self.repo.project.encode()
            fields = [field for view in views for field in
                      [*(_mmh3(f"{view.name}:{f.name}") for f in view.features), f"_ts:{view.name}"]]
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


def _views_of_entity(store, entity_name: str) -> list:
    return [v for v in store.list_feature_views() if entity_name in v.entities]


def delete_online_entities(config: LakehouseConfig | None, entity_name: str, keys: Iterable[str]) -> int:
    """Delete `keys` (join-key values, e.g. tokenized user_ids for `customer`) from the online store of
    every feature view keyed by `entity_name`; returns how many of the keys had online rows (erasure)."""
    store = feature_store(config)
    if entity_name not in {e.name for e in store.list_entities()}:
        raise ValueError(f"unknown entity {entity_name!r}")
    return _Online(store).delete(_views_of_entity(store, entity_name), keys)


@dataclass(frozen=True)
class OnlineErasure:
    entity: str
    views: tuple[str, ...]
    removed: int  # keys that had online rows
    remaining: int  # keys still online or in an offline snapshot afterwards (0 when verified)


def erase_subject_online(config: LakehouseConfig | None, column: str, keys: Iterable[str],
                         dry_run: bool = False) -> OnlineErasure | None:
    """Erasure of a subject column's values (pass the value and its token) from every feature view keyed
    by the column's entity, verified by listing the online keys again; None when no entity has that join
    key or the feature store was never applied. A dry run counts the keys online and changes nothing."""
    entity = entity_for(column)
    store = feature_store(config)
    if entity is None or entity not in {e.name for e in store.list_entities()}:
        return None
    keys = list(dict.fromkeys(str(k) for k in keys))
    views = _views_of_entity(store, entity)
    online = _Online(store)
    if dry_run:
        found = len({key for view in views for key in online.timestamps(view) if key in keys})
        return OnlineErasure(entity, tuple(sorted(v.name for v in views)), found, found)
    removed = online.delete(views, keys)
    remaining = sum(key in online.timestamps(view) for view in views for key in keys)
    # The offline snapshots are copies of the curated tables: rewrite them from the erased tables
    # (a view whose table was never built in this lake has no snapshot).
    config = config or LakehouseConfig.from_env()
    for view in views:
        if not DeltaTable.is_deltatable(_source_uri(config, view), storage_options=config.storage_options):
            continue
        snapshot = pq.read_table(export_snapshot(config, view).path, columns=[_join_key(view)])
        remaining += sum(key in keys for key in snapshot.column(0).to_pylist())
    return OnlineErasure(entity, tuple(sorted(v.name for v in views)), removed, remaining)


def online_features(config: LakehouseConfig | None, features: str | Sequence[str],
                    entity_rows: Sequence[Mapping[str, Any]]) -> dict[str, list]:
    """Online values for `entity_rows` (e.g. [{"user_id": "tok..."}]): `features` is a feature service
    name or a list of `view:feature` refs. Columns are `<view>__<feature>`; absent keys give None."""
    store = feature_store(config)
    refs = store.get_feature_service(features) if isinstance(features, str) else list(features)
    return store.get_online_features(features=refs, entity_rows=[dict(r) for r in entity_rows],
                                     full_feature_names=True).to_dict()


_RECORD_TYPES = {"Int64": "int", "Float64": "float", "Bool": "boolean", "String": "string"}


def feature_records(config: LakehouseConfig | None, features: str | Sequence[str],
                    entity_rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Online values as the platform's feature records (product docs §3.2: featureId, entity, name, type,
    value, timestamp, source, tags; plus entityKey), one per entity row and feature that has a value,
    ordered by entity row then featureId."""
    from feast.online_response import TIMESTAMP_POSTFIX

    store = feature_store(config)
    refs = store.get_feature_service(features) if isinstance(features, str) else list(features)
    found = store.get_online_features(features=refs, entity_rows=[dict(r) for r in entity_rows],
                                      full_feature_names=True).to_dict(include_event_timestamps=True)
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
            stamp = dt.datetime.fromtimestamp(found[column + TIMESTAMP_POSTFIX][index], dt.timezone.utc)
            records.append({
                "featureId": f"{view_name}:{name}", "entity": view.entities[0], "entityKey": row[_join_key(view)],
                "name": name, "type": _RECORD_TYPES.get(dtype, dtype.lower()), "value": found[column][index],
                "timestamp": stamp.isoformat().replace("+00:00", "Z"),
                "source": view.tags["source_table"].replace("/", "."),
                "tags": ["online", f"ttl:{int(view.ttl.total_seconds())}s"]})
    return records


# ---------------------------------------------------------------- materialization


@dataclass(frozen=True)
class Materialized:
    view: str
    table_version: int
    snapshot_rows: int
    entities: int
    written: int
    deleted: int
    seconds: float


def _latest(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.sort_values([key, TIMESTAMP]).drop_duplicates(key, keep="last").set_index(key, drop=False)


def materialize(config: LakehouseConfig, first: dt.date, last: dt.date,
                views: Sequence[str] | None = None) -> list[Materialized]:
    """Bring the online store in line with the curated tables for partitions first..last.

    Per view: export the snapshot; write each entity's latest row if that row's period starts on or
    after `first` (so a backfill of old days never replaces newer values) or if the online row is not
    that latest row (a rewritten partition dropped it); delete online entities absent from the table.
    Partitions after `last` are included on purpose: the online store holds the latest values.
    """
    store = feature_store(config)
    online = _Online(store)
    since = pd.Timestamp(first, tz="UTC")
    done = []
    for view in store.list_feature_views():
        if views is not None and view.name not in views:
            continue
        started = time.monotonic()
        snapshot = export_snapshot(config, view)
        key = _join_key(view)
        latest = _latest(pd.read_parquet(snapshot.path), key)
        stored = pd.Series(online.timestamps(view), dtype="datetime64[us, UTC]")
        stored_ts = latest[key].map(stored)
        in_range = latest[TIMESTAMP] - _period(view) >= since
        write = latest[in_range | (stored_ts.notna() & (stored_ts != latest[TIMESTAMP]))]
        gone = sorted(set(stored.index) - set(latest.index))
        # Redis skips a write not newer than the stored row: clear those first.
        not_newer = write[write[key].map(stored).notna() & (write[TIMESTAMP] <= write[key].map(stored))][key]
        deleted = online.delete([view], gone)
        online.delete([view], not_newer)
        if len(write):
            store.write_to_online_store(view.name, write.reset_index(drop=True))
        done.append(Materialized(view.name, snapshot.table_version, snapshot.rows, len(latest), len(write), deleted,
                                 time.monotonic() - started))
    return done


# ---------------------------------------------------------------- training sets


def historical_features(config: LakehouseConfig, service: str, entity_df: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join: each row of `entity_df` (join keys, `event_timestamp`, labels) with the
    service's features as of its timestamp (latest row at or before it, within the view's TTL).

    Every entity row comes back, in order, with None where no value is in the window. Snapshots
    are exported first, so the features are those of the curated tables' current versions.
    """
    store = feature_store(config)
    if TIMESTAMP not in entity_df.columns:
        raise ValueError(f"the entity dataframe needs an {TIMESTAMP!r} column")
    result = entity_df.reset_index(drop=True).copy()
    result[TIMESTAMP] = pd.to_datetime(result[TIMESTAMP], utc=True).astype("datetime64[us, UTC]")
    result["_row"] = range(len(result))
    for projection in store.get_feature_service(service).feature_view_projections:
        view = store.get_feature_view(projection.name)
        key = _join_key(view)
        if key not in result.columns:
            raise ValueError(f"feature view {view.name} needs column {key!r} in the entity dataframe")
        names = [f.name for f in projection.features]
        snapshot = pd.read_parquet(export_snapshot(config, view).path, columns=[key, TIMESTAMP, *names])
        snapshot = snapshot.rename(columns={n: f"{view.name}__{n}" for n in names})
        snapshot[TIMESTAMP] = snapshot[TIMESTAMP].astype("datetime64[us, UTC]")
        snapshot[key] = snapshot[key].astype(object)
        left = result[["_row", key, TIMESTAMP]].copy()
        left[key] = left[key].astype(object)
        joined = pd.merge_asof(left.sort_values(TIMESTAMP), snapshot.sort_values(TIMESTAMP), on=TIMESTAMP, by=key,
                               direction="backward", allow_exact_matches=True,
                               tolerance=pd.Timedelta(view.ttl) if view.ttl else None)
        result = result.merge(joined.drop(columns=[key, TIMESTAMP]), on="_row", how="left")
        # Declared types, nullable: a column keeps its type whether or not some rows found no value.
        result = result.astype({f"{view.name}__{f.name}": _PANDAS[str(f.dtype)] for f in projection.features})
    return result.sort_values("_row").drop(columns="_row").reset_index(drop=True)


def training_set_uri(config: LakehouseConfig, name: str) -> str:
    return f"{config.root}/{TRAINING_ROOT}/{name}"


def write_training_set(config: LakehouseConfig, spark, service: str, entity_df: pd.DataFrame, name: str,
                       days: Sequence[dt.date] | None = None, run_id: str | None = None):
    """Join `entity_df` with the service's features and write it as the Delta table
    `features/training_sets/<name>`, partitioned by the day of `event_timestamp`: `days` (default: the
    days of the rows) are replaced whole, through the lake's one Delta writer."""
    from lakehouse import delta

    frame = historical_features(config, service, entity_df)
    frame["dt"] = frame[TIMESTAMP].dt.date
    days = sorted(set(days or frame["dt"]))
    rows = spark.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False))
    written = delta.write_partitions(rows, training_set_uri(config, name), days, config.storage_options)
    _catalog_training_set(config, service, name, rows.schema, written, run_id or f"training-set-{uuid.uuid4()}")
    return written


def _catalog_training_set(config: LakehouseConfig, service: str, name: str, schema, written, run_id: str) -> None:
    """A training set holds entity keys (e.g. user_id tokens): catalogued with them as subject columns,
    so erasure finds it and retention (feature data: 365 days) expires it."""
    from lakehouse import catalog
    from lakehouse.maintenance import TableMaintenance

    store = feature_store(config)
    views = [store.get_feature_view(p.name) for p in store.get_feature_service(service).feature_view_projections]
    subjects = sorted({_join_key(view) for view in views})
    sources = sorted({view.tags["source_table"] for view in views})
    stats = TableMaintenance(written.uri, config.storage_options).stats()
    entry = catalog.Entry(
        path=f"{TRAINING_ROOT}/{name}", owner="team:ml-platform", location=written.uri,
        description=f"Point-in-time training set of the feature service {service!r}.",
        fields=[catalog.Field(f.name, f.dataType.simpleString(), None,
                              "confidential" if f.name in subjects else "internal") for f in schema.fields],
        tags=["features", "training-set", "gdpr"], retention_days=365, subject_columns=subjects,
        latest_partition=stats.latest_partition, row_count=stats.row_count, delta_version=written.version)
    catalog.record(config, [catalog.Materialization(
        run_id=run_id, entry=entry, partitions=[d.isoformat() for d in written.partitions],
        rows_written=written.row_count, code_version="feature_repo", upstream=[(s, None) for s in sources])])
