"""Online sync: the latest snapshot row per entity written, stale and vanished entities fixed."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from lakehouse.config import LakehouseConfig
from lakehouse.features.online import OnlineStore
from lakehouse.features.snapshots import export_snapshot, view_join_key, view_ttl
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


def _latest(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.sort_values([key, TIMESTAMP]).drop_duplicates(key, keep="last").set_index(key, drop=False)


def materialize(
    config: LakehouseConfig, first: dt.date, last: dt.date, views: Sequence[str] | None = None
) -> list[Materialized]:
    """Bring the online store in line with the curated tables for partitions first..last.

    Per view: export the snapshot; write each entity's latest row if that row's period starts on or
    after `first` (so a backfill of old days never replaces newer values) or if the online row is not
    that latest row (a rewritten partition dropped it); delete online entities absent from the table.
    Partitions after `last` are included on purpose: the online store holds the latest values.
    """
    store = feature_store(config)
    online = OnlineStore(store)
    since = pd.Timestamp(first, tz="UTC")
    done = []
    for view in store.list_feature_views():
        if views is not None and view.name not in views:
            continue
        started = time.monotonic()
        snapshot = export_snapshot(config, view)
        key = view_join_key(view)
        latest = _latest(pd.read_parquet(snapshot.path), key)
        stored = pd.Series(online.timestamps(view), dtype="datetime64[us, UTC]")
        stored_ts = latest[key].map(stored)
        in_range = latest[TIMESTAMP] - view_ttl(view) >= since
        write = latest[in_range | (stored_ts.notna() & (stored_ts != latest[TIMESTAMP]))]
        gone = sorted(set(stored.index) - set(latest.index))
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
            )
        )
    return done
