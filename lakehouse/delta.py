"""The one module that writes Delta tables.

Promise: writing partitions P1..Pn of a table replaces exactly those partitions
and nothing else, or commits nothing and says why. Everything is checked before
the engine is asked to commit, because Sail's `replaceWhere` writes rows outside
its predicate, and its appends drop columns the table does not have yet
(`notes/engine-findings.md`). On Sail, tables are created by delta-rs so that every
column is nullable and the schema is exactly the DataFrame's; on Apache Spark,
Delta Lake on Spark creates them by the first partition write (it makes columns nullable itself) and adds
allowed columns with `ALTER TABLE`. Either way the engine then only ever
overwrites partitions by `replaceWhere` on a DataFrame already checked against
the predicate. On Sail, rows a step already staged as Parquet in a table's layout (`StagedFiles`) are
instead copied into the table and committed by delta-rs in one overwrite of the partitions, after the
same checks. Which engine does what: `lakehouse/engine.py`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, Field, Schema
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction
from pyarrow import fs
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from lakehouse import storage
from lakehouse.engine import delta_sql_engine, engine_path, is_apache_spark, spark_predicate

PARTITION_COLUMN = "dt"
# Sail's Delta writer holds a file's rows until it reaches this size, per writing thread. Its default,
# 100 MiB, held 1.7 GB at peak to write 1M events lines, and first touching fresh memory costs system time
# here (about 3 s a GB): at 32 MiB the events day peaked at 2.1-2.4 GB instead of 2.6-2.8 GB. Files of 32 MiB
# are above maintenance's small-file mark (16 MiB), so they are not compacted again.
SAIL_TARGET_FILE_BYTES = 32 * 1024 * 1024


class SchemaPolicy(str, Enum):
    STRICT = "strict"
    ADDITIVE = "additive"


class DeltaWriteError(ValueError):
    """Refused before commit: the table is unchanged."""


class SchemaChangeError(DeltaWriteError):
    pass


@dataclass(frozen=True)
class StagedFiles:
    """The Parquet files the DataFrame being written was read from, laid out as a Delta table lays out its
    data (`dt=<day>/*.parquet`, every other column in the files). On Sail they are copied into the table
    and committed as they are (a server-side copy) instead of being read and encoded again: 3 of the
    events day's 13-s processed step."""

    filesystem: fs.FileSystem
    folder: str  # as the filesystem names it


@dataclass(frozen=True)
class WriteResult:
    uri: str
    version: int
    partitions: tuple[dt.date, ...]
    rows_per_partition: dict[dt.date, int]
    added_columns: tuple[str, ...] = field(default=())

    @property
    def row_count(self) -> int:
        return sum(self.rows_per_partition.values())


def partition_predicate(partitions: Sequence[dt.date]) -> str:
    """SQL predicate selecting exactly `partitions` (a range when contiguous)."""
    days = sorted(set(partitions))
    if not days:
        raise DeltaWriteError("no target partitions given")
    if (days[-1] - days[0]).days == len(days) - 1:
        if len(days) == 1:
            return f"{PARTITION_COLUMN} = DATE'{days[0].isoformat()}'"
        first, last = days[0].isoformat(), days[-1].isoformat()
        return f"{PARTITION_COLUMN} >= DATE'{first}' AND {PARTITION_COLUMN} <= DATE'{last}'"
    listed = ", ".join(f"DATE'{day.isoformat()}'" for day in days)
    return f"{PARTITION_COLUMN} IN ({listed})"


def _delta_field_types(arrow_schema: pa.Schema) -> dict[str, str]:
    """Column name -> Delta type (JSON), the common ground for Spark and table schemas."""
    fields = json.loads(Schema.from_arrow(arrow_schema).to_json())["fields"]
    return {f["name"]: json.dumps(f["type"], sort_keys=True) for f in fields}


def _nullable_arrow_schema(schema: T.StructType) -> pa.Schema:
    arrow = to_arrow_schema(schema)
    return pa.schema([f.with_nullable(True) for f in arrow])


def _check_partition_column(df: DataFrame) -> None:
    fields = {f.name: f.dataType for f in df.schema.fields}
    if PARTITION_COLUMN not in fields:
        raise DeltaWriteError(
            f"the DataFrame has no partition column {PARTITION_COLUMN!r}; columns: {sorted(fields)}"
        )
    if not isinstance(fields[PARTITION_COLUMN], T.DateType):
        raise DeltaWriteError(
            f"partition column {PARTITION_COLUMN!r} has type {fields[PARTITION_COLUMN].simpleString()}; "
            "expected date"
        )


def _check_rows_inside(df: DataFrame, predicate: str) -> None:
    outside = df.where(f"NOT ({predicate}) OR {PARTITION_COLUMN} IS NULL")
    stray = outside.groupBy(PARTITION_COLUMN).count().orderBy(PARTITION_COLUMN).limit(5).collect()
    if stray:
        listed = ", ".join(f"{row[PARTITION_COLUMN]}: {row['count']} rows" for row in stray)
        raise DeltaWriteError(f"rows outside the target partitions ({predicate}): {listed}")


def _reconcile_schema(
    table: DeltaTable, incoming: pa.Schema, policy: SchemaPolicy, uri: str, df: DataFrame | None = None
) -> list[str]:
    """Refuse schema changes the policy does not allow; add allowed columns (through Delta Lake on
    Spark when `df`'s engine is Apache Spark, else delta-rs). Returns columns added."""
    current = _delta_field_types(pa.schema(table.schema().to_arrow()))
    wanted = _delta_field_types(incoming)
    added = [name for name in wanted if name not in current]
    removed = [name for name in current if name not in wanted]
    retyped = [
        f"{name} ({current[name]} -> {wanted[name]})"
        for name in wanted
        if name in current and current[name] != wanted[name]
    ]
    problems = []
    if removed:
        problems.append(f"removed: {', '.join(removed)}")
    if retyped:
        problems.append(f"retyped: {', '.join(retyped)}")
    if added and policy is not SchemaPolicy.ADDITIVE:
        problems.append(f"added: {', '.join(added)} (schema policy is {policy.value})")
    if problems:
        raise SchemaChangeError(f"schema of {uri} does not match the DataFrame: {'; '.join(problems)}")
    if added and df is not None and is_apache_spark(df.sparkSession):
        types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
        columns = ", ".join(f"`{name}` {types[name]}" for name in added)
        df.sparkSession.sql(
            f"ALTER TABLE delta.`{engine_path(df.sparkSession, uri)}` ADD COLUMNS ({columns})"
        ).collect()
    elif added:
        new_fields = Schema.from_arrow(pa.schema([incoming.field(name) for name in added])).fields
        table.alter.add_columns([Field(f.name, f.type, nullable=True) for f in new_fields])
    return added


def rows_per_partition(table: DeltaTable, partitions: Sequence[dt.date]) -> dict[dt.date, int]:
    """Row counts from the Delta log's file statistics (no scan)."""
    actions = pa.table(table.get_add_actions(flatten=True))
    counts = {day: 0 for day in partitions}
    for day, records in zip(
        actions.column(f"partition.{PARTITION_COLUMN}").to_pylist(), actions.column("num_records").to_pylist()
    ):
        day = dt.date.fromisoformat(str(day)) if not isinstance(day, dt.date) else day
        if day in counts:
            counts[day] += records or 0
    return counts


def existing(uri: str, storage_options: dict[str, str], version: int | None = None) -> DeltaTable | None:
    """The table at `uri` (at `version`, else its current one), or None when there is none: one read of its
    log, where `is_deltatable` and then loading it read it twice."""
    try:
        return DeltaTable(uri, version=version, storage_options=storage_options)
    except TableNotFoundError:
        return None


def write_partitions(
    df: DataFrame,
    uri: str,
    partitions: Sequence[dt.date],
    storage_options: dict[str, str],
    schema_policy: SchemaPolicy = SchemaPolicy.STRICT,
    staged: StagedFiles | None = None,
) -> WriteResult:
    """Replace exactly `partitions` of the table at `uri` with `df`'s rows (`staged`: the files it reads)."""
    partitions = tuple(sorted(set(partitions)))
    predicate = partition_predicate(partitions)
    _check_partition_column(df)
    incoming = _nullable_arrow_schema(df.schema)
    _check_rows_inside(df, predicate)
    added: list[str] = []
    spark = df.sparkSession
    target = engine_path(spark, uri)
    table = existing(uri, storage_options)
    if table is not None:
        if table.metadata().partition_columns != [PARTITION_COLUMN]:
            raise DeltaWriteError(
                f"{uri} is partitioned by {table.metadata().partition_columns}, not [{PARTITION_COLUMN!r}]"
            )
        added = _reconcile_schema(table, incoming, schema_policy, uri, df)
        table.update_incremental()
        columns = [f.name for f in table.schema().fields]
    elif is_apache_spark(spark):
        columns = incoming.names  # Delta Lake on Spark creates the table with the partition write below
    else:
        # "ignore": a run writing other partitions may have created it a moment ago
        DeltaTable.create(
            uri,
            schema=incoming,
            partition_by=[PARTITION_COLUMN],
            mode="ignore",
            storage_options=storage_options,
        )
        columns = incoming.names
    if staged is not None and not is_apache_spark(spark):
        table = table or DeltaTable(uri, storage_options=storage_options)
        _commit_staged(table, uri, staged, partitions, columns)
    else:
        # Casting to the declared types is a no-op on Spark; on Sail it turns string views (which
        # e.g. substring_index yields) back into the strings its partition overwrite expects.
        declared = {f.name: f.dataType for f in df.schema.fields}
        writer = (
            df.select(*[F.col(name).cast(declared[name]) for name in columns])
            .write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", predicate)
            .partitionBy(PARTITION_COLUMN)
        )
        if not is_apache_spark(spark):  # Delta Lake on Spark writes a file per task
            writer = writer.option("targetFileSize", str(SAIL_TARGET_FILE_BYTES))
        _retrying_conflicts(lambda: writer.save(target))
    if table is None:
        table = DeltaTable(uri, storage_options=storage_options)
    else:
        table.update_incremental()  # the engine's commit, without reading the whole log again
    return WriteResult(
        uri=uri,
        version=table.version(),
        partitions=partitions,
        rows_per_partition=rows_per_partition(table, partitions),
        added_columns=tuple(added),
    )


def _commit_staged(
    table: DeltaTable, uri: str, staged: StagedFiles, partitions: Sequence[dt.date], columns: Sequence[str]
) -> None:
    """Copy the staged files into the table and commit them in place of the partitions' files, in one
    commit; when anything fails, the copies are deleted (uncommitted, no reader saw them)."""
    days = sorted(day.isoformat() for day in partitions)
    selector = fs.FileSelector(staged.folder, recursive=True)
    sources = [
        info
        for info in staged.filesystem.get_file_info(selector)
        if info.type == fs.FileType.File and info.path.endswith(".parquet")
    ]
    wanted = sorted(set(columns) - {PARTITION_COLUMN})
    root = storage.fs_path(uri)
    added: list[AddAction | RemoveAction] = []
    copied: list[str] = []
    try:
        for source in sources:
            folder = source.path[len(staged.folder) :].strip("/").split("/")[0]
            column, _, day = folder.partition("=")
            if column != PARTITION_COLUMN or day not in days:
                raise DeltaWriteError(f"{source.path} is not in one of the partitions written ({days})")
            with staged.filesystem.open_input_file(source.path) as file:
                footer = pq.ParquetFile(file).metadata
            found = sorted(footer.schema.to_arrow_schema().names)
            if found != wanted:
                raise DeltaWriteError(f"{source.path} holds the columns {found}, not the table's {wanted}")
            path = f"{folder}/part-{uuid.uuid4()}.parquet"
            staged.filesystem.copy_file(source.path, f"{root}/{path}")
            copied.append(f"{root}/{path}")
            modified = int(time.time() * 1000)
            added.append(AddAction(path, source.size, {column: day}, modified, True, file_stats(footer)))

        def commit() -> None:
            table.update_incremental()
            table.create_write_transaction(
                added,
                mode="overwrite",
                schema=table.schema(),
                partition_by=[PARTITION_COLUMN],
                partition_filters=[(PARTITION_COLUMN, "in", days)],
            )

        _retrying_conflicts(commit)
    except BaseException:
        for path in copied:
            staged.filesystem.delete_file(path)
        raise


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _bound(value: Any, kind: pa.DataType, upper: bool) -> Any:
    """A footer's bound as Delta statistics hold it, or None for a type whose bound is not kept."""
    if pa.types.is_timestamp(kind) and kind.tz is not None:  # Delta keeps milliseconds: widen outwards
        sub_milli = value.microsecond % 1000
        if sub_milli:
            value += dt.timedelta(microseconds=1000 - sub_milli if upper else -sub_milli)
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if pa.types.is_date32(kind):
        return value.isoformat()
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return value
    if _is_text(kind) and isinstance(value, str):
        return value  # the writer truncates long text to a bound: a shorter minimum, a raised maximum
    return None


def file_stats(footer: pq.FileMetaData) -> str:
    """A data file's Delta statistics from its Parquet footer, as Sail's Delta writer keeps them: its rows,
    and each top-level column's nulls and bounds (floating point, decimal and binary columns: nulls only;
    nested ones: nothing). A column some row group has no statistic for gets none."""
    kinds = {f.name: f.type for f in footer.schema.to_arrow_schema()}
    nulls: dict[str, int] = {}
    bounds: dict[str, tuple[Any, Any]] = {}
    unknown_nulls: set[str] = set()
    unknown_bounds: set[str] = set()
    for index in range(footer.num_row_groups):
        group = footer.row_group(index)
        for position in range(group.num_columns):
            chunk = group.column(position)
            name, found = chunk.path_in_schema, chunk.statistics
            if name not in kinds or pa.types.is_nested(kinds[name]):
                continue
            if found is not None and found.has_null_count:
                nulls[name] = nulls.get(name, 0) + found.null_count
            else:
                unknown_nulls.add(name)
            if found is not None and found.has_min_max:
                low, high = bounds.get(name, (found.min, found.max))
                bounds[name] = (min(low, found.min), max(high, found.max))
            elif found is None or found.null_count != group.num_rows:  # only nulls have no bounds
                unknown_bounds.add(name)
    lows, highs = {}, {}
    for name, (low, high) in bounds.items():
        low, high = _bound(low, kinds[name], upper=False), _bound(high, kinds[name], upper=True)
        if name not in unknown_bounds and low is not None and high is not None:
            lows[name], highs[name] = low, high
    counted = {name: n for name, n in nulls.items() if name not in unknown_nulls}
    return json.dumps(
        {"numRecords": footer.num_rows, "minValues": lows, "maxValues": highs, "nullCount": counted}
    )


_CONFLICT = re.compile(r"conflict|concurrent|already exists|transaction", re.IGNORECASE)


def _retrying_conflicts(commit: Callable[[], None], attempts: int = 5) -> None:
    """Commit, retrying when a writer of other partitions committed first: the rows were checked against the
    predicate and the commit replaces only it, so committing again is exact (runs on different
    partitions of one table both land)."""
    for attempt in range(1, attempts + 1):
        try:
            commit()
            return
        except Exception as error:
            if attempt == attempts or not _CONFLICT.search(str(error)):
                raise
            time.sleep(0.5 * attempt)


@dataclass(frozen=True)
class DeleteResult:
    uri: str
    version: int
    rows_deleted: int
    files_removed: int


def delete_rows(uri: str, predicate: str, storage_options: dict[str, str]) -> DeleteResult:
    """Delete the rows matching a SQL predicate: SQL `DELETE` through Delta Lake on Spark when the
    configured engine is Apache Spark, else delta-rs (Sail's DELETE is not relied on).

    A predicate on `dt` alone removes whole files; any other rewrites the files holding matches.
    Nothing matched: nothing is committed."""
    spark = delta_sql_engine()
    if spark is not None:
        before = DeltaTable(uri, storage_options=storage_options).version()
        deleted = spark.sql(
            f"DELETE FROM delta.`{engine_path(spark, uri)}` WHERE {spark_predicate(predicate)}"
        ).collect()
        table = DeltaTable(uri, storage_options=storage_options)
        removed = 0
        if table.version() > before:
            metrics = table.history(1)[0].get("operationMetrics", {})
            removed = int(metrics.get("numRemovedFiles", 0))
        return DeleteResult(
            uri=uri,
            version=table.version(),
            rows_deleted=int(deleted[0][0]) if deleted else 0,
            files_removed=removed,
        )
    table = DeltaTable(uri, storage_options=storage_options)
    metrics = table.delete(predicate)
    return DeleteResult(
        uri=uri,
        version=table.version(),
        rows_deleted=metrics["num_deleted_rows"],
        files_removed=metrics["num_removed_files"],
    )


def append_rows(uri: str, rows: pa.Table, storage_options: dict[str, str]) -> int:
    """Append small records (audit, metrics) written by the platform itself; returns the new version."""
    from deltalake import write_deltalake

    write_deltalake(uri, rows, mode="append", storage_options=storage_options)
    return DeltaTable(uri, storage_options=storage_options).version()
