"""`lakehouse features ...`: the feature store from a shell, with the configuration Dagster uses."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex

import pandas as pd

from lakehouse import features
from lakehouse.config import LakehouseConfig
from lakehouse.console import print_table


def _env(args: argparse.Namespace) -> int:
    for name, value in features.feast_environment().items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _apply(args: argparse.Namespace) -> int:
    changes = features.apply(LakehouseConfig.from_env())
    print("\n".join(changes) if changes else "registry already matches feature_repo/")
    return 0


def _materialize(args: argparse.Namespace) -> int:

    config = LakehouseConfig.from_env()
    for change in features.apply_if_changed(config):
        print(f"applied: {change}")
    done = features.materialize(
        config, dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end), args.view or None
    )
    print_table(
        ("view", "delta version", "snapshot rows", "entities", "written", "deleted", "seconds"),
        [
            (d.view, d.table_version, d.snapshot_rows, d.entities, d.written, d.deleted, f"{d.seconds:.2f}")
            for d in done
        ],
    )
    return 0


def _sample_rows(config: LakehouseConfig, service: str, count: int) -> list[dict]:
    """The most recently updated entities of each join key the service needs (from the snapshots)."""
    store = features.feature_store(config)
    keys: dict[str, list[str]] = {}
    for projection in store.get_feature_service(service).feature_view_projections:
        view = store.get_feature_view(projection.name)
        key = view.entity_columns[0].name
        if key not in keys:
            snapshot = pd.read_parquet(view.batch_source.path, columns=[key, features.TIMESTAMP])
            latest = snapshot.sort_values([features.TIMESTAMP, key], ascending=False)[key].drop_duplicates()
            keys[key] = latest.head(count).tolist()
    return [dict(zip(keys, values)) for values in zip(*keys.values())]


def _lookup(args: argparse.Namespace) -> int:

    config = LakehouseConfig.from_env()
    refs = args.service or args.feature
    rows = (
        [dict(pair.split("=", 1) for pair in row.split(",")) for row in args.entity]
        if args.entity
        else _sample_rows(config, args.service, args.sample)
    )
    if args.records:
        for record in features.feature_records(config, refs, rows):
            print(json.dumps(record, default=str))
        return 0
    found = features.online_features(config, refs, rows)
    print(f"online features ({args.service or 'refs'}) for {len(rows)} entities:")
    columns = list(found)
    print_table(
        tuple(columns),
        [tuple("-" if found[c][i] is None else found[c][i] for c in columns) for i in range(len(rows))],
    )
    return 0


def _training_set(args: argparse.Namespace) -> int:
    from lakehouse.engine import spark_session

    config = LakehouseConfig.from_env()
    entities = (
        pd.read_csv(args.entities) if args.entities.endswith(".csv") else pd.read_parquet(args.entities)
    )
    written = features.write_training_set(config, spark_session(config), args.service, entities, args.name)
    print(
        f"{written.row_count} rows written to {written.uri} (Delta version {written.version}); "
        f"{written.users_excluded_no_consent} users left out without analytics consent"
    )
    return 0


def add_parser(commands) -> None:
    """Register `features` and its actions on the `lakehouse` command's subparsers."""
    parser = commands.add_parser(
        "features", help="the Feast feature store: env, apply, materialize, lookup, training-set"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("env", help="exports for `feast` run from feature_repo/").set_defaults(handler=_env)
    actions.add_parser("apply", help="register feature_repo/ (feast apply)").set_defaults(handler=_apply)
    mat = actions.add_parser(
        "materialize", help="online store in line with the curated tables for a day range"
    )
    mat.add_argument("--start", required=True)
    mat.add_argument("--end", required=True)
    mat.add_argument("--view", action="append", help="a feature view (repeatable; default: all)")
    mat.set_defaults(handler=_materialize)
    look = actions.add_parser("lookup", help="online features of some entities")
    what = look.add_mutually_exclusive_group(required=True)
    what.add_argument("--service", help="a feature service, e.g. churn")
    what.add_argument("--feature", action="append", help="a feature ref view:feature (repeatable)")
    look.add_argument(
        "--entity", action="append", help="join keys of one entity, e.g. user_id=abc (repeatable)"
    )
    look.add_argument(
        "--sample", type=int, default=3, help="with --service and no --entity: the N latest entities"
    )
    look.add_argument(
        "--records", action="store_true", help="print feature records (JSON lines) instead of a table"
    )
    look.set_defaults(handler=_lookup)
    train = actions.add_parser(
        "training-set", help="point-in-time join of an entity/label file with a service"
    )
    train.add_argument("--service", required=True)
    train.add_argument("--entities", required=True, help="CSV or Parquet: join keys, event_timestamp, labels")
    train.add_argument("--name", required=True, help="written to <root>/features/training_sets/<name>")
    train.set_defaults(handler=_training_set)
