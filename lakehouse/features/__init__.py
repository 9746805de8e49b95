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
| LAKEHOUSE_FEAST_ONLINE_STORE | SQLite in LAKEHOUSE_FEAST_DIR, or Redis | the online store (YAML mapping) |
"""

from lakehouse.features.deletion import OnlineErasure, delete_online_entities, erase_subject_online
from lakehouse.features.lookups import feature_records, online_features
from lakehouse.features.materialize import Materialized, materialize
from lakehouse.features.snapshots import Snapshot, export_snapshot, read_partitions
from lakehouse.features.store import (
    REPO,
    TIMESTAMP,
    apply,
    apply_if_changed,
    definitions,
    entity_for,
    feast_dir,
    feast_environment,
    feature_store,
    offline_dir,
    registry_changes,
    repo_config,
    view_tables,
)
from lakehouse.features.training import (
    TRAINING_ROOT,
    historical_features,
    training_set_uri,
    write_training_set,
)

__all__ = [
    "REPO",
    "TIMESTAMP",
    "TRAINING_ROOT",
    "Materialized",
    "OnlineErasure",
    "Snapshot",
    "apply",
    "apply_if_changed",
    "definitions",
    "delete_online_entities",
    "entity_for",
    "erase_subject_online",
    "export_snapshot",
    "feast_dir",
    "feast_environment",
    "feature_records",
    "feature_store",
    "historical_features",
    "materialize",
    "offline_dir",
    "online_features",
    "read_partitions",
    "registry_changes",
    "repo_config",
    "training_set_uri",
    "view_tables",
    "write_training_set",
]
