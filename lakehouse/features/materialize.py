"""Online sync: the latest snapshot row per entity written, stale and vanished entities fixed."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from lakehouse.config import LakehouseConfig
from lakehouse.features.online import OnlineStore
from lakehouse.features.snapshots import export_snapshot, read_partitions, view_join_key
from lakehouse.features.store import TIMESTAMP, feature_store


@dataclass(frozen=True)
class Materialized:
    view: str
    table_version: int
    snapshot_rows: int
    entities: int
    written: int
    deleted: int
    seconds: float
    partitions: tuple[dt.date, ...] = ()  # the snapshot partitions exported and read


def _latest(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.sort_values([key, TIMESTAMP]).drop_duplicates(key, keep="last").set_index(key, drop=False)


def _seconds(stamps: pd.Series) -> pd.Series:
    """Stamps to whole seconds, as the SQLite online store keeps them."""
    return pd.to_datetime(stamps, utc=True).dt.floor("s")


def materialize(
    config: LakehouseConfig, first: dt.date, last: dt.date, views: Sequence[str] | None = None
) -> list[Materialized]:
    """Bring the online store in line with the curated tables for partitions first..last.

    Per view: export the snapshot's partitions first..last and any other partition whose table files
    changed since its last export (`export_snapshot`); nothing else is read. From the rows of those
    partitions, write each entity's latest row unless the online row is newer and came from another
    partition (so a backfill of old days never replaces newer values). An online row that came from one
    of those partitions and is no longer in them falls back to the entity's latest row in the other
    partitions, or is deleted when the table no longer has the entity.
    """
    store = feature_store(config)
    online = OnlineStore(store)
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    done = []
    for view in store.list_feature_views():
        if views is not None and view.name not in views:
            continue
        started = time.monotonic()
        snapshot = export_snapshot(config, view, days)
        assert snapshot.data is not None and snapshot.replaced is not None
        key = view_join_key(view)
        latest = _latest(snapshot.data.to_pandas(), key)
        before = snapshot.replaced.to_pandas()[[key, TIMESTAMP]]
        stored = pd.Series(  # the online rows of the entities these partitions held or now hold
            online.timestamps(view, {*before[key], *latest[key]}), dtype="datetime64[us, UTC]"
        )
        came_from_exported = set(
            before[_seconds(before[TIMESTAMP]).values == _seconds(before[key].map(stored)).values][key]
        )
        orphans = sorted(came_from_exported - set(latest.index))
        fallback = (
            _latest(read_partitions(view, keys=orphans).to_pandas(), key) if orphans else latest.iloc[:0]
        )
        stored_ts = latest[key].map(stored)
        write = pd.concat(
            [
                latest[
                    stored_ts.isna() | (latest[TIMESTAMP] >= stored_ts) | latest[key].isin(came_from_exported)
                ],
                fallback,
            ]
        )
        gone = sorted(set(orphans) - set(fallback.index))
        # Redis skips a write not newer than the stored row: clear those first.
        not_newer = write[write[key].map(stored).notna() & (write[TIMESTAMP] <= write[key].map(stored))][key]
        deleted = online.delete([view], gone)
        online.delete([view], not_newer)
        if len(write):
            store.write_to_online_store(view.name, write.reset_index(drop=True))
        done.append(
            Materialized(
                view.name,
                snapshot.table_version,
                snapshot.rows,
                len(latest),
                len(write),
                deleted,
                time.monotonic() - started,
                snapshot.partitions,
            )
        )
    return done
