"""The Delta writer's promises, on the real S3 server and both engines: Sail, and the Apache Spark
cluster with Delta Lake (where the writer goes through Delta Lake on Spark)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from pyarrow import fs
from pyspark.sql import functions as F

from lakehouse import delta, storage
from lakehouse.delta import (
    DeltaWriteError,
    SchemaChangeError,
    SchemaPolicy,
    partition_predicate,
    write_partitions,
)
from lakehouse.engine import engine_path, is_apache_spark
from lakehouse.maintenance import TableMaintenance

D1, D2, D3, D4 = (dt.date(2024, 1, day) for day in (1, 2, 3, 4))


def frame(spark, days, rows_per_day=3, value="v1", extra=None):
    """`rows_per_day` rows for each day: id, value, amount DECIMAL(10,2), dt (all non-null in the
    DataFrame)."""
    data = [(f"{day}-{i}", value, i, day) for day in days for i in range(rows_per_day)]
    df = spark.createDataFrame(data, "id string, value string, n int, dt date")
    df = df.select("id", "value", F.col("n").cast("decimal(10,2)").alias("amount"), "dt")
    if extra:
        df = df.withColumn(extra, F.lit("x"))
    return df


def load(spark, uri):
    return spark.read.format("delta").load(engine_path(spark, uri))


def table_rows(spark, uri):
    return sorted(tuple(row) for row in load(spark, uri).collect())


# Engine-specific cases run on their engine only (a direct parametrization overrides the fixture's).
SAIL_ONLY = pytest.mark.parametrize("spark", ["sail"], indirect=True)


@pytest.fixture(params=["sail", pytest.param("spark-cluster", marks=pytest.mark.spark_cluster)])
def spark(request, spark):
    """Each test runs on Sail and on the Spark cluster (configured as LAKEHOUSE_SPARK_REMOTE)."""
    return spark if request.param == "sail" else request.getfixturevalue("on_spark_cluster")


@pytest.fixture()
def uri(lake):
    return lake.table_uri("processed", "test", "items")


@pytest.fixture()
def seeded(spark, lake, uri):
    """A table with partitions D1..D4."""
    write_partitions(frame(spark, [D1, D2, D3, D4]), uri, [D1, D2, D3, D4], lake.storage_options)
    return TableMaintenance(uri, lake.storage_options)


def test_partition_write_replaces_exactly_that_partition(spark, lake, uri, seeded):
    before = seeded.active_files()
    result = write_partitions(frame(spark, [D2], rows_per_day=5, value="v2"), uri, [D2], lake.storage_options)
    after = seeded.active_files()

    untouched = {path: day for path, day in before.items() if day != D2.isoformat()}
    assert {path: day for path, day in after.items() if day != D2.isoformat()} == untouched
    assert set(untouched) <= set(after)
    assert not {p for p, day in before.items() if day == D2.isoformat()} & set(after)  # D2's files replaced
    assert result.rows_per_partition == {D2: 5}
    counts = {
        r["dt"]: (r["count"], r["values"])
        for r in load(spark, uri)
        .groupBy("dt")
        .agg(F.count("*").alias("count"), F.collect_set("value").alias("values"))
        .collect()
    }
    assert counts == {D1: (3, ["v1"]), D2: (5, ["v2"]), D3: (3, ["v1"]), D4: (3, ["v1"])}


@SAIL_ONLY  # the same replaceWhere as a single partition; on the cluster every write costs seconds
def test_range_write_replaces_exactly_the_range(spark, lake, uri, seeded):
    before = seeded.active_files()
    write_partitions(frame(spark, [D2, D3], rows_per_day=1, value="v2"), uri, [D2, D3], lake.storage_options)
    after = seeded.active_files()
    outside = {D1.isoformat(), D4.isoformat()}
    assert {p: d for p, d in after.items() if d in outside} == {
        p: d for p, d in before.items() if d in outside
    }
    values = {(r["dt"], r["value"]) for r in load(spark, uri).collect()}
    assert values == {(D1, "v1"), (D2, "v2"), (D3, "v2"), (D4, "v1")}


def test_rerun_gives_an_identical_table(spark, lake, uri, seeded):
    first = table_rows(spark, uri)
    write_partitions(frame(spark, [D1, D2, D3, D4]), uri, [D1, D2, D3, D4], lake.storage_options)
    write_partitions(frame(spark, [D3]), uri, [D3], lake.storage_options)
    assert table_rows(spark, uri) == first
    assert len(first) == 12


def test_rows_outside_target_partitions_are_refused_before_commit(spark, lake, uri, seeded):
    version = seeded.version()
    with pytest.raises(DeltaWriteError, match=r"rows outside the target partitions .*2024-01-03: 3 rows"):
        write_partitions(frame(spark, [D2, D3]), uri, [D2], lake.storage_options)
    nulls = frame(spark, [D2]).withColumn("dt", F.lit(None).cast("date"))
    with pytest.raises(DeltaWriteError, match=r"None: 3 rows"):
        write_partitions(nulls, uri, [D2], lake.storage_options)
    assert seeded.version() == version
    assert len(table_rows(spark, uri)) == 12


def test_partition_column_of_wrong_type_is_refused(spark, lake, uri, seeded):
    version = seeded.version()
    as_string = frame(spark, [D2]).withColumn("dt", F.col("dt").cast("string"))
    with pytest.raises(DeltaWriteError, match="partition column 'dt' has type string; expected date"):
        write_partitions(as_string, uri, [D2], lake.storage_options)
    assert seeded.version() == version


@pytest.mark.parametrize(
    "change, message",
    [
        ("added", r"added: extra \(schema policy is strict\)"),
        ("removed", r"removed: value"),
        ("retyped", r"retyped: amount \(.*decimal\(10,2\).* -> .*double.*\)"),
    ],
)
def test_schema_changes_are_refused_naming_the_columns(spark, lake, uri, seeded, change, message):
    version = seeded.version()
    df = frame(spark, [D2])
    df = {
        "added": df.withColumn("extra", F.lit("x")),
        "removed": df.drop("value"),
        "retyped": df.withColumn("amount", F.col("amount").cast("double")),
    }[change]
    with pytest.raises(SchemaChangeError, match=message):
        write_partitions(df, uri, [D2], lake.storage_options)
    assert seeded.version() == version
    assert [f.name for f in DeltaTable(uri, storage_options=lake.storage_options).schema().fields] == [
        "id",
        "value",
        "amount",
        "dt",
    ]


def test_additive_policy_really_adds_the_column(spark, lake, uri, seeded):
    result = write_partitions(
        frame(spark, [D2], extra="extra"),
        uri,
        [D2],
        lake.storage_options,
        schema_policy=SchemaPolicy.ADDITIVE,
    )
    assert result.added_columns == ("extra",)
    table = load(spark, uri)
    assert table.columns == ["id", "value", "amount", "dt", "extra"]
    by_day = {r["dt"]: r["extra"] for r in table.select("dt", "extra").distinct().collect()}
    assert by_day == {D1: None, D2: "x", D3: None, D4: None}
    # Removing a column is still refused under the additive policy.
    with pytest.raises(SchemaChangeError, match="removed: extra"):
        write_partitions(
            frame(spark, [D2]), uri, [D2], lake.storage_options, schema_policy=SchemaPolicy.ADDITIVE
        )


def test_tables_are_created_nullable_with_the_dataframe_schema(spark, lake, uri, seeded):
    fields = DeltaTable(uri, storage_options=lake.storage_options).schema().fields
    assert [(f.name, str(f.type), f.nullable) for f in fields] == [
        ("id", 'PrimitiveType("string")', True),
        ("value", 'PrimitiveType("string")', True),
        ("amount", 'PrimitiveType("decimal(10,2)")', True),
        ("dt", 'PrimitiveType("date")', True),
    ]
    with_nulls = frame(spark, [D2]).withColumn("value", F.lit(None).cast("string"))
    write_partitions(with_nulls, uri, [D2], lake.storage_options)
    assert load(spark, uri).where("value IS NULL").count() == 3


def test_an_empty_partition_is_a_valid_result(spark, lake, uri, seeded):
    empty = frame(spark, [D2]).where("false")
    result = write_partitions(empty, uri, [D2], lake.storage_options)
    assert result.rows_per_partition == {D2: 0}
    counts = dict(load(spark, uri).groupBy("dt").count().collect())
    assert counts == {D1: 3, D3: 3, D4: 3}
    fresh = lake.table_uri("curated", "test", "empty_from_start")
    assert write_partitions(empty, fresh, [D1], lake.storage_options).row_count == 0
    assert load(spark, fresh).columns == ["id", "value", "amount", "dt"]


def test_predicate_is_a_range_when_contiguous_and_a_list_otherwise():
    assert partition_predicate([D2, D1]) == "dt >= DATE'2024-01-01' AND dt <= DATE'2024-01-02'"
    assert partition_predicate([D1, D3]) == "dt IN (DATE'2024-01-01', DATE'2024-01-03')"
    with pytest.raises(DeltaWriteError, match="no target partitions"):
        partition_predicate([])


def test_maintenance_history_vacuum_and_optimize(spark, lake, uri, seeded):
    replaced = {p for p, day in seeded.active_files().items() if day == D1.isoformat()}
    write_partitions(frame(spark, [D1], value="v2"), uri, [D1], lake.storage_options)
    operations = [entry["operation"] for entry in seeded.history()]
    if is_apache_spark(spark):  # Delta on Spark creates the table by the first write
        assert operations[-1] == "WRITE" and operations.count("WRITE") == 2
    else:
        assert operations[-1] == "CREATE TABLE" and operations.count("WRITE") == 2
    # Replaced files are only candidates once older than the retention window.
    assert seeded.vacuum(retention_hours=168, dry_run=True) == []
    candidates = seeded.vacuum(retention_hours=0, dry_run=True)
    assert {c.rsplit("/", 1)[-1] for c in candidates} == {p.rsplit("/", 1)[-1] for p in replaced}
    rows = table_rows(spark, uri)
    seeded.optimize()
    assert table_rows(spark, uri) == rows


@SAIL_ONLY
def test_a_local_path_root_works(spark, tmp_path):
    uri = str(tmp_path / "processed" / "test" / "items")
    write_partitions(frame(spark, [D1, D2]), uri, [D1, D2], {})
    write_partitions(frame(spark, [D2], rows_per_day=1), uri, [D2], {})
    assert dict(load(spark, uri).groupBy("dt").count().collect()) == {D1: 3, D2: 1}


@SAIL_ONLY
def test_strings_the_engine_keeps_as_views_are_written(spark, lake, uri, seeded):
    """Sail types substring_index's result as a string view, which its partition overwrite refused."""
    df = frame(spark, [D2]).withColumn("value", F.substring_index(F.lit("a.b.c"), ".", 2))
    write_partitions(df, uri, [D2], lake.storage_options)
    assert {r["value"] for r in load(spark, uri).where("dt = DATE'2024-01-02'").collect()} == {"a.b"}


@SAIL_ONLY
def test_sail_writes_files_of_the_target_size(spark, lake, uri, monkeypatch):
    """Sail holds a file's rows in memory until the target size: the writer sets it (the memory bound)."""
    rows = spark.range(20_000).select(
        F.sha2(F.col("id").cast("string"), 512).alias("id"), F.lit(D1).alias("dt")
    )  # 2.6 MB of incompressible text
    monkeypatch.setattr(delta, "SAIL_TARGET_FILE_BYTES", 256 * 1024)
    write_partitions(rows, uri, [D1], lake.storage_options)
    sizes = [f.size for f in TableMaintenance(uri, lake.storage_options).files()]
    assert len(sizes) >= 6, sizes
    assert max(sizes) < 1024 * 1024, sizes
    assert sum(r[0] for r in load(spark, uri).groupBy().count().collect()) == 20_000


def _stage(spark, lake, df, name):
    """`df` staged as a step stages its de-duplicated rows: Parquet partitioned by dt, read back."""
    folder = f"{lake.root}/_staging/test/{name}"
    df.write.partitionBy("dt").parquet(engine_path(spark, folder))
    staged = spark.read.schema(df.schema).parquet(engine_path(spark, folder)).select(*df.columns)
    return staged, delta.StagedFiles(storage.filesystem(lake), storage.fs_path(folder))


def _staged_sizes(files):
    selector = fs.FileSelector(files.folder, recursive=True)
    return sorted(i.size for i in files.filesystem.get_file_info(selector) if i.path.endswith(".parquet"))


@SAIL_ONLY
def test_staged_files_are_committed_as_they_are_in_place_of_the_partition(spark, lake, uri, seeded):
    """The write copies the staged files into the table, not the engine encoding the rows again: the
    partition's files are the staged ones, byte for byte in size, counted from their footers."""
    staged, files = _stage(spark, lake, frame(spark, [D2], rows_per_day=5, value="v2"), "committed")
    before = {row for row in table_rows(spark, uri) if row[-1] != D2}
    result = write_partitions(staged, uri, [D2], lake.storage_options, staged=files)
    assert result.rows_per_partition == {D2: 5}
    rows = table_rows(spark, uri)
    assert {row for row in rows if row[-1] != D2} == before  # D1, D3, D4 untouched
    assert sorted(row for row in rows if row[-1] == D2) == sorted(tuple(r) for r in staged.collect())
    table = DeltaTable(uri, storage_options=lake.storage_options)
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    d2 = [a for a in actions if str(a["partition.dt"]) == D2.isoformat()]
    assert sorted(a["size_bytes"] for a in d2) == _staged_sizes(files)
    assert sum(a["num_records"] for a in d2) == 5
    assert table.history(1)[0]["operation"] == "WRITE"
    assert len(table.to_pyarrow_table(filters=[("dt", "=", D2)])) == 5  # delta-rs reads them too


@SAIL_ONLY
def test_staged_file_statistics_bound_every_value_and_count_nulls(spark, lake, uri):
    """Readers skip files by these bounds: each must hold every value, however the footer rounded it
    (text longer than the writer keeps whole, timestamps finer than Delta's milliseconds)."""
    long_low, long_high = "a" * 100 + "b", "z" * 100 + "y"
    late = dt.datetime(2024, 1, 1, 23, 59, 59, 999_999, tzinfo=dt.UTC)
    early = dt.datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC)
    df = spark.createDataFrame(
        [
            (1, long_low, early, True, 0.5, D1),
            (7, long_high, late, None, 2.5, D1),
            (None, None, None, False, None, D1),
        ],
        "n int, text string, ts timestamp, flag boolean, x double, dt date",
    )
    staged, files = _stage(spark, lake, df, "stats")
    write_partitions(staged, uri, [D1], lake.storage_options, staged=files)
    table = DeltaTable(uri, storage_options=lake.storage_options)
    [action] = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    assert action["num_records"] == 3
    assert {c: action[f"null_count.{c}"] for c in ("n", "text", "ts", "flag", "x")} == {
        "n": 1,
        "text": 1,
        "ts": 1,
        "flag": 1,
        "x": 1,
    }
    assert (action["min.n"], action["max.n"]) == (1, 7)
    assert action["min.text"] <= long_low and action["max.text"] >= long_high
    assert action["min.ts"] <= early and action["max.ts"] >= late
    assert action.get("min.x") is None  # floating point: no bounds kept
    # the extreme values are found through the statistics, on both readers
    assert load(spark, uri).where(F.col("ts") == F.lit(late)).count() == 1
    assert load(spark, uri).where(F.col("text") == long_high).count() == 1
    assert len(table.to_pyarrow_table(filters=[("ts", "=", pa.scalar(late, pa.timestamp("us", "UTC")))])) == 1


@SAIL_ONLY
def test_staged_files_of_other_columns_are_refused_and_no_copy_stays(spark, lake, uri, seeded):
    staged, _ = _stage(spark, lake, frame(spark, [D2]), "right")
    _, other = _stage(spark, lake, frame(spark, [D2], extra="surplus"), "other")
    before = table_rows(spark, uri)
    kept = sorted(f.path for f in TableMaintenance(uri, lake.storage_options).files())
    with pytest.raises(DeltaWriteError, match=r"holds the columns .*surplus.*, not the table's"):
        write_partitions(staged, uri, [D2], lake.storage_options, staged=other)
    assert table_rows(spark, uri) == before
    data = [p for p in storage.list_tree(lake, uri) if "_delta_log" not in p]
    assert sorted(p[len(uri) + 1 :] for p in data) == kept  # no copied file left behind
