"""Point-in-time training sets: an as-of join within each view's TTL, written as a Delta table."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable

from lakehouse.config import LakehouseConfig
from lakehouse.delta import WriteResult
from lakehouse.features.snapshots import (
    PANDAS_DTYPES,
    export_snapshot,
    partition_days,
    read_partitions,
    view_join_key,
    view_ttl,
)
from lakehouse.features.store import TIMESTAMP, feature_store

TRAINING_ROOT = "features/training_sets"
# Who allows analytics use: each day's commerce users snapshot (user_id tokens, as the features' keys are).
CONSENT_TABLE = ("processed", "commerce", "users")
CONSENT_KEY, CONSENT_COLUMN = "user_id", "consent_analytics"
CONSENT_EXEMPT_PURPOSES = ("fraud_prevention",)  # a service's `purpose` tag that needs no analytics consent


@dataclass(frozen=True)
class TrainingSetWrite(WriteResult):
    users_excluded_no_consent: int = 0  # distinct users whose entity rows were left out


def _consenting(config: LakehouseConfig, days: Sequence[dt.date]) -> set[tuple[dt.date, str]]:
    """(day, user token) of the users whose snapshot of that day grants analytics consent."""
    uri = config.table_uri(*CONSENT_TABLE)
    if not days or not DeltaTable.is_deltatable(uri, storage_options=config.storage_options):
        return set()
    table = DeltaTable(uri, storage_options=config.storage_options)
    if CONSENT_COLUMN not in table.schema().to_arrow().names:  # a lake from before consent: none on record
        return set()
    users = table.to_pandas(columns=["dt", CONSENT_KEY, CONSENT_COLUMN], filters=[("dt", "in", list(days))])
    granted = users[users[CONSENT_COLUMN].fillna(False).astype(bool)]
    return set(zip(granted["dt"], granted[CONSENT_KEY].astype(str)))


def consenting_entities(
    config: LakehouseConfig, service: str, entity_df: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """The entity rows of users with analytics consent in their day's users snapshot (no consent on record
    is no consent), and how many distinct users were left out. Rows without a user key, and services
    whose purpose needs no consent (fraud prevention), are kept as they are."""
    purpose = feature_store(config).get_feature_service(service).tags.get("purpose")
    if CONSENT_KEY not in entity_df.columns or purpose in CONSENT_EXEMPT_PURPOSES:
        return entity_df, 0
    days = pd.to_datetime(entity_df[TIMESTAMP], utc=True).dt.date
    granted = _consenting(config, sorted(set(days)))
    keep = pd.Series(
        [(day, str(user)) in granted for day, user in zip(days, entity_df[CONSENT_KEY])],
        index=entity_df.index,
    )
    return entity_df[keep], int(entity_df.loc[~keep, CONSENT_KEY].nunique())


def _partitions_in_reach(view, stamps: pd.Series) -> list[dt.date]:
    """The snapshot partitions a point-in-time join of `stamps` can take a row from: a row counts within
    the view's TTL before a stamp, and its partition (arrival day) is never before its period's day."""
    if stamps.empty:
        return []
    earliest = (stamps.min() - pd.Timedelta(view.ttl or pd.Timedelta(0)) - view_ttl(view)).date()
    return [day for day in partition_days(view) if day >= earliest]


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
        key = view_join_key(view)
        if key not in result.columns:
            raise ValueError(f"feature view {view.name} needs column {key!r} in the entity dataframe")
        names = [f.name for f in projection.features]
        export_snapshot(config, view)  # the partitions whose table files changed
        snapshot = read_partitions(view, _partitions_in_reach(view, result[TIMESTAMP])).to_pandas()
        snapshot = snapshot[[key, TIMESTAMP, *names]]
        snapshot = snapshot.rename(columns={n: f"{view.name}__{n}" for n in names})
        snapshot[TIMESTAMP] = snapshot[TIMESTAMP].astype("datetime64[us, UTC]")
        snapshot[key] = snapshot[key].astype(object)
        left = result[["_row", key, TIMESTAMP]].copy()
        left[key] = left[key].astype(object)
        joined = pd.merge_asof(
            left.sort_values(TIMESTAMP),
            snapshot.sort_values(TIMESTAMP),
            on=TIMESTAMP,
            by=key,
            direction="backward",
            allow_exact_matches=True,
            tolerance=pd.Timedelta(view.ttl) if view.ttl else None,
        )
        result = result.merge(joined.drop(columns=[key, TIMESTAMP]), on="_row", how="left")
        # Declared types, nullable: a column keeps its type whether or not some rows found no value.
        result = result.astype(
            {f"{view.name}__{f.name}": PANDAS_DTYPES[str(f.dtype)] for f in projection.features}
        )
    return result.sort_values("_row").drop(columns="_row").reset_index(drop=True)


def training_set_uri(config: LakehouseConfig, name: str) -> str:
    return f"{config.root}/{TRAINING_ROOT}/{name}"


def write_training_set(
    config: LakehouseConfig,
    spark,
    service: str,
    entity_df: pd.DataFrame,
    name: str,
    days: Sequence[dt.date] | None = None,
    run_id: str | None = None,
) -> TrainingSetWrite:
    """Join `entity_df` with the service's features and write it as the Delta table
    `features/training_sets/<name>`, partitioned by the day of `event_timestamp`: `days` (default: the
    days of the rows) are replaced whole, through the lake's one Delta writer. Users without analytics
    consent are left out first (`consenting_entities`); the result counts them."""
    from lakehouse import delta

    entity_df, excluded = consenting_entities(config, service, entity_df)
    frame = historical_features(config, service, entity_df)
    frame["dt"] = frame[TIMESTAMP].dt.date
    days = sorted(set(days or frame["dt"]))
    rows = spark.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False))
    written = delta.write_partitions(rows, training_set_uri(config, name), days, config.storage_options)
    _catalog_training_set(
        config, service, name, rows.schema, written, run_id or f"training-set-{uuid.uuid4()}"
    )
    return TrainingSetWrite(**vars(written), users_excluded_no_consent=excluded)


def _catalog_training_set(
    config: LakehouseConfig, service: str, name: str, schema, written, run_id: str
) -> None:
    """A training set holds entity keys (e.g. user_id tokens): catalogued with them as subject columns,
    so erasure finds it and retention (feature data: 365 days) expires it."""
    from lakehouse import catalog
    from lakehouse.maintenance import TableMaintenance

    store = feature_store(config)
    views = [
        store.get_feature_view(p.name) for p in store.get_feature_service(service).feature_view_projections
    ]
    subjects = sorted({view_join_key(view) for view in views})
    sources = sorted({view.tags["source_table"] for view in views})
    stats = TableMaintenance(written.uri, config.storage_options).stats()
    entry = catalog.Entry(
        path=f"{TRAINING_ROOT}/{name}",
        owner="team:ml-platform",
        location=written.uri,
        description=f"Point-in-time training set of the feature service {service!r}.",
        fields=[
            catalog.Field(
                f.name, f.dataType.simpleString(), None, "confidential" if f.name in subjects else "internal"
            )
            for f in schema.fields
        ],
        tags=["features", "training-set", "gdpr"],
        retention_days=365,
        subject_columns=subjects,
        latest_partition=stats.latest_partition,
        row_count=stats.row_count,
        delta_version=written.version,
    )
    catalog.record(
        config,
        [
            catalog.Materialization(
                run_id=run_id,
                entry=entry,
                partitions=[d.isoformat() for d in written.partitions],
                rows_written=written.row_count,
                code_version="feature_repo",
                upstream=[(s, None) for s in sources],
            )
        ],
    )
